"""Browser tests: Playwright driving Debian's chromium (headless) against a live server.

The browser is the system's one (`/usr/bin/chromium`, Debian package `chromium`, listed in
apt-packages.txt so `make test` installs it); Playwright never downloads one.

Screenshots of the main pages go to `data/test/screenshots/` (printed at the end of the run).
With `UPDATE_DOC_IMAGES=1` the ones the operator guide shows are also copied to
`docs/images/`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.portal_ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EXPECT_TIMEOUT_MS,
    SCREENSHOTS,
    VIEWPORT,
    require_chromium,
    taken,
)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One chromium per test module, with a fresh profile directory."""
    require_chromium()
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
    from django.core.cache import cache

    # The database is emptied between tests, the cache is not (the dashboard's counts).
    cache.clear()
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    tab.portal_url = live_server.url  # type: ignore[attr-defined]
    yield tab
    tab.close()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if taken:
        terminalreporter.write_sep("-", "browser screenshots")
        terminalreporter.write_line(f"{len(taken)} screenshot(s) in {SCREENSHOTS}")


@pytest.fixture
def stack(transactional_db, live_server, celery_worker, tmp_path):  # type: ignore[no-untyped-def]
    """The whole system on loopback (tests/e2e/stack.py): live portal, worker, SMPP link,
    SMSC simulator with the cards in virtual phones. Not provisioned: the tests choose what
    they set up through the API and what through the browser."""
    from tests.e2e.stack import Stack

    whole = Stack(live_server.url, celery_worker, tmp_path)
    try:
        yield whole
    finally:
        whole.close()
