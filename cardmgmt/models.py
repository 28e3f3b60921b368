"""The card and subscriber inventory: card profiles, cards and their OTA key sets,
subscribers with their SIM swap history, and import jobs."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from cardmgmt.choices import (
    CardStatus,
    CounterMode,
    ImportKind,
    ImportStatus,
    InboundKind,
    InboundVerdict,
    InstallationState,
    KeyAlgorithm,
    OtaJobState,
    OtaMessageState,
    OtaOperation,
    PorMode,
    SubscriberStatus,
)
from cardmgmt.validators import validate_iccid, validate_imsi, validate_msisdn, validate_tar


class CardProfile(models.Model):
    """What a family of cards supports and how the portal must talk to it."""

    name = models.CharField(max_length=100, unique=True)
    vendor = models.CharField(max_length=100)
    algorithms = models.JSONField(
        default=list, help_text='Key algorithms the card supports, e.g. ["aes128", "3des2k"].'
    )
    ram_tar = models.CharField("RAM TAR", max_length=6, default="000000", validators=[validate_tar])
    rfm_tar = models.CharField("RFM TAR", max_length=6, default="B00010", validators=[validate_tar])
    min_security_level = models.PositiveSmallIntegerField(
        "minimum security level",
        default=0x12,
        validators=[MaxValueValidator(0xFF)],
        help_text="Minimum SPI1 the card's applications accept (0x12 = CC + counter higher).",
    )
    cmac_length = models.PositiveSmallIntegerField(
        "AES CMAC length", default=8, choices=[(4, "4 octets"), (8, "8 octets")]
    )
    counter_mode = models.CharField(
        max_length=10, choices=CounterMode.choices, default=CounterMode.HIGHER
    )
    por_mode = models.CharField(max_length=20, choices=PorMode.choices, default=PorMode.SMS_SUBMIT)
    max_load_block = models.PositiveSmallIntegerField(
        "maximum LOAD block",
        default=240,
        validators=[MinValueValidator(16), MaxValueValidator(255)],
    )
    load_descriptor = models.BooleanField("load the CAP Descriptor component", default=False)
    pipelined = models.BooleanField(
        "pipeline multi-step scripts",
        default=False,
        help_text="Send every step of a script at once (counter mode 'higher' cards only); "
        "otherwise each step waits for the previous PoR.",
    )
    por_timeout = models.PositiveIntegerField(
        "PoR timeout (s)", default=120, validators=[MinValueValidator(5)]
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cardmgmt:cardprofile_detail", args=[self.pk])


class Card(models.Model):
    """A UICC, identified by its ICCID."""

    iccid = models.CharField("ICCID", max_length=20, validators=[validate_iccid])
    imsi = models.CharField("IMSI", max_length=15, validators=[validate_imsi])
    profile = models.ForeignKey(CardProfile, on_delete=models.PROTECT, related_name="cards")
    status = models.CharField(
        max_length=10, choices=CardStatus.choices, default=CardStatus.IN_STOCK
    )
    # Keyed digest of the imported row: a re-import of the same data is recognised as such.
    import_digest = models.CharField(max_length=64, blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    audit_redact = frozenset({"import_digest"})

    class Meta:
        # In arrival order: an index scan at any size (ICCID order would sort the table,
        # its unique index being a pattern index for prefix search).
        ordering = ["id"]
        # One unique index per identifier serves equality and prefix search (LIKE 'x%'):
        # the pattern operator class works whatever the database collation.
        constraints = [
            models.UniqueConstraint(
                fields=["iccid"], name="card_iccid_unique", opclasses=["varchar_pattern_ops"]
            ),
            models.UniqueConstraint(
                fields=["imsi"], name="card_imsi_unique", opclasses=["varchar_pattern_ops"]
            ),
        ]
        permissions = [
            ("operate_single_card", "Run OTA operations on a single card"),
            ("run_ota_operation", "Run OTA operations on selections of cards"),
            ("run_campaign", "Create and run campaigns"),
        ]

    def __str__(self) -> str:
        return self.iccid

    def get_absolute_url(self) -> str:
        return reverse("cardmgmt:card_detail", args=[self.pk])


class KeySet(models.Model):
    """An SCP80 key set (KVN 1-15) of a card. Keys are sealed at rest and never shown.

    `counter` is the last OTA counter value used with this key set; it only goes up.
    The table has a fill factor of 70 (migration 0007): a campaign chunk updates thousands of
    counters at once, and with room left on each page (counter is in no index) the new row
    versions stay on their page (HOT) instead of adding an entry to every index.
    """

    # No index of its own: the unique (card, kvn) index serves look-ups by card.
    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="keysets", db_index=False)
    kvn = models.PositiveSmallIntegerField(
        "KVN", validators=[MinValueValidator(1), MaxValueValidator(15)]
    )
    algorithm = models.CharField(max_length=10, choices=KeyAlgorithm.choices)
    kic = models.BinaryField("KIc (sealed)", editable=False)
    kid = models.BinaryField("KID (sealed)", editable=False)
    kik = models.BinaryField("KIK (sealed)", editable=False, null=True)
    counter = models.BigIntegerField(default=0)

    audit_redact = frozenset({"kic", "kid", "kik"})

    class Meta:
        ordering = ["card", "kvn"]
        constraints = [models.UniqueConstraint(fields=["card", "kvn"], name="keyset_card_kvn")]

    def __str__(self) -> str:
        return f"{self.card_id}/KVN {self.kvn}"


class Segment(models.Model):
    """A label grouping subscribers (tariff, region, pilot group...)."""

    name = models.SlugField(max_length=50, unique=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Subscriber(models.Model):
    msisdn = models.CharField("MSISDN", max_length=16, validators=[validate_msisdn])
    status = models.CharField(
        max_length=12, choices=SubscriberStatus.choices, default=SubscriberStatus.ACTIVE
    )
    segments = models.ManyToManyField(Segment, blank=True, related_name="subscribers")
    card = models.OneToOneField(
        Card, null=True, blank=True, on_delete=models.PROTECT, related_name="subscriber"
    )
    import_digest = models.CharField(max_length=64, blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    audit_redact = frozenset({"import_digest"})

    class Meta:
        ordering = ["msisdn"]
        constraints = [
            # Equality and prefix search (LIKE 'x%') from one index, whatever the collation.
            models.UniqueConstraint(
                fields=["msisdn"],
                name="subscriber_msisdn_unique",
                opclasses=["varchar_pattern_ops"],
            ),
        ]
        indexes = [
            # The pattern index above cannot give ORDER BY msisdn under a non-C collation:
            # this one keeps every page of the sorted list an index scan.
            models.Index(fields=["msisdn"], name="subscriber_msisdn_order"),
            models.Index(fields=["status", "msisdn"], name="subscriber_status_msisdn"),
        ]

    def __str__(self) -> str:
        return self.msisdn

    def get_absolute_url(self) -> str:
        return reverse("cardmgmt:subscriber_detail", args=[self.pk])


class CardAssignment(models.Model):
    """Which card a subscriber had when: the SIM swap history."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="assignments")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="assignments")
    assigned = models.DateTimeField(default=timezone.now)
    released = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-assigned"]

    def __str__(self) -> str:
        return f"{self.subscriber_id} ← {self.card_id}"


