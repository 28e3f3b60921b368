"""GlobalPlatform command bytes against hand-computed expectations; install parameters both ways;
GET STATUS in both formats; remote APDU formats."""

from __future__ import annotations

import pytest

from cardmgmt.ota import (
    FormatError,
    InstallParams,
    ToolkitParams,
    delete,
    expanded_command_script,
    expanded_response,
    get_status,
    install_for_install,
    install_for_load,
    load_blocks,
    parse_expanded_command,
    parse_expanded_response,
    parse_get_status,
    parse_install_params,
    parse_toolkit_params,
    split_compact_script,
    store_data,
)

PKG = bytes.fromhex("D07002CA44")
APPLET = bytes.fromhex("D07002CA44900101")


def test_install_for_load() -> None:
    assert install_for_load(PKG).hex() == "80e602000a05d07002ca440000000000"
    with_sd = install_for_load(
        PKG, bytes.fromhex("A000000151000000"), non_volatile_code_size=0x0239
    )
    assert with_sd.hex() == "80e602001805d07002ca4408a0000001510000000006ef04c60202390000"


def test_load_blocks_numbering_and_last_flag() -> None:
    lfdb = bytes(range(200))
    blocks = load_blocks(lfdb, 96)
    assert [b[:4].hex() for b in blocks] == ["80e80000", "80e80001", "80e88002"]
    assert [b[4] for b in blocks] == [96, 96, 8]
    assert all(b[-1] == 0 for b in blocks)  # Le
    assert b"".join(b[5:-1] for b in blocks) == lfdb


def test_install_for_install_and_make_selectable() -> None:
    params = bytes.fromhex("c900")
    apdu = install_for_install(PKG, APPLET, APPLET, install_parameters=params)
    assert apdu.hex() == (
        "80e60c001e05d07002ca4408d07002ca4490010108d07002ca44900101010002c9000000"
    )


def test_delete_and_related_objects() -> None:
    assert delete(PKG).hex() == "80e40000074f05d07002ca4400"
    assert delete(PKG, related_objects=True).hex() == "80e40080074f05d07002ca4400"


def test_get_status() -> None:
    assert get_status().hex() == "80f24002024f0000"
    assert get_status(0x80, tlv_format=False).hex() == "80f28000024f0000"
    assert get_status(0x20, next_=True).hex() == "80f22003024f0000"
    with pytest.raises(FormatError):
        get_status(0x41)


def test_store_data_blocks() -> None:
    assert store_data(b"\x01\x02", p1_format=0x10)[0].hex() == "80e2900002010200"
    chunks = store_data(bytes(300))
    assert [c[2:4].hex() for c in chunks] == ["0000", "8001"]


def test_install_params_example_from_the_notes() -> None:
    raw = bytes.fromhex("c900ef1cc80200ffc70200ffca12010001001505000000000000000000000000")
    params = parse_install_params(raw)
    assert params.application_parameters == b""
    assert params.volatile_quota == 0xFF and params.non_volatile_quota == 0xFF
    sim = params.sim_toolkit
    assert sim is not None
    assert sim.access_domain == b"\x00"
    assert (sim.priority, sim.max_timers, sim.max_menu_text_length) == (1, 0, 0x15)
    assert sim.menu_entries == ((0, 0),) * 5
    assert sim.max_channels == 0 and sim.msl == b"" and sim.tars is None
    assert params.encode() == raw


def test_ts48_uicc_toolkit_params() -> None:
    raw = bytes.fromhex("010000000002010206b2010000000000")
    params = parse_toolkit_params(raw)
    assert params.priority == 1 and params.max_timers == 0 and params.menu_entries == ()
    assert params.msl == b"\x01\x02" and params.min_spi1 == 0x02
    assert params.tars == (bytes.fromhex("B20100"), bytes.fromhex("000000"))
    assert params.max_services == 0
    assert params.encode() == raw


