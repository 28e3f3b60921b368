"""The operator's daily pages in a real browser: logging in, finding a subscriber by MSISDN,
and a support user refused an operator action. No worker needed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.portal_ui import login, require_chromium, screenshot, url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_and_find_a_subscriber_by_msisdn(page, make_user, subscriber):
    from cardmgmt import services as inventory
    from portal.context import Actor

    make_user("operator", username="olivia")
    neighbour = inventory.create_subscriber(actor=Actor.command("tests"), msisdn="+491701299999")

    page.goto(url(page, "/inventory/subscribers/"))
    expect(page).to_have_url(re.compile(r"/login/\?next="))  # logged out: the login page
    page.get_by_label("User name").fill("olivia")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    screenshot(page, "login")

    login(page, "olivia")
    expect(page.locator("#count-subscribers")).to_have_text("2")
    screenshot(page, "dashboard", doc=True)

    # The global search: a whole MSISDN opens the subscriber's page.
    search = page.get_by_role("searchbox", name="Search")
    search.fill(subscriber.msisdn)
    search.press("Enter")
    expect(page.get_by_role("heading", name=f"Subscriber {subscriber.msisdn}")).to_be_visible()
    expect(page.get_by_role("link", name=subscriber.card.iccid).first).to_be_visible()
    screenshot(page, "subscriber", doc=True)

    # The start of one lists the matches; an unknown number says so.
    search = page.get_by_role("searchbox", name="Search")
    search.fill("+4917012")
    search.press("Enter")
    expect(page.get_by_role("heading", name="Search: +4917012")).to_be_visible()
    expect(page.get_by_role("link", name=subscriber.msisdn)).to_be_visible()
    expect(page.get_by_role("link", name=neighbour.msisdn)).to_be_visible()
    search = page.get_by_role("searchbox", name="Search")
    search.fill("+4915999999")
    search.press("Enter")
    expect(page.get_by_text("No subscriber or card matches")).to_be_visible()


def test_support_user_is_refused_operator_actions(page, make_user, subscriber):
    from campaigns import services as campaigns
    from portal.context import Actor

    campaign = campaigns.create_campaign(
        actor=Actor.command("tests"), name="audit all", action="audit", target_kind="filter"
    )
    make_user("support", username="sam")
    login(page, "sam")

    # Buttons an operator would see are absent...
    page.goto(url(page, "/campaigns/"))
    expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
    expect(page.get_by_role("link", name="audit all")).to_be_visible()
    expect(page.get_by_role("link", name="Add")).to_have_count(0)
    page.get_by_role("link", name="audit all").click()
    expect(page.get_by_role("heading", name=re.compile("Campaign audit all"))).to_be_visible()
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)

    # ...and their URLs answer with the refusal page.
    response = page.goto(url(page, "/campaigns/add/"))
    assert response is not None and response.status == 403
    expect(page.locator("#forbidden")).to_contain_text("You may not do this")
    screenshot(
        page,
        "refused",
    )
    response = page.goto(url(page, "/inventory/ota/selection/"))
    assert response is not None and response.status == 403
    # A forged POST with a valid CSRF token: the role, not the token, refuses it.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        url(page, f"/campaigns/{campaign.pk}/start/"), headers={"X-CSRFToken": token}
    )
    assert response.status == 403
    assert "You may not do this" in response.text()
    assert not campaign.runs.exists()

    # Support may still operate on the one card of a subscriber it is helping.
    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    expect(page.locator("#operate-card")).to_be_visible()


@pytest.mark.django_db(transaction=False)
def test_a_missing_chromium_fails_with_how_to_install_it(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        require_chromium(tmp_path / "no-chromium")
    require_chromium()  # the real one is there
