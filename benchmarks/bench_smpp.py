"""SMPP throughput: submit_sm per second from SmppClient to the loopback SMSC simulator.

Run from the repository root: `.venv/bin/python benchmarks/bench_smpp.py [--count N]`.

OTA-like traffic (140-octet binary TP-UD, esm_class 0x40, PID 0x7F, DCS 0xF6), window 64, a sink
router (no MO, no receipts). Two set-ups:
- in-process: the SMSC and the client share one event loop and one core (the pessimistic case);
- separate process: the SMSC runs as `python -m handset smsc`, as in the embedded deployment.
Plus the codec alone (submit_sm encode + decode, submit_sm_resp encode + decode).
Every run is bounded by a message count and a wall-clock limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.figures import Figure, print_figures  # noqa: E402
from cardmgmt.smpp.client import SmppClient  # noqa: E402
from cardmgmt.smpp.pdu import SubmitSm, SubmitSmResp, decode_pdu  # noqa: E402
from handset.smsc import SinkRouter, SmscSimulator  # noqa: E402

TARGET_SUBMITS_PER_SECOND = 5_000
WINDOW = 64
TP_UD = bytes.fromhex("027000") + bytes(i % 256 for i in range(137))  # 140 octets
OTA = {"esm_class": 0x40, "protocol_id": 0x7F, "data_coding": 0xF6, "registered_delivery": 0}


async def _pump(port: int, count: int, time_limit: float) -> tuple[int, float]:
    """Submit `count` messages with `WINDOW` workers; return (done, seconds)."""
    client = SmppClient("127.0.0.1", port, "ota", "secret", window=WINDOW)
    await client.connect()
    # warm-up (connection, caches)
    await asyncio.gather(*(client.submit("447700900000", TP_UD, **OTA) for _ in range(WINDOW)))
    done = 0
    started = time.perf_counter()
    deadline = started + time_limit

    async def worker(n: int) -> None:
        nonlocal done
        for i in range(n):
            if time.perf_counter() > deadline:
                return
            await client.submit(f"4477009{i % 100000:05d}", TP_UD, source_addr="4000", **OTA)
            done += 1

    per_worker, extra = divmod(count, WINDOW)
    await asyncio.gather(*(worker(per_worker + (w < extra)) for w in range(WINDOW)))
    elapsed = time.perf_counter() - started
    await client.close()
    return done, elapsed


async def in_process(count: int, time_limit: float) -> tuple[int, float]:
    async with SmscSimulator({"ota": "secret"}, router=SinkRouter(), log_limit=1000) as smsc:
        return await _pump(smsc.port, count, time_limit)


async def separate_process(count: int, time_limit: float) -> tuple[int, float]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "handset",
            "smsc",
            "--port",
            "0",
            "--router",
            "sink",
            "--account",
            "ota:secret",
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 20)
        port = int(line.split(" on ", 1)[1].split()[0].rsplit(":", 1)[1])
        return await _pump(port, count, time_limit)
    finally:
        process.terminate()
        process.wait(10)


def codec(count: int) -> float:
    """submit_sm + submit_sm_resp encoded and decoded, per second (one message's codec work)."""
    request = SubmitSm(
        destination_addr="447700900123",
        source_addr="4000",
        short_message=TP_UD,
        esm_class=0x40,
        protocol_id=0x7F,
        data_coding=0xF6,
    )
    response = SubmitSmResp(message_id="a1b2c30000000001")
    started = time.perf_counter()
    for seq in range(1, count + 1):
        request.sequence_number = seq
        decode_pdu(request.encode())
        response.sequence_number = seq
        decode_pdu(response.encode())
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000, help="messages per run")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per run, at most")
    args = parser.parse_args()

    figures = []
    rate = codec(min(args.count, 100_000))
    figures.append(
        Figure(
            "codec: submit_sm + resp encode/decode", rate, "msg/s", 5 * TARGET_SUBMITS_PER_SECOND
        )
    )
    for label, runner in (
        ("loopback, SMSC in-process (one core)", in_process),
        ("loopback, SMSC in its own process", separate_process),
    ):
        done, elapsed = asyncio.run(runner(args.count, args.time_limit))
        figures.append(
            Figure(
                f"submit_sm, window {WINDOW}, {label}",
                done / elapsed,
                "submit/s",
                TARGET_SUBMITS_PER_SECOND,
                peer=f"{done:,} OTA-like 140-octet submits in {elapsed:.2f} s",
            )
        )
    print_figures("SMPP submit_sm throughput (SmppClient -> SMSC simulator)", figures)


if __name__ == "__main__":
    main()