def test_sync_applet_install_params_round_trip() -> None:
    params = InstallParams(
        application_parameters=b"\x01",
        volatile_quota=0x100,
        non_volatile_quota=0x800,
        uicc_toolkit=ToolkitParams(
            priority=0x10, max_timers=1, max_menu_text_length=16, menu_entries=((1, 0),),
            max_channels=0, msl=b"\x01\x16", tars=(bytes.fromhex("D27600"),), max_services=0,
        ),
        uicc_access=b"\x00\x01\x00",
    )  # fmt: skip
    raw = params.encode()
    assert raw.hex() == (
        "c90101ef08c8020800c7020100ea16800f1001100101000002011603d27600008103000100"
    )
    assert parse_install_params(raw) == params


def test_bad_install_params() -> None:
    with pytest.raises(FormatError, match="C9"):
        parse_install_params(bytes.fromhex("ef00"))
    with pytest.raises(FormatError):
        parse_install_params(bytes.fromhex("c900ea0380020100"))  # toolkit params cut short


def test_get_status_tlv_format() -> None:
    data = bytes.fromhex(
        "e3"
        "1f"
        "4f07a0000001515350"
        "9f700107"
        "c5039e7a80"
        "c407a0000001515350"
        "ce020100"
        "e3"
        "0e"
        "4f05d07002ca44"
        "9f700101"
        "840100"
    )
    first, second = parse_get_status(data)
    assert first.aid == bytes.fromhex("A0000001515350") and first.lifecycle == 7
    assert first.privileges == bytes.fromhex("9E7A80") and first.version == b"\x01\x00"
    assert second.module_aids == (b"\x00",)


def test_get_status_legacy_formats() -> None:
    apps = parse_get_status(
        bytes.fromhex("08d07002ca44900101070007a00000015153500f80"), 0x40, tlv_format=False
    )
    assert [(e.aid.hex(), e.lifecycle, e.privileges.hex()) for e in apps] == [
        ("d07002ca44900101", 7, "00"),
        ("a0000001515350", 0x0F, "80"),
    ]
    elfs = parse_get_status(
        bytes.fromhex("05d07002ca4401000108d07002ca44900101"), 0x10, tlv_format=False
    )
    assert elfs[0].module_aids == (APPLET,)


def test_expanded_format_round_trip() -> None:
    apdus = [bytes.fromhex("00a40004023f00"), bytes.fromhex("80f24002024f0000")]
    script = expanded_command_script(apdus)
    assert script.hex() == "aa13220700a40004023f00220880f24002024f0000"
    assert parse_expanded_command(script).apdus == tuple(apdus)
    indefinite = expanded_command_script(apdus, immediate_action=b"\x01", indefinite=True)
    assert indefinite.startswith(b"\xae\x80") and indefinite.endswith(b"\x00\x00")
    parsed = parse_expanded_command(indefinite)
    assert parsed.apdus == tuple(apdus) and parsed.immediate_action == b"\x01"
    response = expanded_response(2, [bytes.fromhex("9000"), bytes.fromhex("e3009000")])
    assert response.hex() == "ab0d800102230290002304e3009000"
    back = parse_expanded_response(response)
    assert back.executed == 2 and back.rapdus[1] == bytes.fromhex("e3009000")
    bad = parse_expanded_response(expanded_response(0, bad_format=b"\x01"))
    assert bad.bad_format == b"\x01"


def test_compact_script_split() -> None:
    script = (
        bytes.fromhex("00a40004023f00")
        + install_for_load(PKG)
        + bytes.fromhex("00b0000010")
        + delete(PKG)
    )
    parts = split_compact_script(script)
    assert parts == [
        bytes.fromhex("00a40004023f00"),
        install_for_load(PKG),
        bytes.fromhex("00b0000010"),
        delete(PKG),
    ]
    with pytest.raises(FormatError):
        split_compact_script(bytes.fromhex("00a4000410"))
