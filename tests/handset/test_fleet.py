"""The fleet file: the documented example loads, dump/load round trips, bad files are refused
with the card and field named; the state file survives a restart; no Django in handset/."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from handset_lab import KIC, KID, OTA_ADDRESS, make_card

from handset.fleet import (
    FleetError,
    FleetRouter,
    dump_fleet,
    is_class2,
    load_fleet,
    normalize_msisdn,
    parse_fleet,
    router_from_file,
    source_address,
)

ROOT = Path(__file__).resolve().parents[2]

EXAMPLE = {
    "version": 1,
    "ota_address": "4915550001",
    "cards": [
        {
            "msisdn": "+491701234567",
            "iccid": "8949000000000000001",
            "imsi": "262011234567890",
            "profile": {
                "name": "lab-aes",
                "ram_tar": "B00000",
                "rfm_tar": "B00010",
                "counter_mode": "higher",
                "cmac_length": 8,
                "min_security_level": 18,
                "algorithms": ["aes128"],
                "memory_quota": 65536,
            },
            "keysets": [
                {
                    "kvn": 1,
                    "algorithm": "aes128",
                    "kic": KIC.hex().upper(),
                    "kid": KID.hex().upper(),
                    "kik": None,
                    "counter": 0,
                }
            ],
        }
    ],
}


def test_example_loads_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(EXAMPLE))
    fleet = load_fleet(path)
    assert fleet.ota_address == "4915550001" and fleet.state_file is None
    (card,) = fleet.cards
    assert card.profile.min_security_level == 0x12 and card.keys[1].kic == KIC
    assert dump_fleet(fleet) == EXAMPLE
    router = router_from_file(path)
    assert router.card("491701234567") is router.card("+49 170 1234567")
    with pytest.raises(KeyError):
        router.card("+1555")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["cards"][0]["keysets"][0].update(kic="00"), "kic"),
        (lambda d: d["cards"][0]["keysets"][0].update(algorithm="3des2"), "3des2"),
        (lambda d: d["cards"][0]["profile"].update(ram_tar="B0"), "TAR"),
        (lambda d: d["cards"][0]["profile"].update(counter_mode="sometimes"), "counter"),
        (lambda d: d["cards"][0].pop("iccid"), "iccid"),
        (lambda d: d["cards"].append(json.loads(json.dumps(d["cards"][0]))), "share MSISDN"),
    ],
)
def test_bad_fleet_files_are_refused(change, message: str) -> None:
    data = json.loads(json.dumps(EXAMPLE))
    change(data)
    with pytest.raises(FleetError, match=message):
        parse_fleet(data)


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(FleetError):
        load_fleet(tmp_path / "bad.json")
    with pytest.raises(FleetError):
        load_fleet(tmp_path / "missing.json")


def test_state_file_is_reloaded(tmp_path: Path) -> None:
    fleet_path = tmp_path / "fleet.json"
    dump_fleet([make_card()], fleet_path, ota_address=OTA_ADDRESS, state_file="state.json")
    router = router_from_file(fleet_path)
    assert router.state_file == tmp_path / "state.json"
    router.card("+491701234567").keys[1].counter = 41
    router.card("+491701234567").preinstall()
    router._dirty = True
    router.flush()
    again = router_from_file(fleet_path)
    card = again.card("+491701234567")
    assert card.keys[1].counter == 41 and card.instances
    (tmp_path / "state.json").write_text('{"version": 9}')
    with pytest.raises(FleetError):
        router_from_file(fleet_path)


def test_helpers() -> None:
    assert normalize_msisdn("+49 (170) 123-4567") == "491701234567"
    assert [is_class2(d) for d in (0xF6, 0x16, 0xF2, 0x04, 0xF5, 0x12)] == [
        True, True, True, False, False, True,
    ]  # fmt: skip
    assert source_address("+4915550001").ton == 1
    assert source_address("910").ton == 0
    assert source_address("OPERATOR").ton == 5
    router = FleetRouter([make_card()])
    with pytest.raises(FleetError):
        router.add(make_card(iccid="2"))  # same MSISDN


def test_no_django_in_the_simulator_or_the_applet_interface() -> None:
    files = [*(ROOT / "handset").glob("*.py"), ROOT / "cardmgmt/ota/syncapplet.py"]
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(
                n.split(".")[0] in ("django", "portal", "rest_framework") for n in names
            ), path
