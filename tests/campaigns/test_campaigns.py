"""Campaigns without a worker: targeting, list validation, windows, schedules, chunk planning
(exactly once, stale duplicates), UI and API roles."""

from __future__ import annotations

import datetime
import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from campaigns import services
from campaigns.models import Campaign, CampaignChunk, CampaignRun, CampaignTarget
from campaigns.targeting import filter_subscribers, parse_target_list
from cardmgmt import services as inventory
from cardmgmt.models import KeySet, OtaJob, OtaMessage, Segment, Subscriber
from portal.context import Actor
from tests.campaigns.conftest import fleet_iccid, make_fleet

ACTOR = Actor.command("tests")
UTC = datetime.UTC


@pytest.fixture
def fleet(db):
    segment = Segment.objects.create(name="pilot")
    profile, cards = make_fleet(30, segment=segment)
    return profile, cards, segment


def campaign(**values):  # type: ignore[no-untyped-def]
    values = {"name": "c", "action": "audit", "target_kind": "filter", "chunk_size": 10, **values}
    return services.create_campaign(actor=ACTOR, **values)


# --- maintenance windows ------------------------------------------------------------------


def window(start, end, days=(), tz="Europe/Berlin"):  # type: ignore[no-untyped-def]
    return Campaign(
        window_start=start, window_end=end, window_weekdays=list(days), window_timezone=tz
    )


def test_window_open_and_closed_with_injected_time():
    c = window(datetime.time(22, 0), datetime.time(4, 0), days=[0])  # Monday night
    monday_23 = datetime.datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 Berlin, Monday
    assert services.window_open(c, monday_23) == (True, 0.0)
    tuesday_0330 = datetime.datetime(2026, 11, 24, 2, 30, tzinfo=UTC)  # 03:30 Berlin
    assert services.window_open(c, tuesday_0330)[0]
    tuesday_noon = datetime.datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    is_open, wait = services.window_open(c, tuesday_noon)
    assert not is_open and wait == pytest.approx(6 * 86400 + 10 * 3600, abs=1)  # next Monday 22:00


def test_no_window_is_always_open():
    assert services.window_open(Campaign(), datetime.datetime.now(UTC)) == (True, 0.0)


def test_chunk_waits_outside_the_window(fleet):
    c = campaign(window_start=datetime.time(1, 0), window_end=datetime.time(2, 0))
    run = services.start_run(actor=ACTOR, campaign=c)
    noon = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert services.plan_next_chunk(run_id=run.pk, cursor=0, now=noon).status == "waiting"
    assert not CampaignTarget.objects.exists()
    assert "maintenance window" in CampaignRun.objects.get(pk=run.pk).waiting
    inside = noon.replace(hour=1, minute=30)
    assert services.plan_next_chunk(run_id=run.pk, cursor=0, now=inside).planned == 10


# --- schedules ----------------------------------------------------------------------------


def test_cron_schedule_creates_the_periodic_task(fleet):
    c = campaign(schedule_kind="cron", cron="30 2 * * 1-5", schedule_timezone="Europe/Berlin")
    task = PeriodicTask.objects.get(pk=c.periodic_task_id)
    assert task.task == "campaigns.start_scheduled_run" and json.loads(task.args) == [c.pk]
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "30",
        "2",
        "*",
        "*",
        "1-5",
    )
    assert str(cron.timezone) == "Europe/Berlin"
    assert c.state == "scheduled" and task.enabled and task.queue == "campaigns"
    c = services.update_campaign(actor=ACTOR, campaign=c, schedule_kind="manual")
    assert c.periodic_task is None and not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_once_and_interval_schedules(fleet):
    at = datetime.datetime(2030, 1, 1, 3, 0, tzinfo=UTC)
    once = campaign(name="once", schedule_kind="once", start_at=at)
    assert once.periodic_task.one_off and once.periodic_task.clocked.clocked_time == at
    every = campaign(name="every", schedule_kind="interval", interval_seconds=3600)
    assert every.periodic_task.interval.every == 3600


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"schedule_kind": "cron", "cron": "61 * * * *"}, "cron"),
        ({"schedule_kind": "cron", "cron": "* *"}, "cron"),
        ({"schedule_kind": "once"}, "start_at"),
        ({"schedule_kind": "interval"}, "interval_seconds"),
        ({"window_timezone": "Mars/Olympus"}, "window_timezone"),
        ({"window_start": datetime.time(1, 0)}, "window_end"),
        ({"action": "load_install"}, "applet_version"),
        ({"sync_mode": 1}, "sync_mode"),
        ({"window_weekdays": [7]}, "window_weekdays"),
        ({"notify_emails": "not-an-address"}, "notify_emails"),
        ({"priority": 0}, "priority"),
    ],
)
def test_bad_campaigns_are_refused_by_field(fleet, values, field):
    with pytest.raises(ValidationError) as info:
        campaign(**values)
    assert field in info.value.message_dict


