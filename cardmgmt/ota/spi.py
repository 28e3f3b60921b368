"""Security Parameter Indicator, KIc/KID codings and PoR status codes (ETSI TS 102 225 5.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .errors import FormatError

COUNTER_MAX = (1 << 40) - 1  # CNTR is 5 octets (TS 102 225 5.1.1)


class Security(IntEnum):
    """SPI1 b2b1 / SPI2 b4b3: the integrity mechanism (TS 102 225 5.1.1)."""

    NONE = 0
    RC = 1  # redundancy check (CRC)
    CC = 2  # cryptographic checksum (MAC)
    DS = 3  # digital signature (not implemented: refused with UnsupportedError)


class CounterMode(IntEnum):
    """SPI1 b5b4 (TS 102 225 5.1.1)."""

    NONE = 0  # no counter available
    NOT_CHECKED = 1  # counter present, not checked by the card
    HIGHER = 2  # process only if CNTR is higher than the card's
    PLUS_ONE = 3  # process only if CNTR is exactly the card's + 1


class PorRequest(IntEnum):
    """SPI2 b2b1 (TS 102 225 5.1.1)."""

    NONE = 0
    ALWAYS = 1
    ON_ERROR = 2


class KeyAlgorithm(IntEnum):
    """KIc / KID b4..b1 for ciphering and CC (TS 102 225 5.1.2, 5.1.3).

    The same code means the ciphering algorithm in KIc and the CC algorithm in KID, except
    DES_ECB which exists for KIc only.
    """

    IMPLICIT = 0x0  # known implicitly by both entities: not usable without out-of-band agreement
    DES_CBC = 0x1
    TDES_2KEY = 0x5
    TDES_3KEY = 0x9
    DES_ECB = 0xD
    AES = 0x2  # AES-CBC (KIc) / AES-CMAC (KID); key length implied by the stored key
    PROPRIETARY = 0x3

    @property
    def block_size(self) -> int:
        return 16 if self is KeyAlgorithm.AES else 8


class RcAlgorithm(IntEnum):
    """KID b4..b1 when SPI1 asks for a redundancy check (TS 102 225 5.1.3)."""

    CRC16 = 0x1
    CRC32 = 0x5


class PorStatus(IntEnum):
    """Response status codes (TS 102 225 5.1.2 table 5, 3GPP TS 31.115 for 0B and 0C)."""

    OK = 0x00
    RC_CC_DS_FAILED = 0x01
    COUNTER_LOW = 0x02
    COUNTER_HIGH = 0x03
    COUNTER_BLOCKED = 0x04
    CIPHERING_ERROR = 0x05
    UNIDENTIFIED_SECURITY_ERROR = 0x06
    INSUFFICIENT_MEMORY = 0x07
    MORE_TIME = 0x08
    TAR_UNKNOWN = 0x09
    INSUFFICIENT_SECURITY_LEVEL = 0x0A
    RESPONSE_BY_SMS_SUBMIT = 0x0B
    RESPONSE_BY_USSD = 0x0C

    @classmethod
    def _missing_(cls, value: object) -> PorStatus | None:
        # 0D-FF are reserved; a PoR carrying one must still decode, so give it a pseudo-member.
        if isinstance(value, int) and 0x0D <= value <= 0xFF:
            member = int.__new__(cls, value)
            member._name_ = f"RESERVED_{value:02X}"
            member._value_ = value
            return member
        return None

    @property
    def description(self) -> str:
        return _STATUS_TEXT.get(self.value, f"reserved status {self.value:02X}")

    @property
    def is_security_failure(self) -> bool:
        """Statuses after which the card cannot (or must not) secure its PoR with the keys."""
        return self.value in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x09, 0x0A)


_STATUS_TEXT = {
    0x00: "PoR OK",
    0x01: "RC/CC/DS failed",
    0x02: "counter low",
    0x03: "counter high",
    0x04: "counter blocked",
    0x05: "ciphering error",
    0x06: "unidentified security error",
    0x07: "insufficient memory",
    0x08: "more time needed",
    0x09: "TAR unknown",
    0x0A: "insufficient security level",
    0x0B: "actual response will follow in an SMS-SUBMIT",
    0x0C: "actual response via ProcessUnstructuredSS-Request",
}


@dataclass(frozen=True, slots=True)
class Spi:
    """The two SPI octets, decoded (TS 102 225 5.1.1).

    `Spi.parse("1639")` / `Spi.from_bytes(b"\\x16\\x39")` and `spi.to_bytes()` round-trip; reserved
    bits are refused so that what is decoded is what is re-encoded.
    """

    security: Security = Security.CC
    ciphering: bool = True
    counter: CounterMode = CounterMode.HIGHER
    por: PorRequest = PorRequest.ALWAYS
    por_security: Security = Security.CC
    por_ciphering: bool = True
    por_via_submit: bool = True
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Precomputed once: the encoder's hot path only reads `raw`.
        spi1 = int(self.security) | (0x04 if self.ciphering else 0) | (int(self.counter) << 3)
        spi2 = (
            int(self.por)
            | (int(self.por_security) << 2)
            | (0x10 if self.por_ciphering else 0)
            | (0x20 if self.por_via_submit else 0)
        )
        object.__setattr__(self, "raw", bytes((spi1, spi2)))

    @classmethod
    def from_bytes(cls, data: bytes) -> Spi:
        if len(data) != 2:
            raise FormatError(f"SPI must be 2 octets, got {len(data)}")
        spi1, spi2 = data
        if spi1 & 0xE0:
            raise FormatError(f"SPI1 {spi1:02X} sets reserved bits b8-b6")
        if spi2 & 0xC0 or spi2 & 0x03 == 0x03:
            raise FormatError(f"SPI2 {spi2:02X} uses reserved bits (b8-b7 or PoR request 11)")
        return cls(
            security=Security(spi1 & 0x03),
            ciphering=bool(spi1 & 0x04),
            counter=CounterMode((spi1 >> 3) & 0x03),
            por=PorRequest(spi2 & 0x03),
            por_security=Security((spi2 >> 2) & 0x03),
            por_ciphering=bool(spi2 & 0x10),
            por_via_submit=bool(spi2 & 0x20),
        )

    @classmethod
    def parse(cls, hex_spi: str) -> Spi:
        try:
            raw = bytes.fromhex(hex_spi)
        except ValueError:
            raise FormatError(f"SPI {hex_spi!r} is not hex") from None
        return cls.from_bytes(raw)

    def to_bytes(self) -> bytes:
        return self.raw

    def __str__(self) -> str:
        return self.raw.hex().upper()


def key_index(kic_or_kid: int) -> int:
    """b8..b5 of KIc/KID: the key version number (KVN 1-15) of the SCP80 keyset."""
    return kic_or_kid >> 4


def spi_meets_msl(spi1: int, msl_spi1: int) -> bool:
    """True when a command's SPI1 is at least the minimum security level (TS 102 226 8.2.1.3.2.1).

    Each part is compared on its own: integrity (none < RC < CC < DS), ciphering, and counter
    (none < not checked < higher < +1). (check against the spec: the spec leaves the comparison
    of counter modes to the application.)
    """
    return (
        (spi1 & 0x03) >= (msl_spi1 & 0x03)
        and (spi1 & 0x04) >= (msl_spi1 & 0x04)
        and ((spi1 >> 3) & 0x03) >= ((msl_spi1 >> 3) & 0x03)
    )
