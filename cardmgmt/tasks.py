"""Celery tasks of the inventory: thin, they load a row and call a service."""

from __future__ import annotations

from celery import shared_task

from cardmgmt import services
from portal.context import Actor, request_id_scope


@shared_task(bind=True, name="cardmgmt.run_import_job", acks_late=True)
def run_import_job_task(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    with request_id_scope(self.request.id):
        job = services.run_import_job(actor=Actor.task("cardmgmt.run_import_job"), job_id=job_id)
    return job.status
