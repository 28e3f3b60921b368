"""Keys never appear in clear: not in pages, API responses, logs, audit entries or a pg_dump."""

from __future__ import annotations

import logging
import shutil
import subprocess

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from cardmgmt.models import Card
from portal.models import AuditEntry
from tests.cardmgmt.csvdata import card_csv

pytestmark = pytest.mark.django_db(transaction=True)


def _variants(keys: list[str]) -> list[str]:
    return [k.upper() for k in keys] + [k.lower() for k in keys]


def test_no_key_in_clear_anywhere(card_profile, make_user, client, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    admin = make_user("administrator")
    client.force_login(admin)
    content, keys = card_csv(20)
    response = client.post(
        "/inventory/imports/add/",
        {"kind": "cards", "file": SimpleUploadedFile("keys.csv", content)},
    )
    assert response.status_code == 302
    assert Card.objects.count() == 20
    card = Card.objects.first()
    # A key set typed into the UI form as well.
    typed = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
    response = client.post(
        f"/inventory/cards/{card.pk}/keys/",
        {"kvn": 2, "algorithm": "aes128", "kic": typed, "kid": typed[::-1], "kik": ""},
    )
    assert response.status_code == 302
    keys = _variants([*keys, typed, typed[::-1]])

    pages = [
        "/",
        "/inventory/cards/",
        f"/inventory/cards/{card.pk}/",
        "/inventory/imports/",
        "/audit/",
        "/api/cards/",
        f"/api/cards/{card.pk}/",
        "/api/audit-log/",
        "/api/imports/",
    ]
    pages += [f"/audit/{pk}/" for pk in AuditEntry.objects.values_list("pk", flat=True)]
    for url in pages:
        body = client.get(url, HTTP_ACCEPT="application/json" if "/api/" in url else "text/html")
        assert body.status_code == 200, url
        text = body.content.decode()
        leaked = [k for k in keys if k in text]
        assert not leaked, f"key material in {url}"

    audit_text = " ".join(
        str(e.before) + str(e.after) + e.message for e in AuditEntry.objects.all()
    )
    assert not [k for k in keys if k in audit_text]
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    assert not [k for k in keys if k in log_text]
    # The upload itself is removed once imported.
    media = (
        list((settings.MEDIA_ROOT / "imports").rglob("*.csv"))
        if (settings.MEDIA_ROOT / "imports").exists()
        else []
    )
    assert not [p for p in media if any(k.encode() in p.read_bytes() for k in keys[:3])]

    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed (Debian package postgresql-client)"
    db = connection.settings_dict
    dump = subprocess.run(
        [
            pg_dump,
            "-h",
            db["HOST"] or "127.0.0.1",
            "-p",
            str(db["PORT"] or 5432),
            "-U",
            db["USER"] or "postgres",
            "--data-only",
            db["NAME"],
        ],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.decode()
    assert "cardmgmt_keyset" in dump
    leaked = [k for k in keys if k.lower() in dump.lower()]
    assert not leaked, "key material in the database dump"
