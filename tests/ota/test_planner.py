"""From operations to packets and SMS: counts without keys, real packets with keys and counters."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from cardmgmt.ota import (
    AppletCommands,
    Audit,
    CardProfileParams,
    Delete,
    KeyAlgorithm,
    KeySet,
    LoadAndInstall,
    PlanningError,
    PorStatus,
    Reassembler,
    Spi,
    StoreData,
    build_demo_cap,
    card_decode_command,
    code_size_for_load_file,
    parse_cap,
    plan,
    secure_plan,
    split_compact_script,
)
from cardmgmt.ota.planner import choose_block_size

HELLO_PKG = bytes.fromhex("D07002CA44")
HELLO_APPLET = bytes.fromhex("D07002CA44900101")
TDES_SINGLE = CardProfileParams(
    name="3DES single SMS",
    spi=Spi.parse("1639"),
    kic_algorithm=KeyAlgorithm.TDES_2KEY,
    kid_algorithm=KeyAlgorithm.TDES_2KEY,
    max_load_block=96,
    single_sms=True,
)
KEYS = KeySet(bytes(range(16)), bytes(range(16, 32)))


@pytest.fixture(scope="module")
def hello_stk():
    code = code_size_for_load_file(569, package_aid=HELLO_PKG, applet_aid=HELLO_APPLET)
    cap = parse_cap(build_demo_cap(HELLO_PKG, HELLO_APPLET, code_size=code))
    assert cap.load_file_size() == 569
    return cap


def test_hello_stk_worked_example_is_8_single_sms(hello_stk) -> None:
    script = plan(LoadAndInstall(hello_stk), TDES_SINGLE)
    assert script.load_block_size == 96
    assert [s.description for s in script.steps] == (
        ["INSTALL [for load]"] + [f"LOAD block {i}/6" for i in range(1, 7)]
        + ["INSTALL [for install and make selectable]"]
    )  # fmt: skip
    assert [s.sms for s in script.steps] == [1] * 8
    assert script.sms_count == 8 and script.packet_count == 8


def test_hello_stk_with_240_octet_blocks_is_9_sms(hello_stk) -> None:
    profile = replace(TDES_SINGLE, single_sms=False, max_load_block=240)
    lfdb = hello_stk.load_file_data_block().data
    # The notes' comparison: three LOADs of 240, 240, 89 octets take 3 + 3 + 1 SMS.
    loads = [profile.sms_for(len(chunk) + 6) for chunk in (lfdb[:240], lfdb[240:480], lfdb[480:])]
    assert loads == [3, 3, 1]
    assert 1 + sum(loads) + 1 == 9
    # Free to choose, the planner does better than both.
    script = plan(LoadAndInstall(hello_stk), replace(profile, max_load_block=255))
    assert script.sms_count == 7
    assert script.load_block_size == choose_block_size(569, replace(profile, max_load_block=255))


def test_block_choice_is_optimal_by_brute_force() -> None:
    profile = replace(TDES_SINGLE, single_sms=False, max_load_block=255)
    for total in (1, 100, 569, 1000, 4000):
        best = choose_block_size(total, profile)

        def cost(b: int, total: int = total) -> int:
            full, rest = divmod(total, b)
            return full * profile.sms_for(b + 6) + (profile.sms_for(rest + 6) if rest else 0)

        assert cost(best) == min(cost(b) for b in range(1, 256))


def test_counting_without_keys_matches_secured_packets(hello_stk) -> None:
    profile = replace(TDES_SINGLE, single_sms=False, max_load_block=255)
    script = plan(LoadAndInstall(hello_stk), profile)
    counter = itertools.count(41)
    messages = secure_plan(script, KEYS, lambda: next(counter))
    assert [m.cntr for m in messages] == list(range(41, 41 + script.packet_count))
    assert sum(len(m.user_data) for m in messages) == script.sms_count
    assert all(len(ud) <= 140 for m in messages for ud in m.user_data)


def test_secured_plan_runs_on_a_card_in_order(hello_stk) -> None:
    profile = replace(TDES_SINGLE, single_sms=False, max_load_block=255, include_descriptor=True)
    script = plan(LoadAndInstall(hello_stk), profile)
    counter = itertools.count(1)
    card_counter = 0
    reassembler = Reassembler()
    loaded = b""
    for message in secure_plan(script, KEYS, lambda: next(counter)):
        rebuilt = None
        for ud in reversed(message.user_data):  # arrival order does not matter
            rebuilt = reassembler.add(ud, sender="OTA") or rebuilt
        assert rebuilt is not None and rebuilt.packet == message.packet
        verdict = card_decode_command(
            rebuilt.packet, KEYS, card_counter=card_counter, known_tars={b"\x00\x00\x00"}
        )
        assert verdict.status is PorStatus.OK
        card_counter = verdict.new_counter
        (apdu,) = split_compact_script(verdict.data)
        if apdu[1] == 0xE8:
            loaded += apdu[5:-1]
    assert loaded == hello_stk.load_file_data_block(include_descriptor=True).data


def test_aes_profile_counts() -> None:
    cap = parse_cap(build_demo_cap(code_size=2000))
    single = CardProfileParams(single_sms=True, max_load_block=255)
    script = plan(LoadAndInstall(cap), single)
    assert all(s.length <= 137 for s in script.steps)
    free = plan(LoadAndInstall(cap), replace(single, single_sms=False))
    assert free.sms_count <= script.sms_count
    assert any(s.sms > 1 for s in free.steps)


def test_audit_delete_and_applet_commands() -> None:
    profile = CardProfileParams()
    audit = plan(Audit(), profile)
    assert audit.steps[0].apdus == (bytes.fromhex("80f24002024f0000"),) and audit.sms_count == 1
    deletion = plan(Delete(HELLO_PKG), profile)
    assert deletion.steps[0].apdus[0][:4] == bytes.fromhex("80e40080")
    tar = bytes.fromhex("D27600")
    cmds = plan(
        AppletCommands(tar, (bytes.fromhex("80100000"), bytes.fromhex("8012000000"))), profile
    )
    assert cmds.steps[0].tar == tar and cmds.packet_count == 1


def test_store_data_split_into_blocks() -> None:
    profile = CardProfileParams(single_sms=True)
    record = bytes(range(256)) * 2
    script = plan(StoreData(bytes.fromhex("D27600"), record), profile)
    apdus = [s.apdus[0] for s in script.steps]
    assert b"".join(a[5:-1] for a in apdus) == record
    assert [a[3] for a in apdus] == list(range(len(apdus)))
    assert apdus[-1][2] & 0x80 and not any(a[2] & 0x80 for a in apdus[:-1])


def test_oversized_applet_commands_refused_for_single_sms_profiles() -> None:
    profile = CardProfileParams(single_sms=True)
    big = (bytes.fromhex("80100000ff") + bytes(255),)
    with pytest.raises(PlanningError, match="exceeds one SMS"):
        plan(AppletCommands(b"\x00\x00\x01", big), profile)
    assert plan(AppletCommands(b"\x00\x00\x01", big), CardProfileParams()).sms_count == 3


def test_cap_without_applet_cannot_be_installed() -> None:
    cap = parse_cap(build_demo_cap())
    bare = replace(cap, applet_aids=())
    with pytest.raises(PlanningError, match="no applet"):
        plan(LoadAndInstall(bare), CardProfileParams())
    assert plan(LoadAndInstall(bare, install=False), CardProfileParams()).packet_count >= 2
