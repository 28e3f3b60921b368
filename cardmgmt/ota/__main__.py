"""Command-line tool: `python -m cardmgmt.ota VERB` reads one JSON object on stdin and writes one
JSON object on stdout; on error it writes {"error": "..."} and exits 1 (bad OTA data) or 2
(bad request). Field names follow the public vectors: hex strings for octets, ints for counters.
See docs/ota.md for every verb with examples.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cap import CapFile, parse_cap
from .command import KeySet, SecuredCommandPacket, card_decode_command, encode_command
from .demo_cap import SYNC_APPLET_AID, SYNC_PACKAGE_AID, build_demo_cap
from .errors import FormatError, OtaError
from .gp import parse_install_params
from .planner import CardProfileParams, LoadAndInstall, plan, secure_plan
from .por import ResponsePacket, decode_por, describe_por, encode_por, parse_additional_data
from .rapdu import ExpandedResponse
from .sms import (
    CPI,
    MAX_SINGLE_PACKET,
    RPI,
    Reassembled,
    Reassembler,
    fits_single_sms,
    segment_packet,
)
from .spi import KeyAlgorithm, PorStatus, RcAlgorithm, Spi


class RequestError(Exception):
    """The JSON request itself is wrong (missing field, not hex...)."""


def _field(req: dict[str, Any], name: str, default: Any = ...) -> Any:
    if name not in req:
        if default is ...:
            raise RequestError(f"missing field {name!r}")
        return default
    return req[name]


def _hex(req: dict[str, Any], name: str, default: Any = ...) -> bytes:
    value = _field(req, name, default)
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise RequestError(f"field {name!r} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise RequestError(f"field {name!r} is not hex: {value!r}") from None


def _byte(req: dict[str, Any], name: str, default: Any = ...) -> int:
    value = _field(req, name, default)
    if isinstance(value, int):
        return value
    raw = _hex({name: value}, name)
    if len(raw) != 1:
        raise RequestError(f"field {name!r} must be one octet")
    return raw[0]


def _int(req: dict[str, Any], name: str, default: Any = ...) -> int:
    value = _field(req, name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestError(f"field {name!r} must be an integer")
    return value


def _spi(req: dict[str, Any], name: str = "spi") -> Spi:
    return Spi.from_bytes(_hex(req, name))


def _keys(req: dict[str, Any]) -> KeySet:
    return KeySet(_hex(req, "kic_key", ""), _hex(req, "kid_key", ""))


def encode_command_verb(req: dict[str, Any]) -> dict[str, Any]:
    packet = encode_command(
        SecuredCommandPacket(
            _spi(req), _byte(req, "kic"), _byte(req, "kid"), _hex(req, "tar"),
            _int(req, "cntr"), _hex(req, "data"),
        ),
        _hex(req, "kic_key", ""),
        _hex(req, "kid_key", ""),
        cmac_length=_int(req, "cmac_length", 8),
    )  # fmt: skip
    user_data = segment_packet(
        packet, reference=_int(req, "reference", _int(req, "cntr") & 0xFF),
        ref16=bool(_field(req, "ref16", False)),
    )  # fmt: skip
    return {
        "packet": packet.hex(),
        "user_data": [ud.hex() for ud in user_data],
        "sms_count": len(user_data),
        "fits_single_sms": fits_single_sms(len(packet)),
    }


def _reassemble(items: list[Any]) -> Reassembled:
    reassembler = Reassembler()
    result = None
    for item in items:
        result = reassembler.add(_hex({"user_data": item}, "user_data")) or result
    if result is None:
        raise FormatError(f"segments incomplete: {len(items)} given, message not complete")
    return result


def decode_command_verb(req: dict[str, Any]) -> dict[str, Any]:
    if "packet" in req:
        packet = _hex(req, "packet")
    else:
        ud = _field(req, "user_data")
        packet = _reassemble(ud if isinstance(ud, list) else [ud]).packet
    tars = _field(req, "known_tars", None)
    known = None if tars is None else {_hex({"tar": t}, "tar") for t in tars}
    verdict = card_decode_command(
        packet, _keys(req), card_counter=_field(req, "card_counter", None), known_tars=known
    )
    return {
        "status": f"{int(verdict.status):02x}",
        "status_text": verdict.status.description,
        "reason": verdict.reason,
        "spi": verdict.spi.raw.hex(),
        "kic": f"{verdict.kic:02x}",
        "kid": f"{verdict.kid:02x}",
        "tar": verdict.tar.hex(),
        "cntr": verdict.cntr,
        "data": verdict.data.hex(),
        "new_counter": verdict.new_counter,
        "por_wanted": verdict.por_wanted,
    }


def encode_por_verb(req: dict[str, Any]) -> dict[str, Any]:
    status = _field(req, "status")
    por = ResponsePacket(
        _hex(req, "tar"),
        _int(req, "cntr"),
        PorStatus(status if isinstance(status, int) else _byte(req, "status")),
        _hex(req, "additional_data", ""),
    )
    user_data = encode_por(
        por, _spi(req), _byte(req, "kic", 0), _byte(req, "kid", 0),
        _hex(req, "kic_key", ""), _hex(req, "kid_key", ""),
        cmac_length=_int(req, "cmac_length", 8), unsecured=bool(_field(req, "unsecured", False)),
    )  # fmt: skip
    return {"user_data": user_data.hex()}


def decode_por_verb(req: dict[str, Any]) -> dict[str, Any]:
    spi = _spi(req) if "spi" in req else None
    expanded = bool(_field(req, "expanded", False))
    por = decode_por(
        _hex(req, "user_data"), spi=spi, kic=_byte(req, "kic", 0), kid=_byte(req, "kid", 0),
        keys=_keys(req),
    )  # fmt: skip
    out: dict[str, Any] = {
        "tar": por.tar.hex(),
        "cntr": por.cntr,
        "status": f"{int(por.status):02x}",
        "status_text": por.status.description,
        "additional_data": por.additional_data.hex(),
        "verified": por.verified,
        "ciphered": por.ciphered,
        "summary": describe_por(por, expanded=expanded),
    }
    try:
        result = parse_additional_data(por.additional_data, expanded=expanded)
    except FormatError:
        result = None
    if isinstance(result, ExpandedResponse):
        out["executed"] = result.executed
        out["rapdus"] = [r.hex() for r in result.rapdus]
    elif result is not None:
        out.update(executed=result.executed, sw=result.sw_hex.lower(), response=result.data.hex())
    return out


def segments_verb(req: dict[str, Any]) -> dict[str, Any]:
    if "packet" in req:
        packet = _hex(req, "packet")
        parts = segment_packet(
            packet, reference=_int(req, "reference", 0), ref16=bool(_field(req, "ref16", False)),
            iei=_byte(req, "iei", 0x70),
        )  # fmt: skip
        return {"user_data": [p.hex() for p in parts], "sms_count": len(parts)}
    items = _field(req, "user_data")
    if not isinstance(items, list):
        items = [items]
    whole = _reassemble(items)
    kind = "command" if CPI in whole.ies else "response" if RPI in whole.ies else "other"
    return {"packet": whole.packet.hex(), "segments": whole.segments, "kind": kind}


def _load_cap(req: dict[str, Any]) -> CapFile:
    if "path" in req:
        path = Path(_field(req, "path"))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RequestError(f"cannot read {path}: {exc.strerror}") from None
    elif "base64" in req:
        try:
            data = base64.b64decode(_field(req, "base64"), validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise RequestError("field 'base64' is not base64") from None
    elif "demo" in req:
        demo = _field(req, "demo")
        data = build_demo_cap(
            _hex(demo, "package_aid", SYNC_PACKAGE_AID), _hex(demo, "applet_aid", SYNC_APPLET_AID),
            code_size=_int(demo, "code_size", 64),
        )  # fmt: skip
    else:
        raise RequestError("give the CAP file as 'path', 'base64' or 'demo'")
    return parse_cap(data)


def cap_info_verb(req: dict[str, Any]) -> dict[str, Any]:
    cap = _load_cap(req)
    include = bool(_field(req, "include_descriptor", False))
    lfdb = cap.load_file_data_block(include_descriptor=include)
    out = {
        "package_aid": cap.package_aid.hex(),
        "package_version": cap.version_text,
        "cap_version": f"{cap.cap_version[0]}.{cap.cap_version[1]}",
        "applet_aids": [a.hex() for a in cap.applet_aids],
        "imports": [{"aid": aid.hex(), "version": f"{v[0]}.{v[1]}"} for aid, v in cap.imports],
        "components": {name: len(comp) for name, comp in cap.components.items()},
        "load_file_components": list(lfdb.components),
        "load_file_size": len(lfdb),
    }
    if _field(req, "with_load_file", False):
        out["load_file_data_block"] = lfdb.data.hex()
    return out


def _algorithm(value: Any) -> int:
    if isinstance(value, int):
        return value
    for enum in (KeyAlgorithm, RcAlgorithm):
        if value in enum.__members__:
            return int(enum[value])
    raise RequestError(f"unknown algorithm {value!r} (e.g. AES, TDES_2KEY, CRC32)")


def _profile(req: dict[str, Any]) -> CardProfileParams:
    p = _field(req, "profile", {})
    if not isinstance(p, dict):
        raise RequestError("field 'profile' must be an object")
    kwargs: dict[str, Any] = {}
    if "spi" in p:
        kwargs["spi"] = _spi(p)
    if "kic" in p:  # a whole KIc/KID octet gives keyset and algorithm at once
        kic = _byte(p, "kic")
        kwargs.update(kvn=kic >> 4, kic_algorithm=kic & 0x0F)
    if "kid" in p:
        kwargs["kid_algorithm"] = _byte(p, "kid") & 0x0F
    for name in ("kic_algorithm", "kid_algorithm"):
        if name in p:
            kwargs[name] = _algorithm(p[name])
    for name in ("kvn", "cmac_length", "max_load_block"):
        if name in p:
            kwargs[name] = _int(p, name)
    for name in ("ram_tar", "rfm_tar"):
        if name in p:
            kwargs[name] = _hex(p, name)
    for name in ("include_descriptor", "single_sms", "concat_ref16", "name"):
        if name in p:
            kwargs[name] = p[name]
    return CardProfileParams(**kwargs)


def load_script_verb(req: dict[str, Any]) -> dict[str, Any]:
    cap = _load_cap(req)
    params = _hex(req, "install_params", b"\xc9\x00")
    parse_install_params(params)  # refuse malformed parameters before planning
    operation = LoadAndInstall(
        cap,
        instance_aid=_hex(req, "instance_aid") if "instance_aid" in req else None,
        privileges=_hex(req, "privileges", b"\x00"),
        install_params=params,
    )
    script = plan(operation, _profile(req))
    steps: list[dict[str, Any]] = [
        {
            "description": s.description,
            "tar": s.tar.hex(),
            "apdus": [a.hex() for a in s.apdus],
            "packet_length": s.length,
            "sms": s.sms,
        }
        for s in script.steps
    ]
    if "kic_key" in req or "kid_key" in req:
        counter = iter(range(_int(req, "cntr", 1), 1 << 40))
        for step, message in zip(
            steps, secure_plan(script, _keys(req), lambda: next(counter)), strict=True
        ):
            step.update(
                cntr=message.cntr,
                packet=message.packet.hex(),
                user_data=[u.hex() for u in message.user_data],
            )
    return {
        "load_file_size": cap.load_file_size(include_descriptor=script.profile.include_descriptor),
        "load_block_size": script.load_block_size,
        "packet_count": script.packet_count,
        "sms_count": script.sms_count,
        "max_single_sms_packet": MAX_SINGLE_PACKET,
        "steps": steps,
    }


def demo_cap_verb(req: dict[str, Any]) -> dict[str, Any]:
    data = build_demo_cap(
        _hex(req, "package_aid", SYNC_PACKAGE_AID), _hex(req, "applet_aid", SYNC_APPLET_AID),
        code_size=_int(req, "code_size", 64),
    )  # fmt: skip
    return {"base64": base64.b64encode(data).decode(), "size": len(data)}


VERBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "encode-command": encode_command_verb,
    "decode-command": decode_command_verb,
    "encode-por": encode_por_verb,
    "decode-por": decode_por_verb,
    "segments": segments_verb,
    "cap-info": cap_info_verb,
    "load-script": load_script_verb,
    "demo-cap": demo_cap_verb,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in VERBS:
        _emit({"error": f"usage: python -m cardmgmt.ota {{{','.join(VERBS)}}} < request.json"})
        return 2
    try:
        request = json.loads(sys.stdin.read() or "{}")
        if not isinstance(request, dict):
            raise RequestError("the request must be one JSON object")
        _emit(VERBS[args[0]](request))
        return 0
    except OtaError as exc:
        _emit({"error": str(exc)})
        return 1
    except (RequestError, json.JSONDecodeError) as exc:
        _emit({"error": f"bad request: {exc}"})
        return 2
    except (TypeError, ValueError) as exc:  # a field of the wrong JSON type deep in a call
        _emit({"error": f"bad request: {exc}"})
        return 2


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
