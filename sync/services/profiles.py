"""Sync profiles and templates, device credentials, held deletions, DB2 edits by staff."""

from __future__ import annotations

import secrets
import string
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.audit import record_change, snapshot
from portal.context import Actor
from portal.crypto import seal, unseal
from portal.models import AuditAction
from sync.choices import ConflictPolicy, HeldDeleteStatus
from sync.models import (
    PROFILE_SETTINGS,
    Contact,
    HeldDelete,
    ItemMap,
    SyncProfile,
    SyncProfileTemplate,
    default_datastores,
)
from sync.sequence import next_change_seqs
from sync.stores import ContactStore, ItemError
from sync.syncml.paramrecord import DatastoreParam, ParamRecord, encode_param_record
from sync.syncml.san import SANMessage, SANSync, encode_san

SECRET_PURPOSE = "sync-device-secret"
SECRET_ALPHABET = string.ascii_letters + string.digits
RECORD_SETTINGS = set(PROFILE_SETTINGS)  # a change of these is a new parameter record version


def _check_datastores(datastores: Any) -> list[dict]:
    if not isinstance(datastores, list) or not datastores:
        raise ValidationError({"datastores": "a non-empty list of datastores"})
    out = []
    for i, ds in enumerate(datastores, 1):
        if not isinstance(ds, dict):
            raise ValidationError({"datastores": f"datastore {i} must be an object"})
        missing = {"local_name", "remote_uri", "content_type", "mode"} - set(ds)
        if missing:
            raise ValidationError(
                {"datastores": f"datastore {i} lacks {', '.join(sorted(missing))}"}
            )
        mode = ds["mode"]
        if not isinstance(mode, int) or isinstance(mode, bool) or not 200 <= mode <= 210:
            raise ValidationError({"datastores": f"datastore {i}: mode must be 200..210"})
        for key in ("local_name", "remote_uri", "content_type"):
            if not isinstance(ds[key], str) or not ds[key].strip() or len(ds[key]) > 100:
                raise ValidationError({"datastores": f"datastore {i}: {key} of 1-100 characters"})
        out.append({k: ds[k] for k in ("local_name", "remote_uri", "content_type", "mode")})
    return out


def _clean_settings(values: dict) -> dict:
    unknown = set(values) - set(PROFILE_SETTINGS)
    if unknown:
        raise ValidationError(f"unknown profile settings: {', '.join(sorted(unknown))}")
    if "datastores" in values:
        values["datastores"] = _check_datastores(values["datastores"])
    if "conflict_policy" in values and values["conflict_policy"] not in ConflictPolicy.values:
        raise ValidationError({"conflict_policy": "unknown conflict policy"})
    if "interval_minutes" in values:
        n = values["interval_minutes"]
        if not isinstance(n, int) or n < 0 or n > 0xFFFFFFFF:
            raise ValidationError({"interval_minutes": "0..4294967295 minutes"})
    return values


@transaction.atomic
def create_template(*, actor: Actor, name: str, segment=None, **values: Any) -> SyncProfileTemplate:  # type: ignore[no-untyped-def]
    values = _clean_settings(values)
    if SyncProfileTemplate.objects.filter(name=name).exists():
        raise ValidationError({"name": "a template with this name exists"})
    if segment is not None and SyncProfileTemplate.objects.filter(segment=segment).exists():
        raise ValidationError({"segment": "this segment already has a template"})
    template = SyncProfileTemplate.objects.create(name=name, segment=segment, **values)
    record_change(
        actor=actor, action=AuditAction.CREATE, instance=template, after=snapshot(template)
    )
    return template


@transaction.atomic
def update_template(
    *, actor: Actor, template: SyncProfileTemplate, **values: Any
) -> SyncProfileTemplate:
    """Change a template; the profiles following it take the new values (new versions)."""
    template = SyncProfileTemplate.objects.select_for_update().get(pk=template.pk)
    before = snapshot(template)
    name = values.pop("name", template.name)
    segment = values.pop("segment", template.segment)
    values = _clean_settings(values)
    template.name, template.segment = name, segment
    for k, v in values.items():
        setattr(template, k, v)
    template.updated = timezone.now()
    template.save()
    record_change(actor=actor, action=AuditAction.UPDATE, instance=template, before=before,
                  after=snapshot(template))  # fmt: skip
    for profile in SyncProfile.objects.filter(template=template).select_for_update():
        _apply_template(actor, profile, template)
    return template


