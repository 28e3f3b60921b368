"""SMPP 3.4 PDUs: bytes in, dataclasses out, and back.

Layouts follow the SMPP v3.4 specification (issue 1.2): the 16-octet header (section 3.2), the
PDU bodies of section 4 and the optional parameters (TLVs) of section 5.3. Only the operations an
ESME and a test SMSC need are modelled: bind_*, unbind, enquire_link, generic_nack, submit_sm,
deliver_sm and data_sm, with their responses. Any other command_id decodes to an
`SmppDecodeError` carrying ESME_RINVCMDID so the receiver can answer with a generic_nack.

Decoding never raises anything but `SmppError` subclasses, whatever the input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from cardmgmt.smpp.errors import SmppDecodeError, SmppEncodeError, SmppFramingError

# --- Header (SMPP 3.4 section 3.2) ------------------------------------------------------------

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number
HEADER_LENGTH = 16
#: A PDU longer than this is treated as a lost stream. Real PDUs stay far below: 254 octets of
#: short message plus addresses, or a message_payload TLV of at most 64 KiB.
MAX_PDU_LENGTH = 64 * 1024
MAX_SEQUENCE = 0x7FFFFFFF  # section 3.2: sequence numbers run 0x00000001..0x7FFFFFFF
MAX_SHORT_MESSAGE = 254  # section 4.4.1: sm_length 0..254
RESPONSE_BIT = 0x80000000

_TLV_HEADER = struct.Struct(">HH")


class CommandId(IntEnum):
    """command_id values, SMPP 3.4 section 5.1.2.1."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


def command_name(command_id: int) -> str:
    try:
        return CommandId(command_id).name.lower()
    except ValueError:
        return f"command 0x{command_id:08X}"


# --- command_status (SMPP 3.4 section 5.1.3) --------------------------------------------------

ESME_ROK = 0x00000000
ESME_RINVMSGLEN = 0x00000001
ESME_RINVCMDLEN = 0x00000002
ESME_RINVCMDID = 0x00000003
ESME_RINVBNDSTS = 0x00000004
ESME_RALYBND = 0x00000005
ESME_RINVPRTFLG = 0x00000006
ESME_RINVREGDLVFLG = 0x00000007
ESME_RSYSERR = 0x00000008
ESME_RINVSRCADR = 0x0000000A
ESME_RINVDSTADR = 0x0000000B
ESME_RINVMSGID = 0x0000000C
ESME_RBINDFAIL = 0x0000000D
ESME_RINVPASWD = 0x0000000E
ESME_RINVSYSID = 0x0000000F
ESME_RCANCELFAIL = 0x00000011
ESME_RREPLACEFAIL = 0x00000013
ESME_RMSGQFUL = 0x00000014
ESME_RINVSERTYP = 0x00000015
ESME_RINVNUMDESTS = 0x00000033
ESME_RINVDLNAME = 0x00000034
ESME_RINVDESTFLAG = 0x00000040
ESME_RINVSUBREP = 0x00000042
ESME_RINVESMCLASS = 0x00000043
ESME_RCNTSUBDL = 0x00000044
ESME_RSUBMITFAIL = 0x00000045
ESME_RINVSRCTON = 0x00000048
ESME_RINVSRCNPI = 0x00000049
ESME_RINVDSTTON = 0x00000050
ESME_RINVDSTNPI = 0x00000051
ESME_RINVSYSTYP = 0x00000053
ESME_RINVREPFLAG = 0x00000054
ESME_RINVNUMMSGS = 0x00000055
ESME_RTHROTTLED = 0x00000058
ESME_RINVSCHED = 0x00000061
ESME_RINVEXPIRY = 0x00000062
ESME_RINVDFTMSGID = 0x00000063
ESME_RX_T_APPN = 0x00000064
ESME_RX_P_APPN = 0x00000065
ESME_RX_R_APPN = 0x00000066
ESME_RQUERYFAIL = 0x00000067
ESME_RINVOPTPARSTREAM = 0x000000C0
ESME_ROPTPARNOTALLWD = 0x000000C1
ESME_RINVPARLEN = 0x000000C2
ESME_RMISSINGOPTPARAM = 0x000000C3
ESME_RINVOPTPARAMVAL = 0x000000C4
ESME_RDELIVERYFAILURE = 0x000000FE
ESME_RUNKNOWNERR = 0x000000FF

