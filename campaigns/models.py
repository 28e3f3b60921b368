"""Campaigns (DESIGN 3): a target, an action, a schedule, a window and a rate; each run of a
campaign has one `CampaignTarget` row per target (unique), which is what makes a run
exactly-once whatever happens to the workers."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from campaigns.choices import (
    CampaignAction,
    CampaignState,
    RunState,
    ScheduleKind,
    TargetKind,
    TargetState,
)


class Campaign(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=20, choices=CampaignAction.choices)
    applet_version = models.ForeignKey(
        "cardmgmt.AppletVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text="The version to load and install, or whose package to delete.",
    )
    sync_mode = models.PositiveSmallIntegerField(
        "forced sync mode",
        null=True,
        blank=True,
        validators=[MaxValueValidator(10)],
        help_text="Trigger only: SyncML alert code minus 200 (e.g. 1 = slow sync); empty: the "
        "record's own modes.",
    )
    # --- target ---
    target_kind = models.CharField(
        max_length=10, choices=TargetKind.choices, default=TargetKind.FILTER
    )
    only_active = models.BooleanField("active subscribers only", default=True)
    segments = models.ManyToManyField("cardmgmt.Segment", blank=True, related_name="+")
    card_profiles = models.ManyToManyField("cardmgmt.CardProfile", blank=True, related_name="+")
    installed_version = models.ForeignKey(
        "cardmgmt.AppletVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only cards where this applet version is installed.",
    )
    missing_version = models.ForeignKey(
        "cardmgmt.AppletVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only cards where this applet version is not installed.",
    )
    sync_card_outdated = models.BooleanField(
        "card's sync record outdated",
        default=False,
        help_text="Only subscribers whose card does not hold the current sync profile version.",
    )
    sync_card_version_below = models.PositiveIntegerField(
        "sync record version on card below",
        null=True,
        blank=True,
        help_text="Only cards holding a sync profile version lower than this (or none).",
    )
    last_sync_older_days = models.PositiveIntegerField(
        "last sync older than (days)",
        null=True,
        blank=True,
        help_text="Only subscribers with no completed sync within this many days.",
    )
    device_manufacturer = models.CharField(max_length=100, blank=True)
    device_model = models.CharField(max_length=100, blank=True)
    handset_changed_since = models.DateField(
        null=True, blank=True, help_text="Only subscribers whose handset changed since this date."
    )
    # --- schedule ---
    schedule_kind = models.CharField(
        max_length=10, choices=ScheduleKind.choices, default=ScheduleKind.MANUAL
    )
    start_at = models.DateTimeField("run at", null=True, blank=True)
    cron = models.CharField(
        max_length=100, blank=True, help_text="Five fields: minute hour day-of-month month weekday"
    )
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    schedule_timezone = models.CharField(max_length=64, default="UTC")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaign",
        editable=False,
    )
    # --- maintenance window: send only between two local times on chosen weekdays ---
    window_timezone = models.CharField(max_length=64, default="UTC")
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    window_weekdays = models.JSONField(
        default=list, blank=True, help_text="0 = Monday ... 6 = Sunday; empty: every day"
    )
    # --- pace ---
    rate_limit = models.PositiveIntegerField(
        "messages per second",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Empty: as fast as the SMSC links allow. Never above the links' TPS.",
    )
    chunk_size = models.PositiveIntegerField(
        default=1000, validators=[MinValueValidator(10), MaxValueValidator(10000)]
    )
    priority = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Lower goes first; single-card operations use 0, so they always pass first.",
    )
    notify_emails = models.CharField(
        "notify by e-mail", max_length=500, blank=True, help_text="Comma-separated addresses"
    )
    state = models.CharField(
        max_length=10, choices=CampaignState.choices, default=CampaignState.DRAFT
    )
    created_by = models.CharField(max_length=200)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:campaign_detail", args=[self.pk])

    @property
    def has_window(self) -> bool:
        return self.window_start is not None and self.window_end is not None


class CampaignListEntry(models.Model):
    """One subscriber of an uploaded target list (resolved from its MSISDN or ICCID)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="list_entries")
    subscriber = models.ForeignKey(
        "cardmgmt.Subscriber", on_delete=models.CASCADE, related_name="+"
    )
    line = models.PositiveIntegerField()

    class Meta:
        ordering = ["campaign", "subscriber"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "subscriber"], name="campaign_list_once")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.subscriber_id}"


