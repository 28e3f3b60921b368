"""Remote APDU formats (ETSI TS 102 226 5.1 compact, 5.2 expanded).

Compact: the secured data is the C-APDUs back to back. Expanded: a Command Scripting Template
`AA` (definite) or `AE` (indefinite) holding C-APDU TLVs (tag 22) and optional Immediate
Action (81), Error Action (82) and Script Chaining (83) TLVs; the answer is a Response Scripting
Template `AB`/`AF` with the number of executed C-APDUs (80), R-APDU TLVs (23) and Bad Format (90).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import FormatError
from .tlv import ber_length, parse_template, parse_tlvs, tlv

TAG_COMMAND_SCRIPT = 0xAA
TAG_COMMAND_SCRIPT_INDEFINITE = 0xAE
TAG_RESPONSE_SCRIPT = 0xAB
TAG_RESPONSE_SCRIPT_INDEFINITE = 0xAF
TAG_C_APDU = 0x22
TAG_R_APDU = 0x23
TAG_IMMEDIATE_ACTION = 0x81
TAG_ERROR_ACTION = 0x82
TAG_SCRIPT_CHAINING = 0x83
TAG_EXECUTED = 0x80
TAG_BAD_FORMAT = 0x90

# Instructions sent as case 4 with a trailing Le by this package's GlobalPlatform builders
# (INSTALL, LOAD, DELETE, GET STATUS, STORE DATA) when the class is proprietary (b8 set).
GP_CASE4_INS = frozenset({0xE6, 0xE8, 0xE4, 0xF2, 0xE2})
# ISO instructions whose P3 is Le (case 2): READ BINARY, READ RECORD, GET RESPONSE.
CASE2_INS = frozenset({0xB0, 0xB2, 0xC0})


def build_apdu(
    cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
) -> bytes:
    """A short C-APDU (ISO/IEC 7816-4 5.1): header, Lc and data if any, Le if given."""
    if len(data) > 255:
        raise FormatError(f"C-APDU data of {len(data)} octets does not fit a short Lc")
    apdu = bytes((cla, ins, p1, p2))
    if data:
        apdu += bytes((len(data),)) + data
    if le is not None:
        apdu += bytes((le,))
    return apdu


def compact_script(apdus: Iterable[bytes]) -> bytes:
    """Secured data in the compact format: the C-APDUs concatenated (TS 102 226 5.1.1)."""
    return b"".join(apdus)


def split_compact_script(
    script: bytes,
    *,
    case4_ins: frozenset[int] = GP_CASE4_INS,
    case2_ins: frozenset[int] = CASE2_INS,
) -> list[bytes]:
    """Cut a compact script back into C-APDUs, as a card does (TS 102 226 5.1.1).

    The format has no delimiters, so the instruction decides: for `case2_ins` P3 is Le, for
    `case4_ins` with a proprietary class the data is followed by Le, otherwise P3 is Lc.
    A trailing 4-octet APDU is case 1. (check against the spec)
    """
    apdus = []
    pos = 0
    while pos < len(script):
        remaining = len(script) - pos
        if remaining < 4:
            raise FormatError(f"compact script ends with {remaining} octets, not a C-APDU")
        if remaining == 4:
            apdus.append(script[pos:])
            break
        cla, ins = script[pos], script[pos + 1]
        p3 = script[pos + 4]
        end = pos + 5
        if ins not in case2_ins:
            end += p3
            if ins in case4_ins and cla & 0x80 and end < len(script):
                end += 1  # Le
        if end > len(script):
            raise FormatError(
                f"C-APDU {script[pos : pos + 4].hex().upper()} says Lc {p3}, only "
                f"{len(script) - pos - 5} octets follow"
            )
        apdus.append(script[pos:end])
        pos = end
    return apdus


def expanded_command_script(
    apdus: Iterable[bytes],
    *,
    immediate_action: bytes | None = None,
    error_action: bytes | None = None,
    script_chaining: bytes | None = None,
    indefinite: bool = False,
) -> bytes:
    """Command Scripting Template AA (or AE with `indefinite`) (TS 102 226 5.2.1)."""
    body = b""
    if script_chaining is not None:
        body += tlv(TAG_SCRIPT_CHAINING, script_chaining)
    if immediate_action is not None:
        body += tlv(TAG_IMMEDIATE_ACTION, immediate_action)
    if error_action is not None:
        body += tlv(TAG_ERROR_ACTION, error_action)
    body += b"".join(tlv(TAG_C_APDU, a) for a in apdus)
    if indefinite:
        return bytes((TAG_COMMAND_SCRIPT_INDEFINITE, 0x80)) + body + b"\x00\x00"
    return bytes((TAG_COMMAND_SCRIPT,)) + ber_length(len(body)) + body


@dataclass(frozen=True)
class ExpandedCommand:
    apdus: tuple[bytes, ...]
    immediate_action: bytes | None = None
    error_action: bytes | None = None
    script_chaining: bytes | None = None


def parse_expanded_command(data: bytes) -> ExpandedCommand:
    """Read an AA/AE Command Scripting Template; unknown tags are a format error."""
    _, body = parse_template(
        data, (TAG_COMMAND_SCRIPT, TAG_COMMAND_SCRIPT_INDEFINITE), what="command script"
    )
    apdus: list[bytes] = []
    extra: dict[int, bytes] = {}
    for tag, value in parse_tlvs(body, what="command script"):
        if tag == TAG_C_APDU:
            if len(value) < 4:
                raise FormatError(f"C-APDU TLV of {len(value)} octets is shorter than a header")
            apdus.append(value)
        elif tag in (TAG_IMMEDIATE_ACTION, TAG_ERROR_ACTION, TAG_SCRIPT_CHAINING):
            extra[tag] = value
        else:
            raise FormatError(f"command script: unexpected tag {tag:02X}")
    return ExpandedCommand(
        tuple(apdus),
        extra.get(TAG_IMMEDIATE_ACTION),
        extra.get(TAG_ERROR_ACTION),
        extra.get(TAG_SCRIPT_CHAINING),
    )


@dataclass(frozen=True)
class ExpandedResponse:
    """Response Scripting Template AB (TS 102 226 5.2.2): R-APDUs are data followed by SW."""

    executed: int
    rapdus: tuple[bytes, ...] = ()
    bad_format: bytes | None = None


def expanded_response(
    executed: int, rapdus: Iterable[bytes] = (), bad_format: bytes | None = None
) -> bytes:
    """An AB template: number of executed C-APDUs, R-APDU TLVs, optional Bad Format."""
    body = tlv(TAG_EXECUTED, bytes((executed,)))
    body += b"".join(tlv(TAG_R_APDU, r) for r in rapdus)
    if bad_format is not None:
        body += tlv(TAG_BAD_FORMAT, bad_format)
    return bytes((TAG_RESPONSE_SCRIPT,)) + ber_length(len(body)) + body


def parse_expanded_response(data: bytes) -> ExpandedResponse:
    """Read an AB/AF Response Scripting Template."""
    _, body = parse_template(
        data, (TAG_RESPONSE_SCRIPT, TAG_RESPONSE_SCRIPT_INDEFINITE), what="response script"
    )
    executed: int | None = None
    rapdus: list[bytes] = []
    bad: bytes | None = None
    for tag, value in parse_tlvs(body, what="response script"):
        if tag == TAG_EXECUTED:
            if len(value) != 1:
                raise FormatError("response script: executed-count TLV 80 must be one octet")
            executed = value[0]
        elif tag == TAG_R_APDU:
            if len(value) < 2:
                raise FormatError("response script: R-APDU TLV without a status word")
            rapdus.append(value)
        elif tag == TAG_BAD_FORMAT:
            bad = value
        else:
            raise FormatError(f"response script: unexpected tag {tag:02X}")
    if executed is None:
        raise FormatError("response script has no number of executed C-APDUs (tag 80)")
    return ExpandedResponse(executed, tuple(rapdus), bad)
