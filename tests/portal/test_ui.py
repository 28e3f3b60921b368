"""The HTML UI: logging in and out, CSRF, the dashboard, search, lists (filters, sorting,
pagination, HTMX fragments), subscriber forms and SIM swaps, key sets, API tokens and the
audit log."""

from __future__ import annotations

import datetime
import re
from urllib.parse import urlencode

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cardmgmt import services as inventory
from cardmgmt.models import Card, CardAssignment, KeySet, Segment, Subscriber
from cardmgmt.validators import luhn_check_digit
from portal import crypto, services
from portal.context import Actor
from portal.models import ApiToken, AuditEntry, hash_token_secret

ACTOR = Actor.command("tests")
PASSWORD = "pw-Secret-123"


def iccid(serial: int) -> str:
    body = f"89490010000{serial:07d}"
    return body + str(luhn_check_digit(body))


def bad_luhn(serial: int) -> str:
    good = iccid(serial)
    return good[:-1] + str((int(good[-1]) + 1) % 10)


@pytest.fixture(autouse=True)
def _fast_passwords_and_fresh_cache(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # the dashboard caches its counts


def entries_for(obj) -> QuerySet[AuditEntry]:  # type: ignore[no-untyped-def]
    return AuditEntry.objects.filter(
        object_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    )


def logged_in(make_user, role: str, **kwargs) -> Client:  # type: ignore[no-untyped-def]
    client = Client(**kwargs)
    client.force_login(make_user(role))
    return client


@pytest.fixture
def admin(make_user) -> Client:
    return logged_in(make_user, "administrator")


def make_card(profile, serial: int, **kwargs) -> Card:  # type: ignore[no-untyped-def]
    return inventory.create_card(
        actor=ACTOR, iccid=iccid(serial), imsi=f"26201000000{serial:04d}", profile=profile, **kwargs
    )


# --- logging in and out --------------------------------------------------------------------


def test_login_form_then_logout(client, make_user) -> None:
    make_user("support")
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content and b"csrfmiddlewaretoken" in page.content

    wrong = client.post(reverse("login"), {"username": "support-user", "password": "nope"})
    assert wrong.status_code == 200
    assert b"Wrong user name or password." in wrong.content
    assert client.get(reverse("dashboard")).status_code == 302

    cards = reverse("cardmgmt:card_list")
    right = client.post(
        f"{reverse('login')}?next={cards}",
        {"username": "support-user", "password": PASSWORD, "next": cards},
    )
    assert right.status_code == 302 and right["Location"] == cards
    assert client.get(reverse("dashboard")).status_code == 200

    out = client.post(reverse("logout"))
    assert out.status_code == 302 and out["Location"] == reverse("login")
    after = client.get(reverse("dashboard"))
    assert after.status_code == 302 and after["Location"].startswith(reverse("login"))


def test_login_does_not_redirect_to_other_hosts(client, make_user) -> None:
    make_user("support")
    response = client.post(
        reverse("login"),
        {"username": "support-user", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")


def test_inactive_user_cannot_log_in(client, make_user) -> None:
    user = make_user("support")
    user.is_active = False
    user.save()
    response = client.post(reverse("login"), {"username": "support-user", "password": PASSWORD})
    assert response.status_code == 200
    assert client.get(reverse("dashboard")).status_code == 302


def test_password_change(client, make_user) -> None:
    user = make_user("operator")
    assert client.login(username="operator-user", password=PASSWORD)
    assert client.get(reverse("password_change")).status_code == 200

    refused = client.post(
        reverse("password_change"),
        {
            "old_password": "wrong",
            "new_password1": "N3w-pass-phrase",
            "new_password2": "N3w-pass-phrase",
        },
    )
    assert refused.status_code == 200
    assert refused.context["form"].errors["old_password"]
    too_weak = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert too_weak.status_code == 200 and too_weak.context["form"].errors["new_password2"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)

    done = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "N3w-pass-phrase",
            "new_password2": "N3w-pass-phrase",
        },
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_change_done")
    assert b"password was changed" in client.get(done["Location"]).content
    user.refresh_from_db()
    assert user.check_password("N3w-pass-phrase")
    assert client.get(reverse("dashboard")).status_code == 200  # still logged in
    fresh = Client()
    assert not fresh.login(username="operator-user", password=PASSWORD)
    assert fresh.login(username="operator-user", password="N3w-pass-phrase")


# --- CSRF ----------------------------------------------------------------------------------


def _csrf_token(response) -> str:  # type: ignore[no-untyped-def]
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, "the page has no CSRF token"
    return match.group(1).decode()


SUBSCRIBER_FORM = {"msisdn": "+491705550001", "status": "active", "segments": "", "iccid": ""}


def test_csrf_is_enforced_on_forms(make_user) -> None:
    client = logged_in(make_user, "operator", enforce_csrf_checks=True)
    url = reverse("cardmgmt:subscriber_add")
    before = AuditEntry.objects.count()

    assert client.post(url, SUBSCRIBER_FORM).status_code == 403
    assert not Subscriber.objects.filter(msisdn="+491705550001").exists()
    assert client.post(url, {**SUBSCRIBER_FORM, "csrfmiddlewaretoken": "x" * 64}).status_code == 403
    assert AuditEntry.objects.count() == before

    token = _csrf_token(client.get(url))
    ok = client.post(url, {**SUBSCRIBER_FORM, "csrfmiddlewaretoken": token})
    assert ok.status_code == 302
    assert Subscriber.objects.filter(msisdn="+491705550001").exists()


def test_csrf_header_as_htmx_sends_it(make_user) -> None:
    """base.html gives HTMX the token as X-CSRFToken."""
    client = logged_in(make_user, "operator", enforce_csrf_checks=True)
    page = client.get(reverse("dashboard"))
    token = re.search(rb'"X-CSRFToken": "([^"]+)"', page.content).group(1).decode()
    response = client.post(
        reverse("cardmgmt:subscriber_add"), SUBSCRIBER_FORM, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302


def test_csrf_is_enforced_on_login_and_logout(make_user) -> None:
    make_user("support")
    client = Client(enforce_csrf_checks=True)
    login = client.post(reverse("login"), {"username": "support-user", "password": PASSWORD})
    assert login.status_code == 403
    client.force_login(make_user("auditor"))
    assert client.post(reverse("logout")).status_code == 403
    assert client.get(reverse("dashboard")).status_code == 200  # still logged in


def test_csrf_is_enforced_on_session_api_writes(make_user) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user("operator"))
    response = client.post(
        reverse("api:subscriber-list"), {"msisdn": "+491705550002"}, format="json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Subscriber.objects.filter(msisdn="+491705550002").exists()


# --- dashboard and search ------------------------------------------------------------------


def test_dashboard_shows_counts(make_user, subscriber, card_profile) -> None:
    for serial in range(10, 14):
        make_card(card_profile, serial)
    for n in range(2):
        inventory.create_subscriber(actor=ACTOR, msisdn=f"+49170555100{n}")
    client = logged_in(make_user, "support")
    html = client.get(reverse("dashboard")).content.decode()
    counts = dict(re.findall(r'id="count-(\w+)">([\d,]+)<', html))
    assert counts == {"subscribers": "3", "cards": "5"}
    assert re.search(r"Cards not assigned</div><div[^>]*>4<", html)
    assert re.search(r"Card profiles</div><div[^>]*>1<", html)


@pytest.fixture
def searchable(subscriber, card_profile) -> dict[str, object]:
    spare = make_card(card_profile, 20)
    other = inventory.create_subscriber(
        actor=ACTOR, msisdn="+491709000001", card=make_card(card_profile, 21)
    )
    inventory.create_subscriber(actor=ACTOR, msisdn="+491709000002")
    return {"subscriber": subscriber, "spare": spare, "other": other}


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("+4917012345", "subscriber"),  # MSISDN prefix, one hit
        ("4917012345", "subscriber"),  # without +
        ("0049170123", "subscriber"),  # international prefix 00
        (iccid(1), "subscriber"),  # the subscriber's card
        ("262010000000001", "subscriber"),  # its IMSI
        (iccid(21)[:17], "other"),  # ICCID prefix (the spare card shares it)
        (iccid(20), "spare"),  # a card nobody holds
        ("262010000000020", "spare"),  # its IMSI
    ],
)
def test_search_with_one_hit_opens_it(query, target, searchable, make_user) -> None:
    client = logged_in(make_user, "support")
    response = client.get(reverse("search"), {"q": query})
    assert response.status_code == 302
    assert response["Location"] == searchable[target].get_absolute_url()


def test_search_with_several_hits_lists_them(searchable, make_user) -> None:
    client = logged_in(make_user, "support")
    response = client.get(reverse("search"), {"q": "+4917090000"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "+491709000001" in html and "+491709000002" in html
    assert "+491701234567" not in html


def test_search_without_hits(searchable, make_user) -> None:
    client = logged_in(make_user, "support")
    response = client.get(reverse("search"), {"q": "+1555"})
    assert response.status_code == 200
    assert "No subscriber or card matches" in response.content.decode()
    empty = client.get(reverse("search"), {"q": ""})
    assert empty.status_code == 200 and b"Type an MSISDN" in empty.content


# --- the subscriber list -------------------------------------------------------------------


@pytest.fixture
def thirty(card_profile) -> list[Subscriber]:
    """30 subscribers with cards (every other one suspended), every relation a row shows.
    Bulk-created test data: the forms and services are tested below."""
    cards = Card.objects.bulk_create(
        Card(
            iccid=iccid(100 + i),
            imsi=f"26201000000{100 + i:04d}",
            profile=card_profile,
            status="active",
        )
        for i in range(30)
    )
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(
            msisdn=f"+4917344{i:05d}", status="suspended" if i % 2 else "active", card=cards[i]
        )
        for i in range(30)
    )
    gold, basic = Segment.objects.bulk_create([Segment(name="gold"), Segment(name="basic")])
    Subscriber.segments.through.objects.bulk_create(
        Subscriber.segments.through(subscriber=s, segment=gold if i < 10 else basic)
        for i, s in enumerate(subscribers)
    )
    CardAssignment.objects.bulk_create(
        CardAssignment(subscriber=s, card=s.card, reason="test data") for s in subscribers
    )
    return subscribers


def _rows(response) -> list:  # type: ignore[no-untyped-def]
    return [row.record for row in response.context["table"].page.object_list]


def test_subscriber_list_search_filter_sort_and_pages(thirty, make_user) -> None:
    client = logged_in(make_user, "support")
    url = reverse("cardmgmt:subscriber_list")

    first = client.get(url)
    assert [s.msisdn for s in _rows(first)] == [f"+4917344{i:05d}" for i in range(25)]
    assert b'class="next page-item"' in first.content
    second = client.get(url, {"page": 2})
    assert [s.msisdn for s in _rows(second)] == [f"+4917344{i:05d}" for i in range(25, 30)]
    assert b'class="next page-item"' not in second.content

    found = client.get(url, {"q": "+49173440001"})  # 00010..00019
    assert {s.msisdn for s in _rows(found)} == {f"+4917344{i:05d}" for i in range(10, 20)}
    by_iccid = client.get(url, {"q": iccid(107)})
    assert [s.msisdn for s in _rows(by_iccid)] == ["+491734400007"]

    suspended = client.get(url, {"status": "suspended", "q": "+49173440000"})
    assert [s.msisdn for s in _rows(suspended)] == [f"+4917344{i:05d}" for i in (1, 3, 5, 7, 9)]

    descending = client.get(url, {"sort": "-msisdn"})
    assert _rows(descending)[0].msisdn == "+491734400029"
    descending_2 = client.get(url, {"sort": "-msisdn", "page": 2})
    assert [s.msisdn for s in _rows(descending_2)] == [f"+4917344{i:05d}" for i in range(4, -1, -1)]


def test_subscriber_list_filter_by_segment(thirty, make_user) -> None:
    client = logged_in(make_user, "support")
    response = client.get(
        reverse("cardmgmt:subscriber_list"), {"segment": "gold", "status": "suspended"}
    )
    assert response.status_code == 200
    assert [s.msisdn for s in _rows(response)] == [f"+4917344{i:05d}" for i in (1, 3, 5, 7, 9)]


@pytest.mark.parametrize("page", ["999", "abc", "0"])
def test_subscriber_list_bad_page_is_not_a_server_error(page, thirty, make_user) -> None:
    client = logged_in(make_user, "support", raise_request_exception=False)
    response = client.get(reverse("cardmgmt:subscriber_list"), {"page": page})
    assert response.status_code in (200, 404), response.status_code


def test_subscriber_list_bad_filter_shows_a_warning(thirty, make_user) -> None:
    client = logged_in(make_user, "support")
    response = client.get(reverse("cardmgmt:subscriber_list"), {"status": "bogus"})
    assert response.status_code == 200
    assert _rows(response) == []
    assert b"Check the filters" in response.content


def test_htmx_request_gets_only_the_table(thirty, make_user) -> None:
    client = logged_in(make_user, "support")
    url = reverse("cardmgmt:subscriber_list")
    full = client.get(url, {"q": "+49173440000"})
    assert b"<html" in full.content and b"<nav" in full.content and b"filter-form" in full.content

    fragment = client.get(url, {"q": "+49173440000"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert "<table" in html
    for chrome in ("<html", "<body", "navbar", "filter-form"):
        assert chrome not in html, chrome
    assert html.count("+49173440000") == 10  # the filter applies to the fragment too
    assert "+491734400010" not in html

    # A boosted navigation is a whole page.
    boosted = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_BOOSTED="true")
    assert b"<html" in boosted.content


@pytest.mark.parametrize(
    ("url_name", "max_queries"),
    [
        # Session, user, user and group permissions, the page of rows, the choices of the
        # filter form's selects (segments and profiles; profiles only for cards), and for now
        # the COUNT(*) of test_list_page_never_counts_the_table. A query per row adds 25.
        ("cardmgmt:subscriber_list", 8),
        ("cardmgmt:card_list", 7),
    ],
)
def test_list_page_query_count(
    url_name, max_queries, thirty, make_user, django_assert_max_num_queries
) -> None:
    client = logged_in(make_user, "auditor")
    with django_assert_max_num_queries(max_queries):
        response = client.get(reverse(url_name))
    assert len(response.context["table"].page.object_list) == 25


@pytest.mark.parametrize(
    "url_name", ["cardmgmt:subscriber_list", "cardmgmt:card_list", "audit_list"]
)
def test_list_page_never_counts_the_table(url_name, thirty, make_user) -> None:
    """LazyPaginator exists so a page of a million-row list costs no COUNT(*)."""
    client = logged_in(make_user, "administrator")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(url_name)).status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert not counts, counts


# --- subscriber forms ----------------------------------------------------------------------


def test_create_subscriber(admin, card) -> None:
    response = admin.post(
        reverse("cardmgmt:subscriber_add"),
        {
            "msisdn": "+49 170 555-2001",
            "status": "active",
            "segments": "gold, pilot",
            "iccid": card.iccid,
        },
    )
    assert response.status_code == 302
    subscriber = Subscriber.objects.get(msisdn="+491705552001")
    assert response["Location"] == subscriber.get_absolute_url()
    assert subscriber.card == card
    assert sorted(s.name for s in subscriber.segments.all()) == ["gold", "pilot"]
    entry = AuditEntry.objects.get(
        object_type=ContentType.objects.get_for_model(Subscriber),
        object_id=str(subscriber.pk),
        action="create",
    )
    assert (entry.actor_kind, entry.actor_label) == ("user", "administrator-user")
    page = admin.get(response["Location"])
    assert b"Subscriber created." in page.content and card.iccid.encode() in page.content


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"msisdn": "12345"}, "msisdn", "E.164"),
        ({"iccid": iccid(555)}, "iccid", "no card with this ICCID"),
        ({"iccid": bad_luhn(555)}, "iccid", "Luhn"),
        ({"segments": "not a slug!"}, "segments", "slug"),
    ],
)
def test_create_subscriber_bad_input(changes, field, message, admin) -> None:
    before = (Subscriber.objects.count(), AuditEntry.objects.count())
    response = admin.post(reverse("cardmgmt:subscriber_add"), {**SUBSCRIBER_FORM, **changes})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and any(message in e for e in errors[field]), errors
    assert message in response.content.decode()
    assert (Subscriber.objects.count(), AuditEntry.objects.count()) == before


