"""Production settings refuse development secrets and pass `check --deploy`."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _run(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "MASTER_KEYS", "DEBUG", "ALLOWED_HOSTS", "CELERY_BROKER_URL")
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "MASTER_KEYS": "1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    "ALLOWED_HOSTS": "portal.operator.example",
}


def test_production_passes_check_deploy():
    result = _run(PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("SECRET_KEY", "SECRET_KEY"),
        ("MASTER_KEYS", "MASTER_KEYS"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_missing_secrets(drop, message):
    env = {k: v for k, v in PRODUCTION.items() if k != drop}
    result = _run(env, "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_development_never_runs_tasks_inline():
    from django.conf import settings

    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    result = _run(
        {"DATABASE_URL": "sqlite:////tmp/portal-settings-test.sqlite3"},
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.CELERY_BROKER_URL)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "filesystem://"
