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
    KeyAlgorithm,
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
        ordering = ["iccid"]
        indexes = [
            models.Index(
                fields=["iccid"], name="card_iccid_prefix", opclasses=["varchar_pattern_ops"]
            ),
            models.Index(
                fields=["imsi"], name="card_imsi_prefix", opclasses=["varchar_pattern_ops"]
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
    """

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="keysets")
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
        indexes = [
            # Prefix search (LIKE 'x%') on PostgreSQL needs the pattern operator class
            # whatever the database collation; other backends ignore opclasses.
            models.Index(
                fields=["msisdn"],
                name="subscriber_msisdn_prefix",
                opclasses=["varchar_pattern_ops"],
            ),
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
