"""An OTA lab for integration tests: the SMSC simulator with virtual cards (in a thread of this
process, so tests can switch failures), the portal's SMPP link process (a real subprocess)
and a real Celery worker, all on loopback and the test database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management import call_command

from handset.fleet import FleetRouter, router_from_file
from handset.smsc import SmscSimulator
from tests.conftest import ROOT, _worker_env

SYSTEM_ID, PASSWORD, OTA_ADDRESS = "ota", "secret12", "12345"


class SmscThread:
    """The SMSC simulator and its fleet, running on an event loop in a thread."""

    def __init__(self, fleet_path: Path | None = None, router: FleetRouter | None = None) -> None:
        """The fleet file's cards, or a router of your own (phones: `handset.lab.PhoneRouter`)."""
        if (fleet_path is None) == (router is None):
            raise ValueError("give a fleet file or a router")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.router = router if router is not None else router_from_file(fleet_path)
        self.smsc = SmscSimulator({SYSTEM_ID: PASSWORD}, router=self.router, host="127.0.0.1")
        self.run(self.smsc.start())

    @property
    def port(self) -> int:
        return self.smsc.port

    def run(self, coroutine) -> Any:  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the simulator's loop (cards and faults are not thread-safe)."""

        async def wrapper() -> Any:
            return fn()

        return self.run(wrapper())

    def stop(self) -> None:
        self.run(self.smsc.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class LinkProcess:
    """`manage.py run_smpp_link` as its own process, on the test database."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.log = ROOT / "data" / "test" / f"link-{os.getpid()}.log"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_smpp_link"],
            cwd=ROOT,
            env=_worker_env(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def export_fleet(path: Path) -> None:
    call_command("export_fleet", str(path), verbosity=0)
