"""WAP Push over SMS for the Server-Alerted Notification (package #0): pure, no Django.

The notification (``san.encode_san``) travels as the body of a WSP Push PDU (WAP-230 8.2.4)
carried in WDP over SMS (WAP-259): 8-bit SMS with a user data header holding the application
port addressing IE (``05 04 <dst port> <src port>``, 16-bit ports, TS 23.040 9.2.3.24.4) and,
when the PDU does not fit one SMS, the concatenation IE (``00 03 ref total seq``).

WSP Push PDU::

    tid | 06 (Push) | headers-length (uintvar) | content type | headers | body
    content type 0x4E | 0x80 = CE   application/vnd.syncml.ds.notification
    AF 85                           X-WAP-Application-ID (0x2F) = 0x05 x-wap-application:push.syncml

Portal side: ``san_sms_user_data(san)`` gives the TP-UD of each SMS to submit (SMPP submit_sm
with ``esm_class`` 0x40 (UDHI), ``protocol_id`` 0x00, ``data_coding`` 0x04). Handset side:
``WapPushAssembler.add(user_data, originator)`` returns the `WapPush` once all parts are in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SyncMLParseError
from .san import SAN_WAP_APPLICATION_ID, SAN_WDP_PORT, SAN_WSP_CONTENT_TYPE

WDP_SOURCE_PORT = 9200  # WAP connectionless session service, the usual source port
WSP_PUSH = 0x06
WSP_HEADER_APPLICATION_ID = 0x2F
IEI_CONCAT_8 = 0x00
IEI_PORTS_16 = 0x05
MAX_USER_DATA = 140
SMS_ESM_CLASS = 0x40  # UDHI
SMS_PROTOCOL_ID = 0x00
SMS_DATA_CODING = 0x04  # 8-bit data, no message class
MAX_PARTS = 16


@dataclass
class WapPush:
    content_type: int | str
    body: bytes
    application_id: int | str | None = None
    tid: int = 0
    dst_port: int = SAN_WDP_PORT
    src_port: int = WDP_SOURCE_PORT
    headers: bytes = b""

    @property
    def is_san(self) -> bool:
        return self.content_type in (SAN_WSP_CONTENT_TYPE, "application/vnd.syncml.ds.notification")


def _uintvar(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _read_uintvar(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    for _ in range(5):
        if i >= len(data):
            raise SyncMLParseError("WSP: truncated uintvar")
        octet = data[i]
        i += 1
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            return value, i
    raise SyncMLParseError("WSP: uintvar longer than 5 octets")


def wsp_push_pdu(
    body: bytes,
    *,
    content_type: int = SAN_WSP_CONTENT_TYPE,
    application_id: int | None = SAN_WAP_APPLICATION_ID,
    tid: int = 0,
) -> bytes:
    """A connectionless WSP Push PDU with a well-known content type and application id."""
    if not 0 <= content_type <= 0x7F:
        raise ValueError("content type must be a WSP short integer (0..127)")
    headers = bytes([0x80 | content_type])
    if application_id is not None:
        if not 0 <= application_id <= 0x7F:
            raise ValueError("application id must be a short integer (0..127)")
        headers += bytes([0x80 | WSP_HEADER_APPLICATION_ID, 0x80 | application_id])
    return bytes([tid & 0xFF, WSP_PUSH]) + _uintvar(len(headers)) + headers + body


def _text(data: bytes, i: int, end: int) -> tuple[str, int]:
    stop = data.find(b"\x00", i, end)
    if stop < 0:
        raise SyncMLParseError("WSP: unterminated text")
    return data[i:stop].decode("latin-1"), stop + 1


def parse_wsp_push(pdu: bytes) -> WapPush:
    """Read a connectionless WSP Push PDU; SyncMLParseError on anything malformed."""
    if len(pdu) < 3:
        raise SyncMLParseError("WSP: PDU too short")
    tid, kind = pdu[0], pdu[1]
    if kind != WSP_PUSH and kind != 0x07:  # 07: confirmed push
        raise SyncMLParseError(f"WSP: PDU type {kind:02X} is not Push")
    length, i = _read_uintvar(pdu, 2)
    end = i + length
    if end > len(pdu) or length == 0:
        raise SyncMLParseError("WSP: headers run past the PDU")
    headers = pdu[i:end]
    first = pdu[i]
    content_type: int | str
    if first >= 0x80:
        content_type, i = first & 0x7F, i + 1
    elif first < 0x20:  # value-length, then media (short integer or text) and parameters
        vlen, j = (pdu[i], i + 1) if first < 0x1F else _read_uintvar(pdu, i + 1)
        if j >= end:
            raise SyncMLParseError("WSP: truncated content type")
        if pdu[j] >= 0x80:
            content_type = pdu[j] & 0x7F
        else:
            content_type, _ = _text(pdu, j, end)
        i = j + vlen
    else:
        content_type, i = _text(pdu, i, end)
    app_id: int | str | None = None
    while i < end:
        name = pdu[i]
        i += 1
        if i >= end:
            break
        if name == 0x80 | WSP_HEADER_APPLICATION_ID:
            if pdu[i] >= 0x80:
                app_id, i = pdu[i] & 0x7F, i + 1
            elif pdu[i] < 0x20:  # a long integer
                n = pdu[i]
                app_id = int.from_bytes(pdu[i + 1 : i + 1 + n], "big")
                i += 1 + n
            else:
                app_id, i = _text(pdu, i, end)
        else:  # skip a header we do not need: short-integer, text or value-length
            value = pdu[i]
            if value >= 0x80:
                i += 1
            elif value < 0x1F:
                i += 1 + value
            elif value == 0x1F:
                vlen, i = _read_uintvar(pdu, i + 1)
                i += vlen
            else:
                _, i = _text(pdu, i, end)
    return WapPush(content_type, pdu[end:], app_id, tid, headers=headers)


def san_sms_user_data(
    san: bytes,
    *,
    reference: int = 0,
    dst_port: int = SAN_WDP_PORT,
    src_port: int = WDP_SOURCE_PORT,
) -> list[bytes]:
    """The TP-UD (UDH included) of each SMS carrying this notification as a WAP push.

    Submit each with ``esm_class`` 0x40, ``protocol_id`` 0x00 and ``data_coding`` 0x04
    (`SMS_ESM_CLASS`, `SMS_PROTOCOL_ID`, `SMS_DATA_CODING`).
    """
    return wap_push_user_data(wsp_push_pdu(san), reference=reference, dst_port=dst_port,
                              src_port=src_port)  # fmt: skip


def wap_push_user_data(
    pdu: bytes, *, reference: int = 0, dst_port: int = SAN_WDP_PORT, src_port: int = WDP_SOURCE_PORT
) -> list[bytes]:
    ports = bytes([IEI_PORTS_16, 4]) + dst_port.to_bytes(2, "big") + src_port.to_bytes(2, "big")
    single = bytes([len(ports)]) + ports
    if len(single) + len(pdu) <= MAX_USER_DATA:
        return [single + pdu]
    room = MAX_USER_DATA - (1 + len(ports) + 5)
    parts = [pdu[i : i + room] for i in range(0, len(pdu), room)]
    if len(parts) > MAX_PARTS:
        raise ValueError(f"WAP push of {len(pdu)} octets needs more than {MAX_PARTS} SMS")
    out = []
    for n, part in enumerate(parts, start=1):
        concat = bytes([IEI_CONCAT_8, 3, reference & 0xFF, len(parts), n])
        udh = ports + concat
        out.append(bytes([len(udh)]) + udh + part)
    return out


@dataclass
class _Part:
    ports: tuple[int, int] | None
    concat: tuple[int, int, int] | None  # reference, total, sequence
    payload: bytes


def parse_user_data(user_data: bytes) -> _Part:
    """Split a TP-UD with a user data header into port addressing, concatenation, payload."""
    if not user_data:
        raise SyncMLParseError("SMS: empty user data")
    udhl = user_data[0]
    if 1 + udhl > len(user_data):
        raise SyncMLParseError("SMS: user data header runs past the message")
    udh = user_data[1 : 1 + udhl]
    ports = concat = None
    i = 0
    while i < len(udh):
        if i + 2 > len(udh) or i + 2 + udh[i + 1] > len(udh):
            raise SyncMLParseError("SMS: truncated information element")
        iei, length = udh[i], udh[i + 1]
        value = udh[i + 2 : i + 2 + length]
        if iei == IEI_PORTS_16 and length == 4:
            ports = (int.from_bytes(value[:2], "big"), int.from_bytes(value[2:], "big"))
        elif iei == 0x04 and length == 2:  # 8-bit ports
            ports = (value[0], value[1])
        elif iei == IEI_CONCAT_8 and length == 3:
            concat = (value[0], value[1], value[2])
        elif iei == 0x08 and length == 4:  # 16-bit reference
            concat = (int.from_bytes(value[:2], "big"), value[2], value[3])
        i += 2 + length
    return _Part(ports, concat, user_data[1 + udhl :])


@dataclass
class WapPushAssembler:
    """Joins the SMS of WAP pushes per (originator, reference); duplicates are ignored."""

    max_sets: int = 32
    _sets: dict[tuple[str, int, int], dict[int, bytes]] = field(default_factory=dict)

    def add(self, user_data: bytes, originator: str = "") -> WapPush | None:
        """One SMS (TP-UD with UDH). The push once complete; None while parts are missing or
        when the SMS is not addressed to a WAP push port. SyncMLParseError if malformed."""
        part = parse_user_data(user_data)
        if part.ports is None:
            return None
        dst, src = part.ports
        if part.concat is None:
            pdu = part.payload
        else:
            ref, total, seq = part.concat
            if not 1 <= seq <= total or total > MAX_PARTS:
                raise SyncMLParseError("SMS: bad concatenation numbers")
            key = (originator, ref, total)
            parts = self._sets.setdefault(key, {})
            parts.setdefault(seq, part.payload)
            if len(self._sets) > self.max_sets:
                self._sets.pop(next(iter(self._sets)))
            if len(parts) < total:
                return None
            del self._sets[key]
            pdu = b"".join(parts[n] for n in range(1, total + 1))
        push = parse_wsp_push(pdu)
        push.dst_port, push.src_port = dst, src
        return push
