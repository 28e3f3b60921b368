"""Recovery of OTA work whose task was lost (a worker killed before acknowledging it, a
broker restarted): the rows say what is due, so a periodic sweep puts it back in motion.
Every step it restarts is idempotent."""

from __future__ import annotations

import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from cardmgmt.choices import InboundVerdict, OtaJobState, OtaMessageState
from cardmgmt.models import InboundMessage, OtaJob, OtaMessage

__all__ = ["process_unprocessed_inbound", "recover_stalled_work"]

GRACE = datetime.timedelta(seconds=20)
ACTIVE = (OtaMessageState.QUEUED, OtaMessageState.SUBMITTED, OtaMessageState.DELIVERED)


def recover_stalled_work(*, now: datetime.datetime | None = None, limit: int = 2000) -> int:
    """Re-enqueue jobs that nothing will advance and deliver_sm nobody processed."""
    from cardmgmt.tasks import advance_ota_job_task, process_inbound_batch_task

    now = now or timezone.now()
    before = now - GRACE
    in_flight = OtaMessage.objects.filter(job=OuterRef("pk"), state__in=ACTIVE)
    due = OtaMessage.objects.filter(job=OuterRef("pk"), state=OtaMessageState.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=before)
    )
    settled = OtaMessage.objects.filter(job=OuterRef("pk")).exclude(
        state__in=(OtaMessageState.CONFIRMED, OtaMessageState.FAILED, OtaMessageState.CANCELLED)
    )
    stalled = (
        OtaJob.objects.filter(
            state__in=(OtaJobState.QUEUED, OtaJobState.RUNNING), created__lte=before
        )
        .filter(~Exists(in_flight))
        .filter(Exists(due) | ~Exists(settled))
        .values_list("pk", flat=True)[:limit]
    )
    count = 0
    for job_id in stalled:
        advance_ota_job_task.delay(job_id)
        count += 1
    unprocessed = list(
        InboundMessage.objects.filter(
            verdict=InboundVerdict.PENDING, received__lte=before
        ).values_list("pk", flat=True)[:limit]
    )
    if unprocessed:
        process_inbound_batch_task.delay(unprocessed)
    return count + len(unprocessed)


def process_unprocessed_inbound(*, older_than: float = 2.0, limit: int = 5000) -> int:
    """Process, here and now, deliver_sm stored but not yet processed. Run before expiring
    messages for lack of a PoR: a PoR that arrived must win over the timeout, or a step the
    card already ran would be sent again."""
    from cardmgmt.services.delivery import process_inbound

    before = timezone.now() - datetime.timedelta(seconds=older_than)
    ids = list(
        InboundMessage.objects.filter(verdict=InboundVerdict.PENDING, received__lte=before)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for inbound_id in ids:
        process_inbound(inbound_id=inbound_id)
    return len(ids)
