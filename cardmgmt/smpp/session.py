"""One SMPP connection, either side of it: framing, request/response matching and the window.

`SmppSession` is an `asyncio.Protocol`. Requests it sends get sequence numbers 1..0x7FFFFFFF
(wrapping, skipping numbers still in flight) and wait for the response with the same
sequence_number; at most `window` requests are outstanding at once (SMPP 3.4 section 2.7,
"windowing"). Incoming requests go to `handle_request`, which the ESME client and the SMSC
simulator override. A PDU that cannot be decoded but whose header was readable is answered with
generic_nack (section 4.3); a stream that is out of step is dropped.
"""

from __future__ import annotations

import asyncio
import logging

from cardmgmt.smpp.errors import (
    SmppBindError,
    SmppCommandError,
    SmppConnectionError,
    SmppDecodeError,
    SmppError,
    SmppFramingError,
    SmppThrottledError,
    SmppTimeoutError,
)
from cardmgmt.smpp.pdu import (
    ESME_RINVCMDID,
    ESME_ROK,
    MAX_SEQUENCE,
    RESPONSE_BIT,
    THROTTLING_STATUSES,
    CommandId,
    GenericNack,
    Pdu,
    PduFramer,
    decode_pdu,
)

log = logging.getLogger(__name__)

_BIND_IDS = frozenset(
    {CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER}
)


def error_for_response(request: Pdu, response: Pdu) -> SmppCommandError:
    """The exception a non-OK response to `request` stands for."""
    status = response.command_status
    if status in THROTTLING_STATUSES:
        return SmppThrottledError(status, request.command_id)
    if request.command_id in _BIND_IDS:
        return SmppBindError(status, request.command_id)
    if response.command_id == CommandId.GENERIC_NACK:
        return SmppCommandError(status, request.command_id, "answered with generic_nack")
    return SmppCommandError(status, request.command_id)


class SmppSession(asyncio.Protocol):
    """The transport-level half of an ESME or SMSC connection."""

    def __init__(self, *, window: int = 10, response_timeout: float = 10.0) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.loop = asyncio.get_running_loop()
        self.window = window
        self.response_timeout = response_timeout
        self.transport: asyncio.Transport | None = None
        self.peer: str = "?"
        self.last_received = self.loop.time()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self._framer = PduFramer()
        # sequence_number -> (future, deadline); one timer for them all (`_sweep`).
        self._pending: dict[int, tuple[asyncio.Future[Pdu], float]] = {}
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._sweep_at = 0.0
        self._sequence = 0
        self._slots = asyncio.Semaphore(window)
        self._writable = asyncio.Event()
        self._writable.set()
        # PDUs written in one turn of the event loop go out in one write (one system call).
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._out.clear()
        self._writable.set()  # wake writers so they see the connection is gone
        pending, self._pending = self._pending, {}
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(SmppConnectionError(f"connection to {self.peer} lost"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.on_connection_lost(exc)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        try:
            frames = self._framer.feed(data)
        except SmppFramingError as exc:
            log.warning("SMPP stream from %s is out of step, dropping it: %s", self.peer, exc)
            self.abort()
            return
        for frame in frames:
            if self.transport is None:
                return
            try:
                pdu = decode_pdu(frame)
            except SmppDecodeError as exc:
                self._on_decode_error(exc)
                continue
            if pdu.command_id & RESPONSE_BIT:
                entry = self._pending.pop(pdu.sequence_number, None)
                if entry is None:
                    if pdu.command_id == CommandId.GENERIC_NACK:
                        log.warning(
                            "generic_nack from %s: status 0x%08X", self.peer, pdu.command_status
                        )
                    continue  # late response to a request that timed out
                future = entry[0]
                if not future.done():
                    future.set_result(pdu)
            else:
                try:
                    self.handle_request(pdu)
                except Exception:
                    log.exception("handling %s from %s failed", pdu.name, self.peer)

    # --- Hooks ---------------------------------------------------------------------------------

    def handle_request(self, pdu: Pdu) -> None:
        """An incoming request; the default refuses everything."""
        self.send(GenericNack(sequence_number=pdu.sequence_number, command_status=ESME_RINVCMDID))

    def on_connection_lost(self, exc: Exception | None) -> None:
        """Called once the connection is gone and pending requests have failed."""

    # --- Sending -------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    def next_sequence(self) -> int:
        seq = self._sequence
        while True:
            seq = seq + 1 if seq < MAX_SEQUENCE else 1
            if seq not in self._pending:
                self._sequence = seq
                return seq

    def send(self, pdu: Pdu) -> None:
        """Write a PDU (typically a response) as is; dropped silently if the link is gone."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self._write(pdu.encode())

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write out what was queued in this turn of the event loop."""
        self._flush_handle = None
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def request(self, pdu: Pdu, timeout: float | None = None) -> Pdu:
        """Send a request within the window and return its OK response.

        Raises `SmppCommandError` (or `SmppThrottledError`, `SmppBindError`) for a non-zero
        command_status, `SmppTimeoutError` when no response came in time and
        `SmppConnectionError` when the link is or goes down. The request's sequence_number is
        assigned here.
        """
        await self._slots.acquire()
        try:
            if not self._writable.is_set():
                await self._writable.wait()
            transport = self.transport
            if transport is None or transport.is_closing():
                raise SmppConnectionError(f"no connection to {self.peer}")
            seq = self.next_sequence()
            pdu.sequence_number = seq
            data = pdu.encode()
            future = self.loop.create_future()
            deadline = self.loop.time() + (self.response_timeout if timeout is None else timeout)
            self._pending[seq] = (future, deadline)
            if self._sweep_handle is None or deadline < self._sweep_at:
                self._schedule_sweep(deadline)
            self._write(data)
            try:
                response = await future
            except asyncio.CancelledError:
                self._pending.pop(seq, None)
                raise
        finally:
            self._slots.release()
        if response.command_status != ESME_ROK or response.command_id == CommandId.GENERIC_NACK:
            raise error_for_response(pdu, response)
        return response

    def _schedule_sweep(self, when: float) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
        self._sweep_at = when
        self._sweep_handle = self.loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        """Fail the requests whose response is overdue; wake again at the next deadline."""
        self._sweep_handle = None
        now = self.loop.time() + 0.001  # the loop may run a timer a clock tick early
        overdue = [seq for seq, (_, deadline) in self._pending.items() if deadline <= now]
        for seq in overdue:
            self._expire(seq)
        if self._pending and self._sweep_handle is None:
            self._schedule_sweep(min(deadline for _, deadline in self._pending.values()))

    def _expire(self, seq: int) -> None:
        entry = self._pending.pop(seq, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(
                SmppTimeoutError(f"no response from {self.peer} to sequence {seq} in time")
            )

    def _on_decode_error(self, exc: SmppDecodeError) -> None:
        if exc.command_id & RESPONSE_BIT:
            # a response we cannot read: fail the request it answers, nack nothing (4.3.1)
            entry = self._pending.pop(exc.sequence_number, None)
            if entry is not None and not entry[0].done():
                entry[0].set_exception(exc)
            log.warning("undecodable response from %s: %s", self.peer, exc)
            return
        log.warning("undecodable PDU from %s, answering generic_nack: %s", self.peer, exc)
        self.send(GenericNack(sequence_number=exc.sequence_number, command_status=exc.status))

    def close(self) -> None:
        if self.transport is not None:
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)


__all__ = ["SmppError", "SmppSession", "error_for_response"]
