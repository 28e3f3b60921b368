"""The WSGI entry point (gunicorn's `portal.wsgi`) starts ready to serve SyncML at speed."""

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


def test_start_up_objects_are_frozen_out_of_the_collectors_way():
    """Start-up's objects sit in the permanent generation, views imported first: a full
    collection in a request then walks only what requests made (docs/sync.md)."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["views"]
    assert probe["frozen"] > 50_000  # Django, DRF and the apps
    assert probe["tracked"] < probe["frozen"] / 10
