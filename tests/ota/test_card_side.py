"""The card's view: wrong keys, replayed counters, unknown TARs, tampering, MSL, PoRs it sends."""

from __future__ import annotations

import pytest

from cardmgmt.ota import (
    COUNTER_MAX,
    CounterMode,
    FormatError,
    KeyAlgorithm,
    KeySet,
    PorRequest,
    PorStatus,
    SecuredCommandPacket,
    Security,
    SecurityError,
    Spi,
    UnsupportedError,
    card_decode_command,
    decode_command,
    decode_por,
    describe_por,
    encode_command,
)
from cardmgmt.ota.por import card_por

KEYS = KeySet(bytes(range(16)), bytes(range(16, 32)))
TAR = bytes.fromhex("B00010")


def _packet(
    spi: Spi,
    cntr: int = 5,
    kic: int = 0x12,
    kid: int = 0x12,
    data: bytes = b"\x00\xa4\x00\x04\x02\x3f\x00",
) -> bytes:
    return encode_command(
        SecuredCommandPacket(spi, kic, kid, TAR, cntr, data), KEYS.kic_key, KEYS.kid_key
    )


SPI_HIGHER = Spi.parse("1639")
SPI_PLUS_ONE = Spi(counter=CounterMode.PLUS_ONE)


@pytest.mark.parametrize("kic", [0x12, 0x15, 0x19, 0x11])
def test_wrong_key_gives_status_01(kic: int) -> None:
    key = bytes(range(24))[: {0x12: 16, 0x15: 16, 0x19: 24, 0x11: 8}[kic]]
    packet = encode_command(
        SecuredCommandPacket(SPI_HIGHER, kic, kic, TAR, 1, b"\x80\xf2\x40\x00"), key, key
    )
    wrong = KeySet(bytes(len(key)), bytes(len(key)))
    for _ in range(3):
        verdict = card_decode_command(packet, wrong, card_counter=0)
        assert verdict.status is PorStatus.RC_CC_DS_FAILED
    assert card_decode_command(packet, KeySet(key, key), card_counter=0).accepted


def test_replayed_counter_gives_status_02_in_higher_mode() -> None:
    packet = _packet(SPI_HIGHER, cntr=5)
    first = card_decode_command(packet, KEYS, card_counter=4)
    assert first.accepted and first.new_counter == 5
    replay = card_decode_command(packet, KEYS, card_counter=first.new_counter)
    assert replay.status is PorStatus.COUNTER_LOW
    assert replay.new_counter == 5
    assert (
        card_decode_command(_packet(SPI_HIGHER, cntr=3), KEYS, card_counter=5).status
        is PorStatus.COUNTER_LOW
    )
    assert card_decode_command(_packet(SPI_HIGHER, cntr=100), KEYS, card_counter=5).accepted


def test_plus_one_mode_rules() -> None:
    assert card_decode_command(_packet(SPI_PLUS_ONE, cntr=6), KEYS, card_counter=5).accepted
    assert (
        card_decode_command(_packet(SPI_PLUS_ONE, cntr=5), KEYS, card_counter=5).status
        is PorStatus.COUNTER_LOW
    )
    assert (
        card_decode_command(_packet(SPI_PLUS_ONE, cntr=7), KEYS, card_counter=5).status
        is PorStatus.COUNTER_HIGH
    )


def test_unchecked_counter_modes_accept_any_counter() -> None:
    for mode in (CounterMode.NONE, CounterMode.NOT_CHECKED):
        verdict = card_decode_command(_packet(Spi(counter=mode), cntr=1), KEYS, card_counter=9)
        assert verdict.accepted and verdict.new_counter == 9


def test_counter_blocked_at_maximum() -> None:
    packet = _packet(SPI_HIGHER, cntr=COUNTER_MAX)
    assert (
        card_decode_command(packet, KEYS, card_counter=COUNTER_MAX - 1).new_counter == COUNTER_MAX
    )
    assert (
        card_decode_command(packet, KEYS, card_counter=COUNTER_MAX).status
        is PorStatus.COUNTER_BLOCKED
    )


def test_unknown_tar_gives_status_09() -> None:
    packet = _packet(SPI_HIGHER)
    assert (
        card_decode_command(packet, KEYS, known_tars={b"\x00\x00\x00"}).status
        is PorStatus.TAR_UNKNOWN
    )
    assert card_decode_command(packet, KEYS, known_tars={TAR: None}).accepted


def test_minimum_security_level_gives_status_0a() -> None:
    cc_only = Spi(ciphering=False, counter=CounterMode.HIGHER)
    msl = 0x16  # CC + ciphering + counter higher
    verdict = card_decode_command(_packet(cc_only), KEYS, known_tars={TAR: msl})
    assert verdict.status is PorStatus.INSUFFICIENT_SECURITY_LEVEL
    assert card_decode_command(_packet(SPI_HIGHER), KEYS, known_tars={TAR: msl}).accepted


