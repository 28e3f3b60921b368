"""Turning pieces of a card file into COPY text: validated, keys sealed, card ids drawn.

Used in the importing process, and by import workers: `python -m cardmgmt.card_staging`,
started by `cardmgmt.services.card_copy_import` for large files (docs/imports.md,
"Performance"). A worker has no Django settings and no transaction: it gets what it needs
(the file, its pieces, the header, the profiles, the keys, a database to draw card ids
from) through its stdin and sends one `StagedPiece` per piece, in order, to its stdout.
Nothing here writes to the database (drawing ids from a sequence changes no table).
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from cardmgmt.importers import CardFileReader, CardRow, CsvFileError, RowError, iter_csv_piece
from portal.crypto import Sealer

_SCAN_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Piece:
    """Lines `first_line`... of a file, bytes `start` to `end`."""

    start: int
    end: int
    first_line: int


@dataclass(slots=True)
class StagedPiece:
    """A piece's good rows as COPY text for the card and key set tables, and its errors."""

    rows: int = 0
    lines: list[int] = field(default_factory=list)  # of each card row, in order
    ids: list[int] = field(default_factory=list)  # of each card row, in order
    cards: str = ""
    keysets: str = ""
    errors: list[RowError] = field(default_factory=list)
    file_error: RowError | None = None  # the file cannot be read past this piece


def plan_pieces(stream: BinaryIO, rows_per_piece: int) -> list[Piece] | None:
    """Cut a file after its header into pieces of `rows_per_piece` lines that can be read
    independently: None when a record may span lines (a quote character anywhere) or a
    carriage return stands alone (the csv module would count it as a line end)."""

    def plain(data: bytes) -> bool:
        return b'"' not in data and data.count(b"\r") == data.count(b"\r\n")

    stream.seek(0)
    first = stream.readline()
    if not first.endswith(b"\n") or not plain(first):
        return None
    pieces: list[Piece] = []
    start = offset = len(first)  # of the current piece, of the current block
    first_line, lines_in_piece = 2, 0
    carry = b""
    while block := stream.read(_SCAN_BLOCK):
        block = carry + block
        cut = block.rfind(b"\n") + 1
        block, carry = block[:cut], block[cut:]
        if not plain(block):
            return None
        position, lines = 0, block.count(b"\n")
        while lines_in_piece + lines >= rows_per_piece:
            for _ in range(rows_per_piece - lines_in_piece):
                position = block.index(b"\n", position) + 1
            lines -= rows_per_piece - lines_in_piece
            pieces.append(Piece(start, offset + position, first_line))
            start, first_line, lines_in_piece = offset + position, first_line + rows_per_piece, 0
        lines_in_piece += lines
        offset += len(block)
    if not plain(carry.removesuffix(b"\r")):
        return None
    if offset + len(carry) > start:
        pieces.append(Piece(start, offset + len(carry), first_line))
    return pieces


class IdSource:
    """Card ids from the card table's sequence, on a connection of its own (a sequence is
    not transactional: ids drawn for rows that are then rolled back are only a gap)."""

    def __init__(self, conninfo: dict[str, Any], sequence: str) -> None:
        import psycopg

        self._conn = psycopg.connect(autocommit=True, **conninfo)
        self._query = "SELECT nextval(%s::regclass) FROM generate_series(1, %s)"
        self._sequence = sequence

    def draw(self, count: int) -> list[int]:
        if not count:
            return []
        rows = self._conn.execute(self._query, [self._sequence, count]).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self._conn.close()


class Stager:
    """Validates records, seals their keys and writes their COPY text."""

    def __init__(
        self, reader: CardFileReader, sealer: Sealer, ids: IdSource, stamp: str, status: str
    ) -> None:
        self.reader = reader
        self.sealer = sealer
        self.ids = ids
        self.stamp = stamp
        self.status = status

    def stage(self, records: Iterable[tuple[int, list[str]]]) -> StagedPiece:
        """The piece of these records; a file error ends it (the records before count)."""
        piece = StagedPiece()
        parse = self.reader.parse
        good: list[CardRow] = []
        try:
            for line, record in records:
                row = parse(line, record)
                if row.__class__ is CardRow:
                    good.append(row)  # type: ignore[arg-type]
                else:
                    piece.errors.extend(row)  # type: ignore[arg-type]
        except CsvFileError as exc:
            piece.file_error = RowError(exc.line, "", str(exc))
        ids = self.ids.draw(len(good))
        stamp, status = self.stamp, self.status
        piece.rows = len(good)
        piece.ids = ids
        piece.lines = [r.line for r in good]
        piece.cards = "".join(
            [
                f"{i}\t{r.iccid}\t{r.imsi}\t{r.profile_id}\t{status}\t{r.digest}\t{stamp}\t{stamp}\n"
                for i, r in zip(ids, good, strict=True)
            ]
        )
        keysets = [(i, k) for i, r in zip(ids, good, strict=True) for k in r.keysets]
        seal = self.sealer.seal_hex_many
        kics = seal([k.kic for _, k in keysets], b"kic")
        kids = seal([k.kid for _, k in keysets], b"kid")
        kiks = iter(seal([k.kik for _, k in keysets if k.kik], b"kik"))
        piece.keysets = "".join(
            [
                f"{i}\t{k.kvn}\t{k.algorithm}\t\\\\x{kic}\t\\\\x{kid}"
                + (f"\t\\\\x{next(kiks)}\t0\n" if k.kik else "\t\\N\t0\n")
                for (i, k), kic, kid in zip(keysets, kics, kids, strict=True)
            ]
        )
        return piece


def read_piece(stream: BinaryIO, piece: Piece) -> Iterator[tuple[int, list[str]]]:
    stream.seek(piece.start)
    return iter_csv_piece(stream.read(piece.end - piece.start), piece.first_line)


def run_worker(source: IO[bytes], sink: IO[bytes]) -> None:
    """Stage the pieces the config read from `source` names, each to `sink`, in order."""
    config = pickle.load(source)  # noqa: S301 (from the process that started this one)
    reader = CardFileReader(config["profiles"], fingerprint_key=config["fingerprint_key"])
    reader.read_header(config["header"])
    ids = IdSource(config["conninfo"], config["sequence"])
    version, key = config["sealing_key"]
    stager = Stager(
        reader, Sealer(version=version, key=key), ids, config["stamp"], config["status"]
    )
    try:
        with open(config["path"], "rb") as stream:
            for piece in config["pieces"]:
                staged = stager.stage(read_piece(stream, piece))
                pickle.dump(staged, sink, protocol=pickle.HIGHEST_PROTOCOL)
                sink.flush()
                if staged.file_error is not None:
                    break
    finally:
        ids.close()


if __name__ == "__main__":
    # Through the module's own name: what it sends must unpickle as cardmgmt.card_staging's
    # classes, not __main__'s.
    from cardmgmt import card_staging

    card_staging.run_worker(sys.stdin.buffer, sys.stdout.buffer)
