"""CSV imports: validation of the whole file first, errors by line and column, idempotence."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from cardmgmt import services
from cardmgmt.choices import ImportStatus
from cardmgmt.models import Card, CardAssignment, ImportJob, KeySet, Subscriber
from portal import crypto
from portal.context import Actor
from portal.models import AuditEntry
from tests.cardmgmt.csvdata import HEADER, card_csv, card_rows, iccid

ACTOR = Actor.command("tests")


def run_import(kind: str, content: bytes, name: str = "file.csv") -> ImportJob:
    upload = SimpleUploadedFile(name, content, content_type="text/csv")
    job = services.create_import_job(actor=ACTOR, kind=kind, upload=upload)
    return services.start_import_job(actor=ACTOR, job=job, inline=True)


def test_card_import_seals_keys_and_audits(card_profile):
    content, keys = card_csv(5)
    job = run_import("cards", content)
    assert job.status == ImportStatus.DONE, job.errors
    assert (job.created_count, job.unchanged_count, job.total_rows) == (5, 0, 5)
    assert Card.objects.count() == 5
    keyset = KeySet.objects.get(card__iccid=iccid(1), kvn=1)
    assert crypto.unseal(keyset.kic, "kic").hex().upper() == keys[0]
    assert crypto.unseal(keyset.kid, "kid").hex().upper() == keys[1]
    assert crypto.unseal(keyset.kik, "kik").hex().upper() == keys[2]
    entry = AuditEntry.objects.filter(action="import").get()
    assert entry.actor_kind == "command" and "5 created" in entry.message
    assert not job.file, "the uploaded file (keys in clear) is deleted after the import"


def test_reimport_of_the_same_file_changes_nothing(card_profile):
    content, _ = card_csv(4)
    run_import("cards", content)
    sealed_before = list(KeySet.objects.order_by("pk").values_list("kic", flat=True))
    job = run_import("cards", content)
    assert job.status == ImportStatus.DONE
    assert (job.created_count, job.unchanged_count) == (0, 4)
    assert list(KeySet.objects.order_by("pk").values_list("kic", flat=True)) == sealed_before


def _bad_file(lines: list[str]) -> bytes:
    return (HEADER + "\n" + "\n".join(lines) + "\n").encode()


GOOD = [line for line, _ in card_rows(3)]
KEY = "00" * 16


@pytest.mark.parametrize(
    ("lines", "line", "column", "message"),
    [
        (
            [
                GOOD[0],
                iccid(9)[:-1]
                + str((int(iccid(9)[-1]) + 1) % 10)
                + f",262020000000009,Test AES,aes128,{KEY},{KEY},",
            ],
            3,
            "ICCID",
            "Luhn",
        ),
        ([f"{iccid(9)},2620200,Test AES,aes128,{KEY},{KEY},"], 2, "IMSI", "14 or 15 digits"),
        (
            [f"{iccid(9)},262020000000009,Test AES,aes128,{'00' * 8},{KEY},"],
            2,
            "KIC1",
            "16 bytes for aes128, got 8",
        ),
        (
            [f"{iccid(9)},262020000000009,Test AES,aes128,{KEY},{'zz' * 16},"],
            2,
            "KID1",
            "hexadecimal",
        ),
        (
            [GOOD[0], GOOD[1], GOOD[0].replace("262020000000001", "262020000000077")],
            4,
            "ICCID",
            "duplicate ICCID within the file",
        ),
        (
            [f"{iccid(9)},262020000000009,Nope,aes128,{KEY},{KEY},"],
            2,
            "PROFILE",
            "unknown card profile 'Nope'",
        ),
        (
            [f"{iccid(9)},262020000000009,Test AES,aes256,{KEY * 2},{KEY * 2},"],
            2,
            "ALG1",
            "does not support aes256",
        ),
        ([f"{iccid(9)},262020000000009,Test AES"], 2, "", "expected 7 fields, got 3"),
    ],
)
def test_bad_lines_reject_the_whole_file(card_profile, lines, line, column, message):
    job = run_import("cards", _bad_file(lines))
    assert job.status == ImportStatus.REJECTED
    assert any(
        e["line"] == line and e["column"] == column and message in e["message"] for e in job.errors
    ), job.errors
    assert Card.objects.count() == 0 and KeySet.objects.count() == 0
    assert "nothing was imported" in job.message


def test_iccid_against_the_database_with_other_data(card_profile):
    run_import("cards", card_csv(2)[0])
    changed = card_rows(1)[0][0].rsplit(",", 3)[0] + f",{KEY},{KEY},"
    job = run_import("cards", _bad_file([changed]))
    assert job.status == ImportStatus.REJECTED
    assert job.errors[0]["message"] == "ICCID exists in the database with different data"
    assert Card.objects.count() == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (HEADER.encode() + b"\n", "header but no rows"),
        (b"ICCID,IMSI,PROFILE,ALG1,KIC1,KID1\n\xff\xfe,broken\n", "not UTF-8"),
        (b"ICCID,IMSI,COLOUR\n1,2,3\n", "wrong columns"),
        (b"ICCID,IMSI,PROFILE\n1,2,3\n", "no key set columns"),
        (b"ICCID,IMSI,PROFILE,ALG1,KIC1\n1,2,3,4,5\n", "key set 1 lacks KID1"),
    ],
)
def test_whole_file_problems(card_profile, content, message):
    if not content:
        with pytest.raises(Exception, match="empty"):
            run_import("cards", content)
        return
    job = run_import("cards", content)
    assert job.status == ImportStatus.REJECTED
    assert message in job.errors[0]["message"], job.errors
    assert Card.objects.count() == 0


def test_subscriber_import_with_segments_and_cards(card_profile):
    run_import("cards", card_csv(3)[0])
    content = (
        "MSISDN,STATUS,SEGMENTS,ICCID\n"
        f"+491700000001,active,prepaid;pilot,{iccid(1)}\n"
        "+491700000002,suspended,postpaid,\n"
    ).encode()
    job = run_import("subscribers", content)
    assert job.status == ImportStatus.DONE, job.errors
    first = Subscriber.objects.get(msisdn="+491700000001")
    assert first.card.iccid == iccid(1) and first.card.status == "active"
    assert sorted(s.name for s in first.segments.all()) == ["pilot", "prepaid"]
    assert CardAssignment.objects.filter(subscriber=first, released__isnull=True).count() == 1
    again = run_import("subscribers", content)
    assert (again.created_count, again.unchanged_count) == (0, 2)


def test_subscriber_import_errors(card_profile, subscriber):
    run_import("cards", card_csv(1)[0])
    content = (
        f"MSISDN,ICCID\n12345,\n+491700000003,{iccid(77)}\n+491700000004,{subscriber.card.iccid}\n"
    ).encode()
    job = run_import("subscribers", content)
    assert job.status == ImportStatus.REJECTED
    found = {(e["line"], e["column"]) for e in job.errors}
    assert {(2, "MSISDN"), (3, "ICCID"), (4, "ICCID")} <= found
    assert Subscriber.objects.count() == 1


def test_management_command(card_profile, tmp_path, capsys):
    path = tmp_path / "cards.csv"
    path.write_bytes(card_csv(2)[0])
    call_command("import_csv", "cards", str(path))
    assert "2 created" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_bad_file([f"{iccid(9)},1,Test AES,aes128,{KEY},{KEY},"]))
    with pytest.raises(CommandError):
        call_command("import_csv", "cards", str(bad))
    assert "line 2, column IMSI" in capsys.readouterr().err
