"""Demo data for `make run`: the administrator, card profiles, the loopback SMSC link, the sync
applet, a few hundred subscribers with cards and keys, their sync profiles (from one
template), the phones the simulator puts the cards in, some DB2 contacts that differ from the
phones' address books, and three ready-made campaigns on the `pilot` segment.

Safe to run again: what exists is left as it is (the SMSC port and the template's server URL
follow the options), the administrator's password is printed only when the account is
created, and address books already on disk are kept (they hold the phones' own edits).
"""

from __future__ import annotations

import io
import random
import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from campaigns import services as campaigns
from campaigns.choices import CampaignAction
from campaigns.models import Campaign
from cardmgmt import ota
from cardmgmt import services as inventory
from cardmgmt.management.commands.export_fleet import build_fleet, write_fleet
from cardmgmt.models import AppletVersion, Card, CardProfile, Segment, SmscLink, Subscriber
from cardmgmt.ota import syncapplet
from cardmgmt.validators import luhn_check_digit
from handset.addressbook import AddressBook
from handset.edits import generate_addressbook, generate_device
from portal import services
from portal.context import Actor
from sync import services as sync
from sync.models import SyncProfileTemplate
from sync.syncml.vcard import Contact, Name, Phone, parse_vcard, serialize_vcard

DEMO_PROFILES = [
    {
        "name": "Demo AES",
        "vendor": "DemoCards",
        "algorithms": ["aes128", "aes256"],
        "ram_tar": "B00000",
        "rfm_tar": "B00010",
        "min_security_level": 0x12,
        "cmac_length": 8,
        "counter_mode": "higher",
        "por_mode": "sms_submit",
        "max_load_block": 240,
        "load_descriptor": False,
    },
    {
        "name": "Demo 3DES",
        "vendor": "DemoCards",
        "algorithms": ["3des2k", "3des3k"],
        "ram_tar": "000000",
        "rfm_tar": "B00010",
        "min_security_level": 0x12,
        "cmac_length": 8,
        "counter_mode": "higher",
        "por_mode": "sms_submit",
        "max_load_block": 240,
        "load_descriptor": True,
    },
]
SEGMENTS = ["prepaid", "postpaid", "business", "pilot"]
PILOT = "pilot"
# The loopback SMSC of `make run` (handset simulator): a lab account, not a secret.
DEMO_LINK = {
    "name": "loopback",
    "host": "127.0.0.1",
    "port": 2775,
    "system_id": "ota",
    "password": "ota-demo",
    "source_addr": "12345",
    "tps": 200,
    "window": 32,
}
APPLET_NAME = "Sync applet"
TEMPLATE_NAME = "Demo sync profile"
# Address book sizes of the demo phones, by ICCID serial number (each plus up to 20%).
BOOK_SIZES = (5, 15, 30, 60, 120, 200)
# DB2 twins made per subscriber (same name and a shared number as a phone contact, a
# different organisation or note, one more number): a first sync pairs them and records
# the conflicts it resolves.
TWINS_PER_SUBSCRIBER = 3
CRM_CONTACT = ("Customer Care", "Operator", "+49 800 3300 1000")


def demo_iccid(n: int) -> str:
    body = f"8949001{n:011d}"
    return body + str(luhn_check_digit(body))


