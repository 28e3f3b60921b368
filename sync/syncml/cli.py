"""Command-line tool: ``python -m sync.syncml VERB`` (thin wrapper over the package).

Binary verbs read stdin and write stdout as bytes. On error a JSON object
``{"error": "..."}`` goes to stderr and the exit status is 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys

from .auth import basic_credential, decode_nonce, md5_credential
from .codec import parse_message, to_wbxml, to_xml
from .devinf import parse_devinf, serialize_devinf
from .element import Element
from .errors import SyncMLError
from .san import SANMessage, SANSync, decode_san, encode_san, verify_san
from .vcard import parse_vcards, serialize_vcard
from .wbxml import WBXML_1_2, WBXML_1_3
from .xmlcodec import parse_xml


def _read() -> bytes:
    return sys.stdin.buffer.read()


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _json(obj: object) -> None:
    def default(o: object) -> object:
        if isinstance(o, bytes):
            return base64.b64encode(o).decode("ascii")
        if isinstance(o, Element):
            return f"<{o.tag}>"
        if isinstance(o, frozenset | set):
            return sorted(o)
        raise TypeError(type(o).__name__)

    _write((json.dumps(obj, ensure_ascii=False, indent=2, default=default) + "\n").encode())


def _is_devinf(data: bytes) -> bool:
    if data[:1] in (b"\x01", b"\x02", b"\x03"):
        from .wbxml import decode_wbxml

        return decode_wbxml(data).kind == "devinf"
    return parse_xml(data).tag == "DevInf"


def cmd_xml2wbxml(args: argparse.Namespace) -> None:
    data = _read()
    version = WBXML_1_3 if args.wbxml_version == "1.3" else WBXML_1_2
    if _is_devinf(data):
        out = serialize_devinf(
            parse_devinf(data), "wbxml", string_table=args.string_table, wbxml_version=version
        )
    else:
        out = to_wbxml(parse_message(data), string_table=args.string_table, wbxml_version=version)
    _write(out)


def cmd_wbxml2xml(args: argparse.Namespace) -> None:
    data = _read()
    if data[:1] not in (b"\x01", b"\x02", b"\x03"):
        raise SyncMLError("input is not WBXML (first byte must be the version 0x01-0x03)")
    _write(
        serialize_devinf(parse_devinf(data)) if _is_devinf(data) else to_xml(parse_message(data))
    )


def cmd_vcard(args: argparse.Namespace) -> None:
    contacts = parse_vcards(_read())
    if args.to:
        _write("".join(serialize_vcard(c, args.to) for c in contacts).encode("utf-8"))
        return
    out = []
    for c in contacts:
        d = dataclasses.asdict(c)
        d["normalized"] = c.normalized(args.country_code)
        out.append(d)
    _json(out[0] if len(out) == 1 else out)


def cmd_devinf(args: argparse.Namespace) -> None:
    dev = parse_devinf(_read())
    d = dataclasses.asdict(dev)
    d["vcard_properties"] = dev.vcard_properties()
    _json(d)


def cmd_san_encode(args: argparse.Namespace) -> None:
    try:
        spec = json.loads(_read() or b"{}")
        syncs = [SANSync(**s) for s in spec.pop("syncs", [])]
        spec.pop("digest", None)
        vendor = bytes.fromhex(spec.pop("vendor", ""))
        msg = SANMessage(syncs=syncs, vendor=vendor, **spec)
    except (ValueError, TypeError) as exc:
        raise SyncMLError(f"bad SAN JSON: {exc}") from None
    try:
        out = encode_san(msg, password=args.password, nonce=args.nonce.encode())
    except ValueError as exc:
        raise SyncMLError(str(exc)) from None
    _write(out.hex().encode() + b"\n" if args.hex else out)


def cmd_san_decode(args: argparse.Namespace) -> None:
    data = _read()
    if args.hex:
        try:
            data = bytes.fromhex(data.decode("ascii").strip())
        except (ValueError, UnicodeDecodeError):
            raise SyncMLError("input is not hexadecimal") from None
    msg = decode_san(data)
    d = dataclasses.asdict(msg)
    d["digest"] = msg.digest.hex()
    d["vendor"] = msg.vendor.hex()
    if args.password is not None:
        d["digest_ok"] = verify_san(data, password=args.password, nonce=args.nonce.encode())
    _json(d)


def cmd_md5_cred(args: argparse.Namespace) -> None:
    _write((md5_credential(args.user, args.password, decode_nonce(args.nonce)) + "\n").encode())


def cmd_basic_cred(args: argparse.Namespace) -> None:
    _write((basic_credential(args.user, args.password) + "\n").encode())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sync.syncml", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("xml2wbxml", help="SyncML or DevInf XML (stdin) to WBXML (stdout)")
    s.add_argument("--string-table", action="store_true", help="put repeated strings in STR_T")
    s.add_argument("--wbxml-version", choices=("1.2", "1.3"), default="1.2")
    s.set_defaults(func=cmd_xml2wbxml)
    s = sub.add_parser("wbxml2xml", help="SyncML or DevInf WBXML (stdin) to XML (stdout)")
    s.set_defaults(func=cmd_wbxml2xml)
    s = sub.add_parser("vcard", help="parse vCards (stdin), print JSON with normalised keys")
    s.add_argument("--country-code", default="+49", help="default country calling code")
    s.add_argument("--to", choices=("2.1", "3.0"), help="print the vCard(s) in this version")
    s.set_defaults(func=cmd_vcard)
    s = sub.add_parser("devinf", help="parse DevInf XML/WBXML (stdin), print JSON")
    s.set_defaults(func=cmd_devinf)
    s = sub.add_parser("san-encode", help="SAN JSON (stdin) to package #0 bytes (stdout)")
    s.add_argument("--password", required=True, help="server password for the digest")
    s.add_argument("--nonce", default="", help="nonce (text) for the digest")
    s.add_argument("--hex", action="store_true", help="write hex instead of bytes")
    s.set_defaults(func=cmd_san_encode)
    s = sub.add_parser("san-decode", help="package #0 bytes (stdin) to JSON")
    s.add_argument("--hex", action="store_true", help="read hex instead of bytes")
    s.add_argument("--password", help="verify the digest with this server password")
    s.add_argument("--nonce", default="", help="nonce (text) for verification")
    s.set_defaults(func=cmd_san_decode)
    s = sub.add_parser("md5-cred", help="print syncml:auth-md5 Cred Data")
    s.add_argument("--user", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--nonce", required=True, help="nonce as sent on the wire (base64)")
    s.set_defaults(func=cmd_md5_cred)
    s = sub.add_parser("basic-cred", help="print syncml:auth-basic Cred Data")
    s.add_argument("--user", required=True)
    s.add_argument("--password", required=True)
    s.set_defaults(func=cmd_basic_cred)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SyncMLError as exc:
        sys.stderr.write(json.dumps({"error": str(exc)}) + "\n")
        return 1
    return 0
