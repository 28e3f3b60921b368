"""Server-to-handset large objects, the device inventory datastore, handset changes, the SAN
builder, item status codes (209, 202), session expiry, the profile/template forms and the
sync applet's OTA parameters."""

from __future__ import annotations

import base64
import datetime
import json
import os

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.context import Actor
from sync import services
from sync.models import (
    Contact,
    Device,
    DeviceEvent,
    HeldDelete,
    InventoryItem,
    ItemMap,
    SyncProfile,
    SyncProfileTemplate,
    SyncSession,
)
from sync.simclient import SimClient
from sync.stores import INVENTORY_TYPE
from sync.syncml import Status, Sync
from sync.syncml.paramrecord import decode_param_record
from sync.syncml.san import decode_san, verify_san

ACTOR = Actor.command("tests")
URL = "http://testserver/syncml"


def card(name: str, tel: str = "", email: str = "") -> str:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"N:{name};", f"FN:{name}"]
    if tel:
        lines.append(f"TEL;TYPE=CELL:{tel}")
    if email:
        lines.append(f"EMAIL:{email}")
    return "\r\n".join([*lines, "END:VCARD"]) + "\r\n"


@pytest.fixture
def post(client: Client):
    def send(body: bytes, ctype: str, url: str) -> tuple[int, bytes]:
        response = client.post(url.replace("http://testserver", ""), data=body, content_type=ctype)
        return response.status_code, response.content

    return send


@pytest.fixture
def phone(post, profile, secret) -> SimClient:
    return SimClient(post=post, url=URL, username=profile.username, password=secret)


def statuses(msg, code: int) -> list[Status]:  # type: ignore[no-untyped-def]
    return [c for c in msg.commands if isinstance(c, Status) and c.data == code]


# --------------------------------------------------------------------- large objects down


def test_large_photo_goes_to_the_handset_in_chunks(post, profile, secret):  # type: ignore[no-untyped-def]
    photo = os.urandom(12 * 1024)  # > 10 KB binary, ~16 KB as base64
    vcard = ("BEGIN:VCARD\r\nVERSION:3.0\r\nN:Photo;Pia\r\nFN:Pia Photo\r\n"
             f"PHOTO;ENCODING=b;TYPE=JPEG:{base64.b64encode(photo).decode()}\r\nEND:VCARD\r\n")  # fmt: skip
    services.save_contact(actor=ACTOR, subscriber=profile.subscriber, vcard=vcard)
    phone = SimClient(post=post, url=URL, username=profile.username, password=secret,
                      max_msg_size=4096)  # fmt: skip
    out = phone.sync(201)
    assert out["received"] == 1
    # Several messages of package 4, MoreData on all chunks but the last, Size on the first.
    chunked = [
        it
        for msg in phone.log
        for c in msg.commands
        if isinstance(c, Sync)
        for sub in c.commands
        for it in sub.items
    ]
    assert len(chunked) >= 4 and all(it.more_data for it in chunked[:-1])
    assert not chunked[-1].more_data
    assert chunked[0].meta.size is not None
    (declared, got), = phone.large_objects  # fmt: skip
    assert declared == got
    assert len(statuses_sent(phone, 213)) == len(chunked) - 1
    # The handset holds the photo byte for byte, and the server recorded its shadow.
    (held,) = phone.items.values()
    from sync.merge import parse_contact

    assert base64.b64decode(parse_contact(held)["PHOTO"]["data"]) == photo
    assert ItemMap.objects.filter(shadow_hash="").count() == 0
    assert ItemMap.objects.exclude(luid=None).count() == 1
    assert phone.sync(200)["received"] == 0  # acknowledged: not sent again


def statuses_sent(phone: SimClient, code: int) -> list[Status]:
    return [s for msg in phone.sent for s in statuses(msg, code)]


# --------------------------------------------------------------------- inventory datastore


def inventory_phone(post, profile, secret, dev_id="IMEI:356938035643809") -> SimClient:  # type: ignore[no-untyped-def]
    return SimClient(post=post, url=URL, username=profile.username, password=secret,
                     dev_id=dev_id, server_uri="inventory", client_uri="./inventory",
                     ctype=INVENTORY_TYPE)  # fmt: skip


