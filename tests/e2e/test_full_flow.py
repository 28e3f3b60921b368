"""The whole flow, every piece real (tests/e2e/stack.py): PostgreSQL, a Celery worker on Redis,
the SMPP link process, the SMSC simulator with the cards in virtual phones, the portal over HTTP.

Import cards and subscribers (CSV over the API), upload the sync applet, load it over the air,
push the parameter record, trigger: the handset syncs over HTTP, and DB2 must then equal its
DB1 item by item, with the device record stored. Then the applet's other triggers (timer, new
handset, menu), the handset swap as the portal sees it, and the Server-Alerted Notification
for a handset without the applet.
"""

from __future__ import annotations

import pytest

from cardmgmt.models import Installation
from sync.models import Device, DeviceEvent, SyncProfile, SyncSession
from tests.handset.test_against_server import assert_db2_equals_db1

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


def profile_of(msisdn: str) -> SyncProfile:
    return SyncProfile.objects.select_related("subscriber").get(subscriber__msisdn=msisdn)


def server_sessions(msisdn: str) -> int:
    return SyncSession.objects.filter(subscriber__msisdn=msisdn).count()


def ready(stack, n: int) -> tuple[str, str]:
    """Card n with the applet loaded and its parameter record pushed."""
    iccid, msisdn = stack.iccids[n], stack.msisdns[n]
    stack.load_applet(iccid)
    stack.push_params(iccid)
    return iccid, msisdn


def test_import_load_push_trigger_then_db2_equals_db1(stack):
    stack.provision(cards=2)
    iccid, msisdn = stack.iccids[0], stack.msisdns[0]
    phone = stack.phone(msisdn)
    assert len(phone.addressbook) > 0

    load = stack.load_applet(iccid)
    assert Installation.objects.get(card__iccid=iccid).state == "installed", load.result
    push = stack.push_params(iccid)
    profile = profile_of(msisdn)
    assert profile.card_version == profile.version, push.result
    card = stack.router.card(msisdn)
    assert stack.on_smsc(lambda: card.applet().record) != b""

    assert phone.sessions == []
    stack.trigger_sync(iccid)
    session = stack.wait_phone_sessions(phone, 1)
    assert session.reason == "ota"
    assert session.report.ok, session.report.error
    assert session.report.datastores["contacts"].mode == 201  # first contact: slow sync
    stack.wait_for(lambda: server_sessions(msisdn) == 1, what="the session recorded")

    assert_db2_equals_db1(phone, profile)
    device = Device.objects.get(subscriber__msisdn=msisdn, current=True)
    assert device.imei == phone.imei
    assert device.model == phone.device.model
    assert device.manufacturer == phone.device.manufacturer
    assert device.firmware_version == phone.device.firmware
    # The other subscriber's handset never synchronized.
    assert stack.phone(stack.msisdns[1]).sessions == []
    assert server_sessions(stack.msisdns[1]) == 0


