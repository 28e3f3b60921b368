"""The only code that changes campaigns and runs. Each service takes the actor, runs in one
transaction, writes its audit entry and enqueues follow-up work on commit.

Execution (docs/campaigns.md): `start_run` creates the run; `plan_next_chunk` plans one
bounded chunk of targets under the run's row lock (keyset pagination on subscriber id, the
cursor moved in the same transaction as the chunk's rows) and re-queues itself; `refresh_run`
folds the OTA jobs' outcomes into the targets, the counters and the samples of the charts,
restarts a stalled chain, and finishes the run; its cost follows what moved since the last
refresh, not the run's size (see "progress" below).
"""

from __future__ import annotations

import bisect
import datetime
import json
import logging
import time
import zoneinfo
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from campaigns.choices import (
    ACTIVE_RUN_STATES,
    OPEN_TARGET_STATES,
    CampaignAction,
    CampaignState,
    RunState,
    ScheduleKind,
    TargetKind,
    TargetState,
)
from campaigns.models import (
    Campaign,
    CampaignChunk,
    CampaignListEntry,
    CampaignRun,
    CampaignTarget,
    RunFailureReason,
)
from campaigns.targeting import filter_subscribers, parse_target_list, source_subscribers
from cardmgmt import ota
from cardmgmt.choices import OtaJobState, OtaMessageState
from cardmgmt.models import OtaJob, OtaMessage, SmscLink
from cardmgmt.services.bulk import BulkTarget, copy_rows_varying, plan_bulk_jobs
from portal.audit import record_change, snapshot
from portal.context import Actor
from portal.db import planner_settings
from portal.models import AuditAction

log = logging.getLogger(__name__)

TASK_ACTOR = Actor.task("campaigns.run")
# Messages queued for the SMSC at a campaign's priority before its planning waits: a pause or
# a cancel then takes effect within the seconds the links need to drain this backlog.
# 0: no limit (the benchmark measures planning alone).
MAX_BACKLOG = getattr(settings, "CAMPAIGNS_MAX_BACKLOG", 5000)
REFRESH_SECONDS = getattr(settings, "CAMPAIGNS_REFRESH_SECONDS", 2.0)
# A planning chain silent this long while its run is running is restarted by refresh_run.
STALL_SECONDS = getattr(settings, "CAMPAIGNS_STALL_SECONDS", 15.0)
# A refresh waits at least this many times its own duration before the next one (at most
# MAX_REFRESH_SECONDS). A refresh costs what moved since the last one (milliseconds with the
# SMSC's window in flight), so this only bounds its share when very much is in flight.
REFRESH_COST_FACTOR = 10.0
MAX_REFRESH_SECONDS = 60.0
REFRESH_LOCK_SPACE = 0x43414D50  # advisory lock namespace of campaign refreshes ("CAMP")
MAX_SAMPLES = 300
SAMPLE_SIZE = 20

CAMPAIGN_FIELDS = (
    "name",
    "description",
    "action",
    "applet_version",
    "sync_mode",
    "target_kind",
    "only_active",
    "installed_version",
    "missing_version",
    "sync_card_outdated",
    "sync_card_version_below",
    "last_sync_older_days",
    "device_manufacturer",
    "device_model",
    "handset_changed_since",
    "schedule_kind",
    "start_at",
    "cron",
    "interval_seconds",
    "schedule_timezone",
    "window_timezone",
    "window_start",
    "window_end",
    "window_weekdays",
    "rate_limit",
    "chunk_size",
    "priority",
    "notify_emails",
)


# --- validation --------------------------------------------------------------------------