def test_inventory_datastore_stores_validates_and_lets_the_handset_win(post, profile, secret):  # type: ignore[no-untyped-def]
    phone = inventory_phone(post, profile, secret)
    items = {
        "d": json.dumps({"kind": "device", "imei": "356938035643809", "language": "de"}),
        "c": json.dumps(
            {"kind": "component", "name": "firmware", "version": "2.4.1", "size": 33554432}
        ),
        "a": json.dumps(
            {
                "kind": "application",
                "name": "com.example.wallet",
                "version": "1.2",
                "size": 482133,
                "vendor": "Example",
            }
        ),
        "bad": json.dumps({"kind": "application", "name": "x", "size": -1}),
    }
    phone.sync(201, adds=items)
    rows = {r.name: r for r in InventoryItem.objects.filter(subscriber=profile.subscriber)}
    assert set(rows) == {"356938035643809", "firmware", "com.example.wallet"}
    assert rows["firmware"].size == 33554432 and rows["firmware"].kind == "component"
    assert rows["com.example.wallet"].fields["vendor"] == "Example"  # other keys are kept
    reply_statuses = [s for msg in phone.log for s in statuses(msg, 400)]
    assert [s.source_refs for s in reply_statuses] == [["bad"]]
    # A server-side edit loses against the handset's copy (the handset is the source of truth).
    InventoryItem.objects.filter(pk=rows["firmware"].pk).update(version="9.9")
    phone.items.pop("bad")
    phone.sync(200, replaces={"c": json.dumps({"kind": "component", "name": "firmware",
                                               "version": "2.5.0", "size": 1})})  # fmt: skip
    rows["firmware"].refresh_from_db()
    assert rows["firmware"].version == "2.5.0" and rows["firmware"].size == 1
    # Shown on the device page.
    device = Device.objects.get(subscriber=profile.subscriber)
    admin = Client()
    from django.contrib.auth import get_user_model

    admin.force_login(get_user_model().objects.create_superuser("inv-admin", password="x"))
    page = admin.get(reverse("sync:device_detail", args=[device.pk])).content.decode()
    assert "com.example.wallet" in page and "2.5.0" in page


def test_inventory_item_of_the_wrong_type_is_415(post, profile, secret):  # type: ignore[no-untyped-def]
    phone = inventory_phone(post, profile, secret)
    phone.ctype = "text/vcard"
    phone.sync(201, adds={"x": card("Not Inventory")})
    assert InventoryItem.objects.count() == 0
    assert [s for msg in phone.log for s in statuses(msg, 415)]


# --------------------------------------------------------------------- handset change


def test_new_imei_is_a_handset_change_in_ui_and_api(post, profile, secret, make_user,  # type: ignore[no-untyped-def]
                                                    api_client_for):  # fmt: skip
    old = SimClient(post=post, url=URL, username=profile.username, password=secret,
                    dev_id="IMEI:356938035643809")  # fmt: skip
    old.sync(201)
    new = SimClient(post=post, url=URL, username=profile.username, password=secret,
                    dev_id="IMEI:490154203237518")  # fmt: skip
    new.sync(201)
    devices = {d.imei: d for d in Device.objects.filter(subscriber=profile.subscriber)}
    assert not devices["356938035643809"].current and devices["490154203237518"].current
    event = DeviceEvent.objects.get(kind="handset_change")
    assert event.device == devices["490154203237518"]
    assert event.previous_imei == "356938035643809"
    support = Client()
    support.force_login(make_user("support"))
    page = support.get(reverse("sync:device_detail", args=[event.device.pk])).content.decode()
    assert "Handset change" in page and "356938035643809" in page
    api = api_client_for("support").get(reverse("api:device-detail", args=[event.device.pk]))
    kinds = [e["kind"] for e in api.json()["events"]]
    assert "handset_change" in kinds
    # The same handset again is not a change.
    new.sync(200)
    assert DeviceEvent.objects.filter(kind="handset_change").count() == 1


# --------------------------------------------------------------------- SAN builder


def test_server_alert_names_the_datastores_and_carries_a_valid_digest(profile, secret):  # type: ignore[no-untyped-def]
    data = services.build_server_alert(profile, sync_type=206, session_id=0x1_2345)
    san = decode_san(data)
    assert san.session_id == 0x2345  # 16 bits
    assert san.server_id == profile.server_url
    assert [(s.sync_type, s.server_uri) for s in san.syncs] == [
        (206, ds["remote_uri"]) for ds in profile.datastores
    ]
    assert san.syncs[0].content_type == 0x07  # text/x-vcard
    assert verify_san(data, password=secret, nonce=b"")
    assert not verify_san(data, password=secret + "x", nonce=b"")
    with pytest.raises(ValidationError):
        services.build_server_alert(profile, sync_type=200)


# --------------------------------------------------------------------- status codes


def titled(title: str) -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Eve;\r\nFN:Eve\r\nTITLE:{title}\r\nEND:VCARD\r\n"


def test_duplicate_policy_answers_209(phone, profile):  # type: ignore[no-untyped-def]
    SyncProfile.objects.filter(pk=profile.pk).update(conflict_policy="duplicate")
    phone.sync(201, adds={"1": titled("Engineer")})
    contact = Contact.objects.get(subscriber=profile.subscriber)
    services.save_contact(actor=ACTOR, subscriber=profile.subscriber, contact=contact,
                          vcard=titled("Manager"))  # fmt: skip
    phone.sync(200, replaces={"1": titled("Director")})  # the same field on both sides
    replace_status = [s for msg in phone.log[-3:] for s in msg.commands
                      if isinstance(s, Status) and s.cmd == "Replace"]  # fmt: skip
    assert [s.data for s in replace_status] == [209]
    titles = sorted(c.fields["TITLE"] for c in Contact.objects.filter(deleted=False))
    assert titles == ["Director", "Manager"]