def _edit_form(subscriber: Subscriber, **changes) -> dict[str, str]:  # type: ignore[no-untyped-def]
    form = {
        "msisdn": subscriber.msisdn,
        "status": subscriber.status,
        "segments": ", ".join(s.name for s in subscriber.segments.all()),
        "iccid": subscriber.card.iccid if subscriber.card else "",
    }
    return {**form, **changes}


def test_edit_subscriber(make_user, subscriber) -> None:
    client = logged_in(make_user, "support")
    url = reverse("cardmgmt:subscriber_edit", args=[subscriber.pk])
    form = client.get(url)
    assert form.status_code == 200
    assert form.context["form"].initial["iccid"] == subscriber.card.iccid

    response = client.post(url, _edit_form(subscriber, status="suspended", segments="gold"))
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.status == "suspended"
    assert [s.name for s in subscriber.segments.all()] == ["gold"]
    entry = entries_for(subscriber).filter(action="update").latest("id")
    assert entry.actor_label == "support-user"
    assert entry.before["status"] == "active" and entry.after["status"] == "suspended"


@pytest.mark.parametrize(
    ("changes", "field"), [({"msisdn": "+12"}, "msisdn"), ({"iccid": iccid(555)}, "iccid")]
)
def test_edit_subscriber_bad_input_changes_nothing(changes, field, admin, subscriber) -> None:
    before = (AuditEntry.objects.count(), CardAssignment.objects.count())
    url = reverse("cardmgmt:subscriber_edit", args=[subscriber.pk])
    response = admin.post(url, _edit_form(subscriber, status="suspended", **changes))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    subscriber.refresh_from_db()
    assert (subscriber.msisdn, subscriber.status) == ("+491701234567", "active")
    assert (AuditEntry.objects.count(), CardAssignment.objects.count()) == before


