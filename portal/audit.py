"""Writing the audit log. Services call `record_change`; nothing else writes AuditEntry."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from portal.context import Actor, current_request_id
from portal.models import AuditAction, AuditEntry

REDACTED = "***"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return REDACTED
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)  # files, custom types: their text form


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The audit view of a row: its concrete fields, binary and declared secret fields redacted.

    Models list their secret fields in `audit_redact`; binary fields (sealed keys) are
    always redacted, so no key material ever reaches an audit entry.
    """
    redact = getattr(instance, "audit_redact", frozenset())
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        value = field.value_from_object(instance)
        if field.name in redact or isinstance(field, models.BinaryField):
            data[field.name] = REDACTED if value not in (None, b"", "") else None
        else:
            data[field.name] = _json_value(value)
    for field in instance._meta.many_to_many:
        if instance.pk is not None:
            data[field.name] = sorted(str(o) for o in getattr(instance, field.name).all())
    return data


def record_change(
    *,
    actor: Actor,
    action: str,
    instance: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    message: str = "",
) -> AuditEntry:
    if action == AuditAction.UPDATE and before == after:
        message = message or "no change"
    return AuditEntry.objects.create(
        actor_kind=actor.kind,
        actor_label=actor.label[:200],
        actor_user_id=actor.user_id,
        actor_token_id=actor.token_id,
        action=action,
        object_type=ContentType.objects.get_for_model(instance, for_concrete_model=True),
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        before=before,
        after=after,
        message=message[:500],
        request_id=current_request_id(),
    )