#: Statuses that mean "slow down", not "this message is bad".
THROTTLING_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})

STATUS_NAMES: dict[int, str] = {
    value: name for name, value in dict(globals()).items() if name.startswith("ESME_R")
}

_STATUS_TEXT = {
    ESME_ROK: "no error",
    ESME_RINVMSGLEN: "message length is invalid",
    ESME_RINVCMDLEN: "command length is invalid",
    ESME_RINVCMDID: "invalid command ID",
    ESME_RINVBNDSTS: "incorrect bind status for this command",
    ESME_RALYBND: "ESME already in bound state",
    ESME_RSYSERR: "system error",
    ESME_RINVSRCADR: "invalid source address",
    ESME_RINVDSTADR: "invalid destination address",
    ESME_RBINDFAIL: "bind failed",
    ESME_RINVPASWD: "invalid password",
    ESME_RINVSYSID: "invalid system_id",
    ESME_RMSGQFUL: "message queue full",
    ESME_RINVESMCLASS: "invalid esm_class",
    ESME_RSUBMITFAIL: "submit_sm failed",
    ESME_RTHROTTLED: "throttling error: the ESME exceeded its allowed message rate",
    ESME_RINVEXPIRY: "invalid validity period",
    ESME_RX_T_APPN: "ESME receiver temporary application error",
    ESME_RX_P_APPN: "ESME receiver permanent application error",
    ESME_RX_R_APPN: "ESME receiver reject message error",
    ESME_RINVOPTPARSTREAM: "error in the optional part of the PDU body",
    ESME_RINVPARLEN: "invalid parameter length",
    ESME_RDELIVERYFAILURE: "delivery failure",
    ESME_RUNKNOWNERR: "unknown error",
}


def status_name(status: int) -> str:
    """'ESME_RTHROTTLED (0x00000058, throttling error: ...)' for logs and support engineers."""
    name = STATUS_NAMES.get(status, "reserved/vendor status")
    text = _STATUS_TEXT.get(status)
    return f"{name} (0x{status:08X}{', ' + text if text else ''})"


# --- Optional parameters (SMPP 3.4 section 5.3.2) ---------------------------------------------


class Tag(IntEnum):
    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


# Fixed value lengths the decoder enforces, so the accessors below can never fail (section 5.3.2).
_TLV_FIXED_LENGTH = {
    Tag.MESSAGE_STATE: 1,
    Tag.NETWORK_ERROR_CODE: 3,
    Tag.SAR_MSG_REF_NUM: 2,
    Tag.SAR_TOTAL_SEGMENTS: 1,
    Tag.SAR_SEGMENT_SEQNUM: 1,
    Tag.SC_INTERFACE_VERSION: 1,
    Tag.USER_MESSAGE_REFERENCE: 2,
    Tag.SOURCE_PORT: 2,
    Tag.DESTINATION_PORT: 2,
    Tag.PAYLOAD_TYPE: 1,
    Tag.DELIVERY_FAILURE_REASON: 1,
    Tag.MORE_MESSAGES_TO_SEND: 1,
}
_TLV_MAX_LENGTH = {Tag.RECEIPTED_MESSAGE_ID: 65, Tag.ADDITIONAL_STATUS_INFO_TEXT: 256}


