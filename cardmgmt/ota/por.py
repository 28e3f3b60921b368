"""Response packets, the Proof of Receipt (TS 102 225 5.1.2, 3GPP TS 31.115 6.3).

    UDH 02 71 00 | RPL(2) RHL(1) TAR(3) | CNTR(5) PCNTR(1) Status(1) RC/CC AdditionalData+pad
                                        \\_________ enciphered when SPI2 b5 is set _________/

RHL = 10 + checksum length. Unlike the command, the PoR's checksum covers the UDH `02 71 00`.
Cards often send error PoRs with no security at all, whatever SPI2 asked for, so the decoder
accepts an unsecured PoR when its status is an error and refuses an unsecured "PoR OK".
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from .command import (
    CommandVerdict,
    KeyLookup,
    KeySet,
    _checksum,
    _keyset,
    checksum_length,
)
from .crypto import algorithm_of, decrypt, encrypt
from .errors import FormatError, OtaError, SecurityError
from .rapdu import ExpandedResponse, parse_expanded_response
from .sms import RPI, parse_user_data
from .spi import COUNTER_MAX, PorStatus, Security, Spi, key_index

POR_UDH = b"\x02\x71\x00"  # UDHL, IEI 71 (RPI), IEIDL 0: part of the PoR checksum input
_HEADER = struct.Struct(">HB3s")  # RPL RHL TAR


@dataclass(frozen=True)
class ResponsePacket:
    """A PoR. `verified` / `ciphered` are filled by the decoder and ignored by the encoder."""

    tar: bytes
    cntr: int
    status: PorStatus
    additional_data: bytes = b""
    verified: bool = False  # a checksum was present and checked with the keys
    ciphered: bool = False

    def __post_init__(self) -> None:
        if len(self.tar) != 3:
            raise FormatError(f"TAR must be 3 octets, got {len(self.tar)}")
        if not 0 <= self.cntr <= COUNTER_MAX:
            raise FormatError(f"CNTR {self.cntr} does not fit in 5 octets")


ProofOfReceipt = ResponsePacket


def encode_por(
    por: ResponsePacket,
    spi: Spi,
    kic: int,
    kid: int,
    kic_key: bytes = b"",
    kid_key: bytes = b"",
    *,
    cmac_length: int = 8,
    unsecured: bool = False,
) -> bytes:
    """The PoR as SMS user data (UDH `02 71 00` first), secured as SPI2 asks (card side).

    `unsecured=True` sends it without checksum or ciphering, as cards do for security errors.
    """
    security = Security.NONE if unsecured else spi.por_security
    ciphering = spi.por_ciphering and not unsecured
    cc_len = checksum_length(security, kid, cmac_length)
    data = por.additional_data
    pad = -(7 + cc_len + len(data)) % algorithm_of(kic).block_size if ciphering else 0
    data += bytes(pad)
    header = _HEADER.pack(11 + cc_len + len(data), 10 + cc_len, por.tar)
    counter = ((por.cntr << 16) | (pad << 8) | int(por.status)).to_bytes(7, "big")
    cc = (
        _checksum(security, kid, kid_key, POR_UDH + header + counter + data, cc_len)
        if cc_len
        else b""
    )
    body = counter + cc + data
    if ciphering:
        body = encrypt(algorithm_of(kic), kic_key, body)
    return POR_UDH + header + body


def decode_por(
    user_data: bytes,
    *,
    spi: Spi | None = None,
    kic: int = 0,
    kid: int = 0,
    keys: KeyLookup | None = None,
    expected_tar: bytes | None = None,
) -> ResponsePacket:
    """Decode and verify a PoR from SMS user data (server side).

    `spi`, `kic`, `kid` are those of the command this PoR answers; `keys` its keyset (or a
    mapping KVN -> KeySet). Without `spi` only an unsecured PoR can be read. Raises
    SecurityError when a checksum does not verify or a "PoR OK" arrives unsecured although
    SPI2 asked for security; FormatError on malformed bytes.
    """
    ud = parse_user_data(user_data)
    if RPI not in ud.ies:
        raise FormatError("user data has no response packet indication (UDH IEI 71)")
    return decode_response_packet(
        ud.payload, spi=spi, kic=kic, kid=kid, keys=keys, expected_tar=expected_tar
    )


def decode_response_packet(
    packet: bytes,
    *,
    spi: Spi | None = None,
    kic: int = 0,
    kid: int = 0,
    keys: KeyLookup | None = None,
    expected_tar: bytes | None = None,
) -> ResponsePacket:
    """Like `decode_por` for the octets after the UDH (RPL to the end), e.g. reassembled."""
    if len(packet) < 13:
        raise FormatError(f"response packet of {len(packet)} octets is shorter than 13")
    rpl, rhl, tar = _HEADER.unpack_from(packet)
    if rpl != len(packet) - 2:
        raise FormatError(f"RPL says {rpl} octets follow but {len(packet) - 2} do")
    if rhl < 10 or rhl + 3 > len(packet):
        raise FormatError(f"RHL {rhl} is impossible (10 + checksum length, within the packet)")
    if expected_tar is not None and tar != expected_tar:
        raise FormatError(f"PoR is for TAR {tar.hex().upper()}, not {expected_tar.hex().upper()}")
    cc_len = rhl - 10
    body = packet[6:]
    wants_security = spi is not None and spi.por_security is not Security.NONE
    block = 0
    if cc_len == 0 and wants_security:
        # An error PoR sent in the clear (TS 102 225 5.1.2 lets the card skip security when it
        # could not verify the command): readable, but only trusted for what it is.
        por = _plain(tar, body, verified=False)
        if por.status is PorStatus.OK:
            raise SecurityError(
                "PoR says OK but carries no checksum although the SPI asked for one: not trusted"
            )
        return por
    if cc_len and not wants_security:
        raise SecurityError(
            f"PoR carries a {cc_len}-octet checksum; give the command's SPI, KIc, KID and keys"
        )
    keyset: KeySet | None = None
    if spi is not None and spi.por_ciphering:
        keyset = _need_keys(keys, kic)
        try:
            alg = algorithm_of(kic)
            if len(body) % alg.block_size:
                raise FormatError(f"{len(body)} enciphered PoR octets are not whole blocks")
            body = decrypt(alg, keyset.kic_key, body)
        except OtaError as exc:
            raise SecurityError(f"cannot decipher the PoR: {exc}") from exc
        block = alg.block_size
    if len(body) < 7 + cc_len:
        raise FormatError("response packet ends inside CNTR, PCNTR, status or checksum")
    if cc_len:
        assert spi is not None
        try:
            expected = checksum_length(spi.por_security, kid, cc_len if cc_len in (4, 8) else 8)
        except OtaError as exc:
            raise SecurityError(f"cannot check the PoR: {exc}") from exc
        if expected != cc_len:
            raise SecurityError(
                f"RHL gives a {cc_len}-octet checksum, SPI2/KID call for {expected}"
            )
        kid_keys = _need_keys(keys, kid) if spi.por_security is Security.CC else KeySet(b"", b"")
        rest = body[7 + cc_len :]
        mine = _checksum(
            spi.por_security, kid, kid_keys.kid_key, POR_UDH + packet[:6] + body[:7] + rest, cc_len
        )
        if not hmac.compare_digest(mine, body[7 : 7 + cc_len]):
            raise SecurityError(f"PoR {spi.por_security.name} does not verify (wrong keys?)")
        body = body[:7] + rest
    return _plain(tar, body, verified=cc_len > 0, block=block)


def _need_keys(keys: KeyLookup | None, kic_or_kid: int) -> KeySet:
    keyset = None if keys is None else _keyset(keys, key_index(kic_or_kid))
    if keyset is None:
        raise SecurityError(f"no keys for KVN {key_index(kic_or_kid)} to check the PoR with")
    return keyset


def _plain(tar: bytes, body: bytes, *, verified: bool, block: int = 0) -> ResponsePacket:
    """CNTR PCNTR Status AdditionalData+pad, checksum already removed; `block` 0 = clear."""
    if len(body) < 7:
        raise FormatError("response packet ends inside CNTR, PCNTR or status")
    pcntr = body[5]
    data = body[7:]
    # Padding exists only when ciphered and is shorter than a block (TS 102 225 5.1.2).
    if pcntr > len(data) or pcntr >= max(block, 1):
        raise FormatError(f"PCNTR {pcntr} is not a possible padding length")
    return ResponsePacket(
        tar=tar,
        cntr=int.from_bytes(body[:5], "big"),
        status=PorStatus(body[6]),
        additional_data=data[: len(data) - pcntr],
        verified=verified,
        ciphered=block > 0,
    )


def card_por(
    verdict: CommandVerdict,
    keys: KeyLookup,
    *,
    status: PorStatus | None = None,
    additional_data: bytes = b"",
) -> bytes | None:
    """The PoR a card sends for a processed command, or None when SPI2 asks for none.

    `status` overrides the verdict's (e.g. 07 when the applet ran out of memory). A PoR for a
    security failure goes unsecured: the keys or counter could not be trusted.
    """
    final = verdict.status if status is None else status
    por = verdict.spi.por
    if por == 0 or (por == 2 and final is PorStatus.OK):
        return None
    unsecured = final.is_security_failure
    keyset = KeySet(b"", b"")
    if not unsecured:
        kic_set = _keyset(keys, key_index(verdict.kic))
        kid_set = _keyset(keys, key_index(verdict.kid))
        keyset = KeySet(kic_set.kic_key if kic_set else b"", kid_set.kid_key if kid_set else b"")
    return encode_por(
        ResponsePacket(verdict.tar, verdict.cntr or 0, final, additional_data),
        verdict.spi,
        verdict.kic,
        verdict.kid,
        keyset.kic_key,
        keyset.kid_key,
        cmac_length=verdict.cc_length if verdict.cc_length in (4, 8) else 8,
        unsecured=unsecured,
    )


@dataclass(frozen=True)
class CompactResult:
    """Additional data of a PoR for a compact script (TS 102 226 5.1.2)."""

    executed: int  # number of C-APDUs executed
    sw: int  # status word of the last one
    data: bytes  # response data of the last one

    @property
    def sw_hex(self) -> str:
        return f"{self.sw:04X}"


def parse_compact_result(additional_data: bytes) -> CompactResult:
    """`count(1) SW(2) data` of a compact-format PoR."""
    if len(additional_data) < 3:
        raise FormatError(
            f"compact PoR additional data needs count and SW (3 octets), got {len(additional_data)}"
        )
    return CompactResult(
        additional_data[0], int.from_bytes(additional_data[1:3], "big"), additional_data[3:]
    )


def parse_additional_data(
    additional_data: bytes, *, expanded: bool = False
) -> CompactResult | ExpandedResponse | None:
    """Compact (`count SW data`) or expanded (`AB` template) additional data; None if empty."""
    if not additional_data:
        return None
    if expanded:
        return parse_expanded_response(additional_data)
    return parse_compact_result(additional_data)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe_por(por: ResponsePacket, *, expanded: bool = False) -> str:
    """A PoR in words: "PoR OK, 1 command, SW 9000", "counter low (unsecured PoR)"..."""
    text = por.status.description
    if por.additional_data:
        try:
            result = parse_additional_data(por.additional_data, expanded=expanded)
        except FormatError:
            text += f", additional data {por.additional_data.hex().upper()}"
        else:
            if isinstance(result, CompactResult):
                text += f", {_plural(result.executed, 'command')}, SW {result.sw_hex}"
                if result.data:
                    text += f", {_plural(len(result.data), 'octet')} of response data"
            elif isinstance(result, ExpandedResponse):
                text += f", {_plural(result.executed, 'command')}"
                if result.rapdus:
                    text += f", SW {result.rapdus[-1][-2:].hex().upper()}"
                if result.bad_format is not None:
                    text += f", bad format {result.bad_format.hex().upper()}"
    if not por.verified and por.status is not PorStatus.OK:
        text += " (unsecured PoR)"
    return text