def _apply_template(actor: Actor, profile: SyncProfile, template: SyncProfileTemplate) -> None:
    before = snapshot(profile)
    changed = False
    for k in PROFILE_SETTINGS:
        if k in profile.overrides:
            continue
        value = getattr(template, k)
        if getattr(profile, k) != value:
            setattr(profile, k, value)
            changed = True
    if changed:
        profile.version += 1
        profile.updated = timezone.now()
        profile.save()
        record_change(actor=actor, action=AuditAction.UPDATE, instance=profile, before=before,
                      after=snapshot(profile), message="template changed")  # fmt: skip


def template_for(subscriber) -> SyncProfileTemplate | None:  # type: ignore[no-untyped-def]
    segment_ids = list(subscriber.segments.values_list("pk", flat=True))
    found = SyncProfileTemplate.objects.filter(segment_id__in=segment_ids).order_by("name").first()
    return (
        found or SyncProfileTemplate.objects.filter(segment__isnull=True).order_by("name").first()
    )


def _new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(20))


@transaction.atomic
def create_profile(
    *, actor: Actor, subscriber, template=None, overrides: dict | None = None, username: str = ""
) -> tuple[SyncProfile, str]:  # type: ignore[no-untyped-def]
    """The subscriber's profile from its segment's template (or `template`) plus overrides.

    Returns the profile and the device secret in clear: shown once, stored sealed.
    """
    if SyncProfile.objects.filter(subscriber=subscriber).exists():
        raise ValidationError("this subscriber already has a sync profile")
    template = template or template_for(subscriber)
    overrides = _clean_settings(dict(overrides or {}))
    values: dict[str, Any] = {}
    for k in PROFILE_SETTINGS:
        if k in overrides:
            values[k] = overrides[k]
        elif template is not None:
            values[k] = getattr(template, k)
    if "server_url" not in values:
        raise ValidationError({"server_url": "no template applies: give a server URL"})
    values.setdefault("datastores", default_datastores())
    username = username or "sub" + subscriber.msisdn.lstrip("+")
    if SyncProfile.objects.filter(username=username).exists():
        raise ValidationError({"username": "this device user name is taken"})
    secret = _new_secret()
    profile = SyncProfile.objects.create(
        subscriber=subscriber,
        template=template,
        overrides=sorted(overrides),
        username=username,
        secret_sealed=seal(secret.encode(), SECRET_PURPOSE),
        **values,
    )
    record_change(actor=actor, action=AuditAction.CREATE, instance=profile, after=snapshot(profile))
    return profile, secret


@transaction.atomic
def update_profile(
    *,
    actor: Actor,
    profile: SyncProfile,
    overrides: dict | None = None,
    clear: list | None = None,
    template=...,  # type: ignore[no-untyped-def]
) -> SyncProfile:
    """Set per-subscriber overrides, or `clear` them back to the template's values."""
    profile = SyncProfile.objects.select_for_update().get(pk=profile.pk)
    before = snapshot(profile)
    overrides = _clean_settings(dict(overrides or {}))
    if template is not ...:
        profile.template = template
    keep = set(profile.overrides) - set(clear or []) | set(overrides)
    for k, v in overrides.items():
        setattr(profile, k, v)
    if profile.template is not None:
        for k in PROFILE_SETTINGS:
            if k not in keep:
                setattr(profile, k, getattr(profile.template, k))
    profile.overrides = sorted(keep)
    after = snapshot(profile)
    if any(before[k] != after[k] for k in RECORD_SETTINGS):
        profile.version += 1
    profile.updated = timezone.now()
    profile.save()
    record_change(actor=actor, action=AuditAction.UPDATE, instance=profile, before=before,
                  after=snapshot(profile))  # fmt: skip
    return profile


@transaction.atomic
def reset_credentials(*, actor: Actor, profile: SyncProfile) -> str:
    """A new device secret (a new record version); returned once, stored sealed."""
    profile = SyncProfile.objects.select_for_update().get(pk=profile.pk)
    before = snapshot(profile)
    secret = _new_secret()
    profile.secret_sealed = seal(secret.encode(), SECRET_PURPOSE)
    profile.version += 1
    profile.updated = timezone.now()
    profile.save()
    record_change(actor=actor, action=AuditAction.UPDATE, instance=profile, before=before,
                  after=snapshot(profile), message="device credentials reset")  # fmt: skip
    return secret


