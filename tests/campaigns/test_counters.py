"""A run's counters kept as the refresh goes (docs/campaigns.md, "Execution"): the refresh
folds only the targets whose OTA job moved and adds the changes to the chunks' sums, so the
counters must equal a count of the targets after every turn, whatever moved in between.

No worker: the OTA side's progress is written here as delivery writes it (the first packet's
state, the job's state and result)."""

from __future__ import annotations

import datetime
import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import services
from campaigns.models import CampaignChunk, CampaignRun, CampaignTarget, RunFailureReason
from cardmgmt.models import OtaJob, OtaMessage
from portal.context import Actor
from tests.campaigns.conftest import make_fleet

ACTOR = Actor.command("tests")
OPEN = ("queued", "submitted", "delivered")


@pytest.fixture
def fleet(db):
    return make_fleet(30)


class Clock:
    """Refresh times 10 s apart: two refreshes closer than a second are one chain's
    duplicate, which returns at once."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def refresh(self, run: CampaignRun) -> CampaignRun:
        self.now += datetime.timedelta(seconds=10)
        return services.refresh_run(run_id=run.pk, now=self.now)


def planned_run(**values) -> CampaignRun:  # type: ignore[no-untyped-def]
    """A run of the 30 subscribers in chunks of 10, planned to the end."""
    values = {"name": "count", "action": "audit", "target_kind": "filter", "chunk_size": 10}
    campaign = services.create_campaign(actor=ACTOR, **values)
    run = services.start_run(actor=ACTOR, campaign=campaign)
    return plan_rest(run)


def plan_rest(run: CampaignRun) -> CampaignRun:
    cursor = CampaignRun.objects.get(pk=run.pk).cursor
    while services.plan_next_chunk(run_id=run.pk, cursor=cursor).status == "planned":
        cursor = CampaignRun.objects.get(pk=run.pk).cursor
    run = CampaignRun.objects.get(pk=run.pk)
    assert run.planning_done
    return run


def jobs(run: CampaignRun) -> list[OtaJob]:
    ids = CampaignTarget.objects.filter(run=run).order_by("subscriber_id").values("job_id")
    return list(OtaJob.objects.filter(pk__in=ids).order_by("pk"))


def packet(job: OtaJob, state: str) -> None:
    OtaMessage.objects.filter(job=job, step=0).update(state=state)


def finish(job: OtaJob, state: str, result: str = "") -> None:
    packet(job, {"done": "confirmed", "failed": "failed", "cancelled": "cancelled"}[state])
    OtaJob.objects.filter(pk=job.pk).update(state=state, result=result, finished=timezone.now())


def counted(run: CampaignRun) -> dict[str, int]:
    """The targets counted by state, as the refresh did before it kept its counts."""
    rows = CampaignTarget.objects.filter(run=run).values_list("state").annotate(n=Count("id"))
    counts = dict.fromkeys(services.TargetState.values, 0)
    counts.update(dict(rows.values_list("state", "n")))
    counts["pending"] = max(0, run.total - sum(counts.values())) if not run.planning_done else 0
    return counts


def assert_exact(run: CampaignRun) -> None:
    """Counters, failure reasons and every chunk's open targets agree with the targets."""
    run = CampaignRun.objects.get(pk=run.pk)
    assert run.counters == counted(run)
    failed = (
        CampaignTarget.objects.filter(run=run, state="failed")
        .values_list("reason")
        .annotate(n=Count("id"))
    )
    assert {r.reason: r.targets for r in RunFailureReason.objects.filter(run=run)} == dict(
        failed.values_list("reason", "n")
    )
    for chunk in CampaignChunk.objects.filter(run=run):
        in_chunk = CampaignTarget.objects.filter(
            run=run, subscriber_id__gt=chunk.after, subscriber_id__lte=chunk.last
        )
        assert chunk.open_targets == in_chunk.filter(state__in=OPEN).count(), chunk


