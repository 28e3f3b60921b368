"""The whole path over loopback SMPP: SmppClient -> SMSC simulator -> fleet router -> virtual
UICC, PoRs back as deliver_sm. One secured packet per submit, one segment per submit_sm."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time

import pytest
from handset_lab import MSISDN, OTA_ADDRESS, Lab, make_card, sync_cap

from cardmgmt.ota import PorStatus, parse_cap, parse_compact_result, parse_get_status
from cardmgmt.ota import syncapplet as sa
from cardmgmt.ota.planner import AppletCommands, Audit, Delete, LoadAndInstall, StoreData
from cardmgmt.smpp.client import SmppClient
from cardmgmt.smpp.dlr import InboundMessage
from cardmgmt.smpp.pdu import MessageState
from handset.fleet import FleetRouter, dump_fleet
from handset.smsc import SmscSimulator

pytestmark = pytest.mark.timeout(60)
DEST = MSISDN.lstrip("+")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 50))


async def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


class Link:
    """The portal's side of the bind, just enough for the tests."""

    def __init__(self, client: SmppClient, inbound: list[InboundMessage], lab: Lab) -> None:
        self.client, self.inbound, self.lab = client, inbound, lab

    def mos(self) -> list[InboundMessage]:
        return [m for m in self.inbound if not m.is_receipt]

    def receipts(self) -> dict[str, InboundMessage]:
        return {m.receipted_message_id: m for m in self.inbound if m.is_receipt}

    async def send(self, message) -> list[str]:
        ids = []
        for ud in message.user_data:
            ids.append(
                await self.client.submit(
                    DEST, ud, source_addr=OTA_ADDRESS, source_addr_ton=1, source_addr_npi=1,
                    esm_class=0x40, protocol_id=0x7F, data_coding=0xF6, registered_delivery=1,
                )
            )  # fmt: skip
        return ids

    async def run(self, operation, keys=None):
        """Send each packet and wait for its PoR before the next (as the portal's job does)."""
        pors = []
        for message in self.lab.secure(operation, keys):
            before = len(self.mos())
            ids = await self.send(message)
            await wait_for(lambda before=before: len(self.mos()) > before)
            await wait_for(lambda ids=ids: all(i in self.receipts() for i in ids))
            new = self.mos()[before:]
            assert all(m.esm_class & 0x40 and m.protocol_id == 0 for m in new)
            assert all(m.data_coding == 0xF6 for m in new)
            assert all(m.source_addr == DEST and m.destination_addr == OTA_ADDRESS for m in new)
            por = self.lab.join(new)
            if por.status is PorStatus.OK:
                assert por.cntr == message.cntr and por.verified
            pors.append(por)
        return pors


@contextlib.asynccontextmanager
async def lab_link(**profile):
    card = make_card(**profile)
    router = FleetRouter([card], ota_address=OTA_ADDRESS)
    lab = Lab(router)
    inbound: list[InboundMessage] = []
    async with SmscSimulator({"ota": "secret"}, router=router, seed=1) as smsc:
        client = SmppClient(
            "127.0.0.1", smsc.port, "ota", "secret", on_deliver=inbound.append,
            response_timeout=5.0,
        )  # fmt: skip
        await client.connect()
        try:
            yield Link(client, inbound, lab), smsc
        finally:
            await client.close()


def install_operation(code_size: int = 1500) -> LoadAndInstall:
    return LoadAndInstall(parse_cap(sync_cap(code_size)), install_params=sa.install_parameters())


def test_load_install_audit_store_trigger_delete_over_smpp() -> None:
    async def scenario() -> None:
        async with lab_link() as (link, smsc):
            lab = link.lab
            messages = lab.secure(install_operation())
            assert any(len(m.user_data) > 1 for m in messages), "load needs concatenated SMS"
            lab.counter = 0  # plan again below with the same counters
            pors = await link.run(install_operation())
            assert [parse_compact_result(p.additional_data).sw for p in pors] == [0x9000] * len(
                pors
            )
            assert smsc.stats.accepted == sum(len(m.user_data) for m in messages)
            assert all(r.delivered for r in link.receipts().values())
            card = lab.card
            assert sa.PACKAGE_AID in card.load_files and sa.INSTANCE_AID in card.instances

            # the audit agrees with the card's registry
            (por,) = await link.run(Audit(p1=0x40))
            entries = parse_get_status(parse_compact_result(por.additional_data).data)
            assert [(e.aid, e.load_file_aid, e.lifecycle) for e in entries] == [
                (sa.INSTANCE_AID, sa.PACKAGE_AID, 0x07)
            ]
            (por,) = await link.run(Audit(p1=0x20))
            (elf,) = parse_get_status(parse_compact_result(por.additional_data).data)
            assert elf.aid == sa.PACKAGE_AID and elf.version == b"\x01\x00"

            # parameter record, read back, trigger
            record = bytes.fromhex("A1") + bytes(range(200))
            pors = await link.run(StoreData(sa.TAR, record))
            assert all(parse_compact_result(p.additional_data).sw == 0x9000 for p in pors)
            (por,) = await link.run(AppletCommands(sa.TAR, (sa.read_summary_apdu(),)))
            assert sa.parse_summary(parse_compact_result(por.additional_data).data).matches(record)
            trigger = sa.trigger_apdu(sa.SyncMode.REFRESH_FROM_SERVER, "camp-7")
            (por,) = await link.run(AppletCommands(sa.TAR, (trigger,)))
            assert parse_compact_result(por.additional_data).sw == 0x9000
            (issued,) = card.issued_commands
            assert (issued.record, issued.mode, issued.campaign) == (record, 5, b"camp-7")

            # delete with related objects
            (por,) = await link.run(Delete(sa.PACKAGE_AID, related_objects=True))
            assert parse_compact_result(por.additional_data).sw == 0x9000
            assert card.load_files == {} and card.instances == {}
            (por,) = await link.run(Audit(p1=0x40))
            assert parse_compact_result(por.additional_data).sw == 0x6A88

    run(scenario())