@transaction.atomic
def record_card_version(*, actor: Actor, profile: SyncProfile, version: int) -> SyncProfile:
    """The card confirmed holding record `version` (called by OTA delivery on a good PoR)."""
    profile = SyncProfile.objects.select_for_update().get(pk=profile.pk)
    if version < 0 or version > profile.version:
        raise ValidationError({"card_version": f"0..{profile.version}"})
    before = snapshot(profile)
    profile.card_version = version
    profile.save(update_fields=["card_version"])
    record_change(actor=actor, action=AuditAction.UPDATE, instance=profile, before=before,
                  after=snapshot(profile), message="card holds parameter record")  # fmt: skip
    return profile


def build_param_record(profile: SyncProfile, *, auth_type: str = "md5") -> bytes:
    """The BER-TLV record for the applet (sync/syncml/paramrecord.py). Holds the secret:
    build it only where the secured packet is built, never log or display it."""
    secret = unseal(bytes(profile.secret_sealed), SECRET_PURPOSE).decode()
    record = ParamRecord(
        version=profile.version,
        server_url=profile.server_url,
        datastores=[DatastoreParam(**ds) for ds in profile.datastores],
        username=profile.username,
        secret=secret,
        auth_type=auth_type,
        interval_minutes=profile.interval_minutes,
        trigger_ota=profile.trigger_ota,
        trigger_timer=profile.trigger_timer,
        trigger_imei_change=profile.trigger_imei_change,
        trigger_menu=profile.trigger_menu,
        conflict_policy=profile.conflict_policy,
    )
    return encode_param_record(record)


APPLET_OPERATIONS = ("push_params", "trigger_sync")


