"""Reading and validating CSV imports (card manufacturer output files, subscriber lists).

Nothing here writes to the database: the services validate a whole file with these
readers first, then write it. The column layouts are documented in docs/imports.md.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from cardmgmt.choices import KeyAlgorithm, SubscriberStatus
from cardmgmt.validators import (
    _KEY_BYTES,
    check_iccid,
    check_imsi,
    check_key,
    check_msisdn,
    luhn_check_digit,
)
from portal.crypto import Fingerprinter, fingerprint

MAX_COLUMNS = 128
MAX_FIELD = 512
_KEY_COLUMN = re.compile(r"^(ALG|KIC|KID|KIK)([0-9]{1,2})$")
_SEGMENT = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")
_ALGORITHMS = frozenset(KeyAlgorithm.values)


class CsvFileError(Exception):
    """The file as a whole cannot be read: empty, not UTF-8, wrong columns."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(slots=True)
class KeySetRow:
    kvn: int
    algorithm: str
    kic: bytes
    kid: bytes
    kik: bytes | None


@dataclass(slots=True)
class CardRow:
    line: int
    iccid: str
    imsi: str
    profile_id: int
    keysets: list[KeySetRow]
    digest: str


@dataclass
class SubscriberRow:
    line: int
    msisdn: str
    status: str
    segments: list[str]
    iccid: str
    digest: str