def test_rate_limit_stays_within_the_links(fleet):
    inventory.save_smsc_link(
        actor=ACTOR,
        name="l",
        host="127.0.0.1",
        port=2775,
        system_id="x",
        password="y",
        source_addr="1",
        tps=50,
    )
    with pytest.raises(ValidationError) as info:
        campaign(rate_limit=51)
    assert "rate_limit" in info.value.message_dict
    assert campaign(rate_limit=50).rate_limit == 50


# --- targets ------------------------------------------------------------------------------


def test_list_validation_reports_errors_by_line(fleet):
    _profile, cards, _segment = fleet
    first = Subscriber.objects.get(card=cards[0])
    text = "\n".join(
        [
            "msisdn",
            first.msisdn,
            "+49 170",  # too short once spaces go
            fleet_iccid(999)[:-1] + "0",  # bad Luhn digit
            "hello",
            first.msisdn,
            "+491234567890",
            cards[0].iccid,
        ]
    )
    parsed = parse_target_list(text)
    joined = "\n".join(parsed.errors)
    assert "line 3:" in joined and "line 4:" in joined and "line 5:" in joined
    assert "line 6: " in joined and "twice" in joined
    assert "line 7: no subscriber with MSISDN +491234567890" in joined
    assert "line 8: ICCID" in joined and "already listed on line 2" in joined
    with pytest.raises(ValidationError) as info:
        campaign(target_kind="list", target_list=text)
    assert "target_list" in info.value.message_dict
    assert not Campaign.objects.exists()


def test_list_target_and_dry_run(fleet):
    _profile, cards, _segment = fleet
    text = "\n".join([cards[3].iccid, Subscriber.objects.get(card=cards[5]).msisdn])
    c = campaign(target_kind="list", target_list=text.encode())
    preview = services.preview_targets(c)
    assert preview.count == 2 and {r["iccid"] for r in preview.sample} == {
        cards[3].iccid,
        cards[5].iccid,
    }


def test_filter_criteria(fleet):
    _profile, cards, segment = fleet
    from cardmgmt.models import Installation
    from cardmgmt.ota import build_demo_cap

    version = inventory.upload_applet_version(
        actor=ACTOR, applet_name="a", version="1", cap_bytes=build_demo_cap(), cap_name="a.cap"
    )
    Installation.objects.create(card=cards[0], applet_version=version, state="installed")
    c = Campaign(name="probe")
    assert filter_subscribers(c).count() == 30
    c.installed_version = version
    assert list(filter_subscribers(c).values_list("card_id", flat=True)) == [cards[0].pk]
    c.installed_version, c.missing_version = None, version
    assert filter_subscribers(c).count() == 29
    c.missing_version = None
    c.device_model = "Nokia 6310i"
    assert filter_subscribers(c).count() == 0
    c.device_model = ""
    c.last_sync_older_days = 7  # nobody synced: everybody qualifies
    assert filter_subscribers(c).count() == 30
    c.sync_card_outdated = True  # nobody has a sync profile
    assert filter_subscribers(c).count() == 0
    c.sync_card_outdated = False
    c.handset_changed_since = datetime.date(2020, 1, 1)
    assert filter_subscribers(c).count() == 0
    c.handset_changed_since = None
    c._segments = [segment]
    assert filter_subscribers(c).count() == 30
    c._card_profiles = []
    Subscriber.objects.filter(card=cards[1]).update(status="suspended")
    assert filter_subscribers(c).count() == 29


# --- planning -----------------------------------------------------------------------------


def test_chunks_plan_each_target_once_and_ignore_stale_duplicates(fleet):
    c = campaign(priority=7)
    run = services.start_run(actor=ACTOR, campaign=c)
    assert run.total == 30
    first = services.plan_next_chunk(run_id=run.pk, cursor=0)
    assert (first.status, first.planned) == ("planned", 10)
    # A redelivered task carrying the old cursor does nothing.
    assert services.plan_next_chunk(run_id=run.pk, cursor=0).status == "stale"
    cursor = CampaignRun.objects.get(pk=run.pk).cursor
    services.plan_next_chunk(run_id=run.pk, cursor=cursor)
    cursor = CampaignRun.objects.get(pk=run.pk).cursor
    services.plan_next_chunk(run_id=run.pk, cursor=cursor)
    run = CampaignRun.objects.get(pk=run.pk)
    assert run.planned == 30
    cursor = run.cursor
    assert services.plan_next_chunk(run_id=run.pk, cursor=cursor).status in ("done", "stopped")
    assert CampaignTarget.objects.filter(run=run).count() == 30
    messages = OtaMessage.objects.filter(job__in=OtaJob.objects.all())
    assert messages.count() == 30 and set(messages.values_list("state", flat=True)) == {"queued"}
    assert set(messages.values_list("priority", flat=True)) == {7}
    assert set(KeySet.objects.values_list("counter", flat=True)) == {1}
    assert all(len(m.user_data) == 1 and m.counter == 1 for m in messages)