def applet_operation_parameters(*, card, operation: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The parameters of an OTA job for the sync applet on `card` (cardmgmt's operations).

    ``push_params``: ``{"tar", "record", "version"}`` -- the applet's TAR (hex), the card's
    subscriber's current parameter record (hex; it holds the device secret, so OTA delivery
    plans the APDUs from it and never stores it) and its version, which delivery hands back
    to `record_card_version` when the card confirms the push. ``trigger_sync``: ``{"tar"}``.
    A card without a subscriber or a subscriber without a sync profile is a ValidationError.
    """
    from cardmgmt.ota import syncapplet

    if operation not in APPLET_OPERATIONS:
        raise ValidationError(f"not a sync applet operation: {operation!r}")
    tar = syncapplet.TAR.hex().upper()
    if operation == "trigger_sync":
        return {"tar": tar}
    profile = (
        SyncProfile.objects.filter(subscriber__card=card).first() if card is not None else None
    )
    if profile is None:
        raise ValidationError(f"card {card} has no subscriber with a sync profile")
    return {"tar": tar, "record": build_param_record(profile).hex(), "version": profile.version}


def record_card_version_for_card(*, actor: Actor, card, version: int) -> SyncProfile | None:  # type: ignore[no-untyped-def]
    """OTA delivery's call when a push_params job completed: the card now holds `version`.

    Returns the profile, or None when the card's subscriber has no sync profile (any more).
    A version above the profile's current one is a ValidationError (record_card_version).
    """
    profile = SyncProfile.objects.filter(subscriber__card=card).first()
    if profile is None:
        return None
    return record_card_version(actor=actor, profile=profile, version=int(version))


def build_server_alert(profile: SyncProfile, *, sync_type: int = 206, session_id: int = 0) -> bytes:
    """Package #0 (Server-Alerted Notification) asking the handset to sync its datastores."""
    if not 206 <= sync_type <= 210:
        raise ValidationError("server-alerted sync type must be 206..210")
    secret = unseal(bytes(profile.secret_sealed), SECRET_PURPOSE).decode()
    syncs = [
        SANSync(
            sync_type=sync_type,
            content_type=0x07 if "x-vcard" in ds["content_type"] else 0,
            server_uri=ds["remote_uri"],
        )
        for ds in profile.datastores
    ]
    msg = SANMessage(session_id=session_id & 0xFFFF, server_id=profile.server_url, syncs=syncs)
    return encode_san(msg, password=secret, nonce=b"")


# --- held deletions --------------------------------------------------------------------------


def _next_seqs(n: int) -> list[int]:
    return next_change_seqs(n)


@transaction.atomic
def approve_held_delete(*, actor: Actor, held: HeldDelete) -> HeldDelete:
    """Apply the held deletions: the items become tombstones and leave every device."""
    held = HeldDelete.objects.select_for_update().get(pk=held.pk)
    if held.status != HeldDeleteStatus.PENDING:
        raise ValidationError(f"already {held.get_status_display().lower()}")
    before = snapshot(held)
    rows = list(Contact.objects.filter(subscriber_id=held.subscriber_id, guid__in=held.guids,
                                       deleted=False)) if held.datastore == "contacts" else []  # fmt: skip
    if held.datastore == "inventory":
        from sync.models import InventoryItem

        rows = list(InventoryItem.objects.filter(subscriber_id=held.subscriber_id,
                                                 guid__in=held.guids, deleted=False))  # fmt: skip
    now = timezone.now()
    for row, seq in zip(rows, _next_seqs(len(rows)) if rows else [], strict=True):
        row.deleted, row.seq, row.updated = True, seq, now
    if rows:
        type(rows[0]).objects.bulk_update(rows, ["deleted", "seq", "updated"])
    held.status = HeldDeleteStatus.APPROVED
    held.decided, held.decided_by = now, actor.label[:200]
    held.save()
    record_change(actor=actor, action=AuditAction.UPDATE, instance=held, before=before,
                  after=snapshot(held), message=f"{len(rows)} deletions applied")  # fmt: skip
    return held


@transaction.atomic
def reject_held_delete(*, actor: Actor, held: HeldDelete) -> HeldDelete:
    """Keep the items: they are sent back to the handset that deleted them next session."""
    held = HeldDelete.objects.select_for_update().get(pk=held.pk)
    if held.status != HeldDeleteStatus.PENDING:
        raise ValidationError(f"already {held.get_status_display().lower()}")
    before = snapshot(held)
    from sync.models import InventoryItem

    model = Contact if held.datastore == "contacts" else InventoryItem
    rows = list(model.objects.filter(subscriber_id=held.subscriber_id, guid__in=held.guids))
    now = timezone.now()
    for row, seq in zip(rows, _next_seqs(len(rows)) if rows else [], strict=True):
        row.seq, row.updated = seq, now
    if rows:
        model.objects.bulk_update(rows, ["seq", "updated"])
    held.status = HeldDeleteStatus.REJECTED
    held.decided, held.decided_by = now, actor.label[:200]
    held.save()
    record_change(actor=actor, action=AuditAction.UPDATE, instance=held, before=before,
                  after=snapshot(held), message=f"{len(rows)} items restored")  # fmt: skip
    return held


# --- DB2 edits by staff -------------------------------------------------------------------


@transaction.atomic
def save_contact(
    *, actor: Actor, subscriber, vcard: str, contact: Contact | None = None
) -> Contact:  # type: ignore[no-untyped-def]
    """Create or replace a DB2 contact from a vCard; devices get it in their next session."""
    store = ContactStore()
    try:
        fields = store.parse(vcard, None)
    except ItemError as exc:
        raise ValidationError({"vcard": str(exc)}) from None
    seq = _next_seqs(1)[0]
    if contact is None:
        contact = Contact(subscriber=subscriber, seq=seq, **store.row_values(fields))
        contact.save()
        record_change(actor=actor, action=AuditAction.CREATE, instance=contact,
                      after={"guid": contact.guid})  # fmt: skip
        return contact
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    for k, v in store.row_values(fields).items():
        setattr(contact, k, v)
    contact.seq, contact.version, contact.deleted = seq, contact.version + 1, False
    contact.updated = timezone.now()
    contact.save()
    # Contents are private: the audit entry says what changed, not the values.
    record_change(actor=actor, action=AuditAction.UPDATE, instance=contact,
                  after={"guid": contact.guid, "version": contact.version})  # fmt: skip
    return contact


@transaction.atomic
def delete_contact(*, actor: Actor, contact: Contact) -> None:
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    contact.deleted, contact.seq, contact.updated = True, _next_seqs(1)[0], timezone.now()
    contact.save()
    record_change(actor=actor, action=AuditAction.DELETE, instance=contact,
                  before={"guid": contact.guid})  # fmt: skip


__all__ = ["ItemMap"]
