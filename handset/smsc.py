"""The SMSC simulator: an asyncio SMPP 3.4 server for demos, tests and lab use.

ESMEs bind with an account (system_id/password). Every accepted submit_sm gets a unique
message_id and is handed to a *mobile router*, which stands for the radio network, the handset
and the card: given the message it returns the mobile-originated messages that come back (for OTA,
the card's PoR). Those are delivered as deliver_sm to a receiver or transceiver bound with the same
account, queued while none is bound. When registered_delivery asks for it, a delivery receipt
follows the routing (esm_class 0x04, text plus receipted_message_id and message_state TLVs).

Faults are switched at run time through `SmscSimulator.faults` (throttling, dropped, delayed and
failed messages, slow responses) and `restart()`; `stats` counts what happened and `submitted`
keeps the last received submits for tests.

Pure asyncio on top of `cardmgmt.smpp`; no Django.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
import random
import secrets
import signal
import time
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from cardmgmt.smpp.dlr import STATE_TO_STAT, DeliveryReceipt
from cardmgmt.smpp.errors import SmppCommandError, SmppError
from cardmgmt.smpp.pdu import (
    ESM_CLASS_DELIVERY_RECEIPT,
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_RMSGQFUL,
    ESME_RTHROTTLED,
    ESME_RX_T_APPN,
    MAX_SHORT_MESSAGE,
    CommandId,
    DeliverSm,
    GenericNack,
    MessageState,
    Pdu,
    SubmitSm,
    Tag,
    receipt_tlvs,
)
from cardmgmt.smpp.session import SmppSession

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_ID = "HANDSET-SMSC"
_TEMPORARY_STATUSES = frozenset({ESME_RX_T_APPN, ESME_RTHROTTLED, ESME_RMSGQFUL})
_MAX_DELIVERY_ATTEMPTS = 20


# --- The router interface ----------------------------------------------------------------------


class MoMessage(NamedTuple):
    """A mobile-originated message the network hands back to the SMSC (e.g. a PoR)."""

    from_msisdn: str
    to_addr: str
    esm_class: int = 0
    pid: int = 0
    dcs: int = 0
    payload: bytes = b""


class Undeliverable(Exception):
    """Raised by a router when the message cannot reach the handset (unknown MSISDN, ...).

    The submit was already accepted; a delivery receipt with stat UNDELIV and `err` follows if
    the ESME asked for one.
    """

    def __init__(self, reason: str = "", err: int = 1) -> None:
        super().__init__(reason or "undeliverable")
        self.err = err


RouteResult = (
    Iterable[MoMessage | tuple] | Awaitable[Iterable[MoMessage | tuple]] | AsyncIterable[MoMessage]
)


class MobileRouter(Protocol):
    """What stands behind the SMSC: radio, handsets, cards.

    `route` is called once per accepted (and not dropped) submit_sm. It returns the MO messages
    produced in reply, as an iterable of `MoMessage` (plain 6-tuples work too), an awaitable of
    one, or an async iterable; raising `Undeliverable` makes the delivery receipt a failure.
    A plain callable with the same signature works as a router too.
    """

    def route(
        self,
        source_addr: str,
        dest_addr: str,
        esm_class: int,
        protocol_id: int,
        data_coding: int,
        short_message: bytes,
    ) -> RouteResult: ...


class SinkRouter:
    """Every message reaches a handset that never answers."""

    def route(
        self,
        source_addr: str,
        dest_addr: str,
        esm_class: int,
        protocol_id: int,
        data_coding: int,
        short_message: bytes,
    ) -> RouteResult:
        return ()


class EchoRouter:
    """Every handset sends the same user data straight back to the sender."""

    def route(
        self,
        source_addr: str,
        dest_addr: str,
        esm_class: int,
        protocol_id: int,
        data_coding: int,
        short_message: bytes,
    ) -> RouteResult:
        return (
            MoMessage(dest_addr, source_addr, esm_class, protocol_id, data_coding, short_message),
        )


def build_router(fleet: str | None = None, kind: str = "echo") -> MobileRouter:
    """Router factory hook for the standalone SMSC.

    With `--fleet FILE`, the virtual UICC fleet provides the router: `handset.fleet` is expected
    to offer `router_from_file(path) -> MobileRouter` (to be written with the virtual UICCs).
    Without a fleet, an echo or sink router.
    """
    if fleet:
        try:
            fleet_module = importlib.import_module("handset.fleet")
        except ModuleNotFoundError as exc:
            raise SystemExit(
                f"--fleet {fleet}: the virtual UICC fleet (handset.fleet) is not available yet"
            ) from exc
        return fleet_module.router_from_file(fleet)
    if kind == "sink":
        return SinkRouter()
    return EchoRouter()


# --- Faults, stats, log ------------------------------------------------------------------------


@dataclass
class SmscFaults:
    """Fault switches, read on every message: change them at any time.

    Shares are probabilities 0..1 drawn from the simulator's seeded random generator.
    """

    throttle_tps: float | None = None  # submit_sm beyond this many per second: ESME_RTHROTTLED
    throttle_share: float = 0.0  # this share of submit_sm answered ESME_RTHROTTLED
    queue_full_share: float = 0.0  # this share answered ESME_RMSGQFUL
    drop_share: float = 0.0  # accepted (submit_sm_resp OK) but never routed, no receipt
    delay_share: float = 0.0  # routed only after `delay_seconds`
    delay_seconds: float = 1.0
    fail_dlr_share: float = 0.0  # routed, but the receipt says UNDELIVERABLE
    response_delay: float = 0.0  # every submit_sm_resp is sent this late (window/timeout tests)
    answer_enquire_link: bool = True  # False: a silent SMSC, for keep-alive tests

    def clear(self) -> None:
        for name, value in SmscFaults().__dict__.items():
            setattr(self, name, value)


@dataclass
class SmscStats:
    binds: int = 0
    bind_failures: int = 0
    submits: int = 0  # submit_sm received
    accepted: int = 0  # answered OK with a message_id
    throttled: int = 0  # answered ESME_RTHROTTLED or ESME_RMSGQFUL
    dropped: int = 0
    delayed: int = 0
    delivered: int = 0  # handed to the router without error
    undeliverable: int = 0
    mos: int = 0  # MO deliver_sm acknowledged by an ESME
    dlrs: int = 0  # receipt deliver_sm acknowledged by an ESME
    failed_dlrs: int = 0  # receipts that said UNDELIVERABLE
    rejected_deliveries: int = 0  # deliver_sm refused permanently by the ESME, or given up
    generic_nacks: int = 0
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One accepted submit_sm, as tests want to look at it."""

    message_id: str
    system_id: str
    source_addr: str
    destination_addr: str
    esm_class: int
    protocol_id: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    validity_period: str
    received_at: float


