"""OMA DS 1.2 Server-Alerted Notification, package #0 (OMA-TS-DS_Protocol 1.2, section 12 and
the DS notification format; layout in docs/syncml.md).

::

  digest      16 B  MD5(B64(MD5(server-id ":" password)) ":" nonce ":" B64(MD5(notification)))
  header       7 B  version:10 | ui-mode:2 | initiator:1 | future:27 | session-id:16
  server-id    1 B length + bytes
  body         1 B  num-syncs:4 | future:4
  per sync     4 B  sync-type:4 | future:4 | content-type:24, then 1 B length + server URI
  vendor       rest

``notification`` is everything after the digest. Big-endian, MSB first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from .errors import SyncMLParseError, SyncMLSizeError

SAN_CONTENT_TYPE = "application/vnd.syncml.ds.notification"
SAN_WSP_CONTENT_TYPE = 0x4E
SAN_WAP_APPLICATION_ID = 0x05  # x-wap-application:push.syncml
SAN_WDP_PORT = 2948

UI_NOT_SPECIFIED, UI_BACKGROUND, UI_INFORMATIVE, UI_USER_INTERACTION = 0, 1, 2, 3
CT_X_VCARD = 0x07  # WSP content-type code for text/x-vcard
CT_VCARD = 0x0309  # text/vcard
MAX_SAN_BYTES = 64 * 1024


@dataclass(kw_only=True)
class SANSync:
    """One datastore to sync: alert code 206..210, WSP content type code, server URI."""

    sync_type: int = 206
    content_type: int = CT_X_VCARD
    server_uri: str = ""


@dataclass(kw_only=True)
class SANMessage:
    version: int = 12
    ui_mode: int = UI_NOT_SPECIFIED
    initiator: int = 1
    session_id: int = 0
    server_id: str = ""
    syncs: list[SANSync] = field(default_factory=list)
    vendor: bytes = b""
    digest: bytes = b""


def _b64md5(data: bytes) -> bytes:
    return base64.b64encode(hashlib.md5(data).digest())


def san_digest(server_id: str, password: str, nonce: bytes, notification: bytes) -> bytes:
    """The 16-byte SAN digest over ``notification`` (the message after the digest field)."""
    cred = _b64md5(f"{server_id}:{password}".encode())
    return hashlib.md5(cred + b":" + nonce + b":" + _b64md5(notification)).digest()


def encode_notification(msg: SANMessage) -> bytes:
    """The SAN without digest (header, server id, body, vendor data)."""
    if not 0 <= msg.version < 1024:
        raise ValueError("SAN version must fit 10 bits")
    if not 0 <= msg.ui_mode <= 3 or msg.initiator not in (0, 1):
        raise ValueError("SAN ui-mode must be 0..3 and initiator 0 or 1")
    if not 0 <= msg.session_id <= 0xFFFF:
        raise ValueError("SAN session id must fit 16 bits")
    if len(msg.syncs) > 15:
        raise ValueError("a SAN carries at most 15 syncs")
    sid = msg.server_id.encode("utf-8")
    if len(sid) > 255:
        raise ValueError("SAN server id longer than 255 bytes")
    head = (msg.version << 46) | (msg.ui_mode << 44) | (msg.initiator << 43) | msg.session_id
    out = bytearray(head.to_bytes(7, "big"))
    out += bytes([len(sid)]) + sid
    out.append(len(msg.syncs) << 4)
    for s in msg.syncs:
        code = s.sync_type - 200
        if not 6 <= code <= 10:
            raise ValueError(f"SAN sync type must be 206..210, not {s.sync_type}")
        if not 0 <= s.content_type <= 0xFFFFFF:
            raise ValueError("SAN content type must fit 24 bits")
        uri = s.server_uri.encode("utf-8")
        if len(uri) > 255:
            raise ValueError("SAN server URI longer than 255 bytes")
        out += ((code << 28) | s.content_type).to_bytes(4, "big")
        out += bytes([len(uri)]) + uri
    return bytes(out) + msg.vendor


def encode_san(msg: SANMessage, *, password: str, nonce: bytes) -> bytes:
    """Encode ``msg`` with the digest computed from the server password and nonce."""
    body = encode_notification(msg)
    return san_digest(msg.server_id, password, nonce, body) + body


def decode_san(data: bytes) -> SANMessage:
    """Decode a SAN package (digest not verified: see :func:`verify_san`)."""
    if not isinstance(data, bytes | bytearray):
        raise SyncMLParseError("SAN must be bytes")
    if len(data) > MAX_SAN_BYTES:
        raise SyncMLSizeError(f"SAN of {len(data)} bytes exceeds {MAX_SAN_BYTES}")
    data = bytes(data)
    if len(data) < 16 + 7 + 1 + 1:
        raise SyncMLParseError(f"SAN too short ({len(data)} bytes)")
    pos = 16
    head = int.from_bytes(data[pos : pos + 7], "big")
    pos += 7
    msg = SANMessage(
        digest=data[:16],
        version=head >> 46,
        ui_mode=(head >> 44) & 0x3,
        initiator=(head >> 43) & 0x1,
        session_id=head & 0xFFFF,
    )

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise SyncMLParseError(f"SAN truncated in {what} at offset {pos}")
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    def text(raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SyncMLParseError(f"SAN {what} is not UTF-8") from None

    msg.server_id = text(take(take(1, "server id length")[0], "server id"), "server id")
    count = take(1, "body")[0] >> 4
    for _ in range(count):
        word = int.from_bytes(take(4, "sync"), "big")
        uri = text(take(take(1, "server URI length")[0], "server URI"), "server URI")
        msg.syncs.append(
            SANSync(sync_type=200 + (word >> 28), content_type=word & 0xFFFFFF, server_uri=uri)
        )
    msg.vendor = data[pos:]
    return msg


def verify_san(data: bytes, *, password: str, nonce: bytes, server_id: str | None = None) -> bool:
    """True if the SAN's digest matches (server id taken from the message unless given)."""
    msg = decode_san(data)
    sid = msg.server_id if server_id is None else server_id
    return hmac.compare_digest(data[:16], san_digest(sid, password, nonce, bytes(data[16:])))