def _check_timezone(name: str, field: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError({field: f"unknown time zone {name!r}"}) from None


def parse_cron(expression: str) -> dict[str, str]:
    """Five cron fields -> crontab keyword arguments; a bad field is a ValidationError."""
    from celery.schedules import ParseException, crontab

    fields = expression.split()
    if len(fields) != 5:
        raise ValidationError(
            {"cron": "five fields: minute hour day-of-month month-of-year day-of-week"}
        )
    names = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    values = dict(zip(names, fields, strict=True))
    try:
        crontab(**values)
    except (ParseException, ValueError, TypeError) as exc:
        raise ValidationError({"cron": f"not a valid cron expression: {exc}"}) from None
    return values


def links_tps() -> int:
    return int(SmscLink.objects.filter(enabled=True).aggregate(t=Sum("tps"))["t"] or 0)


def clean_campaign(campaign: Campaign) -> None:
    """Everything a campaign must satisfy, field by field (raises ValidationError)."""
    errors: dict[str, str] = {}
    needs_version = campaign.action in (CampaignAction.LOAD_INSTALL, CampaignAction.DELETE)
    if needs_version and not campaign.applet_version_id:
        errors["applet_version"] = "choose the applet version to load or delete"
    if campaign.sync_mode is not None and campaign.action != CampaignAction.TRIGGER_SYNC:
        errors["sync_mode"] = "a forced sync mode only applies to a sync trigger"
    if campaign.sync_mode is not None and not 0 <= campaign.sync_mode <= 10:
        errors["sync_mode"] = "0..10 (SyncML alert code minus 200)"
    kind = campaign.schedule_kind
    if kind == ScheduleKind.ONCE and not campaign.start_at:
        errors["start_at"] = "a one-off schedule needs its time"
    if kind == ScheduleKind.INTERVAL and not campaign.interval_seconds:
        errors["interval_seconds"] = "an interval schedule needs its interval"
    if kind == ScheduleKind.CRON:
        try:
            parse_cron(campaign.cron or "")
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
    for field in ("schedule_timezone", "window_timezone"):
        try:
            _check_timezone(getattr(campaign, field) or "", field)
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if (campaign.window_start is None) != (campaign.window_end is None):
        errors["window_end"] = "a maintenance window needs both its start and its end"
    elif campaign.has_window and campaign.window_start == campaign.window_end:
        errors["window_end"] = "the window's end must differ from its start"
    weekdays = campaign.window_weekdays or []
    if not isinstance(weekdays, list) or any(
        not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays
    ):
        errors["window_weekdays"] = "weekdays are numbers 0 (Monday) to 6 (Sunday)"
    if campaign.rate_limit is not None:
        tps = links_tps()
        if campaign.rate_limit < 1:
            errors["rate_limit"] = "at least 1 message per second"
        elif tps and campaign.rate_limit > tps:
            errors["rate_limit"] = f"above the SMSC links' {tps} messages per second"
    if not 10 <= (campaign.chunk_size or 0) <= 10000:
        errors["chunk_size"] = "10 to 10000"
    if not 1 <= (campaign.priority or 0) <= 100:
        errors["priority"] = "1 to 100 (0 is kept for single-card operations)"
    for address in _emails(campaign.notify_emails):
        from django.core.validators import validate_email

        try:
            validate_email(address)
        except ValidationError:
            errors["notify_emails"] = f"{address!r} is not an e-mail address"
    if errors:
        raise ValidationError(errors)


def _emails(value: str) -> list[str]:
    return [a.strip() for a in (value or "").replace(";", ",").split(",") if a.strip()]


# --- campaigns ---------------------------------------------------------------------------


def _apply(campaign: Campaign, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if name not in CAMPAIGN_FIELDS:
            raise ValidationError(f"unknown campaign field {name!r}")
        setattr(campaign, name, value)
    for name in ("description", "cron", "device_manufacturer", "device_model", "notify_emails"):
        if getattr(campaign, name) is None:
            setattr(campaign, name, "")
    if campaign.window_weekdays is None:
        campaign.window_weekdays = []


def _store_list(campaign: Campaign, target_list: bytes | str) -> int:
    parsed = parse_target_list(target_list)
    if parsed.errors:
        raise ValidationError({"target_list": parsed.errors})
    CampaignListEntry.objects.filter(campaign=campaign).delete()
    CampaignListEntry.objects.bulk_create(
        (CampaignListEntry(campaign=campaign, subscriber_id=pk, line=line))
        for line, pk in parsed.subscriber_ids
    )
    return len(parsed.subscriber_ids)


@transaction.atomic
def create_campaign(
    *,
    actor: Actor,
    segments: list | None = None,
    card_profiles: list | None = None,
    target_list: bytes | str | None = None,
    **values: Any,
) -> Campaign:
    campaign = Campaign(created_by=actor.label[:200])
    _apply(campaign, values)
    if campaign.target_kind == TargetKind.LIST and not target_list:
        raise ValidationError({"target_list": "upload the list of MSISDNs or ICCIDs"})
    if Campaign.objects.filter(name=campaign.name).exists():
        raise ValidationError({"name": "a campaign with this name exists"})
    clean_campaign(campaign)
    campaign.state = (
        CampaignState.DRAFT
        if campaign.schedule_kind == ScheduleKind.MANUAL
        else CampaignState.SCHEDULED
    )
    campaign.save()
    campaign.segments.set(segments or [])
    campaign.card_profiles.set(card_profiles or [])
    listed = _store_list(campaign, target_list) if target_list else 0
    _sync_periodic_task(campaign)
    record_change(
        actor=actor,
        action=AuditAction.CREATE,
        instance=campaign,
        after=snapshot(campaign),
        message=f"{listed} listed target(s)" if listed else "",
    )
    return campaign


@transaction.atomic
def update_campaign(
    *,
    actor: Actor,
    campaign: Campaign,
    segments: list | None = None,
    card_profiles: list | None = None,
    target_list: bytes | str | None = None,
    **values: Any,
) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    before = snapshot(campaign)
    _apply(campaign, values)
    if (
        campaign.target_kind == TargetKind.LIST
        and not target_list
        and not campaign.list_entries.exists()
    ):
        raise ValidationError({"target_list": "upload the list of MSISDNs or ICCIDs"})
    if Campaign.objects.filter(name=campaign.name).exclude(pk=campaign.pk).exists():
        raise ValidationError({"name": "a campaign with this name exists"})
    clean_campaign(campaign)
    if campaign.state in (CampaignState.DRAFT, CampaignState.SCHEDULED, CampaignState.DONE):
        campaign.state = (
            CampaignState.SCHEDULED
            if campaign.schedule_kind != ScheduleKind.MANUAL
            else (
                CampaignState.DRAFT if campaign.state == CampaignState.SCHEDULED else campaign.state
            )
        )
    campaign.updated = timezone.now()
    campaign.save()
    if segments is not None:
        campaign.segments.set(segments)
    if card_profiles is not None:
        campaign.card_profiles.set(card_profiles)
    if target_list:
        _store_list(campaign, target_list)
    _sync_periodic_task(campaign)
    record_change(
        actor=actor,
        action=AuditAction.UPDATE,
        instance=campaign,
        before=before,
        after=snapshot(campaign),
    )
    return campaign


@transaction.atomic
def delete_campaign(*, actor: Actor, campaign: Campaign) -> None:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.runs.filter(state__in=ACTIVE_RUN_STATES).exists():
        raise ValidationError("cancel the campaign's active run first")
    before = snapshot(campaign)
    record_change(actor=actor, action=AuditAction.DELETE, instance=campaign, before=before)
    task = campaign.periodic_task
    campaign.delete()
    if task is not None:
        task.delete()


def _sync_periodic_task(campaign: Campaign) -> None:
    """One PeriodicTask per scheduled campaign, read by beat's DatabaseScheduler."""
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
    )

    task = campaign.periodic_task
    if campaign.schedule_kind == ScheduleKind.MANUAL or campaign.state == CampaignState.CANCELLED:
        if task is not None:
            campaign.periodic_task = None
            campaign.save(update_fields=["periodic_task"])
            task.delete()
        return
    schedule: dict[str, Any] = {"clocked": None, "crontab": None, "interval": None}
    one_off = False
    if campaign.schedule_kind == ScheduleKind.ONCE:
        schedule["clocked"] = ClockedSchedule.objects.create(clocked_time=campaign.start_at)
        one_off = True
    elif campaign.schedule_kind == ScheduleKind.CRON:
        schedule["crontab"], _ = CrontabSchedule.objects.get_or_create(
            **parse_cron(campaign.cron), timezone=campaign.schedule_timezone
        )
    else:
        schedule["interval"], _ = IntervalSchedule.objects.get_or_create(
            every=campaign.interval_seconds, period=IntervalSchedule.SECONDS
        )
    fields = {
        "task": "campaigns.start_scheduled_run",
        "args": json.dumps([campaign.pk]),
        "queue": "campaigns",
        "one_off": one_off,
        "enabled": campaign.state in (CampaignState.SCHEDULED, CampaignState.DONE)
        or campaign.state in (CampaignState.RUNNING, CampaignState.PAUSED),
        "expire_seconds": 300,
        "description": f"campaign {campaign.name}",
        **schedule,
    }
    if task is None:
        task = PeriodicTask.objects.create(name=f"campaign-{campaign.pk}", **fields)
        campaign.periodic_task = task
        campaign.save(update_fields=["periodic_task"])
    else:
        for name, value in fields.items():
            setattr(task, name, value)
        task.save()


# --- dry run -----------------------------------------------------------------------------


@dataclass
class Preview:
    count: int
    sample: list[dict[str, Any]]


def preview_targets(campaign: Campaign, *, target_list: bytes | str | None = None) -> Preview:
    """The dry run: how many subscribers the target holds and a sample of them (no change)."""
    from cardmgmt.models import Subscriber

    if campaign.target_kind == TargetKind.LIST:
        if target_list:
            parsed = parse_target_list(target_list)
            if parsed.errors:
                raise ValidationError({"target_list": parsed.errors})
            ids = [pk for _line, pk in parsed.subscriber_ids]
            qs = Subscriber.objects.filter(pk__in=ids[:SAMPLE_SIZE])
            count = len(ids)
        elif campaign.pk:
            qs = source_subscribers(campaign)
            count = qs.count()
        else:
            raise ValidationError({"target_list": "upload the list of MSISDNs or ICCIDs"})
    else:
        qs = filter_subscribers(campaign)
        count = qs.count()
    sample = [
        {"msisdn": m, "iccid": i or "", "profile": p or "", "status": s}
        for m, i, p, s in qs.order_by("pk").values_list(
            "msisdn", "card__iccid", "card__profile__name", "status"
        )[:SAMPLE_SIZE]
    ]
    return Preview(count=count, sample=sample)


# --- runs --------------------------------------------------------------------------------


def _enqueue_chunk(run_id: int, cursor: int, countdown: float = 0) -> None:
    from campaigns.tasks import plan_chunk_task

    transaction.on_commit(
        lambda: plan_chunk_task.apply_async((run_id, cursor), countdown=countdown or None)
    )


def _enqueue_refresh(run_id: int, countdown: float = 0) -> None:
    from campaigns.tasks import refresh_run_task

    transaction.on_commit(
        lambda: refresh_run_task.apply_async((run_id,), countdown=countdown or None)
    )


@transaction.atomic
def start_run(
    *, actor: Actor, campaign: Campaign, rerun_of: CampaignRun | None = None
) -> CampaignRun:
    """A new run of the campaign; with `rerun_of`, only that run's failed targets."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.state == CampaignState.CANCELLED:
        raise ValidationError("the campaign is cancelled")
    if campaign.runs.filter(state__in=ACTIVE_RUN_STATES).exists():
        raise ValidationError("the campaign already has an active run")
    if rerun_of is not None:
        if rerun_of.campaign_id != campaign.pk:
            raise ValidationError("that run belongs to another campaign")
        if not rerun_of.targets.filter(state=TargetState.FAILED).exists():
            raise ValidationError("that run has no failed target to run again")
    number = (campaign.runs.aggregate(n=Max("number"))["n"] or 0) + 1
    run = CampaignRun(
        campaign=campaign, number=number, rerun_of=rerun_of, created_by=actor.label[:200]
    )
    run.total = source_subscribers(campaign, run).count()
    run.save()
    before = snapshot(campaign)
    campaign.state = CampaignState.RUNNING
    campaign.save(update_fields=["state"])
    record_change(
        actor=actor,
        action=AuditAction.OPERATE,
        instance=campaign,
        before=before,
        after=snapshot(campaign),
        message=f"run {number} started: {run.total} target(s)"
        + (f", failed targets of run {rerun_of.number}" if rerun_of else ""),
    )
    _enqueue_chunk(run.pk, 0)
    _enqueue_refresh(run.pk, REFRESH_SECONDS)
    return run


def start_scheduled_run(*, campaign_id: int) -> CampaignRun | None:
    """What beat calls: start a run unless one is still active (that is logged, not raised)."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.state == CampaignState.CANCELLED:
        return None
    try:
        return start_run(actor=Actor.task("campaigns.schedule"), campaign=campaign)
    except ValidationError as exc:
        log.info("campaign %s: scheduled run not started: %s", campaign_id, exc.messages[0])
        return None


def _set_run_state(actor: Actor, run: CampaignRun, state: str, message: str) -> CampaignRun:
    before = snapshot(run)
    run.state = state
    fields = ["state"]
    if state in (RunState.DONE, RunState.CANCELLED):
        run.finished = timezone.now()
        fields.append("finished")
    run.save(update_fields=fields)
    record_change(
        actor=actor,
        action=AuditAction.UPDATE,
        instance=run,
        before=before,
        after=snapshot(run),
        message=message,
    )
    campaign_state = {
        RunState.RUNNING: CampaignState.RUNNING,
        RunState.PAUSED: CampaignState.PAUSED,
        RunState.CANCELLED: CampaignState.CANCELLED,
    }.get(state)
    if state == RunState.DONE:
        campaign_state = (
            CampaignState.SCHEDULED
            if run.campaign.schedule_kind in (ScheduleKind.CRON, ScheduleKind.INTERVAL)
            else CampaignState.DONE
        )
    Campaign.objects.filter(pk=run.campaign_id).update(state=campaign_state, updated=timezone.now())
    if state == RunState.CANCELLED:
        campaign = Campaign.objects.get(pk=run.campaign_id)
        _sync_periodic_task(campaign)
    return run


@transaction.atomic
def pause_run(*, actor: Actor, run: CampaignRun) -> CampaignRun:
    """Planning stops at its next chunk; what is queued (the bounded backlog) drains."""
    run = CampaignRun.objects.select_for_update().select_related("campaign").get(pk=run.pk)
    if run.state != RunState.RUNNING:
        raise ValidationError(f"the run is {run.get_state_display().lower()}, not running")
    return _set_run_state(actor, run, RunState.PAUSED, "paused")


@transaction.atomic
def resume_run(*, actor: Actor, run: CampaignRun) -> CampaignRun:
    run = CampaignRun.objects.select_for_update().select_related("campaign").get(pk=run.pk)
    if run.state != RunState.PAUSED:
        raise ValidationError(f"the run is {run.get_state_display().lower()}, not paused")
    _set_run_state(actor, run, RunState.RUNNING, "resumed")
    if not run.claiming_done:
        _enqueue_chunk(run.pk, run.cursor)
    if not run.planning_done:
        # Chunks claimed before the pause and rolled back by it.
        replan_stalled_chunks(run, timezone.now(), older=0)
    _enqueue_refresh(run.pk, REFRESH_SECONDS)
    return run


@transaction.atomic
def cancel_run(*, actor: Actor, run: CampaignRun) -> CampaignRun:
    """Stop planning, withdraw every packet not yet handed to the SMSC, close open targets.

    Packets already submitted may still reach their cards; their PoRs are still processed
    by OTA delivery, but the run no longer waits for them.
    """
    # The refresh's lock first (as the refresh takes it, before the run's row): a fold under
    # way finishes, and none starts until this commits, so the targets closed here keep the
    # counters exact (`state_changes`).
    _refresh_lock(run.pk, wait=True)
    run = CampaignRun.objects.select_for_update().select_related("campaign").get(pk=run.pk)
    if run.state not in ACTIVE_RUN_STATES:
        raise ValidationError(f"the run is {run.get_state_display().lower()}")
    open_jobs = CampaignTarget.objects.filter(
        run=run, state__in=OPEN_TARGET_STATES, job__isnull=False
    ).values("job_id")
    now = timezone.now()
    withdrawn = OtaMessage.objects.filter(
        job_id__in=open_jobs, state__in=(OtaMessageState.PENDING, OtaMessageState.QUEUED)
    ).update(state=OtaMessageState.CANCELLED)
    OtaJob.objects.filter(
        pk__in=open_jobs, state__in=(OtaJobState.QUEUED, OtaJobState.RUNNING)
    ).update(
        state=OtaJobState.CANCELLED, finished=now, result=f"campaign run cancelled by {actor.label}"
    )
    open_targets = CampaignTarget.objects.filter(run=run, state__in=OPEN_TARGET_STATES)
    # Counted, then closed: nothing else changes these targets meanwhile (the refresh's lock;
    # a chunk still to commit waits for the run's row and then rolls back).
    was_open = dict(
        open_targets.order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    closed = open_targets.update(state=TargetState.CANCELLED, reason="run cancelled", updated=now)
    _add_state_changes(
        run, {state: -n for state, n in was_open.items()} | {TargetState.CANCELLED: closed}
    )
    CampaignChunk.objects.filter(run=run, open_targets__gt=0).update(open_targets=0)
    _set_run_state(
        actor,
        run,
        RunState.CANCELLED,
        f"cancelled: {withdrawn} packet(s) withdrawn before submission, {closed} target(s) closed",
    )
    _sum_chunks_locked(run)
    _refresh_counters(run, now)
    run.save(update_fields=["counters", "state_changes", "failure_reasons", "samples"])
    _enqueue_refresh(run.pk)  # sends the end-of-run notification
    return run


# --- maintenance window ------------------------------------------------------------------


def window_open(campaign: Campaign, now: datetime.datetime) -> tuple[bool, float]:
    """(open now?, seconds until it opens). Windows may span midnight (22:00-04:00); the
    weekday is that of the window's start."""
    weekdays = set(campaign.window_weekdays or [])
    if not campaign.has_window and not weekdays:
        return True, 0.0
    tz = zoneinfo.ZoneInfo(campaign.window_timezone or "UTC")
    local = now.astimezone(tz)
    start = campaign.window_start or datetime.time(0, 0)
    end = campaign.window_end or datetime.time(0, 0)
    full_day = not campaign.has_window
    for day_offset in range(-1, 9):
        day = (local + datetime.timedelta(days=day_offset)).date()
        if weekdays and day.weekday() not in weekdays:
            continue
        opens = datetime.datetime.combine(day, start, tzinfo=tz)
        closes = datetime.datetime.combine(day, end, tzinfo=tz)
        if full_day or closes <= opens:
            closes += datetime.timedelta(days=1)
        if opens <= local < closes:
            return True, 0.0
        if opens > local:
            return False, (opens - local).total_seconds()
    return False, 3600.0


# --- planning ----------------------------------------------------------------------------


@dataclass
class ChunkOutcome:
    status: str  # planned, done, stale, stopped, waiting
    planned: int = 0
    skipped: int = 0
    countdown: float = 0.0


def _plan_for(campaign: Campaign, run: CampaignRun):  # type: ignore[no-untyped-def]
    from campaigns.syncparams import applet_tar
    from cardmgmt import otabridge
    from cardmgmt.ota import syncapplet

    action = campaign.action
    version = campaign.applet_version
    tar = bytes.fromhex(applet_tar(version))
    campaign_ref = f"C{campaign.pk}R{run.number}"[:16]
    load = otabridge.load_and_install(version) if action == CampaignAction.LOAD_INSTALL else None

    def plan(target: BulkTarget, params: ota.CardProfileParams) -> ota.ScriptPlan:
        if action == CampaignAction.LOAD_INSTALL:
            return ota.plan(load, params)
        if action == CampaignAction.DELETE:
            return ota.plan(ota.Delete(bytes.fromhex(version.package_aid)), params)
        if action == CampaignAction.AUDIT:
            return ota.plan(ota.Audit(p1=0x40), params)
        if action == CampaignAction.TRIGGER_SYNC:
            apdu = syncapplet.trigger_apdu(mode=campaign.sync_mode, campaign=campaign_ref)
            return ota.plan(ota.AppletCommands(tar, (apdu,)), params)
        _version, record = target.data
        return ota.plan(
            ota.AppletCommands(tar, tuple(syncapplet.store_record_apdus(record))), params
        )

    def parameters(target: BulkTarget) -> dict[str, Any]:
        base: dict[str, Any] = {"campaign": campaign.pk, "run": run.pk}
        if action == CampaignAction.AUDIT:
            base["p1"] = 0x40
        if action == CampaignAction.TRIGGER_SYNC:
            base.update(tar=tar.hex().upper(), campaign_ref=campaign_ref.encode().hex())
            if campaign.sync_mode is not None:
                base["mode"] = campaign.sync_mode
        if action == CampaignAction.PUSH_PARAMS:
            # The record holds the device secret: only its version is kept.
            base.update(tar=tar.hex().upper(), version=target.data[0])
        return base

    return plan, parameters


def _backlog(priority: int) -> int:
    return OtaMessage.objects.filter(state=OtaMessageState.QUEUED, priority=priority)[
        : MAX_BACKLOG + 1
    ].count()


class _RunStopped(Exception):
    """The run was paused or cancelled while a chunk was being planned: roll the chunk back."""


def plan_next_chunk(
    *, run_id: int, cursor: int, now: datetime.datetime | None = None
) -> ChunkOutcome:
    """Claim the chunk of subscribers after `cursor`, hand the next cursor on to another task
    at once, then plan the claimed chunk (docs/campaigns.md, "Parallel planning").

    A call whose `cursor` is no longer the run's is a redelivered or restarted task: it plans
    the chunk it had claimed if that chunk is still unplanned (its planner died), else does
    nothing ("stale")."""
    now = now or timezone.now()
    with transaction.atomic():
        # FOR NO KEY UPDATE: does not wait for the key-share lock a planning chunk takes at
        # its commit, so claiming goes on while the other process plans.
        run = (
            CampaignRun.objects.select_for_update(of=("self",), no_key=True)
            .select_related("campaign__applet_version")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.state != RunState.RUNNING or run.planning_done:
            return ChunkOutcome("stopped")
        if run.cursor != cursor:
            claimed = (
                CampaignChunk.objects.filter(run=run, after=cursor, planned=False)
                .values_list("pk", flat=True)
                .first()
            )
            if claimed is None:
                return ChunkOutcome("stale")
            chunk_id, rows, claim = claimed, None, None
        else:
            claim = _claim_chunk(run, now)
            if isinstance(claim, ChunkOutcome):
                if claim.status != "done":
                    return claim
            else:
                chunk_id, rows = claim
    if isinstance(claim, ChunkOutcome):  # every range claimed: done once all are planned
        _sum_chunks(run.pk)
        return claim
    outcome = plan_chunk(chunk_id=chunk_id, now=now, rows=rows)
    if outcome.status == "planned" and run.campaign.rate_limit:
        outcome.countdown = (outcome.planned + outcome.skipped) / run.campaign.rate_limit
    return outcome


def _claim_chunk(
    run: CampaignRun, now: datetime.datetime
) -> ChunkOutcome | tuple[int, list[tuple]]:
    """Under the run's lock: the next range of subscribers as a chunk row, the cursor moved
    past it and the next claim queued (on commit). Returns the chunk and its rows."""
    campaign = run.campaign
    is_open, wait = window_open(campaign, now)
    if not is_open:
        run.waiting = f"outside the maintenance window (opens in {int(wait)} s)"
        run.last_chunk_at = now
        run.save(update_fields=["waiting", "last_chunk_at"])
        countdown = min(max(wait, 1.0), 30.0)
        _enqueue_chunk(run.pk, run.cursor, countdown)
        return ChunkOutcome("waiting", countdown=countdown)
    size = campaign.chunk_size
    if campaign.rate_limit:
        size = max(1, min(size, campaign.rate_limit * 2))
    backlog = _backlog(campaign.priority) if MAX_BACKLOG else 0
    if MAX_BACKLOG and backlog >= MAX_BACKLOG:
        run.waiting = f"{backlog} packets waiting for the SMSC"
        run.last_chunk_at = now
        run.save(update_fields=["waiting", "last_chunk_at"])
        _enqueue_chunk(run.pk, run.cursor, 0.5)
        return ChunkOutcome("waiting", countdown=0.5)
    rows = list(
        source_subscribers(campaign, run)
        .filter(pk__gt=run.cursor)
        .order_by("pk")
        .values_list("pk", "card_id", "msisdn", "card__profile_id")[:size]
    )
    run.last_chunk_at = now
    run.waiting = ""
    if not rows:
        run.claiming_done = True
        run.save(update_fields=["claiming_done", "last_chunk_at", "waiting"])
        return ChunkOutcome("done")
    chunk = CampaignChunk.objects.create(
        run=run, after=run.cursor, last=rows[-1][0], claimed_at=now
    )
    run.cursor = chunk.last
    run.claiming_done = len(rows) < size
    run.save(update_fields=["cursor", "claiming_done", "last_chunk_at", "waiting"])
    if not run.claiming_done:
        countdown = len(rows) / campaign.rate_limit if campaign.rate_limit else 0
        _enqueue_chunk(run.pk, run.cursor, countdown)
    return chunk.pk, rows


def plan_chunk(
    *, chunk_id: int, now: datetime.datetime | None = None, rows: list[tuple] | None = None
) -> ChunkOutcome:
    """Plan a claimed chunk in one transaction: its targets, jobs, packets and counters, and
    the chunk marked planned, commit together; a chunk already planned, or being planned by
    another process, is left alone ("stale"). `rows`: the chunk's subscribers as the claim
    read them (else read again by the chunk's id range)."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            # The chunk's row only: its default ordering (by run) would join the run's row
            # and lock it FOR UPDATE for the whole chunk, stopping the other process's claim.
            chunk = (
                CampaignChunk.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=chunk_id, planned=False)
                .order_by()
                .first()
            )
            if chunk is None:
                return ChunkOutcome("stale")
            run = CampaignRun.objects.select_related("campaign__applet_version").get(
                pk=chunk.run_id
            )
            if run.state != RunState.RUNNING:
                return ChunkOutcome("stopped")  # planned on resume
            campaign = run.campaign
            if rows is None:
                rows = list(
                    source_subscribers(campaign, run)
                    .filter(pk__gt=chunk.after, pk__lte=chunk.last)
                    .order_by("pk")
                    .values_list("pk", "card_id", "msisdn", "card__profile_id")
                )
            outcome = _plan_rows(run, campaign, rows, now)
            chunk.planned = True
            chunk.planned_count, chunk.skipped_count = outcome.planned, outcome.skipped
            # Every planned target is open (queued); `now` is its job's `created`.
            chunk.open_targets, chunk.planned_at = outcome.planned, now
            chunk.save(
                update_fields=[
                    "planned",
                    "planned_count",
                    "skipped_count",
                    "open_targets",
                    "planned_at",
                ]
            )
            record_change(
                actor=TASK_ACTOR,
                action=AuditAction.OPERATE,
                instance=run,
                message=f"chunk after subscriber {chunk.after}: {outcome.planned} OTA job(s) "
                f"({campaign.get_action_display()}), {outcome.skipped} skipped, "
                f"subscribers {chunk.after + 1}..{chunk.last}",
            )
            _commit_unless_stopped(run.pk)
    except _RunStopped:
        return ChunkOutcome("stopped")
    _sum_chunks(run.pk)
    return outcome


def _commit_unless_stopped(run_id: int) -> None:
    """The last step of a chunk's transaction: the deferred foreign key checks run now, then
    the run's state is read under a key-share lock held only for the commit. A pause or a
    cancel (FOR UPDATE on the run) that committed first rolls the chunk back; one that comes
    later waits for this commit and then sees the chunk's targets."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "SELECT state FROM campaigns_campaignrun WHERE id = %s FOR KEY SHARE", [run_id]
            )
        else:
            cursor.execute("SELECT state FROM campaigns_campaignrun WHERE id = %s", [run_id])
        row = cursor.fetchone()
    if row is None or row[0] != RunState.RUNNING:
        raise _RunStopped


def _sum_chunks(run_id: int) -> None:
    """The run's planned and skipped counts from its chunks, and planning done once every
    range is claimed and every chunk planned. Recomputed, not incremented: a repeat (or a
    chunk whose planner died before getting here) is harmless."""
    with transaction.atomic():
        run = CampaignRun.objects.select_for_update(no_key=True).filter(pk=run_id).first()
        if run is not None:
            _sum_chunks_locked(run)


def _sum_chunks_locked(run: CampaignRun) -> None:
    if run.planning_done:
        return
    # A statement after the run's lock: it sees every chunk committed before the lock was
    # granted (a sum taken before it could overwrite a later one).
    sums = CampaignChunk.objects.filter(run=run).aggregate(
        planned_sum=Sum("planned_count"),
        skipped_sum=Sum("skipped_count"),
        unplanned=Count("id", filter=Q(planned=False)),
    )
    run.planned = sums["planned_sum"] or 0
    run.skipped = sums["skipped_sum"] or 0
    done = run.claiming_done and not sums["unplanned"]
    fields = ["planned", "skipped"]
    if done and not run.planning_done:
        run.planning_done = True
        fields.append("planning_done")
        _enqueue_refresh(run.pk)
    run.save(update_fields=fields)


def replan_stalled_chunks(run: CampaignRun, now: datetime.datetime, *, older: float) -> int:
    """Queue the planning of the run's unplanned chunks claimed more than `older` seconds ago
    (their planner died, or the run was paused meanwhile)."""
    from campaigns.tasks import plan_claimed_chunk_task

    limit = now - datetime.timedelta(seconds=older)
    stalled = list(
        CampaignChunk.objects.filter(run=run, planned=False, claimed_at__lte=limit).values_list(
            "pk", flat=True
        )
    )
    if stalled:
        CampaignChunk.objects.filter(pk__in=stalled).update(claimed_at=now)
        for chunk_id in stalled:
            transaction.on_commit(
                lambda chunk_id=chunk_id: plan_claimed_chunk_task.apply_async((chunk_id,))
            )
    return len(stalled)


def _plan_rows(
    run: CampaignRun, campaign: Campaign, rows: list[tuple], now: datetime.datetime
) -> ChunkOutcome:
    from campaigns.syncparams import param_records

    records = (
        param_records([r[0] for r in rows]) if campaign.action == CampaignAction.PUSH_PARAMS else {}
    )
    targets: list[BulkTarget] = []
    skipped: dict[int, str] = {}
    for sub_id, card_id, msisdn, profile_id in rows:
        if campaign.action == CampaignAction.PUSH_PARAMS and sub_id not in records:
            skipped[sub_id] = "no sync profile"
            continue
        targets.append(
            BulkTarget(
                key=sub_id,
                card_id=card_id,
                msisdn=msisdn,
                profile_id=profile_id,
                data=records.get(sub_id),
            )
        )
    plan, parameters = _plan_for(campaign, run)
    result = plan_bulk_jobs(
        operation=campaign.action,
        targets=targets,
        plan_for=plan,
        parameters=parameters,
        requested_by=f"campaign {campaign.name} run {run.number}",
        priority=campaign.priority,
        applet_version=campaign.applet_version,
        now=now,
        sensitive=campaign.action == CampaignAction.PUSH_PARAMS,
    )
    skipped.update(result.skipped)
    target_rows = []
    for sub_id, card_id, msisdn, _profile in rows:
        job_id = result.jobs.get(sub_id)
        state = TargetState.QUEUED if job_id else TargetState.SKIPPED
        target_rows.append(
            (run.pk, sub_id, card_id, msisdn, job_id, state, skipped.get(sub_id, ""), now)
        )
    columns = (
        "run_id",
        "subscriber_id",
        "card_id",
        "msisdn",
        "job_id",
        "state",
        "reason",
        "updated",
    )
    if connection.vendor == "postgresql":
        # subscriber, card, MSISDN, job vary; run, state, reason and time mostly repeat.
        copy_rows_varying(CampaignTarget._meta.db_table, columns, target_rows, (1, 2, 3, 4))
    else:
        CampaignTarget.objects.bulk_create(
            CampaignTarget(**dict(zip(columns, row, strict=True))) for row in target_rows
        )
    return ChunkOutcome("planned", planned=len(result.jobs), skipped=len(skipped))


# --- progress ----------------------------------------------------------------------------
#
# A refresh costs what moved since the last one, not the run's size: a million open targets
# whose packets wait for the SMSC cost a handful of index probes. The targets that may have
# to move are found from the OTA side (`_CHANGED_JOBS`), only those are folded (`_FOLD`), and
# the counters are the chunks' sums plus the net changes the folds made (`state_changes`),
# never a count of the run's targets.


@dataclass(frozen=True)
class TargetMove:
    """A target the refresh moved to its OTA job's state."""

    subscriber_id: int
    old_state: str
    new_state: str
    reason: str


# The jobs whose targets in this run may have to move. An open target moves only if
# (a) its job finished: the finished jobs of the chunks that still have open targets, on the
#     job table's (state, created) index (a chunk's jobs share its `planned_at` as `created`);
# (b) it is queued and its job's latest packet is in flight: the packets submitted or
#     delivered (the SMSC's window and the PoRs awaited, whatever the campaigns' sizes), on
#     the message table's (state, submitted_at) index;
# (c) it is submitted or delivered already: any change of its job, on the target table's
#     (run, state, id) index.
# A queued target whose job is neither finished nor has a packet in flight stays queued, so
# no open target that has to move is left out.
_CHANGED_JOBS = """
SELECT id FROM cardmgmt_otajob
WHERE state IN ('done', 'failed', 'cancelled') AND created = ANY(%s)
UNION
SELECT job_id FROM cardmgmt_otamessage WHERE state IN ('submitted', 'delivered')
UNION
SELECT job_id FROM campaigns_campaigntarget
WHERE run_id = %s AND state IN ('submitted', 'delivered')
"""
# Those jobs' open targets in this run take the job's outcome (finished: confirmed, failed or
# cancelled, with the job's result as reason) or the state of its latest packet in flight
# (found on (job, step) backwards). The old state is the one read here: only the refresh (or
# the cancel, under the same lock) changes a target's state.
_FOLD = """
WITH moved AS MATERIALIZED (
    SELECT t.id, t.subscriber_id, t.state AS old_state,
           CASE j.state WHEN 'done' THEN 'confirmed' WHEN 'failed' THEN 'failed'
                        WHEN 'cancelled' THEN 'cancelled' ELSE latest.state END AS new_state,
           CASE WHEN j.state IN ('done', 'failed', 'cancelled') THEN LEFT(j.result, 300)
           END AS reason
    FROM unnest(%s::bigint[]) AS changed(job_id)
    CROSS JOIN LATERAL (
        SELECT o.id, o.subscriber_id, o.state, o.job_id FROM campaigns_campaigntarget AS o
        WHERE o.job_id = changed.job_id AND o.run_id + 0 = %s
          AND (o.state || '') IN ('queued', 'submitted', 'delivered')
        OFFSET 0
    ) AS t
    JOIN cardmgmt_otajob AS j ON j.id = t.job_id
    LEFT JOIN LATERAL (
        SELECT m.state FROM cardmgmt_otamessage AS m
        WHERE m.job_id = t.job_id AND (m.state || '') IN ('queued', 'submitted', 'delivered')
          AND j.state NOT IN ('done', 'failed', 'cancelled')
        ORDER BY m.step DESC
        LIMIT 1
    ) AS latest ON true
)
UPDATE campaigns_campaigntarget AS t
SET state = moved.new_state, reason = COALESCE(moved.reason, t.reason), updated = %s
FROM moved
WHERE t.id = moved.id AND moved.new_state <> moved.old_state
RETURNING moved.subscriber_id, moved.old_state, moved.new_state, COALESCE(moved.reason, '')
"""
# The fold touches the rows its ids name, each found on an index, and nothing else, however
# the planner guesses. Just after planning the tables have no statistics, and its guesses
# (measured on 30,000 targets, 6,500 of them moved) intersected each job's target with every
# entry of the run's index (4 s), looped over the job ids for every open target of the run
# (13 s), or scanned and hashed the whole target table; and compiled the statements (JIT, a
# quarter of a second) for their inflated costs. So: each job's target looked up in a lateral
# subquery (`OFFSET 0` keeps it from being flattened into a join), on the job's index alone
# (`run_id + 0` and `state || ''` keep the run's indexes out; the message state's own index
# likewise), and for these statements only, nested loops and no JIT.
_INDEX_LOOKUPS_ONLY = {
    "enable_seqscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "jit": "off",
}


# Job ids folded per statement: a refresh after a long interval (or a backlog of receipts)
# may move hundreds of thousands of targets, and neither they nor their moves are held at once.
FOLD_SLICE = 5000


class FoldSummary:
    """What a refresh's folds moved, summed as they go: net changes by state, targets closed
    by chunk, failures by reason. Its size does not depend on how many targets moved."""

    def __init__(self, run: CampaignRun) -> None:
        self.run = run
        self.changes: Counter[str] = Counter()
        self.closed_by_chunk: Counter[int] = Counter()
        self.failed: Counter[str] = Counter()
        self.moved = 0
        self._chunks: list[tuple[int, int, int]] | None = None
        self._starts: list[int] = []

    def _chunk_of(self, subscriber_id: int) -> int | None:
        if self._chunks is None:
            # Read once, after the jobs to fold were: every chunk whose targets a fold can
            # see was committed before then. A chunk holds the subscribers after < id <= last.
            self._chunks = list(
                CampaignChunk.objects.filter(run=self.run, open_targets__gt=0)
                .order_by("after")
                .values_list("pk", "after", "last")
            )
            self._starts = [after for _pk, after, _last in self._chunks]
        index = bisect.bisect_left(self._starts, subscriber_id) - 1
        if index < 0 or subscriber_id > self._chunks[index][2]:
            return None
        return self._chunks[index][0]

    def add(self, moves: Iterable[TargetMove]) -> None:
        for move in moves:
            self.moved += 1
            self.changes[move.old_state] -= 1
            self.changes[move.new_state] += 1
            if move.new_state == TargetState.FAILED:
                self.failed[move.reason] += 1
            if move.new_state not in OPEN_TARGET_STATES:
                pk = self._chunk_of(move.subscriber_id)
                if pk is None:
                    # Cannot happen while every open target's chunk counts it. Left open, the
                    # chunk would only cost its finished jobs' look-up at each refresh.
                    log.error(
                        "campaign run %s: no open chunk for subscriber %s",
                        self.run.pk,
                        move.subscriber_id,
                    )
                    continue
                self.closed_by_chunk[pk] += 1


def _fold_outcomes(run: CampaignRun, now: datetime.datetime) -> FoldSummary:
    """Targets take their OTA job's outcome, `FOLD_SLICE` jobs per statement; returns what
    moved. Runs under the refresh's lock (`_refresh_lock`)."""
    summary = FoldSummary(run)
    if connection.vendor != "postgresql":
        summary.add(_fold_outcomes_portable(run, now))
        return summary
    planned_at = list(
        CampaignChunk.objects.filter(run=run, open_targets__gt=0, planned_at__isnull=False)
        .order_by()
        .values_list("planned_at", flat=True)
        .distinct()
    )
    # The job ids stay in the driver's result buffer (client-side cursor), a slice at a time
    # in Python; the folds go through a second cursor.
    with (
        connection.cursor() as jobs,
        connection.cursor() as cursor,
        planner_settings(cursor, **_INDEX_LOOKUPS_ONLY),
    ):
        jobs.execute(_CHANGED_JOBS, [planned_at, run.pk])
        while job_ids := [row[0] for row in jobs.fetchmany(FOLD_SLICE)]:
            cursor.execute(_FOLD, [job_ids, run.pk, now])
            summary.add(TargetMove(*row) for row in cursor.fetchall())
    return summary


def _fold_outcomes_portable(run: CampaignRun, now: datetime.datetime) -> Iterator[TargetMove]:
    """Every open target looked at (SQLite: `make run`'s demo sizes)."""
    mapping = {"done": "confirmed", "failed": "failed", "cancelled": "cancelled"}
    targets = CampaignTarget.objects.filter(run=run, state__in=OPEN_TARGET_STATES).select_related(
        "job"
    )
    for target in targets.iterator(chunk_size=1000):
        job = target.job
        if job is None:
            continue
        old_state = target.state
        if job.state in mapping:
            target.state, target.reason = mapping[job.state], job.result[:300]
        else:
            last = job.messages.exclude(state=OtaMessageState.PENDING).order_by("-step").first()
            if last is None or last.state not in OPEN_TARGET_STATES or last.state == old_state:
                continue
            target.state = last.state
        target.updated = now
        target.save(update_fields=["state", "reason", "updated"])
        yield TargetMove(target.subscriber_id, old_state, target.state, target.reason)


def _add_state_changes(run: CampaignRun, changes: dict[str, int]) -> None:
    """Adds net changes of target states to the run's `state_changes` (not saved)."""
    totals = dict(run.state_changes or {})
    for state, n in changes.items():
        totals[state] = totals.get(state, 0) + n
    run.state_changes = {state: n for state, n in totals.items() if n}


def _record_moves(run: CampaignRun, summary: FoldSummary) -> None:
    """What the folds moved, into the run's state changes (saved by the caller), the open
    targets of their chunks and the failure reasons' counts."""
    if not summary.moved:
        return
    _add_state_changes(run, summary.changes)
    for pk, n in summary.closed_by_chunk.items():
        CampaignChunk.objects.filter(pk=pk).update(open_targets=F("open_targets") - n)
    if summary.failed:
        table = RunFailureReason._meta.db_table
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} (run_id, reason, targets) VALUES (%s, %s, %s) "
                f"ON CONFLICT (run_id, reason) DO UPDATE "
                f"SET targets = {table}.targets + excluded.targets",
                [(run.pk, reason, n) for reason, n in summary.failed.items()],
            )


