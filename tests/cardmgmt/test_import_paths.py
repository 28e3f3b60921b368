"""The card import's fast paths give the same answers as the plain ones.

On PostgreSQL a card file is staged in this process or by worker processes (large files), in
pieces COPYed under savepoints; these tests force small pieces and workers onto small files
and compare the outcome, error by error, with the in-process path.
"""

from __future__ import annotations

import io
import sys
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from cardmgmt import services
from cardmgmt.card_staging import plan_pieces, read_piece
from cardmgmt.choices import ImportStatus
from cardmgmt.importers import CardFileReader, CsvFileError, iter_csv
from cardmgmt.models import Card, ImportJob, KeySet
from cardmgmt.services import card_copy_import
from portal import crypto
from portal.context import Actor
from tests.cardmgmt.csvdata import HEADER, card_rows, iccid

ACTOR = Actor.command("tests")
KEY = "00" * 16

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the COPY import is PostgreSQL's"
)


def run_import(content: bytes) -> ImportJob:
    upload = SimpleUploadedFile("cards.csv", content, content_type="text/csv")
    job = services.create_import_job(actor=ACTOR, kind="cards", upload=upload)
    return services.start_import_job(actor=ACTOR, job=job, inline=True)


def csv_file(lines: list[str], newline: str = "\n") -> bytes:
    return (newline.join([HEADER, *lines]) + newline).encode()


def small_pieces(monkeypatch, workers: int) -> None:
    monkeypatch.setattr(card_copy_import, "PIECE_ROWS", 3)
    monkeypatch.setattr(card_copy_import, "WORKER_MIN_ROWS", 0)
    monkeypatch.setattr(card_copy_import, "WORKERS", workers)


@pytest.fixture(params=["in process", "workers"])
def path(request, monkeypatch):
    """Pieces of 3 rows, staged here or by 2 worker processes."""
    small_pieces(monkeypatch, 2 if request.param == "workers" else 1)
    return request.param


def troubled_file() -> tuple[bytes, list[tuple[int, str, str]]]:
    """Errors in several pieces, and duplicates across pieces; the errors expected."""
    good = [line for line, _ in card_rows(8)]
    lines = [
        good[0],  # line 2
        good[1],
        good[2],
        good[3],  # line 5, second piece
        good[0].replace("262020000000001", "262020000000091"),  # duplicate ICCID of line 2
        iccid(9)[:-1]  # a wrong Luhn digit
        + str((int(iccid(9)[-1]) + 1) % 10)
        + f",262020000000009,Test AES,aes128,{KEY},{KEY},",
        good[4],  # line 8, third piece
        f"{iccid(10)},262020000000002,Test AES,aes128,{KEY},{KEY},",  # IMSI of line 3
        good[5],
        good[6],  # line 11, fourth piece
        good[6],  # the same row again
    ]
    expected = [
        (6, "ICCID", "duplicate ICCID within the file"),
        (7, "ICCID", "Luhn"),
        (9, "IMSI", "duplicate IMSI within the file"),
        (12, "ICCID", "duplicate ICCID within the file"),
        (12, "IMSI", "duplicate IMSI within the file"),
    ]
    return csv_file(lines), expected


def error_keys(job: ImportJob) -> list[tuple[int, str, str]]:
    return [(e["line"], e["column"], e["message"]) for e in job.errors]


@postgres_only
def test_good_file_in_pieces(card_profile, path):
    rows = card_rows(10)
    job = run_import(csv_file([line for line, _ in rows]))
    assert job.status == ImportStatus.DONE, job.errors
    assert (job.created_count, job.unchanged_count, job.total_rows) == (10, 0, 10)
    assert KeySet.objects.count() == 10
    for n, (_line, keys) in enumerate(rows, start=1):
        keyset = KeySet.objects.get(card__iccid=iccid(n))
        assert crypto.unseal(keyset.kic, "kic").hex().upper() == keys[0]
        assert crypto.unseal(keyset.kik, "kik").hex().upper() == keys[2]
    with connection.cursor() as cursor:  # the row triggers are on again after the import
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


@postgres_only
def test_errors_across_pieces(card_profile, path):
    content, expected = troubled_file()
    job = run_import(content)
    assert job.status == ImportStatus.REJECTED
    found = error_keys(job)
    assert len(found) == len(expected), found
    for (line, column, message), (e_line, e_column, e_message) in zip(found, expected, strict=True):
        assert (line, column) == (e_line, e_column) and e_message in message, found
    assert Card.objects.count() == 0 and KeySet.objects.count() == 0
    assert job.total_rows == 11


@postgres_only
def test_partial_reimport_and_conflicts_with_the_database(card_profile, path):
    first = run_import(csv_file([line for line, _ in card_rows(5)]))
    assert first.created_count == 5
    before = list(KeySet.objects.order_by("pk").values_list("kic", flat=True))
    job = run_import(csv_file([line for line, _ in card_rows(9)]))
    assert job.status == ImportStatus.DONE, job.errors
    assert (job.created_count, job.unchanged_count) == (4, 5)
    assert list(KeySet.objects.order_by("pk").values_list("kic", flat=True))[:5] == before
    taken_imsi = f"{iccid(20)},262020000000003,Test AES,aes128,{KEY},{KEY},"
    changed = card_rows(1)[0][0].rsplit(",", 3)[0] + f",{KEY},{KEY},"
    job = run_import(csv_file([*[line for line, _ in card_rows(4, start=30)], taken_imsi, changed]))
    assert job.status == ImportStatus.REJECTED
    assert error_keys(job) == [
        (6, "IMSI", f"IMSI belongs to card {iccid(3)} in the database"),
        (7, "ICCID", "ICCID exists in the database with different data"),
    ]
    assert Card.objects.count() == 9


