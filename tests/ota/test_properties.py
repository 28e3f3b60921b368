"""Round trips for every algorithm, key length, SPI option and counter mode (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cardmgmt.ota import (
    KeySet,
    PorStatus,
    Reassembler,
    ResponsePacket,
    SecuredCommandPacket,
    Security,
    card_decode_command,
    command_packet_length,
    decode_por,
    encode_command,
    encode_por,
    parse_user_data,
    segment_packet,
    sms_count,
)

from .strategies import counters, setups, tars


@settings(max_examples=400, deadline=None)
@given(setup=setups(), tar=tars, cntr=counters, payload=st.binary(max_size=300))
def test_command_encode_then_card_decode(
    setup: tuple, tar: bytes, cntr: int, payload: bytes
) -> None:
    spi, kic, kid, kic_key, kid_key, cmac = setup
    packet = SecuredCommandPacket(spi, kic, kid, tar, cntr, payload)
    raw = encode_command(packet, kic_key, kid_key, cmac_length=cmac)
    assert len(raw) == command_packet_length(spi, kic, kid, len(payload), cmac_length=cmac)
    card_counter = max(cntr - 1, 0) if cntr else None
    verdict = card_decode_command(
        raw, KeySet(kic_key, kid_key), card_counter=card_counter, known_tars={tar}
    )
    assert verdict.status is PorStatus.OK, verdict.reason
    assert verdict.packet == packet
    if spi.ciphering:
        block = 16 if kic & 0x0F == 0x2 else 8
        assert (len(raw) - 10) % block == 0


@settings(max_examples=400, deadline=None)
@given(
    setup=setups(), tar=tars, cntr=counters,
    status=st.integers(0, 0xFF), additional=st.binary(max_size=120),
)  # fmt: skip
def test_por_encode_then_decode(
    setup: tuple, tar: bytes, cntr: int, status: int, additional: bytes
) -> None:
    spi, kic, kid, kic_key, kid_key, cmac = setup
    por = ResponsePacket(tar, cntr, PorStatus(status), additional)
    ud = encode_por(por, spi, kic, kid, kic_key, kid_key, cmac_length=cmac)
    back = decode_por(ud, spi=spi, kic=kic, kid=kid, keys=KeySet(kic_key, kid_key))
    assert (back.tar, back.cntr, back.status, back.additional_data) == (
        tar,
        cntr,
        status,
        additional,
    )
    assert back.verified == (spi.por_security is not Security.NONE)
    assert back.ciphered == spi.por_ciphering


@settings(max_examples=300, deadline=None)
@given(
    packet=st.binary(min_size=1, max_size=3000),
    reference=st.integers(0, 0xFFFF),
    ref16=st.booleans(),
    order=st.randoms(use_true_random=False),
    duplicates=st.integers(0, 5),
)
def test_segmentation_then_reassembly_in_any_order(
    packet: bytes, reference: int, ref16: bool, order, duplicates: int
) -> None:
    segments = segment_packet(
        packet, reference=reference if ref16 else reference & 0xFF, ref16=ref16
    )
    assert len(segments) == sms_count(len(packet), ref16=ref16)
    assert all(len(s) <= 140 for s in segments)
    shuffled = segments + [order.choice(segments) for _ in range(duplicates)]
    order.shuffle(shuffled)
    reassembler = Reassembler()
    results = [
        r for r in (reassembler.add(s, sender="+41790000000") for s in shuffled) if r is not None
    ]
    if len(segments) == 1:
        assert all(r.packet == packet for r in results)
    else:
        assert len(results) == 1
        assert results[0].packet == packet
        assert 0x70 in results[0].ies
        assert len(reassembler) == 0
    assert 0x70 in parse_user_data(segments[0]).ies
