"""The virtual UICC fleet behind the SMSC simulator: the fleet file and the mobile router.

The fleet file (JSON, exported by the portal; format in docs/handset.md) lists the cards with
their MSISDN, profile and SCP80 keysets, keys in clear (lab use only). `load_fleet()` reads it,
`dump_fleet()` writes it, and `router_from_file()` is what `python -m handset smsc --fleet FILE`
calls: a `FleetRouter` that plays the radio network and the handsets.

For each submit_sm the router finds the card by destination MSISDN (unknown: `Undeliverable`),
and, like a handset, hands an SMS with TP-PID 7F and a class 2 DCS to its card in an
ENVELOPE(SMS-PP DOWNLOAD); the card joins concatenated segments (out of order and duplicates
included), processes whole packets and sends its PoR by SMS-SUBMIT, which the router returns as
an MO message (esm_class 0x40, TP-UD `02 71 00 ...`, PID 00, DCS F6) addressed to the
command's source address. An ENVELOPE answered 93 00 (toolkit busy) or with another error
becomes a failed delivery (TP-FCS D4 / D5 as the DLR's `err`).

Cards keep their state in memory for the life of the process; with `"state_file"` in the fleet
file, counters, registries and applet data are also saved there and reloaded at start.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardmgmt.ota.errors import OtaError
from cardmgmt.ota.tpdu import (
    TON_ALPHANUMERIC,
    Address,
    SmsDeliver,
    decode_sms_submit,
    sms_pp_download_envelope,
)

from .smsc import MoMessage, Undeliverable
from .uicc import SW_OK, SW_TOOLKIT_BUSY, CardKeys, CardProfile, IssuedCommand, Uicc

log = logging.getLogger(__name__)

FLEET_VERSION = 1
PID_SIM_DATA_DOWNLOAD = 0x7F
ESM_UDHI = 0x40
POR_PID = 0x00  # the SMS-SUBMIT of a PoR (ota.md 1.7: the real trace used PID 00, DCS F6)
POR_DCS = 0xF6

# The DLR `err` of a failed delivery (SMSC-specific; these follow the network causes).
ERR_UNKNOWN_SUBSCRIBER = 1  # MAP unknownSubscriber
ERR_TOOLKIT_BUSY = 0xD4  # TP-FCS D4: SIM Application Toolkit busy (RP-ERROR)
ERR_DATA_DOWNLOAD = 0xD5  # TP-FCS D5: (U)SIM data download error


class FleetError(ValueError):
    """A fleet file that cannot be used; the message says which card and which field."""


def normalize_msisdn(msisdn: str) -> str:
    """Digits only: '+49 171-234' and '49171234' are the same subscriber."""
    return "".join(c for c in msisdn if c.isdigit())


# --- The fleet file ----------------------------------------------------------------------------


@dataclass
class Fleet:
    cards: list[Uicc] = field(default_factory=list)
    ota_address: str = ""
    state_file: Path | None = None


def card_from_dict(item: Mapping[str, Any]) -> Uicc:
    """One `cards[]` entry of the fleet file."""
    return Uicc(
        iccid=str(item["iccid"]),
        imsi=str(item.get("imsi", "")),
        msisdn=str(item["msisdn"]),
        profile=CardProfile.from_dict(item.get("profile") or {}),
        keysets=[CardKeys.from_dict(k) for k in item.get("keysets", [])],
    )


def card_to_dict(card: Uicc) -> dict[str, Any]:
    return {
        "msisdn": card.msisdn,
        "iccid": card.iccid,
        "imsi": card.imsi,
        "profile": card.profile.to_dict(),
        "keysets": [k.to_dict() for k in card.keys.values()],
    }


def parse_fleet(data: Mapping[str, Any], *, base: Path | None = None) -> Fleet:
    """A fleet from the decoded JSON; `base` resolves a relative `state_file`."""
    if not isinstance(data, Mapping):
        raise FleetError("fleet file: the top level must be an object")
    if data.get("version") != FLEET_VERSION:
        raise FleetError(f"fleet file: version {data.get('version')!r}, expected {FLEET_VERSION}")
    cards: list[Uicc] = []
    seen: dict[str, int] = {}
    for n, item in enumerate(data.get("cards", [])):
        try:
            card = card_from_dict(item)
        except (OtaError, KeyError, TypeError, ValueError) as exc:
            where = item.get("iccid", "?") if isinstance(item, Mapping) else "?"
            raise FleetError(f"fleet file: card {n} ({where}): {exc!r}") from None
        key = normalize_msisdn(card.msisdn)
        if not key:
            raise FleetError(f"fleet file: card {n} ({card.iccid}) has no MSISDN digits")
        if key in seen:
            raise FleetError(f"fleet file: cards {seen[key]} and {n} share MSISDN {card.msisdn}")
        seen[key] = n
        cards.append(card)
    state = data.get("state_file")
    state_path = None
    if state:
        state_path = Path(state)
        if base is not None and not state_path.is_absolute():
            state_path = base / state_path
    return Fleet(cards, str(data.get("ota_address", "")), state_path)


def load_fleet(path: str | os.PathLike[str]) -> Fleet:
    """Read a fleet file (docs/handset.md); raises FleetError with the reason."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FleetError(f"fleet file {path}: {exc}") from None
    return parse_fleet(data, base=path.parent)


