"""The Server-Alerted Notification sent by the portal: the service, its errors, its delivery
states, the link's SMS coding, the UI button and the API action. The whole path through a real
link and phone is in tests/e2e/test_full_flow.py."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cardmgmt import ota
from cardmgmt import services as inventory
from cardmgmt.models import InboundMessage, OtaJob, OtaMessage
from cardmgmt.services import delivery
from cardmgmt.smpplink import OTA_DATA_CODING, OTA_PROTOCOL_ID, submit_coding
from portal.context import Actor
from portal.models import AuditEntry
from sync import services
from sync.syncml.san import decode_san, verify_san
from sync.syncml.wappush import WapPushAssembler, san_sms_user_data

ACTOR = Actor.command("tests")
pytestmark = pytest.mark.django_db


@pytest.fixture
def account(subscriber):
    services.create_template(actor=ACTOR, name="t", server_url="http://portal.example/syncml")
    profile, secret = services.create_profile(actor=ACTOR, subscriber=subscriber)
    return profile, secret


@pytest.fixture
def smsc_link(db):
    return inventory.save_smsc_link(
        actor=ACTOR,
        name="main",
        host="127.0.0.1",
        port=2775,
        system_id="portal",
        password="secret",
        source_addr="1234",
    )


def sent_notification(message: OtaMessage) -> bytes:
    joiner = WapPushAssembler()
    pushes = [joiner.add(bytes.fromhex(ud), "1234") for ud in message.user_data]
    assert pushes[-1] is not None and pushes[-1].is_san
    return pushes[-1].body


def test_queues_a_wap_push_the_handset_can_verify(account, smsc_link):
    profile, secret = account
    job = services.send_server_alert(actor=ACTOR, profile=profile, sync_type=210)
    assert job.operation == "trigger_sync" and job.state == "running"
    assert job.parameters["channel"] == "san" and job.parameters["sync_type"] == 210
    (message,) = OtaMessage.objects.filter(job=job)
    assert message.state == "queued" and message.tar == "" and message.counter is None
    assert message.msisdn == profile.subscriber.msisdn
    san = sent_notification(message)
    assert bytes(message.secured_data) == san
    assert verify_san(san, password=secret, nonce=b"", server_id=profile.server_url)
    assert not verify_san(san, password="not-it", nonce=b"", server_id=profile.server_url)
    decoded = decode_san(san)
    assert decoded.session_id == job.parameters["session_id"]
    assert {s.server_uri for s in decoded.syncs} == {d["remote_uri"] for d in profile.datastores}
    assert {s.sync_type for s in decoded.syncs} == {210}
    entry = AuditEntry.objects.filter(action="operate", object_id=str(job.pk)).get()
    assert entry.actor_label == ACTOR.label and profile.subscriber.msisdn in entry.message
    assert secret not in str(entry.after) and secret not in entry.message


@pytest.mark.parametrize("sync_type", [200, 205, 211])
def test_refuses_a_sync_type_a_server_cannot_alert(account, smsc_link, sync_type):
    with pytest.raises(ValidationError, match=r"206\.\.210"):
        services.send_server_alert(actor=ACTOR, profile=account[0], sync_type=sync_type)
    assert not OtaJob.objects.exists()


def test_clear_errors_and_nothing_sent(account, smsc_link):
    profile, _ = account
    with pytest.raises(ValidationError, match="no sync profile"):
        services.send_server_alert(actor=ACTOR, profile=None)
    smsc_link.enabled = False
    smsc_link.save()
    with pytest.raises(ValidationError, match="no SMSC link is enabled"):
        services.send_server_alert(actor=ACTOR, profile=profile)
    smsc_link.enabled = True
    smsc_link.save()
    subscriber = profile.subscriber
    subscriber.card = None
    subscriber.save()
    profile.refresh_from_db()
    with pytest.raises(ValidationError, match="no SIM card"):
        services.send_server_alert(actor=ACTOR, profile=profile)
    assert not OtaJob.objects.exists() and not OtaMessage.objects.exists()


def _receipt(smpp_id: str, state: str = "DELIVRD") -> int:
    return InboundMessage.objects.create(
        kind="receipt", source_addr="491701234567", payload=b"", receipted_id=smpp_id,
        receipt_state=state,
    ).pk  # fmt: skip


def test_confirmed_by_its_delivery_receipt_then_the_job_is_done(account, smsc_link):
    job = services.send_server_alert(actor=ACTOR, profile=account[0])
    claimed = delivery.claim_sendable_messages(link=smsc_link, limit=10)
    assert [c.pk for c in claimed] == list(job.messages.values_list("pk", flat=True))
    ids = [f"smsc-{n}" for n in range(len(claimed[0].user_data))]
    delivery.record_submitted(submissions=[(claimed[0].pk, claimed[0].attempt, ids)])
    for smpp_id in ids:
        delivery.process_inbound(inbound_id=_receipt(smpp_id))
    message = OtaMessage.objects.get(job=job)
    assert message.state == "confirmed" and "delivered to the handset" in message.por_text
    job = delivery.advance_ota_job(job_id=job.pk)
    assert job.state == "done" and job.result.startswith("delivered to the handset")


def test_a_failed_receipt_sends_the_same_octets_again(account, smsc_link):
    job = services.send_server_alert(actor=ACTOR, profile=account[0])
    (claimed,) = delivery.claim_sendable_messages(link=smsc_link, limit=10)
    delivery.record_submitted(submissions=[(claimed.pk, claimed.attempt, ["x1"])])
    delivery.process_inbound(inbound_id=_receipt("x1", "UNDELIV"))
    message = OtaMessage.objects.get(job=job)
    assert message.state == "pending" and message.failure_reason
    OtaMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    delivery.advance_ota_job(job_id=job.pk)  # no keys, no counter: queued again as it was
    again = OtaMessage.objects.get(job=job)
    assert (again.state, again.attempt, again.counter) == ("queued", 2, None)
    assert again.user_data == claimed.user_data


def test_no_receipt_within_the_timeout_retries(account, smsc_link):
    job = services.send_server_alert(actor=ACTOR, profile=account[0])
    delivery.claim_sendable_messages(link=smsc_link, limit=10)
    late = timezone.now() + datetime.timedelta(hours=1)
    assert delivery.expire_overdue_messages(now=late) == 1
    assert OtaMessage.objects.get(job=job).state == "pending"


def test_the_link_codes_a_wap_push_for_the_handset_and_packets_for_the_card():
    for user_data in san_sms_user_data(b"\x00" * 400, reference=7):  # concatenated push
        assert submit_coding(user_data) == (0x00, 0x04)
    # A secured packet's SMS: CPI 70 in the first header, concatenation only in the others.
    segments = ota.segment_packet(bytes(400), reference=1)
    assert len(segments) > 1
    for segment in segments:
        assert submit_coding(segment) == (OTA_PROTOCOL_ID, OTA_DATA_CODING) == (0x7F, 0xF6)
    assert submit_coding(b"") == (0x7F, 0xF6)
    assert submit_coding(b"\x05\x05") == (0x7F, 0xF6)  # a truncated header is not a push


# --- UI and API ------------------------------------------------------------------------------


def test_support_sends_it_from_the_profile_page(account, smsc_link, make_user, client):
    profile, _ = account
    client.force_login(make_user("support"))
    page = client.get(profile.get_absolute_url())
    assert b"Send server alert" in page.content
    answer = client.post(
        reverse("sync:profile_server_alert", args=[profile.pk]), {"sync_type": "209"}
    )
    assert answer.status_code == 302 and answer.url == profile.get_absolute_url()
    job = OtaJob.objects.get()
    assert job.parameters["sync_type"] == 209 and job.requested_by.startswith("support")
    shown = client.get(answer.url).content.decode()
    assert "Server alert queued" in shown and job.get_absolute_url() in shown


def test_ui_errors_are_messages_not_500s(account, smsc_link, make_user, client):
    profile, _ = account
    client.force_login(make_user("operator"))
    url = reverse("sync:profile_server_alert", args=[profile.pk])
    for data in ({"sync_type": "205"}, {"sync_type": "abc"}):
        answer = client.post(url, data, follow=True)
        assert answer.status_code == 200
        assert "Server alert not sent" in answer.content.decode()
    smsc_link.enabled = False
    smsc_link.save()
    answer = client.post(url, {}, follow=True)
    assert "no SMSC link is enabled" in answer.content.decode()
    assert client.post(reverse("sync:profile_server_alert", args=[9999])).status_code == 404
    assert not OtaJob.objects.exists()


def test_auditor_sees_no_button_and_is_refused(account, smsc_link, make_user, client):
    profile, _ = account
    client.force_login(make_user("auditor"))
    assert b"Send server alert" not in client.get(profile.get_absolute_url()).content
    url = reverse("sync:profile_server_alert", args=[profile.pk])
    assert client.post(url, {"sync_type": "206"}).status_code == 403
    assert not OtaJob.objects.exists()


def test_api_action(account, smsc_link, api_client_for):
    profile, _ = account
    url = reverse("api:syncprofile-server-alert", args=[profile.pk])
    support = api_client_for("support")
    answer = support.post(url, {}, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["sync_type"] == 206 and body["msisdn"] == profile.subscriber.msisdn
    assert OtaJob.objects.get(pk=body["job"]).parameters["session_id"] == body["session_id"]
    bad = support.post(url, {"sync_type": 205}, format="json")
    assert bad.status_code == 400 and "sync_type" in bad.json()
    assert api_client_for("auditor").post(url, {}, format="json").status_code == 403
    assert api_client_for("support", write=False).post(url, {}, format="json").status_code == 403
    smsc_link.enabled = False
    smsc_link.save()
    off = support.post(url, {}, format="json")
    assert off.status_code == 400 and "no SMSC link" in off.content.decode()
    assert OtaJob.objects.count() == 1
