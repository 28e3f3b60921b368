"""Inventory services: card profiles, cards and keys, subscribers, CSV imports.

Each takes the actor, runs in a transaction, validates, writes an audit entry, and enqueues
follow-up work with `transaction.on_commit`. Views, API views, tasks and commands call these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, models, transaction
from django.utils import timezone

from cardmgmt.choices import CardStatus, ImportKind, ImportStatus
from cardmgmt.importers import (
    CardFileReader,
    CardRow,
    CsvFileError,
    RowError,
    SubscriberFileReader,
    SubscriberRow,
    iter_csv,
)
from cardmgmt.models import (
    Card,
    CardAssignment,
    CardProfile,
    ImportJob,
    KeySet,
    Segment,
    Subscriber,
)
from cardmgmt.services import card_copy_import
from cardmgmt.validators import check_key
from portal import crypto
from portal.audit import record_change, snapshot
from portal.context import Actor
from portal.models import AuditAction

log = logging.getLogger(__name__)

IMPORT_BATCH = 5000
MAX_STORED_ERRORS = 1000
KEY_PURPOSES = ("kic", "kid", "kik")


# --- generic create / update / delete with audit -------------------------------------------


def _create(actor: Actor, instance: models.Model, message: str = "") -> models.Model:
    instance.full_clean()
    instance.save()
    record_change(
        actor=actor,
        action=AuditAction.CREATE,
        instance=instance,
        after=snapshot(instance),
        message=message,
    )
    return instance


def _update(
    actor: Actor, instance: models.Model, changes: dict[str, Any], message: str = ""
) -> models.Model:
    before = snapshot(instance)
    for name, value in changes.items():
        setattr(instance, name, value)
    if hasattr(instance, "updated"):
        instance.updated = timezone.now()
    instance.full_clean()
    instance.save()
    record_change(
        actor=actor,
        action=AuditAction.UPDATE,
        instance=instance,
        before=before,
        after=snapshot(instance),
        message=message,
    )
    return instance


def _delete(actor: Actor, instance: models.Model) -> None:
    before = snapshot(instance)
    record_change(actor=actor, action=AuditAction.DELETE, instance=instance, before=before)
    try:
        instance.delete()
    except models.ProtectedError as exc:
        raise ValidationError(f"{instance} is still in use: {exc.protected_objects!s}") from None


# --- card profiles --------------------------------------------------------------------------


@transaction.atomic
def create_card_profile(*, actor: Actor, **fields: Any) -> CardProfile:
    return _create(actor, CardProfile(**fields))


@transaction.atomic
def update_card_profile(*, actor: Actor, profile: CardProfile, **changes: Any) -> CardProfile:
    return _update(actor, profile, changes)


@transaction.atomic
def delete_card_profile(*, actor: Actor, profile: CardProfile) -> None:
    _delete(actor, profile)


# --- cards and keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySetInput:
    kvn: int
    algorithm: str
    kic: str
    kid: str
    kik: str = ""


def _sealed_keyset(card: Card, spec: KeySetInput) -> KeySet:
    if not 1 <= spec.kvn <= 15:
        raise ValidationError({"kvn": "KVN must be 1 to 15"})
    keys: dict[str, bytes | None] = {}
    for purpose, text in zip(KEY_PURPOSES, (spec.kic, spec.kid, spec.kik), strict=True):
        if purpose == "kik" and not text:
            keys[purpose] = None
            continue
        try:
            keys[purpose] = crypto.seal(check_key(text, spec.algorithm), purpose)
        except ValueError as exc:
            raise ValidationError({purpose: str(exc)}) from None
    return KeySet(card=card, kvn=spec.kvn, algorithm=spec.algorithm, **keys)


@transaction.atomic
def create_card(
    *,
    actor: Actor,
    iccid: str,
    imsi: str,
    profile: CardProfile,
    status: str = CardStatus.IN_STOCK,
    keysets: Sequence[KeySetInput] = (),
) -> Card:
    card = _create(actor, Card(iccid=iccid, imsi=imsi, profile=profile, status=status))
    for spec in keysets:
        set_keyset(actor=actor, card=card, spec=spec)
    return card


@transaction.atomic
def update_card(*, actor: Actor, card: Card, **changes: Any) -> Card:
    return _update(actor, card, changes)


@transaction.atomic
def set_keyset(*, actor: Actor, card: Card, spec: KeySetInput) -> KeySet:
    """Create or replace the key set `spec.kvn` of a card. The counter is kept: it never
    goes down, even when keys are replaced."""
    keyset = _sealed_keyset(card, spec)
    existing = KeySet.objects.select_for_update().filter(card=card, kvn=spec.kvn).first()
    if existing is None:
        keyset.full_clean(exclude=["kic", "kid", "kik"])
        keyset.save()
        record_change(
            actor=actor, action=AuditAction.CREATE, instance=keyset, after=snapshot(keyset)
        )
        return keyset
    before = snapshot(existing)
    existing.algorithm, existing.kic, existing.kid, existing.kik = (
        keyset.algorithm,
        keyset.kic,
        keyset.kid,
        keyset.kik,
    )
    existing.save()
    record_change(
        actor=actor,
        action=AuditAction.UPDATE,
        instance=existing,
        before=before,
        after=snapshot(existing),
        message="keys replaced",
    )
    return existing


def allocate_counter(*, card_id: int, kvn: int) -> int:
    """The next OTA counter for (card, KVN): atomically incremented, never reused.

    One UPDATE ... RETURNING: the row lock serialises concurrent workers, and the value is
    committed before any packet carrying it leaves.
    """
    with transaction.atomic():
        updated = KeySet.objects.filter(card_id=card_id, kvn=kvn).update(
            counter=models.F("counter") + 1
        )
        if not updated:
            raise ValidationError(f"card {card_id} has no key set with KVN {kvn}")
        return KeySet.objects.values_list("counter", flat=True).get(card_id=card_id, kvn=kvn)


def reseal_secrets(*, actor: Actor) -> int:
    """Re-seal every stored secret under the current master key. Returns how many changed.

    Each key set is re-sealed in its own short transaction, so a rotation of a large
    inventory never holds long locks and can be interrupted and run again.
    """
    from django.conf import settings

    changed = 0
    for pk in KeySet.objects.values_list("pk", flat=True).iterator(chunk_size=2000):
        with transaction.atomic():
            keyset = KeySet.objects.select_for_update().get(pk=pk)
            fresh = {}
            for purpose in KEY_PURPOSES:
                value = getattr(keyset, purpose)
                if value:
                    resealed = crypto.reseal(bytes(value), purpose)
                    if resealed is not None:
                        fresh[purpose] = resealed
            if fresh:
                KeySet.objects.filter(pk=pk).update(**fresh)
                record_change(
                    actor=actor,
                    action=AuditAction.UPDATE,
                    instance=keyset,
                    message=f"re-sealed under master key version {settings.MASTER_KEY_VERSION}",
                )
                changed += 1
    return changed


# --- subscribers ----------------------------------------------------------------------------


def _segments(names: Iterable[str]) -> list[Segment]:
    return [Segment.objects.get_or_create(name=name)[0] for name in sorted(set(names))]


@transaction.atomic
def create_subscriber(
    *,
    actor: Actor,
    msisdn: str,
    status: str = "active",
    segments: Iterable[str] = (),
    card: Card | None = None,
) -> Subscriber:
    subscriber = _create(actor, Subscriber(msisdn=msisdn, status=status))
    subscriber.segments.set(_segments(segments))
    if card is not None:
        subscriber = assign_card(
            actor=actor, subscriber=subscriber, card=card, reason="initial card"
        )
    return subscriber


@transaction.atomic
def update_subscriber(
    *, actor: Actor, subscriber: Subscriber, segments: Iterable[str] | None = None, **changes: Any
) -> Subscriber:
    before = snapshot(subscriber)
    for name, value in changes.items():
        setattr(subscriber, name, value)
    subscriber.updated = timezone.now()
    subscriber.full_clean()
    subscriber.save()
    if segments is not None:
        subscriber.segments.set(_segments(segments))
    record_change(
        actor=actor,
        action=AuditAction.UPDATE,
        instance=subscriber,
        before=before,
        after=snapshot(subscriber),
    )
    return subscriber


@transaction.atomic
def delete_subscriber(*, actor: Actor, subscriber: Subscriber) -> None:
    CardAssignment.objects.filter(subscriber=subscriber, released__isnull=True).update(
        released=timezone.now()
    )
    _delete(actor, subscriber)


@transaction.atomic
def assign_card(
    *, actor: Actor, subscriber: Subscriber, card: Card, reason: str = ""
) -> Subscriber:
    """Give a subscriber a card (a SIM swap when it had one): history is kept."""
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    holder = Subscriber.objects.filter(card=card).exclude(pk=subscriber.pk).first()
    if holder is not None:
        raise ValidationError({"card": f"card {card} belongs to subscriber {holder}"})
    if subscriber.card_id == card.pk:
        return subscriber
    if card.status == CardStatus.RETIRED:
        raise ValidationError({"card": f"card {card} is retired"})
    before = snapshot(subscriber)
    now = timezone.now()
    old_card = subscriber.card
    CardAssignment.objects.filter(subscriber=subscriber, released__isnull=True).update(released=now)
    if old_card is not None:
        _update(
            actor, old_card, {"status": CardStatus.RETIRED}, message=f"swapped out of {subscriber}"
        )
    CardAssignment.objects.create(
        subscriber=subscriber,
        card=card,
        assigned=now,
        reason=reason or ("SIM swap" if old_card else "first card"),
    )
    subscriber.card = card
    subscriber.updated = now
    subscriber.save(update_fields=["card", "updated"])
    if card.status != CardStatus.ACTIVE:
        _update(actor, card, {"status": CardStatus.ACTIVE}, message=f"assigned to {subscriber}")
    record_change(
        actor=actor,
        action=AuditAction.UPDATE,
        instance=subscriber,
        before=before,
        after=snapshot(subscriber),
        message=f"SIM swap {old_card} → {card}" if old_card else f"card {card} assigned",
    )
    return subscriber


# --- imports --------------------------------------------------------------------------------


@transaction.atomic
def create_import_job(*, actor: Actor, kind: str, upload: UploadedFile) -> ImportJob:
    """Store an uploaded file as an import job. Small files are imported at once; larger
    ones by a worker, after this transaction commits."""
    from django.conf import settings

    if kind not in ImportKind.values:
        raise ValidationError({"kind": f"unknown import kind {kind!r}"})
    if upload.size == 0:
        raise ValidationError({"file": "the file is empty"})
    if upload.size > settings.IMPORT_MAX_BYTES:
        raise ValidationError(
            {"file": f"the file is larger than {settings.IMPORT_MAX_BYTES} bytes"}
        )
    job = ImportJob(kind=kind, original_name=upload.name[:255], requested_by=actor.label)
    job.file.save(upload.name, upload, save=False)
    job.save()
    record_change(actor=actor, action=AuditAction.CREATE, instance=job, after=snapshot(job))
    return job


def start_import_job(*, actor: Actor, job: ImportJob, inline: bool) -> ImportJob:
    """Run the job now (small files, management commands) or hand it to a worker."""
    if inline:
        return run_import_job(actor=actor, job_id=job.pk)
    from cardmgmt.tasks import run_import_job_task

    transaction.on_commit(lambda: run_import_job_task.delay(job.pk))
    return job


def _discard_upload(job: ImportJob) -> None:
    """An uploaded card file holds keys in clear: it is deleted once the job has ended."""
    if job.file:
        job.file.delete(save=False)
        ImportJob.objects.filter(pk=job.pk).update(file="")


def _count_data_lines(job: ImportJob) -> int:
    """Lines after the header: the progress bar's denominator until the rows are counted."""
    count = 0
    with job.file.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
    return max(count - 1, 0)


