"""The inbound chunk path (`process_inbound_batch`, `advance_ota_jobs`) against real PoRs from
virtual cards, without a worker: it must reach exactly what one message at a time reaches,
whatever the order of receipts and PoRs inside a chunk."""

from __future__ import annotations

import pytest

from cardmgmt import services as inventory
from cardmgmt.models import Card, InboundMessage, OtaJob, OtaMessage, SmsSegment
from cardmgmt.services import delivery
from cardmgmt.smpplink import OTA_DATA_CODING, OTA_ESM_CLASS, OTA_PROTOCOL_ID
from handset.fleet import router_from_file
from portal.context import Actor
from portal.models import AuditEntry
from tests.ota_delivery.conftest import lab_iccid
from tests.ota_delivery.lab import OTA_ADDRESS, export_fleet

ACTOR = Actor.command("tests")
CARDS = 6


@pytest.fixture
def sent(db, tmp_path):
    """Audit jobs on CARDS cards, built, claimed and submitted (one SMS each), and what each
    card answered: {message id: (smpp id, PoR deliver_sm)}."""
    profile = inventory.create_card_profile(
        actor=ACTOR,
        name="Batch AES",
        vendor="Lab",
        algorithms=["aes128"],
        ram_tar="B00000",
        rfm_tar="B00010",
        counter_mode="higher",
        por_timeout=60,
    )
    for n in range(CARDS):
        key = bytes([n + 7]) * 16
        card = inventory.create_card(
            actor=ACTOR,
            iccid=lab_iccid(500 + n),
            imsi=f"26219{n:010d}",
            profile=profile,
            keysets=[
                inventory.KeySetInput(
                    kvn=1, algorithm="aes128", kic=key.hex(), kid=key[::-1].hex(), kik=""
                )
            ],
        )
        inventory.create_subscriber(actor=ACTOR, msisdn=f"+4917990100{n:02d}", card=card)
    # The cards' twins, exported before any counter is spent.
    fleet = tmp_path / "fleet.json"
    export_fleet(fleet)
    router = router_from_file(fleet)
    for card in Card.objects.order_by("pk"):
        job = delivery.start_ota_job(actor=ACTOR, card=card, operation="audit")
        delivery.advance_ota_job(job_id=job.pk)  # builds and queues the packet
    link = inventory.save_smsc_link(
        actor=ACTOR,
        name="batch",
        host="127.0.0.1",
        port=2775,
        system_id="ota",
        password="secret12",
        source_addr=OTA_ADDRESS,
        tps=100,
        window=8,
    )
    claimed = delivery.claim_sendable_messages(link=link, limit=100)
    assert len(claimed) == CARDS
    answers = {}
    for message in claimed:
        (user_data,) = message.user_data
        (por,) = router.route(
            OTA_ADDRESS,
            message.msisdn,
            OTA_ESM_CLASS,
            OTA_PROTOCOL_ID,
            OTA_DATA_CODING,
            bytes.fromhex(user_data),
        )
        answers[message.pk] = (f"smsc-{message.pk}", por)
    delivery.record_submitted(submissions=[(m.pk, m.attempt, [answers[m.pk][0]]) for m in claimed])
    return link, answers


def receipt(smpp_id: str, msisdn: str, state: str = "DELIVRD") -> delivery.Inbound:
    return delivery.Inbound(
        source_addr=msisdn.lstrip("+"),
        payload=b"",
        is_receipt=True,
        receipted_id=smpp_id,
        receipt_state=state,
    )


def por(answer) -> delivery.Inbound:  # type: ignore[no-untyped-def]
    return delivery.Inbound(
        source_addr=answer.from_msisdn, payload=answer.payload, is_receipt=False
    )


def inbound_in_mixed_order(answers, msisdns):  # type: ignore[no-untyped-def]
    """Message 0: PoR then receipt; 1: receipt then PoR; 2: receipt only (stays delivered);
    3: PoR only; 4: a failed receipt (retried later); 5: PoR twice (a duplicate)."""
    ids = sorted(answers)
    smpp = {pk: answers[pk][0] for pk in ids}
    por_of = {pk: por(answers[pk][1]) for pk in ids}
    return [
        por_of[ids[0]],
        receipt(smpp[ids[1]], msisdns[ids[1]]),
        receipt(smpp[ids[0]], msisdns[ids[0]]),
        por_of[ids[1]],
        receipt(smpp[ids[2]], msisdns[ids[2]]),
        por_of[ids[3]],
        receipt(smpp[ids[4]], msisdns[ids[4]], "UNDELIV"),
        por_of[ids[5]],
        por_of[ids[5]],
    ]


def outcome():  # type: ignore[no-untyped-def]
    messages = {
        m.pk: (m.state, m.attempt, m.counter, m.por_status, m.failure_reason != "")
        for m in OtaMessage.objects.order_by("pk")
    }
    verdicts = list(InboundMessage.objects.order_by("pk").values_list("verdict", "message_id"))
    segments = list(SmsSegment.objects.order_by("pk").values_list("receipt_state", flat=True))
    return messages, verdicts, segments


