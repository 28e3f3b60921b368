"""The long-lived SMPP link process: one bind per configured SMSC link.

It claims queued OTA messages from the database (single-card operations first), submits each
SMS within the link's window and rate limit, records the SMSC message ids, and stores every
deliver_sm (PoRs and delivery receipts) for a worker to process. It never sees a card key.
Started by `manage.py run_smpp_link` (a Procfile entry next to the web server and workers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import close_old_connections, transaction
from django.utils import timezone

from cardmgmt.models import OtaMessage, SmscLink
from cardmgmt.services import delivery
from cardmgmt.smpp import SmppClient, SmppCommandError, SmppError, SmppThrottledError
from cardmgmt.smpp.dlr import InboundMessage
from cardmgmt.smpp.ratelimit import RateLimiter, TokenBucket
from portal import crypto

log = logging.getLogger(__name__)

OTA_ESM_CLASS = 0x40  # UDHI: the UDH (CPI 70 / concatenation) is ours
OTA_PROTOCOL_ID = 0x7F  # (U)SIM data download
OTA_DATA_CODING = 0xF6  # 8-bit, class 2
THROTTLE_RETRIES = 8


RECEIPT_STATES = {2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 8: "REJECTD"}


class InboundBatcher:
    """Stores deliver_sm in batches: one transaction and one task for all that arrive within
    `delay`. Each caller waits until its message is committed, so the SMSC is acknowledged
    only for what is stored."""

    def __init__(self, link: SmscLink, delay: float = 0.02, limit: int = 1000) -> None:
        self.link = link
        self.delay = delay
        self.limit = limit
        self.pending: list[tuple[delivery.Inbound, asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None

    async def add(self, message: delivery.Inbound) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((message, future))
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        await asyncio.sleep(self.delay)
        batch, self.pending, self.flusher = (
            self.pending[: self.limit],
            self.pending[self.limit :],
            None,
        )
        if self.pending:
            self.flusher = asyncio.create_task(self._flush())
        try:
            await sync_to_async(delivery.record_inbound)(
                link=self.link, messages=[m for m, _ in batch]
            )
        except Exception as exc:  # the deliver_sm will be refused and resent by the SMSC
            for _, future in batch:
                future.set_exception(exc)
        else:
            for _, future in batch:
                future.set_result(None)


@dataclass
class SubmitOutcome:
    message_id: int
    attempt: int
    smpp_ids: list[str] = field(default_factory=list)
    error: str = ""


def _record_outcomes(outcomes: list[SubmitOutcome]) -> None:
    with transaction.atomic():
        delivery.record_submitted(
            submissions=[(o.message_id, o.attempt, o.smpp_ids) for o in outcomes if o.smpp_ids]
        )
        for outcome in outcomes:
            if outcome.error:
                delivery.record_submit_failure(
                    message_id=outcome.message_id, attempt=outcome.attempt, reason=outcome.error
                )


def _set_status(link_id: int, status: str) -> None:
    SmscLink.objects.filter(pk=link_id).update(status=status[:200], status_updated=timezone.now())


class LinkRunner:
    """Drives one SMSC link until `stop` is set."""

    def __init__(
        self,
        link: SmscLink,
        *,
        rate_limiter: RateLimiter | None = None,
        poll_interval: float = 0.2,
        batch: int | None = None,
    ) -> None:
        self.link = link
        self.poll_interval = poll_interval
        self.batch = batch or max(link.window * 4, 64)
        self.rate_limiter = rate_limiter or TokenBucket(link.tps, burst=max(1, link.tps // 10))
        self.client = SmppClient(
            link.host,
            link.port,
            link.system_id,
            crypto.unseal(bytes(link.password), "smsc-password").decode(),
            system_type=link.system_type,
            window=link.window,
            on_deliver=self.on_deliver,
            rate_limiter=self.rate_limiter,
            response_timeout=10.0,
            enquire_link_interval=30.0,
        )
        self.submitted = 0
        self.inbound = InboundBatcher(link)

    async def on_deliver(self, inbound: InboundMessage) -> None:
        state = inbound.receipt.stat if inbound.receipt else ""
        if inbound.is_receipt and inbound.state is not None:
            state = RECEIPT_STATES.get(inbound.state, str(inbound.state))
        await self.inbound.add(
            delivery.Inbound(
                source_addr=inbound.source_addr,
                payload=inbound.payload,
                is_receipt=inbound.is_receipt,
                receipted_id=inbound.receipted_message_id or "",
                receipt_state=state,
            )
        )

    async def _submit_segment(self, message: OtaMessage, user_data: bytes) -> str:
        for attempt in range(THROTTLE_RETRIES):
            try:
                return await self.client.submit(
                    message.msisdn,
                    user_data,
                    source_addr=self.link.source_addr,
                    esm_class=OTA_ESM_CLASS,
                    protocol_id=OTA_PROTOCOL_ID,
                    data_coding=OTA_DATA_CODING,
                    registered_delivery=1,
                )
            except SmppThrottledError:
                # Refused, so not sent: the same bytes may go again after backing off.
                await asyncio.sleep(min(0.05 * 2**attempt, 5.0))
        raise SmppThrottledError("still throttled after backing off")

    async def _send(self, message: OtaMessage) -> SubmitOutcome:
        outcome = SubmitOutcome(message.pk, message.attempt)
        try:
            for user_data in message.user_data:
                outcome.smpp_ids.append(
                    await self._submit_segment(message, bytes.fromhex(user_data))
                )
        except (SmppCommandError, SmppThrottledError) as exc:
            # The SMSC answered and refused: nothing went out, so a retry is safe now.
            outcome.error = f"{type(exc).__name__}: {exc}"
        except SmppError as exc:
            # Link lost or no answer: the SMSC may have taken the SMS and the card may run it.
            # Only its PoR or the PoR timeout can tell; retrying now could run a step twice.
            log.warning(
                "message %s: outcome unknown after %s; waiting for its PoR", message.pk, exc
            )
        return outcome

    async def run(self, stop: asyncio.Event) -> None:
        supervisor = asyncio.create_task(self.client.run_forever())
        await sync_to_async(_set_status)(self.link.pk, "connecting")
        bound_since = 0.0
        try:
            while not stop.is_set():
                if not self.client.is_bound:
                    bound_since = 0.0
                    try:
                        await asyncio.wait_for(self.client.wait_bound(), timeout=1.0)
                    except TimeoutError:
                        continue
                if not bound_since:
                    bound_since = time.monotonic()
                    await sync_to_async(_set_status)(
                        self.link.pk, f"bound to {self.link.host}:{self.link.port}"
                    )
                messages = await sync_to_async(delivery.claim_sendable_messages)(
                    link=self.link, limit=self.batch
                )
                if not messages:
                    await asyncio.sleep(self.poll_interval)
                    continue
                outcomes = await asyncio.gather(*(self._send(m) for m in messages))
                await sync_to_async(_record_outcomes)(list(outcomes))
                self.submitted += sum(len(o.smpp_ids) for o in outcomes)
        finally:
            await self.client.close()
            supervisor.cancel()
            await sync_to_async(_set_status)(self.link.pk, "stopped")
            await sync_to_async(close_old_connections)()
