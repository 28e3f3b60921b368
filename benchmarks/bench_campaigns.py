"""A 1,000,000-target campaign on PostgreSQL (docs/campaigns.md, "Performance").

Runs against its own database (`<name>_campaigns_bench`), created and dropped here. Cards, key
sets (sealed) and subscribers are generated with COPY. The campaign's action is the
single-packet sync trigger. Measured:

1. planning: a real Celery worker (`celery -A portal worker --concurrency 2`, the deployment
   on a 2-core box) runs the campaign's tasks from `start_run` until the run's planning is
   done: chunks claimed and handed on, planned side by side by the two worker processes (keys
   unsealed and packets secured, OtaJob/OtaMessage/CampaignTarget rows COPYed, one audit entry
   per chunk), the run's refresh every 2 s beside them. Secured packets built and persisted
   per second, and the peak RSS of the worker processes. `BENCH_WORKERS=0`: `plan_next_chunk`
   called in a loop in this process instead (one process; `BENCH_PROFILE=1` profiles it);
2. the SMPP link (`manage.py run_smpp_link`, one process) draining the packets into the SMSC
   simulator's sink router, which accepts everything: bound before the run starts, it sends
   while planning goes on (so planning is measured with the link's claims and updates beside
   it), then on its own for `BENCH_LINK_SECONDS` (20; 0: no link at all): submits per second
   in both phases, counted by the simulator.

`BENCH_TARGETS` changes the size (default 1,000,000); `BENCH_CHUNK` the chunk (5000);
`BENCH_WORKERS` the worker's concurrency (2). The worker consumes a queue of its own on the
broker of CELERY_BROKER_URL (`campaigns_bench`, emptied first).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import environ  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

TARGETS = int(os.environ.get("BENCH_TARGETS", "1000000"))
CHUNK = int(os.environ.get("BENCH_CHUNK", "5000"))
LINK_SECONDS = float(os.environ.get("BENCH_LINK_SECONDS", "20"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
QUEUE = "campaigns_bench"
RATE_TARGET = 10_000.0
RSS_LIMIT_MB = 300.0

base = environ.Env.db_url_config(
    os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
)
if "postgresql" not in base["ENGINE"]:
    sys.exit("bench_campaigns needs DATABASE_URL on PostgreSQL")
BENCH_DB = f"{base['NAME']}_campaigns_bench"
admin = {
    "host": base["HOST"] or "127.0.0.1",
    "port": base["PORT"] or 5432,
    "user": base["USER"] or "postgres",
}
with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
    conn.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
    )
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
os.environ["DATABASE_URL"] = (
    f"postgres://{admin['user']}@{admin['host']}:{admin['port']}/{BENCH_DB}"
)
os.environ["PORTAL_DATA_DIR"] = str(ROOT / "data" / "bench")
# No backlog limit: planning is not held back to the link's pace (the link drains beside it).
_settings_dir = Path(tempfile.mkdtemp(prefix="bench-campaigns-"))
(_settings_dir / "bench_campaigns_settings.py").write_text(
    "from portal.settings import *  # noqa: F403\nCAMPAIGNS_MAX_BACKLOG = 0\n"
    f"CELERY_TASK_ROUTES = {{'campaigns.*': {{'queue': {QUEUE!r}}}}}\n"
)
sys.path.insert(0, str(_settings_dir))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench_campaigns_settings"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.figures import Figure, print_figures  # noqa: E402
from campaigns import services as campaigns  # noqa: E402
from campaigns.models import CampaignRun, CampaignTarget  # noqa: E402
from cardmgmt import services as inventory  # noqa: E402
from cardmgmt.models import OtaMessage  # noqa: E402
from cardmgmt.validators import luhn_check_digit  # noqa: E402
from portal import crypto  # noqa: E402
from portal.context import Actor  # noqa: E402

ACTOR = Actor.command("bench")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(count: int) -> float:
    profile = inventory.create_card_profile(
        actor=ACTOR, name="Bench AES", vendor="Bench", algorithms=["aes128"]
    )
    kic = crypto.seal(bytes(range(16)), "kic")
    kid = crypto.seal(bytes(range(16, 32)), "kid")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY cardmgmt_card (id, iccid, imsi, profile_id, status, import_digest, created, "
            "updated) FROM STDIN"
        ) as copy:
            for n in range(1, count + 1):
                body = f"8949055{n:011d}"
                copy.write_row(
                    (n, body + str(luhn_check_digit(body)), f"26255{n:010d}", profile.pk,
                     "active", "", "now", "now")
                )  # fmt: skip
        with raw.copy(
            "COPY cardmgmt_keyset (card_id, kvn, algorithm, kic, kid, kik, counter) FROM STDIN"
        ) as copy:
            for n in range(1, count + 1):
                copy.write_row((n, 1, "aes128", kic, kid, None, 0))
        with raw.copy(
            "COPY cardmgmt_subscriber (id, msisdn, status, card_id, import_digest, created, "
            "updated) FROM STDIN"
        ) as copy:
            for n in range(1, count + 1):
                copy.write_row((n, f"+49160{n:08d}", "active", n, "", "now", "now"))
        for table in ("cardmgmt_card", "cardmgmt_subscriber"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {count})")
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def plan_all(run: CampaignRun) -> tuple[float, float]:
    started = time.perf_counter()
    cursor = 0
    peak = rss_mb()
    while True:
        outcome = campaigns.plan_next_chunk(run_id=run.pk, cursor=cursor)
        peak = max(peak, rss_mb())
        if outcome.status != "planned":
            break
        cursor = CampaignRun.objects.values_list("cursor", flat=True).get(pk=run.pk)
        run_now = CampaignRun.objects.get(pk=run.pk)
        if run_now.planning_done:
            break
    return time.perf_counter() - started, peak


def worker_rss_mb(main_pid: int) -> float:
    """Peak RSS (VmHWM) of the worker's pool processes and of its main process."""
    peak = 0.0
    pids = {main_pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == main_pid:
            pids.add(int(stat.parent.name))
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


def plan_with_worker(campaign):  # type: ignore[no-untyped-def]
    """start_run, then a real worker plans the run: (seconds from start_run until planning is
    done, the worker's peak RSS, the run, seconds of start_run itself)."""
    import subprocess

    from portal.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)
    log = ROOT / "data" / "bench" / "campaigns-worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=f"{_settings_dir}:{ROOT}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", QUEUE,
         "--concurrency", str(WORKERS), "--without-gossip", "--without-mingle",
         "--loglevel", "WARNING", "-n", f"bench-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # the pool's processes up before the clock starts
        started = time.perf_counter()
        run = campaigns.start_run(actor=ACTOR, campaign=campaign)
        start_s = time.perf_counter() - started
        peak = 0.0
        while not CampaignRun.objects.filter(pk=run.pk, planning_done=True).exists():
            if proc.poll() is not None:
                sys.exit(f"the worker exited: see {log}")
            time.sleep(0.1)
            peak = max(peak, worker_rss_mb(proc.pid))
        seconds = time.perf_counter() - started
        return seconds, max(peak, worker_rss_mb(proc.pid)), run, start_s
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(60)


