"""OMA DS 1.2 Server-Alerted Notification (protocol notes 1.11)."""

import base64
import hashlib

import pytest

from sync.syncml import SyncMLError
from sync.syncml.san import (
    CT_VCARD,
    CT_X_VCARD,
    SANMessage,
    SANSync,
    decode_san,
    encode_notification,
    encode_san,
    san_digest,
    verify_san,
)

EXAMPLE_DIGEST = bytes.fromhex("a1a72024d9278980a4014627edd764fd")
EXAMPLE_REST = (
    bytes.fromhex("03 08 00 00 00 00 01")
    + b"\x0cOperatorSync"
    + b"\x10"
    + bytes.fromhex("60 00 00 07")
    + b"\x08contacts"
)
EXAMPLE = EXAMPLE_DIGEST + EXAMPLE_REST


def example_message():
    return SANMessage(
        version=12, ui_mode=0, initiator=1, session_id=1, server_id="OperatorSync",
        syncs=[SANSync(sync_type=206, content_type=CT_X_VCARD, server_uri="contacts")],
    )  # fmt: skip


def test_example_layout_after_digest_byte_for_byte():
    # The notes do not give the password/nonce behind the example digest, so the bytes after
    # the digest are checked exactly and the digest formula separately.
    assert encode_notification(example_message()) == EXAMPLE_REST
    msg = decode_san(EXAMPLE)
    assert msg.digest == EXAMPLE_DIGEST
    assert msg == SANMessage(digest=EXAMPLE_DIGEST, **{
        k: v for k, v in example_message().__dict__.items() if k != "digest"
    })  # fmt: skip


def test_digest_formula_independently():
    server_id, password, nonce = "OperatorSync", "s3cret", b"\x01\x02nonce"
    inner = base64.b64encode(hashlib.md5(b"OperatorSync:s3cret").digest())
    body = base64.b64encode(hashlib.md5(EXAMPLE_REST).digest())
    expected = hashlib.md5(inner + b":" + nonce + b":" + body).digest()
    assert san_digest(server_id, password, nonce, EXAMPLE_REST) == expected
    packet = encode_san(example_message(), password=password, nonce=nonce)
    assert packet == expected + EXAMPLE_REST
    assert verify_san(packet, password=password, nonce=nonce)
    assert not verify_san(packet, password="wrong", nonce=nonce)
    assert not verify_san(EXAMPLE, password=password, nonce=nonce)


def test_round_trip_all_fields():
    msg = SANMessage(
        ui_mode=3, session_id=0xBEEF, server_id="srv",
        syncs=[SANSync(sync_type=t, content_type=CT_VCARD, server_uri=f"db{t}") for t in range(206, 211)],
        vendor=b"\x01\x02vendor",
    )  # fmt: skip
    packet = encode_san(msg, password="p", nonce=b"")
    back = decode_san(packet)
    assert back.digest == packet[:16]
    back.digest = b""
    assert back == msg


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x00" * 20, EXAMPLE[:30], EXAMPLE[:-3], EXAMPLE_DIGEST + EXAMPLE_REST[:7] + b"\x05ab"],
)
def test_truncated(bad):
    with pytest.raises(SyncMLError):
        decode_san(bad)


@pytest.mark.parametrize(
    "msg",
    [SANMessage(session_id=70000), SANMessage(ui_mode=4), SANMessage(syncs=[SANSync(sync_type=200)]),
     SANMessage(server_id="x" * 256), SANMessage(syncs=[SANSync()] * 16)],
)  # fmt: skip
def test_encode_rejects_out_of_range(msg):
    with pytest.raises(ValueError):
        encode_notification(msg)
