"""The REST API: schema and docs, pagination, filtering shared with the UI, audit of writes,
validation, secrecy of keys, and query counts of the lists."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlencode, urlparse

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from cardmgmt import services as inventory
from cardmgmt.models import Card, CardAssignment, CardProfile, KeySet, Segment, Subscriber
from cardmgmt.validators import luhn_check_digit
from portal import crypto, services
from portal.context import Actor
from portal.models import ApiToken, AuditEntry

ACTOR = Actor.command("tests")


def iccid(serial: int) -> str:
    body = f"89490010000{serial:07d}"
    return body + str(luhn_check_digit(body))


def bad_luhn(serial: int) -> str:
    good = iccid(serial)
    return good[:-1] + str((int(good[-1]) + 1) % 10)


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_token(make_user) -> tuple[ApiToken, APIClient]:
    token, key = services.create_api_token(
        actor=ACTOR, user=make_user("administrator"), name="api tests", write_enabled=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return token, client


@pytest.fixture
def api(admin_token) -> APIClient:
    return admin_token[1]


# --- schema and docs -----------------------------------------------------------------------


def test_schema_generates_without_warnings_and_validates() -> None:
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    warnings, errors = dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert not errors, "\n".join(errors)
    assert not warnings, "\n".join(warnings)
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    paths = schema["paths"]
    for path in ("/api/subscribers/", "/api/subscribers/{id}/", "/api/cards/", "/api/audit-log/"):
        assert path in paths, path
    # The token scheme is described, so the docs page can authenticate.
    assert "apiToken" in schema["components"]["securitySchemes"]


def test_schema_endpoint_serves_a_valid_document(api) -> None:
    response = api.get(reverse("api:schema"), {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    # Keys are write-only: the card read schema has no key fields.
    read_props = schema["components"]["schemas"]["KeySet"]["properties"]
    assert set(read_props) == {"kvn", "algorithm", "counter"}


def test_docs_render_with_local_assets_only(client) -> None:
    response = client.get(reverse("api:docs"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui-bundle.js" in html
    external = {
        urlparse(url).hostname
        for url in re.findall(r"""https?://[^\s"'<>)]+""", html)
        if urlparse(url).hostname not in ("testserver", "localhost", "127.0.0.1")
    }
    assert not external, f"the docs page loads from other hosts: {sorted(external)}"
    for src in re.findall(r"""(?:src|href)=["']([^"']+)["']""", html):
        assert src.startswith("/"), src
    # The schema it loads is ours, by a relative URL.
    assert '"/api/schema/"' in html


# --- pagination ----------------------------------------------------------------------------


def _bulk_subscribers(count: int, start: int = 0, status: str = "active") -> list[Subscriber]:
    return Subscriber.objects.bulk_create(
        Subscriber(msisdn=f"+4915{start + i:09d}", status=status) for i in range(count)
    )


def test_cursor_pagination_walks_every_row_once(api) -> None:
    ids = {s.pk for s in _bulk_subscribers(7)}
    seen: list[int] = []
    url = reverse("api:subscriber-list") + "?page_size=3"
    pages = 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        body = response.json()
        assert "count" not in body  # no COUNT(*) over the table
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
        pages += 1
        assert pages <= 3
    assert pages == 3
    assert seen == sorted(ids, reverse=True)  # newest first, no duplicates, none missing
    # And back: the previous link of the last page leads to the middle page.
    last = api.get(reverse("api:subscriber-list") + "?page_size=3").json()
    middle = api.get(last["next"]).json()
    assert api.get(middle["previous"]).json()["results"] == last["results"]


def test_page_size_default_and_cap(api) -> None:
    _bulk_subscribers(501)
    body = api.get(reverse("api:subscriber-list")).json()
    assert len(body["results"]) == 50
    body = api.get(reverse("api:subscriber-list"), {"page_size": 100000}).json()
    assert len(body["results"]) == 500
    assert body["next"] is not None
    assert len(api.get(body["next"]).json()["results"]) == 1


# --- filtering: the same FilterSet in the API and the UI -----------------------------------


