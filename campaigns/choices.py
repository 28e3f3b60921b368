"""Enumerations of campaigns (DESIGN 3, Campaign)."""

from django.db import models

from cardmgmt.choices import OtaOperation


class CampaignAction(models.TextChoices):
    """What a campaign does on each target card (the OTA operation it plans)."""

    LOAD_INSTALL = OtaOperation.LOAD_INSTALL.value, "Load and install an applet version"
    DELETE = OtaOperation.DELETE.value, "Delete an applet"
    PUSH_PARAMS = OtaOperation.PUSH_PARAMS.value, "Push the sync parameter record"
    TRIGGER_SYNC = OtaOperation.TRIGGER_SYNC.value, "Trigger a sync"
    AUDIT = OtaOperation.AUDIT.value, "Audit installations (GET STATUS)"


class TargetKind(models.TextChoices):
    FILTER = "filter", "Saved filter over subscribers and cards"
    LIST = "list", "Uploaded list of MSISDNs or ICCIDs"


class ScheduleKind(models.TextChoices):
    MANUAL = "manual", "Run by hand"
    ONCE = "once", "Once at a time"
    CRON = "cron", "Cron"
    INTERVAL = "interval", "Every interval"


class CampaignState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class RunState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RUN_STATES = (RunState.RUNNING, RunState.PAUSED)


class TargetState(models.TextChoices):
    """One target of one run. `queued` means its OTA job exists (a counter was spent)."""

    QUEUED = "queued", "Queued"
    SUBMITTED = "submitted", "Submitted"
    DELIVERED = "delivered", "Delivered"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


FINAL_TARGET_STATES = (
    TargetState.CONFIRMED,
    TargetState.FAILED,
    TargetState.SKIPPED,
    TargetState.CANCELLED,
)
OPEN_TARGET_STATES = (TargetState.QUEUED, TargetState.SUBMITTED, TargetState.DELIVERED)

WEEKDAYS = [
    (0, "Mon"),
    (1, "Tue"),
    (2, "Wed"),
    (3, "Thu"),
    (4, "Fri"),
    (5, "Sat"),
    (6, "Sun"),
]