class MessageState(IntEnum):
    """message_state TLV values, SMPP 3.4 section 5.2.28."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


# --- esm_class (section 5.2.12) ----------------------------------------------------------------

ESM_CLASS_MESSAGE_TYPE_MASK = 0x3C  # bits 5..2
ESM_CLASS_DELIVERY_RECEIPT = 0x04  # SMSC delivery receipt (deliver_sm)
ESM_CLASS_UDHI = 0x40  # short_message starts with a User Data Header
ESM_CLASS_REPLY_PATH = 0x80
ESM_CLASS_FORWARD_MODE = 0x02  # transaction/forward mode, as opposed to store and forward


def is_delivery_receipt(esm_class: int) -> bool:
    return esm_class & ESM_CLASS_MESSAGE_TYPE_MASK == ESM_CLASS_DELIVERY_RECEIPT


# --- Field codecs ------------------------------------------------------------------------------

_CSTR, _U8, _SM = 0, 1, 2


def _encode_cstr(value: str, size: int, name: str) -> bytes:
    """C-Octet String of at most `size` octets including the NUL (section 3.1)."""
    try:
        raw = value.encode("latin-1")
    except (UnicodeEncodeError, AttributeError) as exc:
        raise SmppEncodeError(f"{name} must be a latin-1 string, got {value!r}") from exc
    if len(raw) >= size:
        raise SmppEncodeError(f"{name} is {len(raw)} octets, at most {size - 1} allowed")
    if b"\0" in raw:
        raise SmppEncodeError(f"{name} contains a NUL octet")
    return raw + b"\0"


def _encode_u8(value: int, name: str) -> int:
    if not isinstance(value, int):
        raise SmppEncodeError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value <= 0xFF:
        raise SmppEncodeError(f"{name} must be 0..255, got {value}")
    return value


def _encode_tlvs(tlvs: dict[int, bytes]) -> bytes:
    out = bytearray()
    for tag, value in tlvs.items():
        if not 0 <= tag <= 0xFFFF:
            raise SmppEncodeError(f"TLV tag 0x{tag:X} out of range")
        if not isinstance(value, bytes | bytearray):
            raise SmppEncodeError(
                f"TLV 0x{tag:04X} value must be bytes, got {type(value).__name__}"
            )
        if len(value) > 0xFFFF:
            raise SmppEncodeError(f"TLV 0x{tag:04X} value longer than 65535 octets")
        out += _TLV_HEADER.pack(tag, len(value))
        out += value
    return bytes(out)


def _decode_tlvs(data: bytes, pos: int, end: int, command_id: int, seq: int) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    while pos < end:
        if end - pos < 4:
            raise SmppDecodeError(
                f"truncated TLV header at offset {pos}",
                status=ESME_RINVOPTPARSTREAM,
                command_id=command_id,
                sequence_number=seq,
            )
        tag, length = _TLV_HEADER.unpack_from(data, pos)
        pos += 4
        if end - pos < length:
            raise SmppDecodeError(
                f"TLV 0x{tag:04X} claims {length} octets, {end - pos} left",
                status=ESME_RINVOPTPARSTREAM,
                command_id=command_id,
                sequence_number=seq,
            )
        fixed = _TLV_FIXED_LENGTH.get(tag)
        if (fixed is not None and length != fixed) or length > _TLV_MAX_LENGTH.get(tag, 0xFFFF):
            raise SmppDecodeError(
                f"TLV 0x{tag:04X} has invalid length {length}",
                status=ESME_RINVPARLEN,
                command_id=command_id,
                sequence_number=seq,
            )
        tlvs[tag] = data[pos : pos + length]
        pos += length
    return tlvs


# --- PDUs --------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Pdu:
    """Header fields and TLVs common to every PDU; subclasses add the mandatory body fields.

    `tlvs` maps tag to raw value, in the order they are encoded. The `Tag` enum names them.
    """

    command_id: ClassVar[int] = 0
    # (attribute, kind, max octets incl. NUL for C-Octet Strings) in wire order
    _body: ClassVar[tuple[tuple[str, int, int], ...]] = ()
    response_class: ClassVar[type[Pdu] | None] = None

    sequence_number: int = 0
    command_status: int = ESME_ROK
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    @property
    def name(self) -> str:
        return command_name(self.command_id)

    def response(self, command_status: int = ESME_ROK, **fields: object) -> Pdu:
        """The matching response PDU with this request's sequence number."""
        cls = self.response_class
        if cls is None:
            raise SmppEncodeError(f"{self.name} has no response PDU")
        return cls(sequence_number=self.sequence_number, command_status=command_status, **fields)

    # The encoder is written out rather than table-driven where it is hot (submit_sm and its
    # response): the benchmark's throughput is mostly codec time.
    def encode(self) -> bytes:
        body = self._encode_body()
        seq = self.sequence_number
        status = self.command_status
        if not 0 <= seq <= 0xFFFFFFFF or not 0 <= status <= 0xFFFFFFFF:
            raise SmppEncodeError(f"sequence_number {seq} or command_status {status} out of range")
        return HEADER.pack(HEADER_LENGTH + len(body), self.command_id, status, seq) + body

    def _encode_body(self) -> bytes:
        if self.command_status != ESME_ROK and self.command_id & RESPONSE_BIT:
            # SMPP 3.4 4.1.2/4.4.2: an error response carries no body
            return b""
        out = bytearray()
        for name, kind, size in self._body:
            value = getattr(self, name)
            if kind == _CSTR:
                out += _encode_cstr(value, size, name)
            elif kind == _U8:
                out.append(_encode_u8(value, name))
            else:
                if not isinstance(value, bytes | bytearray):
                    raise SmppEncodeError(f"{name} must be bytes, got {type(value).__name__}")
                if len(value) > MAX_SHORT_MESSAGE:
                    raise SmppEncodeError(
                        f"short_message is {len(value)} octets, at most {MAX_SHORT_MESSAGE} "
                        "allowed (use the message_payload TLV for more)"
                    )
                out.append(len(value))
                out += value
        if self.tlvs:
            out += _encode_tlvs(self.tlvs)
        return bytes(out)

    @classmethod
    def _decode(cls, data: bytes, status: int, seq: int) -> Pdu:
        end = len(data)
        pos = HEADER_LENGTH
        values: dict[str, object] = {}
        if pos == end and (cls.command_id & RESPONSE_BIT):
            # error responses (and some SMSCs' OK responses) omit the body
            return cls(sequence_number=seq, command_status=status)
        for name, kind, size in cls._body:
            if kind == _CSTR:
                nul = data.find(b"\0", pos, pos + size)
                if nul < 0:
                    raise SmppDecodeError(
                        f"{command_name(cls.command_id)}: {name} is not a "
                        f"NUL-terminated string of at most {size} octets",
                        status=ESME_RINVCMDLEN,
                        command_id=cls.command_id,
                        sequence_number=seq,
                    )
                values[name] = data[pos:nul].decode("latin-1")
                pos = nul + 1
            elif kind == _U8:
                if pos >= end:
                    raise SmppDecodeError(
                        f"{command_name(cls.command_id)}: body ends before {name}",
                        status=ESME_RINVCMDLEN,
                        command_id=cls.command_id,
                        sequence_number=seq,
                    )
                values[name] = data[pos]
                pos += 1
            else:
                if pos >= end:
                    raise SmppDecodeError(
                        f"{command_name(cls.command_id)}: body ends before sm_length",
                        status=ESME_RINVCMDLEN,
                        command_id=cls.command_id,
                        sequence_number=seq,
                    )
                length = data[pos]
                pos += 1
                if length > MAX_SHORT_MESSAGE or end - pos < length:
                    raise SmppDecodeError(
                        f"{command_name(cls.command_id)}: sm_length {length} is invalid "
                        f"({end - pos} octets left)",
                        status=ESME_RINVMSGLEN,
                        command_id=cls.command_id,
                        sequence_number=seq,
                    )
                values[name] = data[pos : pos + length]
                pos += length
        tlvs = _decode_tlvs(data, pos, end, cls.command_id, seq) if pos < end else {}
        return cls(sequence_number=seq, command_status=status, tlvs=tlvs, **values)


