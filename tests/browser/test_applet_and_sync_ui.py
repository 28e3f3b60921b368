"""From the browser to a synchronized handset: upload the sync applet, give a subscriber a
sync profile, load the applet on the subscriber's card, push the parameters, trigger a sync,
then read the session, the device record and the DB2 address book.

The network side is real (tests/e2e/stack.py): a worker, the SMPP link process, the SMSC
simulator whose virtual cards sit in virtual phones; the triggered card asks its phone to
synchronize, and the phone runs a SyncML session against the live server. The cards and
subscribers come in by CSV over the API; everything else is done in the browser."""

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

OTA_TIMEOUT_MS = 90_000  # an OTA job on a loaded 2-core machine: worker, link, PoR


def run_operation(page, subscriber, operation: str, applet: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Start an OTA operation from the subscriber's page and wait on the job's page (which
    updates itself) until the card confirmed it."""
    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    page.locator("#operate-card").click()
    page.get_by_label("Operation").select_option(label=operation)
    if applet:
        page.get_by_label("Applet version").select_option(label=applet)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=re.compile(r"OTA job \d+"))).to_be_visible()
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#job-state")).to_have_text("Done", timeout=OTA_TIMEOUT_MS)
    assert page.evaluate("window.notReloaded") is True  # the job page polled, no reload
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)  # finished: no Cancel


def test_load_the_applet_push_parameters_trigger_and_read_the_sync(page, make_user, stack):
    from cardmgmt.models import Subscriber
    from cardmgmt.ota import build_demo_cap, syncapplet
    from sync.models import Contact, SyncSession

    stack.create_card_profile()
    stack.import_cards(range(2))
    stack.import_subscribers(range(2))
    stack.start_handsets(contacts=(6, 12))
    subscriber = Subscriber.objects.get(msisdn=stack.msisdns[0])
    phone = stack.phone(subscriber.msisdn)
    make_user("operator", username="olivia")
    login(page, "olivia")

    # The applet catalog: upload the CAP file, then its install parameters.
    page.get_by_role("link", name="Applets").click()
    page.get_by_role("link", name="Add").click()
    page.get_by_label("Applet").fill("Sync applet")
    page.get_by_label("Version").fill("1.0")
    page.get_by_label("CAP file").set_input_files(
        files=[
            {
                "name": "sync-applet-1.0.cap",
                "mimeType": "application/octet-stream",
                "buffer": build_demo_cap(
                    syncapplet.PACKAGE_AID, syncapplet.APPLET_AID, (1, 0), 900
                ),
            }
        ]
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=re.compile("Sync applet 1.0"))).to_be_visible()
    page.get_by_role("link", name=re.compile("install parameters", re.I)).click()
    page.get_by_label("Toolkit TAR").fill(syncapplet.TAR.hex().upper())
    page.get_by_label("Menu entries").fill("1:1")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(syncapplet.TAR.hex().upper()).first).to_be_visible()
    screenshot(page, "applet", doc=True)

    # A sync profile template pointing at this server, and the subscriber's profile.
    page.get_by_role("link", name="Sync profiles").click()
    page.get_by_role("link", name="Templates").click()
    page.get_by_role("link", name="Add").click()
    page.get_by_label("Name").fill("default")
    page.get_by_label("Sync server URL").fill(stack.syncml_url)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=re.compile("default"))).to_be_visible()
    page.get_by_role("link", name="Sync profiles").click()
    page.get_by_role("link", name="Add").click()
    page.get_by_label("Subscriber MSISDN").fill(subscriber.msisdn)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#new-secret")).to_have_text(re.compile(r"\S{20}"))

    # Load the applet, push the parameter record, trigger a sync: each from the card's page.
    run_operation(page, subscriber, "Load and install applet", applet="Sync applet 1.0")
    screenshot(page, "ota-job", doc=True)
    # The new applet reads the handset's IMEI at the next power-on (as stack.load_applet).
    stack.on_smsc(phone.power_on)
    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    expect(page.get_by_role("cell", name="Installed")).to_be_visible()
    run_operation(page, subscriber, "Push sync parameters")
    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    expect(page.get_by_text("card current")).to_be_visible()
    run_operation(page, subscriber, "Trigger a sync")

    # The card asked its phone to synchronize; the session shows on the subscriber's page.
    # (The subscriber's page does not poll: wait for the session's row, then open it.)
    first = stack.wait_phone_sessions(phone, 1)
    assert (first.reason, first.report.ok) == ("ota", True), first.report.error
    session = stack.wait_for(
        lambda: SyncSession.objects.filter(subscriber=subscriber, status="completed").first(),
        what="the completed session in the portal",
    )
    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    sessions = page.locator("table", has=page.get_by_role("columnheader", name="Conflicts"))
    expect(sessions.get_by_role("cell", name="Completed")).to_be_visible()
    screenshot(page, "subscriber-synchronized", doc=True)
    contacts = len(stack.on_smsc(phone.addressbook.items))
    assert Contact.objects.filter(subscriber=subscriber, deleted=False).count() == contacts

    page.locator(f"a[href='/sync/sessions/{session.pk}/']").click()
    expect(page.get_by_role("heading", name=f"Sync session {session.pk}")).to_be_visible()
    # The contacts and the device record's inventory items, all new to DB2.
    assert session.client_added > contacts
    expect(page.locator("table.kv")).to_contain_text(f"added {session.client_added}, replaced 0")
    screenshot(page, "session", doc=True)

    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    page.get_by_role("link", name="open").click()
    expect(page.get_by_text(f"{contacts} contacts")).to_be_visible()
    screenshot(
        page,
        "addressbook",
    )

    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    page.locator("a[href^='/sync/devices/']").first.click()
    expect(page.get_by_text(phone.imei).first).to_be_visible()
    screenshot(page, "device")

    # Address book contents are private: an administrator sees them, the operator counts.
    page.context.clear_cookies()
    login(page, stack.staff_username, stack.staff_password)
    page.goto(url(page, f"/sync/subscribers/{subscriber.pk}/addressbook/"))
    names = Contact.objects.filter(subscriber=subscriber, deleted=False).order_by("pk")
    expect(page.get_by_role("cell", name=names[0].display_name, exact=True)).to_be_visible()
    screenshot(page, "addressbook-contents", doc=True)