class ImportJob(models.Model):
    """An uploaded CSV being validated and imported, with its progress and line errors."""

    kind = models.CharField(max_length=12, choices=ImportKind.choices)
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    status = models.CharField(
        max_length=12, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    message = models.CharField(max_length=500, blank=True)
    requested_by = models.CharField(max_length=200)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import {self.original_name}"

    def get_absolute_url(self) -> str:
        return reverse("cardmgmt:importjob_detail", args=[self.pk])

    @property
    def percent(self) -> int:
        if self.status in (ImportStatus.DONE,):
            return 100
        if not self.total_rows:
            return 0
        # Validation is the first half of the work, writing the second.
        done = self.processed_rows / self.total_rows
        return int(50 * done) if self.status == ImportStatus.VALIDATING else int(50 + 50 * done)

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.REJECTED, ImportStatus.FAILED)


class Applet(models.Model):
    """An applet product in the catalog; its CAP files are its versions."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cardmgmt:applet_detail", args=[self.pk])


class AppletVersion(models.Model):
    """An uploaded CAP file, parsed, with the default install parameters of this version."""

    applet = models.ForeignKey(Applet, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=30)
    cap_file = models.BinaryField(editable=False)
    cap_name = models.CharField("CAP file", max_length=255)
    package_aid = models.CharField("package AID", max_length=32)
    package_version = models.CharField(max_length=10)
    applet_aids = models.JSONField(default=list)
    components = models.JSONField(default=list)
    imports = models.JSONField(default=list)
    load_file_size = models.PositiveIntegerField()
    load_file_size_with_descriptor = models.PositiveIntegerField()
    # Default install parameters (TS 102 226 8.2.1), edited in a validated form.
    instance_aid = models.CharField("instance AID", max_length=32)
    privileges = models.CharField(max_length=6, default="00")
    toolkit_tar = models.CharField(
        "toolkit TAR", max_length=6, blank=True, validators=[validate_tar]
    )
    priority = models.PositiveSmallIntegerField(default=1, validators=[MaxValueValidator(255)])
    max_timers = models.PositiveSmallIntegerField(default=1, validators=[MaxValueValidator(255)])
    menu_entries = models.JSONField(
        default=list, blank=True, help_text="Menu entries as [position, identifier] pairs"
    )
    max_menu_text_length = models.PositiveSmallIntegerField(
        default=16, validators=[MaxValueValidator(255)]
    )
    max_channels = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(255)])
    min_security_level = models.PositiveSmallIntegerField(
        "minimum security level",
        default=0x12,
        validators=[MaxValueValidator(0xFF)],
        help_text="Minimum SPI1 the applet accepts (0x12 = CC + counter higher).",
    )
    non_volatile_quota = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(0xFFFF)]
    )
    volatile_quota = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(0xFFFF)]
    )
    uploaded_by = models.CharField(max_length=200)
    created = models.DateTimeField(default=timezone.now)

    audit_redact = frozenset({"cap_file"})

    class Meta:
        ordering = ["applet", "-created"]
        constraints = [
            models.UniqueConstraint(fields=["applet", "version"], name="appletversion_unique")
        ]

    def __str__(self) -> str:
        return f"{self.applet.name} {self.version}"

    def get_absolute_url(self) -> str:
        return reverse("cardmgmt:appletversion_detail", args=[self.pk])


class Installation(models.Model):
    """An applet version on a card, kept true by confirmed PoRs and GET STATUS audits."""

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="installations")
    applet_version = models.ForeignKey(
        AppletVersion, on_delete=models.PROTECT, related_name="installations"
    )
    state = models.CharField(
        max_length=10, choices=InstallationState.choices, default=InstallationState.PLANNED
    )
    confirmed_by = models.CharField(max_length=20, blank=True, help_text="por or audit")
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["card", "applet_version"]
        constraints = [
            models.UniqueConstraint(fields=["card", "applet_version"], name="installation_unique")
        ]
        indexes = [models.Index(fields=["applet_version", "state"])]

    def __str__(self) -> str:
        return f"{self.applet_version} on {self.card_id}: {self.state}"


class SmscLink(models.Model):
    """An SMPP bind to an SMSC. One long-lived process per link (`manage.py run_smpp_link`)."""

    name = models.SlugField(max_length=50, unique=True)
    host = models.CharField(max_length=255, default="127.0.0.1")
    port = models.PositiveIntegerField(default=2775, validators=[MaxValueValidator(65535)])
    system_id = models.CharField(max_length=16)
    password = models.BinaryField("password (sealed)", editable=False)
    system_type = models.CharField(max_length=13, blank=True)
    source_addr = models.CharField(
        "source address", max_length=21, help_text="OTA short code or MSISDN; PoRs come back to it"
    )
    tps = models.PositiveIntegerField(
        "messages per second", default=100, validators=[MinValueValidator(1)]
    )
    window = models.PositiveSmallIntegerField(
        default=32, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=200, blank=True, editable=False)
    status_updated = models.DateTimeField(null=True, blank=True, editable=False)

    audit_redact = frozenset({"password"})

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cardmgmt:smsclink_detail", args=[self.pk])


class OtaJob(models.Model):
    """An operation on one card: an ordered script of OTA messages."""

    operation = models.CharField(max_length=20, choices=OtaOperation.choices)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="ota_jobs")
    applet_version = models.ForeignKey(
        AppletVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="ota_jobs"
    )
    parameters = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=OtaJobState.choices, default=OtaJobState.QUEUED)
    # Lower runs first: single-card operations from support before campaign traffic.
    priority = models.PositiveSmallIntegerField(default=0)
    requested_by = models.CharField(max_length=200)
    result = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["state", "created"])]

    def __str__(self) -> str:
        return f"{self.get_operation_display()} on {self.card}"

    def get_absolute_url(self) -> str:
        return reverse("cardmgmt:otajob_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.state in (OtaJobState.DONE, OtaJobState.FAILED, OtaJobState.CANCELLED)


class OtaMessage(models.Model):
    """One secured packet of a job (one or more SMS), through its delivery states.

    A retry allocates a fresh counter and rebuilds the packet; the previous attempts stay
    in `history`."""

    # Campaigns write up to a million rows at planning speed: each index costs on insert.
    # `job` and `card` have no index of their own: the unique (job, step) and the PoR
    # match (card, tar, counter) lead with them.
    job = models.ForeignKey(
        OtaJob, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    step = models.PositiveSmallIntegerField()
    description = models.CharField(max_length=100)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Looked up by equality only (PoRs by sender): a plain index, without the LIKE twin.
    msisdn = models.CharField(max_length=16)
    tar = models.CharField("TAR", max_length=6)
    kvn = models.PositiveSmallIntegerField("KVN")
    secured_data = models.BinaryField(editable=False)
    sealed = models.BooleanField(
        default=False, help_text="secured_data is sealed: it carries a secret (sync parameters)"
    )
    state = models.CharField(
        max_length=10, choices=OtaMessageState.choices, default=OtaMessageState.PENDING
    )
    priority = models.PositiveSmallIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    counter = models.BigIntegerField(null=True, blank=True)
    user_data = models.JSONField(default=list, blank=True, help_text="TP-UD of each SMS, hex")
    smpp_ids = models.JSONField(default=list, blank=True)
    # Indexed only where set (`otamessage_link`): a queued packet has no link yet.
    link = models.ForeignKey(
        SmscLink, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    queued_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    por_status = models.PositiveSmallIntegerField(null=True, blank=True)
    por_sw = models.CharField("last SW", max_length=4, blank=True)
    por_data = models.CharField(max_length=600, blank=True)
    por_text = models.CharField("PoR", max_length=200, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    history = models.JSONField(default=list, blank=True)

    audit_redact = frozenset({"secured_data", "user_data"})

    class Meta:
        ordering = ["job", "step"]
        constraints = [models.UniqueConstraint(fields=["job", "step"], name="otamessage_step")]
        indexes = [
            models.Index(fields=["state", "priority", "id"], name="otamessage_sendable"),
            models.Index(fields=["card", "tar", "counter"], name="otamessage_por_match"),
            models.Index(fields=["state", "submitted_at"], name="otamessage_overdue"),
            models.Index(fields=["msisdn"], name="otamessage_msisdn"),
            # Serves the SET NULL when a link is deleted.
            models.Index(
                fields=["link"], name="otamessage_link", condition=models.Q(link__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.step} {self.description}"


class InboundMessage(models.Model):
    """A mobile-originated deliver_sm or a delivery receipt, as received from the SMSC."""

    link = models.ForeignKey(SmscLink, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=10, choices=InboundKind.choices)
    source_addr = models.CharField(max_length=21, db_index=True)
    payload = models.BinaryField()
    receipted_id = models.CharField(max_length=65, blank=True, db_index=True)
    receipt_state = models.CharField(max_length=20, blank=True)
    received = models.DateTimeField(default=timezone.now, db_index=True)
    verdict = models.CharField(
        max_length=10, choices=InboundVerdict.choices, default=InboundVerdict.PENDING
    )
    message = models.ForeignKey(
        OtaMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound"
    )
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from {self.source_addr}"


class SmsSegment(models.Model):
    """One submit_sm of a message attempt: its SMSC message id and delivery receipt."""

    message = models.ForeignKey(OtaMessage, on_delete=models.CASCADE, related_name="segments")
    attempt = models.PositiveSmallIntegerField()
    index = models.PositiveSmallIntegerField()
    smpp_id = models.CharField(max_length=65, db_index=True)
    submitted = models.DateTimeField(default=timezone.now)
    receipt_state = models.CharField(max_length=20, blank=True)
    receipt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["message", "attempt", "index"]

    def __str__(self) -> str:
        return f"{self.message_id} #{self.index} ({self.smpp_id})"
