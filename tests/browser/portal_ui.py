"""What the browser tests share: the browser's location and flags, logging in, screenshots."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
# Keep chromium off the network except for the portal: this machine's closed network refuses
# the background connections it would otherwise make.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = ROOT / "data" / "test" / "screenshots"
DOC_IMAGES = ROOT / "docs" / "images"
PASSWORD = "pw-Secret-123"  # tests/conftest.py make_user's default
EXPECT_TIMEOUT_MS = 20_000  # a loaded 2-core machine: pages and workers can be slow

taken: list[Path] = []


def require_chromium(path: Path = CHROMIUM) -> None:
    """Fail (not skip: CI installs it) with how to install the browser when it is missing."""
    import pytest

    if not path.exists():
        pytest.fail(
            f"the browser tests need Debian's chromium at {path}: install it with "
            "`sudo apt-get install chromium` (it is in apt-packages.txt, which `make test` "
            "installs). Playwright's own browser download is not used.",
            pytrace=False,
        )


def url(page, path: str) -> str:  # type: ignore[no-untyped-def]
    return page.portal_url + path


def login(page, username: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    """Log in through the login form and land on the dashboard."""
    from playwright.sync_api import expect

    page.goto(url(page, "/login/"))
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-menu")).to_have_text(username)


def screenshot(page, name: str, *, doc: bool = False) -> Path:  # type: ignore[no-untyped-def]
    """Save the visible page (1280x800) as a test artefact; `doc` marks the guide's images."""
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"screenshot names are lower-case words with dashes: {name!r}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    taken.append(path)
    if doc and os.environ.get("UPDATE_DOC_IMAGES") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_IMAGES / path.name)
    return path
