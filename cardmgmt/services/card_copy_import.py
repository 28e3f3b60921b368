"""Card files into PostgreSQL in one pass (docs/imports.md, "Performance").

One transaction holds the whole import. The file is staged piece by piece (rows validated,
keys sealed, COPY text written: `cardmgmt.card_staging`), by worker processes in parallel
for a large file; a writer thread COPYs each piece straight into `cardmgmt_card` and
`cardmgmt_keyset` while the next ones are staged, so Python's work and PostgreSQL's overlap.

The unique indexes on ICCID and IMSI do the duplicate checks. A piece is written under a
savepoint: a piece that breaks one (a re-import, a duplicate in the file, a conflict with a
card in the database) is rolled back to the savepoint, its rows are looked up against the
table, and it is written again without its unchanged or conflicting rows. Pieces are written
in file order and earlier pieces are in the table by then, so the same look-up finds
duplicates within the file. If any line is bad the transaction is rolled back at the end:
nothing is imported, and every error is reported.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import math
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from cardmgmt.card_staging import IdSource, Piece, StagedPiece, Stager, plan_pieces
from cardmgmt.choices import CardStatus
from cardmgmt.importers import CardFileReader, CsvFileError, RowError, iter_csv
from cardmgmt.models import ImportJob
from portal import crypto

log = logging.getLogger(__name__)

# Rows per piece. Each piece is a savepoint (a subtransaction): a transaction with more than
# 64 of them slows every other session's snapshots, so large files get larger pieces.
PIECE_ROWS = 20_000
MAX_SAVEPOINTS = 60
# Worker processes for files of WORKER_MIN_ROWS rows or more: one per core, as PostgreSQL's
# own work runs beside them.
WORKERS = min(os.cpu_count() or 1, 4)
WORKER_MIN_ROWS = 100_000
# Card imports run one at a time (a transaction-level advisory lock): two imports of
# overlapping files would otherwise wait on each other's unique index entries.
_LOCK_KEY = 0x63617264  # "card"

ProgressFn = Callable[[int], None]


@dataclass(slots=True)
class _Row:
    """A staged row taken back out of its piece's COPY text, to sort out a piece that broke
    a unique index."""

    line: int
    card_id: int
    iccid: str
    imsi: str
    digest: str
    card_text: str
    keyset_texts: list[str]


@dataclass
class _Outcome:
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0  # read and valid (some may still be duplicates or conflicts)
    bad_lines: set[int] = field(default_factory=set)  # that could not be read or were invalid
    created: int = 0
    stage_seconds: float = 0.0
    wait_seconds: float = 0.0
    write_seconds: float = 0.0


class _OwnIds:
    """The card ids this import drew, as runs of consecutive ids sorted by their start: a
    card found in the table with one of them is a duplicate within the file, any other an
    existing card. Workers draw ids at the same time, so pieces' ids come in any order."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, ids: list[int]) -> None:
        runs: list[list[int]] = []
        for card_id in ids:
            if runs and card_id == runs[-1][1] + 1:
                runs[-1][1] = card_id
            else:
                runs.append([card_id, card_id])
        for start, end in runs:
            i = bisect.bisect_right(self._starts, start)
            self._starts.insert(i, start)
            self._ends.insert(i, end)

    def __contains__(self, card_id: int) -> bool:
        i = bisect.bisect_right(self._starts, card_id) - 1
        return i >= 0 and card_id <= self._ends[i]


class _PieceWriter:
    """COPYs staged pieces on the import's connection (from the writer thread, one at a
    time) and sorts out the pieces that break a unique index."""

    def __init__(self, raw: psycopg.Connection, outcome: _Outcome) -> None:
        self.raw = raw
        self.outcome = outcome
        self.own_ids = _OwnIds()
        # ICCIDs and IMSIs of rows not written (unchanged or in conflict): a second row with
        # one of them is a duplicate within the file, which the table cannot show.
        self.unwritten_iccids: set[str] = set()
        self.unwritten_imsis: set[str] = set()

    def write(self, piece: StagedPiece) -> None:
        started = time.monotonic()
        self.own_ids.add(piece.ids)
        with self.raw.cursor() as cursor:
            if piece.rows and not self._copy(cursor, piece.cards, piece.keysets, piece.rows):
                rows = self._sort_out(cursor, _rows_of(piece))
                cards = "".join(r.card_text for r in rows)
                keysets = "".join(t for r in rows for t in r.keyset_texts)
                if rows and not self._copy(cursor, cards, keysets, len(rows)):
                    raise CsvFileError(
                        "cards with ICCIDs or IMSIs of this file were created during the import;"
                        " run it again"
                    )
        self.outcome.write_seconds += time.monotonic() - started

    def _copy(self, cursor: psycopg.Cursor, cards: str, keysets: str, count: int) -> bool:
        """Write the rows under a savepoint; False (and nothing written) if one of them
        breaks a unique index."""
        cursor.execute("SAVEPOINT card_import_piece")
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
            cursor.execute("ROLLBACK TO SAVEPOINT card_import_piece")
            cursor.execute("RELEASE SAVEPOINT card_import_piece")
            return False
        cursor.execute("RELEASE SAVEPOINT card_import_piece")
        self.outcome.created += count
        return True

    def _sort_out(self, cursor: psycopg.Cursor, rows: list[_Row]) -> list[_Row]:
        """The errors of rows that broke a unique index; the rows that are new."""
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
        new = []
        for row in rows:
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
                new.append(row)
        return new


