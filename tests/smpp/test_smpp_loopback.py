"""ESME client against the SMSC simulator over loopback (127.0.0.1, ephemeral ports)."""

import asyncio
import contextlib
import time

import pytest

from cardmgmt.smpp.client import BindType, SmppClient
from cardmgmt.smpp.dlr import InboundMessage
from cardmgmt.smpp.errors import (
    SmppBindError,
    SmppCommandError,
    SmppConnectionError,
    SmppThrottledError,
)
from cardmgmt.smpp.pdu import (
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_RMSGQFUL,
    ESME_RTHROTTLED,
    MAX_SEQUENCE,
    BindTransmitter,
    CommandId,
    EnquireLink,
    MessageState,
    PduFramer,
    SubmitSm,
    decode_pdu,
)
from cardmgmt.smpp.ratelimit import TokenBucket
from handset.smsc import EchoRouter, MoMessage, SmscSimulator, Undeliverable

pytestmark = pytest.mark.timeout(30)

OTA = {"esm_class": 0x40, "protocol_id": 0x7F, "data_coding": 0xF6}
TP_UD = bytes.fromhex("027000") + bytes(range(137))  # 140 octets, OTA-like


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 25))


@contextlib.asynccontextmanager
async def smsc_and_client(router=None, **client_options):
    inbound: list[InboundMessage] = []
    options = {"on_deliver": inbound.append, "response_timeout": 5.0, **client_options}
    async with SmscSimulator({"ota": "secret"}, router=router, seed=1) as smsc:
        client = SmppClient("127.0.0.1", smsc.port, "ota", "secret", **options)
        await client.connect()
        try:
            yield smsc, client, inbound
        finally:
            await client.close()


