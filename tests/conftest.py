"""Shared fixtures: users per role, API clients, inventory factories and a real Celery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("administrator", "operator", "support", "auditor")

# Django is imported inside the fixtures, so the pure protocol tests (tests/ota, tests/syncml,
# tests/smpp) also run with `-p no:django` on a machine without the services.
try:
    from django.conf import settings
except ImportError:  # pragma: no cover
    settings = None


def _actor():  # type: ignore[no-untyped-def]
    from portal.context import Actor

    return Actor.command("tests")


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("django"):
        return
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine and not os.environ.get("ALLOW_NON_POSTGRES_TESTS"):
        raise pytest.UsageError(
            "Tests run on PostgreSQL: set DATABASE_URL (make test does), "
            f"got {engine}. Start PostgreSQL on 127.0.0.1:5432 and run `make test`."
        )


@pytest.fixture
def make_user(db):
    from portal import services

    def make(role: str, username: str | None = None, password: str = "pw-Secret-123"):
        return services.create_user_with_role(
            actor=_actor(), username=username or f"{role}-user", role=role, password=password
        )

    return make


@pytest.fixture
def role_users(make_user) -> dict[str, object]:
    return {role: make_user(role) for role in ROLES}


@pytest.fixture
def api_client_for(make_user):
    """An APIClient authenticated with a fresh token of the given role."""
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from portal import services

    def make(role: str, write: bool = True) -> APIClient:
        user = get_user_model().objects.filter(username=f"{role}-user").first() or make_user(role)
        _token, key = services.create_api_token(
            actor=_actor(), user=user, name=f"t-{role}", write_enabled=write
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


@pytest.fixture
def card_profile(db):
    from cardmgmt import services as inventory

    return inventory.create_card_profile(
        actor=_actor(),
        name="Test AES",
        vendor="TestCards",
        algorithms=["aes128", "3des2k"],
        ram_tar="B00000",
        rfm_tar="B00010",
    )


@pytest.fixture
def card(card_profile):
    from cardmgmt import services as inventory
    from cardmgmt.validators import luhn_check_digit

    body = "894900100000000001"
    return inventory.create_card(
        actor=_actor(),
        iccid=body + str(luhn_check_digit(body)),
        imsi="262010000000001",
        profile=card_profile,
        keysets=[
            inventory.KeySetInput(
                kvn=1,
                algorithm="aes128",
                kic="000102030405060708090A0B0C0D0E0F",
                kid="101112131415161718191A1B1C1D1E1F",
                kik="202122232425262728292A2B2C2D2E2F",
            )
        ],
    )


@pytest.fixture
def subscriber(card):
    from cardmgmt import services as inventory

    return inventory.create_subscriber(
        actor=_actor(), msisdn="+491701234567", segments=["prepaid"], card=card
    )


# --- a real Celery worker -------------------------------------------------------------------


def _worker_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["PORTAL_DATA_DIR"] = str(settings.DATA_DIR)
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    return env


class WorkerProcess:
    def __init__(self, queues: str = "default,ota,sync,campaigns", concurrency: int = 2) -> None:
        self.queues = queues
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self.log = ROOT / "data" / "test" / f"worker-{os.getpid()}.log"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "INFO",
                "-Q",
                self.queues,
                "--concurrency",
                str(self.concurrency),
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=_worker_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: see {self.log}")
            if b" ready." in self.log.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker did not become ready: see {self.log}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[WorkerProcess]:
    """A real worker process consuming the test broker, writing to the test database."""
    from portal.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "ota", "sync", "campaigns"):
            conn.default_channel.queue_purge(queue) if _queue_exists(conn, queue) else None
    worker = WorkerProcess()
    worker.start()
    yield worker
    worker.stop()


def _queue_exists(conn, name: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        conn.default_channel.queue_declare(name, passive=True)
        return True
    except Exception:
        return False


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