class CampaignRun(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.RUNNING)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    # Keyset pagination: the last subscriber id planned. Only the chunk holding the run's row
    # lock moves it, in the transaction that writes the chunk's targets.
    cursor = models.BigIntegerField(default=0)
    # Every range of subscribers is claimed by a chunk (`CampaignChunk`); planning is done
    # when, besides, every chunk is planned.
    claiming_done = models.BooleanField(default=False)
    planning_done = models.BooleanField(default=False)
    planned = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0, help_text="Targets counted at the start")
    counters = models.JSONField(default=dict, blank=True)
    # Net change of each target state since planning, from the refreshes' folds and the cancel
    # (a target is written `queued` or `skipped`, counted by its chunk): the counters are the
    # chunks' sums plus these, so a refresh does not count the run's targets again.
    state_changes = models.JSONField(default=dict, blank=True)
    # The ten most frequent reasons of failed targets (all of them: `RunFailureReason`).
    failure_reasons = models.JSONField(default=dict, blank=True)
    samples = models.JSONField(default=list, blank=True)
    created_by = models.CharField(max_length=200)
    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    last_chunk_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    # Seconds to the next refresh: longer when the last refresh was costly (a million open
    # targets), so refreshing takes a bounded share of a worker whatever the run's size.
    refresh_seconds = models.FloatField(default=2.0)
    waiting = models.CharField(max_length=200, blank=True, help_text="Why planning waits")
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="campaignrun_number")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} run {self.number}"

    def get_absolute_url(self) -> str:
        return reverse("campaigns:run_detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.state in (RunState.RUNNING, RunState.PAUSED)

    @property
    def finished_count(self) -> int:
        c = self.counters or {}
        return sum(int(c.get(s, 0)) for s in ("confirmed", "failed", "skipped", "cancelled"))

    @property
    def percent(self) -> int:
        if self.state == RunState.DONE:
            return 100
        total = max(self.total, self.planned + self.skipped)
        return int(100 * self.finished_count / total) if total else 0


class CampaignTarget(models.Model):
    """One target of one run. The unique (run, subscriber) is the exactly-once guarantee.

    A run writes up to a million of these at planning speed: every index costs, so the
    foreign keys to the run and the job have none of their own (the unique (run, subscriber)
    and `campaigntarget_job` serve them).

    Run, subscriber, card and job are relations without a database constraint: each checked
    constraint is a look-up per row at commit (four of the seven per target a campaign
    writes). The rows are written only by the planner (`campaigns.services._plan_rows`), which
    takes these ids from rows it has just read (the run, held `FOR KEY SHARE` at the chunk's
    commit as the constraint would; the subscribers and their cards) or written (the jobs) in
    the same transaction; deleting a run, subscriber, card or job still cascades or nulls here
    through Django's `on_delete`."""

    run = models.ForeignKey(
        CampaignRun,
        on_delete=models.CASCADE,
        related_name="targets",
        db_index=False,
        db_constraint=False,
    )
    subscriber = models.ForeignKey(
        "cardmgmt.Subscriber",
        on_delete=models.CASCADE,
        related_name="campaign_targets",
        db_constraint=False,
    )
    card = models.ForeignKey(
        "cardmgmt.Card",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    msisdn = models.CharField("MSISDN", max_length=16)
    job = models.ForeignKey(
        "cardmgmt.OtaJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    state = models.CharField(max_length=10, choices=TargetState.choices)
    reason = models.CharField(max_length=300, blank=True)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "subscriber"], name="campaigntarget_once")
        ]
        indexes = [
            models.Index(fields=["run", "state", "id"], name="campaigntarget_run_state"),
            models.Index(fields=["job"], name="campaigntarget_job"),
        ]

    def __str__(self) -> str:
        return f"{self.msisdn} in {self.run_id}: {self.state}"


class CampaignChunk(models.Model):
    """A range of subscribers (`after` < id <= `last`) claimed for planning.

    Claiming moves the run's cursor in a short transaction; the chunk is then planned in its
    own transaction, which marks it planned together with its targets and jobs. Two worker
    processes thus plan two chunks side by side, and a chunk whose planner died (its
    transaction rolled back: no counter spent, no row written) is planned again."""

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="chunks")
    after = models.BigIntegerField()
    last = models.BigIntegerField()
    planned = models.BooleanField(default=False)
    planned_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(default=timezone.now)
    # When the chunk was planned: the `created` of every OTA job it made, by which a refresh
    # finds the chunk's finished jobs on the job table's (state, created) index.
    planned_at = models.DateTimeField(null=True, blank=True)
    # Targets of the chunk not yet final (queued, submitted or delivered). A chunk at 0 is
    # left out of the refresh's search for finished jobs.
    open_targets = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "after"]
        constraints = [models.UniqueConstraint(fields=["run", "after"], name="campaignchunk_once")]

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.after}..{self.last}"


class RunFailureReason(models.Model):
    """How many targets of a run failed with one reason (the OTA job's result). Counted as the
    refresh folds failures, so the run page's reasons cost no scan of the failed targets."""

    run = models.ForeignKey(
        CampaignRun, on_delete=models.CASCADE, related_name="failure_counts", db_index=False
    )
    reason = models.CharField(max_length=300, blank=True)
    targets = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "-targets", "reason"]
        constraints = [
            models.UniqueConstraint(fields=["run", "reason"], name="runfailurereason_once")
        ]

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.targets} x {self.reason}"
