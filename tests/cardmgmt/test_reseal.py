"""Master key rotation: `manage.py reseal_secrets` re-seals every key under the new version."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import override_settings

from cardmgmt.models import KeySet
from portal import crypto
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db

OLD, NEW = bytes(range(32)), bytes(range(100, 132))


@pytest.fixture(autouse=True)
def _fresh_keys():
    crypto._aead.cache_clear()
    yield
    crypto._aead.cache_clear()


def test_rotation_reseals_everything_and_old_key_can_go(card_profile, capsys):
    from cardmgmt import services
    from portal.context import Actor

    with override_settings(MASTER_KEYS={1: OLD}, MASTER_KEY_VERSION=1):
        card = services.create_card(
            actor=Actor.command("tests"),
            iccid="89490010000000000013",
            imsi="262010000000014",
            profile=card_profile,
            keysets=[
                services.KeySetInput(
                    kvn=1, algorithm="aes128", kic="0A" * 16, kid="0B" * 16, kik="0C" * 16
                )
            ],
        )
    crypto._aead.cache_clear()
    with override_settings(MASTER_KEYS={1: OLD, 2: NEW}, MASTER_KEY_VERSION=2):
        call_command("reseal_secrets")
        assert "re-sealed 1 key set(s) under master key version 2" in capsys.readouterr().out
        keyset = KeySet.objects.get(card=card)
        assert {
            crypto.sealed_version(bytes(getattr(keyset, k))) for k in ("kic", "kid", "kik")
        } == {2}
        call_command("reseal_secrets")  # nothing left to do
        assert "re-sealed 0 key set(s)" in capsys.readouterr().out
    crypto._aead.cache_clear()
    with override_settings(MASTER_KEYS={2: NEW}, MASTER_KEY_VERSION=2):
        keyset = KeySet.objects.get(card=card)
        assert crypto.unseal(bytes(keyset.kic), "kic") == bytes.fromhex("0A" * 16)
        assert crypto.unseal(bytes(keyset.kik), "kik") == bytes.fromhex("0C" * 16)
    entry = AuditEntry.objects.filter(message__contains="re-sealed").get()
    assert entry.actor_kind == "command"
    assert "0A0A" not in str(entry.before) + str(entry.after) + entry.message
