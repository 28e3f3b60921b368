"""Secured command packets: encode (server side) and decode as a card does (TS 102 225 5.1.1).

Layout after the UDH (`02 70 00`, not covered by the checksum):

    CPL(2) CHL(1) SPI(2) KIc(1) KID(1) TAR(3) | CNTR(5) PCNTR(1) RC/CC(0,2,4,8) data+padding
                                               \\_______ enciphered when SPI1 b3 is set _______/

CPL counts every octet after itself; CHL = 13 + checksum length. The checksum covers CPL to
the end with its own field left out, padding included (TS 102 225 5.1.1, 3GPP TS 31.115 6.2).
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from .crypto import (
    _CBC16,
    AES,
    CMAC,
    Checksum,
    Cipher,
    Transform,
    _aes_cbc_encrypt,
    _aes_cmac,
    algorithm_of,
    cc_length,
    checksum_for,
    cryptographic_checksum,
    decrypt,
    encryptor_for,
    rc_algorithm_of,
    rc_checksum,
    redundancy_check,
)
from .errors import FormatError, OtaError, SecurityError, UnsupportedError
from .spi import (
    COUNTER_MAX,
    CounterMode,
    PorStatus,
    RcAlgorithm,
    Security,
    Spi,
    key_index,
    spi_meets_msl,
)

# CPL CHL SPI KIc KID TAR: the clear part of the command header (TS 102 225 5.1.1).
_HEADER = struct.Struct(">HB2sBB3s")
HEADER_LENGTH = _HEADER.size  # 10
COMMAND_OVERHEAD = HEADER_LENGTH + 6  # plus CNTR and PCNTR: 16 octets before the checksum


@dataclass(frozen=True)
class KeySet:
    """The SCP80 keys of one keyset (KVN): KIc for ciphering, KID for the checksum."""

    kic_key: bytes
    kid_key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"KeySet(kic_key=<{len(self.kic_key)} octets>, kid_key=<{len(self.kid_key)} octets>)"


@dataclass(frozen=True, slots=True)
class SecuredCommandPacket:
    """A command packet before securing: what the server wants the card to run."""

    spi: Spi
    kic: int
    kid: int
    tar: bytes
    cntr: int
    data: bytes

    def __post_init__(self) -> None:
        if len(self.tar) != 3:
            raise FormatError(f"TAR must be 3 octets, got {len(self.tar)}")
        if not (0 <= self.kic <= 0xFF and 0 <= self.kid <= 0xFF):
            raise FormatError(f"KIc/KID must be one octet each, got {self.kic}/{self.kid}")
        if not 0 <= self.cntr <= COUNTER_MAX:
            raise FormatError(f"CNTR {self.cntr} does not fit in 5 octets")


def checksum_length(security: Security, kid: int, cmac_length: int = 8) -> int:
    """Octets of RC/CC the SPI and KID call for (DS is refused)."""
    if security is Security.NONE:
        return 0
    if security is Security.CC:
        return cc_length(algorithm_of(kid), cmac_length)
    if security is Security.RC:
        return 2 if rc_algorithm_of(kid) is RcAlgorithm.CRC16 else 4
    raise UnsupportedError(
        "SPI asks for a digital signature (DS); this package implements RC and CC only"
    )


def _checksum(security: Security, kid: int, key: bytes, data: bytes, length: int) -> bytes:
    if security is Security.CC:
        return cryptographic_checksum(algorithm_of(kid), key, data, length)
    return redundancy_check(rc_algorithm_of(kid), data)


def padding_length(spi: Spi, kic: int, cc_len: int, data_len: int, fixed: int = 6) -> int:
    """Zero octets appended so that CNTR‖PCNTR‖CC‖data is a whole number of cipher blocks.

    `fixed` is 6 for a command (CNTR, PCNTR) and 7 for a PoR (plus the status).
    """
    if not spi.ciphering:
        return 0
    return -(fixed + cc_len + data_len) % algorithm_of(kic).block_size


def command_packet_length(
    spi: Spi, kic: int, kid: int, data_len: int, *, cmac_length: int = 8
) -> int:
    """Length (CPL included) of the secured packet for `data_len` octets of secured data."""
    cc_len = checksum_length(spi.security, kid, cmac_length)
    return COMMAND_OVERHEAD + cc_len + data_len + padding_length(spi, kic, cc_len, data_len)


# What encode_command needs per (SPI, KIc, KID, TAR, data length, CMAC length), worked out once:
# the 10 clear header octets, the padding length, two struct packers and the checksum and cipher
# functions. `mac_input(header, cntr, pad, data)` gives what the checksum covers (header, CNTR,
# PCNTR, data, zero padding); `body(cntr, pad, cc, data)` gives what is enciphered (CNTR, PCNTR,
# the checksum, data, zero padding), its `{cc_len}s` field cutting an AES-CMAC to its leftmost
# octets. One C call each instead of joins, slices and temporaries between the crypto calls. A
# campaign sends the same command shape to many cards, so the cache hits nearly always.
_Packer = Callable[..., bytes]
_Layout = tuple[bytes, int, _Packer, _Packer, int, Checksum | None, Transform | None]
_LAYOUTS: dict[tuple[bytes, int, int, bytes, int, int], _Layout] = {}


def _layout(spi: Spi, kic: int, kid: int, tar: bytes, data_len: int, cmac_length: int) -> _Layout:
    cc_len = checksum_length(spi.security, kid, cmac_length)
    mac: Checksum | None = None
    if spi.security is Security.CC:
        mac = checksum_for(algorithm_of(kid))
    elif spi.security is Security.RC:
        mac = rc_checksum(rc_algorithm_of(kid))
    pad, enc = 0, None
    if spi.ciphering:
        cipher_alg = algorithm_of(kic)
        pad = -(6 + cc_len + data_len) % cipher_alg.block_size
        enc = encryptor_for(cipher_alg)
    cpl = 14 + cc_len + data_len + pad
    if cpl > 0xFFFF:
        raise FormatError(f"secured packet of {cpl + 2} octets does not fit the 2-octet CPL")
    header = _HEADER.pack(cpl, 13 + cc_len, spi.raw, kic, kid, tar)
    mac_input = struct.Struct(f">{HEADER_LENGTH}s5sB{data_len}s{pad}x").pack
    body = struct.Struct(f">5sB{cc_len}s{data_len}s{pad}x").pack
    layout = (header, pad, mac_input, body, cc_len, mac, enc)
    if len(_LAYOUTS) >= 4096:
        _LAYOUTS.clear()
    _LAYOUTS[(spi.raw, kic, kid, tar, data_len, cmac_length)] = layout
    return layout


def encode_command(
    packet: SecuredCommandPacket, kic_key: bytes, kid_key: bytes, *, cmac_length: int = 8
) -> bytes:
    """Secure a command packet: CPL to the end, ready for `sms.command_user_data` (5.1.1).

    The hot path of every campaign: the layout comes from a cache, each of the two octet
    strings the crypto calls take is made by one struct call, and the usual AES calls are
    inlined.
    """
    data = packet.data
    try:
        header, pad, mac_input, body, cc_len, mac, enc = _LAYOUTS[
            packet.spi.raw, packet.kic, packet.kid, packet.tar, len(data), cmac_length
        ]
    except KeyError:
        header, pad, mac_input, body, cc_len, mac, enc = _layout(
            packet.spi, packet.kic, packet.kid, packet.tar, len(data), cmac_length
        )
    cntr = packet.cntr.to_bytes(5)  # PCNTR goes beside it as `pad`
    try:
        if mac is _aes_cmac:  # the common case, inlined
            cmac = CMAC(AES(kid_key))
            cmac.update(mac_input(header, cntr, pad, data))
            clear = body(cntr, pad, cmac.finalize(), data)  # `{cc_len}s` truncates the CMAC
        elif mac is not None:
            clear = body(cntr, pad, mac(kid_key, mac_input(header, cntr, pad, data), cc_len), data)
        else:
            clear = body(cntr, pad, b"", data)
        if enc is _aes_cbc_encrypt:
            return header + Cipher(AES(kic_key), _CBC16).encryptor().update(clear)
        if enc is not None:
            return header + enc(kic_key, clear)
    except ValueError as exc:  # `cryptography` refusing a key length
        raise SecurityError(f"the KIc/KID key does not suit the algorithm: {exc}") from None
    except struct.error:  # data given as another buffer type: the packers take bytes
        if isinstance(data, bytes):
            raise
        return encode_command(
            SecuredCommandPacket(
                packet.spi, packet.kic, packet.kid, packet.tar, packet.cntr, bytes(data)
            ),
            kic_key,
            kid_key,
            cmac_length=cmac_length,
        )
    return header + clear


CommandItem = tuple[int, bytes, bytes, bytes]  # (CNTR, secured data, KIc key, KID key)


def _shape(
    shapes: dict[int, _Layout],
    spi: Spi,
    kic: int,
    kid: int,
    tar: bytes,
    data_len: int,
    cmac_length: int,
) -> _Layout:
    layout = shapes.get(data_len)
    if layout is None:
        layout = _LAYOUTS.get((spi.raw, kic, kid, tar, data_len, cmac_length))
        if layout is None:
            layout = _layout(spi, kic, kid, tar, data_len, cmac_length)
        shapes[data_len] = layout
    return layout


def encode_commands(
    spi: Spi,
    kic: int,
    kid: int,
    tar: bytes,
    items: Iterable[CommandItem],
    *,
    cmac_length: int = 8,
) -> list[bytes]:
    """Secure many command packets of one shape (SPI, KIc, KID, TAR): a campaign's batch.

    `items` yields (cntr, data, kic_key, kid_key) per packet. The result is, item for item,
    byte-identical to `encode_command(SecuredCommandPacket(spi, kic, kid, tar, cntr, data),
    kic_key, kid_key, cmac_length=cmac_length)`, and an item that call would refuse raises the
    same error here. What differs is the cost around the crypto calls: the header checks run
    once, the layout is looked up once per data length (not per packet, with a 6-part key),
    and for AES-CMAC + AES-CBC the loop holds nothing but the counter, the two struct packers,
    the `cryptography` calls and the header concatenation.
    """
    SecuredCommandPacket(spi, kic, kid, tar, 0, b"")  # TAR, KIc, KID checked once
    out: list[bytes] = []
    append = out.append
    shapes: dict[int, _Layout] = {}
    last_len = -1
    header = b""
    pad = cc_len = 0
    mac_input: _Packer = bytes
    body: _Packer = bytes
    mac: Checksum | None = None
    enc: Transform | None = None
    try:
        aes = (
            spi.security is Security.CC
            and spi.ciphering
            and checksum_for(algorithm_of(kid)) is _aes_cmac
            and encryptor_for(algorithm_of(kic)) is _aes_cbc_encrypt
        )
    except OtaError:  # refused by the first item below, as encode_command refuses it
        aes = False
    if aes:
        for cntr, data, kic_key, kid_key in items:
            try:
                if len(data) != last_len:
                    last_len = len(data)
                    header, pad, mac_input, body, *_ = _shape(
                        shapes, spi, kic, kid, tar, last_len, cmac_length
                    )
                c = cntr.to_bytes(5)  # PCNTR goes beside it as `pad`
                cmac = CMAC(AES(kid_key))
                cmac.update(mac_input(header, c, pad, data))
                append(
                    header
                    + Cipher(AES(kic_key), _CBC16)
                    .encryptor()
                    .update(body(c, pad, cmac.finalize(), data))
                )
            except Exception:  # redone one by one: raises what encode_command raises
                last_len = -1
                append(_encode_one(spi, kic, kid, tar, cntr, data, kic_key, kid_key, cmac_length))
        return out
    for cntr, data, kic_key, kid_key in items:
        try:
            if len(data) != last_len:
                last_len = len(data)
                header, pad, mac_input, body, cc_len, mac, enc = _shape(
                    shapes, spi, kic, kid, tar, last_len, cmac_length
                )
            c = cntr.to_bytes(5)
            if mac is not None:
                clear = body(c, pad, mac(kid_key, mac_input(header, c, pad, data), cc_len), data)
            else:
                clear = body(c, pad, b"", data)
            append(header + enc(kic_key, clear) if enc is not None else header + clear)
        except Exception:  # redone one by one: raises what encode_command raises
            last_len = -1
            append(_encode_one(spi, kic, kid, tar, cntr, data, kic_key, kid_key, cmac_length))
    return out


def _encode_one(
    spi: Spi,
    kic: int,
    kid: int,
    tar: bytes,
    cntr: int,
    data: bytes,
    kic_key: bytes,
    kid_key: bytes,
    cmac_length: int,
) -> bytes:
    """The single-packet path for an item the batch loop could not take (any error, odd types)."""
    packet = SecuredCommandPacket(spi, kic, kid, tar, cntr, data)
    return encode_command(packet, kic_key, kid_key, cmac_length=cmac_length)


@dataclass(frozen=True)
class CommandHeader:
    """The clear part of a received command packet."""

    spi: Spi
    kic: int
    kid: int
    tar: bytes
    cc_length: int


def parse_command_header(packet: bytes) -> CommandHeader:
    """Check CPL/CHL against the packet's length and read SPI, KIc, KID, TAR (5.1.1)."""
    if len(packet) < COMMAND_OVERHEAD:
        raise FormatError(
            f"command packet of {len(packet)} octets is shorter than the "
            f"{COMMAND_OVERHEAD}-octet header"
        )
    cpl, chl, spi_raw, kic, kid, tar = _HEADER.unpack_from(packet)
    if cpl != len(packet) - 2:
        raise FormatError(f"CPL says {cpl} octets follow but {len(packet) - 2} do")
    if chl < 13 or chl + 3 > len(packet):
        raise FormatError(f"CHL {chl} is impossible (13 + checksum length, within the packet)")
    return CommandHeader(Spi.from_bytes(spi_raw), kic, kid, tar, chl - 13)


