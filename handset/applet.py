"""Applet behaviours of the virtual UICC: what an installed instance does with its APDUs.

An instance created by INSTALL [for install] gets a behaviour chosen by its module (class) AID:
the sync applet (`SyncApplet`, for `cardmgmt.ota.syncapplet.APPLET_AID` and the demo CAP's
applet) or `GenericApplet` (answers every command 6D00). Behaviours are plain objects with
`process(apdu) -> (data, sw)` and `state()` / `restore(state)` for the fleet state file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from cardmgmt.ota import demo_cap, syncapplet
from cardmgmt.ota.syncapplet import (
    AppletError,
    ReadChunk,
    ReadSummary,
    RecordState,
    RecordSummary,
    StoreBlock,
    SyncRequest,
    Trigger,
    TriggerReason,
)
from sync.syncml.paramrecord import ParamRecord, ParamRecordError, decode_param_record


class AppletBehaviour(Protocol):
    def process(self, apdu: bytes) -> tuple[bytes, int]: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class GenericApplet:
    """An applet the simulator knows nothing about: installed, addressable, no commands."""

    def process(self, apdu: bytes) -> tuple[bytes, int]:
        return b"", syncapplet.SW_INS_NOT_SUPPORTED

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass


class SyncApplet:
    """The sync applet (docs/applet-commands.md): stores the parameter record, answers reads of
    it, and on TRIGGER asks its handset to synchronize by issuing a SYNC REQUEST.

    `issue(request)` is called with each proactive command the applet issues; the card records
    it (`Uicc.issued_commands`) and hands it to its handset hook. `capacity` bounds the record
    (the applet's reserved space, or its non-volatile quota from the install parameters).
    """

    def __init__(
        self,
        issue: Callable[[SyncRequest], None],
        *,
        capacity: int = syncapplet.MAX_RECORD_LENGTH,
    ) -> None:
        self._issue = issue
        self.capacity = min(capacity, syncapplet.MAX_RECORD_LENGTH)
        self.record = b""
        self.triggers = 0
        self._upload: bytearray | None = None
        self._next_block = 0
        self._command_number = 0
        self.imei = ""  # the handset's IMEI at the last power-on (PROVIDE LOCAL INFORMATION)
        self.timer_from: float | None = None  # when the timer's current interval started

    # --- Commands ------------------------------------------------------------------------------

    def process(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            command = syncapplet.parse_applet_apdu(apdu)
            if isinstance(command, StoreBlock):
                return self._store(command)
            if isinstance(command, ReadSummary):
                return self.summary().encode(), syncapplet.SW_OK
            if isinstance(command, ReadChunk):
                return self._chunk(command.chunk)
            assert isinstance(command, Trigger)
            self.trigger(command.mode, command.campaign)
            return self.triggers.to_bytes(2, "big"), syncapplet.SW_OK
        except AppletError as exc:
            return b"", exc.sw

    def _store(self, command: StoreBlock) -> tuple[bytes, int]:
        if command.block == 0:
            self._upload = bytearray()  # a new record starts; a half-sent one is dropped
            self._next_block = 0
        if self._upload is None or command.block != self._next_block:
            raise AppletError(
                f"STORE block {command.block}, expected {self._next_block}",
                syncapplet.SW_WRONG_P1P2,
            )
        if len(self._upload) + len(command.data) > self.capacity:
            self._upload = None
            raise AppletError("record exceeds the applet's space", syncapplet.SW_NOT_ENOUGH_MEMORY)
        self._upload += command.data
        self._next_block += 1
        if command.last:
            self.record = bytes(self._upload)
            self._upload = None
            self._next_block = 0
        return b"", syncapplet.SW_OK

    def _chunk(self, chunk: int) -> tuple[bytes, int]:
        size = syncapplet.READ_CHUNK_SIZE
        if not self.record:
            raise AppletError("no record stored", syncapplet.SW_CONDITIONS_NOT_SATISFIED)
        if chunk * size >= len(self.record):
            raise AppletError(f"record has no chunk {chunk}", syncapplet.SW_NOT_FOUND)
        return self.record[chunk * size : (chunk + 1) * size], syncapplet.SW_OK

    def summary(self) -> RecordSummary:
        base = RecordSummary.of(self.record, triggers=self.triggers)
        if self._upload is None:
            return base
        return RecordSummary(
            RecordState.UPLOADING, base.length, base.crc32, base.triggers, base.head,
            self._next_block,
        )  # fmt: skip

    def trigger(
        self,
        mode: int | None = None,
        campaign: bytes = b"",
        reason: TriggerReason = TriggerReason.OTA,
    ) -> SyncRequest:
        """Ask the handset to synchronize (also what the timer, IMEI change and menu do)."""
        if not self.record:
            raise AppletError(
                "TRIGGER before any parameter record was stored",
                syncapplet.SW_CONDITIONS_NOT_SATISFIED,
            )
        self._command_number = self._command_number % 0xFE + 1
        self.triggers += 1
        request = SyncRequest(self.record, mode, campaign, reason, self._command_number)
        self._issue(request)
        return request

    # --- Toolkit events: the other three triggers (docs/applet-commands.md section 5) ----------

    def params(self) -> ParamRecord | None:
        """The stored record decoded (trigger flags, interval), or None if absent or unreadable."""
        if not self.record:
            return None
        try:
            return decode_param_record(self.record)
        except ParamRecordError:
            return None

    def power_on(self, imei: str, now: float) -> SyncRequest | None:
        """After TERMINAL PROFILE the applet reads the IMEI; a different one than last time is
        a new handset: it asks for a sync if the record's IMEI-change flag is set."""
        previous, self.imei = self.imei, imei
        self.timer_from = now
        params = self.params()
        if previous and previous != imei and params is not None and params.trigger_imei_change:
            return self.trigger(reason=TriggerReason.IMEI_CHANGE)
        return None

    def menu_selection(self) -> SyncRequest | None:
        """The user chose the applet's menu entry: a sync if the record allows it."""
        params = self.params()
        if params is None or not params.trigger_menu:
            return None
        return self.trigger(reason=TriggerReason.MENU)

    def tick(self, now: float) -> SyncRequest | None:
        """The timer: every `interval_minutes` of the record (0 or the flag off: no timer)."""
        params = self.params()
        if params is None or not params.trigger_timer or params.interval_minutes <= 0:
            self.timer_from = None
            return None
        if self.timer_from is None or now < self.timer_from:
            self.timer_from = now
            return None
        if now - self.timer_from < params.interval_minutes * 60:
            return None
        self.timer_from = now
        return self.trigger(reason=TriggerReason.TIMER)

    # --- State file ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"record": self.record.hex(), "triggers": self.triggers}
        if self.imei:
            state["imei"] = self.imei
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.record = bytes.fromhex(state.get("record", ""))
        self.triggers = int(state.get("triggers", 0))
        self.imei = str(state.get("imei", ""))


# Module (class) AID -> behaviour kind; the card creates the behaviour on INSTALL.
SYNC_APPLET_MODULES = frozenset({syncapplet.APPLET_AID, demo_cap.SYNC_APPLET_AID})
