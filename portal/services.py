"""State changes for people and API tokens. Audited with their actor."""

from __future__ import annotations

import datetime
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.audit import record_change, snapshot
from portal.context import Actor
from portal.models import ApiToken, AuditAction, hash_token_secret
from portal.roles import ROLE_NAMES

TOKEN_PREFIX_LEN = 8
# Last-used times are written at most this often, not on every request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


@transaction.atomic
def create_user_with_role(
    *, actor: Actor, username: str, role: str, password: str, email: str = ""
) -> AbstractBaseUser:
    if role not in ROLE_NAMES:
        raise ValidationError({"role": f"unknown role {role!r}; one of {', '.join(ROLE_NAMES)}"})
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise ValidationError({"username": f"user {username!r} exists already"})
    user = user_model(username=username, email=email, is_staff=role == "administrator")
    user.is_superuser = role == "administrator"
    user.set_password(password)
    user.full_clean()
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    after = snapshot(user)
    after["password"] = "***"
    record_change(
        actor=actor, action=AuditAction.CREATE, instance=user, after=after, message=f"role {role}"
    )
    return user


@transaction.atomic
def create_api_token(
    *,
    actor: Actor,
    user: AbstractBaseUser,
    name: str,
    write_enabled: bool = False,
    expires: datetime.datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its key. The key is returned once and never stored in clear."""
    if not name.strip():
        raise ValidationError({"name": "a token needs a name"})
    if expires is not None and expires <= timezone.now():
        raise ValidationError({"expires": "expiry must be in the future"})
    prefix = secrets.token_hex(TOKEN_PREFIX_LEN // 2)
    key = f"pt_{prefix}{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name.strip(),
        prefix=prefix,
        key_hash=hash_token_secret(key),
        write_enabled=write_enabled,
        expires=expires,
    )
    record_change(actor=actor, action=AuditAction.CREATE, instance=token, after=snapshot(token))
    return token, key


@transaction.atomic
def revoke_api_token(*, actor: Actor, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked is not None:
        return token
    before = snapshot(token)
    token.revoked = timezone.now()
    token.save(update_fields=["revoked"])
    record_change(
        actor=actor,
        action=AuditAction.UPDATE,
        instance=token,
        before=before,
        after=snapshot(token),
        message="revoked",
    )
    return token


def find_active_token(key: str) -> ApiToken | None:
    """The active token for a presented key, or None. Touches last_used now and then."""
    if not key.startswith("pt_") or len(key) < 3 + TOKEN_PREFIX_LEN + 16:
        return None
    prefix = key[3 : 3 + TOKEN_PREFIX_LEN]
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not secrets.compare_digest(token.key_hash, hash_token_secret(key)):
        return None
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used is None or now - token.last_used > LAST_USED_RESOLUTION:
        # Bookkeeping, not a change of state worth an audit entry.
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now
    return token