@pytest.mark.parametrize("spi", ["1639", "1239", "1139", "1539"])
def test_any_flipped_bit_after_the_header_is_detected(spi: str) -> None:
    packet = _packet(Spi.parse(spi), kid=0x15 if spi[1] in "15" else 0x12)
    keys = KEYS
    for pos in range(10, len(packet)):
        for bit in (0x01, 0x80):
            tampered = bytearray(packet)
            tampered[pos] ^= bit
            verdict = card_decode_command(bytes(tampered), keys)
            assert not verdict.accepted, (pos, bit)
            assert verdict.status in (PorStatus.RC_CC_DS_FAILED, PorStatus.CIPHERING_ERROR)


def test_tampered_header_is_detected_or_refused() -> None:
    packet = _packet(SPI_HIGHER)
    for pos in range(2, 10):
        tampered = bytearray(packet)
        tampered[pos] ^= 0x01
        try:
            verdict = card_decode_command(bytes(tampered), KEYS)
        except FormatError:
            continue
        assert not verdict.accepted, pos


def test_structurally_broken_packet_is_a_format_error() -> None:
    packet = _packet(SPI_HIGHER)
    with pytest.raises(FormatError, match="CPL"):
        card_decode_command(packet[:-1], KEYS)
    with pytest.raises(FormatError):
        card_decode_command(b"\x00", KEYS)


def test_digital_signature_is_refused_clearly() -> None:
    with pytest.raises(UnsupportedError, match="digital signature"):
        _packet(Spi(security=Security.DS))


def test_decode_command_raises_security_error_on_wrong_key() -> None:
    packet = _packet(SPI_HIGHER)
    with pytest.raises(SecurityError, match="RC/CC/DS failed"):
        decode_command(packet, bytes(16), bytes(16))


def test_card_sends_secured_por_on_success_and_unsecured_on_security_failure() -> None:
    spi = SPI_HIGHER
    ok = card_decode_command(_packet(spi, cntr=8), KEYS, card_counter=7)
    ud = card_por(ok, KEYS, additional_data=bytes.fromhex("019000"))
    por = decode_por(ud, spi=spi, kic=0x12, kid=0x12, keys=KEYS)
    assert por.verified and por.ciphered and por.cntr == 8
    assert describe_por(por) == "PoR OK, 1 command, SW 9000"

    low = card_decode_command(_packet(spi, cntr=8), KEYS, card_counter=8)
    ud = card_por(low, KEYS)
    assert ud[5] == 10  # RHL: no checksum
    por = decode_por(ud, spi=spi, kic=0x12, kid=0x12, keys=KEYS)
    assert por.status is PorStatus.COUNTER_LOW and not por.verified
    assert describe_por(por) == "counter low (unsecured PoR)"


def test_por_on_error_only() -> None:
    spi = Spi(por=PorRequest.ON_ERROR)
    ok = card_decode_command(_packet(spi, cntr=2), KEYS, card_counter=1)
    assert not ok.por_wanted and card_por(ok, KEYS) is None
    bad = card_decode_command(_packet(spi, cntr=1), KEYS, card_counter=1)
    assert bad.por_wanted and card_por(bad, KEYS) is not None


def test_unsecured_por_ok_is_not_trusted() -> None:
    ud = bytes.fromhex("027100000e0ab0001100000000000000016132")  # SPI 0601 vector: no security
    assert decode_por(ud, spi=Spi.parse("0601")).status is PorStatus.OK
    with pytest.raises(SecurityError, match="not trusted"):
        decode_por(ud, spi=Spi.parse("0619"), kic=0x35, kid=0x35, keys=KEYS)


def test_unsecured_error_por_from_the_notes() -> None:
    por = decode_por(
        bytes.fromhex("027100000b0ab0001000000000000006"), spi=SPI_HIGHER, kic=0x15, kid=0x15
    )
    assert por.status is PorStatus.UNIDENTIFIED_SECURITY_ERROR
    assert por.tar == bytes.fromhex("B00010") and por.additional_data == b""
    assert describe_por(por) == "unidentified security error (unsecured PoR)"


def test_por_with_wrong_keys_is_a_security_error() -> None:
    ok = card_decode_command(_packet(SPI_HIGHER, cntr=8), KEYS, card_counter=7)
    ud = card_por(ok, KEYS, additional_data=b"\x01\x90\x00")
    with pytest.raises(SecurityError):
        decode_por(ud, spi=SPI_HIGHER, kic=0x12, kid=0x12, keys=KeySet(bytes(16), bytes(16)))


def test_all_status_codes_are_named() -> None:
    names = {s: PorStatus(s).description for s in range(0x0D)}
    assert names[0] == "PoR OK" and names[2] == "counter low" and names[9] == "TAR unknown"
    assert len(set(names.values())) == 13
    assert PorStatus(0x42).description == "reserved status 42"


def test_key_length_mismatch_is_clear() -> None:
    with pytest.raises(SecurityError, match="TDES_2KEY needs a 16-octet key"):
        encode_command(
            SecuredCommandPacket(SPI_HIGHER, 0x15, 0x15, TAR, 1, b""), bytes(8), bytes(8)
        )
    assert KeyAlgorithm(0x9).name == "TDES_3KEY"
    assert "octets" in repr(KEYS) and KEYS.kic_key.hex() not in repr(KEYS)
