"""The web and worker entry points start with their start-up objects out of the collector's way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json, sys
import portal.wsgi
print(json.dumps({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()),
                  "views": "sync.endpoint" in sys.modules and "campaigns.views" in sys.modules}))
"""


def run_probe(code: str) -> dict:
    """`code` in a fresh interpreter (freezing is for the whole process); its last line."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_start_up_objects_are_frozen_out_of_the_collectors_way():
    """Start-up's objects sit in the permanent generation, views imported first: a full
    collection in a request then walks only what requests made (docs/sync.md)."""
    probe = run_probe(PROBE)
    assert probe["views"]
    assert probe["frozen"] > 50_000  # Django, DRF and the apps
    assert probe["tracked"] < probe["frozen"] / 10


WORKER_PROBE = """
import gc, json
import django
django.setup()
from celery import signals
import portal.celery
before = gc.get_freeze_count()
signals.worker_process_init.send(sender=None)
print(json.dumps({"before": before, "after": gc.get_freeze_count()}))
"""


def test_a_celery_pool_process_freezes_what_it_inherited():
    probe = run_probe(WORKER_PROBE)
    assert probe["before"] == 0
    assert probe["after"] > 50_000
