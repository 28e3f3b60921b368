"""The virtual handset against the real sync server (pytest-django `live_server`, PostgreSQL).

A phone with a generated address book and device record syncs over HTTP with the project's
own SyncML client: slow first sync, two-way with adds/changes/deletes (photos, non-ASCII
names, a large object), WBXML with MD5, refresh from server; after each session DB2 must
equal DB1 item by item, and the device record must be stored. The trigger path (SYNC REQUEST
from the card) and SAN are exercised too. Skipped without the Django plugin.
"""

from __future__ import annotations

import sys

import pytest

from sync.syncml.paramrecord import DatastoreParam, ParamRecord

if "pytest_django.plugin" not in sys.modules:  # run with -p no:django
    pytest.skip("needs pytest-django and the database", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(request):
    live_server = request.getfixturevalue("live_server")
    settings = request.getfixturevalue("settings")
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("syncml")
    except NoReverseMatch:
        settings.ROOT_URLCONF = "tests.sync.urls"
    return live_server.url + "/syncml"


@pytest.fixture
def account(server, request):
    from portal.context import Actor
    from sync import services

    subscriber = request.getfixturevalue("subscriber")
    actor = Actor.command("tests")
    services.create_template(actor=actor, name="default", server_url=server)
    profile, secret = services.create_profile(actor=actor, subscriber=subscriber, username="bob")
    return profile, secret


def record_for(server: str, secret: str, *, auth: str = "md5", vcard: str = "text/x-vcard"):
    return ParamRecord(
        version=1,
        server_url=server,
        datastores=[
            DatastoreParam(
                local_name="Contacts", remote_uri="contacts", content_type=vcard, mode=200
            ),
            DatastoreParam(
                local_name="Inventory",
                remote_uri="inventory",
                content_type="application/vnd.portal.device-inventory+json",
                mode=202,
            ),
        ],
        username="bob",
        secret=secret,
        auth_type=auth,
        interval_minutes=60,
    )


def assert_db2_equals_db1(phone, profile) -> None:
    from sync import merge
    from sync.models import Contact, InventoryItem

    rows = Contact.objects.filter(subscriber=profile.subscriber, deleted=False)
    db2 = sorted(merge.content_hash(r.fields) for r in rows)
    db1 = sorted(
        merge.content_hash(merge.parse_contact(t)) for t in phone.addressbook.items().values()
    )
    assert len(db2) == len(db1)
    assert db2 == db1
    inv = {(i.kind, i.name): i for i in InventoryItem.objects.filter(
        subscriber=profile.subscriber, deleted=False)}  # fmt: skip
    for item in phone.device.inventory_items().values():
        name = item.get("name", item.get("imei"))
        assert (item["kind"], name) in inv
        assert inv[(item["kind"], name)].fields == item


def make_phone(seed: int, size: int, **kw):
    from handset.edits import generate_addressbook, generate_device
    from handset.phone import Phone

    return Phone(generate_device(seed), addressbook=generate_addressbook(seed, size, photo_chance=0.2),
                 **kw)  # fmt: skip


def test_phone_sessions_reconcile_db2_with_db1(account, server):
    from handset.edits import EditGenerator
    from sync.models import Device

    profile, secret = account
    phone = make_phone(7, 40, max_msg_size=16 * 1024)
    record = record_for(server, secret)

    first = phone.sync(record)
    assert first.ok, first.error
    assert first.datastores["contacts"].mode == 201  # first contact: slow sync
    assert first.datastores["contacts"].sent["replace"] == 40
    assert_db2_equals_db1(phone, profile)
    device = Device.objects.get(subscriber=profile.subscriber, current=True)
    assert device.imei == phone.imei
    assert device.model == phone.device.model
    assert device.manufacturer == phone.device.manufacturer
    assert "TEL" in device.vcard_properties

    edits = EditGenerator(11, large_photo=0.3).apply(phone.addressbook, 15)
    phone.device.install("com.example.new", "0.9", 1234)
    second = phone.sync(record)
    assert second.ok, second.error
    ds = second.datastores["contacts"]
    assert ds.mode == 200
    assert ds.sent["add"] == len(edits.added)
    assert ds.sent["replace"] == len(edits.changed)
    assert ds.sent["delete"] == len(edits.deleted)
    assert_db2_equals_db1(phone, profile)

    # A large contact both ways: up, then a server change brings it down in chunks.
    import random

    from handset.edits import random_photo

    big = phone.addressbook.contact(next(iter(phone.addressbook)))
    big.photo = random_photo(random.Random(3), 40_000)
    phone.addressbook.replace_contact(next(iter(phone.addressbook)), big)
    third = phone.sync(record)
    assert third.ok, third.error
    assert third.datastores["contacts"].chunks_sent >= 3
    assert_db2_equals_db1(phone, profile)

    fresh = make_phone(7, 0, max_msg_size=16 * 1024)
    fresh.device.imei = phone.imei
    fresh.client_states = {}
    refresh = fresh.sync(record, modes={"contacts": 205})
    assert refresh.ok, refresh.error
    assert refresh.datastores["contacts"].chunks_received >= 3
    assert sorted(fresh.addressbook.items().values()) != []
    assert_db2_equals_db1(fresh, profile)


def test_wbxml_md5_and_server_changes(account, server):
    from portal.context import Actor
    from sync import services
    from sync.models import Contact, SyncSession

    profile, secret = account
    phone = make_phone(21, 12, encoding="wbxml")
    record = record_for(server, secret, auth="md5", vcard="text/vcard")
    assert phone.sync(record).ok
    assert phone.sync(record).ok  # the nonce of the last session is used: no challenge round
    assert phone.sessions[-1].report.auth_attempts == 1
    row = Contact.objects.filter(subscriber=profile.subscriber, deleted=False).first()
    services.delete_contact(actor=Actor.command("tests"), contact=row)
    report = phone.sync(record)
    assert report.ok, report.error
    assert report.datastores["contacts"].received["delete"] == 1
    assert_db2_equals_db1(phone, profile)
    sessions = SyncSession.objects.filter(profile=profile)
    assert sessions.filter(encoding="wbxml", auth_type="syncml:auth-md5").count() == 3


def test_basic_auth_and_wrong_secret(account, server):
    _profile, secret = account
    phone = make_phone(5, 3)
    assert phone.sync(record_for(server, secret, auth="basic")).ok
    bad = phone.sync(record_for(server, "wrong", auth="basic"))
    assert not bad.ok and bad.status == 401


def test_sync_request_from_the_card_and_san(account, server):
    from cardmgmt.ota import syncapplet
    from handset.uicc import Uicc
    from sync.syncml.paramrecord import encode_param_record
    from sync.syncml.wappush import san_sms_user_data

    profile, secret = account
    card = Uicc(iccid="8949000000000000001", msisdn="+491701234567")
    card.preinstall()
    applet = card.applet()
    applet.record = encode_param_record(record_for(server, secret))
    phone = make_phone(9, 5, card=card)
    phone.power_on(now=0)
    assert phone.select_menu()
    assert phone.sessions[-1].reason == "menu" and phone.sessions[-1].report.ok
    applet.process(syncapplet.trigger_apdu(mode=1, campaign=b"C-1"))
    last = phone.sessions[-1]
    assert last.reason == "ota" and last.mode == 201 and last.report.ok
    assert last.report.datastores["contacts"].mode == 201

    # SAN: the portal's own encoder, through the WAP push SMS, verified with the secret.
    from sync import services

    profile.refresh_from_db()
    san = services.build_server_alert(profile, sync_type=206)
    for ud in san_sms_user_data(san):
        phone.receive_sms(ud)
    assert phone.sessions[-1].reason == "san"
    assert phone.sessions[-1].report.ok, phone.sessions[-1].report.error
    assert_db2_equals_db1(phone, profile)
