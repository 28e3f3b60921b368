"""SyncML server throughput on PostgreSQL, over HTTP (gunicorn, one worker per core).

* sessions/s: 50 concurrent simulated devices, each running two-way sessions with no changes
  (package 1 + package 3 + package 5: three HTTP round trips per session);
* items/s: one refresh-from-client of 1,008 vCards (the whole session, maps included).

Runs against its own database (`<name>_bench_sync` next to DATABASE_URL's), created here.
SyncEvolution's own server is not run here (see docs/sync.md, "Performance").
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import environ  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

DEVICES = 50
DURATION_S = float(os.environ.get("BENCH_SYNC_SECONDS", "10"))
ITEMS = 1008
PORT = int(os.environ.get("BENCH_SYNC_PORT", "18765"))
# A SyncML request spends much of its time waiting for PostgreSQL (three commits per
# session): two sync workers per core keep the cores busy while others wait.
WORKERS = int(os.environ.get("BENCH_SYNC_WORKERS", str(2 * (os.cpu_count() or 2))))

base = environ.Env.db_url_config(
    os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
)
if "postgresql" not in base["ENGINE"]:
    sys.exit("bench_sync needs DATABASE_URL on PostgreSQL")
BENCH_DB = f"{base['NAME']}_bench_sync"
admin = {"host": base["HOST"] or "127.0.0.1", "port": base["PORT"] or 5432,
         "user": base["USER"] or "postgres"}  # fmt: skip
with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
    conn.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
    )
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
DB_URL = f"postgres://{admin['user']}@{admin['host']}:{admin['port']}/{BENCH_DB}"
os.environ["DATABASE_URL"] = DB_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ["PORTAL_DATA_DIR"] = str(ROOT / "data" / "bench")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from benchmarks.figures import Figure, print_figures  # noqa: E402
from cardmgmt import services as inventory  # noqa: E402
from portal.context import Actor  # noqa: E402
from sync import services  # noqa: E402
from sync.simclient import SimClient  # noqa: E402

ACTOR = Actor.command("bench_sync")


def setup() -> list[tuple[str, str]]:
    call_command("migrate", verbosity=0)
    services.create_template(
        actor=ACTOR, name="bench", server_url=f"http://127.0.0.1:{PORT}/syncml"
    )
    creds = []
    for i in range(DEVICES + 1):
        sub = inventory.create_subscriber(actor=ACTOR, msisdn=f"+4917090{i:05d}")
        profile, secret = services.create_profile(actor=ACTOR, subscriber=sub)
        creds.append((profile.username, secret))
    return creds


def start_server() -> subprocess.Popen:
    # The endpoint mounted as portal/urls.py will mount it, from a temporary settings module.
    tmp = Path(tempfile.mkdtemp(prefix="bench_sync_"))
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench_sync_settings",
               PYTHONPATH=f"{tmp}:{ROOT}")  # fmt: skip
    settings_py = tmp / "bench_sync_settings.py"
    settings_py.write_text(
        "from portal.settings import *  # noqa\nROOT_URLCONF = 'bench_sync_urls'\n"
        "DEBUG = False\nLOGGING = {'version': 1, 'disable_existing_loggers': False}\n"
    )
    (tmp / "bench_sync_urls.py").write_text(
        "from django.urls import include, path\nfrom portal.urls import urlpatterns as u\n"
        "urlpatterns = [*u, path('', include('sync.endpoint_urls'))]\n"
    )
    workers = str(WORKERS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", workers,
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
            return proc
        except Exception:
            time.sleep(0.2)
    proc.kill()
    sys.exit("gunicorn did not start")


def server_cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time (user + system) of gunicorn and its workers so far (Linux /proc; 0 elsewhere).

    On a shared machine the wall-clock rates move with the neighbours' load; CPU per session
    or per item does much less, so both are printed.
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    pids = [proc.pid]
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        pids += [int(p) for p in children]
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick
    except (OSError, ValueError, IndexError):
        return 0.0


def post(body: bytes, ctype: str, url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()


def card(i: int) -> str:
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Person{i};Bench\r\nFN:Bench Person{i}\r\n"
            f"TEL;TYPE=CELL:+49170{i:07d}\r\nEMAIL:p{i}@example.org\r\nEND:VCARD\r\n")  # fmt: skip


def main() -> None:
    creds = setup()
    server = start_server()
    url = f"http://127.0.0.1:{PORT}/syncml"
    try:
        phones = [SimClient(post=post, url=url, username=u, password=p, dev_id=f"IMEI:35{i:013d}")
                  for i, (u, p) in enumerate(creds[:DEVICES])]  # fmt: skip
        for ph in phones:  # first contact: a slow sync establishes anchors
            ph.sync(201)
        count = [0] * DEVICES
        stop = time.monotonic() + DURATION_S

        def loop(i: int) -> None:
            while time.monotonic() < stop:
                assert phones[i].sync(200)["alert"] == 200
                count[i] += 1

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(DEVICES)]
        cpu0 = server_cpu_seconds(server)
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sessions_per_s = sum(count) / (time.monotonic() - t0)
        cpu_per_session = (server_cpu_seconds(server) - cpu0) / max(1, sum(count))

        u, p = creds[DEVICES]
        big = SimClient(post=post, url=url, username=u, password=p, dev_id="IMEI:990000000000001",
                        max_msg_size=1024 * 1024)  # fmt: skip
        big.sync(201)
        adds = {str(i): card(i) for i in range(ITEMS)}
        cpu0 = server_cpu_seconds(server)
        t0 = time.monotonic()
        out = big.sync(203, adds=adds)
        items_per_s = ITEMS / (time.monotonic() - t0)
        cpu_per_item = (server_cpu_seconds(server) - cpu0) / ITEMS
        assert out["alert"] == 203
    finally:
        server.terminate()
        server.wait()
    peer = "SyncEvolution's server on this kind of machine (notes): ~0.5 sessions/s, ~260 items/s"
    print_figures(
        "SyncML server (PostgreSQL, gunicorn over HTTP)",
        [
            Figure(
                "two-way sessions/s, 50 concurrent devices, no changes",
                sessions_per_s,
                "sessions/s",
                50,
                peer=peer,
            ),
            Figure("refresh-from-client of 1,008 vCards", items_per_s, "items/s", 5000, peer=peer),
        ],
    )
    print(
        f"server CPU (gunicorn, {WORKERS} workers; PostgreSQL and the client not counted): "
        f"{cpu_per_session * 1000:.1f} ms per two-way session, "
        f"{cpu_per_item * 1e6:.0f} us per refreshed item; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