def target_counts(run: CampaignRun) -> dict[str, int]:
    """The run's targets by state without counting them: each planned chunk's targets were
    written queued or skipped (its `planned_count`, `skipped_count`, summed in the run's
    `planned`, `skipped`), and every change since is in `state_changes`. `pending`: targets
    not planned yet."""
    changes = run.state_changes or {}
    counts = {state: int(changes.get(state, 0)) for state in TargetState.values}
    counts[TargetState.QUEUED] += run.planned
    counts[TargetState.SKIPPED] += run.skipped
    counts["pending"] = (
        max(0, run.total - run.planned - run.skipped) if not run.planning_done else 0
    )
    return counts


def _refresh_counters(run: CampaignRun, now: datetime.datetime) -> None:
    """Counters, failure reasons and a throughput sample, from the run's sums (no scan)."""
    run.counters = target_counts(run)
    reasons = RunFailureReason.objects.filter(run=run).order_by("-targets", "reason")[:10]
    run.failure_reasons = {(r.reason or "unknown")[:120]: r.targets for r in reasons}
    sample = {
        "t": now.isoformat(),
        "done": run.counters["confirmed"] + run.counters["failed"],
        "sent": run.counters["submitted"]
        + run.counters["delivered"]
        + run.counters["confirmed"]
        + run.counters["failed"],
        "planned": run.planned,
    }
    run.samples = [*(run.samples or [])[-(MAX_SAMPLES - 1) :], sample]


