"""Who is acting and under which request: carried through services into the audit log."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def request_id_scope(request_id: str | None = None) -> Iterator[str]:
    """Tag everything done inside (log lines, audit entries) with one request id."""
    value = request_id or uuid.uuid4().hex
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


@dataclass(frozen=True)
class Actor:
    """Who made a change: a user (through the UI), an API token, a task or a command."""

    kind: str  # "user", "token", "task", "command", "system"
    label: str
    user_id: int | None = None
    token_id: int | None = None

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(kind="user", label=user.get_username(), user_id=user.pk)

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        """The actor behind a UI or API request; an API token wins over the session."""
        from portal.models import ApiToken

        auth = getattr(request, "auth", None)
        if isinstance(auth, ApiToken):
            return cls(
                kind="token",
                label=f"{request.user.get_username()} (token {auth.name})",
                user_id=request.user.pk,
                token_id=auth.pk,
            )
        return cls.for_user(request.user)

    @classmethod
    def task(cls, name: str) -> Actor:
        return cls(kind="task", label=name)

    @classmethod
    def command(cls, name: str) -> Actor:
        return cls(kind="command", label=name)


SYSTEM = Actor(kind="system", label="system")