async def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def raw_exchange(port, *pdus_bytes, expect=1):
    """Write raw bytes, return the decoded PDUs the SMSC answered (and whether it hung up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for data in pdus_bytes:
        writer.write(data)
    await writer.drain()
    framer = PduFramer()
    answers = []
    closed = False
    try:
        while len(answers) < expect:
            chunk = await asyncio.wait_for(reader.read(4096), 2)
            if not chunk:
                closed = True
                break
            answers += [decode_pdu(f) for f in framer.feed(chunk)]
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return answers, closed


def test_bind_good_and_bad_credentials():
    async def scenario():
        async with SmscSimulator({"ota": "secret"}) as smsc:
            good = SmppClient("127.0.0.1", smsc.port, "ota", "secret")
            await good.connect()
            assert good.is_bound
            assert good.smsc_system_id == smsc.system_id
            for system_id, password, status in (
                ("ota", "wrong", ESME_RINVPASWD),
                ("nobody", "secret", ESME_RINVSYSID),
            ):
                bad = SmppClient("127.0.0.1", smsc.port, system_id, password)
                with pytest.raises(SmppBindError) as info:
                    await bad.connect()
                assert info.value.status == status
                assert not info.value.retryable
                assert not bad.is_bound
            assert smsc.stats.binds == 1
            assert smsc.stats.bind_failures == 2
            await good.close()

    run(scenario())


def test_connect_refused_is_a_connection_error():
    async def scenario():
        smsc = SmscSimulator({"ota": "secret"})
        await smsc.start()
        port = smsc.port
        await smsc.stop()
        client = SmppClient("127.0.0.1", port, "ota", "secret", connect_timeout=2)
        with pytest.raises(SmppConnectionError):
            await client.connect()
        with pytest.raises(SmppConnectionError):
            await client.submit("1", b"x")

    run(scenario())


def test_submit_returns_unique_message_ids():
    async def scenario():
        async with smsc_and_client(window=8) as (smsc, client, _):
            ids = await asyncio.gather(
                *(
                    client.submit(f"4477009{i:05d}", TP_UD, source_addr="4000", **OTA)
                    for i in range(50)
                )
            )
            assert len(set(ids)) == 50
            assert smsc.stats.accepted == 50
            record = smsc.submitted[0]
            assert record.message_id == ids[0]
            assert (record.esm_class, record.protocol_id, record.data_coding) == (0x40, 0x7F, 0xF6)
            assert record.short_message == TP_UD
            assert record.source_addr == "4000"
            assert client.stats.submitted == 50

    run(scenario())


def test_window_limits_outstanding_requests():
    async def scenario():
        async with smsc_and_client(window=4) as (smsc, client, _):
            smsc.faults.response_delay = 0.3
            tasks = [asyncio.create_task(client.submit("447700900123", b"x")) for _ in range(12)]
            await asyncio.sleep(0.15)
            assert smsc.stats.submits == 4
            assert client.outstanding == 4
            ids = await asyncio.gather(*tasks)
            assert len(set(ids)) == 12
            assert client.outstanding == 0

    run(scenario())


def test_sequence_numbers_wrap():
    async def scenario():
        async with smsc_and_client() as (_, client, _inbound):
            session = client._session
            session._sequence = MAX_SEQUENCE - 1
            await client.submit("1", b"a")
            assert session._sequence == MAX_SEQUENCE
            await client.submit("1", b"b")
            assert session._sequence == 1
            assert session.next_sequence() == 2

    run(scenario())


def test_mo_from_router_reaches_handler():
    async def scenario():
        async with smsc_and_client(router=EchoRouter()) as (smsc, client, inbound):
            await client.submit("447700900123", TP_UD, source_addr="4000", **OTA)
            await wait_for(lambda: inbound)
            mo = inbound[0]
            assert not mo.is_receipt
            assert mo.source_addr == "447700900123"
            assert mo.destination_addr == "4000"
            assert mo.payload == TP_UD
            assert (mo.esm_class, mo.protocol_id, mo.data_coding) == (0x40, 0x7F, 0xF6)
            smsc.inject_mo("ota", ("447700900999", "4000", 0, 0, 0, b"hello"))
            await wait_for(lambda: len(inbound) == 2)
            assert inbound[1].text == "hello"
            await wait_for(lambda: smsc.stats.mos == 2)

    run(scenario())


def test_async_router_and_async_handler():
    async def router(source, dest, esm_class, pid, dcs, payload):
        await asyncio.sleep(0.01)
        return [MoMessage(dest, source, 0x40, 0x00, 0xF6, b"\x02\x71\x00" + payload[:4])]

    async def scenario():
        got = []

        async def handler(message):
            await asyncio.sleep(0.01)
            got.append(message)

        async with smsc_and_client(router=router, on_deliver=handler) as (smsc, client, _):
            await client.submit("447700900123", b"\x01\x02\x03\x04\x05", source_addr="4000")
            await wait_for(lambda: got and smsc.stats.mos == 1)
            assert got[0].payload == b"\x02\x71\x00\x01\x02\x03\x04"

    run(scenario())


def test_mo_is_queued_until_a_receiver_binds():
    async def scenario():
        async with SmscSimulator({"ota": "secret"}, router=EchoRouter()) as smsc:
            tx = SmppClient("127.0.0.1", smsc.port, "ota", "secret", bind_type=BindType.TRANSMITTER)
            await tx.connect()
            await tx.submit("447700900123", b"ping", source_addr="4000", registered_delivery=1)
            await asyncio.sleep(0.1)
            assert smsc.queued("ota") == 2  # the receipt and the echo
            got = []
            rx = SmppClient(
                "127.0.0.1", smsc.port, "ota", "secret", bind_type="receiver", on_deliver=got.append
            )
            await rx.connect()
            await wait_for(lambda: len(got) == 2)
            assert smsc.queued("ota") == 0
            assert [m.is_receipt for m in got] == [True, False]
            with pytest.raises(SmppConnectionError):
                await rx.submit("1", b"x")  # a receiver cannot submit
            await tx.close()
            await rx.close()

    run(scenario())


def test_delivery_receipts():
    async def scenario():
        async with smsc_and_client() as (smsc, client, inbound):
            ok_id = await client.submit("447700900123", b"hi", registered_delivery=1)
            await wait_for(lambda: len(inbound) == 1)
            smsc.faults.fail_dlr_share = 1.0
            bad_id = await client.submit("447700900123", b"hi", registered_delivery=1)
            await wait_for(lambda: len(inbound) == 2)
            await client.submit("447700900123", b"no receipt wanted")
            ok, bad = inbound
            assert ok.is_receipt and bad.is_receipt
            assert ok.receipted_message_id == ok_id
            assert ok.state == MessageState.DELIVERED and ok.delivered
            assert ok.receipt.stat == "DELIVRD"
            assert ok.receipt.text == "hi"
            assert bad.receipted_message_id == bad_id
            assert bad.state == MessageState.UNDELIVERABLE
            assert bad.receipt.stat == "UNDELIV"
            assert bad.network_error_code == (3, 1)
            await smsc.drain()
            assert smsc.stats.dlrs == 2
            assert smsc.stats.failed_dlrs == 1
            assert client.stats.receipts_in == 2

    run(scenario())


def test_router_undeliverable_gives_failed_receipt():
    def router(source, dest, esm_class, pid, dcs, payload):
        raise Undeliverable("no such subscriber", err=11)

    async def scenario():
        async with smsc_and_client(router=router) as (smsc, client, inbound):
            await client.submit("447700900000", b"x", registered_delivery=2)  # failure only
            await wait_for(lambda: inbound)
            assert inbound[0].state == MessageState.UNDELIVERABLE
            assert inbound[0].receipt.err == "011"
            assert smsc.stats.undeliverable == 1

    run(scenario())


def test_drop_and_delay_faults():
    async def scenario():
        async with smsc_and_client(router=EchoRouter()) as (smsc, client, inbound):
            smsc.faults.drop_share = 1.0
            await client.submit("447700900123", b"lost", registered_delivery=1)
            await asyncio.sleep(0.1)
            assert inbound == []
            assert smsc.stats.dropped == 1
            smsc.faults.drop_share = 0.0
            smsc.faults.delay_share = 1.0
            smsc.faults.delay_seconds = 0.3
            started = time.monotonic()
            await client.submit("447700900123", b"late")
            await wait_for(lambda: inbound)
            assert time.monotonic() - started >= 0.25
            assert smsc.stats.delayed == 1

    run(scenario())


def test_handler_failure_is_retried_by_the_smsc():
    async def scenario():
        calls = []

        def handler(message):
            calls.append(message)
            if len(calls) == 1:
                raise RuntimeError("database is down")

        async with SmscSimulator({"ota": "secret"}, retry_delay=0.05) as smsc:
            client = SmppClient("127.0.0.1", smsc.port, "ota", "secret", on_deliver=handler)
            await client.connect()
            smsc.inject_mo("ota", MoMessage("447700900123", "4000", payload=b"retry me"))
            await wait_for(lambda: smsc.stats.mos == 1)
            assert [c.payload for c in calls] == [b"retry me", b"retry me"]
            await client.close()

    run(scenario())


def test_enquire_link_and_keepalive():
    async def scenario():
        async with smsc_and_client(enquire_link_interval=0.1) as (smsc, client, _):
            await client.enquire_link()
            await wait_for(lambda: client.stats.enquire_links >= 3)
            assert client.stats.connection_losses == 0
            smsc.faults.answer_enquire_link = False  # the SMSC goes silent
            await wait_for(lambda: not client.is_bound, timeout=3)
            assert client.stats.connection_losses == 1

    run(scenario())


def test_throttling_surfaces_as_retryable_error():
    async def scenario():
        async with smsc_and_client() as (smsc, client, _):
            smsc.faults.throttle_share = 1.0
            with pytest.raises(SmppThrottledError) as info:
                await client.submit("447700900123", b"x")
            assert info.value.status == ESME_RTHROTTLED
            assert info.value.retryable
            smsc.faults.clear()
            smsc.faults.queue_full_share = 1.0
            with pytest.raises(SmppThrottledError) as info:
                await client.submit("447700900123", b"x")
            assert info.value.status == ESME_RMSGQFUL
            smsc.faults.clear()
            smsc.faults.throttle_tps = 5
            results = await asyncio.gather(
                *(client.submit("447700900123", b"x") for _ in range(20)), return_exceptions=True
            )
            throttled = [r for r in results if isinstance(r, SmppThrottledError)]
            assert 10 <= len(throttled) <= 15  # 5 (or 10 across a second boundary) got through
            assert client.stats.throttled == 2 + len(throttled)
            # the link is still fine afterwards
            smsc.faults.clear()
            assert await client.submit("447700900123", b"x")

    run(scenario())


def test_rate_limiter_hook():
    class CountingLimiter:
        def __init__(self):
            self.calls = 0

        async def acquire(self):
            self.calls += 1

    async def scenario():
        limiter = CountingLimiter()
        async with smsc_and_client(rate_limiter=limiter) as (_, client, _inbound):
            await asyncio.gather(*(client.submit("1", b"x") for _ in range(5)))
            assert limiter.calls == 5
        bucket = TokenBucket(rate=50, burst=1)
        async with smsc_and_client(rate_limiter=bucket) as (_, client, _inbound):
            started = time.monotonic()
            await asyncio.gather(*(client.submit("1", b"x") for _ in range(11)))
            assert time.monotonic() - started >= 0.19  # 10 waits of 20 ms

    run(scenario())


def test_server_restart_client_reconnects_and_continues():
    async def scenario():
        async with SmscSimulator({"ota": "secret"}) as smsc:
            client = SmppClient(
                "127.0.0.1",
                smsc.port,
                "ota",
                "secret",
                reconnect_initial=0.05,
                reconnect_max=0.2,
                bind_wait=5.0,
            )
            supervisor = asyncio.create_task(client.run_forever())
            await client.wait_bound(5)
            first = await client.submit("447700900123", b"before")
            port = smsc.port
            # a submit in flight while the SMSC goes away fails as retryable
            smsc.faults.response_delay = 0.5
            in_flight = asyncio.create_task(client.submit("447700900123", b"in flight"))
            await asyncio.sleep(0.05)
            await smsc.restart(same_port=True, down_for=0.3)
            smsc.faults.response_delay = 0.0
            with pytest.raises(SmppConnectionError) as info:
                await in_flight
            assert info.value.retryable
            assert smsc.port == port
            # submits made while reconnecting wait for the new bind
            second = await client.submit("447700900123", b"after")
            assert second != first
            assert client.stats.binds == 2
            assert client.stats.connection_losses == 1
            assert smsc.stats.restarts == 1
            await client.close()
            await asyncio.wait_for(supervisor, 2)

    run(scenario())


def test_unbind_on_close():
    async def scenario():
        async with smsc_and_client() as (smsc, client, _):
            assert len(smsc.sessions) == 1
            await client.close()
            assert not client.is_bound
            await wait_for(lambda: not smsc.sessions)
            with pytest.raises(SmppConnectionError):
                await client.submit("1", b"x")

    run(scenario())


def test_smsc_answers_unknown_commands_with_generic_nack():
    async def scenario():
        async with SmscSimulator({"ota": "secret"}) as smsc:
            unknown = bytes.fromhex("0000001000000099000000000000002a")
            query_sm = bytes.fromhex("0000001000000003000000000000002b")
            answers, closed = await raw_exchange(smsc.port, unknown, query_sm, expect=2)
            assert [(a.command_id, a.command_status, a.sequence_number) for a in answers] == [
                (CommandId.GENERIC_NACK, ESME_RINVCMDID, 42),
                (CommandId.GENERIC_NACK, ESME_RINVCMDID, 43),
            ]
            assert not closed
            assert smsc.stats.generic_nacks == 2

    run(scenario())


def test_submit_before_bind_is_refused():
    async def scenario():
        async with SmscSimulator({"ota": "secret"}) as smsc:
            answers, _ = await raw_exchange(
                smsc.port,
                SubmitSm(sequence_number=5).encode(),
                EnquireLink(sequence_number=6).encode(),
                expect=2,
            )
            assert answers[0].command_status == ESME_RINVBNDSTS
            assert answers[1].command_id == CommandId.ENQUIRE_LINK_RESP
            bind = BindTransmitter(sequence_number=1, system_id="ota", password="secret").encode()
            answers, _ = await raw_exchange(smsc.port, bind, bind, expect=2)
            assert answers[0].command_status == 0
            assert answers[1].command_status != 0  # ESME_RALYBND

    run(scenario())


def test_garbled_stream_does_not_crash_the_smsc():
    async def scenario():
        async with smsc_and_client(router=EchoRouter()) as (smsc, client, inbound):
            # a corrupt body with a sane length: nacked, the connection stays
            bad_body = bytes.fromhex("00000014000000040000000000000009") + b"\xff" * 4
            answers, closed = await raw_exchange(smsc.port, bad_body, expect=1)
            assert answers[0].command_id == CommandId.GENERIC_NACK
            assert answers[0].sequence_number == 9
            # an absurd length: the SMSC hangs up on that connection only
            answers, closed = await raw_exchange(smsc.port, b"\xff" * 64, expect=1)
            assert closed and answers == []
            answers, closed = await raw_exchange(smsc.port, b"GET / HTTP/1.1\r\n\r\n", expect=1)
            assert closed
            # the bound client did not notice
            assert await client.submit("447700900123", b"still here")
            await wait_for(lambda: inbound)
            fresh = SmppClient("127.0.0.1", smsc.port, "ota", "secret")
            await fresh.connect()
            await fresh.close()

    run(scenario())


def test_command_errors_are_not_retryable():
    async def scenario():
        async with smsc_and_client(bind_type=BindType.TRANSCEIVER) as (_, client, _inbound):
            with pytest.raises(SmppCommandError) as info:
                await client.request(BindTransmitter(system_id="ota", password="secret"))
            assert not info.value.retryable
            assert "ESME_RALYBND" in str(info.value)

    run(scenario())


def test_supervisor_retries_a_refused_bind():
    async def scenario():
        async with SmscSimulator({"ota": "changed"}) as smsc:
            client = SmppClient(
                "127.0.0.1", smsc.port, "ota", "secret", reconnect_initial=0.05, reconnect_max=0.1
            )
            supervisor = asyncio.create_task(client.run_forever())
            await wait_for(lambda: client.stats.bind_failures >= 2)
            assert not client.is_bound
            smsc.add_account("ota", "secret")  # the operator fixes the password
            await client.wait_bound(5)
            assert await client.submit("1", b"x")
            await client.close()
            await asyncio.wait_for(supervisor, 2)

    run(scenario())