@dataclass(frozen=True)
class CommandVerdict:
    """What a card concludes from a received command packet (TS 102 225 5.1.1, 5.1.2)."""

    status: PorStatus
    reason: str
    spi: Spi
    kic: int
    kid: int
    tar: bytes
    cntr: int | None  # None when the counter could not be read (deciphering failed)
    data: bytes  # the secured data without padding; empty unless accepted
    new_counter: int | None  # the counter the card keeps afterwards (None: no check done)
    cc_length: int

    @property
    def accepted(self) -> bool:
        return self.status is PorStatus.OK

    @property
    def por_wanted(self) -> bool:
        """Whether SPI2 asks for a PoR in this outcome (always, or on error only)."""
        por = self.spi.por
        return por == 1 or (por == 2 and not self.accepted)

    @property
    def packet(self) -> SecuredCommandPacket:
        if not self.accepted:
            raise SecurityError(f"command refused: {self.status.description} ({self.reason})")
        return SecuredCommandPacket(
            self.spi, self.kic, self.kid, self.tar, self.cntr or 0, self.data
        )


KeyLookup = KeySet | Mapping[int, KeySet]
TarSet = Collection[bytes] | Mapping[bytes, int | None]


def _keyset(keys: KeyLookup, kvn: int) -> KeySet | None:
    if isinstance(keys, KeySet):
        return keys
    return keys.get(kvn)