def iter_csv(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each record, the header being line 1.

    Decodes strictly as UTF-8 (a BOM is allowed) and reports the line of the first bad byte.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(text, strict=True)
    line = 0
    try:
        for record in reader:
            line = reader.line_num
            if not record:
                continue  # blank lines are allowed anywhere
            if len(record) > MAX_COLUMNS or max(map(len, record)) > MAX_FIELD:
                raise CsvFileError("record is too wide (too many or too long fields)", line)
            yield line, record
    except UnicodeDecodeError:
        raise CsvFileError("file is not UTF-8 text", line + 1) from None
    except csv.Error as exc:
        raise CsvFileError(f"CSV syntax error: {exc}", reader.line_num) from None


def iter_csv_piece(data: bytes, first_line: int) -> Iterator[tuple[int, list[str]]]:
    """`iter_csv` for a piece of a file: whole lines, the first of them line `first_line`, in
    a file with no quote character and no carriage return but before a line feed (so every
    line is one record; `plan_pieces` finds such files and cuts them).

    Decodes strictly as UTF-8 and reports the line of the first bad byte.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        raise CsvFileError("file is not UTF-8 text", line) from None
    if "\0" in text:  # the csv module names that error
        yield from _iter_csv_records(
            csv.reader(io.StringIO(text, newline=""), strict=True), first_line - 1
        )
        return
    line = first_line - 1
    for raw in text.split("\n"):
        line += 1
        if raw.endswith("\r"):
            raw = raw[:-1]
        if not raw:
            continue  # blank lines are allowed anywhere (and the piece's last split is empty)
        record = raw.split(",")
        if len(record) > MAX_COLUMNS or (
            len(raw) > MAX_FIELD and max(map(len, record)) > MAX_FIELD
        ):
            raise CsvFileError("record is too wide (too many or too long fields)", line)
        yield line, record


def _iter_csv_records(reader: Any, offset: int) -> Iterator[tuple[int, list[str]]]:
    line = offset
    try:
        for record in reader:
            line = offset + reader.line_num
            if not record:
                continue
            if len(record) > MAX_COLUMNS or max(map(len, record)) > MAX_FIELD:
                raise CsvFileError("record is too wide (too many or too long fields)", line)
            yield line, record
    except csv.Error as exc:
        raise CsvFileError(f"CSV syntax error: {exc}", offset + reader.line_num) from None


class CardFileReader:
    """Card manufacturer output files: ICCID, IMSI, PROFILE, then per KVN n:
    ALGn, KICn, KIDn and optionally KIKn."""

    required = ("ICCID", "IMSI", "PROFILE")

    def __init__(
        self, profiles: dict[str, tuple[int, list[str]]], fingerprint_key: bytes | None = None
    ) -> None:
        # name -> (id, supported algorithms)
        self.profiles = profiles
        self._fingerprint = Fingerprinter(fingerprint_key)
        self.index: dict[str, int] = {}
        self.kvns: list[int] = []

    def read_header(self, record: list[str]) -> None:
        names = [c.strip().upper() for c in record]
        if len(set(names)) != len(names):
            raise CsvFileError("header names a column twice", 1)
        unknown = [n for n in names if n not in self.required and not _KEY_COLUMN.match(n)]
        missing = [n for n in self.required if n not in names]
        kvns = sorted({int(m.group(2)) for n in names if (m := _KEY_COLUMN.match(n))})
        problems = []
        if missing:
            problems.append(f"missing columns {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown columns {', '.join(unknown)}")
        if not kvns:
            problems.append("no key set columns (ALG1, KIC1, KID1[, KIK1])")
        for kvn in kvns:
            if not 1 <= kvn <= 15:
                problems.append(f"KVN {kvn} is outside 1-15")
            lacking = [f"{c}{kvn}" for c in ("ALG", "KIC", "KID") if f"{c}{kvn}" not in names]
            if lacking:
                problems.append(f"key set {kvn} lacks {', '.join(lacking)}")
        if problems:
            raise CsvFileError(
                "wrong columns: "
                + "; ".join(problems)
                + ". Expected: ICCID,IMSI,PROFILE,ALG1,KIC1,KID1,KIK1[,ALG2,...]",
                1,
            )
        self.index = {n: i for i, n in enumerate(names)}
        self.kvns = kvns
        self._columns = (self.index["ICCID"], self.index["IMSI"], self.index["PROFILE"])
        self._groups = [
            (
                kvn,
                self.index[f"ALG{kvn}"],
                self.index[f"KIC{kvn}"],
                self.index[f"KID{kvn}"],
                self.index.get(f"KIK{kvn}"),
            )
            for kvn in kvns
        ]

    def parse(self, line: int, record: list[str]) -> CardRow | list[RowError]:
        """A valid row, or every error of the line.

        Million-row files are mostly good: a lean happy path handles a good row, and any
        doubt falls back to the careful path that names each problem.
        """
        if len(record) == len(self.index):
            row = self._parse_good(line, record)
            if row is not None:
                return row
        return self._parse_careful(line, record)

    def _parse_good(self, line: int, record: list[str]) -> CardRow | None:
        ci, ii, pi = self._columns
        iccid, imsi, profile_name = record[ci], record[ii], record[pi]
        if not (
            iccid.isdigit()
            and 19 <= len(iccid) <= 20
            and iccid.isascii()
            and iccid.startswith("89")
            and luhn_check_digit(iccid[:-1]) == ord(iccid[-1]) - 48
            and imsi.isdigit()
            and imsi.isascii()
            and 14 <= len(imsi) <= 15
        ):
            return None
        profile = self.profiles.get(profile_name)
        if profile is None:
            return None
        supported = profile[1]
        keysets = []
        digest_text = f"{iccid}|{imsi}|{profile_name}"
        try:
            for kvn, ai, ki, di, kk in self._groups:
                algorithm = record[ai]
                size = _KEY_BYTES.get(algorithm)
                if size is None or (supported and algorithm not in supported):
                    return None
                kic_text, kid_text = record[ki], record[di]
                kik_text = record[kk] if kk is not None else ""
                # A key of exactly twice its size in characters that decodes to its size has
                # no whitespace (fromhex skips it): its lower-case text is its hex.
                hex_size = 2 * size
                if (
                    len(kic_text) != hex_size
                    or len(kid_text) != hex_size
                    or (kik_text and len(kik_text) != hex_size)
                ):
                    return None
                kic = bytes.fromhex(kic_text)
                kid = bytes.fromhex(kid_text)
                kik = bytes.fromhex(kik_text) if kik_text else None
                if len(kic) != size or len(kid) != size or (kik is not None and len(kik) != size):
                    return None
                keysets.append(KeySetRow(kvn, algorithm, kic, kid, kik))
                digest_text += (
                    f"|{kvn}:{algorithm}:{kic_text.lower()}:{kid_text.lower()}:{kik_text.lower()}"
                )
        except ValueError:
            return None
        return CardRow(
            line, iccid, imsi, profile[0], keysets, self._fingerprint(digest_text.encode())
        )

    def _parse_careful(self, line: int, record: list[str]) -> CardRow | list[RowError]:
        if len(record) != len(self.index):
            return [RowError(line, "", f"expected {len(self.index)} fields, got {len(record)}")]
        errors: list[RowError] = []
        get = self.index.__getitem__

        def check(column: str, fn, *args):  # type: ignore[no-untyped-def]
            try:
                return fn(record[get(column)], *args)
            except ValueError as exc:
                errors.append(RowError(line, column, str(exc)))
                return None

        iccid = check("ICCID", check_iccid)
        imsi = check("IMSI", check_imsi)
        profile_name = record[get("PROFILE")].strip()
        profile = self.profiles.get(profile_name)
        if profile is None:
            errors.append(RowError(line, "PROFILE", f"unknown card profile {profile_name!r}"))
        keysets: list[KeySetRow] = []
        digest_parts = [iccid or "", imsi or "", profile_name]
        for kvn in self.kvns:
            algorithm = record[get(f"ALG{kvn}")].strip().lower()
            kic_text = record[get(f"KIC{kvn}")]
            if not algorithm and not kic_text.strip() and not record[get(f"KID{kvn}")].strip():
                continue  # this card has no key set with that KVN
            if algorithm not in _ALGORITHMS:
                errors.append(
                    RowError(
                        line,
                        f"ALG{kvn}",
                        f"unknown key algorithm {algorithm!r}; "
                        f"one of {', '.join(KeyAlgorithm.values)}",
                    )
                )
                continue
            if profile is not None and profile[1] and algorithm not in profile[1]:
                errors.append(
                    RowError(
                        line,
                        f"ALG{kvn}",
                        f"card profile {profile_name!r} does not support {algorithm}",
                    )
                )
            kic = check(f"KIC{kvn}", check_key, algorithm)
            kid = check(f"KID{kvn}", check_key, algorithm)
            kik = None
            if f"KIK{kvn}" in self.index and record[get(f"KIK{kvn}")].strip():
                kik = check(f"KIK{kvn}", check_key, algorithm)
            if kic is not None and kid is not None:
                keysets.append(KeySetRow(kvn, algorithm, kic, kid, kik))
                digest_parts.append(
                    f"{kvn}:{algorithm}:{kic.hex()}:{kid.hex()}:{(kik or b'').hex()}"
                )
        if not keysets and not errors:
            errors.append(RowError(line, "", "the card has no key set"))
        if errors:
            return errors
        return CardRow(
            line=line,
            iccid=iccid,
            imsi=imsi,
            profile_id=profile[0],
            keysets=keysets,
            digest=self._fingerprint("|".join(digest_parts).encode()),
        )


class SubscriberFileReader:
    """Subscriber lists: MSISDN, and optionally STATUS, SEGMENTS (separated by ';'), ICCID."""

    required = ("MSISDN",)
    optional = ("STATUS", "SEGMENTS", "ICCID")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def read_header(self, record: list[str]) -> None:
        names = [c.strip().upper() for c in record]
        if len(set(names)) != len(names):
            raise CsvFileError("header names a column twice", 1)
        unknown = [n for n in names if n not in self.required + self.optional]
        missing = [n for n in self.required if n not in names]
        if unknown or missing:
            parts = []
            if missing:
                parts.append(f"missing columns {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown columns {', '.join(unknown)}")
            raise CsvFileError(
                "wrong columns: " + "; ".join(parts) + ". Expected: MSISDN[,STATUS,SEGMENTS,ICCID]",
                1,
            )
        self.index = {n: i for i, n in enumerate(names)}

    def _field(self, record: list[str], name: str) -> str:
        i = self.index.get(name)
        return record[i].strip() if i is not None else ""

    def parse(self, line: int, record: list[str]) -> SubscriberRow | list[RowError]:
        if len(record) != len(self.index):
            return [RowError(line, "", f"expected {len(self.index)} fields, got {len(record)}")]
        errors: list[RowError] = []
        msisdn = ""
        try:
            msisdn = check_msisdn(self._field(record, "MSISDN"))
        except ValueError as exc:
            errors.append(RowError(line, "MSISDN", str(exc)))
        status = self._field(record, "STATUS").lower() or SubscriberStatus.ACTIVE
        if status not in SubscriberStatus.values:
            errors.append(
                RowError(
                    line,
                    "STATUS",
                    f"unknown status {status!r}; one of {', '.join(SubscriberStatus.values)}",
                )
            )
        segments = sorted(
            {s.strip() for s in self._field(record, "SEGMENTS").split(";") if s.strip()}
        )
        bad = [s for s in segments if not _SEGMENT.match(s)]
        if bad:
            errors.append(
                RowError(
                    line, "SEGMENTS", f"bad segment label {bad[0]!r}: letters, digits, - and _ only"
                )
            )
        iccid = self._field(record, "ICCID")
        if iccid:
            try:
                iccid = check_iccid(iccid)
            except ValueError as exc:
                errors.append(RowError(line, "ICCID", str(exc)))
        if errors:
            return errors
        digest = fingerprint(f"{msisdn}|{status}|{';'.join(segments)}|{iccid}".encode())
        return SubscriberRow(line, msisdn, status, segments, iccid, digest)
