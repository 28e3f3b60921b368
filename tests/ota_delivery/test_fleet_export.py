"""The fleet file the portal exports is one the simulator loads, for every key algorithm."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from cardmgmt import services
from cardmgmt.choices import KEY_LENGTHS, KeyAlgorithm
from cardmgmt.validators import luhn_check_digit
from handset.fleet import load_fleet
from portal.context import Actor

pytestmark = pytest.mark.django_db
ACTOR = Actor.command("tests")


def test_exported_fleet_loads_in_the_simulator(tmp_path):
    profile = services.create_card_profile(
        actor=ACTOR,
        name="All algorithms",
        vendor="Lab",
        algorithms=list(KeyAlgorithm.values),
        counter_mode="next",
    )
    for n, algorithm in enumerate(KeyAlgorithm.values):
        body = f"894900700000000{n:03d}"
        key = "11" * KEY_LENGTHS[KeyAlgorithm(algorithm)]
        card = services.create_card(
            actor=ACTOR,
            iccid=body + str(luhn_check_digit(body)),
            imsi=f"2620700000000{n:02d}",
            profile=profile,
            keysets=[services.KeySetInput(kvn=1, algorithm=algorithm, kic=key, kid=key)],
        )
        services.create_subscriber(actor=ACTOR, msisdn=f"+4917770000{n:02d}", card=card)
    path = tmp_path / "fleet.json"
    call_command("export_fleet", str(path))
    fleet = load_fleet(path)
    assert len(fleet.cards) == len(KeyAlgorithm.values)
