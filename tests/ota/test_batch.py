"""encode_commands (the campaign batch) against encode_command, item for item (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardmgmt.ota import (
    COUNTER_MAX,
    CounterMode,
    FormatError,
    KeyAlgorithm,
    SecuredCommandPacket,
    SecurityError,
    Spi,
    encode_command,
    encode_commands,
)

from .strategies import counters, setups, tars


def _single(spi: Spi, kic: int, kid: int, tar: bytes, cmac: int, item: tuple) -> bytes:
    cntr, data, kic_key, kid_key = item
    packet = SecuredCommandPacket(spi, kic, kid, tar, cntr, data)
    return encode_command(packet, kic_key, kid_key, cmac_length=cmac)


@st.composite
def batches(draw: st.DrawFn) -> tuple:
    """One shape and several items: per-item keys (same lengths), counters and payloads.

    Payload lengths repeat or change from item to item, so the per-length layout switch and
    the shared layout cache are both exercised.
    """
    spi, kic, kid, kic_key, kid_key, cmac = draw(setups())
    tar = draw(tars)
    lengths = draw(st.lists(st.integers(0, 300), min_size=1, max_size=3))
    items = []
    for _ in range(draw(st.integers(0, 8))):
        n = draw(st.sampled_from(lengths))
        items.append(
            (
                draw(counters),
                draw(st.binary(min_size=n, max_size=n)),
                draw(st.binary(min_size=len(kic_key), max_size=len(kic_key))),
                draw(st.binary(min_size=len(kid_key), max_size=len(kid_key))),
            )
        )
    return spi, kic, kid, tar, cmac, items


@settings(max_examples=400, deadline=None)
@given(batch=batches())
def test_batch_is_byte_identical_to_single_calls(batch: tuple) -> None:
    spi, kic, kid, tar, cmac, items = batch
    got = encode_commands(spi, kic, kid, tar, iter(items), cmac_length=cmac)
    assert got == [_single(spi, kic, kid, tar, cmac, item) for item in items]


@settings(max_examples=100, deadline=None)
@given(setup=setups(), tar=tars, mode=st.sampled_from(list(CounterMode)), data=st.binary())
def test_every_counter_mode_and_counter_edges(
    setup: tuple, tar: bytes, mode: CounterMode, data: bytes
) -> None:
    spi, kic, kid, kic_key, kid_key, cmac = setup
    spi = Spi.from_bytes(bytes(((spi.raw[0] & ~0x18) | (mode << 3), spi.raw[1])))
    assert spi.counter is mode
    items = [(c, data, kic_key, kid_key) for c in (0, 1, 0xFF, 1 << 32, COUNTER_MAX)]
    got = encode_commands(spi, kic, kid, tar, items, cmac_length=cmac)
    assert got == [_single(spi, kic, kid, tar, cmac, item) for item in items]


AES_SPI = Spi.parse("1639")
AES_KEY = bytes(range(16))


def test_aes_default_cmac_length_and_empty_batch() -> None:
    items = [(7, b"\x80\xe6", AES_KEY, AES_KEY[::-1]), (8, b"", AES_KEY, AES_KEY)]
    got = encode_commands(AES_SPI, 0x12, 0x12, b"\xb0\x00\x10", items)
    assert got == [_single(AES_SPI, 0x12, 0x12, b"\xb0\x00\x10", 8, item) for item in items]
    assert encode_commands(AES_SPI, 0x12, 0x12, b"\xb0\x00\x10", []) == []


def test_non_bytes_data_is_accepted_as_in_encode_command() -> None:
    tar, data = b"\xb0\x00\x10", b"\x01\x02\x03"
    items = [(1, bytearray(data), AES_KEY, AES_KEY), (2, data, AES_KEY, AES_KEY)]
    got = encode_commands(AES_SPI, 0x12, 0x12, tar, items)
    assert got == [_single(AES_SPI, 0x12, 0x12, tar, 8, item) for item in items]


@pytest.mark.parametrize(
    ("kic", "tar", "item", "error"),
    [
        (0x12, b"\xb0\x00", (1, b"", AES_KEY, AES_KEY), FormatError),  # TAR of 2 octets
        (0x112, b"\xb0\x00\x10", (1, b"", AES_KEY, AES_KEY), FormatError),  # KIc > 1 octet
        (0x12, b"\xb0\x00\x10", (COUNTER_MAX + 1, b"", AES_KEY, AES_KEY), FormatError),
        (0x12, b"\xb0\x00\x10", (-1, b"", AES_KEY, AES_KEY), FormatError),
        (0x12, b"\xb0\x00\x10", (1, b"", AES_KEY[:15], AES_KEY), SecurityError),  # key length
    ],
)
def test_refusals_match_encode_command(kic: int, tar: bytes, item: tuple, error: type) -> None:
    with pytest.raises(error):
        _single(AES_SPI, kic, 0x12, tar, 8, item)
    with pytest.raises(error):
        encode_commands(AES_SPI, kic, 0x12, tar, [item])


def test_an_error_after_good_items_raises() -> None:
    good = (1, b"\x00", AES_KEY, AES_KEY)
    with pytest.raises(SecurityError):
        encode_commands(AES_SPI, 0x12, 0x12, b"\xb0\x00\x10", [good, (2, b"", b"short", AES_KEY)])


def test_other_algorithm_takes_the_general_loop() -> None:
    spi = Spi.parse("1639")
    kic = 0x10 | KeyAlgorithm.TDES_2KEY
    items = [(n, bytes(n), bytes(range(16)), bytes(range(1, 17))) for n in range(1, 20)]
    got = encode_commands(spi, kic, kic, b"\x00\x00\x01", items)
    assert got == [_single(spi, kic, kic, b"\x00\x00\x01", 8, item) for item in items]
