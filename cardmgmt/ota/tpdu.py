"""SMS-DELIVER and SMS-SUBMIT TPDUs (3GPP TS 23.040 9.2.2) and the SMS-PP download envelope.

The simulator side needs them: the handset hands the card an SMS-DELIVER in an
ENVELOPE(SMS-PP DOWNLOAD) (3GPP TS 31.111 7.1.1), and a card asked for its PoR by SMS-SUBMIT
sends one back to the TP-OA of the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from .errors import FormatError, UnsupportedError
from .tlv import ber_length, read_length

# GSM 7-bit default alphabet (TS 23.038 6.2.1), for alphanumeric addresses only.
GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_INDEX = {c: i for i, c in enumerate(GSM7)}
_BCD = "0123456789*#abc"  # TS 24.008 10.5.4.7 semi-octet digits; F is the filler
TON_INTERNATIONAL = 1
TON_ALPHANUMERIC = 5
PID_SIM_DATA_DOWNLOAD = 0x7F
DCS_8BIT_CLASS2 = 0xF6


@dataclass(frozen=True)
class Address:
    """TP-OA / TP-DA (TS 23.040 9.1.2.5): digits (or text when TON is alphanumeric)."""

    digits: str
    ton: int = TON_INTERNATIONAL
    npi: int = 1

    def encode(self) -> bytes:
        if not (0 <= self.ton <= 7 and 0 <= self.npi <= 15):
            raise FormatError(f"TON {self.ton} / NPI {self.npi} out of range")
        toa = 0x80 | (self.ton << 4) | self.npi
        if self.ton == TON_ALPHANUMERIC:
            septets = [_GSM7_INDEX.get(c) for c in self.digits]
            if None in septets:
                raise FormatError(f"address {self.digits!r} has characters outside GSM 7-bit")
            packed = pack_septets(septets)  # type: ignore[arg-type]
            semi = -(-len(self.digits) * 7 // 4)
            return bytes((semi, toa)) + packed
        try:
            nibbles = [_BCD.index(c) for c in self.digits.lower()]
        except ValueError:
            raise FormatError(
                f"address {self.digits!r} has a character that is no BCD digit"
            ) from None
        if len(nibbles) > 20:
            raise FormatError(f"address of {len(nibbles)} digits is longer than 20")
        if len(nibbles) % 2:
            nibbles.append(0xF)
        out = bytes(nibbles[i] | (nibbles[i + 1] << 4) for i in range(0, len(nibbles), 2))
        return bytes((len(self.digits), toa)) + out


def decode_address(data: bytes, pos: int) -> tuple[Address, int]:
    """The address at `pos` and the position after it."""
    if pos + 2 > len(data):
        raise FormatError("TPDU ends inside an address")
    semi, toa = data[pos], data[pos + 1]
    if semi > 20:
        raise FormatError(f"address length {semi} semi-octets is longer than 20")
    size = (semi + 1) // 2
    raw = data[pos + 2 : pos + 2 + size]
    if len(raw) != size:
        raise FormatError("TPDU ends inside an address")
    ton, npi = (toa >> 4) & 7, toa & 0x0F
    if ton == TON_ALPHANUMERIC:
        septets = unpack_septets(raw, semi * 4 // 7)
        text = "".join(GSM7[s] for s in septets)
        return Address(text, ton, npi), pos + 2 + size
    digits = []
    for i in range(semi):
        nibble = (raw[i // 2] >> (4 * (i % 2))) & 0x0F
        if nibble == 0xF:
            raise FormatError("filler F inside an address")
        digits.append(_BCD[nibble])
    return Address("".join(digits), ton, npi), pos + 2 + size


def pack_septets(septets: list[int]) -> bytes:
    """GSM 7-bit packing (TS 23.038 6.1.2.1.1)."""
    acc = bits = 0
    out = bytearray()
    for s in septets:
        acc |= s << bits
        bits += 7
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int) -> list[int]:
    """The first `count` septets packed in `data`."""
    value = int.from_bytes(data, "little")
    return [(value >> (7 * i)) & 0x7F for i in range(min(count, len(data) * 8 // 7))]


def encode_scts(when: datetime) -> bytes:
    """TP-SCTS (TS 23.040 9.2.3.11): semi-octet swapped YYMMDDhhmmss and quarter-hour zone."""
    if when.tzinfo is None:
        raise FormatError("SCTS needs a timezone-aware datetime")
    offset = when.utcoffset() or timedelta(0)
    quarters = int(offset.total_seconds() // 900)
    fields = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    out = bytes(((v % 10) << 4) | (v // 10) for v in fields)
    q = abs(quarters)
    tz = ((q % 10) << 4) | (q // 10) | (0x08 if quarters < 0 else 0)
    return out + bytes((tz,))


def decode_scts(raw: bytes) -> datetime:
    """TP-SCTS to a datetime (years 00-99 read as 2000-2099); FormatError if not a date."""
    if len(raw) != 7:
        raise FormatError("SCTS must be 7 octets")
    values = [(b & 0x0F) * 10 + (b >> 4) for b in raw[:6]]
    tz = raw[6]
    quarters = (tz & 0x07) * 10 + (tz >> 4)
    if quarters > 79 or any((b & 0x0F) > 9 or (b >> 4) > 9 for b in raw[:6]) or tz >> 4 > 9:
        raise FormatError(f"SCTS {raw.hex().upper()} is not a valid timestamp")
    if tz & 0x08:
        quarters = -quarters
    try:
        return datetime(
            2000 + values[0], values[1], values[2], values[3], values[4], values[5],
            tzinfo=timezone(timedelta(minutes=15 * quarters)),
        )  # fmt: skip
    except ValueError as exc:
        raise FormatError(f"SCTS {raw.hex().upper()} is not a valid timestamp: {exc}") from None


DEFAULT_SCTS = encode_scts(datetime(2000, 1, 1, tzinfo=UTC))


def dcs_uses_septets(dcs: int) -> bool:
    """Whether TP-UDL counts septets (GSM 7-bit default alphabet) for this TP-DCS (TS 23.038 4)."""
    group = dcs >> 4
    if group <= 0x7:  # general data coding / automatic deletion
        return not dcs & 0x20 and (dcs >> 2) & 0x03 in (0, 3)  # uncompressed, 7-bit (11: reserved)
    if group in (0xC, 0xD):
        return True
    if group == 0xE:
        return False  # UCS2
    if group == 0xF:
        return not dcs & 0x04
    return True  # reserved groups: assume the default alphabet


def _user_data(data: bytes, pos: int, dcs: int) -> tuple[bytes, int]:
    if pos >= len(data):
        raise FormatError("TPDU ends before TP-UDL")
    udl = data[pos]
    size = -(-udl * 7 // 8) if dcs_uses_septets(dcs) else udl
    if size > 140:
        raise FormatError(f"TP-UDL {udl} is more than 140 octets of user data")
    ud = data[pos + 1 :]
    if len(ud) != size:
        raise FormatError(f"TP-UDL {udl} calls for {size} octets of user data, {len(ud)} follow")
    return ud, udl


def _udl(user_data: bytes, dcs: int, septets: int | None) -> int:
    if len(user_data) > 140:
        raise FormatError(f"user data of {len(user_data)} octets exceeds 140")
    if dcs_uses_septets(dcs):
        if septets is None or -(-septets * 7 // 8) != len(user_data):
            raise UnsupportedError("7-bit user data needs its septet count (user_data_length)")
        return septets
    return len(user_data)


@dataclass(frozen=True)
class SmsDeliver:
    """SMS-DELIVER (TS 23.040 9.2.2.1): what the card receives inside the envelope."""

    originating_address: Address
    user_data: bytes
    pid: int = PID_SIM_DATA_DOWNLOAD
    dcs: int = DCS_8BIT_CLASS2
    scts: bytes = DEFAULT_SCTS  # raw TP-SCTS; decode_scts() reads it
    udhi: bool = True
    more_messages: bool = False  # TP-MMS is 0 when more messages wait
    reply_path: bool = False
    status_report_indication: bool = False
    user_data_length: int | None = None  # septets, for 7-bit DCS only

    def encode(self) -> bytes:
        first = (
            (0 if self.more_messages else 0x04)
            | (0x20 if self.status_report_indication else 0)
            | (0x40 if self.udhi else 0)
            | (0x80 if self.reply_path else 0)
        )
        if len(self.scts) != 7:
            raise FormatError("SCTS must be 7 octets")
        udl = _udl(self.user_data, self.dcs, self.user_data_length)
        return (
            bytes((first,))
            + self.originating_address.encode()
            + bytes((self.pid, self.dcs))
            + self.scts
            + bytes((udl,))
            + self.user_data
        )


def decode_sms_deliver(tpdu: bytes) -> SmsDeliver:
    """Decode an SMS-DELIVER; raises FormatError on anything else."""
    if not tpdu:
        raise FormatError("empty TPDU")
    first = tpdu[0]
    if first & 0x03 != 0x00:
        raise FormatError(f"TP-MTI {first & 3} is not SMS-DELIVER (00)")
    oa, pos = decode_address(tpdu, 1)
    if pos + 9 > len(tpdu):
        raise FormatError("SMS-DELIVER ends before its user data")
    pid, dcs = tpdu[pos], tpdu[pos + 1]
    scts = tpdu[pos + 2 : pos + 9]
    ud, udl = _user_data(tpdu, pos + 9, dcs)
    return SmsDeliver(
        oa, ud, pid, dcs, scts,
        udhi=bool(first & 0x40), more_messages=not first & 0x04, reply_path=bool(first & 0x80),
        status_report_indication=bool(first & 0x20),
        user_data_length=udl if dcs_uses_septets(dcs) else None,
    )  # fmt: skip


@dataclass(frozen=True)
class SmsSubmit:
    """SMS-SUBMIT (TS 23.040 9.2.2.2): how a card sends its PoR when SPI2 b6 is set."""

    destination_address: Address
    user_data: bytes
    message_reference: int = 0
    pid: int = 0x00
    dcs: int = DCS_8BIT_CLASS2
    udhi: bool = True
    validity_period: bytes = b""  # none, 1 octet (relative) or 7 (absolute/enhanced)
    vp_format: int = 0  # TP-VPF: 0 none, 2 relative, 1 enhanced, 3 absolute
    reject_duplicates: bool = False
    status_report_request: bool = False
    reply_path: bool = False
    user_data_length: int | None = None

    def encode(self) -> bytes:
        expected = {0: 0, 2: 1, 1: 7, 3: 7}.get(self.vp_format)
        if expected is None or len(self.validity_period) != expected:
            raise FormatError(f"TP-VPF {self.vp_format} needs a {expected}-octet validity period")
        if not 0 <= self.message_reference <= 255:
            raise FormatError("TP-MR must be one octet")
        first = (
            0x01
            | (0x04 if self.reject_duplicates else 0)
            | (self.vp_format << 3)
            | (0x20 if self.status_report_request else 0)
            | (0x40 if self.udhi else 0)
            | (0x80 if self.reply_path else 0)
        )
        udl = _udl(self.user_data, self.dcs, self.user_data_length)
        return (
            bytes((first, self.message_reference))
            + self.destination_address.encode()
            + bytes((self.pid, self.dcs))
            + self.validity_period
            + bytes((udl,))
            + self.user_data
        )


def decode_sms_submit(tpdu: bytes) -> SmsSubmit:
    """Decode an SMS-SUBMIT; raises FormatError on anything else."""
    if len(tpdu) < 2:
        raise FormatError("TPDU too short for SMS-SUBMIT")
    first = tpdu[0]
    if first & 0x03 != 0x01:
        raise FormatError(f"TP-MTI {first & 3} is not SMS-SUBMIT (01)")
    da, pos = decode_address(tpdu, 2)
    vpf = (first >> 3) & 0x03
    vp_len = {0: 0, 2: 1, 1: 7, 3: 7}[vpf]
    if pos + 2 + vp_len > len(tpdu):
        raise FormatError("SMS-SUBMIT ends before its user data")
    pid, dcs = tpdu[pos], tpdu[pos + 1]
    vp = tpdu[pos + 2 : pos + 2 + vp_len]
    ud, udl = _user_data(tpdu, pos + 2 + vp_len, dcs)
    return SmsSubmit(
        da, ud, tpdu[1], pid, dcs,
        udhi=bool(first & 0x40), validity_period=vp, vp_format=vpf,
        reject_duplicates=bool(first & 0x04), status_report_request=bool(first & 0x20),
        reply_path=bool(first & 0x80), user_data_length=udl if dcs_uses_septets(dcs) else None,
    )  # fmt: skip


def sms_pp_download_envelope(tpdu: bytes, service_centre: Address | None = None) -> bytes:
    """ENVELOPE(SMS-PP DOWNLOAD) data: `D1 L 82 02 83 81 [86 SCA] 8B L TPDU` (TS 31.111 7.1.1).

    Device identities: source network (83), destination UICC (81).
    """
    body = bytes((0x82, 0x02, 0x83, 0x81))
    if service_centre is not None:
        sca = service_centre.encode()[1:]  # TS 31.111 8.1: TON/NPI and digits, no length
        body += bytes((0x86,)) + ber_length(len(sca)) + sca
    body += bytes((0x8B,)) + ber_length(len(tpdu)) + tpdu
    return bytes((0xD1,)) + ber_length(len(body)) + body


def parse_sms_pp_download_envelope(envelope: bytes) -> bytes:
    """The SMS-DELIVER TPDU inside an ENVELOPE(SMS-PP DOWNLOAD)."""
    if not envelope or envelope[0] != 0xD1:
        raise FormatError("not an SMS-PP download envelope (tag D1)")
    length, pos = read_length(envelope, 1)
    if length is None or pos + length != len(envelope):
        raise FormatError("SMS-PP download envelope length does not match its content")
    while pos < len(envelope):
        tag = envelope[pos] & 0x7F  # comprehension-required bit b8 may be set
        length, pos = read_length(envelope, pos + 1)
        if length is None or pos + length > len(envelope):
            raise FormatError(f"SMS-PP download envelope: bad length for tag {tag:02X}")
        if tag == 0x0B:
            return envelope[pos : pos + length]
        pos += length
    raise FormatError("SMS-PP download envelope has no SMS TPDU (tag 0B/8B)")
