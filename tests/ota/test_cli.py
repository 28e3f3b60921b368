"""`python -m cardmgmt.ota VERB`: one JSON object in, one out; errors as {"error"} and non-zero."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cardmgmt.ota import build_demo_cap

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((Path(__file__).parent / "data" / "ota_public.json").read_text())


def run(verb: str, request: object, *, raw: str | None = None) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "cardmgmt.ota", verb],
        input=raw if raw is not None else json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_encode_command_matches_vector() -> None:
    v = VECTORS["commands"][0]
    code, out = run("encode-command", v)
    assert code == 0
    assert out["packet"] == v["expected"]
    assert out["user_data"] == ["027000" + v["expected"]] and out["sms_count"] == 1


def test_decode_command_as_a_card() -> None:
    v = VECTORS["commands"][1]
    code, out = run("decode-command", {**v, "packet": v["expected"], "card_counter": None})
    assert code == 0 and out["status"] == "00" and out["data"] == v["data"]
    code, out = run(
        "decode-command",
        {"user_data": "027000" + v["expected"], "kic_key": "00" * 16, "kid_key": "00" * 16},
    )
    assert code == 0 and out["status"] == "01" and out["status_text"] == "RC/CC/DS failed"


def test_encode_and_decode_por() -> None:
    v = VECTORS["pors"][0]
    code, out = run("encode-por", {**v, "tar": "b00011"})
    assert code == 0 and out["user_data"] == v["user_data"]
    code, out = run("decode-por", v)
    assert code == 0
    assert out["summary"] == "PoR OK, 1 command, SW 6132"
    assert (out["status"], out["cntr"], out["additional_data"], out["verified"]) == (
        "00",
        0,
        "016132",
        True,
    )


def test_decode_unsecured_error_por_from_an_smsc_log() -> None:
    code, out = run(
        "decode-por",
        {"user_data": "027100000b0ab0001000000000000006", "spi": "1639", "kic": "15", "kid": "15"},
    )
    assert code == 0 and out["summary"] == "unidentified security error (unsecured PoR)"


def test_segments_both_ways() -> None:
    packet = "ab" * 300
    code, out = run("segments", {"packet": packet, "reference": 0x42})
    assert code == 0 and out["sms_count"] == 3
    assert out["user_data"][0].startswith("0700034203017000")
    code, back = run("segments", {"user_data": list(reversed(out["user_data"]))})
    assert code == 0 and back["packet"] == packet and back["kind"] == "command"


def test_cap_info_from_path_and_base64(tmp_path: Path) -> None:
    cap = build_demo_cap(code_size=100)
    path = tmp_path / "sync.cap"
    path.write_bytes(cap)
    code, out = run("cap-info", {"path": str(path)})
    assert (
        code == 0
        and out["package_aid"] == "d2760001185359"
        and out["applet_aids"] == ["d276000118535901"]
    )
    code, again = run(
        "cap-info", {"base64": base64.b64encode(cap).decode(), "include_descriptor": True}
    )
    assert code == 0 and again["load_file_size"] > out["load_file_size"]
    assert again["load_file_components"][-1] == "Descriptor"


def test_load_script_counts_and_secures() -> None:
    request = {
        "demo": {"code_size": 900},
        "profile": {
            "spi": "1639",
            "kic": "15",
            "kid": "15",
            "max_load_block": 96,
            "single_sms": True,
        },
    }
    code, out = run("load-script", request)
    assert code == 0 and out["sms_count"] == out["packet_count"] == len(out["steps"])
    assert "packet" not in out["steps"][0]
    code, secured = run(
        "load-script", {**request, "kic_key": "11" * 16, "kid_key": "22" * 16, "cntr": 10}
    )
    assert code == 0 and [s["cntr"] for s in secured["steps"]] == list(
        range(10, 10 + out["packet_count"])
    )
    assert all(len(s["user_data"]) == 1 for s in secured["steps"])


def test_demo_cap_verb() -> None:
    code, out = run("demo-cap", {"code_size": 50})
    assert code == 0 and base64.b64decode(out["base64"])[:2] == b"PK"


@pytest.mark.parametrize(
    ("verb", "request_", "raw", "expected_code", "needle"),
    [
        ("decode-por", {"user_data": "0271"}, None, 1, "UDHL"),
        ("decode-por", {"user_data": "zz"}, None, 2, "not hex"),
        ("encode-command", {"spi": "0619"}, None, 2, "missing field"),
        ("encode-command", {**VECTORS["commands"][0], "spi": "ff19"}, None, 1, "reserved"),
        ("decode-command", {"packet": "0000"}, None, 1, "shorter"),
        ("segments", {"user_data": ["0500034202010000"]}, None, 1, "incomplete"),
        ("cap-info", {"base64": base64.b64encode(b"not a zip").decode()}, None, 1, "not a zip"),
        ("cap-info", {"path": "/nonexistent.cap"}, None, 2, "cannot read"),
        ("load-script", {"demo": {}, "install_params": "ef00"}, None, 1, "C9"),
        ("decode-por", None, "[1, 2]", 2, "one JSON object"),
        ("decode-por", None, "{", 2, "bad request"),
        ("no-such-verb", {}, None, 2, "usage"),
    ],
)
def test_errors(
    verb: str, request_: object, raw: str | None, expected_code: int, needle: str
) -> None:
    code, out = run(verb, request_, raw=raw)
    assert code == expected_code
    assert needle in out["error"]