def test_a_chunk_whose_planner_died_is_planned_once_by_the_redelivered_task(fleet, monkeypatch):
    c = campaign()
    run = services.start_run(actor=ACTOR, campaign=c)
    real_plan_rows = services._plan_rows

    def dies(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("worker lost")

    monkeypatch.setattr(services, "_plan_rows", dies)
    with pytest.raises(RuntimeError):
        services.plan_next_chunk(run_id=run.pk, cursor=0)
    monkeypatch.setattr(services, "_plan_rows", real_plan_rows)
    # The claim committed (the cursor moved on), the chunk's planning rolled back: nothing
    # written, no counter spent.
    run = CampaignRun.objects.get(pk=run.pk)
    chunk = CampaignChunk.objects.get(run=run)
    assert (run.cursor, chunk.after, chunk.planned) == (chunk.last, 0, False)
    assert not CampaignTarget.objects.exists() and not OtaJob.objects.exists()
    assert set(KeySet.objects.values_list("counter", flat=True)) == {0}
    # The redelivered task (old cursor) plans that chunk; a second delivery finds it planned.
    again = services.plan_next_chunk(run_id=run.pk, cursor=0)
    assert (again.status, again.planned) == ("planned", 10)
    assert services.plan_next_chunk(run_id=run.pk, cursor=0).status == "stale"
    assert services.plan_chunk(chunk_id=chunk.pk).status == "stale"
    assert CampaignRun.objects.get(pk=run.pk).planned == 10
    assert CampaignTarget.objects.filter(run=run).count() == 10
    assert sorted(KeySet.objects.values_list("counter", flat=True)) == [0] * 20 + [1] * 10


def test_a_chunk_claimed_before_a_pause_is_planned_after_the_resume(fleet, monkeypatch):
    c = campaign()
    run = services.start_run(actor=ACTOR, campaign=c)
    monkeypatch.setattr(services, "plan_chunk", lambda **kwargs: services.ChunkOutcome("lost"))
    services.plan_next_chunk(run_id=run.pk, cursor=0)  # claimed; its planner never came
    monkeypatch.undo()
    chunk = CampaignChunk.objects.get(run=run)
    services.pause_run(actor=ACTOR, run=run)
    assert services.plan_chunk(chunk_id=chunk.pk).status == "stopped"
    assert not CampaignTarget.objects.exists()
    services.resume_run(actor=ACTOR, run=run)
    outcome = services.plan_chunk(chunk_id=chunk.pk)
    assert (outcome.status, outcome.planned) == ("planned", 10)
    run = CampaignRun.objects.get(pk=run.pk)
    assert (run.planned, run.planning_done) == (10, False)
    # The rest of the run: planning is done once every range is claimed and planned.
    cursor = run.cursor
    while (outcome := services.plan_next_chunk(run_id=run.pk, cursor=cursor)).status == "planned":
        cursor = CampaignRun.objects.get(pk=run.pk).cursor
    run = CampaignRun.objects.get(pk=run.pk)
    assert (outcome.status, run.planned, run.planning_done) == ("done", 30, True)
    assert CampaignTarget.objects.filter(run=run).count() == 30


def test_start_refused_while_a_run_is_active(fleet):
    c = campaign()
    services.start_run(actor=ACTOR, campaign=c)
    with pytest.raises(ValidationError):
        services.start_run(actor=ACTOR, campaign=c)


def test_cancel_withdraws_queued_packets(fleet):
    c = campaign()
    run = services.start_run(actor=ACTOR, campaign=c)
    services.plan_next_chunk(run_id=run.pk, cursor=0)
    run = services.cancel_run(actor=ACTOR, run=run)
    assert run.state == "cancelled"
    assert set(OtaMessage.objects.values_list("state", flat=True)) == {"cancelled"}
    assert set(CampaignTarget.objects.values_list("state", flat=True)) == {"cancelled"}
    assert Campaign.objects.get(pk=c.pk).state == "cancelled"


def test_push_params_skips_subscribers_without_a_sync_profile(fleet):
    c = campaign(action="push_params")
    run = services.start_run(actor=ACTOR, campaign=c)
    outcome = services.plan_next_chunk(run_id=run.pk, cursor=0)
    assert outcome.skipped == 10 and outcome.planned == 0
    assert set(CampaignTarget.objects.values_list("reason", flat=True)) == {"no sync profile"}


# --- UI and API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("administrator", 200, 302),
        ("operator", 200, 302),
        ("support", 200, 403),
        ("auditor", 200, 403),
    ],
)
def test_ui_roles(fleet, client, make_user, role, read, write):
    user = make_user(role)
    client.force_login(user)
    c = campaign()
    assert client.get(reverse("campaigns:campaign_list")).status_code == read
    assert client.get(reverse("campaigns:campaign_detail", args=[c.pk])).status_code == read
    response = client.post(
        reverse("campaigns:campaign_add"),
        {
            "name": f"new {role}",
            "action": "audit",
            "target_kind": "filter",
            "only_active": "on",
            "schedule_kind": "manual",
            "schedule_timezone": "UTC",
            "window_timezone": "UTC",
            "chunk_size": "100",
            "priority": "10",
        },
    )
    assert response.status_code == write, response.content[:2000]
    start = client.post(reverse("campaigns:campaign_start", args=[c.pk]))
    assert start.status_code == (302 if write == 302 else 403)


