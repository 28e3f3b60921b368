"""Sync profiles, devices, sessions and the DB2 stores (DESIGN 3, 4, 4a).

A `SyncState` is the per (device, datastore) memory of the last completed session: the
anchors and the change sequence reached. `ItemMap` holds, per (device, datastore, item), the
client's LUID, the server's GUID and the shadow (the item as both sides last agreed on it).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from sync.choices import (
    SYNC_MODE_CHOICES,
    ConflictPolicy,
    ConflictResolution,
    Datastore,
    DeviceEventKind,
    HeldDeleteStatus,
    SessionStatus,
)
from sync.fields import StringListField


def new_guid() -> str:
    return uuid.uuid4().hex


def default_datastores() -> list[dict]:
    return [
        {
            "local_name": "Contacts",
            "remote_uri": "contacts",
            "content_type": "text/x-vcard",
            "mode": 200,
        },
        {
            "local_name": "Inventory",
            "remote_uri": "inventory",
            "content_type": "application/vnd.portal.device-inventory+json",
            "mode": 202,
        },
    ]


class SyncProfileTemplate(models.Model):
    """Defaults for the profiles of one segment (no segment: the default template)."""

    name = models.CharField(max_length=100, unique=True)
    segment = models.OneToOneField(
        "cardmgmt.Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sync_template",
    )
    server_url = models.URLField(max_length=200)
    datastores = models.JSONField(default=default_datastores)
    interval_minutes = models.PositiveIntegerField(default=1440)
    trigger_ota = models.BooleanField("OTA trigger", default=True)
    trigger_timer = models.BooleanField("Timer", default=True)
    trigger_imei_change = models.BooleanField("IMEI change", default=True)
    trigger_menu = models.BooleanField("Menu entry", default=True)
    conflict_policy = models.CharField(
        max_length=12, choices=ConflictPolicy.choices, default=ConflictPolicy.MERGE
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("sync:template_detail", args=[self.pk])


# The profile fields a template provides and a subscriber may override.
PROFILE_SETTINGS = (
    "server_url",
    "datastores",
    "interval_minutes",
    "trigger_ota",
    "trigger_timer",
    "trigger_imei_change",
    "trigger_menu",
    "conflict_policy",
)


class SyncProfile(models.Model):
    """The parameters one subscriber's applet hands the handset, with its device credentials.

    The effective settings are stored; `overrides` names those set for this subscriber, the
    others follow the template. `version` grows with every change of the parameter record;
    `card_version` is the version the card is known to hold (set by OTA delivery).
    """

    subscriber = models.OneToOneField(
        "cardmgmt.Subscriber", on_delete=models.CASCADE, related_name="sync_profile"
    )
    template = models.ForeignKey(
        SyncProfileTemplate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="profiles",
    )
    server_url = models.URLField(max_length=200)
    datastores = models.JSONField(default=default_datastores)
    interval_minutes = models.PositiveIntegerField(default=1440)
    trigger_ota = models.BooleanField("OTA trigger", default=True)
    trigger_timer = models.BooleanField("Timer", default=True)
    trigger_imei_change = models.BooleanField("IMEI change", default=True)
    trigger_menu = models.BooleanField("Menu entry", default=True)
    conflict_policy = models.CharField(
        max_length=12, choices=ConflictPolicy.choices, default=ConflictPolicy.MERGE
    )
    overrides = models.JSONField(default=list, blank=True)
    username = models.CharField(max_length=64, unique=True)
    secret_sealed = models.BinaryField(editable=False)
    version = models.PositiveIntegerField(default=1)
    card_version = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    audit_redact = frozenset({"secret_sealed"})

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return f"sync profile of {self.subscriber_id and self.subscriber}"

    def get_absolute_url(self) -> str:
        return reverse("sync:profile_detail", args=[self.pk])

    @property
    def card_is_current(self) -> bool:
        return self.card_version == self.version


class Device(models.Model):
    """A handset as its DevInf describes it; `imei` comes from DevID."""

    subscriber = models.ForeignKey(
        "cardmgmt.Subscriber", on_delete=models.CASCADE, related_name="sync_devices"
    )
    dev_id = models.CharField("DevID", max_length=128)
    imei = models.CharField("IMEI", max_length=20, blank=True)
    manufacturer = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    oem = models.CharField("OEM", max_length=100, blank=True)
    firmware_version = models.CharField(max_length=100, blank=True)
    software_version = models.CharField(max_length=100, blank=True)
    hardware_version = models.CharField(max_length=100, blank=True)
    device_type = models.CharField(max_length=40, blank=True)
    language = models.CharField(max_length=20, blank=True)
    datastores = models.JSONField(default=list, blank=True)
    vcard_properties = models.JSONField(null=True, blank=True)
    support_large_objs = models.BooleanField(default=False)
    support_number_of_changes = models.BooleanField(default=False)
    current = models.BooleanField(default=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "dev_id"], name="device_per_subscriber")
        ]

    def __str__(self) -> str:
        return self.imei or self.dev_id

    def get_absolute_url(self) -> str:
        return reverse("sync:device_detail", args=[self.pk])


class DeviceEvent(models.Model):
    """The device record's history: first contact, DevInf changes, handset changes."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="events")
    time = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=DeviceEventKind.choices)
    previous_imei = models.CharField(max_length=128, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.device}"


