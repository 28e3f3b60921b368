"""Campaign runs end to end: real worker on Redis, PostgreSQL, the SMPP link process and the
SMSC simulator with virtual cards that answer with real PoRs."""

from __future__ import annotations

import datetime

import pytest
from django.db.models import Count
from django.utils import timezone

from campaigns import services
from campaigns.models import CampaignRun, CampaignTarget
from cardmgmt.models import CardProfile, KeySet, OtaJob, OtaMessage
from portal.context import Actor
from tests.campaigns.conftest import make_fleet
from tests.conftest import WorkerProcess, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]
ACTOR = Actor.command("tests")


def new_campaign(name="audit all", **values):  # type: ignore[no-untyped-def]
    values = {"action": "audit", "target_kind": "filter", "chunk_size": 500, **values}
    return services.create_campaign(actor=ACTOR, name=name, **values)


def wait_run(run, states=("done",), timeout=150):  # type: ignore[no-untyped-def]
    def check():  # type: ignore[no-untyped-def]
        current = CampaignRun.objects.get(pk=run.pk)
        return current if current.state in states else None

    return wait_for(check, timeout, interval=0.5)


def assert_exactly_once(run, expected):  # type: ignore[no-untyped-def]
    targets = CampaignTarget.objects.filter(run=run)
    assert targets.count() == expected
    assert not targets.values("subscriber").annotate(n=Count("id")).filter(n__gt=1).exists()
    jobs = OtaJob.objects.filter(pk__in=targets.values("job_id"))
    assert jobs.count() == expected
    # One job per card for this run, and every counter used once per card.
    assert not jobs.values("card").annotate(n=Count("id")).filter(n__gt=1).exists()
    messages = OtaMessage.objects.filter(job__in=jobs)
    assert not messages.values("card", "counter").annotate(n=Count("id")).filter(n__gt=1).exists()


@pytest.mark.parametrize("campaign_lab", [10_000], indirect=True)
def test_ten_thousand_targets_run_to_completion(campaign_lab):
    campaign = new_campaign(chunk_size=2000, notify_emails="ops@example.com")
    started = timezone.now()
    run = services.start_run(actor=ACTOR, campaign=campaign)
    # About 110 s on the shared 2-core box under a load average of 9 (docs/campaigns.md);
    # the bound leaves room for a busier machine.
    run = wait_run(run, timeout=300)
    assert run.total == 10_000
    assert run.counters["confirmed"] == 10_000, (run.counters, run.failure_reasons)
    assert run.counters["failed"] == 0
    assert run.notified_at is not None
    assert_exactly_once(run, 10_000)
    # Every card's counter moved exactly once, and the PoRs were verified.
    assert set(KeySet.objects.values_list("counter", flat=True)) == {1}
    assert not OtaMessage.objects.exclude(state="confirmed").exists()
    assert len(run.samples) >= 2
    elapsed = (run.finished - started).total_seconds()
    print(f"10,000 targets confirmed in {elapsed:.1f} s")


def test_pause_resume_and_cancel(campaign_lab):
    make_fleet(400, profile=campaign_lab.profile, start=10_000)  # no twins
    # The 400 extra cards have no virtual twin: their packets are submitted but never
    # confirmed, so the run stays open long enough to pause, resume and cancel it.
    campaign = new_campaign(chunk_size=50, rate_limit=100)
    run = services.start_run(actor=ACTOR, campaign=campaign)
    wait_for(lambda: CampaignRun.objects.get(pk=run.pk).planned >= 100, 30)
    services.pause_run(actor=ACTOR, run=run)
    paused_at = CampaignRun.objects.get(pk=run.pk).planned
    # Within seconds nothing more is planned.
    import time

    time.sleep(3)
    still = CampaignRun.objects.get(pk=run.pk)
    assert still.state == "paused"
    assert still.planned <= paused_at + 50  # at most the chunk that held the lock
    services.resume_run(actor=ACTOR, run=run)
    wait_for(lambda: CampaignRun.objects.get(pk=run.pk).planned > still.planned, 30)
    services.cancel_run(actor=ACTOR, run=run)
    run = CampaignRun.objects.get(pk=run.pk)
    assert run.state == "cancelled"
    assert not CampaignTarget.objects.filter(
        run=run, state__in=("queued", "submitted", "delivered")
    ).exists()
    planned = run.planned
    time.sleep(2)
    assert CampaignRun.objects.get(pk=run.pk).planned == planned
    assert not OtaMessage.objects.filter(
        job_id__in=CampaignTarget.objects.filter(run=run).values("job_id"), state="queued"
    ).exists()
    assert_exactly_once(run, CampaignTarget.objects.filter(run=run).count())


