"""Demo data for `make run`: an administrator, card profiles, cards with keys, subscribers.

Safe to run again: what exists is left as it is, and the administrator's password is
printed only when the account is created.
"""

from __future__ import annotations

import io
import random
import secrets

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from cardmgmt import ota
from cardmgmt import services as inventory
from cardmgmt.models import AppletVersion, CardProfile, SmscLink
from cardmgmt.ota import syncapplet
from cardmgmt.validators import luhn_check_digit
from portal import services
from portal.context import Actor

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
        segments = ";".join(sorted({SEGMENTS[n % 3], "pilot" if n % 10 == 0 else SEGMENTS[n % 3]}))
        out.write(f"+49170{n:07d},active,{segments},{demo_iccid(n)}\n")
    return out.getvalue().encode()


class Command(BaseCommand):
    help = "Create the administrator and demo inventory (idempotent)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--cards", type=int, default=300)
        parser.add_argument("--admin", default="admin")
        parser.add_argument("--fleet", help="Also write the simulator's fleet file here")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        actor = Actor.command("seed_demo")
        user_model = get_user_model()
        if not user_model.objects.filter(username=options["admin"]).exists():
            password = secrets.token_urlsafe(12)
            services.create_user_with_role(
                actor=actor, username=options["admin"], role="administrator", password=password
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"Administrator created. Log in at http://127.0.0.1:8000/ as "
                    f"{options['admin']} / {password}  (shown this once)"
                )
            )
        with transaction.atomic():
            for spec in DEMO_PROFILES:
                if not CardProfile.objects.filter(name=spec["name"]).exists():
                    inventory.create_card_profile(actor=actor, **spec)
        if not SmscLink.objects.filter(name=DEMO_LINK["name"]).exists():
            inventory.save_smsc_link(actor=actor, **DEMO_LINK)
        if not AppletVersion.objects.filter(applet__name="Sync applet").exists():
            version = inventory.upload_applet_version(
                actor=actor,
                applet_name="Sync applet",
                version="1.0",
                description="The SIM applet that asks the handset to synchronize",
                cap_bytes=ota.build_demo_cap(
                    syncapplet.PACKAGE_AID, syncapplet.APPLET_AID, (1, 0), 900
                ),
                cap_name="sync-applet-1.0.cap",
            )
            inventory.update_install_defaults(
                actor=actor,
                version=version,
                toolkit_tar=syncapplet.TAR.hex().upper(),
                menu_entries=[[1, 1]],
            )
        for kind, content in (
            ("cards", demo_card_csv(options["cards"])),
            ("subscribers", demo_subscriber_csv(options["cards"])),
        ):
            upload = SimpleUploadedFile(f"demo-{kind}.csv", content, content_type="text/csv")
            job = inventory.create_import_job(actor=actor, kind=kind, upload=upload)
            job = inventory.start_import_job(actor=actor, job=job, inline=True)
            self.stdout.write(f"demo {kind}: {job.message}")
        if options["fleet"]:
            call_command("export_fleet", options["fleet"], link=DEMO_LINK["name"], verbosity=0)
            self.stdout.write(f"simulator fleet written to {options['fleet']}")