def revive_runs(*, now: datetime.datetime | None = None) -> int:
    """What beat runs every few seconds: restart the refresh of any active run whose refresh
    chain went silent (its task lost with a killed worker: Redis gives an unacknowledged task
    back only after its visibility timeout). `refresh_run` restarts a stalled planning chain."""
    now = now or timezone.now()
    revived = 0
    for pk, refreshed, every in CampaignRun.objects.filter(state__in=ACTIVE_RUN_STATES).values_list(
        "pk", "refreshed_at", "refresh_seconds"
    ):
        limit = now - datetime.timedelta(seconds=max(3 * max(every, REFRESH_SECONDS), 5))
        if refreshed is None or refreshed < limit:
            refresh_run(run_id=pk, now=now)
            revived += 1
    return revived


def _refresh_lock(run_id: int, *, wait: bool = False) -> bool:
    """One refresh (or cancel) of a run at a time, without the run's row lock (taken only at
    the end): a transaction-level advisory lock on PostgreSQL. The refresh tries it and does
    not wait; the cancel waits (`wait`)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [REFRESH_LOCK_SPACE, run_id])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [REFRESH_LOCK_SPACE, run_id])
        return bool(cursor.fetchone()[0])


def refresh_run(*, run_id: int, now: datetime.datetime | None = None) -> CampaignRun | None:
    """Fold outcomes, update counters and samples, restart a stalled planning chain, finish
    the run when every target is final, notify. Re-queues itself while the run is active;
    a second chain (after `revive_runs`) dies at its next turn, as refreshes come too close.

    The fold runs without the run's row lock: a chunk being claimed or committed (its commit
    takes a key-share lock on the run) would wait for it. The row is locked at the end, to
    save the counters (the chunks' sums, read then, plus the fold's changes) and to change
    the state."""
    now = now or timezone.now()
    clock = time.monotonic()
    with transaction.atomic():
        locked = _refresh_lock(run_id)
        run = CampaignRun.objects.select_related("campaign").filter(pk=run_id).first()
        if run is None:
            return None
        if not locked:
            if run.is_active:
                # Another refresh holds it: come back shortly rather than wait. Soon enough
                # to die as a duplicate.
                _enqueue_refresh(run.pk, REFRESH_SECONDS / 4)
            return run
        if (
            run.is_active
            and run.refreshed_at is not None
            and 0 <= (now - run.refreshed_at).total_seconds() < REFRESH_SECONDS / 2
        ):
            return run  # a duplicate chain: let the other one carry on
        moved = None
        if run.state in (RunState.RUNNING, RunState.PAUSED):
            # A confirmed push records the card's record version in OTA delivery itself.
            moved = _fold_outcomes(run, now)
        run = CampaignRun.objects.select_for_update().select_related("campaign").get(pk=run_id)
        if moved is not None:
            _record_moves(run, moved)
        # After the fold: the sums take in every chunk whose targets it saw. This also heals
        # a planner that died between its chunk's commit and its sum.
        _sum_chunks_locked(run)
        _refresh_counters(run, now)
        run.refreshed_at = now
        run.save(
            update_fields=[
                "counters",
                "state_changes",
                "failure_reasons",
                "samples",
                "refreshed_at",
            ]
        )
        if run.state == RunState.RUNNING:
            open_left = sum(run.counters.get(s, 0) for s in OPEN_TARGET_STATES)
            if run.planning_done and not open_left:
                _set_run_state(
                    TASK_ACTOR,
                    run,
                    RunState.DONE,
                    f"done: {run.counters.get('confirmed', 0)} confirmed, "
                    f"{run.counters.get('failed', 0)} failed, "
                    f"{run.counters.get('skipped', 0)} skipped",
                )
            elif not run.planning_done:
                replan_stalled_chunks(run, now, older=STALL_SECONDS)
            if (
                run.state == RunState.RUNNING
                and not run.claiming_done
                and (
                    run.last_chunk_at is None
                    or (now - run.last_chunk_at).total_seconds() > STALL_SECONDS
                )
                and (now - run.started).total_seconds() > STALL_SECONDS
            ):
                # The chain died (a worker lost between commit and re-queue): restart it.
                log.warning(
                    "campaign run %s: planning stalled; re-queued at %s", run.pk, run.cursor
                )
                run.last_chunk_at = now
                run.save(update_fields=["last_chunk_at"])
                _enqueue_chunk(run.pk, run.cursor)
        if run.is_active:
            every = min(
                max(REFRESH_SECONDS, REFRESH_COST_FACTOR * (time.monotonic() - clock)),
                MAX_REFRESH_SECONDS,
            )
            if every != run.refresh_seconds:
                run.refresh_seconds = every
                run.save(update_fields=["refresh_seconds"])
            _enqueue_refresh(run.pk, every)
        elif run.notified_at is None:
            run.notified_at = now
            run.save(update_fields=["notified_at"])
            transaction.on_commit(lambda: _notify(run.pk))
        return run


def _notify(run_id: int) -> None:
    run = CampaignRun.objects.select_related("campaign").get(pk=run_id)
    recipients = _emails(run.campaign.notify_emails)
    if not recipients:
        return
    c = run.counters
    body = (
        f"Campaign {run.campaign.name}, run {run.number}: {run.get_state_display().lower()}.\n\n"
        + "\n".join(f"{state}: {c.get(state, 0)}" for state in TargetState.values)
        + "\n\nFailures by reason:\n"
        + "\n".join(f"{n}  {reason}" for reason, n in (run.failure_reasons or {}).items())
    )
    send_mail(
        subject=f"[portal] campaign {run.campaign.name} run {run.number} "
        f"{run.get_state_display().lower()}",
        message=body,
        from_email=None,
        recipient_list=recipients,
        fail_silently=True,
    )
