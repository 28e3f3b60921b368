"""A held mass delete decided in the browser: a handset empties its address book, the sync
server holds the deletions, an operator finds them from the subscriber's page and approves
them; support may look but not decide. The system is the e2e Stack, set up over the API."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.portal_ui import login, screenshot, url

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_a_held_mass_delete_is_approved_by_an_operator(page, make_user, stack):
    from cardmgmt.models import Subscriber
    from sync.models import Contact, HeldDelete

    stack.provision(cards=1, contacts=(10, 12))
    iccid, msisdn = stack.iccids[0], stack.msisdns[0]
    stack.load_applet(iccid)
    stack.push_params(iccid)
    stack.trigger_sync(iccid)
    phone = stack.phone(msisdn)
    first = stack.wait_phone_sessions(phone, 1)
    assert first.report.ok, first.report.error
    subscriber = Subscriber.objects.get(msisdn=msisdn)
    live = Contact.objects.filter(subscriber=subscriber, deleted=False)
    before = live.count()
    assert before >= 10

    # The user wipes all but one contact and picks the applet's menu entry: a sync that
    # deletes nearly everything, which the guard holds.
    def wipe() -> None:
        for luid in list(phone.addressbook.items())[1:]:
            phone.addressbook.delete(luid)

    stack.on_smsc(wipe)
    assert stack.on_smsc(phone.select_menu)
    second = stack.wait_phone_sessions(phone, 2)
    assert second.report.ok, second.report.error
    held = stack.wait_for(lambda: HeldDelete.objects.filter(subscriber=subscriber).first())
    assert len(held.guids) == before - 1
    assert live.count() == before  # nothing deleted yet

    # Support sees the held deletions but is not offered the decision.
    make_user("support", username="sam")
    login(page, "sam")
    page.goto(url(page, f"/sync/held-deletes/{held.pk}/"))
    expect(page.get_by_role("heading", name=f"Held mass deletion {held.pk}")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)

    make_user("operator", username="olivia")
    page.context.clear_cookies()
    login(page, "olivia")
    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    page.get_by_role("link", name="1 pending review").click()
    expect(page.get_by_role("heading", name="Held mass deletions")).to_be_visible()
    page.locator(f"a[href='/sync/held-deletes/{held.pk}/']").first.click()
    expect(page.locator("table.kv")).to_contain_text(f"{before - 1} of {before}")
    screenshot(page, "held-delete")
    page.get_by_role("button", name="Approve: delete").click()
    expect(page.get_by_role("alert").filter(has_text="Deletions approved.")).to_be_visible()
    expect(page.locator("table.kv")).to_contain_text("Approved (deleted) by olivia")
    expect(page.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)
    assert live.count() == 1