def test_held_deletes_answer_202(phone, profile):  # type: ignore[no-untyped-def]
    phone.sync(201, adds={str(i): card(f"P{i}", f"+4917010000{i:02d}") for i in range(10)})
    phone.sync(200, deletes=[str(i) for i in range(8)])
    delete_status = [s.data for msg in phone.log[-3:] for s in msg.commands
                     if isinstance(s, Status) and s.cmd == "Delete"]  # fmt: skip
    assert delete_status == [202] * 8
    assert len(HeldDelete.objects.get().guids) == 8
    phone.sync(200, deletes=["9"])  # under the guard: applied, 200
    assert [s.data for msg in phone.log[-3:] for s in msg.commands
            if isinstance(s, Status) and s.cmd == "Delete"] == [200]  # fmt: skip


# --------------------------------------------------------------------- housekeeping


def test_periodic_task_expires_idle_sessions(profile, settings):  # type: ignore[no-untyped-def]
    from sync.tasks import expire_sessions_task

    old = timezone.now() - datetime.timedelta(hours=1)
    stale = SyncSession.objects.create(profile=profile, subscriber=profile.subscriber, token="s1",
                                       client_session_id="1", client_dev_id="IMEI:1",
                                       syncml_version="1.2", encoding="xml", last_activity=old,
                                       state={"phase": "sync"})  # fmt: skip
    fresh = SyncSession.objects.create(profile=profile, subscriber=profile.subscriber, token="s2",
                                       client_session_id="2", client_dev_id="IMEI:1",
                                       syncml_version="1.2", encoding="xml")  # fmt: skip
    assert expire_sessions_task.apply().get() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "abandoned" and stale.state == {} and fresh.status == "active"
    entry = settings.CELERY_BEAT_SCHEDULE["expire-stale-sync-sessions"]
    assert entry["task"] == expire_sessions_task.name


# --------------------------------------------------------------------- forms


@pytest.fixture
def admin_client(make_user) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(make_user("operator", username="sync-forms-operator"))
    return c


def settings_post(**extra) -> dict:  # type: ignore[no-untyped-def]
    data = {
        "server_url": "https://sync.example.org/syncml",
        "datastores": json.dumps(
            [
                {
                    "local_name": "Contacts",
                    "remote_uri": "contacts",
                    "content_type": "text/x-vcard",
                    "mode": 200,
                }
            ]
        ),
        "interval_minutes": "60",
        "trigger_ota": "on",
        "conflict_policy": "server_wins",
    }
    data.update(extra)
    return data


def test_template_forms(admin_client, sync_template):  # type: ignore[no-untyped-def]
    assert admin_client.get(reverse("sync:template_add")).status_code == 200
    r = admin_client.post(reverse("sync:template_add"), settings_post(name="gold"))
    created = SyncProfileTemplate.objects.get(name="gold")
    assert r.status_code == 302 and r["Location"] == created.get_absolute_url()
    assert created.interval_minutes == 60 and not created.trigger_timer
    # Errors are form errors, never 500s.
    bad = admin_client.post(reverse("sync:template_add"),
                            settings_post(name="x", datastores="[{]"))  # fmt: skip
    assert bad.status_code == 400 and "not JSON" in bad.content.decode()
    bad = admin_client.post(reverse("sync:template_add"),
                            settings_post(name="y", datastores='[{"mode": 999}]'))  # fmt: skip
    assert bad.status_code == 400 and "lacks" in bad.content.decode()
    clash = admin_client.post(reverse("sync:template_edit", args=[created.pk]),
                              settings_post(name=sync_template.name))  # fmt: skip
    assert clash.status_code == 400 and "exists" in clash.content.decode()
    ok = admin_client.post(reverse("sync:template_edit", args=[created.pk]),
                           settings_post(name="gold", interval_minutes="30"))  # fmt: skip
    assert ok.status_code == 302
    created.refresh_from_db()
    assert created.interval_minutes == 30


