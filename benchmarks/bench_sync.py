"""SyncML server throughput on PostgreSQL, over HTTP (gunicorn, one worker per core).

* sessions/s: 50 concurrent simulated devices, each running two-way sessions with no changes
  (package 1 + package 3 + package 5: three HTTP round trips per session);
* items/s: a refresh-from-client of 1,008 vCards (the whole session, from the client's Alert
  to the server's last reply), by a new device each round: `BENCH_SYNC_ROUNDS` rounds (5),
  the median printed (one round lasts a fifth of a second: a neighbour's burst moves it).

The client runs in this process: its collector is frozen after set-up (as the server's is in
portal/wsgi.py) and it keeps no message log, so what is timed is the server's work plus the
client's own encoding and parsing.

Runs against its own database (`<name>_bench_sync` next to DATABASE_URL's), created here.

The same load is then run against SyncEvolution's own server (`syncevo-http-server` from the
Debian package syncevolution-http, under `dbus-run-session`, one peer configuration with a file
address book per simulated device) and its figures printed beside ours; `BENCH_SYNC_PEER=0`
skips that (it takes a few minutes: that server runs one session at a time).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import environ  # noqa: E402

from benchmarks.database import BenchDatabase  # noqa: E402

DEVICES = int(os.environ.get("BENCH_SYNC_DEVICES", "50"))
DURATION_S = float(os.environ.get("BENCH_SYNC_SECONDS", "10"))
ITEMS = 1008
ROUNDS = int(os.environ.get("BENCH_SYNC_ROUNDS", "5"))
PORT = int(os.environ.get("BENCH_SYNC_PORT", "18765"))
PEER_PORT = PORT + 1
RUN_PEER = os.environ.get("BENCH_SYNC_PEER", "1") != "0"
# A SyncML request spends much of its time waiting for PostgreSQL (three commits per
# session): two sync workers per core keep the cores busy while others wait.
WORKERS = int(os.environ.get("BENCH_SYNC_WORKERS", str(2 * (os.cpu_count() or 2))))

base = environ.Env.db_url_config(
    os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
)
if "postgresql" not in base["ENGINE"]:
    sys.exit("bench_sync needs DATABASE_URL on PostgreSQL")
BENCH_DB = BenchDatabase("bench_sync")
BENCH_DB.create()
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
    for i in range(DEVICES + ROUNDS):
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


def post(body: bytes, ctype: str, url: str, timeout: float = 60) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def slow_post(body: bytes, ctype: str, url: str) -> tuple[int, bytes]:
    # SyncEvolution's server queues sessions: a request may wait for many others.
    return post(body, ctype, url, timeout=900)


def card(i: int) -> str:
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Person{i};Bench\r\nFN:Bench Person{i}\r\n"
            f"TEL;TYPE=CELL:+49170{i:07d}\r\nEMAIL:p{i}@example.org\r\nEND:VCARD\r\n")  # fmt: skip


def run_load(
    url: str,
    creds: list[tuple[str, str]],
    server: subprocess.Popen,
    *,
    send: Callable = post,
    server_uri: str = "contacts",
) -> tuple[float, float, float, float]:
    """The client load: (sessions/s, items/s, server CPU s per session, per item)."""
    phones = [SimClient(post=send, url=url, username=u, password=p, dev_id=f"IMEI:35{i:013d}",
                        server_uri=server_uri, keep_log=False)
              for i, (u, p) in enumerate(creds[:DEVICES])]  # fmt: skip
    gc.collect()
    gc.freeze()
    first = [threading.Thread(target=ph.sync, args=(201,)) for ph in phones]
    for t in first:  # first contact: a slow sync establishes anchors
        t.start()
    for t in first:
        t.join()
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

    adds = {str(i): card(i) for i in range(ITEMS)}
    rates, cpu = [], 0.0
    for n, (u, p) in enumerate(creds[DEVICES : DEVICES + ROUNDS]):
        big = SimClient(post=send, url=url, username=u, password=p,
                        dev_id=f"IMEI:99{n:013d}", max_msg_size=1024 * 1024,
                        server_uri=server_uri, keep_log=False)  # fmt: skip
        big.sync(201)
        cpu0 = server_cpu_seconds(server)
        t0 = time.monotonic()
        out = big.sync(203, adds=adds)
        rates.append(ITEMS / (time.monotonic() - t0))
        cpu += server_cpu_seconds(server) - cpu0
        assert out["alert"] == 203
    return sessions_per_s, statistics.median(rates), cpu_per_session, cpu / (ITEMS * ROUNDS)


# ---------------------------------------------------------------- SyncEvolution's own server

SYNCEVO_PYTHON = "/usr/bin/python3"  # the Debian package's script names no interpreter


def syncevolution_missing() -> str | None:
    """Why SyncEvolution's server cannot run here, or None."""
    for tool in ("syncevolution", "syncevo-http-server", "dbus-run-session"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-packages.txt: syncevolution, syncevolution-http)"
    probe = subprocess.run([SYNCEVO_PYTHON, "-c", "import twisted, dbus, gi, OpenSSL"],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        return (
            "syncevo-http-server needs python3-twisted, which the syncevolution-http package "
            "does not pull in (apt-packages.txt lists it): " + probe.stderr.strip()[-200:]
        )
    return None


def start_syncevolution(home: Path, creds: list[tuple[str, str]]) -> subprocess.Popen:
    """One peer configuration per device (its own context and file address book), then the
    HTTP server in a D-Bus session of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "XDG_"))}
    env.update(HOME=str(home), LANG="C.UTF-8")
    env.pop("DISPLAY", None)
    config = home / ".config" / "syncevolution"
    template = home / "template-db"
    template.mkdir(parents=True)
    subprocess.run(
        ["syncevolution", "--daemon=no", "--configure", "--template", "none", "peerIsClient=1",
         "keyring=no", "remoteDeviceId=template", "username=template", "password=template",
         "--source-property", "backend=file", "--source-property", "databaseFormat=text/vcard",
         "--source-property", f"database=file://{template}", "--source-property", "sync=two-way",
         "--source-property", "uri=contacts", "device@template", "addressbook"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    for i, (user, password) in enumerate(creds):
        dev_id = f"IMEI:35{i:013d}" if i < DEVICES else f"IMEI:99{i - DEVICES:013d}"
        ctx = config / f"dev{i}"
        shutil.copytree(config / "template", ctx)
        folder = home / f"db{i}"
        folder.mkdir()
        for ini in ctx.rglob("config.ini"):
            text = ini.read_text()
            text = text.replace(f"file://{template}", f"file://{folder}")
            text = text.replace("remoteDeviceId = template", f"remoteDeviceId = {dev_id}")
            text = text.replace("username = template", f"username = {user}")
            text = text.replace("password = template", f"password = {password}")
            ini.write_text(text)
    shutil.rmtree(config / "template")
    with open(home / "http-server.log", "wb") as log:
        proc = subprocess.Popen(
            ["dbus-run-session", "--", SYNCEVO_PYTHON, shutil.which("syncevo-http-server") or "",
             "-d", f"http://127.0.0.1:{PEER_PORT}/syncevolution"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PEER_PORT}/", timeout=1)
            return proc
        except urllib.error.HTTPError:
            return proc  # it answers (no page at the root)
        except OSError:
            time.sleep(0.2)
    stop_group(proc)
    raise RuntimeError("syncevo-http-server did not start")


def stop_group(proc: subprocess.Popen) -> None:
    """The D-Bus session, the HTTP server and the syncevo-dbus-server it activated (in the
    same process group), waited for until none is left: the D-Bus server writes its logs while
    it shuts down, and its HOME is removed next."""
    for sig, patience in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            proc.poll()  # reap the session leader
            if not _live_members(proc.pid):
                return
            time.sleep(0.1)
    proc.wait()


def _live_members(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies do not count: they may wait for
    an init that reaps slowly)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # state, ppid, pgrp
            return True
    return False


def peer_figures(creds: list[tuple[str, str]]) -> str:
    """SyncEvolution's server under the same load, as a line for the table."""
    if not RUN_PEER:
        return "SyncEvolution's server: not run (BENCH_SYNC_PEER=0)"
    missing = syncevolution_missing()
    if missing:
        return f"SyncEvolution's server: not run: {missing}"
    home = Path(tempfile.mkdtemp(prefix="bench_sync_syncevo_"))
    try:
        proc = start_syncevolution(home, creds)
        try:
            s, i, _cs, _ci = run_load(f"http://127.0.0.1:{PEER_PORT}/syncevolution", creds, proc,
                                      send=slow_post)  # fmt: skip
        finally:
            stop_group(proc)
    except Exception as exc:  # a peer that fails is reported, our figures still print
        log = home / "http-server.log"
        errors = [ln for ln in log.read_text(errors="replace").splitlines() if "ERROR" in ln]
        if os.environ.get("BENCH_SYNC_PEER_LOG"):
            shutil.copy(log, os.environ["BENCH_SYNC_PEER_LOG"])
        return f"SyncEvolution's server: failed under the load: {exc!r} {errors[-1:]}"[:400]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return f"SyncEvolution's server (syncevo-http-server, same load): {s:.2f} sessions/s, {i:.0f} items/s"


def main() -> None:
    creds = setup()
    server = start_server()
    url = f"http://127.0.0.1:{PORT}/syncml"
    try:
        sessions_per_s, items_per_s, cpu_per_session, cpu_per_item = run_load(url, creds, server)
    finally:
        server.terminate()
        server.wait()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    peer = peer_figures(creds)
    print_figures(
        "SyncML server (PostgreSQL, gunicorn over HTTP)",
        [
            Figure(
                f"two-way sessions/s, {DEVICES} concurrent devices, no changes",
                sessions_per_s,
                "sessions/s",
                50,
                peer=peer,
            ),
            Figure(
                f"refresh-from-client of 1,008 vCards (median of {ROUNDS})",
                items_per_s,
                "items/s",
                5000,
                peer=peer,
            ),
        ],
    )
    print(
        f"server CPU (gunicorn, {WORKERS} workers; PostgreSQL and the client not counted): "
        f"{cpu_per_session * 1000:.1f} ms per two-way session, "
        f"{cpu_per_item * 1e6:.0f} us per refreshed item; load average {load}"
    )


if __name__ == "__main__":
    try:
        main()
    finally:
        from django.db import connections

        connections.close_all()
        BENCH_DB.drop()