def test_security_failures_over_smpp() -> None:
    async def scenario() -> None:
        async with lab_link() as (link, _):
            lab = link.lab
            (message,) = lab.secure(Audit())
            for expected in (PorStatus.OK, PorStatus.COUNTER_LOW):  # the same SMS twice
                before = len(link.mos())
                await link.send(message)
                await wait_for(lambda before=before: len(link.mos()) > before)
                assert lab.join(link.mos()[before:]).status is expected
            from cardmgmt.ota import KeySet

            (por,) = await link.run(Audit(), keys=KeySet(bytes(16), bytes(16)))
            assert por.status is PorStatus.RC_CC_DS_FAILED and not por.verified
            (por,) = await link.run(AppletCommands(sa.TAR, (sa.read_summary_apdu(),)))
            assert por.status is PorStatus.TAR_UNKNOWN

    run(scenario())


def test_toolkit_busy_fails_the_dlr_then_the_retry_works() -> None:
    async def scenario() -> None:
        async with lab_link() as (link, smsc):
            link.lab.router.inject(MSISDN, toolkit_busy=1)
            (message,) = link.lab.secure(Audit())
            (message_id,) = await link.send(message)
            await wait_for(lambda: message_id in link.receipts())
            receipt = link.receipts()[message_id]
            assert receipt.state == MessageState.UNDELIVERABLE
            assert receipt.receipt is not None and receipt.receipt.err == "212"
            await asyncio.sleep(0.05)
            assert link.mos() == []  # no PoR
            (por,) = await link.run(Audit())  # retried with a fresh counter
            assert por.status is PorStatus.OK
            assert smsc.stats.failed_dlrs == 1

    run(scenario())


def test_out_of_memory_and_lost_por_over_smpp() -> None:
    async def scenario() -> None:
        async with lab_link(memory_quota=800) as (link, _):
            pors = await link.run(install_operation())
            sws = [parse_compact_result(p.additional_data).sw for p in pors]
            assert 0x6A84 in sws
            assert link.lab.card.load_files == {}
            link.lab.router.inject(MSISDN, lose_por=1)
            (message,) = link.lab.secure(Audit())
            (message_id,) = await link.send(message)
            await wait_for(lambda: message_id in link.receipts())
            assert link.receipts()[message_id].delivered  # delivered, executed, no PoR
            await asyncio.sleep(0.05)
            assert link.lab.card.history[-1].por_lost

    run(scenario())


# --- Standalone: python -m handset smsc --fleet FILE --------------------------------------------


def test_cli_serves_a_fleet_file(tmp_path) -> None:
    fleet = tmp_path / "fleet.json"
    dump_fleet([make_card()], fleet, ota_address=OTA_ADDRESS, state_file="state.json")
    assert json.loads(fleet.read_text())["cards"][0]["keysets"][0]["kic"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(
        [sys.executable, "-m", "handset", "smsc", "--port", "0", "--fleet", str(fleet)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert "SMSC listening on" in line, line + process.stderr.read()  # type: ignore[union-attr]
        port = int(line.split()[3].rsplit(":", 1)[1])

        async def scenario() -> None:
            inbound: list[InboundMessage] = []
            client = SmppClient("127.0.0.1", port, "ota", "secret", on_deliver=inbound.append)
            await client.connect()
            try:
                link = Link(client, inbound, Lab(FleetRouter([make_card()])))
                pors = await link.run(install_operation(400))
                assert all(parse_compact_result(p.additional_data).sw == 0x9000 for p in pors)
            finally:
                await client.close()

        run(scenario())
    finally:
        process.terminate()
        process.wait(10)
    state = json.loads((tmp_path / "state.json").read_text())
    (card_state,) = state["cards"].values()
    assert card_state["counters"]["1"] > 0
    assert [i["aid"] for i in card_state["instances"]] == [sa.INSTANCE_AID.hex().upper()]
