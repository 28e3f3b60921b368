"""Card files into PostgreSQL in one pass (docs/imports.md, "Performance").

One transaction holds the whole import. The main thread reads, validates and seals the file
batch by batch; a writer thread COPYs each batch straight into `cardmgmt_card` and
`cardmgmt_keyset` while the main thread works on the next one, so the Python work (one core)
and PostgreSQL's work (heap, indexes, foreign-key checks: the other core) overlap.

The unique indexes on ICCID and IMSI do the duplicate checks. A batch runs under a savepoint:
a batch that breaks one (a re-import, a duplicate in the file, a conflict with a card in the
database) is rolled back to the savepoint, looked up row by row against the table, and
written again without its unchanged or conflicting rows. Rows of earlier batches are in the
table by then, so the same look-up finds duplicates within the file. If any line is bad the
transaction is rolled back at the end: nothing is imported, and every error is reported.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from cardmgmt.choices import CardStatus
from cardmgmt.importers import CardFileReader, CardRow, CsvFileError, RowError, iter_csv
from cardmgmt.models import ImportJob
from portal import crypto

log = logging.getLogger(__name__)

# Rows per COPY batch. Each batch is a savepoint (a subtransaction): a transaction with more
# than 64 of them slows every other session's snapshots, so large files get larger batches.
BATCH_ROWS = 20_000
MAX_SAVEPOINTS = 60
# Card imports run one at a time (a transaction-level advisory lock): two imports of
# overlapping files would otherwise wait on each other's unique index entries.
_LOCK_KEY = 0x63617264  # "card"

ProgressFn = Callable[[int], None]


@dataclass(slots=True)
class _StagedRow:
    """A validated, sealed row: its identifiers (for conflicts) and its COPY text, less the
    card id that the writer draws from the sequence."""

    line: int
    iccid: str
    imsi: str
    digest: str
    card_text: str  # "\t<iccid>\t...\n", to follow the card id
    keyset_texts: list[str]  # "\t<kvn>\t...\n" per key set, each to follow the card id


@dataclass
class _Outcome:
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    parse_seconds: float = 0.0
    wait_seconds: float = 0.0
    write_seconds: float = 0.0


class _OwnIds:
    """The card ids this import drew, as sorted runs: a card found in the table with one of
    them is a duplicate within the file, any other an existing card."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, ids: list[int]) -> None:
        for card_id in ids:  # nextval() over one call ascends; runs break only when others
            if self._ends and card_id == self._ends[-1] + 1:  # drew ids at the same time
                self._ends[-1] = card_id
            else:
                self._starts.append(card_id)
                self._ends.append(card_id)

    def __contains__(self, card_id: int) -> bool:
        i = bisect.bisect_right(self._starts, card_id) - 1
        return i >= 0 and card_id <= self._ends[i]