@pytest.fixture
def population(card_profile) -> dict[str, object]:
    """Subscribers with and without cards, in two statuses and segments (bulk: test data)."""
    other = CardProfile.objects.create(name="Other", vendor="X", algorithms=["aes128"])
    cards = {
        i: Card.objects.create(
            iccid=iccid(100 + i),
            imsi=f"2620100001{i:05d}",
            profile=card_profile if i % 2 else other,
            status="active",
        )
        for i in range(12)
        if i % 3
    }
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(
            msisdn=f"+49170{'11' if i < 6 else '22'}{i:05d}",
            status="suspended" if i % 4 == 0 else "active",
            card=cards.get(i),
        )
        for i in range(12)
    )
    gold, basic = Segment.objects.bulk_create([Segment(name="gold"), Segment(name="basic")])
    Subscriber.segments.through.objects.bulk_create(
        Subscriber.segments.through(subscriber=s, segment=gold if i % 5 == 0 else basic)
        for i, s in enumerate(subscribers)
    )
    return {"other_profile": other}


FILTER_QUERIES = [
    {"q": "+4917011"},
    {"q": "4917022"},  # without the +
    {"q": "+49 170 11"},  # spaces are ignored
    {"q": iccid(101)[:17]},  # ICCID prefix
    {"q": iccid(104)},  # whole ICCID
    {"q": "262010000100"},  # IMSI prefix
    {"status": "suspended"},
    {"status": ["active", "suspended"]},
    {"q": "+49170", "status": "suspended"},
    {"segment": "gold"},
    {"has_card": "false"},
    {"has_card": "true", "status": "active"},
    {"q": "+4999"},  # nothing
]


@pytest.mark.parametrize(
    "query", FILTER_QUERIES, ids=[urlencode(q, doseq=True) for q in FILTER_QUERIES]
)
def test_api_and_ui_filter_alike(query, population, api, client, make_user) -> None:
    query_string = urlencode(query, doseq=True)
    api_response = api.get(f"{reverse('api:subscriber-list')}?{query_string}&page_size=500")
    assert api_response.status_code == 200
    api_ids = {row["id"] for row in api_response.json()["results"]}

    client.force_login(make_user("auditor"))
    ui_response = client.get(f"{reverse('cardmgmt:subscriber_list')}?{query_string}")
    assert ui_response.status_code == 200
    table = ui_response.context["table"]
    ui_ids = {row.record.pk for row in table.page.object_list}
    assert len(ui_ids) < 25  # one page: the comparison sees every hit

    assert api_ids == ui_ids


def test_filter_by_profile_alike(population, card_profile, api, client, make_user) -> None:
    query_string = urlencode({"profile": card_profile.pk})
    api_ids = {
        row["id"]
        for row in api.get(f"{reverse('api:subscriber-list')}?{query_string}").json()["results"]
    }
    client.force_login(make_user("support"))
    table = client.get(f"{reverse('cardmgmt:subscriber_list')}?{query_string}").context["table"]
    assert api_ids == {row.record.pk for row in table.page.object_list}
    assert api_ids == set(
        Subscriber.objects.filter(card__profile=card_profile).values_list("pk", flat=True)
    )
    assert api_ids  # the population does have such subscribers


def test_filters_select_what_they_say(population, api) -> None:
    """The shared FilterSet is right, not merely consistent."""

    def ids(**query) -> set[int]:
        url = f"{reverse('api:subscriber-list')}?{urlencode(query, doseq=True)}&page_size=500"
        return {row["id"] for row in api.get(url).json()["results"]}

    assert ids(q="+4917011") == set(
        Subscriber.objects.filter(msisdn__startswith="+4917011").values_list("pk", flat=True)
    )
    assert len(ids(q="+4917011")) == 6
    assert ids(q=iccid(104)) == {Subscriber.objects.get(card__iccid=iccid(104)).pk}
    assert ids(status="suspended") == set(
        Subscriber.objects.filter(status="suspended").values_list("pk", flat=True)
    )
    assert ids(has_card="false") == set(
        Subscriber.objects.filter(card__isnull=True).values_list("pk", flat=True)
    )


def test_segment_filter_selects_the_segment(population, api) -> None:
    url = f"{reverse('api:subscriber-list')}?segment=gold&page_size=500"
    assert {row["id"] for row in api.get(url).json()["results"]} == set(
        Subscriber.objects.filter(segments__name="gold").values_list("pk", flat=True)
    )


def test_bad_filter_value_is_a_400(api) -> None:
    response = api.get(reverse("api:subscriber-list"), {"status": "bogus"})
    assert response.status_code == 400
    assert "status" in response.json()


