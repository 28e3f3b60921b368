"""Celery tasks of the sync app: thin, they call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from portal.context import request_id_scope
from sync.services.engine import expire_sessions

log = logging.getLogger("sync.server")


@shared_task(bind=True, name="sync.expire_sessions", acks_late=True)
def expire_sessions_task(self) -> int:  # type: ignore[no-untyped-def]
    """Periodic (CELERY_BEAT_SCHEDULE): sessions idle for 30 minutes become abandoned, so a
    handset that vanished mid-session leaves no active session (its anchors never moved)."""
    with request_id_scope(self.request.id):
        count = expire_sessions()
    if count:
        log.info("expired %d idle SyncML sessions", count)
    return count
