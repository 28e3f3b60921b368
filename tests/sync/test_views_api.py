"""UI pages and API of the sync app for every role (tests/sync/role_matrix.py), and the
privacy of address book contents."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.context import Actor
from sync import services
from sync.models import Device, HeldDelete, SyncSession
from tests.sync.role_matrix import SYNC_MATRIX

ACTOR = Actor.command("tests")
VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Secret;Sam\r\nFN:Sam Secret\r\nTEL:+491709999999\r\nEND:VCARD\r\n"


@pytest.fixture
def objs(profile, subscriber):  # type: ignore[no-untyped-def]
    contact = services.save_contact(actor=ACTOR, subscriber=subscriber, vcard=VCARD)
    device = Device.objects.create(subscriber=subscriber, dev_id="IMEI:356938035643809",
                                   imei="356938035643809")  # fmt: skip
    session = SyncSession.objects.create(profile=profile, subscriber=subscriber, token="t1",
                                         client_session_id="1", client_dev_id=device.dev_id,
                                         syncml_version="1.2", encoding="xml", device=device)  # fmt: skip
    held = HeldDelete.objects.create(session=session, subscriber=subscriber, datastore="contacts",
                                     guids=[contact.guid], store_size=1)  # fmt: skip
    return {"sync_profile": profile, "sync_template": profile.template, "sync_session": session,
            "sync_device": device, "subscriber": subscriber, "sync_contact": contact,
            "sync_held": held}  # fmt: skip


def _url(name, rule, objs):  # type: ignore[no-untyped-def]
    return reverse(name, kwargs={"pk": objs[rule["obj"]].pk} if rule.get("obj") else None)


@pytest.mark.parametrize("name", sorted(SYNC_MATRIX))
def test_reads_per_role(name, objs, make_user, api_client_for):  # type: ignore[no-untyped-def]
    rule = SYNC_MATRIX[name]
    url = _url(name, rule, objs)
    for role in ("administrator", "operator", "support", "auditor"):
        if rule["kind"] == "api":
            client = api_client_for(role)
        else:
            client = Client()
            client.force_login(make_user(role, username=f"{role}-{name.replace(':', '.')}"))
        expected = rule.get("get_status", {}).get(role, 200 if role in rule["read"] else 403)
        assert client.get(url).status_code == expected, (name, role)
    anon = Client().get(url).status_code
    if rule.get("public"):
        assert anon == rule["get_status"]["anonymous"]
    else:
        assert anon in (302, 401, 403), (name, anon)


def test_every_sync_url_is_in_the_matrix() -> None:
    from django.urls import get_resolver

    from tests.portal.test_role_matrix import project_urls  # type: ignore[import-not-found]

    del get_resolver
    names = {n for n in project_urls() if n.startswith("sync:") or n == "syncml"
             or n.split(":")[-1].split("-")[0] in {"syncprofile", "syncprofiletemplate",
                                                   "syncsession", "device", "contact",
                                                   "helddelete"}}  # fmt: skip
    assert names == set(SYNC_MATRIX)


def test_contents_only_with_permission(objs, make_user, api_client_for):  # type: ignore[no-untyped-def]
    url = reverse("sync:addressbook", kwargs={"pk": objs["subscriber"].pk})
    support = Client()
    support.force_login(make_user("support"))
    page = support.get(url).content.decode()
    assert "1 contacts" in page and "Sam Secret" not in page
    admin = Client()
    admin.force_login(make_user("administrator"))
    assert "Sam Secret" in admin.get(url).content.decode()
    api = api_client_for("support").get(reverse("api:contact-list")).json()
    assert "fields" not in api["results"][0] and "display_name" not in api["results"][0]
    api = api_client_for("administrator").get(reverse("api:contact-list")).json()
    assert api["results"][0]["display_name"] == "Sam Secret"


def test_subscriber_page_shows_the_sync_panel(objs, make_user):  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(make_user("support"))
    page = c.get(objs["subscriber"].get_absolute_url()).content.decode()
    assert "Synchronization" in page and "1 contacts" in page and "Sam Secret" not in page


def test_held_delete_approve_via_ui(objs, make_user):  # type: ignore[no-untyped-def]
    held = objs["sync_held"]
    c = Client()
    c.force_login(make_user("support"))
    url = reverse("sync:helddelete_decide", kwargs={"pk": held.pk})
    assert c.post(url, {"decision": "approve"}).status_code == 403
    c.force_login(make_user("operator"))
    assert c.post(url, {"decision": "approve"}).status_code == 302
    held.refresh_from_db()
    assert held.status == "approved"
    assert objs["sync_contact"].__class__.objects.get(pk=objs["sync_contact"].pk).deleted


def test_api_profile_create_shows_secret_once(subscriber, sync_template, api_client_for):  # type: ignore[no-untyped-def]
    api = api_client_for("operator")
    r = api.post(reverse("api:syncprofile-list"), {"subscriber": subscriber.msisdn,
                                                   "interval_minutes": 60}, format="json")  # fmt: skip
    assert r.status_code == 201, r.content
    body = r.json()
    assert len(body["secret"]) == 20 and body["overrides"] == ["interval_minutes"]
    again = api.get(reverse("api:syncprofile-detail", kwargs={"pk": body["id"]})).json()
    assert "secret" not in again and "secret_sealed" not in again
    r = api.patch(reverse("api:syncprofile-detail", kwargs={"pk": body["id"]}),
                  {"conflict_policy": "server_wins"}, format="json")  # fmt: skip
    assert r.status_code == 200 and r.json()["version"] == 2
    assert (
        api_client_for("support")
        .post(reverse("api:syncprofile-reset-credentials", kwargs={"pk": body["id"]}))
        .status_code
        == 403
    )