def test_rerun_only_the_failed_targets(campaign_lab):
    broken = CardProfile.objects.create(
        name="Broken RAM TAR", vendor="Lab", algorithms=["aes128"], ram_tar="AABBCC", por_timeout=5
    )
    # The twins know their RAM TAR from the fleet file: these 20 cards now get packets for a
    # TAR they do not have and answer "TAR unknown" (not retried).
    failing = campaign_lab.cards[:20]
    type(failing[0]).objects.filter(pk__in=[c.pk for c in failing]).update(profile=broken)
    campaign = new_campaign()
    first = wait_run(services.start_run(actor=ACTOR, campaign=campaign))
    assert first.counters["failed"] == 20 and first.counters["confirmed"] == 180
    assert any("TAR" in reason for reason in first.failure_reasons)
    type(failing[0]).objects.filter(pk__in=[c.pk for c in failing]).update(
        profile=campaign_lab.profile
    )
    second = wait_run(services.start_run(actor=ACTOR, campaign=campaign, rerun_of=first))
    assert second.total == 20
    assert second.counters["confirmed"] == 20
    assert set(CampaignTarget.objects.filter(run=second).values_list("card_id", flat=True)) == {
        c.pk for c in failing
    }


def test_worker_killed_mid_run_processes_every_target_once(campaign_lab, monkeypatch):
    make_fleet(1800, profile=campaign_lab.profile, start=20_000)  # 2000 targets in all
    campaign = new_campaign(chunk_size=100)
    run = services.start_run(actor=ACTOR, campaign=campaign)
    wait_for(lambda: CampaignRun.objects.get(pk=run.pk).planned >= 300, 60, interval=0.05)
    campaign_lab.worker.kill()  # SIGKILL: no ack for the task in hand
    mid = CampaignRun.objects.get(pk=run.pk)
    assert not mid.planning_done
    replacement = WorkerProcess()
    replacement.start()

    def planned_all():  # type: ignore[no-untyped-def]
        services.revive_runs()  # what beat does every 5 s
        return CampaignRun.objects.get(pk=run.pk).planning_done

    try:
        wait_for(planned_all, 120, interval=1)
    finally:
        campaign_lab.worker = replacement
    run = CampaignRun.objects.get(pk=run.pk)
    assert run.planned + run.skipped == 2000
    assert_exactly_once(run, 2000)
    replacement.stop()


def test_maintenance_window_is_respected(campaign_lab):
    now = timezone.now()
    closed_day = (now.weekday() + 3) % 7
    campaign = new_campaign(window_weekdays=[closed_day], window_timezone="UTC")
    run = services.start_run(actor=ACTOR, campaign=campaign)
    wait_for(lambda: "maintenance window" in CampaignRun.objects.get(pk=run.pk).waiting, 30)
    assert not CampaignTarget.objects.filter(run=run).exists()
    # The same planning step with the clock moved into the window plans a chunk.
    opens = now + datetime.timedelta(days=3)
    outcome = services.plan_next_chunk(
        run_id=run.pk, cursor=0, now=opens.replace(hour=12, minute=0)
    )
    assert outcome.status == "planned"
    # Open the window for today: the worker carries on by itself.
    services.update_campaign(actor=ACTOR, campaign=campaign, window_weekdays=[])
    assert wait_run(run).counters["confirmed"] == 200


def test_interval_schedule_fires_from_beats_database(campaign_lab, beat):
    campaign = new_campaign(schedule_kind="interval", interval_seconds=2)
    assert campaign.periodic_task is not None and campaign.periodic_task.interval.every == 2
    run = wait_for(lambda: CampaignRun.objects.filter(campaign=campaign).first(), 40)
    assert run.created_by == "campaigns.schedule"
    wait_run(run)