class _TlvAccess:
    """Typed accessors for the TLVs the OTA path reads (lengths were checked by the decoder)."""

    __slots__ = ()
    tlvs: dict[int, bytes]

    @property
    def receipted_message_id(self) -> str | None:
        raw = self.tlvs.get(Tag.RECEIPTED_MESSAGE_ID)
        return None if raw is None else raw.rstrip(b"\0").decode("latin-1")

    @property
    def message_state(self) -> int | None:
        raw = self.tlvs.get(Tag.MESSAGE_STATE)
        return None if raw is None else raw[0]

    @property
    def network_error_code(self) -> tuple[int, int] | None:
        """(network type, error code): type 1 ANSI-136, 2 IS-95, 3 GSM, ... (section 5.3.2.31)."""
        raw = self.tlvs.get(Tag.NETWORK_ERROR_CODE)
        return None if raw is None else (raw[0], int.from_bytes(raw[1:3], "big"))

    @property
    def message_payload(self) -> bytes | None:
        return self.tlvs.get(Tag.MESSAGE_PAYLOAD)

    @property
    def sar(self) -> tuple[int, int, int] | None:
        """(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum) when all three are present."""
        ref = self.tlvs.get(Tag.SAR_MSG_REF_NUM)
        total = self.tlvs.get(Tag.SAR_TOTAL_SEGMENTS)
        seqnum = self.tlvs.get(Tag.SAR_SEGMENT_SEQNUM)
        if ref is None or total is None or seqnum is None:
            return None
        return int.from_bytes(ref, "big"), total[0], seqnum[0]