class SyncSession(models.Model):
    profile = models.ForeignKey(SyncProfile, on_delete=models.CASCADE, related_name="sessions")
    subscriber = models.ForeignKey(
        "cardmgmt.Subscriber", on_delete=models.CASCADE, related_name="sync_sessions"
    )
    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    token = models.CharField(max_length=40, unique=True)
    client_session_id = models.CharField(max_length=64)
    client_dev_id = models.CharField(max_length=128)
    remote_address = models.GenericIPAddressField(null=True, blank=True)
    syncml_version = models.CharField(max_length=8)
    encoding = models.CharField(max_length=8)
    auth_type = models.CharField(max_length=24, blank=True)
    status = models.CharField(
        max_length=10, choices=SessionStatus.choices, default=SessionStatus.ACTIVE
    )
    modes = models.JSONField(default=dict, blank=True)  # datastore -> alert code used
    client_added = models.PositiveIntegerField(default=0)
    client_replaced = models.PositiveIntegerField(default=0)
    client_deleted = models.PositiveIntegerField(default=0)
    server_added = models.PositiveIntegerField(default=0)
    server_replaced = models.PositiveIntegerField(default=0)
    server_deleted = models.PositiveIntegerField(default=0)
    conflict_count = models.PositiveIntegerField(default=0)
    message_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    state = models.JSONField(default=dict, blank=True)
    started = models.DateTimeField(default=timezone.now)
    last_activity = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started", "-id"]
        indexes = [
            models.Index(fields=["subscriber", "-started"], name="syncsession_sub_started"),
            models.Index(
                fields=["client_dev_id", "client_session_id"], name="syncsession_client_ids"
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} ({self.client_dev_id})"

    def get_absolute_url(self) -> str:
        return reverse("sync:session_detail", args=[self.pk])

    @property
    def duration(self):  # type: ignore[no-untyped-def]
        return (self.finished or self.last_activity) - self.started

    @property
    def mode_labels(self) -> str:
        return ", ".join(f"{ds}: {code}" for ds, code in sorted(self.modes.items()))


class SyncMessage(models.Model):
    """One request and its reply: the reply is kept to answer a resent message identically."""

    session = models.ForeignKey(SyncSession, on_delete=models.CASCADE, related_name="messages")
    msg_id = models.CharField(max_length=16)
    received = models.DateTimeField(default=timezone.now)
    request_size = models.PositiveIntegerField(default=0)
    response_size = models.PositiveIntegerField(default=0)
    # The request as received, zlib-compressed, with credentials blanked in place before it is
    # stored (sync.messagelog). Rendered as XML only when someone looks at it.
    request = models.BinaryField(default=b"", editable=False)
    response = models.BinaryField()
    resent = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["received", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "msg_id"], name="syncmessage_once")
        ]

    def __str__(self) -> str:
        return f"message {self.msg_id} of {self.session}"

    @cached_property
    def request_log(self) -> str:
        """The request as XML, credentials redacted (rendered on display)."""
        from sync.messagelog import render_request

        return render_request(bytes(self.request))

    @cached_property
    def response_log(self) -> str:
        """The reply as XML (rendered on display; replies carry no credentials)."""
        from sync.messagelog import render_response

        return render_response(bytes(self.response))


class SyncConflict(models.Model):
    session = models.ForeignKey(SyncSession, on_delete=models.CASCADE, related_name="conflicts")
    datastore = models.CharField(max_length=12, choices=Datastore.choices)
    guid = models.CharField(max_length=64)
    field = models.CharField(max_length=64)
    server_value = models.TextField(blank=True)
    client_value = models.TextField(blank=True)
    resolution = models.CharField(max_length=12, choices=ConflictResolution.choices)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.field} of {self.guid}: {self.resolution}"


