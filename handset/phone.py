"""A virtual handset: DB1 (address book and device record), a card slot and a sync agent.

The phone is the terminal of its card (`handset.uicc.Uicc`): it registers itself as the card's
proactive-command hook, answers PROVIDE LOCAL INFORMATION (IMEI) at power-on, sends MENU
SELECTION when the user picks the sync applet's entry and lets the applet's timer run. When the
applet issues SYNC REQUEST (docs/applet-commands.md section 3), the phone decodes it, reads the
parameter record (`sync.syncml.paramrecord`) and runs the SyncML session it describes with its
own client (`handset.syncclient`), with the TRIGGER's mode override if any.

The four triggers, all ending in that same SYNC REQUEST:

* OTA: the portal's TRIGGER APDU reaches the applet by SMS (the fleet router);
* timer: `phone.tick(now)` (the applet compares with the record's interval);
* new handset: `phone.insert_card(card)` then `phone.power_on()`: the applet reads another
  IMEI than at its last power-on;
* menu: `phone.select_menu()`.

A handset without the applet honours a Server-Alerted Notification instead (`receive_sms`, WAP
push to port 2948): it verifies the digest with its account's secret and runs the alerted
session. Its account is the last parameter record it received, or one given to it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cardmgmt.ota.errors import OtaError
from cardmgmt.ota.syncapplet import SyncRequest, TriggerReason, decode_sync_request
from sync.syncml.errors import SyncMLError
from sync.syncml.paramrecord import ParamRecord, ParamRecordError, decode_param_record
from sync.syncml.san import SANMessage, decode_san, verify_san
from sync.syncml.wappush import WapPushAssembler

from . import toolkit
from .addressbook import INVENTORY_TYPE, VCARD21, VCARD30, AddressBook, DeviceRecord, Inventory
from .syncclient import ClientState, Datastore, SessionReport, SyncClient, Transport
from .uicc import SW_OK, IssuedCommand, Uicc

log = logging.getLogger(__name__)

REASONS = {
    TriggerReason.OTA: "ota",
    TriggerReason.TIMER: "timer",
    TriggerReason.IMEI_CHANGE: "imei-change",
    TriggerReason.MENU: "menu",
}


@dataclass
class PhoneSession:
    """One sync the phone ran: why, with which overrides, and the client's report."""

    reason: str  # ota, timer, imei-change, menu, san, manual
    report: SessionReport
    mode: int | None = None  # the override (alert code) if any
    campaign: bytes = b""
    at: float = 0.0


@dataclass
class PhoneEvent:
    kind: str  # sync-request, san, san-refused, sms, error
    detail: str = ""
    at: float = 0.0


