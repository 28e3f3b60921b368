"""Virtual phones without a server: toolkit codings, the four triggers, SAN by WAP push, the
client's first package, seeded generators and the lab (pure: no Django)."""

from __future__ import annotations

import contextlib
import json
import random

import pytest
from handset_lab import OTA_ADDRESS, Lab, make_card

from cardmgmt.ota import syncapplet as sa
from cardmgmt.ota.errors import FormatError
from handset import toolkit
from handset.addressbook import AddressBook, DeviceRecord, Inventory
from handset.edits import EditGenerator, generate_addressbook, generate_device, luhn_digit
from handset.lab import Lab as PhoneLab
from handset.lab import PhoneRouter
from handset.phone import Phone
from handset.syncclient import ClientState, StoreState
from sync.syncml import Alert, DevInf, Get, Put, parse_message
from sync.syncml.auth import AUTH_MD5, md5_credential
from sync.syncml.errors import SyncMLParseError
from sync.syncml.paramrecord import DatastoreParam, ParamRecord, encode_param_record
from sync.syncml.san import SANMessage, SANSync, encode_san
from sync.syncml.wappush import (
    WapPushAssembler,
    parse_wsp_push,
    san_sms_user_data,
    wsp_push_pdu,
)

URL = "http://sync.example/syncml"
IMEI_A = "490154203237518"
IMEI_B = "356938035643809"


def record(**kw) -> ParamRecord:
    values = {
        "version": 3, "server_url": URL, "username": "u1", "secret": "s3cret", "auth_type": "md5",
        "interval_minutes": 60,
        "datastores": [
            DatastoreParam(local_name="Contacts", remote_uri="contacts",
                           content_type="text/x-vcard", mode=200),
            DatastoreParam(local_name="Inventory", remote_uri="inventory",
                           content_type="application/vnd.portal.device-inventory+json", mode=202),
        ],
    }  # fmt: skip
    values.update(kw)
    return ParamRecord(**values)


