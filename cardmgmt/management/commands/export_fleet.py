"""Export the fleet file the simulator (`python -m handset smsc|lab --fleet FILE`) reads:
subscribers' cards with profiles and keys in clear. For labs and demos only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from cardmgmt.models import Card, KeySet, SmscLink
from portal import crypto

# The portal's counter-mode names -> the simulator's (docs/handset.md).
COUNTER_MODES = {"none": "none", "present": "not_checked", "higher": "higher", "next": "plus_one"}
DEFAULT_MEMORY_QUOTA = 64 * 1024


def build_fleet(
    link: SmscLink | None,
    *,
    memory_quota: int = DEFAULT_MEMORY_QUOTA,
    state_file: str | None = None,
    handset: Callable[[Card], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The fleet file's content: every card that has a subscriber, with its keys in clear.

    `handset(card)` may give the card's optional ``handset`` object (the phone the lab puts
    the card in: address book size, device record, vCard version, encoding; docs/handset.md).
    """
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
                    "kik": crypto.unseal(bytes(keyset.kik), "kik").hex() if keyset.kik else None,
                    "counter": keyset.counter,
                }
            )
        entry: dict[str, Any] = {
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
                "memory_quota": memory_quota,
            },
            "keysets": keysets,
        }
        phone = handset(card) if handset is not None else None
        if phone:
            entry["handset"] = phone
        cards.append(entry)
    fleet: dict[str, Any] = {
        "version": 1,
        "ota_address": link.source_addr if link else "",
        "cards": cards,
    }
    if state_file:
        fleet["state_file"] = state_file
    return fleet


def write_fleet(path: Path, fleet: dict[str, Any]) -> None:
    """Write atomically, readable by the owner only (the keys are in clear)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fleet, indent=1), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


class Command(BaseCommand):
    help = "Write the simulator's fleet file (cards with keys in clear: lab use only)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("path", type=Path)
        parser.add_argument("--link", help="SMSC link whose source address the cards answer to")
        parser.add_argument("--memory-quota", type=int, default=DEFAULT_MEMORY_QUOTA)
        parser.add_argument(
            "--state-file",
            help="where the simulator keeps the cards' state between runs (relative to the file)",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        link = (
            SmscLink.objects.filter(name=options["link"]).first()
            if options["link"]
            else SmscLink.objects.first()
        )
        fleet = build_fleet(
            link, memory_quota=options["memory_quota"], state_file=options["state_file"]
        )
        write_fleet(options["path"], fleet)
        self.stdout.write(f"wrote {len(fleet['cards'])} cards to {options['path']}")