def _rows_of(piece: StagedPiece) -> list[_Row]:
    keysets: dict[str, list[str]] = {}
    for text in piece.keysets.splitlines(keepends=True):
        keysets.setdefault(text[: text.index("\t")], []).append(text)
    rows = []
    for line, text in zip(piece.lines, piece.cards.splitlines(keepends=True), strict=True):
        card_id, iccid, imsi, _profile, _status, digest, _rest = text.split("\t", 6)
        rows.append(_Row(line, int(card_id), iccid, imsi, digest, text, keysets.get(card_id, [])))
    return rows


def _pieces_in_process(
    job: ImportJob, stager: Stager, rows_per_piece: int
) -> Iterator[StagedPiece]:
    """Any file: read with the csv module and staged here (while the writer thread COPYs the
    piece before)."""
    with job.file.open("rb") as stream:
        records = iter_csv(stream)
        next(records, None)  # the header, read already
        while True:
            piece = stager.stage(islice(records, rows_per_piece))
            if not piece.rows and not piece.errors and piece.file_error is None:
                return
            yield piece
            if piece.file_error is not None:
                return


class _Workers:
    """Worker processes staging pieces in parallel: worker w takes pieces w, w + n, ...; a
    thread per worker drains its output so that it never waits on a full pipe while this
    process COPYs."""

    command = (sys.executable, "-m", "cardmgmt.card_staging")

    def __init__(self, count: int, config: dict[str, Any], pieces: list[Piece]) -> None:
        self.count = min(count, len(pieces))
        self.processes: list[subprocess.Popen] = []
        self.threads: list[threading.Thread] = []
        self.queues: list[queue.Queue] = []
        self.stopping = threading.Event()
        try:
            for w in range(self.count):
                self._start(w, {**config, "pieces": pieces[w :: self.count]})
        except BaseException:
            self.close()
            raise

    def _start(self, w: int, config: dict[str, Any]) -> None:
        process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        self.processes.append(process)
        pickle.dump(config, process.stdin)
        process.stdin.close()
        results: queue.Queue = queue.Queue(maxsize=2)
        self.queues.append(results)
        thread = threading.Thread(
            target=self._drain, args=(process, results), daemon=True, name=f"card-stage-{w}"
        )
        self.threads.append(thread)
        thread.start()

    def _drain(self, process: subprocess.Popen, results: queue.Queue) -> None:
        while not self.stopping.is_set():
            try:
                item: Any = pickle.load(process.stdout)  # noqa: S301 (our own worker)
            except EOFError:
                item = None
            except Exception as exc:  # handed to the consuming thread
                item = exc
            while not self.stopping.is_set():
                try:
                    results.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if item is None or isinstance(item, Exception):
                return

    def pieces(self, count: int) -> Iterator[StagedPiece]:
        for index in range(count):
            item = self.queues[index % self.count].get()
            if not isinstance(item, StagedPiece):
                w = index % self.count
                raise RuntimeError(
                    f"card import worker {w} stopped (exit status {self.processes[w].poll()}):"
                    f" {item!r}"
                )
            yield item
            if item.file_error is not None:
                return

    def close(self) -> None:
        """Stop the workers (they have finished unless the import stopped early)."""
        self.stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for thread in self.threads:
            thread.join(timeout=5)  # a killed worker's pipe ends: its thread stops
        for process in self.processes:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None and not pipe.closed:
                    with contextlib.suppress(OSError):  # a worker that died early
                        pipe.close()


def _plan(job: ImportJob, rows_per_piece: int) -> list[Piece] | None:
    """Pieces for workers, where the file is local and large enough, and they may run."""
    if WORKERS < 2 or job.total_rows < WORKER_MIN_ROWS:
        return None
    try:
        path = job.file.path
    except NotImplementedError:  # storage without local files
        return None
    with open(path, "rb") as stream:
        pieces = plan_pieces(stream, rows_per_piece)
    return pieces if pieces and len(pieces) > 1 else None


