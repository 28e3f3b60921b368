"""The Server-Alerted Notification by SMS: for handsets without the sync applet, the portal
asks the handset's own SyncML client to start a session (OMA DS 1.2 package #0, WAP push)."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import transaction

from cardmgmt.choices import OtaOperation
from cardmgmt.models import OtaJob, SmscLink
from cardmgmt.services.delivery import start_wap_push_job
from portal.context import Actor
from sync.models import SyncProfile
from sync.services.profiles import build_server_alert
from sync.syncml.wappush import san_sms_user_data

SAN_SYNC_TYPES = {
    206: "two-way",
    207: "one-way from client",
    208: "refresh from client",
    209: "one-way from server",
    210: "refresh from server",
}


@transaction.atomic
def send_server_alert(*, actor: Actor, profile: SyncProfile | None, sync_type: int = 206) -> OtaJob:
    """Send the subscriber's handset a Server-Alerted Notification for every datastore of its
    profile, by SMS through the SMPP link (WAP push to port 2948, 8-bit; not a SIM data
    download). Returns the job that records it: done once the SMS is delivered.

    The notification's digest is made with the device secret, which the handset holds from
    its parameter record, so only that handset can act on it. Clear errors (ValidationError),
    nothing sent: no profile, an unknown sync type, no MSISDN or card, no enabled SMSC link.
    """
    if profile is None:
        raise ValidationError("this subscriber has no sync profile: there is nothing to alert")
    if sync_type not in SAN_SYNC_TYPES:
        raise ValidationError({"sync_type": "a server-alerted sync type is 206..210"})
    subscriber = profile.subscriber
    if not subscriber.msisdn:
        raise ValidationError("the subscriber has no MSISDN to send the notification to")
    card = subscriber.card
    if card is None:
        raise ValidationError(f"subscriber {subscriber.msisdn} has no SIM card in the inventory")
    if not SmscLink.objects.filter(enabled=True).exists():
        raise ValidationError("no SMSC link is enabled: the notification cannot be sent")
    # The session id identifies the alerted session to the handset; any 16-bit value does.
    session_id = secrets.randbelow(0x10000)
    san = build_server_alert(profile, sync_type=sync_type, session_id=session_id)
    return start_wap_push_job(
        actor=actor,
        card=card,
        operation=OtaOperation.TRIGGER_SYNC,
        user_data=san_sms_user_data(san, reference=session_id & 0xFF),
        payload=san,
        description=f"Server-alerted sync ({SAN_SYNC_TYPES[sync_type]})",
        parameters={"channel": "san", "sync_type": sync_type, "session_id": session_id},
        priority=0,
    )