def test_counters_stay_exact_as_targets_move_between_refreshes(fleet):
    clock = Clock()
    run = planned_run()
    clock.refresh(run)
    assert_exact(run)
    assert CampaignRun.objects.get(pk=run.pk).counters["queued"] == 30
    a, b, c, d, e, f, g, *_rest = jobs(run)
    packet(a, "submitted")
    packet(b, "delivered")
    finish(c, "done")
    finish(d, "failed", "PoR: TAR unknown")
    finish(e, "cancelled", "cancelled by ops")
    clock.refresh(run)
    assert_exact(run)
    counters = CampaignRun.objects.get(pk=run.pk).counters
    assert (counters["submitted"], counters["delivered"], counters["confirmed"]) == (1, 1, 1)
    assert (counters["failed"], counters["cancelled"], counters["queued"]) == (1, 1, 25)
    # In flight again (a retry queues the packet anew), on, confirmed, failed with the same
    # reason as before: the targets already folded move on from where they were.
    packet(a, "queued")
    packet(b, "submitted")
    finish(f, "done")
    finish(g, "failed", "PoR: TAR unknown")
    clock.refresh(run)
    assert_exact(run)
    run = CampaignRun.objects.get(pk=run.pk)
    assert run.failure_reasons == {"PoR: TAR unknown": 2}
    assert (run.counters["queued"], run.counters["submitted"], run.state) == (24, 1, "running")


def test_the_run_is_done_when_its_last_target_is_final(fleet):
    clock = Clock()
    run = planned_run()
    *first, last = jobs(run)
    for job in first:
        finish(job, "done")
    packet(last, "delivered")
    run = clock.refresh(run)
    assert run.state == "running" and run.counters["delivered"] == 1
    finish(last, "failed", "no PoR")
    run = clock.refresh(run)
    assert run.state == "done"
    assert (run.counters["confirmed"], run.counters["failed"]) == (29, 1)
    assert_exact(run)
    assert not CampaignChunk.objects.filter(run=run, open_targets__gt=0).exists()


def test_a_refresh_with_nothing_in_flight_moves_no_target(fleet):
    clock = Clock()
    run = planned_run()
    with CaptureQueriesContext(services.connection) as queries:
        clock.refresh(run)
    assert not [q for q in queries if "UPDATE campaigns_campaigntarget" in q["sql"]]
    # One packet submitted: the fold runs and moves that target alone.
    packet(jobs(run)[3], "submitted")
    with CaptureQueriesContext(services.connection) as queries:
        clock.refresh(run)
    assert [q for q in queries if "UPDATE campaigns_campaigntarget" in q["sql"]]
    assert CampaignTarget.objects.filter(run=run).exclude(state="queued").count() == 1
    assert_exact(run)


def test_counters_exact_after_a_cancel(fleet):
    clock = Clock()
    run = planned_run()
    a, b, c, d, *_rest = jobs(run)
    packet(a, "submitted")
    finish(b, "done")
    finish(c, "failed", "SW 6A82")
    clock.refresh(run)
    packet(d, "delivered")  # not folded yet when the run is cancelled
    run = services.cancel_run(actor=ACTOR, run=run)
    assert_exact(run)
    run = CampaignRun.objects.get(pk=run.pk)
    counters = run.counters
    assert (counters["cancelled"], counters["confirmed"], counters["failed"]) == (28, 1, 1)
    assert not CampaignChunk.objects.filter(run=run, open_targets__gt=0).exists()
    clock.refresh(run)  # the end-of-run refresh
    assert_exact(run)


def test_counters_exact_in_a_rerun_of_the_failed_targets(fleet):
    clock = Clock()
    first = planned_run()
    for n, job in enumerate(jobs(first)):
        finish(job, "failed" if n % 10 == 0 else "done", "TAR unknown" if n % 10 == 0 else "")
    first = clock.refresh(first)
    assert first.state == "done" and first.counters["failed"] == 3
    second = services.start_run(actor=ACTOR, campaign=first.campaign, rerun_of=first)
    second = plan_rest(second)
    assert second.total == 3
    clock.refresh(second)
    assert_exact(second)
    one, two, three = jobs(second)
    finish(one, "done")
    packet(two, "submitted")
    clock.refresh(second)
    assert_exact(second)
    finish(two, "done")
    finish(three, "failed", "TAR unknown")
    second = clock.refresh(second)
    assert second.state == "done"
    assert (second.counters["confirmed"], second.counters["failed"]) == (2, 1)
    assert_exact(second)
    assert_exact(first)  # the first run's own counts are untouched