def import_cards(
    job: ImportJob, report_progress: ProgressFn | None
) -> tuple[list[RowError], int, int]:
    """Validate and write a card file in one transaction: (errors, rows, cards created).
    With any error nothing is written. `report_progress(rows)` is called after each piece."""
    outcome = _Outcome()
    rows_per_piece = max(PIECE_ROWS, math.ceil((job.total_rows or 1) / MAX_SAVEPOINTS))
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
            profiles = {
                name: (pk, list(json.loads(algorithms) or [])) for pk, name, algorithms in cursor
            }
            sequence = cursor.execute(
                "SELECT pg_get_serial_sequence('cardmgmt_card', 'id')"
            ).fetchone()[0]
            restore = _skip_row_triggers(cursor) or _check_foreign_keys_per_piece(cursor)
        conninfo = _conninfo()
        ids = IdSource(conninfo, sequence)
        workers: _Workers | None = None
        try:
            with job.file.open("rb") as stream:
                records = iter_csv(stream)
                first = next(records, None)
                if first is None:
                    raise CsvFileError("the file is empty", 1)
                header = first[1]
            reader = CardFileReader(profiles)
            reader.read_header(header)
            stamp = timezone.now().isoformat()
            status = str(CardStatus.IN_STOCK)
            pieces = _plan(job, rows_per_piece)
            if pieces is None:
                stager = Stager(reader, crypto.Sealer(), ids, stamp, status)
                source = _pieces_in_process(job, stager, rows_per_piece)
            else:
                workers = _Workers(
                    WORKERS,
                    {
                        "path": job.file.path,
                        "header": header,
                        "profiles": profiles,
                        "fingerprint_key": crypto.fingerprint_key(),
                        "sealing_key": crypto.sealing_key(),
                        "conninfo": conninfo,
                        "sequence": sequence,
                        "stamp": stamp,
                        "status": status,
                    },
                    pieces,
                )
                source = workers.pieces(len(pieces))
            _write_pieces(raw, source, outcome, report_progress)
            if not outcome.rows and not outcome.errors:
                raise CsvFileError("the file has a header but no rows", 2)
        except CsvFileError as exc:
            outcome.errors.append(RowError(exc.line, "", str(exc)))
            outcome.bad_lines.add(exc.line)
        finally:
            ids.close()
            if workers is not None:
                workers.close()
        total = outcome.rows + len(outcome.bad_lines)
        if outcome.errors:
            transaction.set_rollback(True)
        else:
            with raw.cursor() as cursor:
                restore(cursor)
    log.info(
        "card import job %s: %d rows in %.1fs, %s (staging %.1fs, waiting for the writer"
        " %.1fs; writer COPYing %.1fs)",
        job.pk,
        total,
        time.monotonic() - started,
        f"{workers.count} worker processes" if workers else "in process",
        outcome.stage_seconds,
        outcome.wait_seconds,
        outcome.write_seconds,
    )
    return outcome.errors, total, (0 if outcome.errors else outcome.created)


def _write_pieces(
    raw: psycopg.Connection,
    source: Iterator[StagedPiece],
    outcome: _Outcome,
    report_progress: ProgressFn | None,
) -> None:
    """COPY each piece in the writer thread while the next one is staged."""
    writer = _PieceWriter(raw, outcome)
    pending: Future | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="card-import-copy") as pool:
        while True:
            stage_started = time.monotonic()
            piece = next(source, None)
            outcome.stage_seconds += time.monotonic() - stage_started
            if pending is not None:
                wait_started = time.monotonic()
                pending.result()  # the writer's errors surface here
                outcome.wait_seconds += time.monotonic() - wait_started
                pending = None
            if piece is None:
                return
            outcome.rows += piece.rows
            outcome.errors.extend(piece.errors)
            outcome.bad_lines.update(e.line for e in piece.errors)
            pending = pool.submit(writer.write, piece)
            if report_progress is not None:
                report_progress(outcome.rows + len(piece.errors))
            if piece.file_error is not None:
                outcome.errors.append(piece.file_error)
                outcome.bad_lines.add(piece.file_error.line)
                pending.result()
                return


def _conninfo() -> dict[str, Any]:
    """How the id source and the workers reach this database: the connection's own
    parameters that are plain values (host, port, dbname, user, password, sslmode...)."""
    return {
        key: value
        for key, value in connection.get_connection_params().items()
        if isinstance(value, str | int) and key != "prepare_threshold"
    }


def _skip_row_triggers(cursor: psycopg.Cursor) -> Callable[[Any], None] | None:
    """Turn off the per-row foreign key triggers of this transaction's writes, where the
    database role may (a superuser, or `GRANT SET ON PARAMETER session_replication_role`).
    Returns what turns them back on, or None.

    They cost two thirds of PostgreSQL's time in a card import and check nothing this import
    has not made sure of: every card's profile is locked above, as the trigger would lock it,
    and every key set's card is written by the same COPY piece. Only where these tables have
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


def _check_foreign_keys_per_piece(cursor: psycopg.Cursor) -> Callable[[Any], None]:
    """Make the foreign keys of the card and key set tables (deferred to the commit by
    Django) checked at the end of each COPY instead, so the checks run while the next
    piece is staged. Returns what puts them back."""
    cursor.execute(
        "SELECT quote_ident(conname) FROM pg_constraint WHERE contype = 'f' AND condeferred"
        " AND conrelid IN ('cardmgmt_card'::regclass, 'cardmgmt_keyset'::regclass)"
    )
    names = ", ".join(name for (name,) in cursor.fetchall())
    if not names:
        return lambda cursor: None
    cursor.execute(f"SET CONSTRAINTS {names} IMMEDIATE")
    return lambda cursor: cursor.execute(f"SET CONSTRAINTS {names} DEFERRED")
