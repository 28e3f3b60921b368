"""`manage.py seed_demo` (what `make run` seeds), on PostgreSQL: what it creates, that a second
run changes nothing, that the ports follow the options, and that the demo's promise holds --
a phone from the fleet file, synchronizing for the first time, fills DB2 and has its
conflicts with the CRM's contacts resolved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db(transaction=True)

CARDS = 20


def seed(tmp_path: Path, **options) -> str:  # type: ignore[no-untyped-def]
    from io import StringIO

    out = StringIO()
    call_command(
        "seed_demo", cards=CARDS, fleet=str(tmp_path / "fleet.json"), stdout=out, **options
    )
    return out.getvalue()


def counts() -> dict[str, int]:
    from campaigns.models import Campaign
    from cardmgmt.models import AppletVersion, Card, ImportJob, SmscLink, Subscriber
    from portal.models import AuditEntry
    from sync.models import Contact, SyncProfile, SyncProfileTemplate

    return {
        "cards": Card.objects.count(),
        "subscribers": Subscriber.objects.count(),
        "applet versions": AppletVersion.objects.count(),
        "links": SmscLink.objects.count(),
        "templates": SyncProfileTemplate.objects.count(),
        "profiles": SyncProfile.objects.count(),
        "contacts": Contact.objects.count(),
        "campaigns": Campaign.objects.count(),
        "imports": ImportJob.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def test_seed_creates_the_demo_and_a_second_run_changes_nothing(tmp_path):
    from campaigns.models import Campaign
    from sync.models import Contact, SyncProfile

    first = seed(tmp_path)
    assert "Administrator created" in first
    after_first = counts()
    assert after_first["cards"] == after_first["subscribers"] == CARDS
    assert after_first["profiles"] == CARDS
    assert after_first["templates"] == after_first["links"] == after_first["applet versions"] == 1
    assert after_first["campaigns"] == 3
    assert set(Campaign.objects.values_list("action", flat=True)) == {
        "load_install",
        "push_params",
        "trigger_sync",
    }
    assert all(
        list(c.segments.values_list("name", flat=True)) == ["pilot"] for c in Campaign.objects.all()
    )
    assert {p.server_url for p in SyncProfile.objects.all()} == {"http://127.0.0.1:8000/syncml"}
    # One CRM contact per subscriber plus up to three twins of the phone's own contacts.
    assert CARDS < after_first["contacts"] <= 4 * CARDS
    assert Contact.objects.filter(display_name="Customer Care Operator").count() == CARDS

    fleet = json.loads((tmp_path / "fleet.json").read_text())
    assert len(fleet["cards"]) == CARDS
    assert fleet["state_file"] == "fleet-state.json"
    sizes = {c["handset"]["contacts"] for c in fleet["cards"]}
    assert len(sizes) >= 4, "address books of different sizes"
    for card in fleet["cards"]:
        spec = card["handset"]
        assert len(spec["imei"]) == 15 and spec["model"] and spec["vcard"] in ("2.1", "3.0")
        book = tmp_path / "books" / card["iccid"]
        assert len(list(book.glob("*.vcf"))) == spec["contacts"]

    # The phone's own edits survive a re-seed; nothing in the database changes.
    edited = next((tmp_path / "books" / fleet["cards"][0]["iccid"]).glob("*.vcf"))
    edited.write_text("BEGIN:VCARD\r\nVERSION:2.1\r\nN:Edited;Kept\r\nEND:VCARD\r\n")
    second = seed(tmp_path)
    assert "Administrator created" not in second and "campaign ready" not in second
    assert counts() == after_first
    assert "Edited;Kept" in edited.read_text()


def test_reseed_follows_new_ports(tmp_path):
    from cardmgmt.models import SmscLink
    from sync.models import SyncProfile

    seed(tmp_path)
    versions = dict(SyncProfile.objects.values_list("pk", "version"))
    seed(tmp_path, server_url="http://127.0.0.1:8011/syncml", smsc_port=2711)
    assert SmscLink.objects.get(name="loopback").port == 2711
    for profile in SyncProfile.objects.all():
        assert profile.server_url == "http://127.0.0.1:8011/syncml"
        assert profile.version == versions[profile.pk] + 1  # a new record for the cards


def test_too_few_cards_is_refused_and_creates_nothing(tmp_path):
    from cardmgmt.models import Card

    with pytest.raises(CommandError, match="at least 10"):
        call_command("seed_demo", cards=3)
    assert Card.objects.count() == 0


def test_a_demo_phone_first_sync_fills_db2_and_resolves_conflicts(tmp_path, live_server):
    """The walkthrough's last step, without the OTA part: the record the portal would push,
    a phone built by the lab from the fleet file, one session over HTTP."""
    from handset.fleet import load_fleet
    from handset.lab import make_phone
    from sync import merge, services
    from sync.models import Contact, Device, SyncConflict, SyncProfile
    from sync.syncml.paramrecord import decode_param_record

    seed(tmp_path, server_url=live_server.url + "/syncml")
    raw = json.loads((tmp_path / "fleet.json").read_text())
    specs = {c["iccid"]: c["handset"] for c in raw["cards"]}
    card = load_fleet(tmp_path / "fleet.json").cards[0]
    phone = make_phone(card, specs[card.iccid], books=tmp_path / "books")
    profile = SyncProfile.objects.get(subscriber__card__iccid=card.iccid)
    crm = Contact.objects.filter(subscriber=profile.subscriber).count()
    handset_before = len(phone.addressbook)

    report = phone.sync(decode_param_record(services.build_param_record(profile)))

    assert report.ok, report.error
    rows = Contact.objects.filter(subscriber=profile.subscriber, deleted=False)
    twins = crm - 1
    # Every phone contact is in DB2, twins paired (not doubled), the CRM-only one added.
    assert rows.count() == handset_before + 1
    assert len(phone.addressbook) == handset_before + 1
    assert SyncConflict.objects.filter(session__profile=profile).count() >= twins > 0
    db2 = sorted(merge.content_hash(r.fields) for r in rows)
    db1 = sorted(
        merge.content_hash(merge.parse_contact(t)) for t in phone.addressbook.items().values()
    )
    assert len(db2) == len(db1)
    device = Device.objects.get(subscriber=profile.subscriber)
    assert device.model == specs[card.iccid]["model"]
    assert device.imei == specs[card.iccid]["imei"]