class _BatchWriter:
    """COPYs batches on the import's connection (from the writer thread, one batch at a
    time) and sorts out the batches that break a unique index."""

    def __init__(self, raw: psycopg.Connection, outcome: _Outcome) -> None:
        self.raw = raw
        self.outcome = outcome
        self.own_ids = _OwnIds()
        # ICCIDs and IMSIs of rows not written (unchanged or in conflict): a second row with
        # one of them is a duplicate within the file, which the table cannot show.
        self.unwritten_iccids: set[str] = set()
        self.unwritten_imsis: set[str] = set()

    def write(self, rows: list[_StagedRow]) -> None:
        started = time.monotonic()
        with self.raw.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('cardmgmt_card', 'id'))"
                " FROM generate_series(1, %s)",
                [len(rows)],
            )
            ids = [r[0] for r in cursor.fetchall()]
            self.own_ids.add(ids)
            if not self._copy(cursor, ids, rows):
                keep = self._sort_out(cursor, ids, rows)
                ids = [ids[i] for i in keep]
                rows = [rows[i] for i in keep]
                if rows and not self._copy(cursor, ids, rows):
                    raise CsvFileError(
                        "cards with ICCIDs or IMSIs of this file were created during the import;"
                        " run it again"
                    )
        self.outcome.write_seconds += time.monotonic() - started

    def _copy(self, cursor: psycopg.Cursor, ids: list[int], rows: list[_StagedRow]) -> bool:
        """Write the rows under a savepoint; False (and nothing written) if one of them
        breaks a unique index."""
        cards = "".join([f"{i}{r.card_text}" for i, r in zip(ids, rows, strict=True)])
        keysets = "".join(
            [f"{i}{text}" for i, r in zip(ids, rows, strict=True) for text in r.keyset_texts]
        )
        cursor.execute("SAVEPOINT card_import_batch")
        try:
            with cursor.copy(
                "COPY cardmgmt_card (id, iccid, imsi, profile_id, status, import_digest,"
                " created, updated) FROM STDIN"
            ) as copy:
                copy.write(cards)
            with cursor.copy(
                "COPY cardmgmt_keyset (card_id, kvn, algorithm, kic, kid, kik, counter) FROM STDIN"
            ) as copy:
                copy.write(keysets)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT card_import_batch")
            cursor.execute("RELEASE SAVEPOINT card_import_batch")
            return False
        cursor.execute("RELEASE SAVEPOINT card_import_batch")
        self.outcome.created += len(rows)
        return True

    def _sort_out(
        self, cursor: psycopg.Cursor, ids: list[int], rows: list[_StagedRow]
    ) -> list[int]:
        """The errors of a batch that broke a unique index; the indexes of its new rows."""
        cursor.execute(
            "SELECT id, iccid, imsi, import_digest FROM cardmgmt_card"
            " WHERE iccid = ANY(%s) OR imsi = ANY(%s)",
            [[r.iccid for r in rows], [r.imsi for r in rows]],
        )
        by_iccid: dict[str, tuple[int, str]] = {}
        by_imsi: dict[str, tuple[int, str]] = {}
        for card_id, iccid, imsi, digest in cursor.fetchall():
            by_iccid[iccid] = (card_id, digest)
            by_imsi[imsi] = (card_id, iccid)
        errors = self.outcome.errors
        seen_iccids: set[str] = set()
        seen_imsis: set[str] = set()
        keep = []
        for index, row in enumerate(rows):
            bad = unchanged = False
            found = by_iccid.get(row.iccid)
            if (
                row.iccid in seen_iccids
                or row.iccid in self.unwritten_iccids
                or (found and found[0] in self.own_ids)
            ):
                errors.append(RowError(row.line, "ICCID", "duplicate ICCID within the file"))
                bad = True
            elif found:
                if found[1] == row.digest:
                    unchanged = True
                else:
                    errors.append(
                        RowError(
                            row.line, "ICCID", "ICCID exists in the database with different data"
                        )
                    )
                    bad = True
            holder = by_imsi.get(row.imsi)
            if (
                row.imsi in seen_imsis
                or row.imsi in self.unwritten_imsis
                or (holder and holder[0] in self.own_ids)
            ):
                errors.append(RowError(row.line, "IMSI", "duplicate IMSI within the file"))
                bad = True
            elif holder and holder[1] != row.iccid:
                errors.append(
                    RowError(row.line, "IMSI", f"IMSI belongs to card {holder[1]} in the database")
                )
                bad = True
            seen_iccids.add(row.iccid)
            seen_imsis.add(row.imsi)
            if bad or unchanged:
                self.unwritten_iccids.add(row.iccid)
                self.unwritten_imsis.add(row.imsi)
            else:
                keep.append(index)
        return keep


def _staged_rows(
    reader: CardFileReader, records: Iterable[tuple[int, list[str]]], outcome: _Outcome
) -> Iterator[_StagedRow]:
    """Valid rows, sealed and in COPY text; bad ones add their errors."""
    seal = crypto.Sealer().seal_hex
    stamp = timezone.now().isoformat()
    status = str(CardStatus.IN_STOCK)
    parse = reader.parse
    errors = outcome.errors
    for line, record in records:
        row = parse(line, record)
        if row.__class__ is not CardRow:
            errors.extend(row)  # type: ignore[arg-type]
            continue
        yield _StagedRow(
            row.line,
            row.iccid,
            row.imsi,
            row.digest,
            f"\t{row.iccid}\t{row.imsi}\t{row.profile_id}\t{status}\t{row.digest}"
            f"\t{stamp}\t{stamp}\n",
            [
                f"\t{k.kvn}\t{k.algorithm}\t\\\\x{seal(k.kic, b'kic')}"
                f"\t\\\\x{seal(k.kid, b'kid')}\t"
                + (f"\\\\x{seal(k.kik, b'kik')}\t0\n" if k.kik else "\\N\t0\n")
                for k in row.keysets
            ],
        )