def _progress(job_id: int, **fields: Any) -> None:
    ImportJob.objects.filter(pk=job_id).update(**fields)


@contextmanager
def _progress_reporter(job_id: int) -> Iterator[Callable[[int], None] | None]:
    """Progress of a job that writes in one long transaction, on a connection of its own (the
    job's connection would show it only at the commit). None inside an enclosing
    transaction: nobody could see the job row yet, and that transaction may hold its lock."""
    if connection.in_atomic_block:
        yield None
        return
    side = connection.get_new_connection(connection.get_connection_params())
    side.autocommit = True

    def report(rows: int) -> None:
        # SKIP LOCKED: progress is never worth waiting for.
        side.execute(
            "UPDATE cardmgmt_importjob SET processed_rows = %s WHERE id = ("
            "SELECT id FROM cardmgmt_importjob WHERE id = %s FOR UPDATE SKIP LOCKED)",
            [rows, job_id],
        )

    try:
        yield report
    finally:
        side.close()


def _batches(iterable: Iterable, size: int) -> Iterable[list]:
    it = iter(iterable)
    while batch := list(islice(it, size)):
        yield batch


class _ImportKindSpec:
    """How one kind of import reads, checks against the database and writes its rows."""

    def reader(self) -> CardFileReader | SubscriberFileReader:
        raise NotImplementedError

    def check_batch(self, rows: list, seen: set) -> tuple[list[RowError], int]:
        """Errors against the file so far (`seen`) and the database; and the unchanged count."""
        raise NotImplementedError

    def write_batch(self, rows: list) -> int:
        raise NotImplementedError


