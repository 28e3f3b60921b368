"""OTA delivery end to end: real SMPP over loopback to the SMSC simulator and its virtual
cards, the link process, a real Celery worker on Redis, PostgreSQL."""

from __future__ import annotations

import pytest

from cardmgmt import services
from cardmgmt.choices import OtaJobState
from cardmgmt.models import InboundMessage, Installation, KeySet, OtaJob, OtaMessage, SmsSegment
from cardmgmt.ota import syncapplet
from cardmgmt.services.recovery import process_unprocessed_inbound, recover_stalled_work
from portal.context import Actor
from tests.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]
ACTOR = Actor.command("tests")


def run_job(card, operation, version=None, parameters=None, timeout=60, expire=False):
    job = services.start_ota_job(
        actor=ACTOR,
        card=card,
        operation=operation,
        applet_version=version,
        parameters=parameters or {},
    )
    return finish(job, timeout, expire)


def finish(job, timeout=60, expire=False):
    def done():
        if expire:  # what beat does (the lab profile's PoR timeout is 5 s)
            process_unprocessed_inbound()
            services.expire_overdue_messages()
            recover_stalled_work()
        current = OtaJob.objects.get(pk=job.pk)
        return current if current.is_finished else None

    return wait_for(done, timeout, interval=0.3)


def card_twin(lab, card):
    return lab.smsc.call(lambda: lab.smsc.router.card(card.subscriber.msisdn))


def test_load_install_with_concatenated_sms_then_audit(ota_lab):
    card = ota_lab.cards[0]
    job = run_job(card, "load_install", ota_lab.version)
    assert job.state == OtaJobState.DONE, job.result
    messages = list(job.messages.order_by("step"))
    assert any(len(m.user_data) > 1 for m in messages), "the load needed concatenated SMS"
    assert all(m.state == "confirmed" and m.por_text.startswith("PoR OK") for m in messages)
    counters = [m.counter for m in messages]
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    assert KeySet.objects.get(card=card).counter == counters[-1]
    twin = card_twin(ota_lab, card)
    registry = ota_lab.smsc.call(
        lambda: (
            {i.aid.hex().upper() for i in twin.instances.values()}
            if isinstance(twin.instances, dict)
            else {i.aid.hex().upper() for i in twin.instances}
        )
    )
    assert ota_lab.version.instance_aid in registry
    installation = Installation.objects.get(card=card, applet_version=ota_lab.version)
    assert (installation.state, installation.confirmed_by) == ("installed", "por")

    # The audit reads the card's registry back and keeps the portal's view true.
    Installation.objects.filter(pk=installation.pk).update(state="deleted", confirmed_by="")
    audit = run_job(card, "audit")
    assert audit.state == OtaJobState.DONE, audit.result
    assert (
        ota_lab.version.instance_aid in bytes.fromhex(audit.messages.get().por_data).hex().upper()
    )
    installation.refresh_from_db()
    assert (installation.state, installation.confirmed_by) == ("installed", "audit")


def test_push_parameters_then_trigger_reaches_the_handset_command(ota_lab):
    card = ota_lab.cards[1]
    assert run_job(card, "load_install", ota_lab.version).state == OtaJobState.DONE
    record = bytes.fromhex("A1") + bytes([40]) + b"record-for-the-handset-0123456789abcdef"
    tar = syncapplet.TAR.hex().upper()
    pushed = run_job(card, "push_params", parameters={"tar": tar, "record": record.hex()})
    assert pushed.state == OtaJobState.DONE, pushed.result
    # The record (it holds the device's secret) is stored nowhere in clear.
    assert "record" not in pushed.parameters
    assert all(m.sealed and record not in bytes(m.secured_data) for m in pushed.messages.all())
    triggered = run_job(
        card, "trigger_sync", parameters={"tar": tar, "mode": 1, "campaign_ref": b"camp-7".hex()}
    )
    assert triggered.state == OtaJobState.DONE, triggered.result
    twin = card_twin(ota_lab, card)
    issued = ota_lab.smsc.call(lambda: list(twin.issued_commands))
    assert len(issued) == 1
    command = (
        syncapplet.decode_sync_request(issued[0].command)
        if hasattr(issued[0], "command")
        else issued[0]
    )
    text = repr(command)
    assert record.hex() in text or repr(record) in text
    assert "camp-7" in text


def test_unknown_tar_fails_with_status_09(ota_lab):
    card = ota_lab.cards[2]
    job = run_job(card, "trigger_sync", parameters={"tar": "AABBCC"})
    assert job.state == OtaJobState.FAILED
    assert "TAR unknown" in job.result
    assert job.messages.get().attempt == 1  # not retried: it would not get better


def test_wrong_keys_fail_and_the_por_is_not_trusted_as_ok(ota_lab):
    card = ota_lab.cards[3]
    services.set_keyset(
        actor=ACTOR,
        card=card,
        spec=services.KeySetInput(kvn=1, algorithm="aes128", kic="11" * 16, kid="22" * 16),
    )
    job = run_job(card, "audit")
    assert job.state == OtaJobState.FAILED
    assert "RC/CC/DS failed" in job.result or "checksum" in job.result.lower(), job.result
    assert not OtaMessage.objects.filter(job=job, state="confirmed").exists()