def import_cards(
    job: ImportJob, report_progress: ProgressFn | None
) -> tuple[list[RowError], int, int]:
    """Validate and write a card file in one transaction: (errors, rows, cards created).
    With any error nothing is written. `report_progress(rows)` is called after each batch."""
    outcome = _Outcome()
    total = 0
    batch_rows = max(BATCH_ROWS, math.ceil((job.total_rows or 1) / MAX_SAVEPOINTS))
    started = time.monotonic()
    connection.ensure_connection()
    with transaction.atomic():
        raw = connection.connection
        with raw.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            # The profiles the file may name, locked as each card's foreign key check would
            # lock its own (they cannot be deleted before the commit).
            cursor.execute(
                "SELECT id, name, algorithms::text FROM cardmgmt_cardprofile FOR KEY SHARE"
            )
            reader = CardFileReader(
                {name: (pk, list(json.loads(algorithms) or [])) for pk, name, algorithms in cursor}
            )
            restore = _skip_row_triggers(cursor) or _check_foreign_keys_per_batch(cursor)
        writer = _BatchWriter(raw, outcome)
        pending: Future | None = None
        try:
            with (
                job.file.open("rb") as stream,
                ThreadPoolExecutor(1, thread_name_prefix="card-import-copy") as pool,
            ):
                records = iter_csv(stream)
                first = next(records, None)
                if first is None:
                    raise CsvFileError("the file is empty", 1)
                reader.read_header(first[1])
                rows = _staged_rows(reader, records, outcome)
                while True:
                    parse_started = time.monotonic()
                    batch = []
                    for row in rows:
                        batch.append(row)
                        if len(batch) == batch_rows:
                            break
                    outcome.parse_seconds += time.monotonic() - parse_started
                    if pending is not None:
                        wait_started = time.monotonic()
                        pending.result()  # the writer's errors surface here
                        outcome.wait_seconds += time.monotonic() - wait_started
                        pending = None
                    if not batch:
                        break
                    pending = pool.submit(writer.write, batch)
                    total += len(batch)
                    if report_progress is not None:
                        report_progress(total)
            if not total and not outcome.errors:
                raise CsvFileError("the file has a header but no rows", 2)
        except CsvFileError as exc:
            outcome.errors.append(RowError(exc.line, "", str(exc)))
        total += len({e.line for e in outcome.errors})
        if outcome.errors:
            transaction.set_rollback(True)
        else:
            with raw.cursor() as cursor:
                restore(cursor)
    log.info(
        "card import job %s: %d rows in %.1fs (main thread parsing and sealing %.1fs, waiting"
        " for the writer %.1fs; writer COPYing %.1fs)",
        job.pk,
        total,
        time.monotonic() - started,
        outcome.parse_seconds,
        outcome.wait_seconds,
        outcome.write_seconds,
    )
    return outcome.errors, total, (0 if outcome.errors else outcome.created)


def _skip_row_triggers(cursor: psycopg.Cursor) -> Callable[[Any], None] | None:
    """Turn off the per-row foreign key triggers of this transaction's writes, where the
    database role may (a superuser, or `GRANT SET ON PARAMETER session_replication_role`).
    Returns what turns them back on, or None.

    They cost two thirds of PostgreSQL's time in a card import and check nothing this import
    has not made sure of: every card's profile is locked above, as the trigger would lock it,
    and every key set's card is written by the same COPY batch. Only where these tables have
    no triggers of their own (those would be skipped too)."""
    cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"
        " AND tgrelid IN ('cardmgmt_card'::regclass, 'cardmgmt_keyset'::regclass)"
    )
    if cursor.fetchone()[0]:
        return None
    previous = cursor.execute("SELECT current_setting('session_replication_role')").fetchone()[0]
    cursor.execute("SAVEPOINT card_import_role")
    try:
        cursor.execute("SET LOCAL session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        cursor.execute("ROLLBACK TO SAVEPOINT card_import_role")
        cursor.execute("RELEASE SAVEPOINT card_import_role")
        return None
    cursor.execute("RELEASE SAVEPOINT card_import_role")
    return lambda cursor: cursor.execute(
        "SELECT set_config('session_replication_role', %s, true)", [previous]
    )


def _check_foreign_keys_per_batch(cursor: psycopg.Cursor) -> Callable[[Any], None]:
    """Make the foreign keys of the card and key set tables (deferred to the commit by
    Django) checked at the end of each COPY instead, so the checks run while the next
    batch is read. Returns what puts them back."""
    cursor.execute(
        "SELECT quote_ident(conname) FROM pg_constraint WHERE contype = 'f' AND condeferred"
        " AND conrelid IN ('cardmgmt_card'::regclass, 'cardmgmt_keyset'::regclass)"
    )
    names = ", ".join(name for (name,) in cursor.fetchall())
    if not names:
        return lambda cursor: None
    cursor.execute(f"SET CONSTRAINTS {names} IMMEDIATE")
    return lambda cursor: cursor.execute(f"SET CONSTRAINTS {names} DEFERRED")
