"""The long-lived SMPP link process: one bind per configured SMSC link.

It claims queued OTA messages from the database (single-card operations first), submits each
SMS within the link's window and rate limit, records the SMSC message ids, and stores every
deliver_sm (PoRs and delivery receipts) for a worker to process. It never sees a card key.
Started by `manage.py run_smpp_link` (a Procfile entry next to the web server and workers).

Inside, a pipeline that never waits for itself: a claimer keeps a small queue of claimed
messages topped up, `window` senders take from it and keep the window full, a recorder writes
the SMSC ids a batch at a time, and the inbound batcher stores deliver_sm. Each kind of database
work has its own thread (and so its own connection): a slow insert of receipts does not hold up
the next claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connection, transaction
from django.utils import timezone

from cardmgmt.models import SmscLink
from cardmgmt.services import delivery
from cardmgmt.smpp import SmppClient, SmppCommandError, SmppError, SmppThrottledError
from cardmgmt.smpp.dlr import InboundMessage
from cardmgmt.smpp.ratelimit import RateLimiter, TokenBucket
from portal import crypto
from sync.syncml import wappush

log = logging.getLogger(__name__)

OTA_ESM_CLASS = 0x40  # UDHI: the UDH (CPI 70 / concatenation) is ours
OTA_PROTOCOL_ID = 0x7F  # (U)SIM data download
OTA_DATA_CODING = 0xF6  # 8-bit, class 2
THROTTLE_RETRIES = 8
MAX_CLAIM_BATCH = 1000


def submit_coding(user_data: bytes) -> tuple[int, int]:
    """(protocol_id, data_coding) for one TP-UD. A UDH that addresses an application port is
    a WAP push for the handset itself (the Server-Alerted Notification): plain 8-bit data,
    no message class; anything else the link sends is a secured packet for the card."""
    if user_data:
        header = user_data[1 : 1 + user_data[0]]
        i = 0
        while i + 2 <= len(header):
            if header[i] == wappush.IEI_PORTS_16:  # application port addressing, 16-bit
                return wappush.SMS_PROTOCOL_ID, wappush.SMS_DATA_CODING
            i += 2 + header[i + 1]
    return OTA_PROTOCOL_ID, OTA_DATA_CODING


RECEIPT_STATES = {2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 8: "REJECTD"}

T = TypeVar("T")


def _close_connection() -> None:
    connection.close()  # this thread's connection (looked up here, in the thread)


class DbThread:
    """One thread, and so one database connection, for one kind of database work."""

    def __init__(self, name: str) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"smpplink-{name}")

    @staticmethod
    def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        try:
            return fn(*args, **kwargs)
        except Exception:
            # A connection that broke is replaced at the next call.
            if connection.connection is not None and not connection.is_usable():
                connection.close()
            raise

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, functools.partial(self._call, fn, args, kwargs)
        )

    async def close(self) -> None:
        try:
            await self.run(_close_connection)
        finally:
            self.executor.shutdown(wait=False)


class InboundBatcher:
    """Stores deliver_sm in batches: one transaction and one task for all that arrive within
    `delay` (or as soon as `limit` are waiting). Every message of a batch shares one future
    that is resolved once the batch is committed, so the SMSC is acknowledged only for what
    is stored."""

    def __init__(
        self,
        link: SmscLink,
        delay: float = 0.02,
        limit: int = 1000,
        db: DbThread | None = None,
    ) -> None:
        self.link = link
        self.delay = delay
        self.limit = limit
        self.db = db or DbThread("inbound")
        self.pending: list[delivery.Inbound] = []
        self.future: asyncio.Future[None] | None = None
        self.flusher: asyncio.Task[None] | None = None
        self._full = asyncio.Event()

    def add(self, message: delivery.Inbound) -> asyncio.Future[None]:
        """Queue a message; the future resolves once it is stored (or fails if it was not)."""
        if self.future is None:
            self.future = asyncio.get_running_loop().create_future()
        self.pending.append(message)
        future = self.future
        if len(self.pending) >= self.limit:
            self._full.set()
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush_loop())
        return future

    async def _flush_loop(self) -> None:
        # One writer at a time: what arrives during a write goes in the next batch.
        try:
            while self.pending:
                if len(self.pending) < self.limit:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), self.delay)
                batch, future = self.pending[: self.limit], self.future
                self.pending = self.pending[self.limit :]
                self.future = asyncio.get_running_loop().create_future() if self.pending else None
                assert future is not None
                try:
                    await self.db.run(delivery.record_inbound, link=self.link, messages=batch)
                except Exception as exc:  # refused below: the SMSC resends the deliver_sm
                    log.warning("storing %d deliver_sm failed: %s", len(batch), exc)
                    future.set_exception(exc)
                    future.exception()  # retrieved: a batch nobody awaits is no error
                else:
                    future.set_result(None)
        finally:
            self.flusher = None


class SubmitOutcome:
    __slots__ = ("attempt", "error", "message_id", "smpp_ids", "unsent")

    def __init__(self, message_id: int, attempt: int, *, unsent: bool = False) -> None:
        self.message_id = message_id
        self.attempt = attempt
        self.smpp_ids: list[str] = []
        self.error = ""
        self.unsent = unsent  # never handed to the SMSC: goes back to the queue


def _record_outcomes(outcomes: list[SubmitOutcome]) -> None:
    with transaction.atomic():
        delivery.record_submitted(
            submissions=[(o.message_id, o.attempt, o.smpp_ids) for o in outcomes if o.smpp_ids]
        )
        unsent = [(o.message_id, o.attempt) for o in outcomes if o.unsent]
        if unsent:
            delivery.release_unsent(claimed=unsent)
        for outcome in outcomes:
            if outcome.error:
                delivery.record_submit_failure(
                    message_id=outcome.message_id, attempt=outcome.attempt, reason=outcome.error
                )


def _set_status(link_id: int, status: str) -> None:
    SmscLink.objects.filter(pk=link_id).update(status=status[:200], status_updated=timezone.now())


_STOP = None


class LinkRunner:
    """Drives one SMSC link until `stop` is set."""

    def __init__(
        self,
        link: SmscLink,
        *,
        rate_limiter: RateLimiter | None = None,
        poll_interval: float = 0.2,
        batch: int | None = None,
        record_delay: float = 0.02,
    ) -> None:
        self.link = link
        self.poll_interval = poll_interval
        # A claim is a statement and a commit whatever its size: at a high TPS claim a tenth of
        # a second's worth at a time (at most 1000), so single-card operations still wait
        # behind at most two claimed batches, a fifth of a second of sending.
        self.batch = batch or max(link.window * 4, 64, min(link.tps // 10, MAX_CLAIM_BATCH))
        self.record_delay = record_delay
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
        self.claim_failures = 0  # in a row; reset by a claim that works
        self.claim_db = DbThread("claim")
        self.record_db = DbThread("record")
        self.inbound = InboundBatcher(link, db=DbThread("inbound"))
        self._queue: asyncio.Queue[delivery.Claimed | None] | None = None
        self._hungry: asyncio.Event | None = None
        self._outcomes: list[SubmitOutcome] = []

    def on_deliver(self, inbound: InboundMessage) -> asyncio.Future[None]:
        if inbound.is_receipt and inbound.state is not None:
            state = RECEIPT_STATES.get(inbound.state, str(inbound.state))
        else:  # only then is the receipt's text read
            state = inbound.receipt.stat if inbound.receipt else ""
        return self.inbound.add(
            delivery.Inbound(
                source_addr=inbound.source_addr,
                payload=inbound.payload,
                is_receipt=inbound.is_receipt,
                receipted_id=inbound.receipted_message_id or "",
                receipt_state=state,
            )
        )

    async def _submit_segment(self, message: delivery.Claimed, user_data: bytes) -> str:
        protocol_id, data_coding = submit_coding(user_data)
        for attempt in range(THROTTLE_RETRIES):
            try:
                return await self.client.submit(
                    message.msisdn,
                    user_data,
                    source_addr=self.link.source_addr,
                    esm_class=OTA_ESM_CLASS,
                    protocol_id=protocol_id,
                    data_coding=data_coding,
                    registered_delivery=1,
                )
            except SmppThrottledError:
                # Refused, so not sent: the same bytes may go again after backing off.
                await asyncio.sleep(min(0.05 * 2**attempt, 5.0))
        raise SmppThrottledError("still throttled after backing off")

    async def _send(self, message: delivery.Claimed) -> SubmitOutcome:
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

    # --- the pipeline ---------------------------------------------------------------------------

    async def _claimer(self, stop: asyncio.Event) -> None:
        """Keeps the queue of claimed messages topped up while the link is bound."""
        queue, hungry = self._queue, self._hungry
        assert queue is not None and hungry is not None
        bound_since = 0.0
        # Claim the next batch while the last is still being sent, so the senders never wait
        # for a claim: at most two batches are claimed and not yet sent.
        low_water = self.batch
        while not stop.is_set():
            if not self.client.is_bound:
                bound_since = 0.0
                try:
                    await asyncio.wait_for(self.client.wait_bound(), timeout=1.0)
                except (TimeoutError, SmppError):
                    continue
            if queue.qsize() > low_water:
                hungry.clear()
                await _wait_either(hungry, stop)
                continue
            try:
                if not bound_since:
                    await self.claim_db.run(
                        _set_status, self.link.pk, f"bound to {self.link.host}:{self.link.port}"
                    )
                    bound_since = time.monotonic()
                messages = await self.claim_db.run(
                    delivery.claim_sendable_messages, link=self.link, limit=self.batch
                )
            except Exception:
                # A database that restarts or fails over must not end the process (and with
                # it every other process honcho or systemd runs beside it): claim again later.
                self.claim_failures += 1
                delay = min(0.5 * 2 ** min(self.claim_failures - 1, 4), 5.0)
                log.exception("claiming queued messages failed; retrying in %.1f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            self.claim_failures = 0
            for message in messages:
                queue.put_nowait(message)
            if len(messages) < self.batch // 4:
                # Little or nothing queued in the database: poll again shortly.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval)

    async def _sender(self) -> None:
        queue, hungry, outcomes = self._queue, self._hungry, self._outcomes
        assert queue is not None and hungry is not None
        low_water = self.batch
        while True:
            message = await queue.get()
            if message is _STOP:
                return
            if queue.qsize() <= low_water:
                hungry.set()
            if self.client.is_bound:
                outcome = await self._send(message)
            else:
                # Claimed while the link was up, but not one octet of it went out: back to
                # the queue (its counter was never sent), claimed again once bound.
                outcome = SubmitOutcome(message.pk, message.attempt, unsent=True)
            outcomes.append(outcome)
            self.submitted += len(outcome.smpp_ids)

    async def _recorder(self, senders_done: asyncio.Event) -> None:
        """Writes the SMSC ids (and refusals) a batch at a time."""
        while True:
            if not self._outcomes:
                if senders_done.is_set():
                    return
                await asyncio.sleep(self.record_delay)
                continue
            batch, self._outcomes[:] = list(self._outcomes), []
            for attempt in range(5):
                try:
                    await self.record_db.run(_record_outcomes, batch)
                    break
                except Exception:
                    log.exception("recording %d submit outcomes failed", len(batch))
                    await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
            await asyncio.sleep(self.record_delay)

    async def run(self, stop: asyncio.Event) -> None:
        supervisor = asyncio.create_task(self.client.run_forever())
        self._queue = asyncio.Queue()
        self._hungry = asyncio.Event()
        self._outcomes = []
        senders_done = asyncio.Event()
        await self.claim_db.run(_set_status, self.link.pk, "connecting")
        senders = [asyncio.create_task(self._sender()) for _ in range(self.client.window)]
        recorder = asyncio.create_task(self._recorder(senders_done))
        try:
            await self._claimer(stop)
        finally:
            # What was claimed is sent (it is marked submitted), then recorded.
            for _ in senders:
                self._queue.put_nowait(_STOP)
            await asyncio.gather(*senders, return_exceptions=True)
            senders_done.set()
            await recorder
            await self.client.close()
            supervisor.cancel()
            flusher = self.inbound.flusher
            if flusher is not None:
                await asyncio.gather(flusher, return_exceptions=True)
            await self.claim_db.run(_set_status, self.link.pk, "stopped")
            log.info(
                "link %s stopped: %d segments submitted, %d token bucket round trips",
                self.link.name,
                self.submitted,
                getattr(self.rate_limiter, "round_trips", 0),
            )
            for db in (self.claim_db, self.record_db, self.inbound.db):
                await db.close()


async def _wait_either(event: asyncio.Event, stop: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