def test_counters_exact_after_a_planner_died(fleet, monkeypatch):
    clock = Clock()
    campaign = services.create_campaign(
        actor=ACTOR, name="crash", action="audit", target_kind="filter", chunk_size=10
    )
    run = services.start_run(actor=ACTOR, campaign=campaign)
    real_plan_rows = services._plan_rows

    def dies(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("worker lost")

    # Killed mid-chunk: the chunk rolls back, nothing of it is counted.
    monkeypatch.setattr(services, "_plan_rows", dies)
    with pytest.raises(RuntimeError):
        services.plan_next_chunk(run_id=run.pk, cursor=0)
    monkeypatch.setattr(services, "_plan_rows", real_plan_rows)
    clock.refresh(run)
    assert_exact(run)
    assert CampaignRun.objects.get(pk=run.pk).counters["pending"] == 30
    # Killed between the chunk's commit and the run's sum: the refresh sums it.
    monkeypatch.setattr(services, "_sum_chunks", lambda run_id: None)
    assert services.plan_next_chunk(run_id=run.pk, cursor=0).status == "planned"
    monkeypatch.undo()
    assert CampaignRun.objects.get(pk=run.pk).planned == 0
    packet(jobs(run)[0], "submitted")
    clock.refresh(run)
    assert_exact(run)
    run = plan_rest(run)
    finish(jobs(run)[0], "done")
    clock.refresh(run)
    assert_exact(run)
    assert CampaignRun.objects.get(pk=run.pk).counters["confirmed"] == 1


def test_the_migration_counts_the_runs_there_are(fleet):
    clock = Clock()
    run = planned_run()
    a, b, c, *_rest = jobs(run)
    finish(a, "done")
    finish(b, "failed", "SW 6985")
    packet(c, "delivered")
    clock.refresh(run)
    expected = CampaignRun.objects.get(pk=run.pk).counters
    # A run from before the migration: none of its bookkeeping.
    CampaignRun.objects.filter(pk=run.pk).update(state_changes={})
    CampaignChunk.objects.filter(run=run).update(open_targets=0, planned_at=None)
    RunFailureReason.objects.filter(run=run).delete()
    migration = importlib.import_module("campaigns.migrations.0005_incremental_counters")
    migration.count_existing_runs(apps, None)
    assert_exact(run)
    # Its chunks are found again: the next job to finish is folded.
    finish(c, "done")
    run = clock.refresh(run)
    assert run.counters == expected | {"delivered": 0, "confirmed": 2}
    assert_exact(run)


def test_a_refresh_folds_its_jobs_a_slice_at_a_time_and_holds_only_sums(fleet, monkeypatch):
    """A refresh after a long interval may move most of a run: the job ids are folded
    `FOLD_SLICE` at a time and only the sums of what moved are kept, with the same counters."""
    monkeypatch.setattr(services, "FOLD_SLICE", 4)
    clock = Clock()
    run = planned_run()
    clock.refresh(run)
    all_jobs = jobs(run)
    for n, job in enumerate(all_jobs[:23]):
        if n % 3 == 0:
            finish(job, "done")
        elif n % 3 == 1:
            finish(job, "failed", f"PoR: reason {n % 2}")
        else:
            packet(job, "submitted")
    with CaptureQueriesContext(connection) as ctx:
        clock.refresh(run)
    folds = [q for q in ctx.captured_queries if "UPDATE campaigns_campaigntarget" in q["sql"]]
    assert len(folds) == 6  # 23 jobs moved, 4 a statement
    assert_exact(run)
    counters = CampaignRun.objects.get(pk=run.pk).counters
    assert (counters["confirmed"], counters["failed"], counters["submitted"]) == (8, 8, 7)