class SinkLink:
    """The real link process (`manage.py run_smpp_link`) submitting into the SMSC simulator's
    sink router (a thread here), from before planning starts: it drains the packets as they
    are persisted, so planning is measured with the link's claims and updates beside it. The
    simulator counts what it accepted (no database polling)."""

    def __enter__(self) -> SinkLink:
        import subprocess
        import threading

        from handset.smsc import SinkRouter, SmscSimulator

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.smsc = SmscSimulator({"ota": "secret"}, router=SinkRouter(), log_limit=1000)
        asyncio.run_coroutine_threadsafe(self.smsc.start(), self.loop).result(30)
        inventory.save_smsc_link(
            actor=ACTOR, name="sink", host="127.0.0.1", port=self.smsc.port, system_id="ota",
            password="secret", source_addr="12345", tps=100_000, window=16,
        )  # fmt: skip
        env = dict(os.environ, PYTHONPATH=f"{_settings_dir}:{ROOT}")
        self.log = ROOT / "data" / "bench" / "campaigns-link.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_smpp_link"], cwd=ROOT, env=env,
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while self.smsc.stats.binds == 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                sys.exit("the SMPP link did not bind to the sink")
            time.sleep(0.1)
        return self

    def accepted(self) -> int:
        return self.smsc.stats.accepted

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the link process so far (/proc/<pid>/stat): the
        link's own cost, apart from the simulator's (a thread of this process)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *_exc: object) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(30)
        asyncio.run_coroutine_threadsafe(self.smsc.stop(), self.loop).result(30)


