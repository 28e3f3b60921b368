"""SMS user data for OTA: UDH with the CPI/RPI elements, concatenation, reassembly.

3GPP TS 23.040 9.2.3.24 (UDH, IEI 00 and 08 concatenation) and 3GPP TS 31.115 / ETSI TS 102 225
(IEI 70 command packet identifier, IEI 71 response packet identifier). A whole secured packet is
secured first and then split; the CPI goes in the first segment only, after the concatenation
element (receivers here accept either order).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

from .errors import FormatError

CONCAT_8 = 0x00
CONCAT_16 = 0x08
CPI = 0x70  # command packet identifier (TS 31.115 4.2)
RPI = 0x71  # response packet identifier
MAX_USER_DATA = 140  # octets of TP-UD (TS 23.040 9.2.3.16)
MAX_SINGLE_PACKET = MAX_USER_DATA - 3  # 137 after `02 70 00`
MAX_SEGMENTS = 255


@dataclass(frozen=True)
class Concatenation:
    """The concatenation element of one segment."""

    reference: int
    total: int
    sequence: int
    ref16: bool = False


@dataclass(frozen=True)
class UserData:
    """TP-UD split into its header elements and the payload after the header."""

    ies: Mapping[int, bytes]
    payload: bytes
    concatenation: Concatenation | None = None
    order: tuple[int, ...] = field(default=(), compare=False)  # IEIs as they came


def parse_user_data(user_data: bytes, *, udhi: bool = True) -> UserData:
    """Parse TP-UD with a UDH (TS 23.040 9.2.3.24); every element must fit the header."""
    if not udhi:
        return UserData({}, user_data)
    if not user_data:
        raise FormatError("user data is empty but the UDHI says it starts with a header")
    udhl = user_data[0]
    if udhl + 1 > len(user_data):
        raise FormatError(f"UDHL {udhl} is longer than the {len(user_data) - 1} octets that follow")
    header = user_data[1 : 1 + udhl]
    ies: dict[int, bytes] = {}
    order: list[int] = []
    pos = 0
    while pos < len(header):
        if pos + 2 > len(header):
            raise FormatError("UDH ends inside an information element header")
        iei, length = header[pos], header[pos + 1]
        pos += 2
        if pos + length > len(header):
            raise FormatError(
                f"UDH element {iei:02X} says {length} octets, only {len(header) - pos} remain"
            )
        ies[iei] = header[pos : pos + length]  # a repeated element: the last one counts
        order.append(iei)
        pos += length
    concat = None
    if CONCAT_8 in ies or CONCAT_16 in ies:
        concat = _concatenation(ies)
    for iei in (CPI, RPI):
        if ies.get(iei):
            raise FormatError(f"UDH element {iei:02X} must be empty, has {len(ies[iei])} octets")
    return UserData(ies, user_data[1 + udhl :], concat, tuple(order))


def _concatenation(ies: Mapping[int, bytes]) -> Concatenation:
    if CONCAT_16 in ies:
        value = ies[CONCAT_16]
        if len(value) != 4:
            raise FormatError("16-bit concatenation element (IEI 08) must be 4 octets")
        ref, total, seq, ref16 = int.from_bytes(value[:2], "big"), value[2], value[3], True
    else:
        value = ies[CONCAT_8]
        if len(value) != 3:
            raise FormatError("8-bit concatenation element (IEI 00) must be 3 octets")
        ref, total, seq, ref16 = value[0], value[1], value[2], False
    if total == 0 or not 1 <= seq <= total:
        raise FormatError(f"concatenation says segment {seq} of {total}")
    return Concatenation(ref, total, seq, ref16)


def fits_single_sms(packet_length: int) -> bool:
    """Whether a secured packet of this length goes in one SMS (at most 137 octets)."""
    return packet_length <= MAX_SINGLE_PACKET


def _capacities(ref16: bool) -> tuple[int, int]:
    # First segment: UDHL + concat element + `70 00`; later ones: UDHL + concat element.
    concat = 6 if ref16 else 5
    return MAX_USER_DATA - 1 - concat - 2, MAX_USER_DATA - 1 - concat


def sms_count(packet_length: int, *, ref16: bool = False) -> int:
    """Number of SMS a secured packet of this length needs (1 if it fits a single SMS)."""
    if packet_length <= MAX_SINGLE_PACKET:
        return 1
    first, later = _capacities(ref16)
    return 1 + -(-(packet_length - first) // later)


def command_user_data(packet: bytes, *, iei: int = CPI) -> bytes:
    """TP-UD of a single-SMS packet: `02 70 00` (or `02 71 00`) and the packet."""
    if len(packet) > MAX_SINGLE_PACKET:
        raise FormatError(
            f"secured packet of {len(packet)} octets exceeds the {MAX_SINGLE_PACKET} of one SMS; "
            "use segment_packet()"
        )
    return bytes((0x02, iei, 0x00)) + packet


def segment_packet(
    packet: bytes, *, reference: int = 0, ref16: bool = False, iei: int = CPI
) -> list[bytes]:
    """Split a secured packet into the TP-UD of each SMS (one element if it fits one SMS).

    Segment 1 carries `07 00 03 ref n 1 70 00` (132 octets of packet), later ones
    `05 00 03 ref n i` (134); with `ref16` the element is `08 04 refH refL n i`.
    """
    if len(packet) <= MAX_SINGLE_PACKET:
        return [command_user_data(packet, iei=iei)]
    if not 0 <= reference <= (0xFFFF if ref16 else 0xFF):
        raise FormatError(f"concatenation reference {reference} out of range")
    first, later = _capacities(ref16)
    total = sms_count(len(packet), ref16=ref16)
    if total > MAX_SEGMENTS:
        raise FormatError(f"secured packet of {len(packet)} octets needs {total} SMS, max 255")
    ref = reference.to_bytes(2, "big") if ref16 else bytes((reference,))
    concat_head = bytes((CONCAT_16, 4)) + ref if ref16 else bytes((CONCAT_8, 3)) + ref
    out = []
    pos = 0
    for seq in range(1, total + 1):
        element = concat_head + bytes((total, seq))
        if seq == 1:
            header = element + bytes((iei, 0))
            size = first
        else:
            header = element
            size = later
        out.append(bytes((len(header),)) + header + packet[pos : pos + size])
        pos += size
    return out


@dataclass(frozen=True)
class Reassembled:
    """A whole packet rebuilt from one or more SMS."""

    sender: Hashable
    packet: bytes  # the payload after each UDH, joined
    ies: Mapping[int, bytes]  # elements of the first segment (70 or 71 tells what it is)
    segments: int


@dataclass
class _Partial:
    total: int
    created: float
    parts: dict[int, bytes] = field(default_factory=dict)
    ies: Mapping[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Joins concatenated SMS per (sender, reference): out of order, duplicated or missing.

    At most `max_sets` incomplete messages are kept (the oldest is dropped when a new one
    arrives) and `expire()` drops those older than `max_age` seconds; `add()` expires too.
    """

    def __init__(
        self,
        *,
        max_sets: int = 1024,
        max_age: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_sets = max_sets
        self.max_age = max_age
        self._clock = clock
        self._sets: OrderedDict[tuple[Hashable, bool, int], _Partial] = OrderedDict()
        self.dropped = 0  # incomplete messages given up (expired or evicted)

    def __len__(self) -> int:
        return len(self._sets)

    def add(self, user_data: bytes, sender: Hashable = "") -> Reassembled | None:
        """Feed one SMS's TP-UD; returns the whole packet when its last missing part arrives."""
        ud = parse_user_data(user_data)
        concat = ud.concatenation
        if concat is None or concat.total == 1:
            return Reassembled(sender, ud.payload, ud.ies, 1)
        now = self._clock()
        self.expire(now)
        key = (sender, concat.ref16, concat.reference)
        partial = self._sets.get(key)
        if partial is not None and partial.total != concat.total:
            del self._sets[key]  # the reference was reused for another message
            self.dropped += 1
            partial = None
        if partial is None:
            while len(self._sets) >= self.max_sets:
                self._sets.popitem(last=False)
                self.dropped += 1
            partial = self._sets[key] = _Partial(concat.total, now)
        if concat.sequence in partial.parts:
            return None  # duplicate: the first copy stands
        partial.parts[concat.sequence] = ud.payload
        if concat.sequence == 1:
            partial.ies = {k: v for k, v in ud.ies.items() if k not in (CONCAT_8, CONCAT_16)}
        if len(partial.parts) < partial.total:
            return None
        del self._sets[key]
        packet = b"".join(partial.parts[i] for i in range(1, partial.total + 1))
        return Reassembled(sender, packet, partial.ies, partial.total)

    def expire(self, now: float | None = None) -> list[tuple[Hashable, int]]:
        """Drop incomplete messages older than `max_age`; returns their (sender, reference)."""
        if now is None:
            now = self._clock()
        gone = []
        while self._sets:
            key, partial = next(iter(self._sets.items()))
            if now - partial.created < self.max_age:
                break
            del self._sets[key]
            self.dropped += 1
            gone.append((key[0], key[2]))
        return gone