def receipt_tlvs(
    message_id: str, state: int, network_error: tuple[int, int] | None = None
) -> dict[int, bytes]:
    """The TLVs an SMSC puts on a delivery receipt deliver_sm."""
    tlvs = {
        Tag.RECEIPTED_MESSAGE_ID: _encode_cstr(message_id, 65, "receipted_message_id"),
        Tag.MESSAGE_STATE: bytes([state]),
    }
    if network_error is not None:
        tlvs[Tag.NETWORK_ERROR_CODE] = bytes([network_error[0]]) + network_error[1].to_bytes(
            2, "big"
        )
    return tlvs


# bind_* (section 4.1)
_BIND_BODY = (
    ("system_id", _CSTR, 16),
    ("password", _CSTR, 9),
    ("system_type", _CSTR, 13),
    ("interface_version", _U8, 0),
    ("addr_ton", _U8, 0),
    ("addr_npi", _U8, 0),
    ("address_range", _CSTR, 41),
)


@dataclass(slots=True, kw_only=True)
class _BindResp(Pdu):
    _body: ClassVar = (("system_id", _CSTR, 16),)
    system_id: str = ""

    @property
    def sc_interface_version(self) -> int | None:
        raw = self.tlvs.get(Tag.SC_INTERFACE_VERSION)
        return None if raw is None else raw[0]


