"""Inventory at scale on PostgreSQL: a 1,000,000-card import, and the subscriber list and
search with 1,000,000 subscribers.

Runs against its own database (`<name>_bench` next to DATABASE_URL's), created and dropped
here. `BENCH_CARDS` changes the size (default 1,000,000); `BENCH_PARTS=import` measures only
the import (`list` only the subscriber pages, which still imports the cards first).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.database import BenchDatabase  # noqa: E402

CARDS = int(os.environ.get("BENCH_CARDS", "1000000"))
PARTS = set(os.environ.get("BENCH_PARTS", "import,list").split(","))
IMPORT_LIMIT_S = 60.0
PAGE_LIMIT_MS = 150.0

BENCH_DB = BenchDatabase("bench")
BENCH_DB.create()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ["PORTAL_DATA_DIR"] = str(ROOT / "data" / "bench")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.uploadedfile import UploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from benchmarks.figures import Figure, print_figures  # noqa: E402
from cardmgmt import services  # noqa: E402
from cardmgmt.validators import luhn_check_digit  # noqa: E402
from portal import services as people  # noqa: E402
from portal.context import Actor  # noqa: E402

ACTOR = Actor.command("bench")


def iccid(n: int) -> str:
    body = f"8949003{n:011d}"
    return body + str(luhn_check_digit(body))


def write_card_file(path: Path, count: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("ICCID,IMSI,PROFILE,ALG1,KIC1,KID1,KIK1\n")
        for n in range(count):
            keys = os.urandom(48).hex().upper()
            out.write(
                f"{iccid(n)},26203{n:010d},Bench AES,aes128,{keys[:32]},{keys[32:64]},{keys[64:]}\n"
            )


def load_subscribers(count: int) -> None:
    """1M subscribers through COPY (setup for the list figures, not itself measured)."""
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        with cursor.copy(
            "COPY cardmgmt_subscriber (msisdn, status, card_id, import_digest,"
            " created, updated) FROM STDIN"
        ) as copy:
            statuses = ("active", "active", "active", "suspended")
            for n in range(count):
                copy.write_row(
                    (
                        f"+4917{n:08d}",
                        statuses[n % 4],
                        None,
                        "",
                        "2026-01-01T00:00:00Z",
                        "2026-01-01T00:00:00Z",
                    )
                )
        cursor.execute(
            "UPDATE cardmgmt_subscriber s SET card_id = c.id FROM cardmgmt_card c "
            "WHERE c.imsi = '26203' || lpad((substr(s.msisdn, 6))::text, 10, '0')"
        )
        cursor.execute("ANALYZE")


def p95_ms(client: Client, urls: list[str]) -> tuple[float, float]:
    for url in urls[:5]:
        client.get(url)  # warm up
    timings = []
    for url in urls:
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code in (200, 302), (url, response.status_code)
    timings.sort()
    return timings[int(len(timings) * 0.95) - 1], statistics.median(timings)


def main() -> None:
    call_command("migrate", verbosity=0)
    services.create_card_profile(
        actor=ACTOR, name="Bench AES", vendor="Bench", algorithms=["aes128"]
    )
    path = ROOT / "data" / "bench" / f"cards-{CARDS}.csv"
    if not path.exists():
        print(f"writing {CARDS:,} card rows to {path} ...", flush=True)
        write_card_file(path, CARDS)
    figures = []

    with path.open("rb") as stream:
        job = services.create_import_job(
            actor=ACTOR,
            kind="cards",
            upload=UploadedFile(stream, name=path.name, size=path.stat().st_size),
        )
    start = time.perf_counter()
    job = services.run_import_job(actor=ACTOR, job_id=job.pk)
    seconds = time.perf_counter() - start
    assert job.status == "done" and job.created_count == CARDS, job.message
    figures.append(
        Figure(
            f"import {CARDS:,} cards (validate + seal + COPY)",
            seconds,
            "s",
            IMPORT_LIMIT_S * CARDS / 1_000_000,
            higher_is_better=False,
        )
    )
    figures.append(Figure("  import rate", CARDS / seconds, "cards/s", 1_000_000 / IMPORT_LIMIT_S))
    if "list" not in PARTS:
        print_figures(f"Inventory on PostgreSQL ({CARDS:,} cards)", figures)
        return

    load_subscribers(CARDS)
    people.create_user_with_role(
        actor=ACTOR, username="bench", role="support", password="bench-Password-1"
    )
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    pages = [f"/inventory/subscribers/?page={p}" for p in range(1, 41)]
    pages += [f"/inventory/subscribers/?page={p}&sort=-msisdn" for p in range(1, 21)]
    p95, median = p95_ms(client, pages)
    figures.append(
        Figure(
            "subscriber list page (25 rows, sorted, paged) p95",
            p95,
            "ms",
            PAGE_LIMIT_MS,
            higher_is_better=False,
            peer=f"median {median:.1f} ms",
        )
    )
    searches = [f"/inventory/subscribers/?q=%2B4917{n:05d}" for n in range(0, 100_000, 2_500)]
    searches += [f"/inventory/subscribers/?q={iccid(n)[:16]}" for n in range(0, CARDS, CARDS // 20)]
    searches += [f"/inventory/subscribers/?status=suspended&page={p}" for p in range(1, 11)]
    searches += [f"/search/?q=%2B4917{n:08d}" for n in range(0, CARDS, CARDS // 20)]
    p95, median = p95_ms(client, searches)
    figures.append(
        Figure(
            "subscriber search/filter (MSISDN, ICCID, status) p95",
            p95,
            "ms",
            PAGE_LIMIT_MS,
            higher_is_better=False,
            peer=f"median {median:.1f} ms",
        )
    )
    api = [
        f"/api/subscribers/?status=active&page_size=50&q=%2B4917{n:04d}"
        for n in range(0, 10000, 250)
    ]
    p95, median = p95_ms(client, api)
    figures.append(
        Figure(
            "API subscriber list (cursor pagination, filtered) p95",
            p95,
            "ms",
            PAGE_LIMIT_MS,
            higher_is_better=False,
            peer=f"median {median:.1f} ms",
        )
    )
    print_figures(f"Inventory on PostgreSQL ({CARDS:,} cards and subscribers)", figures)


if __name__ == "__main__":
    try:
        main()
    finally:
        connection.close()
        if not os.environ.get("BENCH_KEEP_DB"):
            BENCH_DB.drop()
