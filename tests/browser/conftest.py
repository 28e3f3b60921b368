"""Browser tests: Playwright driving Debian's chromium (headless) against a live server.

The browser is the system's one (`/usr/bin/chromium`, Debian package `chromium`, listed in
apt-packages.txt so `make test` installs it); Playwright never downloads one.

Screenshots of the main pages go to `data/test/screenshots/` (printed at the end of the run).
With `UPDATE_DOC_IMAGES=1` the ones the operator guide shows are also copied to
`docs/images/`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.browser.portal_ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EXPECT_TIMEOUT_MS,
    SCREENSHOTS,
    VIEWPORT,
    taken,
)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One chromium per test module, with a fresh profile directory."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM}: install it with "
            "`sudo apt-get install chromium` (it is in apt-packages.txt, which `make test` "
            "installs). Playwright's own browser download is not used.",
            pytrace=False,
        )
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made here
    # (fixtures, assertions) would otherwise be refused as "async-unsafe".
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture
def page(browser_context, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A new tab, logged out, whose relative URLs go to the live server."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    tab.portal_url = live_server.url  # type: ignore[attr-defined]
    yield tab
    tab.close()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if taken:
        terminalreporter.write_sep("-", "browser screenshots")
        terminalreporter.write_line(f"{len(taken)} screenshot(s) in {SCREENSHOTS}")


class PhoneLabThread:
    """The SMSC simulator whose cards sit in virtual phones (handset.lab), on an event loop in
    a thread of this process: OTA packets reach the cards, and a card's SYNC REQUEST makes
    its phone run a SyncML session against the live server."""

    def __init__(self, fleet_path: Path) -> None:
        from handset.lab import Lab
        from handset.smsc import SmscSimulator
        from tests.ota_delivery.lab import PASSWORD, SYSTEM_ID

        self.lab = Lab(str(fleet_path), contacts=(6, 12), workers=2)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.smsc = SmscSimulator({SYSTEM_ID: PASSWORD}, router=self.lab.router, host="127.0.0.1")
        self._run(self.smsc.start())

    def _run(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def phone(self, msisdn: str):  # type: ignore[no-untyped-def]
        return self.lab.router.phone(msisdn)

    def stop(self) -> None:
        self._run(self.smsc.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.lab.close()


@pytest.fixture
def ota_lab(request, transactional_db, celery_worker, live_server, tmp_path):  # type: ignore[no-untyped-def]
    """Cards with keys and subscribers, their phones behind the SMSC simulator, the portal's
    SMPP link process and a real worker (parametrize indirectly with the number of cards)."""
    from cardmgmt import services as inventory
    from portal.context import Actor
    from tests.campaigns.conftest import make_fleet
    from tests.ota_delivery.lab import OTA_ADDRESS, PASSWORD, SYSTEM_ID, LinkProcess, export_fleet

    size = getattr(request, "param", 3)
    profile, cards = make_fleet(size)
    fleet = tmp_path / "fleet.json"
    export_fleet(fleet)
    phones = PhoneLabThread(fleet)
    inventory.save_smsc_link(
        actor=Actor.command("tests"),
        name="lab",
        host="127.0.0.1",
        port=phones.smsc.port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        source_addr=OTA_ADDRESS,
        tps=500,
        window=16,
    )
    link = LinkProcess()
    link.start()
    yield SimpleNamespace(profile=profile, cards=cards, phones=phones, link=link)
    link.stop()
    phones.stop()
