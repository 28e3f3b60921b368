"""SyncML authentication: syncml:auth-basic and syncml:auth-md5 (SyncML RepPro 1.1+ 5.1.5).

* basic: Cred Data is ``B64(user ":" password)``.
* md5 (DS 1.1 and later): Cred Data is ``B64(MD5(B64(MD5(user ":" password)) ":" nonce))``,
  where ``nonce`` is the raw nonce; on the wire (Chal/NextNonce) it is base64, so decode it
  first (:func:`decode_nonce`). The user name travels in SyncHdr ``Source/LocName``.

Servers may store ``B64(MD5(user:password))`` (see :func:`md5_user_digest`) instead of the
plain password; that value is password-equivalent for MD5 auth, so protect it as a secret.
Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from .errors import SyncMLAuthError
from .model import Chal, Cred, Meta, SyncHdr

AUTH_BASIC = "syncml:auth-basic"
AUTH_MD5 = "syncml:auth-md5"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SyncMLAuthError(f"{what} is not valid base64") from None


def generate_nonce(nbytes: int = 16) -> str:
    """A fresh random nonce in its wire form (base64), for Chal/NextNonce."""
    return _b64(secrets.token_bytes(nbytes))


def decode_nonce(wire: str) -> bytes:
    """The raw nonce from its base64 wire form."""
    return _unb64(wire, "nonce")


def basic_credential(user: str, password: str) -> str:
    """Cred Data for syncml:auth-basic."""
    return _b64(f"{user}:{password}".encode())


def parse_basic(data: str) -> tuple[str, str]:
    """Split basic Cred Data into (user, password)."""
    raw = _unb64(data, "basic credential")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    user, sep, password = text.partition(":")
    if not sep:
        raise SyncMLAuthError("basic credential has no ':' between user and password")
    return user, password


def md5_user_digest(user: str, password: str) -> str:
    """``B64(MD5(user:password))``: the storable, password-equivalent secret for MD5 auth."""
    return _b64(hashlib.md5(f"{user}:{password}".encode()).digest())


def md5_from_user_digest(user_digest: str, nonce: bytes) -> str:
    """Cred Data for syncml:auth-md5 from a stored ``B64(MD5(user:password))``."""
    return _b64(hashlib.md5(user_digest.encode("ascii") + b":" + nonce).digest())


def md5_credential(user: str, password: str, nonce: bytes) -> str:
    """Cred Data for syncml:auth-md5 (nonce already base64-decoded)."""
    return md5_from_user_digest(md5_user_digest(user, password), nonce)


def _same_b64(given: str, expected: str) -> bool:
    try:
        a = base64.b64decode("".join(given.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(a, base64.b64decode(expected))


def credential_user(cred: Cred, hdr: SyncHdr | None = None) -> str | None:
    """The claimed user name: inside the basic credential, or SyncHdr Source/LocName for MD5."""
    if cred.auth_type == AUTH_BASIC:
        return parse_basic(cred.data)[0]
    if hdr is not None and hdr.source is not None:
        return hdr.source.loc_name
    return None


def verify_credential(
    cred: Cred,
    *,
    user: str,
    password: str | None = None,
    password_md5: str | None = None,
    nonce: bytes | None = None,
) -> bool:
    """Check ``cred`` for ``user`` against a stored secret.

    Give ``password`` (plain) or, for MD5 only, ``password_md5`` (``B64(MD5(user:pass))``).
    ``nonce`` is the raw nonce the server last sent (needed for MD5). Returns False for a
    wrong secret; raises :class:`SyncMLAuthError` for an unsupported or malformed credential
    or a missing secret.
    """
    kind = cred.auth_type
    fmt = (cred.meta.format or "").strip() if cred.meta else ""
    if kind == AUTH_BASIC:
        if password is None:
            raise SyncMLAuthError("basic authentication needs the plain password")
        got_user, got_password = parse_basic(cred.data)
        ok_user = hmac.compare_digest(got_user.encode(), user.encode())
        ok_pass = hmac.compare_digest(got_password.encode(), password.encode())
        return ok_user and ok_pass
    if kind == AUTH_MD5:
        if nonce is None:
            raise SyncMLAuthError("MD5 authentication needs the nonce sent to the client")
        if fmt and fmt != "b64":
            raise SyncMLAuthError(f"MD5 credential in unsupported format {fmt!r}")
        if password_md5 is None:
            if password is None:
                raise SyncMLAuthError("MD5 authentication needs a password or its MD5 digest")
            password_md5 = md5_user_digest(user, password)
        return _same_b64(cred.data, md5_from_user_digest(password_md5, nonce))
    raise SyncMLAuthError(f"unsupported authentication type {kind!r}")


def make_cred(kind: str, user: str, password: str, nonce: bytes | None = None) -> Cred:
    """Build a client Cred (useful for simulated handsets and tests)."""
    if kind == AUTH_BASIC:
        return Cred(meta=Meta(type=AUTH_BASIC, format="b64"), data=basic_credential(user, password))
    if kind == AUTH_MD5:
        if nonce is None:
            raise SyncMLAuthError("MD5 credential needs a nonce")
        return Cred(
            meta=Meta(type=AUTH_MD5, format="b64"), data=md5_credential(user, password, nonce)
        )
    raise SyncMLAuthError(f"unsupported authentication type {kind!r}")


def make_chal(kind: str = AUTH_MD5, next_nonce: str | None = None) -> Chal:
    """A Chal for status 401/407 (and the NextNonce with 212); nonce in wire (base64) form."""
    if kind == AUTH_MD5 and next_nonce is None:
        next_nonce = generate_nonce()
    return Chal(meta=Meta(type=kind, format="b64", next_nonce=next_nonce))
