"""Ciphers, checksums and CRCs of SCP80 (ETSI TS 102 225 5.1.2, 5.1.3; 3GPP TS 31.115).

- Ciphering: DES-CBC, 3DES 2-key and 3-key outer CBC, DES-ECB, AES-CBC, all with an all-zero ICV.
- CC: DES/3DES CBC-MAC (ISO 9797-1 MAC algorithm 1, padding method 1, last block) and
  AES-CMAC (NIST SP 800-38B) truncated to its leftmost octets (8, or 4 where a card says so).
- RC: CRC-16/X-25 and CRC-32 (ISO 3309, as zlib).

Keys are plain bytes; cipher objects are made fresh for every call because every card has its
own keys. Single DES is 3DES with K|K|K, 2-key 3DES is K1|K2|K1, so `cryptography` never sees
the short keys it warns about.
"""

from __future__ import annotations

import zlib

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC

from .errors import SecurityError, UnsupportedError
from .spi import KeyAlgorithm, RcAlgorithm

_CBC8 = modes.CBC(bytes(8))
_CBC16 = modes.CBC(bytes(16))
_ECB = modes.ECB()  # noqa: S305 -- KIc 0xD is DES-ECB (TS 102 225 5.1.2); legacy cards use it

_DES_KEY_LENGTHS = {KeyAlgorithm.DES_CBC: 8, KeyAlgorithm.DES_ECB: 8, KeyAlgorithm.TDES_2KEY: 16}


def _des_key(alg: KeyAlgorithm, key: bytes) -> bytes:
    """The 24-octet 3DES key for a DES-family algorithm, checking the stored key's length."""
    n = len(key)
    if alg is KeyAlgorithm.TDES_3KEY:
        if n == 24:
            return key
    elif n == _DES_KEY_LENGTHS[alg]:
        return key * 3 if n == 8 else key + key[:8]
    raise SecurityError(f"{alg.name} needs a {_DES_KEY_LENGTHS.get(alg, 24)}-octet key, got {n}")


def _aes_key(key: bytes) -> AES:
    if len(key) not in (16, 24, 32):
        raise SecurityError(f"AES needs a 16, 24 or 32-octet key, got {len(key)}")
    return AES(key)


def _check_algorithm(alg: KeyAlgorithm) -> None:
    if alg is KeyAlgorithm.IMPLICIT or alg is KeyAlgorithm.PROPRIETARY:
        raise UnsupportedError(
            f"algorithm {alg.name} (KIc/KID b4-b1 {int(alg):X}) is agreed out of band; "
            "configure an explicit DES, 3DES or AES key identifier"
        )


def algorithm_of(kic_or_kid: int) -> KeyAlgorithm:
    """The algorithm coded in b4..b1 of a KIc or KID octet (TS 102 225 5.1.2)."""
    try:
        return KeyAlgorithm(kic_or_kid & 0x0F)
    except ValueError:
        raise UnsupportedError(
            f"KIc/KID {kic_or_kid:02X}: algorithm code {kic_or_kid & 0x0F:X} is reserved"
        ) from None


def rc_algorithm_of(kid: int) -> RcAlgorithm:
    """The CRC coded in b4..b1 of a KID octet when SPI asks for an RC (TS 102 225 5.1.3)."""
    try:
        return RcAlgorithm(kid & 0x0F)
    except ValueError:
        raise UnsupportedError(
            f"KID {kid:02X}: b4-b1 {kid & 0x0F:X} is no CRC (01 CRC16, 05 CRC32)"
        ) from None


def encrypt(alg: KeyAlgorithm, key: bytes, data: bytes) -> bytes:
    """Encipher `data` (already a multiple of the block size) with a zero ICV."""
    if alg is KeyAlgorithm.AES:
        return Cipher(_aes_key(key), _CBC16).encryptor().update(data)
    _check_algorithm(alg)
    mode = _ECB if alg is KeyAlgorithm.DES_ECB else _CBC8
    return Cipher(TripleDES(_des_key(alg, key)), mode).encryptor().update(data)


def decrypt(alg: KeyAlgorithm, key: bytes, data: bytes) -> bytes:
    """Decipher `data` (a multiple of the block size) with a zero ICV."""
    if alg is KeyAlgorithm.AES:
        return Cipher(_aes_key(key), _CBC16).decryptor().update(data)
    _check_algorithm(alg)
    mode = _ECB if alg is KeyAlgorithm.DES_ECB else _CBC8
    return Cipher(TripleDES(_des_key(alg, key)), mode).decryptor().update(data)


def cryptographic_checksum(alg: KeyAlgorithm, key: bytes, data: bytes, length: int = 8) -> bytes:
    """The CC of `data`: 3DES CBC-MAC (8 octets) or AES-CMAC truncated to `length` octets."""
    if alg is KeyAlgorithm.AES:
        mac = CMAC(_aes_key(key))
        mac.update(data)
        return mac.finalize()[:length]
    if alg is KeyAlgorithm.DES_ECB:
        raise SecurityError("KID b4-b1 'D' (DES-ECB) is reserved for a cryptographic checksum")
    _check_algorithm(alg)
    # ISO 9797-1 padding method 1: zeros up to the block size, none when already aligned.
    pad = -len(data) % 8
    if pad:
        data += bytes(pad)
    return Cipher(TripleDES(_des_key(alg, key)), _CBC8).encryptor().update(data)[-8:]


def cc_length(alg: KeyAlgorithm, cmac_length: int = 8) -> int:
    """Octets of CC the algorithm produces: 8 for DES family, `cmac_length` (4 or 8) for AES."""
    if alg is KeyAlgorithm.AES:
        if cmac_length not in (4, 8):
            raise UnsupportedError(f"AES-CMAC length must be 4 or 8 octets, not {cmac_length}")
        return cmac_length
    return 8


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25 (ISO 3309 / ITU-T X.25): poly 1021 reflected, init FFFF, xorout FFFF."""
    crc = 0xFFFF
    table = _CRC16_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def crc32(data: bytes) -> int:
    """CRC-32 as in ISO 3309 (the zlib one)."""
    return zlib.crc32(data)


def redundancy_check(alg: RcAlgorithm, data: bytes) -> bytes:
    """The RC of `data`, most significant octet first."""
    if alg is RcAlgorithm.CRC32:
        return zlib.crc32(data).to_bytes(4, "big")
    return crc16_x25(data).to_bytes(2, "big")
