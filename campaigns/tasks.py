"""Campaign tasks: thin, each loads a run by id and calls a service. Late acknowledgement:
a task lost with its worker is delivered again, and the services make a repeat harmless
(the chunk's cursor check, the chunk planned once under its row lock, the unique target per
run)."""

from __future__ import annotations

from celery import shared_task

from campaigns import services
from portal.context import request_id_scope


@shared_task(bind=True, name="campaigns.plan_chunk", acks_late=True)
def plan_chunk_task(self, run_id: int, cursor: int) -> str:  # type: ignore[no-untyped-def]
    with request_id_scope(self.request.id):
        return services.plan_next_chunk(run_id=run_id, cursor=cursor).status


@shared_task(bind=True, name="campaigns.plan_claimed_chunk", acks_late=True)
def plan_claimed_chunk_task(self, chunk_id: int) -> str:  # type: ignore[no-untyped-def]
    with request_id_scope(self.request.id):
        return services.plan_chunk(chunk_id=chunk_id).status


@shared_task(bind=True, name="campaigns.refresh_run", acks_late=True)
def refresh_run_task(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    with request_id_scope(self.request.id):
        run = services.refresh_run(run_id=run_id)
        return run.state if run else "gone"


@shared_task(bind=True, name="campaigns.start_scheduled_run", acks_late=True)
def start_scheduled_run_task(self, campaign_id: int) -> int | None:  # type: ignore[no-untyped-def]
    with request_id_scope(self.request.id):
        run = services.start_scheduled_run(campaign_id=campaign_id)
        return run.pk if run else None


@shared_task(name="campaigns.revive_runs", expires=10)
def revive_runs_task() -> int:
    return services.revive_runs()