def dump_fleet(
    cards: Fleet | Iterable[Uicc],
    path: str | os.PathLike[str] | None = None,
    *,
    ota_address: str | None = None,
    state_file: str | None = None,
) -> dict[str, Any]:
    """The fleet file's JSON for these cards (written to `path` when given)."""
    if isinstance(cards, Fleet):
        ota_address = cards.ota_address if ota_address is None else ota_address
        if state_file is None and cards.state_file is not None:
            state_file = str(cards.state_file)
        cards = cards.cards
    data: dict[str, Any] = {
        "version": FLEET_VERSION,
        "ota_address": ota_address or "",
        "cards": [card_to_dict(c) for c in cards],
    }
    if state_file:
        data["state_file"] = state_file
    if path is not None:
        _write_json(Path(path), data)
    return data


def _write_json(path: Path, data: Any) -> None:
    """Write atomically (a reader never sees half a file)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- The router --------------------------------------------------------------------------------


@dataclass
class RouterStats:
    messages: int = 0  # submit_sm routed to a known card
    unknown: int = 0  # no card with that MSISDN
    not_for_card: int = 0  # not PID 7F + class 2: the handset keeps it, the card never sees it
    envelopes: int = 0
    packets: int = 0  # whole command packets the cards processed
    pors: int = 0  # PoRs returned as MO messages (packets, not segments)
    toolkit_busy: int = 0
    download_errors: int = 0
    por_in_rp_ack: int = 0  # PoRs asked in the RP-ACK (SPI2 b6 = 0): an SMPP SMSC loses them


def is_class2(dcs: int) -> bool:
    """Whether a TP-DCS marks a class 2 (SIM-specific) message (TS 23.038 4)."""
    if dcs & 0xF0 == 0xF0:
        return dcs & 0x03 == 0x02
    if dcs & 0xC0 == 0x00:  # general data coding: class meaningful when b5 is set
        return bool(dcs & 0x10) and dcs & 0x03 == 0x02
    return False


def source_address(source_addr: str) -> Address:
    """The TP-OA a handset sees for an SMPP source address (digits, else alphanumeric)."""
    digits = source_addr[1:] if source_addr.startswith("+") else source_addr
    if digits.isdigit() and len(digits) <= 20:
        international = source_addr.startswith("+") or len(digits) > 8
        return Address(digits, ton=1 if international else 0)
    if not source_addr:
        return Address("", ton=0)
    return Address(source_addr[:11], ton=TON_ALPHANUMERIC)


class FleetRouter:
    """The `MobileRouter` of the SMSC simulator for a fleet of virtual UICCs.

    In-process use: `router.card(msisdn)` reaches a card (its registry, `issued_commands`,
    `failures`...), `router.inject(msisdn, toolkit_busy=1)` switches failures.
    """

    def __init__(
        self,
        cards: Iterable[Uicc] = (),
        *,
        ota_address: str = "",
        state_file: str | os.PathLike[str] | None = None,
        require_class2: bool = True,
        save_interval: float = 1.0,
    ) -> None:
        self.ota_address = ota_address
        self.require_class2 = require_class2
        self.stats = RouterStats()
        self._cards: dict[str, Uicc] = {}
        self._on_proactive: Callable[[Uicc, IssuedCommand], None] | None = None
        for card in cards:
            self.add(card)
        self.state_file = Path(state_file) if state_file else None
        self.save_interval = save_interval
        self._dirty = False
        self._saved_at = 0.0
        if self.state_file is not None:
            if self.state_file.exists():
                self.load_state(self.state_file)
            atexit.register(self.flush)

    @classmethod
    def from_fleet(cls, fleet: Fleet, **options: Any) -> FleetRouter:
        return cls(
            fleet.cards, ota_address=fleet.ota_address, state_file=fleet.state_file, **options
        )

    # --- Cards ---------------------------------------------------------------------------------

    def add(self, card: Uicc) -> Uicc:
        key = normalize_msisdn(card.msisdn)
        if not key:
            raise FleetError(f"card {card.iccid} has no MSISDN")
        if key in self._cards:
            raise FleetError(f"MSISDN {card.msisdn} is already in the fleet")
        if self._on_proactive is not None:
            card.on_proactive = self._on_proactive
        self._cards[key] = card
        return card

    def card(self, msisdn: str) -> Uicc:
        """The card with this MSISDN (any format: '+4917...', '4917...'); KeyError if none."""
        try:
            return self._cards[normalize_msisdn(msisdn)]
        except KeyError:
            raise KeyError(f"no card with MSISDN {msisdn}") from None

    def card_by_iccid(self, iccid: str) -> Uicc:
        for card in self._cards.values():
            if card.iccid == iccid:
                return card
        raise KeyError(f"no card with ICCID {iccid}")

    @property
    def cards(self) -> list[Uicc]:
        return list(self._cards.values())

    def __len__(self) -> int:
        return len(self._cards)

    def inject(
        self,
        msisdn: str,
        *,
        toolkit_busy: int | None = None,
        lose_por: int | None = None,
        memory_quota: int | None = None,
    ) -> Uicc:
        """Switch failures on one card (counts: n next times, -1 always, 0 off)."""
        card = self.card(msisdn)
        if toolkit_busy is not None:
            card.failures.toolkit_busy = toolkit_busy
        if lose_por is not None:
            card.failures.lose_por = lose_por
        if memory_quota is not None:
            card.profile.memory_quota = memory_quota
        return card

    def clear_failures(self) -> None:
        for card in self._cards.values():
            card.failures.clear()

    def set_proactive_hook(self, hook: Callable[[Uicc, IssuedCommand], None] | None) -> None:
        """Called with (card, issued command) whenever an applet issues a proactive command
        (the virtual handsets plug in here)."""
        self._on_proactive = hook
        for card in self._cards.values():
            card.on_proactive = hook

    # --- Routing -------------------------------------------------------------------------------

    def route(
        self,
        source_addr: str,
        dest_addr: str,
        esm_class: int,
        protocol_id: int,
        data_coding: int,
        short_message: bytes,
    ) -> list[MoMessage]:
        card = self._cards.get(normalize_msisdn(dest_addr))
        if card is None:
            self.stats.unknown += 1
            raise Undeliverable(f"no subscriber {dest_addr}", ERR_UNKNOWN_SUBSCRIBER)
        self.stats.messages += 1
        udhi = bool(esm_class & ESM_UDHI)
        if protocol_id != PID_SIM_DATA_DOWNLOAD or (
            self.require_class2 and not is_class2(data_coding)
        ):
            self.stats.not_for_card += 1
            return []  # an ordinary SMS: the handset stores it
        try:
            tpdu = SmsDeliver(
                source_address(source_addr), short_message, protocol_id, data_coding, udhi=udhi
            ).encode()
            envelope = sms_pp_download_envelope(tpdu)
        except OtaError as exc:
            self.stats.download_errors += 1
            raise Undeliverable(
                f"cannot hand the SMS to the card: {exc}", ERR_DATA_DOWNLOAD
            ) from None
        self.stats.envelopes += 1
        result = card.envelope(envelope)
        if result.sw == SW_TOOLKIT_BUSY:
            self.stats.toolkit_busy += 1
            raise Undeliverable("SIM toolkit busy (93 00)", ERR_TOOLKIT_BUSY)
        if result.sw != SW_OK and result.sw >> 8 not in (0x91, 0x9F, 0x61):
            self.stats.download_errors += 1
            raise Undeliverable(f"data download error (SW {result.sw:04X})", ERR_DATA_DOWNLOAD)
        if result.packet is not None:
            self.stats.packets += 1
            self._dirty = True
            self._maybe_save()
        if result.response:
            self.stats.por_in_rp_ack += 1
            log.info("card %s put its PoR in the RP-ACK: not passed to SMPP", card.iccid)
        messages = []
        for submit_tpdu in result.submits:
            submit = decode_sms_submit(submit_tpdu)
            messages.append(
                MoMessage(
                    normalize_msisdn(card.msisdn),
                    submit.destination_address.digits,
                    ESM_UDHI if submit.udhi else 0,
                    submit.pid,
                    submit.dcs,
                    submit.user_data,
                )
            )
        if messages:
            self.stats.pors += 1
        return messages

    # --- State file ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "version": FLEET_VERSION,
            "cards": {card.iccid: card.state() for card in self._cards.values()},
        }

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        target = Path(path) if path is not None else self.state_file
        if target is None:
            raise FleetError("no state file to save to")
        _write_json(target, self.state())
        self._dirty = False
        self._saved_at = time.monotonic()

    def flush(self) -> None:
        """Save now if something changed since the last save."""
        if self._dirty and self.state_file is not None:
            self.save()

    def _maybe_save(self) -> None:
        if self.state_file is not None and time.monotonic() - self._saved_at >= self.save_interval:
            self.save()

    def load_state(self, path: str | os.PathLike[str]) -> None:
        """Apply a saved state to the cards with the same ICCID (keys stay the fleet file's)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise FleetError(f"state file {path}: {exc}") from None
        if not isinstance(data, Mapping) or data.get("version") != FLEET_VERSION:
            raise FleetError(f"state file {path}: not a version {FLEET_VERSION} state")
        by_iccid = {card.iccid: card for card in self._cards.values()}
        for iccid, state in data.get("cards", {}).items():
            card = by_iccid.get(iccid)
            if card is not None:
                try:
                    card.restore(state)
                except (OtaError, KeyError, TypeError, ValueError) as exc:
                    raise FleetError(f"state file {path}: card {iccid}: {exc}") from None


def router_from_file(path: str | os.PathLike[str], **options: Any) -> FleetRouter:
    """The router for `python -m handset smsc --fleet FILE`."""
    return FleetRouter.from_fleet(load_fleet(path), **options)