def test_edit_refused_by_the_service_changes_nothing(admin, subscriber, card_profile) -> None:
    """The form is valid, the service refuses the card (it is someone else's): the status
    change in the same form must not be saved either."""
    other = inventory.create_subscriber(
        actor=ACTOR, msisdn="+491705553001", card=make_card(card_profile, 30)
    )
    before = AuditEntry.objects.count()
    url = reverse("cardmgmt:subscriber_edit", args=[subscriber.pk])
    response = admin.post(url, _edit_form(subscriber, status="suspended", iccid=other.card.iccid))
    assert response.status_code == 400
    assert "belongs to subscriber" in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    assert AuditEntry.objects.count() == before


def test_sim_swap_through_the_edit_form(make_user, subscriber, card, card_profile) -> None:
    new_card = make_card(card_profile, 40)
    client = logged_in(make_user, "support")
    url = reverse("cardmgmt:subscriber_edit", args=[subscriber.pk])
    response = client.post(url, _edit_form(subscriber, iccid=new_card.iccid))
    assert response.status_code == 302

    subscriber.refresh_from_db()
    assert subscriber.card == new_card
    history = list(CardAssignment.objects.filter(subscriber=subscriber).order_by("assigned", "id"))
    assert [(a.card_id, a.released is None) for a in history] == [
        (card.pk, False),
        (new_card.pk, True),
    ]
    assert history[1].reason == "SIM swap"
    card.refresh_from_db()
    new_card.refresh_from_db()
    assert (card.status, new_card.status) == ("retired", "active")

    swap = entries_for(subscriber).get(message__startswith="SIM swap")
    assert swap.message == f"SIM swap {card.iccid} → {new_card.iccid}"
    assert (swap.actor_kind, swap.actor_label) == ("user", "support-user")
    assert swap.before["card"] == card.pk and swap.after["card"] == new_card.pk
    assert entries_for(card).filter(request_id=swap.request_id, after__status="retired").exists()

    page = client.get(subscriber.get_absolute_url()).content.decode()
    assert card.iccid in page and new_card.iccid in page and "SIM swap" in page


