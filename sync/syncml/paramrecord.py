"""The sync parameter record: the BER-TLV structure the portal writes into the SIM applet.

Pure code (no Django): the portal encodes it, the virtual card in ``handset/`` decodes it.
The coding is documented byte by byte in docs/applet-interface.md ("Parameter record").

Layout (BER-TLV, ISO/IEC 8825-1 definite lengths; tags in the private class)::

    E1 L                       sync parameter record (constructed)
      80 02 vvvv               record version, unsigned big-endian
      81 L  url                sync server URL (UTF-8)
      A2 L                     one datastore (constructed), repeated in order
        80 L name              local name (UTF-8)
        81 L uri               remote URI (UTF-8)
        82 L type              content type (ASCII)
        83 01 mm               sync mode: SyncML alert code minus 200 (0 two-way .. 10)
      A3 L                     device credentials (constructed)
        80 L user              user name (UTF-8)
        81 L secret            secret (UTF-8)
        82 01 aa               auth type: 00 syncml:auth-basic, 01 syncml:auth-md5
      84 04 iiiiiiii           schedule interval in minutes, unsigned big-endian (0: no timer)
      85 01 ff                 trigger flags: b1 OTA trigger, b2 timer, b3 IMEI change, b4 menu
      86 01 pp                 conflict policy hint: 00 merge, 01 server wins, 02 client
                               wins, 03 duplicate

Decoding is strict about what it knows (lengths, sizes, values) and skips unknown tags inside
the record so a newer portal can add fields that older applets ignore.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RECORD_TAG = 0xE1
MAX_RECORD = 4096  # the applet's record file; larger records are refused on both sides

TRIGGER_OTA = 0x01
TRIGGER_TIMER = 0x02
TRIGGER_IMEI_CHANGE = 0x04
TRIGGER_MENU = 0x08

POLICIES = ("merge", "server_wins", "client_wins", "duplicate")
AUTH_TYPES = ("basic", "md5")


class ParamRecordError(ValueError):
    """A parameter record that cannot be encoded or decoded; the message says why."""


@dataclass(kw_only=True)
class DatastoreParam:
    local_name: str
    remote_uri: str
    content_type: str
    mode: int = 200  # SyncML alert code 200..210


@dataclass(kw_only=True)
class ParamRecord:
    version: int
    server_url: str
    datastores: list[DatastoreParam] = field(default_factory=list)
    username: str = ""
    secret: str = ""
    auth_type: str = "md5"
    interval_minutes: int = 0
    trigger_ota: bool = True
    trigger_timer: bool = True
    trigger_imei_change: bool = True
    trigger_menu: bool = True
    conflict_policy: str = "merge"

    @property
    def trigger_flags(self) -> int:
        return (
            (TRIGGER_OTA if self.trigger_ota else 0)
            | (TRIGGER_TIMER if self.trigger_timer else 0)
            | (TRIGGER_IMEI_CHANGE if self.trigger_imei_change else 0)
            | (TRIGGER_MENU if self.trigger_menu else 0)
        )


# ------------------------------------------------------------------------------- encoding


def _length(n: int) -> bytes:
    """BER definite length (X.690 8.1.3): short form below 128, else 81 xx / 82 xx xx."""
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return bytes([0x82, n >> 8, n & 0xFF])
    raise ParamRecordError(f"TLV value of {n} bytes is too long")


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def _text(tag: int, value: str, what: str, *, ascii_only: bool = False) -> bytes:
    if not isinstance(value, str):
        raise ParamRecordError(f"{what} must be text")
    if any(ord(c) < 0x20 for c in value):
        raise ParamRecordError(f"{what} contains control characters")
    try:
        raw = value.encode("ascii" if ascii_only else "utf-8")
    except UnicodeEncodeError:
        raise ParamRecordError(f"{what} must be ASCII") from None
    return _tlv(tag, raw)


def encode_param_record(record: ParamRecord) -> bytes:
    """The record as bytes (tag E1). Raises ParamRecordError for values that do not fit."""
    if not 0 <= record.version <= 0xFFFF:
        raise ParamRecordError("record version must be 0..65535")
    if not record.server_url:
        raise ParamRecordError("the sync server URL is missing")
    if not 0 <= record.interval_minutes <= 0xFFFFFFFF:
        raise ParamRecordError("schedule interval must be 0..4294967295 minutes")
    if record.conflict_policy not in POLICIES:
        raise ParamRecordError(f"conflict policy must be one of {', '.join(POLICIES)}")
    if record.auth_type not in AUTH_TYPES:
        raise ParamRecordError("auth type must be basic or md5")
    body = _tlv(0x80, record.version.to_bytes(2, "big"))
    body += _text(0x81, record.server_url, "server URL")
    for i, ds in enumerate(record.datastores, 1):
        if not 200 <= ds.mode <= 210:
            raise ParamRecordError(f"datastore {i}: sync mode must be an alert code 200..210")
        entry = _text(0x80, ds.local_name, f"datastore {i} local name")
        entry += _text(0x81, ds.remote_uri, f"datastore {i} remote URI")
        entry += _text(0x82, ds.content_type, f"datastore {i} content type", ascii_only=True)
        entry += _tlv(0x83, bytes([ds.mode - 200]))
        body += _tlv(0xA2, entry)
    cred = _text(0x80, record.username, "user name") + _text(0x81, record.secret, "secret")
    cred += _tlv(0x82, bytes([AUTH_TYPES.index(record.auth_type)]))
    body += _tlv(0xA3, cred)
    body += _tlv(0x84, record.interval_minutes.to_bytes(4, "big"))
    body += _tlv(0x85, bytes([record.trigger_flags]))
    body += _tlv(0x86, bytes([POLICIES.index(record.conflict_policy)]))
    out = _tlv(RECORD_TAG, body)
    if len(out) > MAX_RECORD:
        raise ParamRecordError(f"record of {len(out)} bytes exceeds {MAX_RECORD}")
    return out


# ------------------------------------------------------------------------------- decoding


def _read_tlvs(data: bytes, where: str) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        tag = data[i]
        if tag & 0x1F == 0x1F:
            raise ParamRecordError(f"{where}: multi-byte tags are not used (tag {tag:02X})")
        if i + 1 >= len(data):
            raise ParamRecordError(f"{where}: tag {tag:02X} at offset {i} has no length")
        first = data[i + 1]
        if first < 0x80:
            n, i = first, i + 2
        elif first in (0x81, 0x82):
            k = first - 0x80
            if i + 2 + k > len(data):
                raise ParamRecordError(f"{where}: length of tag {tag:02X} is truncated")
            n = int.from_bytes(data[i + 2 : i + 2 + k], "big")
            if (k == 1 and n < 0x80) or (k == 2 and n <= 0xFF):
                raise ParamRecordError(f"{where}: length of tag {tag:02X} is not minimal")
            i += 2 + k
        else:
            raise ParamRecordError(f"{where}: unsupported length byte {first:02X}")
        if i + n > len(data):
            raise ParamRecordError(
                f"{where}: tag {tag:02X} says {n} bytes, only {len(data) - i} left"
            )
        out.append((tag, data[i : i + n]))
        i += n
    return out


def _utf8(value: bytes, what: str) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParamRecordError(f"{what} is not UTF-8") from None
    if any(ord(c) < 0x20 for c in text):
        raise ParamRecordError(f"{what} contains control characters")
    return text


def _one_byte(value: bytes, what: str) -> int:
    if len(value) != 1:
        raise ParamRecordError(f"{what} must be 1 byte, got {len(value)}")
    return value[0]


def decode_param_record(data: bytes) -> ParamRecord:
    """Parse a record written by :func:`encode_param_record` (or a newer one)."""
    if not isinstance(data, bytes | bytearray):
        raise ParamRecordError("record must be bytes")
    if len(data) > MAX_RECORD:
        raise ParamRecordError(f"record of {len(data)} bytes exceeds {MAX_RECORD}")
    top = _read_tlvs(bytes(data), "record")
    if len(top) != 1 or top[0][0] != RECORD_TAG:
        raise ParamRecordError("not a sync parameter record (expected one E1 TLV)")
    fields: dict[int, bytes] = {}
    datastores: list[DatastoreParam] = []
    for tag, value in _read_tlvs(top[0][1], "record E1"):
        if tag == 0xA2:
            sub = dict(_read_tlvs(value, f"datastore {len(datastores) + 1}"))
            n = len(datastores) + 1
            for need in (0x80, 0x81, 0x82, 0x83):
                if need not in sub:
                    raise ParamRecordError(f"datastore {n}: tag {need:02X} missing")
            mode = _one_byte(sub[0x83], f"datastore {n} sync mode")
            if mode > 10:
                raise ParamRecordError(f"datastore {n}: sync mode {mode} is not 0..10")
            datastores.append(
                DatastoreParam(
                    local_name=_utf8(sub[0x80], f"datastore {n} local name"),
                    remote_uri=_utf8(sub[0x81], f"datastore {n} remote URI"),
                    content_type=_utf8(sub[0x82], f"datastore {n} content type"),
                    mode=200 + mode,
                )
            )
        elif tag in fields:
            raise ParamRecordError(f"tag {tag:02X} appears twice")
        else:
            fields[tag] = value
    for need, what in ((0x80, "record version"), (0x81, "server URL"), (0xA3, "credentials")):
        if need not in fields:
            raise ParamRecordError(f"{what} (tag {need:02X}) missing")
    if len(fields[0x80]) != 2:
        raise ParamRecordError("record version must be 2 bytes")
    cred = dict(_read_tlvs(fields[0xA3], "credentials"))
    if 0x80 not in cred or 0x81 not in cred:
        raise ParamRecordError("credentials need a user name (80) and a secret (81)")
    auth = _one_byte(cred.get(0x82, b"\x01"), "auth type")
    if auth >= len(AUTH_TYPES):
        raise ParamRecordError(f"auth type {auth} is not 0 or 1")
    interval = fields.get(0x84, b"\x00\x00\x00\x00")
    if len(interval) != 4:
        raise ParamRecordError("schedule interval must be 4 bytes")
    flags = _one_byte(fields.get(0x85, b"\x00"), "trigger flags")
    policy = _one_byte(fields.get(0x86, b"\x00"), "conflict policy")
    if policy >= len(POLICIES):
        raise ParamRecordError(f"conflict policy {policy} is not 0..3")
    return ParamRecord(
        version=int.from_bytes(fields[0x80], "big"),
        server_url=_utf8(fields[0x81], "server URL"),
        datastores=datastores,
        username=_utf8(cred[0x80], "user name"),
        secret=_utf8(cred[0x81], "secret"),
        auth_type=AUTH_TYPES[auth],
        interval_minutes=int.from_bytes(interval, "big"),
        trigger_ota=bool(flags & TRIGGER_OTA),
        trigger_timer=bool(flags & TRIGGER_TIMER),
        trigger_imei_change=bool(flags & TRIGGER_IMEI_CHANGE),
        trigger_menu=bool(flags & TRIGGER_MENU),
        conflict_policy=POLICIES[policy],
    )
