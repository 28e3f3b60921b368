"""Enumerations of the card and subscriber inventory."""

from django.db import models


class KeyAlgorithm(models.TextChoices):
    """Cipher family and key length of an SCP80 key set (KIc and KID use the same family)."""

    DES = "des", "DES (8 bytes)"
    TDES_2KEY = "3des2k", "3DES 2-key (16 bytes)"
    TDES_3KEY = "3des3k", "3DES 3-key (24 bytes)"
    AES_128 = "aes128", "AES-128 (16 bytes)"
    AES_192 = "aes192", "AES-192 (24 bytes)"
    AES_256 = "aes256", "AES-256 (32 bytes)"


KEY_LENGTHS = {
    KeyAlgorithm.DES: 8,
    KeyAlgorithm.TDES_2KEY: 16,
    KeyAlgorithm.TDES_3KEY: 24,
    KeyAlgorithm.AES_128: 16,
    KeyAlgorithm.AES_192: 24,
    KeyAlgorithm.AES_256: 32,
}


class CounterMode(models.TextChoices):
    """SPI1 b5b4 (TS 102 225 5.1.1)."""

    NONE = "none", "No counter"
    PRESENT = "present", "Counter present, not checked"
    HIGHER = "higher", "Process if higher than the card's"
    NEXT = "next", "Process if exactly the card's + 1"


class PorMode(models.TextChoices):
    """SPI2 b6: how the card returns its Proof of Receipt."""

    SMS_SUBMIT = "sms_submit", "SMS-SUBMIT (arrives as deliver_sm)"
    DELIVER_REPORT = "deliver_report", "SMS-DELIVER-REPORT (not visible over SMPP)"


class CardStatus(models.TextChoices):
    IN_STOCK = "in_stock", "In stock"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    RETIRED = "retired", "Retired"


class SubscriberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"


class ImportKind(models.TextChoices):
    CARDS = "cards", "Cards (manufacturer output file)"
    SUBSCRIBERS = "subscribers", "Subscribers"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    VALIDATING = "validating", "Validating"
    IMPORTING = "importing", "Importing"
    DONE = "done", "Done"
    REJECTED = "rejected", "Rejected (bad lines)"
    FAILED = "failed", "Failed"


class InstallationState(models.TextChoices):
    PLANNED = "planned", "Planned"
    LOADING = "loading", "Loading"
    INSTALLED = "installed", "Installed"
    FAILED = "failed", "Failed"
    DELETED = "deleted", "Deleted"


class OtaOperation(models.TextChoices):
    LOAD_INSTALL = "load_install", "Load and install applet"
    DELETE = "delete", "Delete applet"
    AUDIT = "audit", "Audit installations (GET STATUS)"
    PUSH_PARAMS = "push_params", "Push sync parameters"
    TRIGGER_SYNC = "trigger_sync", "Trigger a sync"


class OtaJobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class OtaMessageState(models.TextChoices):
    """DESIGN 3: queued -> submitted -> delivered -> confirmed | failed; retried with a new
    counter within limits. `pending` is a step not yet built (no counter spent)."""

    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued for the SMSC"
    SUBMITTED = "submitted", "Submitted"
    DELIVERED = "delivered", "Delivered to the handset"
    CONFIRMED = "confirmed", "Confirmed by PoR"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class InboundKind(models.TextChoices):
    POR = "por", "Proof of Receipt"
    RECEIPT = "receipt", "Delivery receipt"
    OTHER = "other", "Other"


class InboundVerdict(models.TextChoices):
    MATCHED = "matched", "Matched and verified"
    SUSPICIOUS = "suspicious", "Failed verification"
    UNMATCHED = "unmatched", "No matching message"
    PENDING = "pending", "Not processed yet"
