"""An asyncio ESME: one long-lived bind to an SMSC with a window, keep-alive and reconnection.

Typical use in the portal's SMPP link process::

    client = SmppClient("smsc.example", 2775, "ota", "secret", window=64,
                        on_deliver=handle_inbound, rate_limiter=shared_bucket)
    supervisor = asyncio.create_task(client.run_forever())
    message_id = await client.submit("447700900123", tp_ud, source_addr="4000",
                                     esm_class=0x40, protocol_id=0x7F, data_coding=0xF6,
                                     registered_delivery=1)
    ...
    await client.close()

`submit` raises `SmppThrottledError` (retryable) on ESME_RTHROTTLED/ESME_RMSGQFUL,
`SmppConnectionError`/`SmppTimeoutError` (retryable) when the link is down or silent, and
`SmppCommandError` (not retryable) when the SMSC refused the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cardmgmt.smpp.dlr import InboundMessage
from cardmgmt.smpp.errors import (
    SmppBindError,
    SmppConnectionError,
    SmppError,
    SmppThrottledError,
    SmppTimeoutError,
)
from cardmgmt.smpp.pdu import (
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_ROK,
    ESME_RX_T_APPN,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CommandId,
    DataSm,
    DeliverSm,
    EnquireLink,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
)
from cardmgmt.smpp.ratelimit import RateLimiter
from cardmgmt.smpp.session import SmppSession

log = logging.getLogger(__name__)

DeliverHandler = Callable[[InboundMessage], Awaitable[None] | None]


class BindType(enum.StrEnum):
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"
    TRANSCEIVER = "transceiver"


_BIND_PDU = {
    BindType.TRANSMITTER: BindTransmitter,
    BindType.RECEIVER: BindReceiver,
    BindType.TRANSCEIVER: BindTransceiver,
}


@dataclass
class ClientStats:
    binds: int = 0
    bind_failures: int = 0
    connection_losses: int = 0
    submitted: int = 0
    submit_errors: int = 0
    throttled: int = 0
    delivered_in: int = 0
    receipts_in: int = 0
    enquire_links: int = 0


class _EsmeSession(SmppSession):
    def __init__(self, client: SmppClient) -> None:
        super().__init__(window=client.window, response_timeout=client.response_timeout)
        self.client = client

    def handle_request(self, pdu: Pdu) -> None:
        self.client._handle_request(self, pdu)

    def on_connection_lost(self, exc: Exception | None) -> None:
        self.client._session_lost(self, exc)


class SmppClient:
    """An ESME bound to one SMSC account. See the module docstring for the error contract."""

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        bind_type: BindType | str = BindType.TRANSCEIVER,
        system_type: str = "",
        interface_version: int = 0x34,
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
        window: int = 10,
        response_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        enquire_link_interval: float = 30.0,
        bind_wait: float | None = None,
        on_deliver: DeliverHandler | None = None,
        rate_limiter: RateLimiter | None = None,
        reconnect_initial: float = 1.0,
        reconnect_max: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.system_id = system_id
        self.password = password
        self.bind_type = BindType(bind_type)
        self.system_type = system_type
        self.interface_version = interface_version
        self.addr_ton = addr_ton
        self.addr_npi = addr_npi
        self.address_range = address_range
        self.window = window
        self.response_timeout = response_timeout
        self.connect_timeout = connect_timeout
        self.enquire_link_interval = enquire_link_interval
        self.bind_wait = response_timeout if bind_wait is None else bind_wait
        self.on_deliver = on_deliver
        self.rate_limiter = rate_limiter
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.stats = ClientStats()
        self.smsc_system_id = ""
        self._session: _EsmeSession | None = None
        self._bound = asyncio.Event()
        self._lost = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()
        self._supervising = False
        self._keepalive: asyncio.Task[None] | None = None
        self._handler_tasks: set[asyncio.Task[None]] = set()

    # --- State ---------------------------------------------------------------------------------

    @property
    def is_bound(self) -> bool:
        return self._session is not None and self._bound.is_set()

    @property
    def outstanding(self) -> int:
        return self._session.outstanding if self._session is not None else 0

    async def wait_bound(self, timeout: float | None = None) -> None:
        """Wait until a bind is up (under `run_forever`, possibly after a reconnection)."""
        try:
            await asyncio.wait_for(self._bound.wait(), timeout)
        except TimeoutError as exc:
            raise SmppConnectionError(f"not bound to {self.host}:{self.port}") from exc

    # --- Connecting ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the TCP connection and bind. Raises `SmppBindError` if the SMSC refuses us."""
        if self.is_bound:
            return
        if self._closing:
            raise SmppConnectionError("client is closed")
        loop = asyncio.get_running_loop()
        try:
            _, session = await asyncio.wait_for(
                loop.create_connection(lambda: _EsmeSession(self), self.host, self.port),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise SmppConnectionError(
                f"cannot connect to SMSC {self.host}:{self.port}: {exc or 'timeout'}"
            ) from exc
        bind = _BIND_PDU[self.bind_type](
            system_id=self.system_id,
            password=self.password,
            system_type=self.system_type,
            interface_version=self.interface_version,
            addr_ton=self.addr_ton,
            addr_npi=self.addr_npi,
            address_range=self.address_range,
        )
        try:
            response = await session.request(bind)
        except SmppError as exc:
            session.abort()
            self.stats.bind_failures += 1
            if isinstance(exc, SmppBindError):
                log.error(
                    "SMSC %s:%s refused bind as %r: %s", self.host, self.port, self.system_id, exc
                )
            raise
        if self._closing:  # close() ran while we were binding
            session.close()
            raise SmppConnectionError("client closed while binding")
        self.smsc_system_id = getattr(response, "system_id", "")
        self._session = session
        self._lost.clear()
        self._bound.set()
        self.stats.binds += 1
        log.info(
            "bound to SMSC %s:%s (%s) as %s %r",
            self.host,
            self.port,
            self.smsc_system_id,
            self.bind_type.name.lower(),
            self.system_id,
        )
        if self.enquire_link_interval > 0:
            self._keepalive = asyncio.create_task(self._keepalive_loop(session))

    def _session_lost(self, session: _EsmeSession, exc: Exception | None) -> None:
        if session is not self._session:
            return
        self._session = None
        self._bound.clear()
        self._lost.set()
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if not self._closing:
            self.stats.connection_losses += 1
            log.warning(
                "SMPP link to %s:%s lost%s", self.host, self.port, f": {exc}" if exc else ""
            )

    async def _keepalive_loop(self, session: _EsmeSession) -> None:
        """enquire_link every `enquire_link_interval` s; no answer means the link is dead."""
        interval = self.enquire_link_interval
        try:
            while session.is_open:
                await asyncio.sleep(interval)
                try:
                    await session.request(
                        EnquireLink(), timeout=min(interval, self.response_timeout)
                    )
                    self.stats.enquire_links += 1
                except SmppTimeoutError:
                    log.warning(
                        "no enquire_link_resp from %s:%s; dropping the link", self.host, self.port
                    )
                    session.abort()
                    return
                except SmppError:
                    return
        except asyncio.CancelledError:
            pass

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, capped."""
        ceiling = min(self.reconnect_max, self.reconnect_initial * (2 ** min(attempt, 30)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def run_forever(self) -> None:
        """Keep the bind up until `close()`: reconnect and rebind with backoff after any loss.

        Refused binds are retried too (credentials may be fixed at the SMSC), with the same
        backoff, and logged as errors.
        """
        self._supervising = True
        attempt = 0
        try:
            while not self._closing:
                try:
                    await self.connect()
                except SmppError as exc:
                    delay = self._backoff(attempt)
                    attempt += 1
                    log.warning(
                        "SMPP connect to %s:%s failed (%s); retrying in %.1f s",
                        self.host,
                        self.port,
                        exc,
                        delay,
                    )
                    await self._sleep_unless_closed(delay)
                    continue
                attempt = 0
                await self._wait_lost_or_closed()
                if not self._closing:
                    await self._sleep_unless_closed(self._backoff(0))
        finally:
            self._supervising = False

    async def _wait_lost_or_closed(self) -> None:
        lost = asyncio.ensure_future(self._lost.wait())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({lost, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            closed.cancel()

    async def _sleep_unless_closed(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), delay)

    async def close(self, timeout: float = 5.0) -> None:
        """Unbind cleanly (waiting briefly for unbind_resp), close the socket, stop reconnecting."""
        self._closing = True
        self._closed.set()
        session = self._session
        if session is not None:
            if session.is_open:
                with contextlib.suppress(SmppError):
                    await session.request(Unbind(), timeout=min(timeout, self.response_timeout))
            session.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.wait_closed(), timeout)
        self._bound.clear()
        for task in list(self._handler_tasks):
            task.cancel()

    async def __aenter__(self) -> SmppClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- Sending -------------------------------------------------------------------------------

    async def _ready_session(self) -> _EsmeSession:
        session = self._session
        if session is not None and self._bound.is_set():
            return session
        if self._closing:
            raise SmppConnectionError("client is closed")
        if not self._supervising:
            raise SmppConnectionError(f"not bound to {self.host}:{self.port}")
        await self.wait_bound(self.bind_wait)
        if self._session is None:
            raise SmppConnectionError(f"not bound to {self.host}:{self.port}")
        return self._session

    async def request(self, pdu: Pdu, timeout: float | None = None) -> Pdu:
        """Send any request PDU on the bound link and return its OK response."""
        session = await self._ready_session()
        return await session.request(pdu, timeout)

    async def submit_sm(self, pdu: SubmitSm) -> SubmitSmResp:
        """Submit a prepared submit_sm (through the rate limiter and the window)."""
        if self.bind_type is BindType.RECEIVER:
            raise SmppConnectionError("a receiver bind cannot submit")
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        session = self._session
        if session is None or not self._bound.is_set():
            session = await self._ready_session()
        try:
            response = await session.request(pdu)
        except SmppError as exc:
            self.stats.submit_errors += 1
            if isinstance(exc, SmppThrottledError):
                self.stats.throttled += 1
            raise
        self.stats.submitted += 1
        return response  # type: ignore[return-value]

    async def submit(
        self,
        destination_addr: str,
        short_message: bytes,
        *,
        source_addr: str = "",
        source_addr_ton: int = 0,
        source_addr_npi: int = 0,
        dest_addr_ton: int = 1,
        dest_addr_npi: int = 1,
        esm_class: int = 0,
        protocol_id: int = 0,
        data_coding: int = 0,
        registered_delivery: int = 0,
        validity_period: str = "",
        priority_flag: int = 0,
        service_type: str = "",
        tlvs: dict[int, bytes] | None = None,
    ) -> str:
        """Submit one short message; return the SMSC's message_id.

        For OTA (ota.md section 4): esm_class 0x40, protocol_id 0x7F, data_coding 0xF6,
        registered_delivery 1, TP-UD including the UDH in `short_message` (at most 140 octets).
        """
        pdu = SubmitSm(
            service_type=service_type,
            source_addr_ton=source_addr_ton,
            source_addr_npi=source_addr_npi,
            source_addr=source_addr,
            dest_addr_ton=dest_addr_ton,
            dest_addr_npi=dest_addr_npi,
            destination_addr=destination_addr,
            esm_class=esm_class,
            protocol_id=protocol_id,
            priority_flag=priority_flag,
            validity_period=validity_period,
            registered_delivery=registered_delivery,
            data_coding=data_coding,
            short_message=short_message,
            tlvs=tlvs or {},
        )
        response = await self.submit_sm(pdu)
        return response.message_id

    async def enquire_link(self, timeout: float | None = None) -> None:
        await self.request(EnquireLink(), timeout)
        self.stats.enquire_links += 1

    # --- Receiving -----------------------------------------------------------------------------

    def _handle_request(self, session: _EsmeSession, pdu: Pdu) -> None:
        command_id = pdu.command_id
        if command_id == CommandId.DELIVER_SM or command_id == CommandId.DATA_SM:
            if self.bind_type is BindType.TRANSMITTER:
                session.send(pdu.response(ESME_RINVBNDSTS))
                return
            assert isinstance(pdu, DeliverSm | DataSm)
            self._deliver(session, pdu)
        elif command_id == CommandId.ENQUIRE_LINK:
            session.send(pdu.response())
        elif command_id == CommandId.UNBIND:
            log.info("SMSC %s:%s unbound us", self.host, self.port)
            session.send(pdu.response())
            self._bound.clear()
            session.close()
        else:
            session.send(
                GenericNack(sequence_number=pdu.sequence_number, command_status=ESME_RINVCMDID)
            )

    def _deliver(self, session: _EsmeSession, pdu: DeliverSm | DataSm) -> None:
        message = InboundMessage.from_pdu(pdu)
        if message.is_receipt:
            self.stats.receipts_in += 1
        else:
            self.stats.delivered_in += 1
        handler = self.on_deliver
        if handler is None:
            session.send(pdu.response())
            return
        try:
            result = handler(message)
        except Exception:
            log.exception("deliver_sm handler failed; answering ESME_RX_T_APPN so it is retried")
            session.send(pdu.response(ESME_RX_T_APPN))
            return
        if not inspect.isawaitable(result):
            session.send(pdu.response())
            return
        if isinstance(result, asyncio.Future):
            # A future (possibly shared by a batch of deliver_sm): no task per message.
            result.add_done_callback(functools.partial(self._answer_when_done, session, pdu))
            return
        # acknowledge only once the handler has really taken the message
        task = asyncio.ensure_future(self._await_handler(session, pdu, result))
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    @staticmethod
    def _answer_when_done(session: _EsmeSession, pdu: Pdu, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            return  # closing: no answer, the SMSC resends
        if future.exception() is not None:
            # The handler logs its failure once per batch; each PDU is refused for a resend.
            log.debug("deliver_sm handler failed; answering ESME_RX_T_APPN so it is retried")
            session.send(pdu.response(ESME_RX_T_APPN))
        else:
            session.send(pdu.response())

    async def _await_handler(
        self, session: _EsmeSession, pdu: Pdu, result: Awaitable[None]
    ) -> None:
        status = ESME_ROK
        try:
            await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deliver_sm handler failed; answering ESME_RX_T_APPN so it is retried")
            status = ESME_RX_T_APPN
        session.send(pdu.response(status))