class Phone:
    """A virtual handset (see the module docstring)."""

    def __init__(
        self,
        device: DeviceRecord,
        *,
        addressbook: AddressBook | None = None,
        card: Uicc | None = None,
        account: ParamRecord | None = None,
        transport: Transport | None = None,
        encoding: str = "xml",
        version: str = "1.2",
        max_msg_size: int = 64 * 1024,
        runner: Callable[[Callable[[], Any]], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device = device
        self.addressbook = addressbook if addressbook is not None else AddressBook()
        self.inventory = Inventory(device)
        self.account = account
        self.transport = transport
        self.encoding = encoding
        self.version = version
        self.max_msg_size = max_msg_size
        self.runner = runner
        self.clock = clock
        self.card: Uicc | None = None
        self.powered = False
        self.sessions: list[PhoneSession] = []
        self.events: list[PhoneEvent] = []
        self.client_states: dict[tuple[str, str], ClientState] = {}
        self.wap = WapPushAssembler()
        self._lock = threading.Lock()
        if card is not None:
            self.insert_card(card)

    def __repr__(self) -> str:
        card = self.card.iccid if self.card else None
        return f"Phone(imei={self.imei!r}, model={self.device.model!r}, card={card!r})"

    @property
    def imei(self) -> str:
        return self.device.imei

    # --- The card slot and the toolkit -------------------------------------------------------

    def insert_card(self, card: Uicc) -> None:
        """Put a card in (power off first if one is in); call `power_on()` to start it."""
        if self.card is not None:
            self.remove_card()
        self.card = card
        card.on_proactive = self.on_proactive

    def remove_card(self) -> Uicc | None:
        card, self.card = self.card, None
        self.powered = False
        if card is not None and card.on_proactive == self.on_proactive:
            card.on_proactive = None
        return card

    def power_on(self, now: float | None = None) -> None:
        """Switch on: TERMINAL PROFILE, then the card's applets read our IMEI (a new one makes
        the sync applet trigger)."""
        self.powered = True
        if self.card is not None:
            self.card.on_proactive = self.on_proactive
            self.card.power_on(self.terminal, self.clock() if now is None else now)

    def power_off(self) -> None:
        self.powered = False

    def terminal(self, command: bytes) -> bytes:
        """Our answer (TERMINAL RESPONSE) to a proactive command the card asks us to run."""
        number, kind, qualifier = toolkit.parse_proactive_details(command)
        if kind == toolkit.TYPE_PROVIDE_LOCAL_INFORMATION and qualifier == toolkit.QUALIFIER_IMEI:
            return toolkit.imei_terminal_response(number, self.imei)
        raise OtaError(f"proactive command {kind:02X}/{qualifier:02X} not supported")

    def select_menu(self, item: int | None = None) -> bool:
        """The user picks the sync applet's menu entry (MENU SELECTION). False if no entry."""
        if self.card is None or not self.powered:
            return False
        items = self.card.menu_items()
        if not items:
            return False
        chosen = item if item is not None else min(items)
        result = self.card.envelope(toolkit.menu_selection_envelope(chosen))
        return result.sw == SW_OK

    def tick(self, now: float | None = None) -> None:
        """Let time pass for the card's applets (their timers)."""
        if self.card is not None and self.powered:
            self.card.tick(self.clock() if now is None else now)

    # --- SYNC REQUEST --------------------------------------------------------------------------

    def on_proactive(self, card: Uicc, issued: IssuedCommand) -> None:
        """The card's proactive-command hook: FETCH and run the SYNC REQUEST."""
        try:
            request = decode_sync_request(issued.command)
        except OtaError as exc:
            self._event("error", f"unreadable proactive command: {exc}")
            return
        self._event("sync-request", f"reason {REASONS.get(request.reason, request.reason)}")
        self.handle_sync_request(request)

    def handle_sync_request(self, request: SyncRequest) -> None:
        try:
            record = decode_param_record(request.record)
        except ParamRecordError as exc:
            self._event("error", f"parameter record unreadable: {exc}")
            return
        self.account = record  # the sync agent keeps the account it was handed
        mode = None if request.mode is None else 200 + request.mode
        reason = REASONS.get(request.reason, str(int(request.reason)))
        self._run(lambda: self.sync(record, mode=mode, reason=reason, campaign=request.campaign))

    def _run(self, job: Callable[[], Any]) -> None:
        if self.runner is None:
            job()
        else:
            self.runner(job)

    # --- The session ---------------------------------------------------------------------------

    def datastores(self, record: ParamRecord) -> list[Datastore]:
        """The record's datastores mapped onto DB1: vCards to the address book (in its own
        vCard version), the device inventory to the device record."""
        out = []
        for ds in record.datastores:
            ctype = ds.content_type.split(";")[0].strip().lower()
            if ctype in (VCARD21, VCARD30):
                store: Any = self.addressbook
                ctype = self.addressbook.content_type
            elif ctype == INVENTORY_TYPE:
                store = self.inventory
            else:
                log.info("%s: datastore %s has unsupported type %s", self, ds.remote_uri, ctype)
                continue
            out.append(
                Datastore(
                    local_uri="./" + ds.local_name,
                    remote_uri=ds.remote_uri,
                    content_type=ctype,
                    store=store,
                    mode=ds.mode,
                    name=ds.local_name,
                )
            )
        return out

    def client(self, record: ParamRecord) -> SyncClient:
        key = (record.server_url, record.username)
        state = self.client_states.setdefault(key, ClientState())
        return SyncClient(
            server_url=record.server_url,
            username=record.username,
            secret=record.secret,
            device=self.device,
            datastores=self.datastores(record),
            auth=record.auth_type,
            encoding=self.encoding,
            version=self.version,
            max_msg_size=self.max_msg_size,
            state=state,
            transport=self.transport,
            clock=self.clock,
        )

    def sync(
        self,
        record: ParamRecord | None = None,
        *,
        mode: int | None = None,
        modes: dict[str, int] | None = None,
        reason: str = "manual",
        campaign: bytes = b"",
    ) -> SessionReport:
        """Run one session now (blocking): `record` or the phone's account; `mode` overrides
        every datastore's mode, `modes` some of them (by remote URI)."""
        record = record or self.account
        if record is None:
            raise ValueError("the phone has no sync account (no parameter record yet)")
        with self._lock:
            client = self.client(record)
            overrides = dict(modes or {})
            if mode is not None:
                overrides = {d.remote_uri: mode for d in client.datastores} | overrides
            report = client.sync(overrides)
            self.sessions.append(PhoneSession(reason, report, mode, campaign, self.clock()))
        return report

    # --- SMS: the Server-Alerted Notification --------------------------------------------------

    def receive_sms(self, user_data: bytes, *, udhi: bool = True, originator: str = "") -> bool:
        """An SMS for the handset itself (not the card). True if it was a WAP push we took."""
        if not udhi:
            self._event("sms", f"{len(user_data)} octets from {originator}")
            return False
        try:
            push = self.wap.add(user_data, originator)
        except SyncMLError as exc:
            self._event("error", f"bad WAP push SMS: {exc}")
            return False
        if push is None:
            return False
        if not push.is_san:
            self._event("sms", f"WAP push of type {push.content_type!r} ignored")
            return True
        self.handle_san(push.body)
        return True

    def handle_san(self, data: bytes) -> bool:
        """Verify a package #0 with our account and run the alerted session (False: refused)."""
        account = self.account
        try:
            san: SANMessage = decode_san(data)
        except SyncMLError as exc:
            self._event("san-refused", f"unreadable notification: {exc}")
            return False
        if account is None:
            self._event("san-refused", f"no account for server {san.server_id!r}")
            return False
        if san.server_id != account.server_url or not verify_san(
            data, password=account.secret, nonce=b"", server_id=account.server_url
        ):
            self._event("san-refused", f"digest does not verify for {san.server_id!r}")
            return False
        if san.syncs:
            modes = {s.server_uri: s.sync_type for s in san.syncs}
        else:
            modes = {ds.remote_uri: 206 for ds in account.datastores}
        record = dataclasses.replace(
            account, datastores=[ds for ds in account.datastores if ds.remote_uri in modes]
        )
        self._event("san", f"session {san.session_id}: {modes}")
        self._run(lambda: self.sync(record, modes=modes, reason="san"))
        return True

    def _event(self, kind: str, detail: str) -> None:
        self.events.append(PhoneEvent(kind, detail, self.clock()))
        if len(self.events) > 1000:
            del self.events[:100]
        log.info("%s: %s %s", self, kind, detail)


@dataclass
class PhoneSpec:
    """What a fleet file's optional per-card ``"handset"`` entry says (docs/handset.md)."""

    device: DeviceRecord
    contacts: int = 0
    vcard_version: str = "2.1"
    extra: dict[str, Any] = field(default_factory=dict)
