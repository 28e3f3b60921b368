"""Export the fleet file the simulator (`python -m handset smsc --fleet FILE`) reads:
subscribers' cards with profiles and keys in clear. For labs and demos only."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from cardmgmt.models import Card, KeySet, SmscLink
from portal import crypto

# The portal's counter-mode names -> the simulator's (docs/handset.md).
COUNTER_MODES = {"none": "none", "present": "not_checked", "higher": "higher", "next": "plus_one"}


class Command(BaseCommand):
    help = "Write the simulator's fleet file (cards with keys in clear: lab use only)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("path", type=Path)
        parser.add_argument("--link", help="SMSC link whose source address the cards answer to")
        parser.add_argument("--memory-quota", type=int, default=64 * 1024)

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        link = (
            SmscLink.objects.filter(name=options["link"]).first()
            if options["link"]
            else SmscLink.objects.first()
        )
        cards = []
        queryset = (
            Card.objects.filter(subscriber__isnull=False)
            .select_related("profile", "subscriber")
            .order_by("pk")
        )
        for card in queryset.iterator(chunk_size=500):
            profile = card.profile
            keysets = []
            for keyset in KeySet.objects.filter(card=card).order_by("kvn"):
                keysets.append(
                    {
                        "kvn": keyset.kvn,
                        "algorithm": keyset.algorithm,
                        "kic": crypto.unseal(bytes(keyset.kic), "kic").hex(),
                        "kid": crypto.unseal(bytes(keyset.kid), "kid").hex(),
                        "kik": crypto.unseal(bytes(keyset.kik), "kik").hex()
                        if keyset.kik
                        else None,
                        "counter": keyset.counter,
                    }
                )
            cards.append(
                {
                    "msisdn": card.subscriber.msisdn,
                    "iccid": card.iccid,
                    "imsi": card.imsi,
                    "profile": {
                        "name": profile.name,
                        "ram_tar": profile.ram_tar,
                        "rfm_tar": profile.rfm_tar,
                        "counter_mode": COUNTER_MODES[profile.counter_mode],
                        "cmac_length": profile.cmac_length,
                        "min_security_level": profile.min_security_level,
                        "algorithms": list(profile.algorithms or []),
                        "memory_quota": options["memory_quota"],
                    },
                    "keysets": keysets,
                }
            )
        fleet = {"version": 1, "ota_address": link.source_addr if link else "", "cards": cards}
        path: Path = options["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(fleet, indent=1))
        tmp.chmod(0o600)
        tmp.replace(path)
        self.stdout.write(f"wrote {len(cards)} cards to {path}")