def main() -> None:
    call_command("migrate", verbosity=0)
    gen_s = generate(TARGETS)
    print(f"generated {TARGETS:,} cards, key sets and subscribers in {gen_s:.1f} s (COPY)")
    with SinkLink() if LINK_SECONDS > 0 else contextlib.nullcontext() as link:
        measure(link)


def measure(link: SinkLink | None) -> None:
    campaign = campaigns.create_campaign(
        actor=ACTOR, name="bench", action="trigger_sync", chunk_size=min(CHUNK, 10000)
    )
    sent_before = link.accepted() if link else 0
    cpu_before = link.cpu_seconds() if link else 0.0
    if WORKERS:
        seconds, peak, run, start_s = plan_with_worker(campaign)
        how = f"a worker of {WORKERS} processes (--concurrency {WORKERS})"
    else:
        how = "one process, in-process loop"
        t0 = time.perf_counter()
        run = campaigns.start_run(actor=ACTOR, campaign=campaign)
        start_s = time.perf_counter() - t0
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            seconds, peak = plan_all(run)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(22)
        else:
            seconds, peak = plan_all(run)
    sent_planning = (link.accepted() if link else 0) - sent_before
    cpu_planning = (link.cpu_seconds() if link else 0.0) - cpu_before
    load = Path("/proc/loadavg").read_text().split()[:3]
    alone = 0.0
    sent_alone = 0
    cpu_alone = 0.0
    if link:  # then the link on its own, what planning left queued
        sent_before, t0, cpu_before = link.accepted(), time.perf_counter(), link.cpu_seconds()
        while time.perf_counter() - t0 < LINK_SECONDS and link.accepted() < TARGETS:
            time.sleep(0.2)
        sent_alone = link.accepted() - sent_before
        alone = sent_alone / (time.perf_counter() - t0)
        cpu_alone = link.cpu_seconds() - cpu_before
    run = CampaignRun.objects.get(pk=run.pk)
    persisted = OtaMessage.objects.count()
    targets = CampaignTarget.objects.filter(run=run).count()
    assert targets == TARGETS == run.planned, (targets, run.planned)
    assert persisted == TARGETS
    rate = TARGETS / seconds
    print(
        f"planned {TARGETS:,} targets in {seconds:.1f} s ({rate:,.0f}/s), chunks of {CHUNK}, "
        f"by {how}; start_run (count) {start_s:.2f} s; peak RSS {peak:.0f} MB; "
        f"{len(run.samples)} refreshes, the last one's interval {run.refresh_seconds:.1f} s "
        f"(10 x its duration, min 2); "
        f"load average after planning {' '.join(load)} (2 cores, shared)"
    )
    figures = [
        Figure(
            f"campaign planning, {TARGETS:,} targets (trigger, 1 packet, "
            f"{WORKERS or 1} process{'es' if WORKERS > 1 else ''}"
            f"{', the link draining beside it' if link else ''})",
            rate,
            "packets/s",
            RATE_TARGET,
        ),
        Figure(
            "  planning time for the whole campaign",
            seconds,
            "s",
            TARGETS / RATE_TARGET,
            higher_is_better=False,
        ),
        Figure("  planning worker peak RSS", peak, "MB", RSS_LIMIT_MB, higher_is_better=False),
    ]
    print_figures("campaigns", figures)
    if link:
        print(
            f"SMPP link (one process, window 16) into the sink: {sent_planning / seconds:,.0f} "
            f"submits/s while planning ({sent_planning:,} packets), {alone:,.0f} submits/s on "
            f"its own for {LINK_SECONDS:.0f} s afterwards (not a target: an SMSC bind's TPS "
            "is the limit in service; more links add throughput)"
        )
        print(
            "SMPP link process CPU (user + system) per submit: "
            f"{1e6 * cpu_planning / max(sent_planning, 1):,.0f} µs while planning "
            f"({cpu_planning:.1f} s), {1e6 * cpu_alone / max(sent_alone, 1):,.0f} µs on its own "
            f"({cpu_alone:.1f} s)"
        )


if __name__ == "__main__":
    try:
        main()
    finally:
        connection.close()
        with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
            )
