"""Delivery receipts and the parsed view of an incoming deliver_sm.

The receipt text format is the de-facto one of SMPP 3.4 Appendix B (not normative, but what
every SMSC sends):

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
    err:E text:...

The parser is lenient where SMSCs differ (key case, dates with seconds, missing fields); the
TLVs receipted_message_id and message_state, when present, win over the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from cardmgmt.smpp.errors import SmppDecodeError
from cardmgmt.smpp.pdu import DataSm, DeliverSm, MessageState, is_delivery_receipt

#: Appendix B "stat" values and the message_state they stand for.
STAT_TO_STATE = {
    "ENROUTE": MessageState.ENROUTE,
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
}
STATE_TO_STAT = {state: stat for stat, state in STAT_TO_STATE.items()}

_KEY = re.compile(r"(?i)(?:^|\s)(id|sub|dlvrd|submit date|done date|stat|err|text):")


def _format_date(value: datetime | None) -> str:
    if not value:
        return "0000000000"
    # By hand, like _parse_date: strftime costs more than the rest of a receipt's text.
    return (
        f"{value.year % 100:02d}{value.month:02d}{value.day:02d}{value.hour:02d}{value.minute:02d}"
    )


def _parse_date(value: str) -> datetime | None:
    """YYMMDDhhmm, or YYMMDDhhmmss as some SMSCs send; None when absent or unreadable."""
    if len(value) not in (10, 12) or not value.isdigit():
        return None
    # Sliced by hand: strptime costs more than the rest of a receipt's handling.
    try:
        return datetime(
            2000 + int(value[0:2]),
            int(value[2:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12] or 0),
        )
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """The text of an SMSC delivery receipt."""

    message_id: str
    stat: str = "DELIVRD"
    err: str = "000"
    sub: str = "001"
    dlvrd: str = "001"
    submit_date: datetime | None = None
    done_date: datetime | None = None
    text: str = ""

    @property
    def state(self) -> MessageState | None:
        return STAT_TO_STATE.get(self.stat.upper())

    def format(self) -> str:
        return (
            f"id:{self.message_id} sub:{self.sub} dlvrd:{self.dlvrd} "
            f"submit date:{_format_date(self.submit_date)} "
            f"done date:{_format_date(self.done_date)} stat:{self.stat} err:{self.err} "
            f"text:{self.text[:20]}"
        )

    def encode(self) -> bytes:
        return self.format().encode("latin-1", "replace")


def format_receipt(receipt: DeliveryReceipt) -> bytes:
    return receipt.encode()


def parse_receipt(text: bytes | str) -> DeliveryReceipt:
    """Parse receipt text; raises `SmppDecodeError` when there is no id or no stat."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("latin-1")
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for i, match in enumerate(matches):
        key = match.group(1).lower()
        if key in fields:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[match.end() : end]
        fields[key] = value if key == "text" else value.strip()
    if not fields.get("id") or not fields.get("stat"):
        raise SmppDecodeError(f"not a delivery receipt (no id or stat): {text[:80]!r}")
    return DeliveryReceipt(
        message_id=fields["id"],
        stat=fields["stat"].upper(),
        err=fields.get("err", ""),
        sub=fields.get("sub", ""),
        dlvrd=fields.get("dlvrd", ""),
        submit_date=_parse_date(fields.get("submit date", "")),
        done_date=_parse_date(fields.get("done date", "")),
        text=fields.get("text", ""),
    )


class _Unparsed:
    """The receipt text of an `InboundMessage` not read yet."""


_UNPARSED: Final = _Unparsed()


def _parse_or_none(payload: bytes) -> DeliveryReceipt | None:
    try:
        return parse_receipt(payload)
    except SmppDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """An incoming deliver_sm/data_sm as the application sees it: an MO message or a receipt.

    For an MO (e.g. an OTA PoR, esm_class 0x40, payload `02 71 00 ...`) `is_receipt` is False and
    `payload` holds the TP-UD. For a receipt `receipted_message_id` and `state` come from the TLVs,
    else from the receipt text; `receipt` is the parsed text (None if it could not be parsed).
    """

    source_addr: str
    destination_addr: str
    esm_class: int
    protocol_id: int
    data_coding: int
    payload: bytes
    is_receipt: bool
    receipted_message_id: str | None = None
    state: int | None = None
    network_error_code: tuple[int, int] | None = None
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    # The parsed text, or _UNPARSED until `receipt` is first read.
    _receipt: DeliveryReceipt | _Unparsed | None = field(
        default=_UNPARSED, repr=False, compare=False
    )

    @property
    def receipt(self) -> DeliveryReceipt | None:
        """The receipt's text parsed; None for an MO or a text that cannot be read. Read on
        first use when the TLVs gave the id and the state: the SMPP link needs only those, and
        the text costs more than the rest of the PDU (the regular expression, two dates)."""
        receipt = self._receipt
        if isinstance(receipt, _Unparsed):
            receipt = _parse_or_none(self.payload) if self.is_receipt else None
            object.__setattr__(self, "_receipt", receipt)
        return receipt

    @property
    def text(self) -> str:
        return self.payload.decode("latin-1")

    @property
    def delivered(self) -> bool:
        return self.state == MessageState.DELIVERED

    @classmethod
    def from_pdu(cls, pdu: DeliverSm | DataSm) -> InboundMessage:
        payload = pdu.payload
        receipt: DeliveryReceipt | _Unparsed | None = _UNPARSED
        receipted_id = None
        state = None
        is_receipt = is_delivery_receipt(pdu.esm_class)
        if is_receipt:
            receipted_id = pdu.receipted_message_id
            state = pdu.message_state
            if receipted_id is None or state is None:
                receipt = _parse_or_none(payload)
                if receipt is not None:
                    if receipted_id is None:
                        receipted_id = receipt.message_id
                    if state is None:
                        state = receipt.state
        return cls(
            source_addr=pdu.source_addr,
            destination_addr=pdu.destination_addr,
            esm_class=pdu.esm_class,
            protocol_id=pdu.protocol_id,
            data_coding=pdu.data_coding,
            payload=payload,
            is_receipt=is_receipt,
            receipted_message_id=receipted_id,
            state=state,
            network_error_code=pdu.network_error_code,
            source_addr_ton=pdu.source_addr_ton,
            source_addr_npi=pdu.source_addr_npi,
            _receipt=receipt,
        )