def test_the_four_triggers_and_a_handset_swap(stack, client):
    from django.contrib.auth import get_user_model

    from handset.edits import EditGenerator
    from tests.e2e.stack import STAFF_USERNAME

    stack.provision(cards=1, interval_minutes=30)
    iccid, msisdn = ready(stack, 0)
    phone = stack.phone(msisdn)
    profile = profile_of(msisdn)

    # 1. OTA: the portal's TRIGGER through the SMSC to the applet.
    stack.trigger_sync(iccid)
    first = stack.wait_phone_sessions(phone, 1)
    assert (first.reason, first.report.ok) == ("ota", True), first.report.error
    assert_db2_equals_db1(phone, profile)

    # 2. Timer: the record's interval (30 minutes) passes on the card's clock; not before.
    EditGenerator(5).apply(phone.addressbook, 6)
    applet = stack.on_smsc(lambda: stack.router.card(msisdn).applet())
    start, triggers = stack.on_smsc(lambda: (applet.timer_from, applet.triggers))
    stack.on_smsc(lambda: stack.router.tick(start + 29 * 60))
    assert stack.on_smsc(lambda: applet.triggers) == triggers  # 29 minutes: not yet
    stack.on_smsc(lambda: stack.router.tick(start + 31 * 60))
    assert stack.on_smsc(lambda: applet.triggers) == triggers + 1
    timer = stack.wait_phone_sessions(phone, 2)
    assert (timer.reason, timer.report.ok) == ("timer", True), timer.report.error
    assert timer.report.datastores["contacts"].mode == 200  # two-way: the edits went up
    assert sum(timer.report.datastores["contacts"].sent.values()) > 0
    assert_db2_equals_db1(phone, profile)

    # 3. Menu: the user picks the applet's entry.
    EditGenerator(6).apply(phone.addressbook, 4)
    assert stack.on_smsc(phone.select_menu)
    menu = stack.wait_phone_sessions(phone, 3)
    assert (menu.reason, menu.report.ok) == ("menu", True), menu.report.error
    assert_db2_equals_db1(phone, profile)

    # 4. New handset: the card moves to another phone (another IMEI, its own contacts); at
    # power-on the applet reads the new IMEI and asks it to synchronize.
    old_imei = phone.imei
    new = stack.move_card(msisdn, {"contacts": 3})
    assert new is stack.phone(msisdn) and new.imei != old_imei
    swap = stack.wait_phone_sessions(new, 1)
    assert (swap.reason, swap.report.ok) == ("imei-change", True), swap.report.error
    assert_db2_equals_db1(new, profile)  # DB2's contacts came down, the new phone's went up
    assert len(new.addressbook) >= len(phone.addressbook)
    assert len(phone.sessions) == 3  # the old phone, without its card, did nothing

    # The portal saw the handset change: the new device is current, the event names the old.
    current = Device.objects.get(subscriber__msisdn=msisdn, current=True)
    assert current.imei == new.imei
    assert Device.objects.get(subscriber__msisdn=msisdn, imei=old_imei).current is False
    event = DeviceEvent.objects.get(device=current, kind="handset_change")
    assert event.previous_imei == old_imei
    devices = stack.api.get(f"/api/sync-devices/?subscriber={profile.subscriber_id}", expect=200)
    kinds = {e["kind"] for d in devices.json()["results"] for e in d["events"]}
    assert "handset_change" in kinds
    client.force_login(get_user_model().objects.get(username=STAFF_USERNAME))
    page = client.get(current.get_absolute_url())
    assert page.status_code == 200
    assert "Handset change" in page.content.decode() and old_imei in page.content.decode()
    assert server_sessions(msisdn) == 4


def test_server_alert_reaches_a_handset_without_the_applet(stack):
    from cardmgmt.models import OtaMessage, SmsSegment

    stack.provision(cards=2, accounts=[1])
    msisdn = stack.msisdns[1]
    phone = stack.phone(msisdn)
    profile = profile_of(msisdn)
    card = stack.router.card(msisdn)
    assert phone.account is not None and stack.on_smsc(card.menu_items) == {}  # no applet
    envelopes = stack.router.stats.envelopes

    job = stack.wait_job(stack.server_alert(msisdn, 206))
    assert job.parameters["channel"] == "san" and job.result.startswith("delivered")
    message = OtaMessage.objects.get(job=job)
    assert (message.tar, message.counter, message.state) == ("", None, "confirmed")
    assert SmsSegment.objects.filter(message=message, receipt_state="DELIVRD").count() == len(
        message.user_data
    )
    # An SMS for the handset, not a SIM data download: the card saw no envelope.
    assert stack.router.stats.envelopes == envelopes

    session = stack.wait_phone_sessions(phone, 1)
    assert session.reason == "san"
    assert session.report.ok, session.report.error
    assert [e.kind for e in phone.events].count("san") == 1
    assert_db2_equals_db1(phone, profile)
    assert Device.objects.get(subscriber__msisdn=msisdn, current=True).imei == phone.imei
    stack.wait_for(lambda: server_sessions(msisdn) == 1, what="the alerted session recorded")

    # A second alert after edits on the handset: a two-way session brings them up.
    from handset.edits import EditGenerator

    EditGenerator(8).apply(phone.addressbook, 5)
    stack.wait_job(stack.server_alert(msisdn, 206))
    second = stack.wait_phone_sessions(phone, 2)
    assert second.report.ok, second.report.error
    assert second.report.datastores["contacts"].mode == 200
    assert_db2_equals_db1(phone, profile)
    # The subscriber whose phone has no account was never alerted, and synced nothing.
    assert stack.phone(stack.msisdns[0]).sessions == []
