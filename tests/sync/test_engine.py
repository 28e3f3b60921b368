"""The SyncML server driven in-process by a simulated handset (sync/simclient.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from sync.messagelog import unpack
from sync.models import AuthFailure, Contact, HeldDelete, ItemMap, SyncMessage, SyncSession
from sync.simclient import SimClient
from sync.syncml import parse_message
from sync.syncml.auth import AUTH_MD5

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
        path = url.replace("http://testserver", "")
        response = client.post(path, data=body, content_type=ctype)
        return response.status_code, response.content

    return send


@pytest.fixture
def phone(post, profile, secret) -> SimClient:
    return SimClient(post=post, url=URL, username=profile.username, password=secret)


def live(profile) -> list[Contact]:  # type: ignore[no-untyped-def]
    return list(Contact.objects.filter(subscriber=profile.subscriber, deleted=False))


def test_first_sync_is_slow_then_two_way(phone, profile):  # type: ignore[no-untyped-def]
    out = phone.sync(200, adds={"1": card("Ann", "+491701111111")})
    assert out["alert"] == 201  # no state yet: 508 and a slow sync
    assert len(live(profile)) == 1
    assert phone.sync(200)["alert"] == 200
    session = SyncSession.objects.order_by("-id").first()
    assert session.status == "completed"


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_encodings_and_md5(post, profile, secret, encoding, version):  # type: ignore[no-untyped-def]
    phone = SimClient(post=post, url=URL, username=profile.username, password=secret,
                      encoding=encoding, version=version, auth=AUTH_MD5)  # fmt: skip
    phone.sync(201, adds={"1": card("Ann", "+491701111111")})
    assert phone.log[0].hdr.ver_dtd == version
    assert phone.sync(200)["alert"] == 200
    assert len(live(profile)) == 1


def test_server_changes_reach_the_handset_and_map(phone, profile):  # type: ignore[no-untyped-def]
    from portal.context import Actor
    from sync import services

    phone.sync(201)
    services.save_contact(actor=Actor.command("t"), subscriber=profile.subscriber,
                          vcard=card("Bea", email="bea@example.org"))  # fmt: skip
    out = phone.sync(200)
    assert out["received"] == 1
    assert ItemMap.objects.filter(luid__isnull=False).count() == 1
    assert phone.sync(200)["received"] == 0  # mapped and acknowledged: not sent again


def test_slow_sync_twins_never_duplicate(phone, profile):  # type: ignore[no-untyped-def]
    from portal.context import Actor
    from sync import services

    services.save_contact(actor=Actor.command("t"), subscriber=profile.subscriber,
                          vcard=card("Carol White", "0170 2222222"))  # fmt: skip
    phone.sync(201, adds={"1": card("carol  white", "+49 170 2222222", "c@example.org")})
    rows = live(profile)
    assert len(rows) == 1
    assert rows[0].fields["EMAIL"][0]["v"] == "c@example.org"


def test_resent_message_gets_the_cached_reply(client, phone, profile):  # type: ignore[no-untyped-def]
    phone.sync(201, adds={"1": card("Ann", "+491701111111")})
    msg = SyncMessage.objects.order_by("id").all()[1]
    session = msg.session
    stored = bytes(msg.response)
    assert stored[:1] == b"\x78"  # the resend cache is stored compressed
    body = parse_message(unpack(stored))
    assert body.hdr.resp_uri
    count = Contact.objects.count()
    # Re-POSTing a message of a finished session: same bytes back, nothing applied again.
    from sync.syncml import to_xml

    first_reply = unpack(stored)
    request = parse_message(to_xml(phone.log[0]))  # any message; we only need its MsgID form
    assert request is not None
    r = client.post(f"/syncml?sessionid={session.token}", data=_resend_body(msg),
                    content_type="application/vnd.syncml+xml")  # fmt: skip
    assert r.status_code == 200 and r.content == first_reply
    assert Contact.objects.count() == count
    assert SyncMessage.objects.get(pk=msg.pk).resent == 1
    # A row logged before responses were compressed is served as it is.
    SyncMessage.objects.filter(pk=msg.pk).update(response=first_reply)
    r = client.post(f"/syncml?sessionid={session.token}", data=_resend_body(msg),
                    content_type="application/vnd.syncml+xml")  # fmt: skip
    assert r.status_code == 200 and r.content == first_reply
    assert msg.response_log == SyncMessage.objects.get(pk=msg.pk).response_log


def _resend_body(msg: SyncMessage) -> bytes:
    return msg.request_log.encode()


def test_client_vanishing_applies_nothing_twice(phone, profile):  # type: ignore[no-untyped-def]
    phone.sync(201)
    phone.sync(200, adds={"7": card("Dora", "+491703333333")}, drop_after_changes=True)
    assert len(live(profile)) == 1
    # The handset did not see the answer: next session it sends the same Add again.
    phone.items.pop("7")
    out = phone.sync(200, adds={"7": card("Dora", "+491703333333")})
    assert out["alert"] == 200  # anchors were not advanced by the broken session
    assert len(live(profile)) == 1


def test_mass_delete_guard_holds_and_operator_decides(phone, profile):  # type: ignore[no-untyped-def]
    from portal.context import Actor
    from sync import services

    adds = {str(i): card(f"P{i}", f"+4917010000{i:02d}") for i in range(10)}
    phone.sync(201, adds=adds)
    phone.sync(200, deletes=[str(i) for i in range(8)])
    assert len(live(profile)) == 10
    held = HeldDelete.objects.get()
    assert len(held.guids) == 8
    services.reject_held_delete(actor=Actor.command("t"), held=held)
    out = phone.sync(200)
    assert out["received"] == 8  # restored to the handset
    phone.sync(200, deletes=["9"])  # a single deletion goes through
    assert len(live(profile)) == 9


def test_three_way_merge_in_a_session(phone, profile):  # type: ignore[no-untyped-def]
    from portal.context import Actor
    from sync import services

    phone.sync(201, adds={"1": card("Eve", "+491704444444", "eve@example.org")})
    contact = live(profile)[0]
    services.save_contact(actor=Actor.command("t"), subscriber=profile.subscriber,
                          vcard=card("Eve", "+491704444444", "eve@work.example"), contact=contact)  # fmt: skip
    phone.sync(200, replaces={"1": card("Eve", "+491705555555", "eve@example.org")})
    contact.refresh_from_db()
    assert [t["v"] for t in contact.fields["TEL"]] == ["+491705555555"]
    assert [e["v"] for e in contact.fields["EMAIL"]] == ["eve@work.example"]
    # The merged copy goes back to the handset.
    assert "eve@work.example" in phone.items["1"]


def test_wrong_password_is_logged_and_throttled(post, profile):  # type: ignore[no-untyped-def]
    bad = SimClient(post=post, url=URL, username=profile.username, password="nope")
    codes = [bad.sync(200)["status"] for _ in range(7)]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [417, 417]  # retry later: no unlimited guessing
    assert AuthFailure.objects.filter(username=profile.username).count() == 7


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"", "application/vnd.syncml+xml", None),  # 400 or 415: no body, no type
        (b"<SyncML><nonsense", "application/vnd.syncml+xml", 400),
        (b"\x02\xa4\x01\x6a\x00\xff\xff", "application/vnd.syncml+wbxml", 400),
        (
            b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><SyncML/>",
            "application/vnd.syncml+xml",
            400,
        ),
        (b"<SyncML/>", "text/html", 415),
    ],
)
def test_bad_input_never_500(client, body, ctype, status):  # type: ignore[no-untyped-def]
    r = client.post("/syncml", data=body, content_type=ctype)
    assert r.status_code == status if status else 400 <= r.status_code < 500


def test_oversized_message_is_413(client, db):  # type: ignore[no-untyped-def]
    r = client.post(
        "/syncml", data=b"<" * (3 * 1024 * 1024), content_type="application/vnd.syncml+xml"
    )
    assert r.status_code == 413


def test_get_is_not_allowed(client, db):  # type: ignore[no-untyped-def]
    assert client.get("/syncml").status_code == 405


def test_message_log_redacts_credentials(phone, profile, secret):  # type: ignore[no-untyped-def]
    phone.sync(201)
    first = SyncMessage.objects.order_by("id").first()
    assert "<Data>***</Data>" in first.request_log
    from sync.syncml.auth import basic_credential

    assert basic_credential(profile.username, secret) not in first.request_log


def test_refresh_from_client_keeps_new_items_and_deletes_the_rest(phone, profile):  # type: ignore[no-untyped-def]
    from portal.context import Actor
    from sync import services

    phone.sync(201)
    services.save_contact(actor=Actor.command("t"), subscriber=profile.subscriber,
                          vcard=card("Old", "+491706666666"))  # fmt: skip
    adds = {str(i): card(f"N{i}", f"+4917077777{i:02d}") for i in range(6)}
    phone.sync(203, adds=adds)
    names = sorted(c.display_name for c in live(profile))
    assert names == [f"N{i}" for i in range(6)]
    assert not HeldDelete.objects.exists()
