"""The parameter record codec both ways, against the bytes in docs/applet-interface.md."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.syncml.paramrecord import (
    DatastoreParam,
    ParamRecord,
    ParamRecordError,
    decode_param_record,
    encode_param_record,
)

EXAMPLE = ParamRecord(
    version=3,
    server_url="https://sync.example/syncml",
    datastores=[
        DatastoreParam(
            local_name="Contacts", remote_uri="contacts", content_type="text/x-vcard", mode=200
        )
    ],
    username="u491701234567",
    secret="s3cret",
    auth_type="md5",
    interval_minutes=1440,
    trigger_menu=False,
)
# docs/applet-interface.md, example 1, byte for byte.
EXAMPLE_HEX = (
    "e1 70 80 02 00 03 81 1b 68 74 74 70 73 3a 2f 2f 73 79 6e 63 2e 65 78 61 6d 70 6c 65 2f 73"
    " 79 6e 63 6d 6c a2 25 80 08 43 6f 6e 74 61 63 74 73 81 08 63 6f 6e 74 61 63 74 73 82 0c 74"
    " 65 78 74 2f 78 2d 76 63 61 72 64 83 01 00 a3 1a 80 0d 75 34 39 31 37 30 31 32 33 34 35 36"
    " 37 81 06 73 33 63 72 65 74 82 01 01 84 04 00 00 05 a0 85 01 07 86 01 00"
)


def test_encode_matches_documented_bytes() -> None:
    assert encode_param_record(EXAMPLE).hex(" ") == EXAMPLE_HEX


def test_decode_documented_bytes() -> None:
    assert decode_param_record(bytes.fromhex(EXAMPLE_HEX)) == EXAMPLE


def test_long_form_lengths_and_unknown_tags() -> None:
    rec = ParamRecord(version=1, server_url="https://x.example/" + "a" * 200, username="u",
                      secret="s", datastores=[])  # fmt: skip
    raw = encode_param_record(rec)
    assert raw[:3] == b"\xe1\x81" + bytes([raw[2]]) and raw[2] >= 0x80
    # A newer portal's extra tag (0x9F-less simple tag 0x8A) is skipped by this decoder.
    body = raw[3:] + b"\x8a\x01\x00"
    assert decode_param_record(b"\xe1\x81" + bytes([len(body)]) + body) == rec


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "expected one E1"),
        (b"\xe1\x05\x80\x02\x00", "says"),
        (b"\xe1\x81\x05" + b"\x80\x02\x00\x01\x00", "not minimal"),
        (b"\xe2\x00", "expected one E1"),
        (b"\xe1\x04\x80\x02\x00\x01", "server URL"),
        (bytes.fromhex(EXAMPLE_HEX.replace("83 01 00", "83 01 0b").replace(" ", "")), "sync mode"),
        (
            bytes.fromhex(EXAMPLE_HEX.replace("86 01 00", "86 01 07").replace(" ", "")),
            "conflict policy",
        ),
    ],
)
def test_bad_records_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(ParamRecordError, match=message):
        decode_param_record(data)


def test_encoder_refuses_what_does_not_fit() -> None:
    with pytest.raises(ParamRecordError, match="alert code"):
        encode_param_record(ParamRecord(version=1, server_url="u", datastores=[
            DatastoreParam(local_name="a", remote_uri="b", content_type="c", mode=199)]))  # fmt: skip
    with pytest.raises(ParamRecordError, match="control"):
        encode_param_record(ParamRecord(version=1, server_url="u\n"))
    with pytest.raises(ParamRecordError, match="exceeds"):
        encode_param_record(ParamRecord(version=1, server_url="u", username="x" * 5000))


text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, blacklist_categories=("Cs",)),
    max_size=60,
)


@given(
    version=st.integers(0, 0xFFFF),
    url=text.filter(bool),
    user=text,
    secret=text,
    interval=st.integers(0, 0xFFFFFFFF),
    flags=st.lists(st.booleans(), min_size=4, max_size=4),
    policy=st.sampled_from(["merge", "server_wins", "client_wins", "duplicate"]),
    modes=st.lists(st.integers(200, 210), max_size=3),
)
def test_round_trip(version, url, user, secret, interval, flags, policy, modes) -> None:  # type: ignore[no-untyped-def]
    rec = ParamRecord(
        version=version, server_url=url, username=user, secret=secret, interval_minutes=interval,
        trigger_ota=flags[0], trigger_timer=flags[1], trigger_imei_change=flags[2],
        trigger_menu=flags[3], conflict_policy=policy,
        datastores=[DatastoreParam(local_name=f"n{i}", remote_uri=f"u{i}",
                                   content_type="text/vcard", mode=m) for i, m in enumerate(modes)],
    )  # fmt: skip
    assert decode_param_record(encode_param_record(rec)) == rec


@given(st.binary(max_size=300))
def test_fuzz_decoder_raises_only_its_error(data: bytes) -> None:
    with contextlib.suppress(ParamRecordError):
        decode_param_record(data)