class _CardImport(_ImportKindSpec):
    def reader(self) -> CardFileReader:
        profiles = {p.name: (p.pk, list(p.algorithms or [])) for p in CardProfile.objects.all()}
        return CardFileReader(profiles)

    def check_batch(self, rows: list[CardRow], seen: set) -> tuple[list[RowError], int]:
        errors: list[RowError] = []
        for row in rows:
            for key, column in ((row.iccid, "ICCID"), ("i" + row.imsi, "IMSI")):
                if key in seen:
                    errors.append(RowError(row.line, column, f"duplicate {column} within the file"))
                seen.add(key)
        by_iccid = dict(
            Card.objects.filter(iccid__in=[r.iccid for r in rows]).values_list(
                "iccid", "import_digest"
            )
        )
        by_imsi = dict(
            Card.objects.filter(imsi__in=[r.imsi for r in rows]).values_list("imsi", "iccid")
        )
        unchanged = 0
        for row in rows:
            if row.iccid in by_iccid:
                if by_iccid[row.iccid] == row.digest:
                    unchanged += 1
                else:
                    errors.append(
                        RowError(
                            row.line, "ICCID", "ICCID exists in the database with different data"
                        )
                    )
            elif row.imsi in by_imsi:
                errors.append(
                    RowError(
                        row.line,
                        "IMSI",
                        f"IMSI belongs to card {by_imsi[row.imsi]} in the database",
                    )
                )
        return errors, unchanged

    def write_batch(self, rows: list[CardRow]) -> int:
        existing = set(
            Card.objects.filter(iccid__in=[r.iccid for r in rows]).values_list("iccid", flat=True)
        )
        new = [r for r in rows if r.iccid not in existing]
        if not new:
            return 0
        seal = crypto.seal
        now = timezone.now()
        cards = Card.objects.bulk_create(
            Card(
                iccid=r.iccid,
                imsi=r.imsi,
                profile_id=r.profile_id,
                import_digest=r.digest,
                created=now,
                updated=now,
            )
            for r in new
        )
        KeySet.objects.bulk_create(
            KeySet(
                card_id=card.pk,
                kvn=k.kvn,
                algorithm=k.algorithm,
                kic=seal(k.kic, "kic"),
                kid=seal(k.kid, "kid"),
                kik=seal(k.kik, "kik") if k.kik else None,
            )
            for card, r in zip(cards, new, strict=True)
            for k in r.keysets
        )
        return len(new)