# --- key sets ------------------------------------------------------------------------------

KIC, KID = "C0FFEE00112233445566778899AABBCC", "DEADBEEF0011223344556677889900AA"


def test_set_key_set_never_shows_keys(admin, card) -> None:
    url = reverse("cardmgmt:card_keyset", args=[card.pk])
    response = admin.post(url, {"kvn": 3, "algorithm": "aes128", "kic": KIC, "kid": KID, "kik": ""})
    assert response.status_code == 302 and response["Location"] == card.get_absolute_url()
    keyset = KeySet.objects.get(card=card, kvn=3)
    assert crypto.unseal(keyset.kic, "kic") == bytes.fromhex(KIC)
    assert crypto.unseal(keyset.kid, "kid") == bytes.fromhex(KID)
    assert keyset.kik is None

    entry = entries_for(keyset).filter(action="create").latest("id")
    pages = {
        "card": admin.get(response["Location"]),
        "form": admin.get(url),
        "audit entry": admin.get(entry.get_absolute_url()),
        "audit log": admin.get(reverse("audit_list")),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        text = page.content.decode().lower()
        assert KIC.lower() not in text and KID.lower() not in text, f"{name} shows a key"
    assert sorted(k.kvn for k in pages["card"].context["object"].keysets.all()) == [1, 3]
    assert "***" in pages["audit entry"].content.decode()


def test_bad_key_set_form_does_not_echo_keys(admin, card) -> None:
    url = reverse("cardmgmt:card_keyset", args=[card.pk])
    before = KeySet.objects.filter(card=card).count()
    response = admin.post(url, {"kvn": 3, "algorithm": "aes128", "kic": KIC, "kid": "00" * 8})
    assert response.status_code == 400
    assert "16 bytes" in response.content.decode()
    assert KIC.lower() not in response.content.decode().lower()
    assert KeySet.objects.filter(card=card).count() == before


# --- API tokens ----------------------------------------------------------------------------


def test_token_is_shown_once_and_works(make_user) -> None:
    client = logged_in(make_user, "support")
    created = client.post(reverse("token_add"), {"name": "ci", "write_enabled": "on"})
    assert created.status_code == 302 and created["Location"] == reverse("token_list")

    page = client.get(reverse("token_list")).content.decode()
    match = re.search(r'id="new-token-key">(pt_[^<]+)</code>', page)
    assert match, "the new key is not shown"
    key = match.group(1)
    token = ApiToken.objects.get(name="ci")
    assert token.key_hash == hash_token_secret(key) and key not in token.key_hash
    assert token.write_enabled
    assert "new_token_key" not in client.session

    again = client.get(reverse("token_list")).content.decode()
    assert key not in again and "new-token-key" not in again
    assert f"pt_{token.prefix}" in again  # listed by its prefix

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(reverse("api:subscriber-list")).status_code == 200

    revoked = client.post(reverse("token_revoke", args=[token.pk]))
    assert revoked.status_code == 302
    token.refresh_from_db()
    assert token.revoked is not None
    assert api.get(reverse("api:subscriber-list")).status_code == 401
    assert entries_for(token).filter(message="revoked").count() == 1
    assert (
        reverse("token_revoke", args=[token.pk])
        not in client.get(reverse("token_list")).content.decode()
    )


def test_token_form_errors(make_user) -> None:
    client = logged_in(make_user, "support")
    past = (timezone.now() - datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    response = client.post(reverse("token_add"), {"name": "old", "expires": past})
    assert response.status_code == 400
    assert "expiry must be in the future" in response.content.decode()
    assert client.post(reverse("token_add"), {"name": ""}).status_code == 400
    assert not ApiToken.objects.exists()


def test_tokens_of_others(make_user) -> None:
    owner = make_user("operator")
    token, _key = services.create_api_token(actor=ACTOR, user=owner, name="owned")
    support = logged_in(make_user, "support")
    assert "owned" not in support.get(reverse("token_list")).content.decode()
    assert support.post(reverse("token_revoke", args=[token.pk])).status_code == 403
    token.refresh_from_db()
    assert token.revoked is None

    admin = logged_in(make_user, "administrator")
    assert "owned" in admin.get(reverse("token_list")).content.decode()
    assert admin.post(reverse("token_revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked is not None


# --- the audit log -------------------------------------------------------------------------


@pytest.fixture
def history(subscriber, make_user, api_client_for) -> dict[str, object]:
    """Entries by a command (fixtures), a UI user and an API token."""
    ui = logged_in(make_user, "operator")
    edited = ui.post(
        reverse("cardmgmt:subscriber_edit", args=[subscriber.pk]),
        _edit_form(subscriber, status="suspended"),
    )
    api = api_client_for("administrator")
    created = api.post(reverse("api:subscriber-list"), {"msisdn": "+491705554001"}, format="json")
    deleted = api.delete(reverse("api:subscriber-detail", args=[created.json()["id"]]))
    return {
        "ui_request": edited["X-Request-ID"],
        "api_delete_request": deleted["X-Request-ID"],
        "deleted_id": str(created.json()["id"]),
    }


def _audit_rows(client: Client, **query) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    response = client.get(f"{reverse('audit_list')}?{urlencode(query, doseq=True)}")
    assert response.status_code == 200
    return _rows(response)


def test_audit_log_list_and_detail(history, make_user, subscriber) -> None:
    auditor = logged_in(make_user, "auditor")
    rows = _audit_rows(auditor)
    assert rows == list(AuditEntry.objects.order_by("-time", "-id")[:25])

    entry = entries_for(subscriber).get(request_id=history["ui_request"])
    page = auditor.get(entry.get_absolute_url())
    assert page.status_code == 200
    html = page.content.decode()
    assert "operator-user" in html and history["ui_request"] in html
    changed = [row for row in page.context["rows"] if row[3]]
    assert [row[:3] for row in changed if row[0] == "status"] == [("status", "active", "suspended")]
    assert 'class="diff-changed"' in html


def test_audit_log_filters(history, make_user, subscriber) -> None:
    auditor = logged_in(make_user, "auditor")

    by_token = _audit_rows(auditor, actor_kind="token")
    assert by_token and all(e.actor_kind == "token" for e in by_token)
    assert set(by_token) == set(AuditEntry.objects.filter(actor_kind="token"))

    deletes = _audit_rows(auditor, action="delete")
    assert [(e.action, e.object_id) for e in deletes] == [("delete", history["deleted_id"])]

    one_request = _audit_rows(auditor, request_id=history["ui_request"])
    assert one_request and {e.request_id for e in one_request} == {history["ui_request"]}

    subscriber_type = ContentType.objects.get_for_model(Subscriber)
    for_subscriber = _audit_rows(
        auditor, object_type=subscriber_type.pk, object_id=str(subscriber.pk)
    )
    assert set(for_subscriber) == set(
        AuditEntry.objects.filter(object_type=subscriber_type, object_id=str(subscriber.pk))
    )
    assert len(for_subscriber) >= 3  # created, card assigned, edited

    by_actor = _audit_rows(auditor, actor="OPERATOR-us")
    assert by_actor and {e.actor_label for e in by_actor} == {"operator-user"}

    kinds = _audit_rows(auditor, actor_kind=["token", "user"], action="update")
    assert {(e.actor_kind, e.action) for e in kinds} <= {("token", "update"), ("user", "update")}
    assert any(e.actor_kind == "user" for e in kinds)

    now = timezone.now()
    assert _audit_rows(auditor, since=(now + datetime.timedelta(minutes=1)).isoformat()) == []
    everything = AuditEntry.objects.count()
    assert len(
        _audit_rows(auditor, until=(now + datetime.timedelta(minutes=1)).isoformat())
    ) == min(everything, 25)


def test_card_form_refuses_a_known_iccid(admin, card, card_profile) -> None:
    before = (Card.objects.count(), AuditEntry.objects.count())
    response = admin.post(
        reverse("cardmgmt:card_add"),
        {
            "iccid": card.iccid,
            "imsi": "262010000000998",
            "profile": card_profile.pk,
            "status": "in_stock",
        },
    )
    assert response.status_code == 400
    assert "iccid" in response.context["form"].errors
    assert (Card.objects.count(), AuditEntry.objects.count()) == before