class Recorder:
    """A transport that keeps every request and answers HTTP 503 (the session stops there)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, str]] = []

    def __call__(self, url: str, body: bytes, ctype: str) -> tuple[int, bytes]:
        self.requests.append((url, body, ctype))
        return 503, b"busy"

    def alerts(self, n: int = -1) -> dict[str, int]:
        msg = parse_message(self.requests[n][1])
        return {c.items[0].target.loc_uri: c.data for c in msg.commands if isinstance(c, Alert)}


def phone_with_card(imei: str = IMEI_A, rec: ParamRecord | None = None, **kw):
    card = make_card()
    card.preinstall()
    card.applet().record = encode_param_record(rec or record())
    transport = Recorder()
    phone = Phone(DeviceRecord(imei=imei), card=card, transport=transport, **kw)
    return phone, card, transport


# --- toolkit codings ---------------------------------------------------------------------------


def test_toolkit_codings_byte_for_byte():
    assert toolkit.menu_selection_envelope(1).hex().upper() == "D30782020181900101"
    assert toolkit.parse_menu_selection(bytes.fromhex("D30782020181900102")) == (2, False)
    assert toolkit.menu_selection_envelope(1, help_request=True).hex().upper().endswith("9500")
    assert toolkit.provide_local_information_imei(1).hex().upper() == "D009810301260182028182"
    assert toolkit.encode_imei(IMEI_A).hex().upper() == "4A09512430325781"
    response = toolkit.imei_terminal_response(1, IMEI_A)
    assert response.hex().upper() == "81030126018202828183010094084A09512430325781"
    assert toolkit.parse_imei_terminal_response(response) == IMEI_A
    assert toolkit.decode_imei(toolkit.encode_imei(IMEI_B)) == IMEI_B


@pytest.mark.parametrize("data", [b"", b"\xd3", b"\xd3\x05\x82\x02\x01\x81", b"\xd0\x00",
                                  bytes.fromhex("D3039001"), bytes.fromhex("D30390010000")])  # fmt: skip
def test_toolkit_parsers_refuse_garbage(data):
    with pytest.raises(FormatError):
        toolkit.parse_menu_selection(data)


def test_toolkit_fuzz_raises_only_format_errors():
    rng = random.Random(1)
    good = toolkit.imei_terminal_response(1, IMEI_A)
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data[: rng.randrange(len(data) + 1)])
        for fn in (toolkit.parse_imei_terminal_response, toolkit.parse_menu_selection,
                   toolkit.parse_proactive_details):  # fmt: skip
            with contextlib.suppress(FormatError):
                fn(data)


# --- the four triggers -------------------------------------------------------------------------


def test_menu_selection_triggers_a_sync_with_the_record():
    phone, card, transport = phone_with_card()
    phone.power_on(now=0)
    assert card.menu_items() == {1: sa.INSTANCE_AID}
    assert phone.select_menu()
    assert card.issued_commands[-1].request.reason == sa.TriggerReason.MENU
    assert [s.reason for s in phone.sessions] == ["menu"]
    assert not phone.sessions[0].report.ok and phone.sessions[0].report.status == 503
    url, _body, ctype = transport.requests[0]
    assert url == URL and ctype == "application/vnd.syncml+xml"
    assert transport.alerts() == {"contacts": 201, "inventory": 201}  # first session: slow
    assert phone.account.username == "u1"


def test_menu_flag_off_and_unknown_item():
    phone, card, _transport = phone_with_card(rec=record(trigger_menu=False))
    phone.power_on(now=0)
    assert phone.select_menu()  # the card takes the envelope but the applet does nothing
    assert not card.issued_commands and not phone.sessions
    assert card.envelope(toolkit.menu_selection_envelope(9)).sw == 0x6A80


def test_timer_fires_every_interval():
    phone, _card, _ = phone_with_card(rec=record(interval_minutes=60))
    phone.power_on(now=1000)
    phone.tick(now=1000 + 59 * 60)
    assert not phone.sessions
    phone.tick(now=1000 + 60 * 60)
    assert [s.reason for s in phone.sessions] == ["timer"]
    phone.tick(now=1000 + 90 * 60)
    phone.tick(now=1000 + 120 * 60)
    assert [s.reason for s in phone.sessions] == ["timer", "timer"]


@pytest.mark.parametrize("rec", [record(interval_minutes=0), record(trigger_timer=False)])
def test_no_timer_without_interval_or_flag(rec):
    phone, _, _ = phone_with_card(rec=rec)
    phone.power_on(now=0)
    for t in range(0, 10 * 86400, 3600):
        phone.tick(now=t)
    assert not phone.sessions


def test_new_handset_triggers_at_power_on():
    old, card, _ = phone_with_card(IMEI_A)
    old.power_on(now=0)
    assert not old.sessions  # the first IMEI the applet sees is its baseline
    old.power_on(now=10)
    assert not old.sessions  # same handset again
    transport = Recorder()
    new = Phone(DeviceRecord(imei=IMEI_B, model="Other"), transport=transport)
    old.remove_card()
    new.insert_card(card)
    new.power_on(now=20)
    assert [s.reason for s in new.sessions] == ["imei-change"]
    assert card.applet().imei == IMEI_B
    devinf = next(c for c in parse_message(transport.requests[0][1]).commands
                  if isinstance(c, Put)).items[0].data  # fmt: skip
    assert devinf.dev_id == f"IMEI:{IMEI_B}" and devinf.mod == "Other"
    assert card.applet().state()["imei"] == IMEI_B  # kept in the fleet state file


def test_new_handset_flag_off():
    old, card, _ = phone_with_card(IMEI_A, rec=record(trigger_imei_change=False))
    old.power_on(now=0)
    new = Phone(DeviceRecord(imei=IMEI_B), transport=Recorder())
    new.insert_card(card)
    new.power_on(now=1)
    assert not new.sessions and not card.issued_commands


def test_ota_trigger_over_sms_runs_the_session_with_the_mode_override():
    card = make_card()
    card.preinstall()
    router = PhoneRouter([card], ota_address=OTA_ADDRESS)
    transport = Recorder()
    phone = router.attach(Phone(DeviceRecord(imei=IMEI_A), transport=transport), card)
    phone.power_on(now=0)
    lab = Lab(router)
    _por, result = lab.applet(
        *sa.store_record_apdus(encode_param_record(record())),
        sa.trigger_apdu(mode=sa.SyncMode.REFRESH_FROM_SERVER, campaign=b"C-7"),
    )
    assert result.sw == 0x9000
    session = phone.sessions[-1]
    assert session.reason == "ota" and session.mode == 205 and session.campaign == b"C-7"
    assert transport.alerts() == {"contacts": 205, "inventory": 205}


# --- the client's first package ------------------------------------------------------------


def test_first_package_wbxml_md5_devinf_anchors():
    phone, _, transport = phone_with_card(encoding="wbxml", version="1.2")
    state = phone.client_states.setdefault((URL, "u1"), ClientState(nonce="bm9uY2U="))
    state.stores["contacts"] = StoreState(last_anchor="A1")
    phone.sync(record(), reason="manual")
    _, body, ctype = transport.requests[0]
    assert ctype == "application/vnd.syncml+wbxml" and body[:1] == b"\x02"
    msg = parse_message(body)
    assert msg.hdr.source.loc_uri == f"IMEI:{IMEI_A}" and msg.hdr.source.loc_name == "u1"
    assert msg.hdr.cred.meta.type == AUTH_MD5
    assert msg.hdr.cred.data == md5_credential("u1", "s3cret", b"nonce")
    alerts = [c for c in msg.commands if isinstance(c, Alert)]
    contacts = next(a for a in alerts if a.items[0].target.loc_uri == "contacts")
    assert contacts.data == 200
    assert contacts.items[0].meta.anchor.last == "A1"
    assert contacts.items[0].source.loc_uri == "./Contacts"
    assert next(a for a in alerts if a.items[0].target.loc_uri == "inventory").data == 201
    devinf = next(c for c in msg.commands if isinstance(c, Put)).items[0].data
    assert isinstance(devinf, DevInf) and devinf.support_large_objs
    assert "PHOTO" in devinf.vcard_properties() and "TEL" in devinf.vcard_properties()
    assert any(isinstance(c, Get) for c in msg.commands)


def test_basic_auth_and_xml_1_1():
    phone, _, transport = phone_with_card(version="1.1")
    phone.sync(record(auth_type="basic"))
    msg = parse_message(transport.requests[0][1])
    assert msg.hdr.ver_dtd == "1.1"
    assert msg.hdr.cred.meta.type == "syncml:auth-basic"


# --- SAN by WAP push -----------------------------------------------------------------------


def san_bytes(secret: str = "s3cret", server_id: str = URL, syncs=None) -> bytes:
    msg = SANMessage(session_id=7, server_id=server_id, syncs=syncs if syncs is not None else [
        SANSync(sync_type=206, content_type=0x07, server_uri="contacts")])  # fmt: skip
    return encode_san(msg, password=secret, nonce=b"")


def test_wsp_push_pdu_and_sms_coding():
    pdu = wsp_push_pdu(b"BODY")
    assert pdu.hex().upper() == "000603CEAF85" + b"BODY".hex().upper()
    push = parse_wsp_push(pdu)
    assert push.content_type == 0x4E and push.application_id == 5 and push.body == b"BODY"
    assert push.is_san
    (single,) = san_sms_user_data(b"x" * 40)
    assert single[:7].hex().upper() == "0605040B8423F0"
    parts = san_sms_user_data(b"y" * 400, reference=9)
    assert len(parts) == 4 and all(len(p) <= 140 for p in parts)
    assert parts[0][:12].hex().upper() == "0B05040B8423F00003090401"
    joiner = WapPushAssembler()
    order = [parts[2], parts[0], parts[0], parts[3]]
    assert all(joiner.add(p, "portal") is None for p in order)
    assert joiner.add(parts[1], "portal").body == b"y" * 400


def test_wap_push_fuzz_raises_only_parse_errors():
    rng = random.Random(5)
    good = san_sms_user_data(san_bytes())[0]
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 5)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(SyncMLParseError):
            WapPushAssembler().add(bytes(data[: rng.randrange(len(data) + 1)]))


def test_phone_without_applet_honours_a_verified_san():
    transport = Recorder()
    phone = Phone(DeviceRecord(imei=IMEI_A), account=record(), transport=transport)
    phone.client_states[(URL, "u1")] = ClientState(stores={"contacts": StoreState("A1")})
    for ud in san_sms_user_data(san_bytes()):
        assert phone.receive_sms(ud, originator="portal")
    assert [s.reason for s in phone.sessions] == ["san"]
    assert transport.alerts() == {"contacts": 206}  # only the alerted datastore


@pytest.mark.parametrize("data", [san_bytes(secret="wrong"), san_bytes(server_id="http://evil")])
def test_san_refused_when_the_digest_or_server_do_not_match(data):
    phone = Phone(DeviceRecord(imei=IMEI_A), account=record(), transport=Recorder())
    for ud in san_sms_user_data(data):
        phone.receive_sms(ud)
    assert not phone.sessions and phone.events[-1].kind == "san-refused"


def test_san_for_all_datastores_and_no_account():
    transport = Recorder()
    phone = Phone(DeviceRecord(imei=IMEI_A), transport=transport)
    assert not phone.handle_san(san_bytes(syncs=[]))  # no account yet
    phone.account = record()
    assert phone.handle_san(san_bytes(syncs=[]))
    assert set(transport.alerts()) == {"contacts", "inventory"}


# --- DB1 and the generators ----------------------------------------------------------------


def test_generators_are_seeded_and_realistic():
    a = generate_addressbook(42, 30, photo_chance=0.3)
    b = generate_addressbook(42, 30, photo_chance=0.3)
    assert a.items() == b.items()
    texts = "".join(a.items().values())
    assert any(ord(ch) > 127 for ch in texts)
    assert "PHOTO" in texts
    assert len(a.contacts()) == 30
    device = generate_device(3)
    assert device == generate_device(3)
    assert len(device.imei) == 15 and luhn_digit(device.imei[:14]) == device.imei[14]
    assert device.apps


def test_edits_add_change_delete_and_are_seeded():
    book = generate_addressbook(1, 20)
    before = book.items()
    summary = EditGenerator(9, large_photo=0.5).apply(book, 30)
    assert summary.added and summary.changed and summary.deleted
    for luid in summary.deleted:
        assert luid not in book
    for luid in summary.changed:
        assert book.get(luid) != before[luid]
    again = generate_addressbook(1, 20)
    EditGenerator(9, large_photo=0.5).apply(again, 30)
    assert again.items() == book.items()
    assert any(len(t) > 20_000 for t in book.items().values())  # a large object to sync


def test_address_book_folder(tmp_path):
    book = generate_addressbook(2, 5, folder=str(tmp_path))
    luid = next(iter(book))
    book.delete(luid)
    reloaded = AddressBook(folder=tmp_path)
    assert reloaded.items() == book.items()
    assert reloaded.add("BEGIN:VCARD\r\nVERSION:2.1\r\nN:X;Y\r\nEND:VCARD\r\n") not in book


def test_inventory_follows_the_device_record():
    device = DeviceRecord(imei=IMEI_A)
    device.install("com.example.a", "1.0", 10)
    inventory = Inventory(device)
    assert set(inventory) == {"device", "component:firmware", "app:com.example.a"}
    device.uninstall("com.example.a")
    device.install("com.example.b", "2.0", 20)
    inventory.refresh()
    assert set(inventory) == {"device", "component:firmware", "app:com.example.b"}
    assert json.loads(inventory.get("app:com.example.b"))["version"] == "2.0"


# --- the lab -------------------------------------------------------------------------------


def test_lab_builds_phones_from_the_fleet_file(tmp_path):
    cards = [
        {"msisdn": "+491700000001", "iccid": "8949000000000000011",
         "handset": {"imei": IMEI_B, "model": "K750i", "contacts": 3, "vcard": "3.0",
                     "account": {"server_url": URL, "username": "u1", "secret": "s3cret"}}},
        {"msisdn": "+491700000002", "iccid": "8949000000000000029"},
    ]  # fmt: skip
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"version": 1, "cards": cards}))
    transport = Recorder()
    lab = PhoneLab(str(path), seed=4, contacts=(10, 12), transport=transport, workers=1)
    try:
        first = lab.router.phone("+491700000001")
        assert first.imei == IMEI_B and first.device.model == "K750i"
        assert len(first.addressbook) == 3 and first.addressbook.version == "3.0"
        second = lab.router.phone("491700000002")
        assert 10 <= len(second.addressbook) <= 12
        again = PhoneLab(str(path), seed=4, contacts=(10, 12), transport=transport, workers=1)
        assert again.router.phone("491700000002").imei == second.imei
        again.close()
        # A WAP push SMS (not PID 7F) goes to the phone, not to the card.
        for ud in san_sms_user_data(san_bytes()):
            assert lab.router.route("portal", "+491700000001", 0x40, 0x00, 0x04, ud) == []
    finally:
        lab.close()
    assert [s.reason for s in first.sessions] == ["san"]


def test_lab_cli_parses():
    from handset.__main__ import build_parser

    args = build_parser().parse_args(["lab", "--fleet", "f.json", "--contacts", "5-50",
                                      "--port", "0"])  # fmt: skip
    assert args.contacts == (5, 50) and args.func.__module__ == "handset.lab"
