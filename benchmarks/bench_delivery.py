"""OTA delivery on PostgreSQL and loopback SMPP.

1. submit_sm per second from the portal's link process (`LinkRunner`: claims queued messages
   from the database, submits them within its window, records the SMSC ids) to the loopback
   SMSC simulator that accepts everything. Target: 5,000/s.
2. End-to-end confirmed OTA messages per second with 1,000 virtual cards: audit jobs planned
   and secured by real Celery workers, sent by the link, executed by the virtual cards, PoRs
   verified and matched by the workers. Compared with the raw link rate of step 1.

Runs against its own database (`<name>_bench_ota` next to DATABASE_URL's) and the broker of
CELERY_BROKER_URL (Redis), both created/purged here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.database import BenchDatabase  # noqa: E402

LINK_MESSAGES = int(os.environ.get("BENCH_LINK_MESSAGES", "30000"))
CARDS = int(os.environ.get("BENCH_OTA_CARDS", "1000"))
LINK_TARGET = 5000.0
# Which parts to run (comma-separated): "link", "e2e"; both by default.
PARTS = set(os.environ.get("BENCH_PARTS", "link,e2e").split(","))

BENCH_DB = BenchDatabase("bench_ota")
BENCH_DB.create()
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/8")
os.environ["PORTAL_DATA_DIR"] = str(ROOT / "data" / "bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.figures import Figure, print_figures  # noqa: E402
from cardmgmt import services  # noqa: E402
from cardmgmt.models import OtaJob, OtaMessage, SmscLink  # noqa: E402
from cardmgmt.smpplink import LinkRunner  # noqa: E402
from cardmgmt.validators import luhn_check_digit  # noqa: E402
from handset.fleet import router_from_file  # noqa: E402
from handset.smsc import SmscSimulator  # noqa: E402
from portal.celery import app  # noqa: E402
from portal.context import Actor  # noqa: E402

ACTOR = Actor.command("bench")


class SmscThread:
    def __init__(self, router) -> None:  # type: ignore[no-untyped-def]
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.smsc = SmscSimulator({"ota": "bench"}, router=router, host="127.0.0.1", window=256)
        asyncio.run_coroutine_threadsafe(self.smsc.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.smsc.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_link(port: int, name: str) -> SmscLink:
    return services.save_smsc_link(
        actor=ACTOR,
        name=name,
        host="127.0.0.1",
        port=port,
        system_id="ota",
        password="bench",
        source_addr="12345",
        tps=100000,
        window=64,
    )


def make_fleet(count: int) -> None:
    profile = services.create_card_profile(
        actor=ACTOR, name="Bench AES", vendor="Bench", algorithms=["aes128"], por_timeout=300
    )
    for n in range(count):
        body = f"8949008{n:011d}"
        key = os.urandom(16).hex()
        card = services.create_card(
            actor=ACTOR,
            iccid=body + str(luhn_check_digit(body)),
            imsi=f"26208{n:010d}",
            profile=profile,
            keysets=[
                services.KeySetInput(kvn=1, algorithm="aes128", kic=key, kid=os.urandom(16).hex())
            ],
        )
        services.create_subscriber(actor=ACTOR, msisdn=f"+4917880{n:06d}", card=card)


def queue_raw_messages(count: int) -> None:
    """Queued messages ready for the link (a 140-octet SMS each), written with COPY."""
    job = OtaJob.objects.create(operation="audit", card_id=1, requested_by="bench")
    user_data = "027000" + "00" * 137
    with (
        connection.cursor() as wrapper,
        wrapper.cursor.copy(
            "COPY cardmgmt_otamessage (job_id, step, description, card_id, msisdn, tar, kvn,"
            " secured_data, sealed, state, priority, attempt, max_attempts, user_data, smpp_ids,"
            " history, por_sw, por_data, por_text, failure_reason) FROM STDIN"
        ) as copy,
    ):
        for n in range(count):
            copy.write_row(
                (
                    job.pk,
                    n,
                    "bench",
                    1,
                    "+491788000000",
                    "B00000",
                    1,
                    b"\x00",
                    False,
                    "queued",
                    5,
                    1,
                    3,
                    f'["{user_data}"]',
                    "[]",
                    "[]",
                    "",
                    "",
                    "",
                    "",
                )
            )


async def run_link(link: SmscLink, until) -> float:  # type: ignore[no-untyped-def]
    runner = LinkRunner(link, poll_interval=0.05, batch=512)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    start = time.perf_counter()
    while not await until():
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return elapsed


def link_part(figures: list[Figure]) -> float:
    # 1. the link alone, into a sink SMSC running as its own process (as in production)
    port = free_port()
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "handset",
            "smsc",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--account",
            "ota:bench",
            "--router",
            "sink",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2)
    link = make_link(port, "sink")
    queue_raw_messages(LINK_MESSAGES)

    async def all_submitted() -> bool:
        return await sync_to_async(lambda: not OtaMessage.objects.filter(state="queued").exists())()

    elapsed = asyncio.run(run_link(link, all_submitted))
    raw_rate = LINK_MESSAGES / elapsed
    figures.append(
        Figure(
            f"link: submit_sm/s, {LINK_MESSAGES:,} messages, window 64, with DB",
            raw_rate,
            "msg/s",
            LINK_TARGET,
        )
    )
    sink.terminate()
    sink.wait(30)
    OtaMessage.objects.all().delete()
    SmscLink.objects.all().update(enabled=False)
    return raw_rate


def main() -> None:
    call_command("migrate", verbosity=0)
    figures = []
    print(f"creating {CARDS} cards with keys ...", flush=True)
    make_fleet(CARDS)

    raw_rate = link_part(figures) if "link" in PARTS else LINK_TARGET
    if "e2e" not in PARTS:
        print_figures("OTA delivery (PostgreSQL, loopback SMPP)", figures)
        return

    # 2. end to end with the virtual cards and real workers
    fleet = ROOT / "data" / "bench" / "fleet.json"
    call_command("export_fleet", str(fleet), verbosity=0)
    lab = SmscThread(router_from_file(fleet))
    link = make_link(lab.smsc.port, "lab")
    with app.connection_for_write() as conn:
        for queue in ("default", "ota"):
            # A queue that does not exist yet is empty.
            with contextlib.suppress(Exception):
                conn.default_channel.queue_purge(queue)
    env = dict(os.environ)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-Q",
                "default,ota",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "-n",
                f"bench{i}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
        )
        for i in range(1)
    ]
    time.sleep(4)
    start = time.perf_counter()
    from cardmgmt.models import Card

    for card in Card.objects.select_related("profile", "subscriber").all():
        services.start_ota_job(actor=ACTOR, card=card, operation="audit")
    planned = time.perf_counter() - start

    async def all_confirmed() -> bool:
        return await sync_to_async(
            lambda: (
                OtaMessage.objects.filter(state="confirmed").count() >= CARDS
                or time.perf_counter() - start > 600
            )
        )()

    asyncio.run(run_link(link, all_confirmed))
    elapsed = time.perf_counter() - start
    confirmed = OtaMessage.objects.filter(state="confirmed").count()
    for worker in workers:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:  # a warm shutdown still busy: the figures are taken
            worker.kill()
            worker.wait(30)
    lab.stop()
    figures.append(
        Figure(
            f"end to end: confirmed OTA messages/s, {CARDS:,} virtual cards",
            confirmed / elapsed,
            "msg/s",
            raw_rate,
            peer=f"vs the raw link rate above; {confirmed}/{CARDS} confirmed in {elapsed:.1f} s, "
            f"planning {CARDS / planned:,.0f} jobs/s (one start_ota_job after another, before "
            f"the link starts), then {confirmed / (elapsed - planned):,.0f} confirmed/s from the "
            f"link's start; 1 worker x 2 processes; load average "
            f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}",
        )
    )
    print_figures("OTA delivery (PostgreSQL, loopback SMPP)", figures)


if __name__ == "__main__":
    try:
        main()
    finally:
        connection.close()
        BENCH_DB.drop()