@postgres_only
def test_file_error_in_a_later_piece(card_profile, path):
    lines = [line for line, _ in card_rows(7)]
    content = csv_file(lines[:5]) + b"\xff\xfe,broken\n" + "\n".join(lines[5:]).encode() + b"\n"
    job = run_import(content)
    assert job.status == ImportStatus.REJECTED
    assert any("not UTF-8" in e["message"] for e in job.errors), job.errors
    assert Card.objects.count() == 0


@postgres_only
def test_a_worker_that_dies_fails_the_job(card_profile, monkeypatch):
    small_pieces(monkeypatch, 2)
    monkeypatch.setattr(
        card_copy_import._Workers, "command", (sys.executable, "-c", "import sys; sys.exit(3)")
    )
    upload = SimpleUploadedFile("cards.csv", csv_file([line for line, _ in card_rows(7)]))
    job = services.create_import_job(actor=ACTOR, kind="cards", upload=upload)
    try:
        with pytest.raises(RuntimeError, match="worker 0 stopped"):
            services.run_import_job(actor=ACTOR, job_id=job.pk)
        job.refresh_from_db()
        assert job.status == ImportStatus.FAILED and "worker 0 stopped" in job.message
        assert Card.objects.count() == 0
    finally:
        job.file.delete(save=False)  # a failed job keeps its upload (keys in clear) for a retry


@postgres_only
def test_without_the_right_to_skip_row_triggers(card_profile):
    """A role that may not set session_replication_role gets the foreign key checks of
    PostgreSQL's triggers (run per piece), and the same result."""
    role = f"card_import_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOSUPERUSER")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        assert card_copy_import._skip_row_triggers(cursor.cursor) is None
        job = run_import(csv_file([line for line, _ in card_rows(4)]))
        cursor.execute("RESET ROLE")
    assert job.status == ImportStatus.DONE, job.errors
    assert KeySet.objects.count() == 4


def test_fingerprinter_and_sealer_match_the_plain_functions():
    data = b"89490020000000000013|262020000000001|Test AES|1:aes128:00:11:"
    assert crypto.Fingerprinter()(data) == crypto.fingerprint(data)
    assert crypto.Fingerprinter(crypto.fingerprint_key())(data) == crypto.fingerprint(data)
    version, key = crypto.sealing_key()
    sealed = bytes.fromhex(crypto.Sealer(version=version, key=key).seal_hex(b"\x01" * 16, b"kid"))
    assert crypto.unseal(sealed, "kid") == b"\x01" * 16
    values = [bytes([n]) * 16 for n in range(5)]
    many = crypto.Sealer().seal_hex_many(values, b"kik")
    assert len(set(many)) == 5  # a nonce of its own each
    assert [crypto.unseal(bytes.fromhex(h), "kik") for h in many] == values


def test_fast_and_careful_parses_agree():
    reader = CardFileReader({"Test AES": (1, ["aes128"])})
    reader.read_header(HEADER.split(","))
    for line, _keys in card_rows(3):
        record = line.split(",")
        record[4] = record[4].lower()  # mixed case keys: the digest is of the bytes
        fast = reader._parse_good(2, record)
        careful = reader._parse_careful(2, record)
        assert fast is not None and fast == careful


@pytest.mark.parametrize(
    "content",
    [
        csv_file([line for line, _ in card_rows(7)]),
        csv_file([line for line, _ in card_rows(7)], newline="\r\n"),
        "\ufeff".encode() + csv_file(["", *[line for line, _ in card_rows(4)], "", "x,y"]),
        csv_file([line for line, _ in card_rows(3)] + ["a\0b,c"]),
        csv_file([line for line, _ in card_rows(5)])[:-1],  # no line feed at the end
    ],
)
def test_pieces_read_as_the_csv_module_reads_the_whole_file(content):
    def records(read):
        out = []
        try:
            for item in read():
                out.append(item)
        except CsvFileError as exc:
            out.append(("error", exc.line, str(exc)))
        return out

    whole = records(lambda: iter_csv(io.BytesIO(content)))[1:]
    pieces = plan_pieces(io.BytesIO(content), 2)
    assert pieces is not None

    def all_pieces():
        stream = io.BytesIO(content)
        for piece in pieces:
            yield from read_piece(stream, piece)

    assert records(all_pieces) == whole


def test_files_with_quotes_or_lone_carriage_returns_are_not_cut():
    assert plan_pieces(io.BytesIO(b'ICCID,IMSI\n"1",2\n'), 1) is None
    assert plan_pieces(io.BytesIO(b"ICCID,IMSI\n1,2\r3,4\n"), 1) is None


def test_own_ids_in_any_order():
    own = card_copy_import._OwnIds()
    own.add([40, 41, 42, 50])
    own.add([10, 11, 13])  # a piece drawn earlier by another worker
    own.add([45])
    assert [n for n in range(5, 60) if n in own] == [10, 11, 13, 40, 41, 42, 45, 50]
