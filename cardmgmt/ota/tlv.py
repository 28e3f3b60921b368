"""BER-TLV helpers (ISO/IEC 8825-1 lengths, ETSI TS 101 220 tags) with hard bounds.

Every reader checks each length against the octets that are really there, so garbage gives a
FormatError instead of an IndexError or a huge allocation.
"""

from __future__ import annotations

from .errors import FormatError

MAX_TLVS = 4096  # more items than any real card structure holds


def ber_length(n: int) -> bytes:
    """Definite BER length: 1 octet below 128, else 81/82/83 and the value."""
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return b"\x82" + n.to_bytes(2, "big")
    if n <= 0xFFFFFF:
        return b"\x83" + n.to_bytes(3, "big")
    raise FormatError(f"length {n} is too big for a card TLV")


def tlv(tag: int, value: bytes) -> bytes:
    """One TLV; tags above FF are written on two or three octets (e.g. 9F70)."""
    size = 1 if tag <= 0xFF else 2 if tag <= 0xFFFF else 3
    return tag.to_bytes(size, "big") + ber_length(len(value)) + value


def lv(value: bytes) -> bytes:
    """A one-octet length and the value (GlobalPlatform command data fields)."""
    if len(value) > 0xFF:
        raise FormatError(f"value of {len(value)} octets does not fit a one-octet length")
    return bytes((len(value),)) + value


def read_tag(data: bytes, pos: int) -> tuple[int, int]:
    """The tag at `pos` (one octet, or more when b5-b1 of the first are all set)."""
    if pos >= len(data):
        raise FormatError("TLV ends before its tag")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        for _ in range(2):
            if pos >= len(data):
                raise FormatError("TLV ends inside a multi-octet tag")
            tag = (tag << 8) | data[pos]
            pos += 1
            if not tag & 0x80:
                break
        else:
            raise FormatError("tag longer than 3 octets")
    return tag, pos


def read_length(data: bytes, pos: int) -> tuple[int | None, int]:
    """The length at `pos`; None for the indefinite form (80)."""
    if pos >= len(data):
        raise FormatError("TLV ends before its length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    if first == 0x80:
        return None, pos
    count = first & 0x7F
    if count > 3 or pos + count > len(data):
        raise FormatError(f"bad BER length octet {first:02X}")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def parse_tlvs(data: bytes, *, what: str = "TLV data") -> list[tuple[int, bytes]]:
    """All definite-length TLVs in `data`, in order; every octet must belong to one."""
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(items) >= MAX_TLVS:
            raise FormatError(f"{what}: more than {MAX_TLVS} items")
        tag, pos = read_tag(data, pos)
        length, pos = read_length(data, pos)
        if length is None:
            raise FormatError(f"{what}: indefinite length not allowed for tag {tag:02X}")
        if pos + length > len(data):
            raise FormatError(
                f"{what}: tag {tag:02X} says {length} octets, only {len(data) - pos} remain"
            )
        items.append((tag, data[pos : pos + length]))
        pos += length
    return items


def parse_template(data: bytes, tags: tuple[int, ...], *, what: str) -> tuple[int, bytes]:
    """A single outer template (definite, or indefinite ending in 00 00) with one of `tags`."""
    tag, pos = read_tag(data, 0)
    if tag not in tags:
        raise FormatError(
            f"{what}: expected tag {'/'.join(f'{t:02X}' for t in tags)}, got {tag:02X}"
        )
    length, pos = read_length(data, pos)
    if length is None:
        if data[-2:] != b"\x00\x00" or len(data) < pos + 2:
            raise FormatError(f"{what}: indefinite length without end-of-contents 00 00")
        return tag, data[pos:-2]
    if pos + length != len(data):
        raise FormatError(f"{what}: length {length} but {len(data) - pos} octets follow")
    return tag, data[pos:]