@dataclass(slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    command_id: ClassVar[int] = int(CommandId.BIND_TRANSMITTER_RESP)


@dataclass(slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    command_id: ClassVar[int] = int(CommandId.BIND_RECEIVER_RESP)


@dataclass(slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    command_id: ClassVar[int] = int(CommandId.BIND_TRANSCEIVER_RESP)


@dataclass(slots=True, kw_only=True)
class _Bind(Pdu):
    _body: ClassVar = _BIND_BODY
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(slots=True, kw_only=True)
class BindTransmitter(_Bind):
    command_id: ClassVar[int] = int(CommandId.BIND_TRANSMITTER)
    response_class: ClassVar = BindTransmitterResp


@dataclass(slots=True, kw_only=True)
class BindReceiver(_Bind):
    command_id: ClassVar[int] = int(CommandId.BIND_RECEIVER)
    response_class: ClassVar = BindReceiverResp


@dataclass(slots=True, kw_only=True)
class BindTransceiver(_Bind):
    command_id: ClassVar[int] = int(CommandId.BIND_TRANSCEIVER)
    response_class: ClassVar = BindTransceiverResp


# Header-only PDUs (sections 4.2, 4.3, 4.11)


@dataclass(slots=True, kw_only=True)
class UnbindResp(Pdu):
    command_id: ClassVar[int] = int(CommandId.UNBIND_RESP)


@dataclass(slots=True, kw_only=True)
class Unbind(Pdu):
    command_id: ClassVar[int] = int(CommandId.UNBIND)
    response_class: ClassVar = UnbindResp


@dataclass(slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[int] = int(CommandId.ENQUIRE_LINK_RESP)


@dataclass(slots=True, kw_only=True)
class EnquireLink(Pdu):
    command_id: ClassVar[int] = int(CommandId.ENQUIRE_LINK)
    response_class: ClassVar = EnquireLinkResp


@dataclass(slots=True, kw_only=True)
class GenericNack(Pdu):
    command_id: ClassVar[int] = int(CommandId.GENERIC_NACK)

    def _encode_body(self) -> bytes:
        return b""


# submit_sm / deliver_sm (sections 4.4 and 4.6): the same mandatory fields
_SM_BODY = (
    ("service_type", _CSTR, 6),
    ("source_addr_ton", _U8, 0),
    ("source_addr_npi", _U8, 0),
    ("source_addr", _CSTR, 21),
    ("dest_addr_ton", _U8, 0),
    ("dest_addr_npi", _U8, 0),
    ("destination_addr", _CSTR, 21),
    ("esm_class", _U8, 0),
    ("protocol_id", _U8, 0),
    ("priority_flag", _U8, 0),
    ("schedule_delivery_time", _CSTR, 17),
    ("validity_period", _CSTR, 17),
    ("registered_delivery", _U8, 0),
    ("replace_if_present_flag", _U8, 0),
    ("data_coding", _U8, 0),
    ("sm_default_msg_id", _U8, 0),
    ("short_message", _SM, 0),
)
_SM_FIXED = struct.Struct(">BBBBBB")  # esm_class .. sm_default_msg_id around the two times


@dataclass(slots=True, kw_only=True)
class _MessageId(Pdu):
    _body: ClassVar = (("message_id", _CSTR, 65),)
    message_id: str = ""


@dataclass(slots=True, kw_only=True)
class SubmitSmResp(_MessageId):
    command_id: ClassVar[int] = int(CommandId.SUBMIT_SM_RESP)


@dataclass(slots=True, kw_only=True)
class DeliverSmResp(_MessageId):
    command_id: ClassVar[int] = int(CommandId.DELIVER_SM_RESP)


@dataclass(slots=True, kw_only=True)
class DataSmResp(_MessageId):
    command_id: ClassVar[int] = int(CommandId.DATA_SM_RESP)


@dataclass(slots=True, kw_only=True)
class _ShortMessage(_TlvAccess, Pdu):
    _body: ClassVar = _SM_BODY
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""

    @property
    def payload(self) -> bytes:
        """The user data: message_payload when present (then sm_length is 0), else short_message."""
        payload = self.tlvs.get(Tag.MESSAGE_PAYLOAD)
        return self.short_message if payload is None else payload

    @property
    def is_delivery_receipt(self) -> bool:
        return is_delivery_receipt(self.esm_class)

    def _encode_body(self) -> bytes:
        for name in ("schedule_delivery_time", "validity_period"):
            value = getattr(self, name)
            if len(value) not in (0, 16):
                # section 7.1: absolute "YYMMDDhhmmsstnnp" or relative "...R", or NULL
                raise SmppEncodeError(f"{name} must be empty or 16 characters, got {value!r}")
        sm = self.short_message
        if not isinstance(sm, bytes | bytearray):
            raise SmppEncodeError(f"short_message must be bytes, got {type(sm).__name__}")
        if len(sm) > MAX_SHORT_MESSAGE:
            raise SmppEncodeError(
                f"short_message is {len(sm)} octets, at most {MAX_SHORT_MESSAGE} allowed "
                "(use the message_payload TLV for more)"
            )
        try:
            fixed = _SM_FIXED.pack(
                self.esm_class,
                self.protocol_id,
                self.priority_flag,
                0,
                0,
                0,
            )
            tail = _SM_FIXED.pack(
                self.registered_delivery,
                self.replace_if_present_flag,
                self.data_coding,
                self.sm_default_msg_id,
                len(sm),
                0,
            )
            ton = bytes(
                (self.source_addr_ton, self.source_addr_npi, self.dest_addr_ton, self.dest_addr_npi)
            )
        except (struct.error, ValueError, TypeError) as exc:
            raise SmppEncodeError(f"{self.name}: an integer field is not 0..255 ({exc})") from exc
        body = b"".join(
            (
                _encode_cstr(self.service_type, 6, "service_type"),
                ton[0:2],
                _encode_cstr(self.source_addr, 21, "source_addr"),
                ton[2:4],
                _encode_cstr(self.destination_addr, 21, "destination_addr"),
                fixed[0:3],
                _encode_cstr(self.schedule_delivery_time, 17, "schedule_delivery_time"),
                _encode_cstr(self.validity_period, 17, "validity_period"),
                tail[0:5],
                sm,
            )
        )
        if self.tlvs:
            body += _encode_tlvs(self.tlvs)
        return body


@dataclass(slots=True, kw_only=True)
class SubmitSm(_ShortMessage):
    command_id: ClassVar[int] = int(CommandId.SUBMIT_SM)
    response_class: ClassVar = SubmitSmResp


@dataclass(slots=True, kw_only=True)
class DeliverSm(_ShortMessage):
    command_id: ClassVar[int] = int(CommandId.DELIVER_SM)
    response_class: ClassVar = DeliverSmResp


@dataclass(slots=True, kw_only=True)
class DataSm(_TlvAccess, Pdu):
    """data_sm (section 4.7): the user data travels in the message_payload TLV."""

    command_id: ClassVar[int] = int(CommandId.DATA_SM)
    response_class: ClassVar = DataSmResp
    _body: ClassVar = (
        ("service_type", _CSTR, 6),
        ("source_addr_ton", _U8, 0),
        ("source_addr_npi", _U8, 0),
        ("source_addr", _CSTR, 65),
        ("dest_addr_ton", _U8, 0),
        ("dest_addr_npi", _U8, 0),
        ("destination_addr", _CSTR, 65),
        ("esm_class", _U8, 0),
        ("registered_delivery", _U8, 0),
        ("data_coding", _U8, 0),
    )
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0

    protocol_id: ClassVar[int] = 0  # not in data_sm; lets receivers treat it like deliver_sm

    @property
    def payload(self) -> bytes:
        return self.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")

    @property
    def short_message(self) -> bytes:
        return self.payload

    @property
    def is_delivery_receipt(self) -> bool:
        return is_delivery_receipt(self.esm_class)


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        GenericNack,
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
    )
}


def decode_pdu(data: bytes | bytearray | memoryview) -> Pdu:
    """Decode exactly one whole PDU (header included). Raises `SmppDecodeError` on anything else."""
    if not isinstance(data, bytes):
        data = bytes(data)
    if len(data) < HEADER_LENGTH:
        raise SmppDecodeError(f"{len(data)} octets is shorter than the 16-octet PDU header")
    length, command_id, status, seq = HEADER.unpack_from(data)
    if length != len(data):
        raise SmppDecodeError(
            f"command_length {length} does not match the {len(data)} octets received",
            status=ESME_RINVCMDLEN,
            command_id=command_id,
            sequence_number=seq,
        )
    cls = PDU_CLASSES.get(command_id)
    if cls is None:
        raise SmppDecodeError(
            f"unknown or unsupported command_id 0x{command_id:08X}",
            status=ESME_RINVCMDID,
            command_id=command_id,
            sequence_number=seq,
        )
    try:
        return cls._decode(data, status, seq)
    except SmppDecodeError:
        raise
    except Exception as exc:  # a decoder bug must still surface as the documented family
        raise SmppDecodeError(
            f"{command_name(command_id)}: malformed body ({exc})",
            status=ESME_RSYSERR,
            command_id=command_id,
            sequence_number=seq,
        ) from exc


def encode_pdu(pdu: Pdu) -> bytes:
    return pdu.encode()


class PduFramer:
    """Cuts whole PDUs out of a TCP byte stream.

    Feed it whatever `recv` returned; it returns the complete PDUs (header included) found so far
    and keeps the remainder. A command_length below 16 or above `max_length` means the stream is
    out of step and cannot be resynchronised: `SmppFramingError`, and the connection must go.
    """

    __slots__ = ("_buffer", "max_length")

    def __init__(self, max_length: int = MAX_PDU_LENGTH) -> None:
        self._buffer = bytearray()
        self.max_length = max_length

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        size = len(buffer)
        pos = 0
        frames = []
        while size - pos >= 4:
            length = int.from_bytes(buffer[pos : pos + 4], "big")
            if length < HEADER_LENGTH or length > self.max_length:
                raise SmppFramingError(
                    f"command_length {length} is outside {HEADER_LENGTH}..{self.max_length}: "
                    "the stream is not SMPP or is out of step",
                    status=ESME_RINVCMDLEN,
                )
            if size - pos < length:
                break
            frames.append(bytes(buffer[pos : pos + length]))
            pos += length
        if pos:
            del buffer[:pos]
        return frames


# --- SMPP time format (section 7.1.1) ----------------------------------------------------------


def relative_time(seconds: int) -> str:
    """A relative validity_period / schedule_delivery_time: 'YYMMDDhhmmss000R'.

    Only days, hours, minutes and seconds are used (a year or a month has no fixed length).
    """
    if seconds < 0:
        raise SmppEncodeError("a relative time cannot be negative")
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days > 99:
        raise SmppEncodeError("a relative time must stay under 100 days")
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"