@pytest.mark.parametrize("chunked", [True, False], ids=["chunk", "one-by-one"])
def test_a_chunk_reaches_what_one_message_at_a_time_reaches(sent, chunked):
    link, answers = sent
    msisdns = dict(OtaMessage.objects.values_list("pk", "msisdn"))
    ids = delivery.record_inbound(link=link, messages=inbound_in_mixed_order(answers, msisdns))
    if chunked:
        assert delivery.process_inbound_batch(inbound_ids=ids) == []
    else:
        for inbound_id in ids:
            delivery.process_inbound(inbound_id=inbound_id)
    messages, verdicts, segments = outcome()
    order = sorted(answers)
    states = [messages[pk][0] for pk in order]
    assert states == ["confirmed", "confirmed", "delivered", "confirmed", "pending", "confirmed"]
    assert all(messages[pk][3] == 0 for pk in order if messages[pk][0] == "confirmed")
    assert messages[order[4]][4]  # the failed receipt is the reason of the retry
    # Every deliver_sm matched its message, the duplicate PoR none (nothing in flight left).
    assert [v for v, _m in verdicts[:-1]] == ["matched"] * 8
    assert verdicts[-1][0] in ("unmatched", "suspicious")
    assert sorted(segments) == ["", "", "DELIVRD", "DELIVRD", "DELIVRD", "UNDELIV"]


def test_chunks_agree_with_one_by_one_and_jobs_finish_together(sent):
    link, answers = sent
    msisdns = dict(OtaMessage.objects.values_list("pk", "msisdn"))
    ids = delivery.record_inbound(link=link, messages=inbound_in_mixed_order(answers, msisdns))
    delivery.process_inbound_batch(inbound_ids=ids, chunk=4)  # chunks cut across pairs
    confirmed_jobs = list(
        OtaMessage.objects.filter(state="confirmed").values_list("job_id", flat=True)
    )
    assert len(confirmed_jobs) == 4
    before = AuditEntry.objects.count()
    assert delivery.advance_ota_jobs(job_ids=[*confirmed_jobs, 10**9]) == 4
    jobs = OtaJob.objects.filter(pk__in=confirmed_jobs)
    assert {j.state for j in jobs} == {"done"}
    assert all(j.result.startswith("audit: ") and j.finished for j in jobs)
    # One audit entry per finished job, as one task per job wrote.
    assert AuditEntry.objects.count() - before == 4
    # Again: nothing to do, nothing written.
    assert delivery.advance_ota_jobs(job_ids=confirmed_jobs) == 0
    assert AuditEntry.objects.count() - before == 4


def test_a_batch_of_deliver_sm_is_one_insert_and_each_kind_is_kept(sent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    link, answers = sent
    msisdns = dict(OtaMessage.objects.values_list("pk", "msisdn"))
    first = min(answers)
    messages = [
        receipt(answers[first][0], msisdns[first]),
        por(answers[first][1]),
        delivery.Inbound(source_addr="4917990100", payload=b"hello", is_receipt=False),
    ]
    with CaptureQueriesContext(connection) as queries:
        ids = delivery.record_inbound(link=link, messages=messages)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    stored = InboundMessage.objects.filter(pk__in=ids).order_by("pk")
    assert [(m.kind, m.link_id, m.receipted_id, m.receipt_state) for m in stored] == [
        ("receipt", link.pk, answers[first][0], "DELIVRD"),
        ("por", link.pk, "", ""),
        ("other", link.pk, "", ""),
    ]
    assert bytes(stored[2].payload) == b"hello" and stored[0].source_addr == msisdns[first][1:]


def test_a_claim_is_one_statement_single_card_operations_first(sent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    link, _answers = sent
    ids = sorted(OtaMessage.objects.values_list("pk", flat=True))
    # Back in the queue: the first three as a campaign's (priority 50), the rest single-card.
    OtaMessage.objects.update(state="queued", link=None, submitted_at=None, priority=0)
    OtaMessage.objects.filter(pk__in=ids[:3]).update(priority=50)
    with CaptureQueriesContext(connection) as queries:
        claimed = delivery.claim_sendable_messages(link=link, limit=4)
    claims = [q for q in queries.captured_queries if "cardmgmt_otamessage" in q["sql"]]
    assert len(claims) == 1
    assert [m.pk for m in claimed] == [*ids[3:], ids[0]]
    assert [len(m.user_data) for m in claimed] == [1, 1, 1, 1]
    assert set(
        OtaMessage.objects.filter(pk__in=[m.pk for m in claimed]).values_list("state", "link")
    ) == {("submitted", link.pk)}
    rest = delivery.claim_sendable_messages(link=link, limit=4)
    assert [m.pk for m in rest] == ids[1:3]  # nothing claimed twice


def test_a_claim_reads_the_queued_in_order_and_sorts_nothing(sent):
    """Even on a table never analysed (as one a campaign just filled is): no sort of every
    queued message under the row locks, an ordered index scan that stops at the limit."""
    from django.db import connection, transaction
    from django.utils import timezone

    from portal.db import planner_settings

    OtaMessage.objects.update(state="queued", link=None, submitted_at=None)
    link, _answers = sent
    with transaction.atomic(), connection.cursor() as cursor:
        # Index reads made dear, as misleading statistics make them: a sort would win.
        cursor.execute("SET LOCAL random_page_cost = 10000")
        with planner_settings(cursor, **delivery._CLAIM_PLAN):
            cursor.execute(
                "EXPLAIN " + delivery._CLAIM_SQL,
                ["submitted", timezone.now(), link.pk, "queued", 4],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "otamessage_sendable" in plan and "Sort" not in plan, plan
