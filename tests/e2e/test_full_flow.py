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
from sync.models import Device, SyncProfile, SyncSession
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
