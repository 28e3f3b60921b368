"""SMPP 3.4 for the OTA delivery path: PDU codec, delivery receipts and an asyncio ESME.

Pure protocol code: asyncio and the standard library only, no Django. The SMSC simulator in
`handset.smsc` is built on the same codec and session. See docs/smpp.md.
"""

from cardmgmt.smpp.client import BindType, ClientStats, SmppClient
from cardmgmt.smpp.dlr import DeliveryReceipt, InboundMessage, format_receipt, parse_receipt
from cardmgmt.smpp.errors import (
    SmppBindError,
    SmppCommandError,
    SmppConnectionError,
    SmppDecodeError,
    SmppEncodeError,
    SmppError,
    SmppFramingError,
    SmppThrottledError,
    SmppTimeoutError,
)
from cardmgmt.smpp.pdu import MessageState, PduFramer, SubmitSm, decode_pdu
from cardmgmt.smpp.ratelimit import RateLimiter, TokenBucket

__all__ = [
    "BindType",
    "ClientStats",
    "DeliveryReceipt",
    "InboundMessage",
    "MessageState",
    "PduFramer",
    "RateLimiter",
    "SmppBindError",
    "SmppClient",
    "SmppCommandError",
    "SmppConnectionError",
    "SmppDecodeError",
    "SmppEncodeError",
    "SmppError",
    "SmppFramingError",
    "SmppThrottledError",
    "SmppTimeoutError",
    "SubmitSm",
    "TokenBucket",
    "decode_pdu",
    "format_receipt",
    "parse_receipt",
]
