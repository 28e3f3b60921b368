"""The sync applet's interface (cardmgmt.ota.syncapplet): the documented bytes, round trips,
and garbage that must give OtaError (never another exception)."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardmgmt.ota import OtaError, gp, plan
from cardmgmt.ota import syncapplet as sa
from cardmgmt.ota.planner import CardProfileParams, StoreData
from cardmgmt.ota.syncapplet import (
    AppletError,
    ReadChunk,
    ReadSummary,
    RecordState,
    RecordSummary,
    StoreBlock,
    SyncRequest,
    Trigger,
    TriggerReason,
)

# --- The worked examples of docs/applet-commands.md ---------------------------------------------


def test_identifiers() -> None:
    assert sa.TAR == b"SYN" == bytes.fromhex("53594E")
    assert sa.PACKAGE_AID.hex().upper() == "A0000005591010"
    assert sa.APPLET_AID.hex().upper() == "A000000559101001"
    assert sa.INSTANCE_AID == sa.APPLET_AID


def test_store_bytes() -> None:
    record = bytes.fromhex("3012800101810D687474703A2F2F73796E632F")
    assert [a.hex().upper() for a in sa.store_record_apdus(record)] == [
        "80E2800013" + record.hex().upper() + "00"
    ]
    two = sa.store_record_apdus(record, block_size=10)
    assert [a.hex().upper() for a in two] == [
        "80E200000A" + record[:10].hex().upper() + "00",
        "80E2800109" + record[10:].hex().upper() + "00",
    ]
    # the same APDUs as GlobalPlatform STORE DATA and the planner's StoreData
    assert two[0] == gp.store_data(record[:10], block=0, last=False)[0]
    steps = plan(StoreData(sa.TAR, record), CardProfileParams()).steps
    assert [s.apdus[0] for s in steps] == sa.store_record_apdus(record)


def test_read_and_trigger_bytes() -> None:
    assert sa.read_summary_apdu().hex().upper() == "80CA00E000"
    assert sa.read_chunk_apdu(2).hex().upper() == "80CA010200"
    assert sa.trigger_apdu().hex().upper() == "805A000002A00000"
    assert sa.trigger_apdu(sa.SyncMode.SLOW, "C42").hex().upper() == (
        "805A00000AA008800101810343343200"
    )
    assert sa.trigger_apdu(mode=0).hex().upper() == "805A000005A00380010000"


def test_summary_bytes() -> None:
    record = bytes(range(40))
    summary = RecordSummary.of(record, triggers=3)
    crc = zlib.crc32(record)
    assert summary.encode().hex().upper() == (
        "E033800101810200288204" + f"{crc:08X}" + "830200038420" + record[:32].hex().upper()
    )
    assert sa.parse_summary(summary.encode()) == summary
    assert summary.matches(record)
    assert not summary.matches(record + b"x")
    assert not RecordSummary.of(b"").matches(b"")
    empty = RecordSummary.of(b"").encode().hex().upper()
    assert empty == "E011" "800100" "81020000" "820400000000" "83020000"  # fmt: skip


def test_sync_request_bytes() -> None:
    request = SyncRequest(bytes.fromhex("30038001 01".replace(" ", "")), 1, b"C42", number=1)
    encoded = sa.encode_sync_request(request)
    assert encoded.hex().upper() == (
        "D01D" "8103017E00" "82028182" "F112" "80053003800101" "810101" "8203433432" "830100"
    )  # fmt: skip
    assert sa.decode_sync_request(encoded) == request


def test_install_parameters_register_the_tar() -> None:
    raw = sa.install_parameters()
    assert raw.hex().upper() == "C900EA0F800D01000000000201120353594E00"
    parsed = gp.parse_install_params(raw)
    assert parsed.uicc_toolkit is not None
    assert parsed.uicc_toolkit.tars == (sa.TAR,)
    assert parsed.uicc_toolkit.min_spi1 == 0x12
    quota = gp.parse_install_params(sa.install_parameters(non_volatile_quota=512, msl=None))
    assert quota.non_volatile_quota == 512
    assert quota.uicc_toolkit is not None and quota.uicc_toolkit.min_spi1 is None


# --- Parsing what the card receives -------------------------------------------------------------


def test_script_splits_and_parses() -> None:
    record = b"R" * 300
    apdus = [
        *sa.store_record_apdus(record, block_size=200),
        sa.read_summary_apdu(),
        sa.read_chunk_apdu(1),
        sa.trigger_apdu(),
        sa.trigger_apdu(5, b"x" * 16),
    ]
    split = sa.split_applet_script(sa.applet_script(apdus))
    assert split == apdus
    assert [sa.parse_applet_apdu(a) for a in split] == [
        StoreBlock(0, False, record[:200]),
        StoreBlock(1, True, record[200:]),
        ReadSummary(),
        ReadChunk(1),
        Trigger(),
        Trigger(5, b"x" * 16),
    ]
    # Le may be left out on the last command only
    assert sa.parse_applet_apdu(sa.trigger_apdu()[:-1]) == Trigger()


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00E2800001AA00", sa.SW_CLA_NOT_SUPPORTED),
        ("80B0000000", sa.SW_INS_NOT_SUPPORTED),
        ("80E2400001AA00", sa.SW_WRONG_P1P2),  # P1 bits other than b8
        ("80E28000", sa.SW_WRONG_LENGTH),  # STORE without data
        ("80E2800005AA00", sa.SW_WRONG_LENGTH),  # Lc larger than the data
        ("80CA00E00000", sa.SW_WRONG_LENGTH),  # READ with a body
        ("80CA00E100", sa.SW_WRONG_P1P2),
        ("805A010002A00000", sa.SW_WRONG_P1P2),
        ("805A000002A10000", sa.SW_WRONG_DATA),  # not the A0 template
        ("805A000005A00380010B00", sa.SW_WRONG_DATA),  # mode 11 is no alert code
        ("805A000008A006800100800101", sa.SW_WRONG_DATA),  # mode twice
        ("805A000004A002810000", sa.SW_WRONG_DATA),  # empty campaign
        ("805A000005A00382010000", sa.SW_WRONG_DATA),  # unknown tag
    ],
)
def test_refused_commands_carry_their_status_word(apdu: str, sw: int) -> None:
    with pytest.raises(AppletError) as info:
        sa.parse_applet_apdu(bytes.fromhex(apdu))
    assert info.value.sw == sw
    assert isinstance(info.value, OtaError)


def test_builders_refuse_what_the_applet_would() -> None:
    for call in (
        lambda: sa.store_record_apdus(b""),
        lambda: sa.store_record_apdus(bytes(sa.MAX_RECORD_LENGTH + 1)),
        lambda: sa.store_record_apdus(b"x", block_size=0),
        lambda: sa.trigger_apdu(11),
        lambda: sa.trigger_apdu(campaign=b"x" * 17),
        lambda: sa.read_chunk_apdu(256),
        lambda: sa.applet_script([]),
        lambda: sa.install_parameters(b"AB"),
        lambda: sa.encode_sync_request(SyncRequest(b"")),
        lambda: sa.encode_sync_request(SyncRequest(b"r", number=0)),
        lambda: sa.encode_sync_request(SyncRequest(b"r", mode=11)),
        lambda: sa.encode_sync_request(SyncRequest(b"r", campaign=b"c" * 17)),
    ):
        with pytest.raises(OtaError):
            call()


# --- Round trips --------------------------------------------------------------------------------

records = st.binary(min_size=1, max_size=sa.MAX_RECORD_LENGTH)
modes = st.none() | st.integers(0, sa.MAX_MODE)
campaigns = st.binary(max_size=sa.MAX_CAMPAIGN_REF)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.integers(1, 255))
def test_store_round_trip(record: bytes, block_size: int) -> None:
    apdus = sa.store_record_apdus(record, block_size)
    blocks = [sa.parse_applet_apdu(a) for a in sa.split_applet_script(sa.applet_script(apdus))]
    assert all(isinstance(b, StoreBlock) for b in blocks)
    assert [b.block for b in blocks] == list(range(len(blocks)))  # type: ignore[union-attr]
    assert [b.last for b in blocks] == [False] * (len(blocks) - 1) + [True]  # type: ignore[union-attr]
    assert b"".join(b.data for b in blocks) == record  # type: ignore[union-attr]


@settings(max_examples=200)
@given(modes, campaigns)
def test_trigger_round_trip(mode: int | None, campaign: bytes) -> None:
    assert sa.parse_applet_apdu(sa.trigger_apdu(mode, campaign)) == Trigger(mode, campaign)


@settings(max_examples=200)
@given(records, modes, campaigns, st.sampled_from(TriggerReason), st.integers(1, 0xFE))
def test_sync_request_round_trip(
    record: bytes, mode: int | None, campaign: bytes, reason: TriggerReason, number: int
) -> None:
    request = SyncRequest(record, mode, campaign, reason, number)
    assert sa.decode_sync_request(sa.encode_sync_request(request)) == request


@settings(max_examples=200)
@given(
    st.sampled_from(RecordState),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=32),
    st.none() | st.integers(0, 255),
)
def test_summary_round_trip(state, length, crc, triggers, head, next_block) -> None:
    summary = RecordSummary(state, length, crc, triggers, head, next_block)
    assert sa.parse_summary(summary.encode()) == summary


# --- Fuzzing: garbage in, OtaError out -----------------------------------------------------------

DECODERS = [
    sa.parse_applet_apdu,
    sa.split_applet_script,
    sa.parse_trigger_data,
    sa.parse_summary,
    sa.decode_sync_request,
]


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda f: f.__name__)
@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300))
def test_garbage_gives_ota_error(decoder, data: bytes) -> None:
    with contextlib.suppress(OtaError):
        decoder(data)


def _mutations(encoded: bytes) -> st.SearchStrategy[bytes]:
    return st.tuples(st.integers(0, len(encoded) - 1), st.integers(0, 255)).map(
        lambda m: encoded[: m[0]] + bytes((m[1],)) + encoded[m[0] + 1 :]
    )


VALID = [
    (sa.decode_sync_request, sa.encode_sync_request(SyncRequest(b"\x30\x00" * 20, 1, b"c"))),
    (sa.parse_summary, RecordSummary.of(b"x" * 50, triggers=1).encode()),
    (sa.parse_applet_apdu, sa.trigger_apdu(1, b"campaign")),
    (sa.split_applet_script, sa.applet_script([sa.trigger_apdu(), sa.read_summary_apdu()])),
]


@pytest.mark.parametrize(("decoder", "valid"), VALID, ids=lambda v: getattr(v, "__name__", ""))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_valid_input_gives_ota_error_or_a_value(decoder, valid: bytes, data) -> None:
    mutated = data.draw(_mutations(valid) | st.integers(0, len(valid)).map(lambda n: valid[:n]))
    with contextlib.suppress(OtaError):
        decoder(mutated)
