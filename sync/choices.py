"""Enumerations of the sync app."""

from __future__ import annotations

from django.db import models


class ConflictPolicy(models.TextChoices):
    MERGE = "merge", "Three-way merge (newer wins per field)"
    SERVER_WINS = "server_wins", "Server wins"
    CLIENT_WINS = "client_wins", "Client wins"
    DUPLICATE = "duplicate", "Keep both (duplicate)"


class Datastore(models.TextChoices):
    CONTACTS = "contacts", "Contacts"
    INVENTORY = "inventory", "Device inventory"


class SessionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    ABANDONED = "abandoned", "Abandoned (client went away)"


class DeviceEventKind(models.TextChoices):
    FIRST_SEEN = "first_seen", "First seen"
    DEVINF_CHANGED = "devinf_changed", "Device information changed"
    HANDSET_CHANGE = "handset_change", "Handset change (new IMEI)"


class HeldDeleteStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved (deleted)"
    REJECTED = "rejected", "Rejected (restored to the handset)"


class ConflictResolution(models.TextChoices):
    CLIENT_WON = "client_won", "Client won"
    SERVER_WON = "server_won", "Server won"
    MERGED = "merged", "Merged"
    DUPLICATED = "duplicated", "Duplicated"


# SyncML alert codes (OMA DS Protocol 1.2, 8.2): name of each sync mode.
SYNC_MODES = {
    200: "two-way",
    201: "slow",
    202: "one-way from client",
    203: "refresh from client",
    204: "one-way from server",
    205: "refresh from server",
    206: "two-way by server",
    207: "one-way from client by server",
    208: "refresh from client by server",
    209: "one-way from server by server",
    210: "refresh from server by server",
}
SYNC_MODE_CHOICES = [(code, f"{code} {name}") for code, name in SYNC_MODES.items()]