# --- writes are audited with the token and the request id ---------------------------------


def _entries(response) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    request_id = response["X-Request-ID"]
    assert request_id
    return list(AuditEntry.objects.filter(request_id=request_id).order_by("id"))


def test_create_update_delete_subscriber_are_audited(admin_token, card) -> None:
    token, api = admin_token

    created = api.post(
        reverse("api:subscriber-list"),
        {"msisdn": "+491709876543", "segments": ["gold"], "iccid": card.iccid},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["card"] == card.iccid
    assert body["segments"] == ["gold"]
    entries = _entries(created)
    assert {(e.action, e.object_type.model) for e in entries} >= {
        ("create", "subscriber"),
        ("update", "subscriber"),  # card assigned
        ("update", "card"),  # card now active
    }
    for entry in entries:
        assert entry.actor_kind == "token"
        assert entry.actor_token_id == token.pk
        assert entry.actor_user_id == token.user_id
        assert "api tests" in entry.actor_label

    pk = body["id"]
    updated = api.patch(
        reverse("api:subscriber-detail", args=[pk]), {"status": "suspended"}, format="json"
    )
    assert updated.status_code == 200, updated.content
    (entry,) = _entries(updated)
    assert (entry.action, entry.actor_kind, entry.actor_token_id) == ("update", "token", token.pk)
    assert entry.before["status"] == "active"
    assert entry.after["status"] == "suspended"
    assert entry.changed_fields == ["status", "updated"]

    deleted = api.delete(reverse("api:subscriber-detail", args=[pk]))
    assert deleted.status_code == 204
    (entry,) = _entries(deleted)
    assert (entry.action, entry.actor_kind, entry.object_id) == ("delete", "token", str(pk))
    assert not Subscriber.objects.filter(pk=pk).exists()


def test_caller_request_id_is_kept(api) -> None:
    response = api.post(
        reverse("api:subscriber-list"),
        {"msisdn": "+491709876500"},
        format="json",
        HTTP_X_REQUEST_ID="lb-req-0123456789",
    )
    assert response.status_code == 201
    assert response["X-Request-ID"] == "lb-req-0123456789"
    assert AuditEntry.objects.filter(request_id="lb-req-0123456789").count() == 1


def test_unsafe_request_id_is_replaced(api) -> None:
    response = api.get(reverse("api:subscriber-list"), HTTP_X_REQUEST_ID="bad id\nX-Evil: 1")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


# --- bad input: 400 with field messages, nothing changed -----------------------------------


def _state() -> tuple[int, ...]:
    return (
        Subscriber.objects.count(),
        Card.objects.count(),
        KeySet.objects.count(),
        CardAssignment.objects.count(),
        CardProfile.objects.count(),
        Segment.objects.count(),
        AuditEntry.objects.count(),
    )


KEY = "00112233445566778899AABBCCDDEEFF"

BAD_INPUT = {
    "bad msisdn": ("api:subscriber-list", {"msisdn": "12345"}, ["msisdn"], "E.164"),
    "unknown iccid": (
        "api:subscriber-list",
        {"msisdn": "+491709876501", "iccid": iccid(555)},
        ["iccid"],
        "no card with this ICCID",
    ),
    "subscriber with bad luhn": (
        "api:subscriber-list",
        {"msisdn": "+491709876501", "iccid": bad_luhn(555)},
        ["iccid"],
        "Luhn",
    ),
    "card with bad luhn": (
        "api:card-list",
        {"iccid": bad_luhn(556), "imsi": "262010000000556", "profile": "Test AES"},
        ["iccid"],
        "Luhn",
    ),
    "key of wrong length": (
        "api:card-list",
        {
            "iccid": iccid(557),
            "imsi": "262010000000557",
            "profile": "Test AES",
            "keysets": [{"kvn": 1, "algorithm": "aes128", "kic": KEY[:16], "kid": KEY}],
        },
        ["keysets", "0", "kic"],
        "16 bytes",
    ),
    "non-hex key": (
        "api:card-list",
        {
            "iccid": iccid(558),
            "imsi": "262010000000558",
            "profile": "Test AES",
            "keysets": [{"kvn": 1, "algorithm": "aes128", "kic": KEY, "kid": "zz" * 16}],
        },
        ["keysets", "0", "kid"],
        "hexadecimal",
    ),
    "unknown profile": (
        "api:card-list",
        {"iccid": iccid(559), "imsi": "262010000000559", "profile": "No such profile"},
        ["profile"],
        "does not exist",
    ),
    "bad kvn": (
        "api:card-list",
        {
            "iccid": iccid(560),
            "imsi": "262010000000560",
            "profile": "Test AES",
            "keysets": [{"kvn": 16, "algorithm": "aes128", "kic": KEY, "kid": KEY}],
        },
        ["keysets", "0", "kvn"],
        "15",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_refused_and_changes_nothing(case: str, api, card_profile) -> None:
    url_name, payload, path, text = BAD_INPUT[case]
    before = _state()
    response = api.post(reverse(url_name), payload, format="json")
    assert response.status_code == 400, response.content
    detail = response.json()
    for step in path:  # list items' errors are keyed by their index (DRF 3.16)
        detail = detail[step]
    assert any(text in message for message in detail), detail
    assert _state() == before


def test_bad_update_changes_nothing(api, subscriber, card_profile) -> None:
    url = reverse("api:subscriber-detail", args=[subscriber.pk])
    before = _state()
    response = api.patch(url, {"msisdn": "not a number", "status": "suspended"}, format="json")
    assert response.status_code == 400
    assert "msisdn" in response.json()
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    assert _state() == before


def test_service_refusal_rolls_back_the_whole_update(api, subscriber, card, card_profile) -> None:
    """Taking another subscriber's card is refused by the service, after the status was set:
    the status change must be rolled back with it."""
    other = inventory.create_subscriber(
        actor=ACTOR,
        msisdn="+491709876502",
        card=inventory.create_card(
            actor=ACTOR, iccid=iccid(561), imsi="262010000000561", profile=card_profile
        ),
    )
    before = _state()
    response = api.patch(
        reverse("api:subscriber-detail", args=[subscriber.pk]),
        {"status": "suspended", "iccid": other.card.iccid},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "belongs to subscriber" in json.dumps(response.json())
    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.card_id) == ("active", card.pk)
    assert _state() == before


@pytest.mark.parametrize(
    ("url_name", "payload", "field"),
    [
        ("api:subscriber-list", {"msisdn": "+491701234567"}, "msisdn"),
        (
            "api:card-list",
            {"iccid": iccid(1), "imsi": "262010000000999", "profile": "Test AES"},
            "iccid",
        ),
        (
            "api:card-list",
            {"iccid": iccid(999), "imsi": "262010000000001", "profile": "Test AES"},
            "imsi",
        ),
    ],
    ids=["msisdn", "iccid", "imsi"],
)
def test_duplicate_identifier_is_a_400(url_name, payload, field, api, subscriber) -> None:
    """MSISDN, ICCID and IMSI identify a subscriber and a card: a second one is refused."""
    before = _state()
    response = api.post(reverse(url_name), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert _state() == before


# --- keys never leave ----------------------------------------------------------------------

KIC, KID, KIK = (
    "A1B2C3D4E5F60718293A4B5C6D7E8F90",
    "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
    "13579BDF02468ACE13579BDF02468ACE",
)


def _leaks(content: bytes) -> list[str]:
    text = content.decode()
    found = []
    for key in (KIC, KID, KIK):
        raw = bytes.fromhex(key)
        forms = {key, key.lower(), base64.b64encode(raw).decode(), raw.hex(" ")}
        found += [form for form in forms if form.lower() in text.lower()]
    return found


def test_keys_never_appear_in_responses(api, card_profile) -> None:
    created = api.post(
        reverse("api:card-list"),
        {
            "iccid": iccid(600),
            "imsi": "262010000000600",
            "profile": card_profile.name,
            "keysets": [{"kvn": 1, "algorithm": "aes128", "kic": KIC, "kid": KID, "kik": KIK}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["keysets"] == [{"kvn": 1, "algorithm": "aes128", "counter": 0}]
    pk = created.json()["id"]
    # Replacing keys through an update does not echo them either.
    replaced = api.patch(
        reverse("api:card-detail", args=[pk]),
        {"keysets": [{"kvn": 2, "algorithm": "aes128", "kic": KIC, "kid": KID}]},
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    assert KeySet.objects.filter(card_id=pk).count() == 2
    responses = {
        "create": created,
        "update": replaced,
        "list": api.get(reverse("api:card-list")),
        "detail": api.get(reverse("api:card-detail", args=[pk])),
        "filtered list": api.get(reverse("api:card-list"), {"q": iccid(600)}),
        "audit log": api.get(reverse("api:auditentry-list"), {"page_size": 500}),
    }
    for name, response in responses.items():
        assert response.status_code in (200, 201), name
        assert not _leaks(response.content), (
            f"{name} shows key material: {_leaks(response.content)}"
        )
    assert "***" in responses["audit log"].content.decode()  # keys are there, redacted


# --- query counts --------------------------------------------------------------------------


@pytest.fixture
def thirty(card_profile) -> None:
    """30 subscribers, each with a card holding a key set, two segments and a SIM swap
    history (60 cards), and 240 audit entries: every relation a serialized row touches.
    Bulk-created test data."""
    now = timezone.now()
    first = Card.objects.bulk_create(
        Card(
            iccid=iccid(700 + i),
            imsi=f"26201000000{700 + i:04d}",
            profile=card_profile,
            status="retired",
        )
        for i in range(30)
    )
    second = Card.objects.bulk_create(
        Card(
            iccid=iccid(800 + i),
            imsi=f"26201000000{800 + i:04d}",
            profile=card_profile,
            status="active",
        )
        for i in range(30)
    )
    KeySet.objects.bulk_create(
        KeySet(
            card=card,
            kvn=1,
            algorithm="aes128",
            kic=crypto.seal(bytes.fromhex(KIC), "kic"),
            kid=crypto.seal(bytes.fromhex(KID), "kid"),
        )
        for card in second
    )
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(msisdn=f"+4917333{i:05d}", card=second[i]) for i in range(30)
    )
    segments = Segment.objects.bulk_create(Segment(name=f"s{i}") for i in range(4))
    Subscriber.segments.through.objects.bulk_create(
        Subscriber.segments.through(subscriber=s, segment=segments[k])
        for i, s in enumerate(subscribers)
        for k in (0, 1 + i % 3)
    )
    CardAssignment.objects.bulk_create(
        CardAssignment(subscriber=s, card=card, assigned=now, released=released)
        for i, s in enumerate(subscribers)
        for card, released in ((first[i], now), (second[i], None))
    )
    subscriber_type = ContentType.objects.get_for_model(Subscriber)
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor_kind="command",
            actor_label="tests",
            action="update",
            object_type=subscriber_type,
            object_id=str(s.pk),
            object_repr=s.msisdn,
            before={"status": "active"},
            after={"status": "suspended"},
        )
        for s in subscribers
        for _ in range(8)
    )


@pytest.fixture
def auditor_api(make_user) -> APIClient:
    """Not a superuser: permission checks cost their queries."""
    _token, key = services.create_api_token(actor=ACTOR, user=make_user("auditor"), name="qc")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# Token lookup, last-used stamp, user and group permissions, the page, and one query per
# prefetched relation. A query per row (N+1) would add 30 or more.
@pytest.mark.parametrize(
    ("url_name", "max_queries", "rows"),
    [
        ("api:subscriber-list", 7, 30),  # + segments, card history
        ("api:card-list", 6, 60),  # + key sets
        ("api:auditentry-list", 5, 200),
    ],
)
def test_list_query_count(
    url_name, max_queries, rows, thirty, auditor_api, django_assert_max_num_queries
) -> None:
    with django_assert_max_num_queries(max_queries):
        response = auditor_api.get(reverse(url_name), {"page_size": 200})
    assert response.status_code == 200
    assert len(response.json()["results"]) == rows


def test_list_rows_carry_their_relations(thirty, api) -> None:
    subscribers = api.get(reverse("api:subscriber-list")).json()["results"]
    assert len(subscribers) == 30
    for row in subscribers:
        assert len(row["segments"]) == 2
        history = sorted(
            (h["released"] is None, h["card"] == row["card"]) for h in row["card_history"]
        )
        assert history == [(False, False), (True, True)]
    cards = api.get(reverse("api:card-list"), {"page_size": 100}).json()["results"]
    assert sum(1 for row in cards if row["subscriber"]) == 30
    assert sorted(len(row["keysets"]) for row in cards) == [0] * 30 + [1] * 30