class SyncState(models.Model):
    """Per (device, datastore): the anchors and change sequence of the last completed session."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="states")
    datastore = models.CharField(max_length=12, choices=Datastore.choices)
    client_anchor = models.CharField(max_length=64, blank=True)
    server_anchor = models.CharField(max_length=64, blank=True)
    last_seq = models.BigIntegerField(default=0)
    last_mode = models.PositiveIntegerField(null=True, blank=True, choices=SYNC_MODE_CHOICES)
    completed = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "datastore"], name="syncstate_once")
        ]

    def __str__(self) -> str:
        return f"{self.device} {self.datastore}"


class ItemMap(models.Model):
    """LUID <-> GUID for one (device, datastore), with the shadow of the last agreed copy."""

    state = models.ForeignKey(SyncState, on_delete=models.CASCADE, related_name="items")
    # NULL until the Map arrives: several unmapped server adds must not collide on "".
    luid = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    guid = models.CharField(max_length=64)
    shadow = models.JSONField(default=dict)
    shadow_hash = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["state", "luid"], name="itemmap_luid"),
            models.UniqueConstraint(fields=["state", "guid"], name="itemmap_guid"),
        ]

    def __str__(self) -> str:
        return f"{self.luid} <-> {self.guid}"


class Contact(models.Model):
    """One DB2 address book entry. `fields` is the canonical form (sync/contacts.py).

    `seq` comes from the sequence `sync_change_seq` on every change, so "changed since the
    last session" is `seq > SyncState.last_seq`. Deletions are kept as tombstones so they
    reach every device.
    """

    subscriber = models.ForeignKey(
        "cardmgmt.Subscriber", on_delete=models.CASCADE, related_name="contacts"
    )
    guid = models.CharField(max_length=64, unique=True, default=new_guid)
    fields = models.JSONField(default=dict)
    display_name = models.CharField(max_length=200, blank=True)
    name_norm = models.CharField(max_length=200, blank=True)
    phones_norm = StringListField(models.CharField(max_length=40), default=list, blank=True)
    emails_norm = StringListField(models.CharField(max_length=254), default=list, blank=True)
    deleted = models.BooleanField(default=False)
    seq = models.BigIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["display_name", "id"]
        indexes = [
            models.Index(fields=["subscriber", "seq"], name="contact_sub_seq"),
            # Slow-sync pairing looks up candidates by normalised name (twins share it).
            models.Index(fields=["subscriber", "name_norm"], name="contact_sub_name"),
        ]
        permissions = [("view_contact_contents", "See the contents of DB2 address books")]

    def __str__(self) -> str:
        return self.display_name or self.guid


class InventoryItem(models.Model):
    """One entry of a device inventory (docs/sync.md, "Device inventory datastore")."""

    subscriber = models.ForeignKey(
        "cardmgmt.Subscriber", on_delete=models.CASCADE, related_name="inventory_items"
    )
    guid = models.CharField(max_length=64, unique=True, default=new_guid)
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=100, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    fields = models.JSONField(default=dict)
    deleted = models.BooleanField(default=False)
    seq = models.BigIntegerField(default=0)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "name"]
        indexes = [models.Index(fields=["subscriber", "seq"], name="inventory_sub_seq")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class HeldDelete(models.Model):
    """Deletions held by the mass-delete guard until an operator decides."""

    session = models.ForeignKey(SyncSession, on_delete=models.CASCADE, related_name="held")
    subscriber = models.ForeignKey(
        "cardmgmt.Subscriber", on_delete=models.CASCADE, related_name="held_deletes"
    )
    datastore = models.CharField(max_length=12, choices=Datastore.choices)
    guids = StringListField(models.CharField(max_length=64))
    store_size = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=HeldDeleteStatus.choices, default=HeldDeleteStatus.PENDING
    )
    created = models.DateTimeField(default=timezone.now)
    decided = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{len(self.guids)} held deletions of {self.subscriber_id}"

    def get_absolute_url(self) -> str:
        return reverse("sync:helddelete_detail", args=[self.pk])


class AuthFailure(models.Model):
    """A failed SyncML authentication: the log behind the throttle."""

    time = models.DateTimeField(default=timezone.now, db_index=True)
    username = models.CharField(max_length=128, blank=True, db_index=True)
    dev_id = models.CharField(max_length=128, blank=True, db_index=True)
    address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["-time"]

    def __str__(self) -> str:
        return f"{self.username or '?'} from {self.address}: {self.reason}"


class DeviceNonce(models.Model):
    """The NextNonce last sent to a device (by its SyncHdr Source LocURI) for syncml:auth-md5."""

    dev_id = models.CharField(max_length=128, unique=True)
    nonce = models.CharField(max_length=64)
    updated = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.dev_id