def test_profile_forms_and_secret_shown_once(admin_client, subscriber, sync_template):  # type: ignore[no-untyped-def]
    bad = admin_client.post(reverse("sync:profile_add"), {"msisdn": "+4900000"})
    assert bad.status_code == 400 and "no subscriber" in bad.content.decode()
    r = admin_client.post(reverse("sync:profile_add"), {"msisdn": subscriber.msisdn,
                                                       "template": sync_template.pk})  # fmt: skip
    profile = SyncProfile.objects.get(subscriber=subscriber)
    assert r.status_code == 302 and r["Location"] == profile.get_absolute_url()
    first = admin_client.get(profile.get_absolute_url()).content.decode()
    assert 'id="new-secret"' in first
    secret = first.split('id="new-secret">')[1].split("<")[0]
    assert len(secret) == 20
    assert 'id="new-secret"' not in admin_client.get(profile.get_absolute_url()).content.decode()
    again = admin_client.post(reverse("sync:profile_add"), {"msisdn": subscriber.msisdn})
    assert again.status_code == 400 and "already has" in again.content.decode()
    # Overrides: the ticked settings are the subscriber's own, the rest follow the template.
    edit = admin_client.post(reverse("sync:profile_edit", args=[profile.pk]),
                             {**settings_post(), "template": sync_template.pk,
                              "overrides": ["interval_minutes"]})  # fmt: skip
    assert edit.status_code == 302
    profile.refresh_from_db()
    assert profile.overrides == ["interval_minutes"] and profile.interval_minutes == 60
    assert profile.server_url == sync_template.server_url  # not overridden: the template's
    assert profile.version == 2
    bad = admin_client.post(reverse("sync:profile_edit", args=[profile.pk]),
                            {**settings_post(interval_minutes="-1"), "overrides": []})  # fmt: skip
    assert bad.status_code == 400
    # Reset: POST only, a new secret shown once, a new record version.
    assert admin_client.get(reverse("sync:profile_reset_credentials", args=[profile.pk])
                            ).status_code == 405  # fmt: skip
    r = admin_client.post(reverse("sync:profile_reset_credentials", args=[profile.pk]))
    assert r.status_code == 302
    page = admin_client.get(profile.get_absolute_url()).content.decode()
    new_secret = page.split('id="new-secret">')[1].split("<")[0]
    assert new_secret != secret
    profile.refresh_from_db()
    assert profile.version == 3


def test_forms_need_change_permissions(make_user, profile):  # type: ignore[no-untyped-def]
    support = Client()
    support.force_login(make_user("support", username="sync-forms-support"))
    assert support.get(reverse("sync:template_add")).status_code == 403
    assert support.post(reverse("sync:profile_reset_credentials", args=[profile.pk])
                        ).status_code == 403  # fmt: skip
    page = support.get(profile.get_absolute_url()).content.decode()
    assert "Reset device credentials" not in page


# --------------------------------------------------------------------- OTA parameters


def test_applet_operation_parameters(card, profile, secret):  # type: ignore[no-untyped-def]
    from cardmgmt.ota import syncapplet

    tar = syncapplet.TAR.hex().upper()
    assert services.applet_operation_parameters(card=card, operation="trigger_sync") == {"tar": tar}
    push = services.applet_operation_parameters(card=card, operation="push_params")
    assert push["tar"] == tar and push["version"] == profile.version
    record = decode_param_record(bytes.fromhex(push["record"]))
    assert record.version == profile.version and record.username == profile.username
    assert record.secret == secret and record.server_url == profile.server_url
    with pytest.raises(ValidationError):
        services.applet_operation_parameters(card=card, operation="audit")
    # The OTA side records what the card holds once the push completed.
    assert services.record_card_version_for_card(actor=ACTOR, card=card,
                                                 version=push["version"]).card_is_current  # fmt: skip
    with pytest.raises(ValidationError):
        services.record_card_version_for_card(actor=ACTOR, card=card, version=profile.version + 1)


def test_push_params_needs_a_sync_profile(subscriber):  # type: ignore[no-untyped-def]
    card = subscriber.card  # a subscriber without a sync profile
    with pytest.raises(ValidationError):
        services.applet_operation_parameters(card=card, operation="push_params")
    assert services.record_card_version_for_card(actor=ACTOR, card=card, version=1) is None


def test_the_server_states_its_own_max_msg_size_whatever_the_handsets(post, profile, secret):  # type: ignore[no-untyped-def]
    """MaxMsgSize in a header is what its sender takes: a handset with a 4 KB buffer gets
    replies cut to 4 KB, and is told the server takes up to its own limit."""
    from sync.services.engine import SERVER_MAX_MSG_SIZE

    small = SimClient(post=post, url=URL, username=profile.username, password=secret,
                      max_msg_size=4096)  # fmt: skip
    small.sync(201, adds={str(i): f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:P{i}\r\nN:P{i}\r\nEND:VCARD\r\n"
                          for i in range(60)})  # fmt: skip
    assert {reply.hdr.meta.max_msg_size for reply in small.log} == {SERVER_MAX_MSG_SIZE}
    # The handset filled its package 3 to the server's limit: one message for the 60 cards.
    syncs = [m for m in small.sent if any(c.NAME == "Sync" for c in m.commands)]
    assert len(syncs) == 1