def test_replayed_counter_is_refused_by_the_card(ota_lab):
    card = ota_lab.cards[0]
    assert run_job(card, "audit").state == OtaJobState.DONE
    # The portal's counter falls behind the card's (a restored backup, say): every packet is
    # a replay to the card, which answers "counter low".
    KeySet.objects.filter(card=card).update(counter=0)
    job = run_job(card, "audit", timeout=90)
    message = job.messages.get()
    # The card refused the replayed counter; the retry's fresh counter is higher again.
    assert "counter low" in message.history[0]["failed"].lower(), message.history
    assert message.history[1]["counter"] > message.history[0]["counter"]
    assert job.state == OtaJobState.DONE, job.result


def test_toolkit_busy_is_retried_and_out_of_memory_fails_with_reason(ota_lab):
    busy, full = ota_lab.cards[1], ota_lab.cards[2]
    ota_lab.smsc.call(lambda: ota_lab.smsc.router.inject(busy.subscriber.msisdn, toolkit_busy=1))
    job = run_job(busy, "audit", timeout=90)
    assert job.state == OtaJobState.DONE, job.result
    message = job.messages.get()
    assert message.attempt == 2
    assert "receipt" in message.history[0]["failed"].lower()
    assert message.history[0]["counter"] != message.history[1]["counter"]

    ota_lab.smsc.call(lambda: ota_lab.smsc.router.inject(full.subscriber.msisdn, memory_quota=300))
    job = run_job(full, "load_install", ota_lab.version)
    assert job.state == OtaJobState.FAILED
    assert "6A84" in job.result, job.result
    assert Installation.objects.get(card=full).state == "failed"


def test_lost_por_times_out_and_is_retried_with_a_new_counter(ota_lab):
    card = ota_lab.cards[3]
    ota_lab.smsc.call(lambda: ota_lab.smsc.router.inject(card.subscriber.msisdn, lose_por=1))
    job = run_job(card, "audit", timeout=90, expire=True)
    assert job.state == OtaJobState.DONE, job.result
    message = job.messages.get()
    assert message.attempt == 2
    assert message.history[0]["failed"] == "no PoR within the timeout"
    assert message.history[0]["counter"] < message.history[1]["counter"]


def test_smsc_throttling_loses_nothing(ota_lab):
    ota_lab.smsc.call(lambda: setattr(ota_lab.smsc.smsc.faults, "throttle_share", 0.5))
    jobs = [services.start_ota_job(actor=ACTOR, card=c, operation="audit") for c in ota_lab.cards]
    done = [finish(j, timeout=90) for j in jobs]
    assert all(j.state == OtaJobState.DONE for j in done), [j.result for j in done]
    assert all(j.messages.get().attempt == 1 for j in done)  # refused submits were resent


def test_smsc_restart_in_the_middle_of_a_job(ota_lab):
    card = ota_lab.cards[0]
    job = services.start_ota_job(
        actor=ACTOR, card=card, operation="load_install", applet_version=ota_lab.version
    )
    wait_for(lambda: OtaMessage.objects.filter(job=job, state="confirmed").count() >= 2, 60)
    ota_lab.smsc.run(ota_lab.smsc.smsc.restart(same_port=True, down_for=1.0))
    job = finish(job, timeout=120, expire=True)
    assert job.state == OtaJobState.DONE, job.result


def test_worker_killed_with_sigkill_nothing_sent_twice_nothing_lost(ota_lab):
    jobs = [
        services.start_ota_job(
            actor=ACTOR, card=c, operation="load_install", applet_version=ota_lab.version
        )
        for c in ota_lab.cards
    ]
    wait_for(lambda: OtaMessage.objects.filter(state="confirmed").count() >= 3, 60)
    ota_lab.worker.kill()
    ota_lab.worker.start()
    done = [finish(j, timeout=180, expire=True) for j in jobs]
    assert all(j.state == OtaJobState.DONE for j in done), [j.result for j in done]
    for card in ota_lab.cards:
        messages = OtaMessage.objects.filter(card=card)
        counters = [h["counter"] for m in messages for h in m.history]
        assert len(counters) == len(set(counters)), "a counter was used twice"
        # Every counter spent belongs to one recorded attempt: none allocated and lost.
        assert KeySet.objects.get(card=card).counter == len(counters)
    submitted = ota_lab.smsc.call(lambda: ota_lab.smsc.smsc.stats.submits)
    assert submitted == SmsSegment.objects.count()
    assert InboundMessage.objects.filter(verdict="suspicious").count() == 0


def test_link_survives_its_database_connections_being_cut(ota_lab):
    """A PostgreSQL restart or failover cuts every connection: the link process logs, claims
    again with a new connection, and the next job still goes out (it used to exit)."""
    from django.db import connection

    assert run_job(ota_lab.cards[0], "audit").state == OtaJobState.DONE
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (cut,) = cursor.fetchone()
    assert cut >= 1  # at least the link's claiming connection was cut
    job = run_job(ota_lab.cards[1], "audit", timeout=60)
    assert job.state == OtaJobState.DONE, job.result
    assert ota_lab.link_process.proc.poll() is None  # still running
