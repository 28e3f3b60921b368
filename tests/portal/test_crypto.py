import base64

import pytest
from django.test import override_settings

from portal import crypto

KEY1 = bytes(range(32))
KEY2 = bytes(range(1, 33))


@pytest.fixture(autouse=True)
def _clear_caches():
    crypto._aead.cache_clear()
    crypto._fingerprint_key.cache_clear()
    yield
    crypto._aead.cache_clear()
    crypto._fingerprint_key.cache_clear()


@override_settings(MASTER_KEYS={1: KEY1}, MASTER_KEY_VERSION=1)
def test_seal_round_trip_and_purpose_binding():
    sealed = crypto.seal(b"\x01" * 16, "kic")
    assert crypto.sealed_version(sealed) == 1
    assert b"\x01" * 16 not in sealed
    assert crypto.unseal(sealed, "kic") == b"\x01" * 16
    with pytest.raises(crypto.SealError, match="does not open"):
        crypto.unseal(sealed, "kid")


@override_settings(MASTER_KEYS={1: KEY1}, MASTER_KEY_VERSION=1)
def test_tampering_detected():
    sealed = bytearray(crypto.seal(b"secret", "kic"))
    sealed[-1] ^= 1
    with pytest.raises(crypto.SealError):
        crypto.unseal(bytes(sealed), "kic")
    with pytest.raises(crypto.SealError, match="not a sealed value"):
        crypto.unseal(b"plain", "kic")


def test_rotation_reseals_under_new_version():
    with override_settings(MASTER_KEYS={1: KEY1}, MASTER_KEY_VERSION=1):
        old = crypto.seal(b"k" * 16, "kid")
    crypto._aead.cache_clear()
    with override_settings(MASTER_KEYS={1: KEY1, 2: KEY2}, MASTER_KEY_VERSION=2):
        new = crypto.reseal(old, "kid")
        assert crypto.sealed_version(new) == 2
        assert crypto.unseal(new, "kid") == b"k" * 16
        assert crypto.reseal(new, "kid") is None
    crypto._aead.cache_clear()
    with (
        override_settings(MASTER_KEYS={2: KEY2}, MASTER_KEY_VERSION=2),
        pytest.raises(crypto.SealError, match="version 1 is not configured"),
    ):
        crypto.unseal(old, "kid")


def test_settings_parse_master_keys():
    from django.core.exceptions import ImproperlyConfigured

    from portal.settings import _parse_master_keys

    spec = f"1:{base64.b64encode(KEY1).decode()},2:{base64.b64encode(KEY2).decode()}"
    assert _parse_master_keys(spec) == {1: KEY1, 2: KEY2}
    with pytest.raises(ImproperlyConfigured, match="32 bytes"):
        _parse_master_keys("1:" + base64.b64encode(b"short").decode())
    with pytest.raises(ImproperlyConfigured):
        _parse_master_keys("nokey")
