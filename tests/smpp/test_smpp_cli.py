"""`python -m handset smsc` standalone, and a third-party ESME (smpplib) against the simulator."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cardmgmt.smpp.client import SmppClient
from handset.__main__ import build_parser
from handset.smsc import EchoRouter, SmscSimulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def _start_smsc(*extra):
    return subprocess.Popen(
        [sys.executable, "-m", "handset", "smsc", "--port", "0", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_parser_has_smsc_subcommand():
    args = build_parser().parse_args(
        ["smsc", "--account", "ota:secret", "--account", "b:pw", "--fleet", "f.json"]
    )
    assert args.command == "smsc"
    assert args.account == [("ota", "secret"), ("b", "pw")]
    assert args.fleet == "f.json"
    assert (args.host, args.port) == ("127.0.0.1", 2775)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["smsc", "--account", "no-colon"])


def test_standalone_smsc_echoes_and_stops_on_sigterm():
    process = _start_smsc("--account", "ota:secret", "--router", "echo")
    try:
        line = process.stdout.readline()
        assert line.startswith("SMSC listening on 127.0.0.1:"), line
        port = int(line.split(" on ", 1)[1].split()[0].rsplit(":", 1)[1])

        async def scenario():
            got = []
            client = SmppClient("127.0.0.1", port, "ota", "secret", on_deliver=got.append)
            await client.connect()
            await client.submit("447700900123", b"\x02\x70\x00", source_addr="4000")
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.01)
            await client.close()
            return got

        got = asyncio.run(scenario())
        assert [m.payload for m in got] == [b"\x02\x70\x00"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


smpplib = pytest.importorskip("smpplib.client", reason="smpplib is not installed (optional)")


@pytest.mark.interop
def test_smpplib_esme_against_the_simulator():
    """python-smpplib (a third-party ESME) binds, submits and receives the echo."""
    import smpplib.consts

    def esme(port):
        client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
        received = []
        client.set_message_received_handler(lambda pdu: received.append(pdu))
        client.connect()
        try:
            client.bind_transceiver(system_id="ota", password="secret")
            submit = client.send_message(
                source_addr_ton=smpplib.consts.SMPP_TON_INTL,
                source_addr="4000",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                destination_addr="447700900123",
                short_message=b"\x02\x70\x00hello",
                esm_class=0x40,
                protocol_id=0x7F,
                data_coding=0xF6,
            )
            response = client.read_pdu()
            assert response.command == "submit_sm_resp"
            assert response.sequence == submit.sequence
            while not received:
                client.read_once()
            client.unbind()
            return response.message_id, received[0]
        finally:
            client.disconnect()

    async def scenario():
        async with SmscSimulator({"ota": "secret"}, router=EchoRouter()) as smsc:
            message_id, mo = await asyncio.to_thread(esme, smsc.port)
            assert message_id.decode() == smsc.submitted[0].message_id
            assert smsc.submitted[0].short_message == b"\x02\x70\x00hello"
            assert mo.short_message == b"\x02\x70\x00hello"
            await smsc.drain()
            assert smsc.stats.mos == 1

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_protocol_code_imports_no_django():
    code = (
        "import sys, cardmgmt.smpp, cardmgmt.smpp.client, handset.smsc, handset.__main__\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30)