def card_decode_command(
    packet: bytes,
    keys: KeyLookup,
    *,
    card_counter: int | None = None,
    known_tars: TarSet | None = None,
    cmac_lengths: Collection[int] = (4, 8),
) -> CommandVerdict:
    """Process a command packet the way a card does and say which PoR status it earns.

    `keys` is one KeySet or a mapping KVN -> KeySet (KIc's and KID's b8-b5 pick the keyset).
    `card_counter` is the card's stored counter for that keyset; None skips the counter check.
    `known_tars` is the set of TARs the card knows, or a mapping TAR -> minimum SPI1 (MSL, or
    None for no minimum); None accepts every TAR.

    Order of checks: TAR (09), minimum security level (0A), checksum layout (06), deciphering
    (05), RC/CC (01, before reading PCNTR so a wrong key always gives 01), padding (05),
    counter (02, 03, 04). A packet whose own length fields are inconsistent raises FormatError:
    a card cannot even tell where it is from.
    """
    head = parse_command_header(packet)
    spi, kic, kid, tar, cc_len = head.spi, head.kic, head.kid, head.tar, head.cc_length

    def refuse(status: PorStatus, reason: str, cntr: int | None = None) -> CommandVerdict:
        return CommandVerdict(status, reason, spi, kic, kid, tar, cntr, b"", card_counter, cc_len)

    if known_tars is not None:
        if tar not in known_tars:
            return refuse(PorStatus.TAR_UNKNOWN, f"no application with TAR {tar.hex().upper()}")
        if isinstance(known_tars, Mapping):
            msl = known_tars[tar]
            if msl is not None and not spi_meets_msl(spi.raw[0], msl):
                return refuse(
                    PorStatus.INSUFFICIENT_SECURITY_LEVEL,
                    f"SPI1 {spi.raw[0]:02X} is below the application's MSL {msl:02X}",
                )
    try:
        expected = checksum_length(spi.security, kid, cc_len if cc_len in cmac_lengths else 8)
        cipher_alg = algorithm_of(kic) if spi.ciphering else None
    except OtaError as exc:
        return refuse(PorStatus.UNIDENTIFIED_SECURITY_ERROR, str(exc))
    if expected != cc_len:
        return refuse(
            PorStatus.UNIDENTIFIED_SECURITY_ERROR,
            f"CHL gives a {cc_len}-octet checksum, SPI and KID call for {expected}",
        )
    kic_set = _keyset(keys, key_index(kic)) if spi.ciphering else None
    kid_set = _keyset(keys, key_index(kid)) if spi.security is not Security.NONE else None
    if (spi.ciphering and kic_set is None) or (spi.security is Security.CC and kid_set is None):
        return refuse(PorStatus.UNIDENTIFIED_SECURITY_ERROR, "no keyset for the KVN in KIc/KID")

    body = packet[HEADER_LENGTH:]
    if cipher_alg is not None:
        if len(body) % cipher_alg.block_size or len(body) < 6 + cc_len:
            return refuse(
                PorStatus.CIPHERING_ERROR,
                f"{len(body)} enciphered octets are not whole {cipher_alg.block_size}-octet blocks",
            )
        try:
            body = decrypt(cipher_alg, kic_set.kic_key, body)  # type: ignore[union-attr]
        except OtaError as exc:
            return refuse(PorStatus.UNIDENTIFIED_SECURITY_ERROR, str(exc))
    elif len(body) < 6 + cc_len:
        raise FormatError("command packet ends inside CNTR, PCNTR or the checksum")
    cntr = int.from_bytes(body[:5], "big")
    pcntr = body[5]
    rest = body[6 + cc_len :]
    if cc_len:
        try:
            mine = _checksum(
                spi.security,
                kid,
                kid_set.kid_key if kid_set else b"",
                packet[:HEADER_LENGTH] + body[:6] + rest,
                cc_len,
            )
        except OtaError as exc:
            return refuse(PorStatus.UNIDENTIFIED_SECURITY_ERROR, str(exc), cntr)
        if not hmac.compare_digest(mine, body[6 : 6 + cc_len]):
            return refuse(PorStatus.RC_CC_DS_FAILED, f"{spi.security.name} does not verify", cntr)
    # Padding exists only for ciphering and is shorter than a block (TS 102 225 5.1.1).
    if pcntr > len(rest) or pcntr >= (cipher_alg.block_size if cipher_alg else 1):
        return refuse(
            PorStatus.CIPHERING_ERROR if cipher_alg else PorStatus.UNIDENTIFIED_SECURITY_ERROR,
            f"PCNTR {pcntr} is not a possible padding length",
            cntr,
        )
    data = rest[: len(rest) - pcntr]
    new_counter = card_counter
    if card_counter is not None and spi.counter >= CounterMode.HIGHER:
        if card_counter >= COUNTER_MAX:
            return refuse(PorStatus.COUNTER_BLOCKED, "the card's counter reached its maximum", cntr)
        if cntr <= card_counter:
            return refuse(
                PorStatus.COUNTER_LOW, f"CNTR {cntr} is not above the card's {card_counter}", cntr
            )
        if spi.counter is CounterMode.PLUS_ONE and cntr != card_counter + 1:
            return refuse(
                PorStatus.COUNTER_HIGH, f"CNTR {cntr} is not the card's {card_counter} + 1", cntr
            )
        new_counter = cntr
    return CommandVerdict(PorStatus.OK, "", spi, kic, kid, tar, cntr, data, new_counter, cc_len)


def decode_command(packet: bytes, kic_key: bytes, kid_key: bytes) -> SecuredCommandPacket:
    """Verify and decipher a command packet (no counter or TAR policy); raise if it fails."""
    return card_decode_command(packet, KeySet(kic_key, kid_key)).packet
