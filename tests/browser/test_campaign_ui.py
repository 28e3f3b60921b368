"""A campaign from the browser: create it, dry-run it, run it, watch the progress bar move
without a reload (HTMX polling), pause it and resume it. The OTA side is real
(tests/e2e/stack.py): worker, SMPP link process, SMSC simulator with virtual cards in phones
answering with PoRs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.portal_ui import login, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

CARDS = 60


def progress(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.locator("#run-progress .progress").get_attribute("aria-valuenow"))


def test_create_run_pause_and_follow_a_campaign(page, make_user, stack):
    from campaigns.models import Campaign, CampaignRun

    stack.create_card_profile()
    stack.import_cards(range(CARDS))
    stack.import_subscribers(range(CARDS))
    stack.start_handsets(contacts=(1, 2))
    make_user("operator", username="olivia")
    login(page, "olivia")

    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="Add").click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    page.get_by_label("Name").fill("Audit the lab cards")
    # Bad input: an error on the field, nothing saved.
    page.get_by_label("Action").select_option(label="Load and install an applet version")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".invalid-feedback")).to_have_text(
        "choose the applet version to load or delete"
    )
    assert not Campaign.objects.exists()

    page.get_by_label("Action").select_option(label="Audit installations (GET STATUS)")
    # Slow enough to be watched: the bar moves over several polls.
    page.get_by_label("Messages per second").fill("4")
    page.get_by_label("Chunk size").fill("10")

    page.get_by_role("button", name=re.compile("Dry run")).click()
    expect(page.locator("#dry-run-count")).to_have_text(str(CARDS))
    page.locator("#dry-run").scroll_into_view_if_needed()
    screenshot(page, "campaign-dry-run", doc=True)
    page.get_by_role("button", name="Save").click()
    expect(
        page.get_by_role("heading", name=re.compile("Campaign Audit the lab cards"))
    ).to_be_visible()
    screenshot(
        page,
        "campaign",
    )

    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name=re.compile("run 1"))).to_be_visible()
    expect(page.locator("#run-state")).to_have_text("Running")
    # A mark in the page's JavaScript: a reload would lose it.
    page.evaluate("window.notReloaded = true")
    start = progress(page)
    expect(page.locator("#run-progress .progress")).not_to_have_attribute(
        "aria-valuenow", str(start)
    )
    moved = progress(page)
    assert start < moved < 100, (start, moved)
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "campaign-run", doc=True)

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#run-state")).to_have_text("Paused")
    run = CampaignRun.objects.get()
    assert run.state == "paused"
    screenshot(
        page,
        "campaign-paused",
    )

    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#run-state")).to_have_text("Running")
    page.evaluate("window.notReloaded = true")
    # The run finishes while the page is open: the bar reaches 100% and the polling stops.
    expect(page.locator("#run-state")).to_have_text("Done", timeout=120_000)
    expect(page.locator("#run-progress .progress")).to_have_attribute("aria-valuenow", "100")
    # The buttons follow the run's state too: a finished run offers no Pause or Cancel.
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    run.refresh_from_db()
    assert run.counters.get("confirmed") == CARDS, (run.counters, run.failure_reasons)
    screenshot(
        page,
        "campaign-done",
    )