def demo_card_csv(count: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    out.write("ICCID,IMSI,PROFILE,ALG1,KIC1,KID1,KIK1\n")
    for n in range(1, count + 1):
        aes = n % 3 != 0
        alg, length, profile = ("aes128", 16, "Demo AES") if aes else ("3des2k", 16, "Demo 3DES")
        keys = [rng.randbytes(length).hex().upper() for _ in range(3)]
        out.write(f"{demo_iccid(n)},26201{n:010d},{profile},{alg},{keys[0]},{keys[1]},{keys[2]}\n")
    return out.getvalue().encode()


def demo_subscriber_csv(count: int) -> bytes:
    out = io.StringIO()
    out.write("MSISDN,STATUS,SEGMENTS,ICCID\n")
    for n in range(1, count + 1):
        segments = ";".join(sorted({SEGMENTS[n % 3], PILOT if n % 10 == 0 else SEGMENTS[n % 3]}))
        out.write(f"+49170{n:07d},active,{segments},{demo_iccid(n)}\n")
    return out.getvalue().encode()


def demo_handset(iccid: str) -> dict[str, Any]:
    """The phone the simulator puts this card in (the fleet file's ``handset`` object).

    Derived from the ICCID alone, so every run of the seed gives the same phones.
    """
    serial = int(iccid[7:18])
    rng = random.Random(f"demo-handset:{iccid}")
    device = generate_device(rng)
    size = BOOK_SIZES[serial % len(BOOK_SIZES)]
    return {
        "imei": device.imei,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "firmware": device.firmware,
        "language": device.language,
        "apps": [{"name": a.name, "version": a.version, "size": a.size} for a in device.apps],
        "contacts": size + rng.randrange(size // 5 + 1),
        "vcard": "3.0" if serial % 4 == 0 else "2.1",
        "encoding": "wbxml" if serial % 3 == 0 else "xml",
    }


def demo_addressbook(iccid: str, spec: dict[str, Any], books: Path) -> AddressBook:
    """The phone's address book in ``books/<ICCID>/``: generated the first time, then kept
    (`python -m handset lab --books` loads it and saves the phone's changes there)."""
    folder = books / iccid
    if folder.is_dir() and any(folder.glob("*.vcf")):
        return AddressBook(version=spec["vcard"], folder=folder)
    rng = random.Random(f"demo-book:{iccid}")
    return generate_addressbook(rng, spec["contacts"], version=spec["vcard"], folder=str(folder))


def db2_twin(contact: Contact, n: int) -> Contact | None:
    """The CRM's copy of a phone contact: same name and first number, a different
    organisation or note, one more number, a job title. None if nothing would conflict."""
    if not contact.tels or not (contact.org or contact.note):
        return None
    twin = Contact(version="3.0", fn=contact.fn, n=contact.n)
    twin.tels = [contact.tels[0], Phone(value=f"+49 30 5550 {n:04d}", types=["WORK"])]
    if contact.org:
        twin.org = f"{contact.org} (CRM)"
    if contact.note:
        twin.note = "Entered by customer care"
    twin.title = "Key account"
    return twin


def crm_contact() -> Contact:
    given, family, tel = CRM_CONTACT
    contact = Contact(version="3.0", fn=f"{given} {family}", n=Name(family=family, given=given))
    contact.tels = [Phone(value=tel, types=["WORK"])]
    return contact


class Command(BaseCommand):
    help = "Create the administrator and the demo fleet, profiles and campaigns (idempotent)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--cards", type=int, default=300)
        parser.add_argument("--admin", default="admin")
        parser.add_argument("--fleet", help="Also write the simulator's fleet file here")
        parser.add_argument(
            "--books",
            help="Folder of the phones' address books (default: 'books' beside the fleet file)",
        )
        parser.add_argument(
            "--server-url",
            default="http://127.0.0.1:8000/syncml",
            help="The SyncML endpoint the handsets sync with (the template's server URL)",
        )
        parser.add_argument("--smsc-port", type=int, default=DEMO_LINK["port"])

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        if options["cards"] < 10:
            raise CommandError("--cards: at least 10 (the pilot segment is every tenth)")
        actor = Actor.command("seed_demo")
        try:
            self._administrator(actor, options["admin"], options["server_url"])
            version = self._catalog(actor, options["smsc_port"])
            self._inventory(actor, options["cards"])
            template = self._template(actor, options["server_url"])
            fleet = Path(options["fleet"]) if options["fleet"] else None
            books = Path(options["books"]) if options["books"] else None
            if books is None and fleet is not None:
                books = fleet.parent / "books"
            self._profiles(actor, template, books)
            self._campaigns(actor, version)
        except ValidationError as exc:
            raise CommandError(f"demo data refused: {'; '.join(exc.messages)}") from None
        if fleet is not None:
            link = SmscLink.objects.filter(name=DEMO_LINK["name"]).first()
            specs = {c: demo_handset(c) for c in Card.objects.values_list("iccid", flat=True)}
            data = build_fleet(
                link, state_file="fleet-state.json", handset=lambda card: specs.get(card.iccid)
            )
            write_fleet(fleet, data)
            self.stdout.write(
                f"simulator fleet: {len(data['cards'])} cards in phones written to {fleet}"
                + (f", address books in {books}" if books else "")
            )

    def _administrator(self, actor: Actor, username: str, server_url: str) -> None:
        if get_user_model().objects.filter(username=username).exists():
            return
        password = secrets.token_urlsafe(12)
        services.create_user_with_role(
            actor=actor, username=username, role="administrator", password=password
        )
        site = server_url.rsplit("/syncml", 1)[0] + "/"
        self.stdout.write(
            self.style.SUCCESS(
                f"Administrator created. Log in at {site} as {username} / {password}"
                "  (shown this once)"
            )
        )

    def _catalog(self, actor: Actor, smsc_port: int) -> AppletVersion:
        with transaction.atomic():
            for spec in DEMO_PROFILES:
                if not CardProfile.objects.filter(name=spec["name"]).exists():
                    inventory.create_card_profile(actor=actor, **spec)
        link = SmscLink.objects.filter(name=DEMO_LINK["name"]).first()
        if link is None:
            inventory.save_smsc_link(actor=actor, **{**DEMO_LINK, "port": smsc_port})
        elif link.port != smsc_port:
            inventory.save_smsc_link(actor=actor, link=link, port=smsc_port)
        version = AppletVersion.objects.filter(applet__name=APPLET_NAME).order_by("-pk").first()
        if version is None:
            version = inventory.upload_applet_version(
                actor=actor,
                applet_name=APPLET_NAME,
                version="1.0",
                description="The SIM applet that asks the handset to synchronize",
                cap_bytes=ota.build_demo_cap(
                    syncapplet.PACKAGE_AID, syncapplet.APPLET_AID, (1, 0), 900
                ),
                cap_name="sync-applet-1.0.cap",
            )
            version = inventory.update_install_defaults(
                actor=actor,
                version=version,
                toolkit_tar=syncapplet.TAR.hex().upper(),
                menu_entries=[[1, 1]],
            )
        return version

    def _inventory(self, actor: Actor, count: int) -> None:
        iccids = [demo_iccid(n) for n in range(1, count + 1)]
        have_cards = Card.objects.filter(iccid__in=iccids).count()
        have_subscribers = Subscriber.objects.filter(card__iccid__in=iccids).count()
        for kind, content, done in (
            ("cards", demo_card_csv(count), have_cards == count),
            ("subscribers", demo_subscriber_csv(count), have_subscribers == count),
        ):
            if done:
                continue
            upload = SimpleUploadedFile(f"demo-{kind}.csv", content, content_type="text/csv")
            job = inventory.create_import_job(actor=actor, kind=kind, upload=upload)
            job = inventory.start_import_job(actor=actor, job=job, inline=True)
            self.stdout.write(f"demo {kind}: {job.message}")

    def _template(self, actor: Actor, server_url: str) -> SyncProfileTemplate:
        template = SyncProfileTemplate.objects.filter(name=TEMPLATE_NAME).first()
        if template is None:
            template = sync.create_template(
                actor=actor,
                name=TEMPLATE_NAME,
                segment=None,
                server_url=server_url,
                interval_minutes=1440,
                conflict_policy="merge",
            )
        elif template.server_url != server_url:
            template = sync.update_template(actor=actor, template=template, server_url=server_url)
        return template

    def _profiles(self, actor: Actor, template: SyncProfileTemplate, books: Path | None) -> None:
        """A sync profile per subscriber; for each new one, the CRM's DB2 contacts."""
        subscribers = (
            Subscriber.objects.filter(card__isnull=False, sync_profile__isnull=True)
            .select_related("card")
            .order_by("pk")
        )
        created = contacts = 0
        with transaction.atomic():
            for n, subscriber in enumerate(subscribers.iterator(chunk_size=500), 1):
                sync.create_profile(actor=actor, subscriber=subscriber, template=template)
                created += 1
                if books is None:
                    continue
                iccid = subscriber.card.iccid
                book = demo_addressbook(iccid, demo_handset(iccid), books)
                twins = []
                for luid in sorted(book, key=lambda k: (len(k), k)):
                    twin = db2_twin(parse_vcard(book.get(luid) or ""), n * 10 + len(twins))
                    if twin is not None:
                        twins.append(twin)
                    if len(twins) == TWINS_PER_SUBSCRIBER:
                        break
                for contact in [*twins, crm_contact()]:
                    sync.save_contact(
                        actor=actor, subscriber=subscriber, vcard=serialize_vcard(contact, "3.0")
                    )
                    contacts += 1
        if books is not None:
            for iccid in Card.objects.filter(subscriber__isnull=False).values_list(
                "iccid", flat=True
            ):
                if not (books / iccid).is_dir():  # e.g. the folder was removed by hand
                    demo_addressbook(iccid, demo_handset(iccid), books)
        if created:
            self.stdout.write(
                f"sync profiles: {created} created from '{template.name}', "
                f"{contacts} contacts already in DB2"
            )

    def _campaigns(self, actor: Actor, version: AppletVersion) -> None:
        pilot = Segment.objects.filter(name=PILOT).first()
        if pilot is None:
            raise CommandError("no 'pilot' segment: the subscriber import did not run")
        specs = [
            ("Load the sync applet on pilot", CampaignAction.LOAD_INSTALL, version),
            ("Push sync parameters to pilot", CampaignAction.PUSH_PARAMS, None),
            ("Trigger a sync on pilot", CampaignAction.TRIGGER_SYNC, None),
        ]
        for name, action, applet_version in specs:
            if Campaign.objects.filter(name=name).exists():
                continue
            campaigns.create_campaign(
                actor=actor,
                name=name,
                description=f"Demo: {action.label.lower()} on the {PILOT} segment",
                action=action,
                applet_version=applet_version,
                segments=[pilot],
            )
            self.stdout.write(f"campaign ready: {name}")
