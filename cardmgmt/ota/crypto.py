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
from collections.abc import Callable

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.cmac import CMAC

from .errors import SecurityError, UnsupportedError
from .spi import KeyAlgorithm, RcAlgorithm

_CBC8 = modes.CBC(bytes(8))
_CBC16 = modes.CBC(bytes(16))
_ECB = modes.ECB()  # noqa: S305 -- KIc 0xD is DES-ECB (TS 102 225 5.1.2); legacy cards use it

_DES_KEY_LENGTHS = {
    KeyAlgorithm.DES_CBC: 8,
    KeyAlgorithm.DES_ECB: 8,
    KeyAlgorithm.TDES_2KEY: 16,
    KeyAlgorithm.TDES_3KEY: 24,
}
_ALGORITHMS = {int(a): a for a in KeyAlgorithm}
_RC_ALGORITHMS = {int(a): a for a in RcAlgorithm}

Transform = Callable[[bytes, bytes], bytes]  # (key, data) -> data
Checksum = Callable[[bytes, bytes, int], bytes]  # (key, data, length) -> checksum


def _des_family(alg: KeyAlgorithm, mode: modes.Mode, decrypting: bool = False) -> Transform:
    """Encipher (or decipher) with a DES-family key, expanded to the 24 octets 3DES takes."""
    expected = _DES_KEY_LENGTHS[alg]

    def transform(key: bytes, data: bytes) -> bytes:
        if len(key) != expected:
            raise SecurityError(f"{alg.name} needs a {expected}-octet key, got {len(key)}")
        if expected == 16:
            key += key[:8]  # K1|K2|K1
        elif expected == 8:
            key *= 3  # K|K|K is single DES
        cipher = Cipher(TripleDES(key), mode)
        return (cipher.decryptor() if decrypting else cipher.encryptor()).update(data)

    return transform


def _aes_cbc_encrypt(key: bytes, data: bytes) -> bytes:
    return Cipher(AES(key), _CBC16).encryptor().update(data)


def _aes_cbc_decrypt(key: bytes, data: bytes) -> bytes:
    return Cipher(AES(key), _CBC16).decryptor().update(data)


def _aes_cmac(key: bytes, data: bytes, length: int) -> bytes:
    mac = CMAC(AES(key))
    mac.update(data)
    return mac.finalize()[:length]


def _des_cbc_mac(alg: KeyAlgorithm) -> Checksum:
    encipher = _des_family(alg, _CBC8)

    def checksum(key: bytes, data: bytes, length: int) -> bytes:
        # ISO 9797-1 padding method 1: zeros up to the block size, none when already aligned.
        pad = -len(data) % 8
        if pad:
            data += bytes(pad)
        return encipher(key, data)[-8:]

    return checksum


_ENCRYPT: dict[KeyAlgorithm, Transform] = {KeyAlgorithm.AES: _aes_cbc_encrypt}
_DECRYPT: dict[KeyAlgorithm, Transform] = {KeyAlgorithm.AES: _aes_cbc_decrypt}
_MAC: dict[KeyAlgorithm, Checksum] = {KeyAlgorithm.AES: _aes_cmac}
for _alg in _DES_KEY_LENGTHS:
    _mode = _ECB if _alg is KeyAlgorithm.DES_ECB else _CBC8
    _ENCRYPT[_alg] = _des_family(_alg, _mode)
    _DECRYPT[_alg] = _des_family(_alg, _mode, decrypting=True)
    if _alg is not KeyAlgorithm.DES_ECB:
        _MAC[_alg] = _des_cbc_mac(_alg)


def _unsupported(alg: KeyAlgorithm, what: str) -> UnsupportedError:
    if alg is KeyAlgorithm.DES_ECB:
        return UnsupportedError("KID b4-b1 'D' (DES-ECB) is reserved for a cryptographic checksum")
    return UnsupportedError(
        f"algorithm {alg.name} (KIc/KID b4-b1 {int(alg):X}) cannot be used for {what}: it is agreed "
        "out of band; configure an explicit DES, 3DES or AES key identifier"
    )


def algorithm_of(kic_or_kid: int) -> KeyAlgorithm:
    """The algorithm coded in b4..b1 of a KIc or KID octet (TS 102 225 5.1.2)."""
    alg = _ALGORITHMS.get(kic_or_kid & 0x0F)
    if alg is None:
        raise UnsupportedError(
            f"KIc/KID {kic_or_kid:02X}: algorithm code {kic_or_kid & 0x0F:X} is reserved"
        )
    return alg


def rc_algorithm_of(kid: int) -> RcAlgorithm:
    """The CRC coded in b4..b1 of a KID octet when SPI asks for an RC (TS 102 225 5.1.3)."""
    alg = _RC_ALGORITHMS.get(kid & 0x0F)
    if alg is None:
        raise UnsupportedError(
            f"KID {kid:02X}: b4-b1 {kid & 0x0F:X} is no CRC (01 CRC16, 05 CRC32)"
        )
    return alg


def encryptor_for(alg: KeyAlgorithm) -> Transform:
    """The ciphering function (key, data) -> data for a KIc algorithm, zero ICV."""
    fn = _ENCRYPT.get(alg)
    if fn is None:
        raise _unsupported(alg, "ciphering")
    return fn


def checksum_for(alg: KeyAlgorithm) -> Checksum:
    """The CC function (key, data, length) -> CC for a KID algorithm."""
    fn = _MAC.get(alg)
    if fn is None:
        raise _unsupported(alg, "a cryptographic checksum")
    return fn


def _key_error(alg: KeyAlgorithm, exc: ValueError) -> SecurityError:
    return SecurityError(f"the key does not suit {alg.name}: {exc}")


def encrypt(alg: KeyAlgorithm, key: bytes, data: bytes) -> bytes:
    """Encipher `data` (already a multiple of the block size) with a zero ICV."""
    try:
        return encryptor_for(alg)(key, data)
    except ValueError as exc:
        raise _key_error(alg, exc) from None


def decrypt(alg: KeyAlgorithm, key: bytes, data: bytes) -> bytes:
    """Decipher `data` (a multiple of the block size) with a zero ICV."""
    fn = _DECRYPT.get(alg)
    if fn is None:
        raise _unsupported(alg, "ciphering")
    try:
        return fn(key, data)
    except ValueError as exc:
        raise _key_error(alg, exc) from None


def cryptographic_checksum(alg: KeyAlgorithm, key: bytes, data: bytes, length: int = 8) -> bytes:
    """The CC of `data`: 3DES CBC-MAC (8 octets) or AES-CMAC truncated to `length` octets."""
    try:
        return checksum_for(alg)(key, data, length)
    except ValueError as exc:
        raise _key_error(alg, exc) from None


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


def rc_checksum(alg: RcAlgorithm) -> Checksum:
    """`redundancy_check` in the shape of a CC function (the key is not used)."""
    return lambda _key, data, _length: redundancy_check(alg, data)
