"""syncml:auth-basic and syncml:auth-md5 (formula of the protocol notes, section 1.6)."""

import base64
import hashlib

import pytest

from sync.syncml import Cred, Location, Meta, SyncHdr, SyncMLAuthError
from sync.syncml.auth import (
    AUTH_BASIC,
    AUTH_MD5,
    basic_credential,
    credential_user,
    decode_nonce,
    generate_nonce,
    make_chal,
    make_cred,
    md5_credential,
    md5_from_user_digest,
    md5_user_digest,
    parse_basic,
    verify_credential,
)


def independent_md5(user, password, nonce_wire):
    """The formula written out with hashlib only."""
    inner = base64.b64encode(hashlib.md5(f"{user}:{password}".encode()).digest())
    nonce = base64.b64decode(nonce_wire)
    return base64.b64encode(hashlib.md5(inner + b":" + nonce).digest()).decode()


def test_captured_basic_value():
    assert parse_basic("Ym9iOnB3Mg==") == ("bob", "pw2")
    assert basic_credential("bob", "pw2") == "Ym9iOnB3Mg=="
    cred = Cred(meta=Meta(type=AUTH_BASIC, format="b64"), data="Ym9iOnB3Mg==")
    assert verify_credential(cred, user="bob", password="pw2")
    assert not verify_credential(cred, user="bob", password="pw3")
    assert not verify_credential(cred, user="alice", password="pw2")
    assert credential_user(cred) == "bob"
    # no Meta at all means basic (SyncML RepPro default)
    assert verify_credential(Cred(data="Ym9iOnB3Mg=="), user="bob", password="pw2")


@pytest.mark.parametrize(
    "user, password, nonce_wire",
    [("bob", "pw2", "Zm9vYmFy"), ("alice", "secret", base64.b64encode(bytes(range(16))).decode()),
     ("jürgen", "pässwörd", "AAEC"), ("u", "", "")],
)  # fmt: skip
def test_md5_against_independent_computation(user, password, nonce_wire):
    nonce = decode_nonce(nonce_wire)
    expected = independent_md5(user, password, nonce_wire)
    assert md5_credential(user, password, nonce) == expected
    assert md5_from_user_digest(md5_user_digest(user, password), nonce) == expected
    cred = Cred(meta=Meta(type=AUTH_MD5, format="b64"), data=expected)
    assert verify_credential(cred, user=user, password=password, nonce=nonce)
    stored = md5_user_digest(user, password)
    assert verify_credential(cred, user=user, password_md5=stored, nonce=nonce)
    assert not verify_credential(cred, user=user, password=password + "x", nonce=nonce)
    assert not verify_credential(cred, user=user, password=password, nonce=nonce + b"x")


def test_md5_user_from_locname_and_errors():
    nonce = decode_nonce(generate_nonce())
    cred = make_cred(AUTH_MD5, "bob", "pw2", nonce)
    hdr = SyncHdr(source=Location(loc_uri="imei", loc_name="bob"))
    assert credential_user(cred, hdr) == "bob"
    with pytest.raises(SyncMLAuthError, match="nonce"):
        verify_credential(cred, user="bob", password="pw2")
    with pytest.raises(SyncMLAuthError, match="password"):
        verify_credential(cred, user="bob", nonce=nonce)
    assert not verify_credential(
        Cred(meta=cred.meta, data="!!!"), user="bob", password="pw2", nonce=nonce
    )
    with pytest.raises(SyncMLAuthError, match="unsupported"):
        verify_credential(
            Cred(meta=Meta(type="syncml:auth-X509"), data="x"), user="u", password="p"
        )
    with pytest.raises(SyncMLAuthError, match="base64"):
        parse_basic("%%%")
    with pytest.raises(SyncMLAuthError, match="':'"):
        parse_basic(base64.b64encode(b"nocolon").decode())
    with pytest.raises(SyncMLAuthError, match="plain password"):
        verify_credential(make_cred(AUTH_BASIC, "a", "b"), user="a", password_md5="x")


def test_nonce_generation_and_chal():
    a, b = generate_nonce(), generate_nonce()
    assert a != b and len(decode_nonce(a)) == 16
    chal = make_chal()
    assert chal.meta.type == AUTH_MD5 and chal.meta.format == "b64" and chal.meta.next_nonce
    assert make_chal(AUTH_BASIC).meta.next_nonce is None