class _SubscriberImport(_ImportKindSpec):
    def reader(self) -> SubscriberFileReader:
        return SubscriberFileReader()

    def check_batch(self, rows: list[SubscriberRow], seen: set) -> tuple[list[RowError], int]:
        errors: list[RowError] = []
        for row in rows:
            if row.msisdn in seen:
                errors.append(RowError(row.line, "MSISDN", "duplicate MSISDN within the file"))
            seen.add(row.msisdn)
            if row.iccid:
                if "c" + row.iccid in seen:
                    errors.append(RowError(row.line, "ICCID", "ICCID given twice in the file"))
                seen.add("c" + row.iccid)
        existing = dict(
            Subscriber.objects.filter(msisdn__in=[r.msisdn for r in rows]).values_list(
                "msisdn", "import_digest"
            )
        )
        iccids = [r.iccid for r in rows if r.iccid]
        cards = dict(
            Card.objects.filter(iccid__in=iccids).values_list("iccid", "subscriber__msisdn")
        )
        unchanged = 0
        for row in rows:
            if row.msisdn in existing:
                if existing[row.msisdn] == row.digest:
                    unchanged += 1
                    continue
                errors.append(
                    RowError(
                        row.line, "MSISDN", "MSISDN exists in the database with different data"
                    )
                )
            if row.iccid:
                if row.iccid not in cards:
                    errors.append(RowError(row.line, "ICCID", "no card with this ICCID"))
                elif cards[row.iccid] not in (None, row.msisdn):
                    errors.append(
                        RowError(
                            row.line, "ICCID", f"card belongs to subscriber {cards[row.iccid]}"
                        )
                    )
        return errors, unchanged

    def write_batch(self, rows: list[SubscriberRow]) -> int:
        existing = set(
            Subscriber.objects.filter(msisdn__in=[r.msisdn for r in rows]).values_list(
                "msisdn", flat=True
            )
        )
        new = [r for r in rows if r.msisdn not in existing]
        if not new:
            return 0
        now = timezone.now()
        cards = dict(
            Card.objects.filter(iccid__in=[r.iccid for r in new if r.iccid]).values_list(
                "iccid", "pk"
            )
        )
        subscribers = Subscriber.objects.bulk_create(
            Subscriber(
                msisdn=r.msisdn,
                status=r.status,
                import_digest=r.digest,
                card_id=cards.get(r.iccid),
                created=now,
                updated=now,
            )
            for r in new
        )
        segments = {s.name: s.pk for s in _segments({n for r in new for n in r.segments})}
        Subscriber.segments.through.objects.bulk_create(
            Subscriber.segments.through(subscriber_id=s.pk, segment_id=segments[name])
            for s, r in zip(subscribers, new, strict=True)
            for name in r.segments
        )
        CardAssignment.objects.bulk_create(
            CardAssignment(subscriber_id=s.pk, card_id=s.card_id, assigned=now, reason="import")
            for s in subscribers
            if s.card_id
        )
        Card.objects.filter(pk__in=[s.card_id for s in subscribers if s.card_id]).update(
            status=CardStatus.ACTIVE, updated=now
        )
        return len(new)


