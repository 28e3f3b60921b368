"""SMS user data, concatenation, reassembly limits, TPDUs and the SMS-PP download envelope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cardmgmt.ota import (
    Address,
    FormatError,
    Reassembler,
    SmsDeliver,
    SmsSubmit,
    command_user_data,
    decode_scts,
    decode_sms_deliver,
    decode_sms_submit,
    encode_scts,
    fits_single_sms,
    parse_sms_pp_download_envelope,
    parse_user_data,
    segment_packet,
    sms_count,
    sms_pp_download_envelope,
)
from cardmgmt.ota.tpdu import GSM7


def test_single_sms_limit_is_137() -> None:
    assert fits_single_sms(137) and not fits_single_sms(138)
    assert command_user_data(bytes(137))[:3] == b"\x02\x70\x00"
    with pytest.raises(FormatError, match="137"):
        command_user_data(bytes(138))
    assert sms_count(137) == 1 and sms_count(138) == 2
    assert sms_count(132 + 134) == 2 and sms_count(132 + 134 + 1) == 3


def test_16_bit_reference_layout() -> None:
    segments = segment_packet(bytes(300), reference=0x1234, ref16=True)
    assert segments[0].hex().startswith("080804123403017000")
    assert segments[1].hex().startswith("0608041234030" + "2")
    ud = parse_user_data(segments[1])
    assert (
        ud.concatenation is not None
        and ud.concatenation.reference == 0x1234
        and ud.concatenation.ref16
    )


def test_cpi_before_concatenation_is_accepted() -> None:
    first = bytes.fromhex("0770000003070201") + b"A" * 10
    second = bytes.fromhex("050003070202") + b"B" * 5
    r = Reassembler()
    assert r.add(second) is None
    whole = r.add(first)
    assert whole is not None and whole.packet == b"A" * 10 + b"B" * 5 and 0x70 in whole.ies


def test_reassembler_missing_segment_expires() -> None:
    now = [0.0]
    r = Reassembler(max_age=60, clock=lambda: now[0])
    segments = segment_packet(bytes(400), reference=9)
    assert r.add(segments[0], "a") is None and r.add(segments[2], "a") is None
    assert len(r) == 1
    now[0] = 61
    assert r.expire() == [("a", 9)]
    assert len(r) == 0 and r.dropped == 1
    assert r.add(segments[1], "a") is None  # a late part starts a new, incomplete set


def test_reassembler_is_bounded() -> None:
    r = Reassembler(max_sets=3)
    for ref in range(10):
        r.add(segment_packet(bytes(300), reference=ref)[0], "x")
    assert len(r) == 3 and r.dropped == 7


def test_reassembler_keeps_senders_apart() -> None:
    a = segment_packet(b"a" * 300, reference=1)
    b = segment_packet(b"b" * 300, reference=1)
    r = Reassembler()
    results = [r.add(s, sender) for s, sender in zip(a + b, ["A"] * 3 + ["B"] * 3, strict=True)]
    done = [x for x in results if x]
    assert [(x.sender, x.packet[:1]) for x in done] == [("A", b"a"), ("B", b"b")]


def test_bad_udh_rejected() -> None:
    for bad in ("05", "0500030100", "050003020304", "0570010000"):
        with pytest.raises(FormatError):
            parse_user_data(bytes.fromhex(bad))


def test_sms_deliver_round_trip_and_the_gemalto_header() -> None:
    packet = bytes.fromhex("00201115351515c00000") + bytes(24)
    tpdu = bytes.fromhex("44038119f07ff615112413582204") + b"\x25" + b"\x02\x70\x00" + packet
    sms = decode_sms_deliver(tpdu)
    assert sms.originating_address == Address("910", 0, 1)
    assert (sms.pid, sms.dcs, sms.udhi, sms.more_messages) == (0x7F, 0xF6, True, False)
    assert sms.scts == bytes.fromhex("15112413582204")
    assert parse_user_data(sms.user_data).payload == packet
    assert sms.encode() == tpdu


def test_sms_deliver_encode() -> None:
    when = datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone(timedelta(hours=1)))
    sms = SmsDeliver(
        Address("+41790000000".lstrip("+")), b"\x02\x70\x00\xaa", scts=encode_scts(when)
    )
    raw = sms.encode()
    assert raw.hex() == "440b911497000000f07ff66230415190624004027000aa"
    assert decode_sms_deliver(raw) == sms
    assert decode_scts(sms.scts) == when


def test_scts_negative_zone_and_garbage() -> None:
    when = datetime(2025, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=5, minutes=45)))
    assert decode_scts(encode_scts(when)) == when
    with pytest.raises(FormatError):
        decode_scts(bytes.fromhex("15112413582204"))  # month 11, day 42: not swapped in the notes
    assert decode_scts(encode_scts(datetime(2000, 1, 1, tzinfo=UTC))).year == 2000


def test_sms_submit_round_trip() -> None:
    sms = SmsSubmit(
        Address("910", 0, 1),
        bytes.fromhex("027100000e0ab0001100000000000000016132"),
        message_reference=7,
    )
    raw = sms.encode()
    assert raw[:8].hex() == "4107038119f000f6"
    assert decode_sms_submit(raw) == sms
    relative = SmsSubmit(Address("12"), b"\x01", vp_format=2, validity_period=b"\xa7", udhi=False)
    assert decode_sms_submit(relative.encode()) == relative


def test_alphanumeric_address_and_gsm7_table() -> None:
    assert len(GSM7) == 128
    address = Address("OTA Ops", 5, 0)
    encoded = address.encode()
    from cardmgmt.ota.tpdu import decode_address

    assert decode_address(encoded, 0)[0] == address


def test_sms_pp_download_envelope() -> None:
    tpdu = SmsDeliver(Address("910", 0, 1), b"\x02\x70\x00" + bytes(130)).encode()
    envelope = sms_pp_download_envelope(tpdu, Address("41794990000"))
    assert envelope[:2].hex() == "d1" + "81" and envelope[3:7].hex() == "82028381"
    assert parse_sms_pp_download_envelope(envelope) == tpdu


def test_tpdu_length_mismatch_rejected() -> None:
    raw = SmsDeliver(Address("910"), b"\x02\x70\x00\xaa").encode()
    with pytest.raises(FormatError, match="TP-UDL"):
        decode_sms_deliver(raw + b"\x00")
    with pytest.raises(FormatError):
        decode_sms_deliver(raw[:-1])
