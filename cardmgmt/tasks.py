"""Celery tasks of cards and OTA delivery: thin, they load a row and call a service."""

from __future__ import annotations

from celery import shared_task

from cardmgmt import services
from portal.context import Actor, request_id_scope


@shared_task(bind=True, name="cardmgmt.run_import_job", acks_late=True)
def run_import_job_task(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    with request_id_scope(self.request.id):
        job = services.run_import_job(actor=Actor.task("cardmgmt.run_import_job"), job_id=job_id)
    return job.status


@shared_task(bind=True, name="cardmgmt.advance_ota_job", acks_late=True)
def advance_ota_job_task(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    with request_id_scope(self.request.id):
        return services.advance_ota_job(job_id=job_id).state


@shared_task(bind=True, name="cardmgmt.advance_ota_jobs", acks_late=True)
def advance_ota_jobs_task(self, job_ids: list[int]) -> int:  # type: ignore[no-untyped-def]
    """The jobs whose PoRs one inbound chunk confirmed: one task instead of one each."""
    with request_id_scope(self.request.id):
        return services.advance_ota_jobs(job_ids=job_ids)


@shared_task(bind=True, name="cardmgmt.process_inbound", acks_late=True, max_retries=30)
def process_inbound_task(self, inbound_id: int) -> str:  # type: ignore[no-untyped-def]
    with request_id_scope(self.request.id):
        verdict = services.process_inbound(inbound_id=inbound_id).verdict
    if verdict == "pending":  # a receipt that overtook its submit's record
        raise self.retry(countdown=2)
    return verdict


@shared_task(bind=True, name="cardmgmt.process_inbound_batch", acks_late=True)
def process_inbound_batch_task(self, inbound_ids: list[int]) -> int:  # type: ignore[no-untyped-def]
    """What the link stored in one go; receipts that overtook their submit go round again."""
    from cardmgmt.services.delivery import process_inbound_batch

    with request_id_scope(self.request.id):
        later = process_inbound_batch(inbound_ids=inbound_ids)
    if later:
        process_inbound_batch_task.apply_async((later,), countdown=2)
    return len(inbound_ids) - len(later)


@shared_task(name="cardmgmt.expire_overdue_messages", expires=60)
def expire_overdue_messages_task() -> int:
    from cardmgmt.services.recovery import process_unprocessed_inbound

    process_unprocessed_inbound()
    return services.expire_overdue_messages()


@shared_task(name="cardmgmt.recover_stalled_work", expires=60)
def recover_stalled_work_task() -> int:
    from cardmgmt.services.recovery import recover_stalled_work

    return recover_stalled_work()