_IMPORT_KINDS: dict[str, _ImportKindSpec] = {
    ImportKind.CARDS: _CardImport(),
    ImportKind.SUBSCRIBERS: _SubscriberImport(),
}


def _parsed_rows(reader: Any, stream: BinaryIO, errors: list[RowError]) -> Iterable[Any]:
    """Valid rows of a file; bad ones add their errors. Whole-file problems raise."""
    records = iter_csv(stream)
    first = next(records, None)
    if first is None:
        raise CsvFileError("the file is empty", 1)
    reader.read_header(first[1])
    any_row = False
    for line, record in records:
        any_row = True
        parsed = reader.parse(line, record)
        if isinstance(parsed, list):
            errors.extend(parsed)
        else:
            yield parsed
    if not any_row:
        raise CsvFileError("the file has a header but no rows", 2)


def run_import_job(*, actor: Actor, job_id: int) -> ImportJob:
    """Validate the whole file, then (only if every line is good) write it.

    Re-running is harmless: rows already in the database with the same data are counted
    as unchanged, so a job interrupted by a crash completes on its next run.
    """
    job = ImportJob.objects.get(pk=job_id)
    if job.is_finished:
        return job
    job.total_rows = _count_data_lines(job)
    _progress(
        job.pk,
        status=ImportStatus.VALIDATING,
        started=timezone.now(),
        processed_rows=0,
        total_rows=job.total_rows,
    )
    try:
        if job.kind == ImportKind.CARDS and connection.vendor == "postgresql":
            with _progress_reporter(job.pk) as report:
                errors, total, created = card_copy_import.import_cards(job, report)
        else:
            errors, total, created = _import_in_batches(job, _IMPORT_KINDS[job.kind])
    except Exception as exc:
        log.exception("import job %s failed", job.pk)
        _progress(
            job.pk,
            status=ImportStatus.FAILED,
            finished=timezone.now(),
            message=f"failed: {exc}"[:500],
        )
        raise
    if errors:
        errors.sort(key=lambda e: (e.line, e.column))
        _progress(
            job.pk,
            status=ImportStatus.REJECTED,
            finished=timezone.now(),
            total_rows=total,
            error_count=len(errors),
            errors=[e.as_dict() for e in errors[:MAX_STORED_ERRORS]],
            message=f"{len(errors)} error(s); nothing was imported",
        )
        _discard_upload(job)
        job.refresh_from_db()
        record_change(
            actor=actor,
            action=AuditAction.IMPORT,
            instance=job,
            message=f"rejected: {len(errors)} error(s)",
        )
        return job
    _progress(
        job.pk,
        status=ImportStatus.DONE,
        finished=timezone.now(),
        total_rows=total,
        processed_rows=total,
        created_count=created,
        unchanged_count=total - created,
        message=f"{created} created, {total - created} unchanged",
    )
    _discard_upload(job)
    job.refresh_from_db()
    record_change(
        actor=actor,
        action=AuditAction.IMPORT,
        instance=job,
        after=snapshot(job),
        message=job.message,
    )
    return job


def _import_in_batches(job: ImportJob, spec: _ImportKindSpec) -> tuple[list[RowError], int, int]:
    """Any database: a validating pass with batched look-ups, then batched writes."""
    errors: list[RowError] = []
    total = 0
    try:
        with job.file.open("rb") as stream:
            seen: set = set()
            for batch in _batches(_parsed_rows(spec.reader(), stream, errors), IMPORT_BATCH):
                errors.extend(spec.check_batch(batch, seen)[0])
                total += len(batch)
                _progress(job.pk, processed_rows=total)
        total += len({e.line for e in errors})
    except CsvFileError as exc:
        errors.append(RowError(exc.line, "", str(exc)))
    if errors:
        return errors, total, 0
    _progress(job.pk, status=ImportStatus.IMPORTING, total_rows=total, processed_rows=0)
    created = written = 0
    with job.file.open("rb") as stream:
        for batch in _batches(_parsed_rows(spec.reader(), stream, []), IMPORT_BATCH):
            with transaction.atomic():
                created += spec.write_batch(batch)
            written += len(batch)
            _progress(job.pk, processed_rows=written, created_count=created)
    return errors, total, created
