"""Importing subscribers, a SIM swap, API tokens and the audit log, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.portal_ui import login, screenshot, url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def csv_file(name: str, text: str) -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


def test_import_subscribers_and_swap_a_sim(page, make_user, subscriber, card_profile):
    from cardmgmt import services as inventory
    from cardmgmt.models import Subscriber
    from cardmgmt.validators import luhn_check_digit
    from portal.context import Actor

    body = "894900100000000002"
    spare = inventory.create_card(
        actor=Actor.command("tests"),
        iccid=body + str(luhn_check_digit(body)),
        imsi="262010000000002",
        profile=card_profile,
        keysets=[],
    )
    make_user("operator", username="olivia")
    login(page, "olivia")

    # A file with a bad line: every error listed by line, nothing imported.
    page.get_by_role("link", name="Imports").click()
    page.get_by_role("link", name="Add").click()
    page.get_by_label("Kind").select_option(label="Subscribers")
    page.get_by_label("File").set_input_files(
        files=[csv_file("bad.csv", "MSISDN,STATUS,SEGMENTS\n+491709990001,active,pilot\n12,x,\n")]
    )
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#import-status")).to_have_text(re.compile("^Rejected"))
    expect(page.locator("#import-errors tbody td").first).to_have_text("3")  # its line
    assert not Subscriber.objects.filter(msisdn="+491709990001").exists()

    page.get_by_role("link", name="Imports").click()
    page.get_by_role("link", name="Add").click()
    page.get_by_label("Kind").select_option(label="Subscribers")
    page.get_by_label("File").set_input_files(
        files=[
            csv_file(
                "pilot.csv",
                "MSISDN,STATUS,SEGMENTS\n+491709990001,active,pilot\n+491709990002,active,pilot\n",
            )
        ]
    )
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#import-status")).to_have_text("Done")
    expect(page.locator("table.kv")).to_contain_text("2 / 0")  # created / unchanged
    screenshot(page, "import", doc=True)
    assert Subscriber.objects.filter(segments__name="pilot").count() == 2

    # SIM swap: another card on the subscriber's edit form; the history keeps both.
    page.goto(url(page, f"/inventory/subscribers/{subscriber.pk}/"))
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Card ICCID").fill("8949001000000000099")  # fails the Luhn check
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".invalid-feedback")).to_be_visible()
    subscriber.refresh_from_db()
    assert subscriber.card_id != spare.pk
    page.get_by_label("Card ICCID").fill(spare.iccid)
    page.get_by_role("button", name="Save").click()
    history = page.locator("table", has=page.get_by_role("columnheader", name="Reason"))
    expect(history.get_by_role("row")).to_have_count(3)  # header, old card, new card
    expect(history.get_by_role("cell", name="SIM swap")).to_be_visible()
    subscriber.refresh_from_db()
    assert subscriber.card_id == spare.pk


def test_api_token_and_audit_log(page, make_user):
    make_user("operator", username="olivia")
    make_user("auditor", username="aud")
    login(page, "olivia")

    page.locator("#user-menu").click()
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("crm")
    page.get_by_role("button", name="Create token").click()
    key = page.locator("#new-token-key").inner_text()
    assert key.startswith("pt_")
    screenshot(page, "api-tokens", doc=True)
    answer = page.request.get(
        url(page, "/api/subscribers/"), headers={"Authorization": f"Token {key}"}
    )
    assert answer.status == 200
    page.reload()  # the key is shown once
    expect(page.locator("#new-token-key")).to_have_count(0)
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)
    answer = page.request.get(
        url(page, "/api/subscribers/"), headers={"Authorization": f"Token {key}"}
    )
    assert answer.status == 401

    # The operator may not read the audit log; an auditor reads who did what.
    response = page.goto(url(page, "/audit/"))
    assert response is not None and response.status == 403
    page.context.clear_cookies()
    login(page, "aud")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name=re.compile("Audit"))).to_be_visible()
    rows = page.locator("#object-table tbody tr", has_text="olivia")
    expect(rows.filter(has_text="crm")).to_have_count(2)  # created, then revoked
    screenshot(page, "audit-log", doc=True)
    rows.filter(has_text="crm").first.get_by_role("link").first.click()
    expect(page.get_by_text("revoked").first).to_be_visible()
