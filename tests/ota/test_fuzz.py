"""Every decoder of outside input, fed garbage and mutated valid input: only OtaError comes out,
quickly (hypothesis deadline), whatever the bytes."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cardmgmt.ota import (
    KeySet,
    OtaError,
    Reassembler,
    Spi,
    build_demo_cap,
    card_decode_command,
    decode_por,
    decode_sms_deliver,
    decode_sms_submit,
    parse_additional_data,
    parse_cap,
    parse_expanded_command,
    parse_expanded_response,
    parse_get_status,
    parse_install_params,
    parse_toolkit_params,
    parse_user_data,
    split_compact_script,
)
from cardmgmt.ota.cap import parse_components
from cardmgmt.ota.demo_cap import demo_components
from cardmgmt.ota.tpdu import parse_sms_pp_download_envelope

KEYS = KeySet(  # the keys of the first public vector, so the corpus verifies
    bytes.fromhex("200102030405060708090a0b0c0d0e0f"),
    bytes.fromhex("201102030405060708090a0b0c0d0e0f"),
)
FUZZ = settings(
    max_examples=300,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)

VALID = {
    "command": bytes.fromhex(
        "00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058"
    ),
    "por": bytes.fromhex(
        "027100002412b00011ebc6b497e2cad7aedf36ace0e3a29b38853f0fe9ccde81913be5702b73abce1f"
    ),
    "user_data": bytes.fromhex("0700034203017000") + bytes(20),
    "deliver": bytes.fromhex("4403" + "8119f0" + "7ff6" + "00101000000000" + "05" + "027000aabb"),
    "submit": bytes.fromhex("4100038119f000f6" + "05" + "027100aabb"),
    "install": bytes.fromhex("c900ef1cc80200ffc70200ffca12010001001505000000000000000000000000"),
    "toolkit": bytes.fromhex("010000000002010206b2010000000000"),
    "status_tlv": bytes.fromhex("e3144f07a00000015153509f700107c5039e7a80cc00"),
    "status_legacy": bytes.fromhex("07a000000151535001000108a000000151535001"),
    "expanded_cmd": bytes.fromhex("aa0a2208" + "00a40004023f0000"),
    "expanded_rsp": bytes.fromhex("ab0780010123029000"),
    "compact": bytes.fromhex("00a40004023f0080f24000024f0000"),
}


def _decoders() -> dict[str, Callable[[bytes], object]]:
    spi = Spi.parse("0619")
    return {
        "command": lambda b: card_decode_command(
            b, KEYS, card_counter=0, known_tars={b"\xb0\x00\x11": 0x06}
        ),
        "por": lambda b: decode_por(b, spi=spi, kic=0x22, kid=0x22, keys=KEYS),
        "por_clear": lambda b: decode_por(b),
        "user_data": parse_user_data,
        "reassembler": lambda b: Reassembler(max_sets=4).add(b),
        "deliver": decode_sms_deliver,
        "submit": decode_sms_submit,
        "envelope": parse_sms_pp_download_envelope,
        "install": parse_install_params,
        "toolkit": parse_toolkit_params,
        "sim_toolkit": lambda b: parse_toolkit_params(b, sim=True),
        "status_tlv": lambda b: parse_get_status(b),
        "status_legacy": lambda b: parse_get_status(b, 0x10, tlv_format=False),
        "expanded_cmd": parse_expanded_command,
        "expanded_rsp": parse_expanded_response,
        "compact": split_compact_script,
        "additional": parse_additional_data,
        "cap": parse_cap,
    }


DECODERS = _decoders()


def _survives(decode: Callable[[bytes], object], data: bytes) -> None:
    """Any OtaError is fine; any other exception fails the test."""
    with contextlib.suppress(OtaError):
        decode(data)


@pytest.mark.parametrize("name", sorted(DECODERS))
@FUZZ
@given(data=st.binary(max_size=400))
@example(data=b"")
@example(data=b"\x00")
@example(data=b"\xff" * 64)
def test_garbage_gives_only_ota_errors(name: str, data: bytes) -> None:
    _survives(DECODERS[name], data)


def _mutations() -> st.SearchStrategy[tuple[str, bytes]]:
    @st.composite
    def mutate(draw: st.DrawFn) -> tuple[str, bytes]:
        name = draw(st.sampled_from(sorted(VALID)))
        data = bytearray(VALID[name])
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
            pos = draw(st.integers(0, max(len(data) - 1, 0)))
            if op == "flip" and data:
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "cut":
                del data[pos:]
            elif op == "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
            elif data:
                data[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0xFF]))
        return name, bytes(data)

    return mutate()


@FUZZ
@given(case=_mutations())
def test_mutated_valid_input_gives_only_ota_errors(case: tuple[str, bytes]) -> None:
    name, data = case
    decoder = DECODERS[name]
    _survives(decoder, data)


def test_valid_inputs_of_the_fuzz_corpus_decode() -> None:
    for name, data in VALID.items():
        DECODERS[name](data)


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in entries:
            z.writestr(name, content)
    return buf.getvalue()


@FUZZ
@given(
    name=st.sampled_from(
        ["Header", "Directory", "Import", "Applet", "Class", "Method", "Descriptor"]
    ),
    pos=st.integers(0, 60),
    value=st.integers(0, 255),
    cut=st.integers(0, 60),
)
def test_mutated_cap_components_give_cap_errors(name: str, pos: int, value: int, cut: int) -> None:
    comps = demo_components()
    comp = bytearray(comps[name])
    if pos < len(comp):
        comp[pos] = value
    comps[name] = bytes(comp[: len(comp) - cut] if cut < len(comp) else comp)
    _survives(parse_components, comps["Header"] and comps)  # type: ignore[arg-type]
    _survives(parse_cap, _zip([(f"p/javacard/{k}.cap", v) for k, v in comps.items()]))


@FUZZ
@given(pos=st.integers(0, 2000), value=st.integers(0, 255))
def test_mutated_cap_zip_gives_cap_errors(pos: int, value: int) -> None:
    data = bytearray(build_demo_cap())
    data[pos % len(data)] = value
    _survives(parse_cap, bytes(data))