def test_anonymous_goes_to_login(client, db):
    assert client.get(reverse("campaigns:campaign_list")).status_code == 302


def test_dry_run_in_the_form(fleet, client, make_user):
    client.force_login(make_user("operator"))
    _profile, _cards, segment = fleet
    response = client.post(
        reverse("campaigns:campaign_add"),
        {
            "name": "dry",
            "action": "audit",
            "target_kind": "filter",
            "segments": [segment.pk],
            "schedule_kind": "manual",
            "schedule_timezone": "UTC",
            "window_timezone": "UTC",
            "chunk_size": "100",
            "priority": "10",
            "dry_run": "1",
        },
    )
    assert response.status_code == 200
    assert b'id="dry-run-count">30<' in response.content
    assert not Campaign.objects.filter(name="dry").exists()


def test_run_pages_progress_and_csv(fleet, client, make_user):
    client.force_login(make_user("auditor"))
    run = services.start_run(actor=ACTOR, campaign=campaign())
    services.plan_next_chunk(run_id=run.pk, cursor=0)
    services.refresh_run(run_id=run.pk)
    for name in ("run_detail", "run_progress", "run_targets"):
        assert client.get(reverse(f"campaigns:{name}", args=[run.pk])).status_code == 200
    progress = client.get(reverse("campaigns:run_progress", args=[run.pk]))
    assert b'hx-trigger="every 2s"' in progress.content and b"<svg" in progress.content
    csv = client.get(reverse("campaigns:run_targets_csv", args=[run.pk]) + "?state=queued")
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert lines[0].startswith("target,msisdn,iccid,state") and len(lines) == 11
    bad = client.get(reverse("campaigns:run_targets_csv", args=[run.pk]) + "?state=nope")
    assert bad.status_code == 400
    assert client.post(reverse("campaigns:run_pause", args=[run.pk])).status_code == 403


def test_api_roles_and_actions(fleet, api_client_for):
    operator = api_client_for("operator")
    response = operator.post(
        "/api/campaigns/", {"name": "api", "action": "audit", "chunk_size": 100}, format="json"
    )
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    bad = operator.post(
        "/api/campaigns/",
        {"name": "bad", "action": "audit", "schedule_kind": "cron", "cron": "x"},
        format="json",
    )
    assert bad.status_code == 400 and "cron" in bad.json()
    preview = operator.post(
        "/api/campaigns/preview/", {"action": "audit", "target_kind": "filter"}, format="json"
    )
    assert preview.status_code == 200 and preview.json()["count"] == 30
    support = api_client_for("support")
    assert support.get("/api/campaigns/").status_code == 200
    assert support.post(f"/api/campaigns/{pk}/start/").status_code == 403
    started = operator.post(f"/api/campaigns/{pk}/start/")
    assert started.status_code == 201
    run_id = started.json()["id"]
    assert operator.post(f"/api/campaign-runs/{run_id}/pause/").json()["state"] == "paused"
    assert operator.post(f"/api/campaign-runs/{run_id}/pause/").status_code == 400
    assert operator.post(f"/api/campaign-runs/{run_id}/resume/").json()["state"] == "running"
    assert api_client_for("auditor").get(f"/api/campaign-runs/{run_id}/targets/").status_code == 200
    assert operator.post(f"/api/campaign-runs/{run_id}/cancel/").json()["state"] == "cancelled"
    read_only = api_client_for("operator", write=False)
    assert read_only.post(f"/api/campaigns/{pk}/start/").status_code == 403