@dataclass(slots=True)
class _Outbound:
    pdu: DeliverSm
    is_receipt: bool
    attempts: int = 0


@dataclass
class _Account:
    system_id: str
    password: str
    queue: deque[_Outbound] = field(default_factory=deque)
    receivers: list[_SmscSession] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    turn: int = 0

    def next_receiver(self) -> _SmscSession:
        self.turn = (self.turn + 1) % len(self.receivers)
        return self.receivers[self.turn]


# --- The server --------------------------------------------------------------------------------


class _SmscSession(SmppSession):
    def __init__(self, smsc: SmscSimulator) -> None:
        super().__init__(window=smsc.window, response_timeout=smsc.response_timeout)
        self.smsc = smsc
        self.account: _Account | None = None
        self.bind_kind: int = 0  # command_id of the accepted bind
        self._delayed: set[asyncio.TimerHandle] = set()

    @property
    def can_transmit(self) -> bool:
        return self.bind_kind in (CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSCEIVER)

    @property
    def can_receive(self) -> bool:
        return self.bind_kind in (CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.smsc._sessions.add(self)

    def on_connection_lost(self, exc: Exception | None) -> None:
        self.smsc._sessions.discard(self)
        for handle in self._delayed:
            handle.cancel()
        self._unregister()

    def _unregister(self) -> None:
        if self.account is not None and self in self.account.receivers:
            self.account.receivers.remove(self)

    def handle_request(self, pdu: Pdu) -> None:
        command_id = pdu.command_id
        if command_id == CommandId.SUBMIT_SM:
            if not self.can_transmit:
                self.send(pdu.response(ESME_RINVBNDSTS))
                return
            assert isinstance(pdu, SubmitSm)
            self.smsc._on_submit(self, pdu)
        elif command_id == CommandId.ENQUIRE_LINK:
            if self.smsc.faults.answer_enquire_link:
                self.send(pdu.response())
        elif command_id in (
            CommandId.BIND_TRANSMITTER,
            CommandId.BIND_RECEIVER,
            CommandId.BIND_TRANSCEIVER,
        ):
            self._bind(pdu)
        elif command_id == CommandId.UNBIND:
            self._unregister()
            self.bind_kind = 0
            self.send(pdu.response())
            self.close()
        else:
            self.smsc.stats.generic_nacks += 1
            self.send(
                GenericNack(sequence_number=pdu.sequence_number, command_status=ESME_RINVCMDID)
            )

    def _on_decode_error(self, exc: SmppError) -> None:
        self.smsc.stats.generic_nacks += 1
        super()._on_decode_error(exc)  # type: ignore[arg-type]

    def _bind(self, pdu: Pdu) -> None:
        smsc = self.smsc
        if self.bind_kind:
            self.send(pdu.response(ESME_RALYBND))
            return
        system_id = pdu.system_id  # type: ignore[attr-defined]
        account = smsc._accounts.get(system_id)
        if account is None or account.password != pdu.password:  # type: ignore[attr-defined]
            smsc.stats.bind_failures += 1
            status = ESME_RINVSYSID if account is None else ESME_RINVPASWD
            log.info("refused bind from %s as %r: 0x%08X", self.peer, system_id, status)
            self.send(pdu.response(status))
            return
        self.account = account
        self.bind_kind = pdu.command_id
        smsc.stats.binds += 1
        self.send(pdu.response(system_id=smsc.system_id, tlvs={Tag.SC_INTERFACE_VERSION: b"\x34"}))
        log.info("%s bound as %r (%s)", self.peer, system_id, pdu.name)
        if self.can_receive:
            account.receivers.append(self)
            account.wakeup.set()

    def send_later(self, delay: float, pdu: Pdu) -> None:
        def fire() -> None:
            self._delayed.discard(handle)
            self.send(pdu)

        handle = self.loop.call_later(delay, fire)
        self._delayed.add(handle)


class SmscSimulator:
    """An in-process SMSC. `await start()`, then connect ESMEs to `host`:`port`."""

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        router: MobileRouter | Callable[..., RouteResult] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        system_id: str = DEFAULT_SYSTEM_ID,
        window: int = 32,
        response_timeout: float = 10.0,
        retry_delay: float = 0.5,
        seed: int | None = None,
        log_limit: int = 10_000,
    ) -> None:
        self.host = host
        self.port = port
        self.system_id = system_id
        self.window = window
        self.response_timeout = response_timeout
        self.retry_delay = retry_delay
        self.router = router if router is not None else SinkRouter()
        self.faults = SmscFaults()
        self.stats = SmscStats()
        #: the last `log_limit` accepted submits, oldest first
        self.submitted: deque[SubmitRecord] = deque(maxlen=log_limit)
        self._random = random.Random(seed)
        self._accounts: dict[str, _Account] = {}
        self._sessions: set[_SmscSession] = set()
        self._server: asyncio.Server | None = None
        for system_id_, password in (accounts or {}).items():
            self.add_account(system_id_, password)
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivery_loops: dict[str, asyncio.Task[None]] = {}
        self._routing = 0
        self._id_prefix = secrets.token_hex(3)
        self._next_id = 0
        self._tps_second = -1
        self._tps_count = 0

    # --- Lifecycle -----------------------------------------------------------------------------

    def add_account(self, system_id: str, password: str) -> None:
        account = self._accounts.get(system_id)
        if account is None:
            self._accounts[system_id] = _Account(system_id, password)
            if self._server is not None:
                self._start_delivery(system_id)
        else:
            account.password = password

    @property
    def is_serving(self) -> bool:
        return self._server is not None

    @property
    def sessions(self) -> list[_SmscSession]:
        return list(self._sessions)

    async def start(self) -> None:
        await self._listen(self.port)
        for system_id in self._accounts:
            self._start_delivery(system_id)

    async def _listen(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _SmscSession(self), self.host, port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("SMSC simulator listening on %s:%s", self.host, self.port)

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in list(self._sessions):
                session.abort()
            await self._server.wait_closed()
            self._server = None
        # let connection_lost callbacks run
        await asyncio.sleep(0)

    async def restart(self, *, same_port: bool = True, down_for: float = 0.0) -> None:
        """Drop every connection (no unbind, like a crash) and listen again.

        Queued MO messages and receipts survive, as in a real SMSC's store.
        """
        await self._close_listener()
        self.stats.restarts += 1
        if down_for:
            await asyncio.sleep(down_for)
        await self._listen(self.port if same_port else 0)

    async def stop(self) -> None:
        await self._close_listener()
        for task in [*self._delivery_loops.values(), *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._delivery_loops.values(), *self._tasks, return_exceptions=True)
        self._delivery_loops.clear()
        self._tasks.clear()

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def queued(self, system_id: str) -> int:
        """deliver_sm waiting for a receiver of this account, or in flight to one."""
        account = self._accounts[system_id]
        return len(account.queue) + account.in_flight

    async def drain(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is being routed or waits for delivery to a bound receiver."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            busy = self._routing or any(
                a.in_flight or (a.queue and a.receivers) for a in self._accounts.values()
            )
            if not busy:
                return True
            await asyncio.sleep(0.01)
        return False

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- submit_sm -----------------------------------------------------------------------------

    def _throttled(self) -> int:
        faults = self.faults
        if faults.throttle_tps is not None:
            second = int(time.monotonic())
            if second != self._tps_second:
                self._tps_second = second
                self._tps_count = 0
            self._tps_count += 1
            if self._tps_count > faults.throttle_tps:
                return ESME_RTHROTTLED
        if faults.throttle_share and self._random.random() < faults.throttle_share:
            return ESME_RTHROTTLED
        if faults.queue_full_share and self._random.random() < faults.queue_full_share:
            return ESME_RMSGQFUL
        return 0

    def _on_submit(self, session: _SmscSession, pdu: SubmitSm) -> None:
        stats = self.stats
        faults = self.faults
        stats.submits += 1
        status = self._throttled()
        if status:
            stats.throttled += 1
            response = pdu.response(status)
        else:
            self._next_id += 1
            message_id = f"{self._id_prefix}{self._next_id:010x}"
            response = pdu.response(message_id=message_id)
        if faults.response_delay:
            session.send_later(faults.response_delay, response)
        else:
            session.send(response)
        if status:
            return
        stats.accepted += 1
        assert session.account is not None
        record = SubmitRecord(
            message_id=message_id,
            system_id=session.account.system_id,
            source_addr=pdu.source_addr,
            destination_addr=pdu.destination_addr,
            esm_class=pdu.esm_class,
            protocol_id=pdu.protocol_id,
            data_coding=pdu.data_coding,
            registered_delivery=pdu.registered_delivery,
            short_message=pdu.payload,
            validity_period=pdu.validity_period,
            received_at=time.time(),
        )
        self.submitted.append(record)
        if faults.drop_share and self._random.random() < faults.drop_share:
            stats.dropped += 1
            return
        if faults.delay_share and self._random.random() < faults.delay_share:
            stats.delayed += 1
            self._routing += 1
            self._spawn(self._route_later(session.account, record, faults.delay_seconds))
            return
        self._route(session.account, record)

    async def _route_later(self, account: _Account, record: SubmitRecord, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            self._routing -= 1
        self._route(account, record)

    def _route(self, account: _Account, record: SubmitRecord) -> None:
        route = getattr(self.router, "route", self.router)
        try:
            result = route(
                record.source_addr,
                record.destination_addr,
                record.esm_class,
                record.protocol_id,
                record.data_coding,
                record.short_message,
            )
        except Exception as exc:
            self._routed_failure(account, record, exc)
            return
        if inspect.isawaitable(result) or isinstance(result, AsyncIterable):
            self._routing += 1
            self._spawn(self._route_async(account, record, result))
            return
        self._routed(account, record)
        self._queue_mos(account, result)

    async def _route_async(self, account: _Account, record: SubmitRecord, result: object) -> None:
        try:
            if inspect.isawaitable(result):
                try:
                    messages = await result
                except Exception as exc:
                    self._routed_failure(account, record, exc)
                    return
                self._routed(account, record)
                self._queue_mos(account, messages)
            else:
                assert isinstance(result, AsyncIterable)
                self._routed(account, record)
                try:
                    async for message in result:
                        self._queue_mos(account, (message,))
                except Exception:
                    log.exception(
                        "router failed while producing MO messages for %s", record.destination_addr
                    )
        finally:
            self._routing -= 1

    def _routed(self, account: _Account, record: SubmitRecord) -> None:
        self.stats.delivered += 1
        if record.registered_delivery & 0x03 == 1:
            if self.faults.fail_dlr_share and self._random.random() < self.faults.fail_dlr_share:
                self._queue_receipt(account, record, MessageState.UNDELIVERABLE, err=1)
            else:
                self._queue_receipt(account, record, MessageState.DELIVERED, err=0)

    def _routed_failure(self, account: _Account, record: SubmitRecord, exc: Exception) -> None:
        self.stats.undeliverable += 1
        if isinstance(exc, Undeliverable):
            err = exc.err
            log.info(
                "message %s to %s undeliverable: %s",
                record.message_id,
                record.destination_addr,
                exc,
            )
        else:
            err = 999
            log.error(
                "router failed on message %s to %s",
                record.message_id,
                record.destination_addr,
                exc_info=exc,
            )
        if record.registered_delivery & 0x03 in (1, 2):
            self._queue_receipt(account, record, MessageState.UNDELIVERABLE, err=err)

    # --- deliver_sm ----------------------------------------------------------------------------

    def _queue_receipt(
        self, account: _Account, record: SubmitRecord, state: MessageState, err: int
    ) -> None:
        if state != MessageState.DELIVERED:
            self.stats.failed_dlrs += 1
        done = datetime.now()
        delivered = state == MessageState.DELIVERED
        receipt = DeliveryReceipt(
            message_id=record.message_id,
            stat=STATE_TO_STAT[state],
            err=f"{err:03d}",
            sub="001",
            dlvrd="001" if delivered else "000",
            submit_date=datetime.fromtimestamp(record.received_at),
            done_date=done,
            text=_receipt_text(record.short_message, record.data_coding),
        )
        pdu = DeliverSm(
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr=record.destination_addr,
            destination_addr=record.source_addr,
            esm_class=ESM_CLASS_DELIVERY_RECEIPT,
            short_message=receipt.encode(),
            tlvs=receipt_tlvs(record.message_id, state, None if delivered else (3, err)),
        )
        self._enqueue(account, _Outbound(pdu, is_receipt=True))

    def _queue_mos(self, account: _Account, messages: Iterable[MoMessage | tuple]) -> None:
        for message in messages or ():
            mo = message if isinstance(message, MoMessage) else MoMessage(*message)
            pdu = DeliverSm(
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr=mo.from_msisdn,
                destination_addr=mo.to_addr,
                esm_class=mo.esm_class,
                protocol_id=mo.pid,
                data_coding=mo.dcs,
            )
            payload = bytes(mo.payload)
            if len(payload) > MAX_SHORT_MESSAGE:
                pdu.tlvs[Tag.MESSAGE_PAYLOAD] = payload
            else:
                pdu.short_message = payload
            self._enqueue(account, _Outbound(pdu, is_receipt=False))

    def inject_mo(self, system_id: str, message: MoMessage | tuple) -> None:
        """A handset sends an SMS on its own: deliver it to the account's receiver."""
        self._queue_mos(self._accounts[system_id], (message,))

    def _enqueue(self, account: _Account, outbound: _Outbound) -> None:
        account.queue.append(outbound)
        account.wakeup.set()

    def _start_delivery(self, system_id: str) -> None:
        task = self._delivery_loops.get(system_id)
        if task is None or task.done():
            account = self._accounts[system_id]
            self._delivery_loops[system_id] = asyncio.ensure_future(self._delivery_loop(account))

    async def _delivery_loop(self, account: _Account) -> None:
        """Move queued deliver_sm to bound receivers, at most `window` in flight per account."""
        slots = asyncio.Semaphore(self.window)
        while True:
            while not account.queue or not account.receivers:
                account.wakeup.clear()
                await account.wakeup.wait()
            await slots.acquire()
            if not account.queue or not account.receivers:
                slots.release()
                continue
            outbound = account.queue.popleft()
            session = account.next_receiver()
            account.in_flight += 1
            self._spawn(self._deliver_one(account, session, outbound, slots))

    async def _deliver_one(
        self,
        account: _Account,
        session: _SmscSession,
        outbound: _Outbound,
        slots: asyncio.Semaphore,
    ) -> None:
        outbound.attempts += 1
        retry_after = 0.0
        try:
            await session.request(outbound.pdu)
        except SmppCommandError as exc:
            if exc.status in _TEMPORARY_STATUSES:
                retry_after = self.retry_delay
            else:
                self.stats.rejected_deliveries += 1
                log.warning("ESME %s refused deliver_sm permanently: %s", session.peer, exc)
                return
        except SmppError:
            retry_after = 0.0 if not session.is_open else self.retry_delay
        else:
            if outbound.is_receipt:
                self.stats.dlrs += 1
            else:
                self.stats.mos += 1
            return
        finally:
            account.in_flight -= 1
            slots.release()
        if outbound.attempts >= _MAX_DELIVERY_ATTEMPTS:
            self.stats.rejected_deliveries += 1
            log.warning(
                "giving up deliver_sm to %r after %d attempts", account.system_id, outbound.attempts
            )
            return
        if retry_after:
            await asyncio.sleep(retry_after)
        account.queue.appendleft(outbound)
        account.wakeup.set()


def _receipt_text(payload: bytes, data_coding: int) -> str:
    """Appendix B 'text': the first 20 characters, when the message is text at all."""
    head = payload[:20]
    if data_coding in (0, 1, 3) and all(32 <= b < 127 for b in head):
        return head.decode("ascii")
    return ""


# --- Command line ------------------------------------------------------------------------------


def _account(value: str) -> tuple[str, str]:
    system_id, sep, password = value.partition(":")
    if not sep or not system_id:
        raise argparse.ArgumentTypeError("accounts are given as system_id:password")
    return system_id, password


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=2775, help="port (0: any free port)")
    parser.add_argument(
        "--account",
        type=_account,
        action="append",
        default=[],
        metavar="SYSTEM_ID:PASSWORD",
        help="an ESME account; repeat for more (default ota:secret)",
    )
    parser.add_argument("--fleet", help="virtual UICC fleet file; routes messages to the cards")
    parser.add_argument(
        "--router",
        choices=("echo", "sink"),
        default="echo",
        help="without --fleet: echo messages back as MO, or swallow them",
    )
    parser.add_argument(
        "--system-id", default=DEFAULT_SYSTEM_ID, help="SMSC system_id in bind_resp"
    )
    parser.add_argument("--window", type=int, default=32, help="outstanding deliver_sm per account")
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(func=run_cli)


async def serve(args: argparse.Namespace) -> None:
    router = build_router(args.fleet, args.router)
    accounts = dict(args.account or [("ota", "secret")])
    smsc = SmscSimulator(
        accounts,
        router=router,
        host=args.host,
        port=args.port,
        system_id=args.system_id,
        window=args.window,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await smsc.start()
    print(f"SMSC listening on {smsc.host}:{smsc.port} accounts={','.join(accounts)}", flush=True)
    try:
        await stop.wait()
    finally:
        await smsc.stop()
        log.info("SMSC stopped: %s", smsc.stats)


def run_cli(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args))
    return 0
