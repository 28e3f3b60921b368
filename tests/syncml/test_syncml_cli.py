"""The command-line tool, run as a subprocess like an operator would."""

import json
import subprocess
import sys
from pathlib import Path

from syncml_samples import DEVINF_11, INIT_12

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, stdin=b""):
    return subprocess.run(
        [sys.executable, "-m", "sync.syncml", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )


def test_xml_wbxml_round_trip():
    wb = cli("xml2wbxml", stdin=INIT_12)
    assert wb.returncode == 0 and wb.stdout[:5] == bytes.fromhex("02a4016a00")
    assert (
        cli("xml2wbxml", "--wbxml-version", "1.3", "--string-table", stdin=INIT_12).stdout[0] == 3
    )
    xml = cli("wbxml2xml", stdin=wb.stdout)
    assert xml.returncode == 0 and xml.stdout.startswith(b"<?xml") and b"<DevInf" in xml.stdout


def test_devinf_verbs():
    out = cli("devinf", stdin=DEVINF_11)
    assert out.returncode == 0
    assert "TEL" in json.loads(out.stdout)["vcard_properties"]
    wb = cli("xml2wbxml", stdin=DEVINF_11).stdout
    assert wb[:5] == bytes.fromhex("029f546a00")
    assert b"<DevInf" in cli("wbxml2xml", stdin=wb).stdout


def test_vcard_json_and_conversion():
    card = b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;\r\nTEL;CELL:0170 1234567\r\nEND:VCARD\r\n"
    out = cli("vcard", "--country-code", "+49", stdin=card)
    data = json.loads(out.stdout)
    assert data["n"]["family"] == "Müller" and data["normalized"]["phones"] == ["+491701234567"]
    conv = cli("vcard", "--to", "3.0", stdin=card)
    assert "N:Müller;Jürgen;;;" in conv.stdout.decode()


def test_san_encode_decode():
    spec = {"session_id": 1, "server_id": "OperatorSync",
            "syncs": [{"sync_type": 206, "content_type": 7, "server_uri": "contacts"}]}  # fmt: skip
    enc = cli(
        "san-encode", "--password", "pw", "--nonce", "n", "--hex", stdin=json.dumps(spec).encode()
    )
    assert enc.returncode == 0
    assert (
        enc.stdout.decode().strip()[32:]
        == "03080000000001" + b"\x0cOperatorSync".hex() + "10600000070" + "8" + b"contacts".hex()
    )
    dec = cli("san-decode", "--hex", "--password", "pw", "--nonce", "n", stdin=enc.stdout)
    data = json.loads(dec.stdout)
    assert data["digest_ok"] is True and data["syncs"][0]["server_uri"] == "contacts"


def test_credentials():
    assert cli("basic-cred", "--user", "bob", "--password", "pw2").stdout.strip() == b"Ym9iOnB3Mg=="
    md5 = cli("md5-cred", "--user", "bob", "--password", "pw2", "--nonce", "Zm9vYmFy")
    assert md5.returncode == 0 and len(md5.stdout.strip()) == 24


def test_errors_are_json_and_nonzero():
    for args, stdin in ((["wbxml2xml"], b"garbage"), (["xml2wbxml"], b"<x"), (["san-decode"], b"\x00"),
                        (["vcard"], b"nope"), (["san-encode", "--password", "x"], b"{bad json"),
                        (["md5-cred", "--user", "u", "--password", "p", "--nonce", "%%"], b"")):  # fmt: skip
        out = cli(*args, stdin=stdin)
        assert out.returncode == 1, args
        assert "error" in json.loads(out.stderr), args
