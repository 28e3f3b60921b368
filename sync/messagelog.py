"""The support log of SyncML messages: cheap to write, rendered (and redacted) when read.

The engine stores each request as received, zlib-compressed, after blanking the credential
data in place (same length, so XML and WBXML stay well-formed); the reply is stored anyway,
compressed too (the resend cache). Display parses the bytes again and writes XML with every
``Cred`` blanked, so a credential is never shown even for rows written before the in-place
blanking.
"""

from __future__ import annotations

import zlib

from sync.syncml import SyncML, SyncMLError, parse_message, to_xml
from sync.syncml.limits import Limits

# What the server admits in one request (the engine applies the same): 2 MB, and elements
# enough for a message of the 1 MB it advertises as MaxMsgSize filled with the smallest Adds
# (about 12 bytes an element).
MESSAGE_LIMITS = Limits(max_bytes=2 * 1024 * 1024, max_depth=48, max_elements=100_000)
_ZLIB_MAGIC = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")


def _creds(msg: SyncML) -> list:
    out = []
    for holder in [msg.hdr, *msg.iter_commands()]:
        cred = getattr(holder, "cred", None)
        if cred is not None:
            out.append(cred)
    return out


def blank_credentials(body: bytes, msg: SyncML) -> bytes | None:
    """`body` with every credential's data replaced by asterisks of the same length.

    None when a credential cannot be found verbatim in the bytes (the caller then stores a
    redacted rendering instead).
    """
    for cred in _creds(msg):
        secret = (cred.data or "").strip().encode("utf-8")
        if not secret:
            continue
        if secret not in body:
            return None
        body = body.replace(secret, b"*" * len(secret))
    return body


def redacted_xml(msg: SyncML) -> str:
    """The message as XML with every credential shown as ``***``."""
    saved = []
    for cred in _creds(msg):
        saved.append((cred, cred.data))
        cred.data = "***"
    try:
        return to_xml(msg).decode("utf-8", "replace")
    except SyncMLError as exc:
        return f"(not loggable: {exc})"
    finally:
        for cred, data in saved:
            cred.data = data


def pack_request(body: bytes, msg: SyncML) -> bytes:
    """What SyncMessage.request stores: the blanked request, compressed (level 1: fast)."""
    blanked = blank_credentials(body, msg) if _creds(msg) else body
    if blanked is None:
        blanked = redacted_xml(msg).encode("utf-8")
    return zlib.compress(blanked, 1)


def _render(raw: bytes) -> str:
    if not raw:
        return ""
    try:
        msg = parse_message(raw, limits=MESSAGE_LIMITS)
    except SyncMLError as exc:
        return f"(not loggable: {exc})"
    return redacted_xml(msg)


def pack_response(body: bytes) -> bytes:
    """What SyncMessage.response stores: the reply as sent, compressed (level 1). It is the
    resend cache (`unpack` gives the bytes back); a refresh's reply of a thousand Statuses is
    150 KB of XML, a tenth of that compressed, and the row is written with every message."""
    return zlib.compress(body, 1)


def unpack(stored: bytes) -> bytes:
    """The bytes a log column holds, decompressed (rows written before compression, and
    responses before `pack_response`, are stored as they were: XML starts with '<', WBXML
    with its version byte, never a zlib header). Raises zlib.error for a corrupt entry."""
    if stored[:2] in _ZLIB_MAGIC:
        return zlib.decompress(stored)
    return stored


def render_request(stored: bytes) -> str:
    if not stored:
        return ""
    try:
        raw = unpack(stored)
    except zlib.error:
        return "(not loggable: corrupt log entry)"
    return _render(raw)


# Both columns are stored (packed) and shown the same way.
render_response = render_request
