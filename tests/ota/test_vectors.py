"""Every public vector, byte for byte in both directions (tests/ota/data/ota_public.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cardmgmt.ota import (
    KeySet,
    PorStatus,
    ResponsePacket,
    SecuredCommandPacket,
    Spi,
    card_decode_command,
    crc16_x25,
    crc32,
    decode_por,
    describe_por,
    encode_command,
    encode_por,
    parse_user_data,
    segment_packet,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "ota_public.json").read_text())


def _packet(v: dict) -> SecuredCommandPacket:
    return SecuredCommandPacket(
        Spi.parse(v["spi"]),
        int(v["kic"], 16),
        int(v["kid"], 16),
        bytes.fromhex(v["tar"]),
        v["cntr"],
        bytes.fromhex(v["data"]),
    )


def _keys(v: dict) -> KeySet:
    return KeySet(bytes.fromhex(v["kic_key"]), bytes.fromhex(v["kid_key"]))


@pytest.mark.parametrize("v", VECTORS["commands"], ids=lambda v: v["note"])
def test_command_vector_encodes_byte_for_byte(v: dict) -> None:
    keys = _keys(v)
    assert encode_command(_packet(v), keys.kic_key, keys.kid_key).hex() == v["expected"]


@pytest.mark.parametrize("v", VECTORS["commands"], ids=lambda v: v["note"])
def test_command_vector_decodes_on_the_card(v: dict) -> None:
    verdict = card_decode_command(
        bytes.fromhex(v["expected"]),
        _keys(v),
        card_counter=None,
        known_tars={bytes.fromhex(v["tar"])},
    )
    assert verdict.status is PorStatus.OK, verdict.reason
    assert verdict.packet == _packet(v)


def test_fourth_command_vector_is_cipher_only_despite_its_note() -> None:
    # SPI1 04 is ciphering without RC/CC: CHL is 0D (no checksum). The note says "CC only".
    v = VECTORS["commands"][3]
    spi = Spi.parse(v["spi"])
    assert spi.ciphering and spi.security == 0
    assert bytes.fromhex(v["expected"])[2] == 0x0D


@pytest.mark.parametrize("v", VECTORS["pors"], ids=lambda v: v["user_data"][:24])
def test_por_vector_decodes(v: dict) -> None:
    spi = Spi.parse(v["spi"])
    por = decode_por(
        bytes.fromhex(v["user_data"]),
        spi=spi,
        kic=int(v["kic"], 16),
        kid=int(v["kid"], 16),
        keys=_keys(v),
    )
    assert por.cntr == v["cntr"]
    assert por.status == v["status"]
    assert por.additional_data.hex() == v["additional_data"]
    assert por.verified == (spi.por_security != 0)
    assert por.ciphered == spi.por_ciphering


@pytest.mark.parametrize("v", VECTORS["pors"], ids=lambda v: v["user_data"][:24])
def test_por_vector_encodes_byte_for_byte(v: dict) -> None:
    ud = bytes.fromhex(v["user_data"])
    por = ResponsePacket(
        ud[6:9], v["cntr"], PorStatus(v["status"]), bytes.fromhex(v["additional_data"])
    )
    keys = _keys(v)
    out = encode_por(
        por, Spi.parse(v["spi"]), int(v["kic"], 16), int(v["kid"], 16), keys.kic_key, keys.kid_key
    )
    assert out == ud


def test_por_vector_in_words() -> None:
    v = VECTORS["pors"][0]
    por = decode_por(
        bytes.fromhex(v["user_data"]), spi=Spi.parse(v["spi"]), kic=0x22, kid=0x22, keys=_keys(v)
    )
    assert describe_por(por) == "PoR OK, 1 command, SW 6132"


def test_crc_vectors() -> None:
    crc = VECTORS["crc"]
    assert f"{crc32(bytes.fromhex('0102030405')):08x}" == crc["crc32_of_0102030405"]
    assert f"{crc16_x25(b'123456789'):04x}" == crc["crc16_x25_check_of_ascii_123456789"]


def test_concatenation_note() -> None:
    packet = bytes(range(256)) + bytes(44)
    segments = segment_packet(packet, reference=0x42)
    assert [len(s) for s in segments] == [140, 140, 40]
    assert segments[0].hex().startswith("0700034203017000")
    assert segments[1].hex().startswith("050003420302")
    assert segments[2].hex().startswith("050003420303")
    assert b"".join(parse_user_data(s).payload for s in segments) == packet
