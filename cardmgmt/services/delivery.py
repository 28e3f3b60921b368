"""Delivery services: OTA jobs and their messages, from planning to a verified PoR.

The state machine of DESIGN 3, one message (secured packet) at a time:

    pending --build (counter allocated, packet secured)--> queued --link claims--> submitted
    submitted --all receipts DELIVRD--> delivered --verified PoR OK--> confirmed
    any --PoR error / SW error / failed receipt / timeout--> retried (new counter) or failed
    submitted --claimed, but the link went down before sending any of it--> queued again

The link claims ahead of sending (at most two of its batches) and records SMSC ids and
stored deliver_sm in batches, each kind of database work on its own connection.

Rows are the source of truth: tasks and the SMPP link process only advance them, so a task
run twice or a process killed half-way leaves nothing sent twice with one counter.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from cardmgmt import ota
from cardmgmt.choices import (
    InboundKind,
    InboundVerdict,
    InstallationState,
    OtaJobState,
    OtaMessageState,
    OtaOperation,
)
from cardmgmt.models import (
    AppletVersion,
    Card,
    InboundMessage,
    Installation,
    KeySet,
    OtaJob,
    OtaMessage,
    SmscLink,
    SmsSegment,
)
from cardmgmt.services.inventory import allocate_counter
from portal import crypto
from portal.audit import record_change, snapshot
from portal.context import Actor
from portal.db import planner_settings
from portal.models import AuditAction

log = logging.getLogger(__name__)

__all__ = [
    "RETRY_BACKOFF",
    "Claimed",
    "Inbound",
    "advance_ota_job",
    "advance_ota_jobs",
    "cancel_ota_job",
    "claim_sendable_messages",
    "expire_overdue_messages",
    "process_inbound",
    "process_inbound_batch",
    "record_inbound",
    "record_submit_failure",
    "record_submitted",
    "release_unsent",
    "start_ota_job",
    "start_wap_push_job",
]

# Seconds before attempt n+1 (toolkit busy, failed receipt, lost PoR).
RETRY_BACKOFF = (5, 30, 120, 600)
SW_OK = {0x9000}
RECEIPT_GRACE = datetime.timedelta(seconds=60)
SEALED_SCRIPT = "ota-script"
SW_NOTHING_FOUND = 0x6A88  # referenced data not found
INS_GET_STATUS, INS_DELETE = 0xF2, 0xE4
TASK_ACTOR = Actor.task("cardmgmt.ota")
ACTIVE_STATES = (OtaMessageState.QUEUED, OtaMessageState.SUBMITTED, OtaMessageState.DELIVERED)


def _keyset_for(card: Card) -> KeySet:
    keyset = (
        KeySet.objects.filter(card=card)
        .order_by("kvn")
        .only("id", "kvn", "algorithm", "card_id")
        .first()
    )
    if keyset is None:
        raise ValidationError({"card": f"card {card} has no OTA key set"})
    return keyset


def _operation_plan(
    card: Card,
    operation: str,
    version: AppletVersion | None,
    parameters: dict[str, Any],
    params: ota.CardProfileParams,
) -> ota.ScriptPlan:
    from cardmgmt import otabridge

    try:
        if operation == OtaOperation.LOAD_INSTALL:
            return ota.plan(otabridge.load_and_install(version), params)
        if operation == OtaOperation.DELETE:
            return ota.plan(ota.Delete(bytes.fromhex(version.package_aid)), params)
        if operation == OtaOperation.AUDIT:
            return ota.plan(ota.Audit(p1=int(parameters.get("p1", 0x40))), params)
        if operation in (OtaOperation.PUSH_PARAMS, OtaOperation.TRIGGER_SYNC):
            from cardmgmt.ota import syncapplet

            tar = bytes.fromhex(parameters["tar"])
            if operation == OtaOperation.PUSH_PARAMS:
                apdus = syncapplet.store_record_apdus(bytes.fromhex(parameters["record"]))
            else:
                apdus = [
                    syncapplet.trigger_apdu(
                        mode=parameters.get("mode"),
                        campaign=bytes.fromhex(parameters.get("campaign_ref", "")) or None,
                    )
                ]
            return ota.plan(ota.AppletCommands(tar, tuple(apdus)), params)
    except ota.OtaError as exc:
        raise ValidationError(f"cannot plan {operation} for card {card}: {exc}") from None
    raise ValidationError(f"unknown OTA operation {operation!r}")


@transaction.atomic
def start_ota_job(
    *,
    actor: Actor,
    card: Card,
    operation: str,
    applet_version: AppletVersion | None = None,
    parameters: dict[str, Any] | None = None,
    priority: int = 0,
) -> OtaJob:
    """Plan an operation on one card into ordered messages and queue its first step."""
    from cardmgmt import otabridge

    parameters = dict(parameters or {})
    if operation in (OtaOperation.LOAD_INSTALL, OtaOperation.DELETE) and applet_version is None:
        raise ValidationError({"applet_version": "choose the applet version"})
    subscriber = getattr(card, "subscriber", None)
    if subscriber is None:
        raise ValidationError({"card": f"card {card} has no subscriber (no MSISDN to send to)"})
    keyset = _keyset_for(card)
    params = otabridge.profile_params(card.profile, algorithm=keyset.algorithm, kvn=keyset.kvn)
    script = _operation_plan(card, operation, applet_version, parameters, params)
    # The parameter record carries the device's secret: it is planned from, never stored in
    # clear (not in the job's parameters, its audit entry or the message rows).
    sensitive = parameters.pop("record", None) is not None
    job = OtaJob.objects.create(
        operation=operation,
        card=card,
        applet_version=applet_version,
        parameters=parameters,
        priority=priority,
        requested_by=actor.label,
    )
    OtaMessage.objects.bulk_create(
        OtaMessage(
            job=job,
            step=n,
            description=step.description[:100],
            card=card,
            msisdn=subscriber.msisdn,
            tar=step.tar.hex().upper(),
            kvn=keyset.kvn,
            secured_data=crypto.seal(step.data, SEALED_SCRIPT) if sensitive else step.data,
            sealed=sensitive,
            priority=priority,
        )
        for n, step in enumerate(script.steps)
    )
    if operation == OtaOperation.LOAD_INSTALL:
        _set_installation(card, applet_version, InstallationState.LOADING, "")
    record_change(
        actor=actor,
        action=AuditAction.OPERATE,
        instance=job,
        after=snapshot(job),
        message=f"{job.get_operation_display()}: {len(script.steps)} packet(s), "
        f"{script.sms_count} SMS",
    )
    _enqueue_advance(job.pk)
    return job


def _enqueue_advance(job_id: int, countdown: float = 0) -> None:
    from cardmgmt.tasks import advance_ota_job_task

    chunk = _CHUNK.get()
    if chunk is not None and not countdown:
        chunk.advance.add(job_id)  # one task for the chunk's jobs (`_InboundChunk.flush`)
        return
    transaction.on_commit(
        lambda: advance_ota_job_task.apply_async((job_id,), countdown=countdown or None)
    )


def advance_ota_jobs(*, job_ids: list[int]) -> int:
    """`advance_ota_job` for many jobs (those whose PoRs one inbound chunk confirmed): the
    jobs locked and their messages read in two statements, one transaction for all. If that
    fails, each job goes again in its own transaction, so one bad job holds up no other.
    Returns how many jobs were advanced."""
    try:
        with transaction.atomic():
            jobs = list(
                OtaJob.objects.select_for_update(of=("self",))
                .select_related("card__profile", "applet_version")
                .filter(pk__in=job_ids)
                .exclude(state__in=(OtaJobState.DONE, OtaJobState.FAILED, OtaJobState.CANCELLED))
                .order_by("id")
            )
            messages: dict[int, list[OtaMessage]] = {job.pk: [] for job in jobs}
            for message in OtaMessage.objects.filter(job_id__in=list(messages)).order_by(
                "job_id", "step"
            ):
                messages[message.job_id].append(message)
            with _bound(_ADVANCING, _AdvanceBatch.load(jobs)) as batch:
                for job in jobs:
                    _advance(job, messages[job.pk])
                _update_rows(OtaJob, batch.finished, ["state", "result", "finished"])
            return len(jobs)
    except Exception as exc:
        log.warning("advancing %d OTA jobs together failed (%s); one by one", len(job_ids), exc)
    advanced = 0
    for job_id in job_ids:
        try:
            advance_ota_job(job_id=job_id)
        except OtaJob.DoesNotExist:
            continue
        except Exception:
            log.exception("advancing OTA job %s failed", job_id)
            continue
        advanced += 1
    return advanced


@dataclass
class _AdvanceBatch:
    """One `advance_ota_jobs` call: what its audits read, in two queries instead of two per
    job (the applet versions, the installations of each card audited once in the batch), and
    the jobs it finished, written in one statement at the end."""

    versions: list[AppletVersion]
    installations: dict[int, dict[int, Installation]]
    finished: list[OtaJob] = field(default_factory=list)

    @classmethod
    def load(cls, jobs: list[OtaJob]) -> _AdvanceBatch:
        audited = Counter(job.card_id for job in jobs if job.operation == OtaOperation.AUDIT)
        once = [card_id for card_id, n in audited.items() if n == 1]
        installations: dict[int, dict[int, Installation]] = {card_id: {} for card_id in once}
        if once:
            for installation in Installation.objects.filter(card_id__in=once):
                installations[installation.card_id][installation.applet_version_id] = installation
        versions = (
            list(AppletVersion.objects.all().only("id", "instance_aid", "package_aid"))
            if audited
            else []
        )
        return cls(versions, installations)


_Scoped = TypeVar("_Scoped")
_ADVANCING: contextvars.ContextVar[_AdvanceBatch | None] = contextvars.ContextVar(
    "advance_batch", default=None
)


@contextlib.contextmanager
def _bound(var: contextvars.ContextVar[Any], value: _Scoped) -> Iterator[_Scoped]:
    """`var` holds `value` inside the block (a batch the per-message code looks up)."""
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)


# A message without a TAR is an SMS for the handset itself (a WAP push), not a secured packet
# for an applet: no counter, no keys, no PoR; its delivery receipt is its confirmation.
NO_TAR = ""


def _is_for_handset(message: OtaMessage) -> bool:
    return message.tar == NO_TAR


@transaction.atomic
def start_wap_push_job(
    *,
    actor: Actor,
    card: Card,
    operation: str,
    user_data: list[bytes],
    payload: bytes,
    description: str,
    parameters: dict[str, Any] | None = None,
    priority: int = 0,
) -> OtaJob:
    """Queue SMS for the handset of `card`'s subscriber (WAP push: `user_data` is the TP-UD of
    each SMS, UDH with application ports included) through the SMPP link, recorded as a job
    of one message. The link submits it as 8-bit data, not as a (U)SIM data download; the job
    is done when every SMS is delivered. `payload` (what the SMS carry) is kept for the record.
    """
    subscriber = getattr(card, "subscriber", None)
    if subscriber is None or not subscriber.msisdn:
        raise ValidationError({"card": f"card {card} has no subscriber (no MSISDN to send to)"})
    if not user_data:
        raise ValidationError("nothing to send")
    now = timezone.now()
    job = OtaJob.objects.create(
        operation=operation,
        card=card,
        parameters=dict(parameters or {}),
        priority=priority,
        requested_by=actor.label,
        state=OtaJobState.RUNNING,
    )
    OtaMessage.objects.create(
        job=job,
        step=0,
        description=description[:100],
        card=card,
        msisdn=subscriber.msisdn,
        tar=NO_TAR,
        kvn=0,
        secured_data=payload,
        priority=priority,
        state=OtaMessageState.QUEUED,
        attempt=1,
        user_data=[ud.hex() for ud in user_data],
        queued_at=now,
        history=[{"attempt": 1, "at": now.isoformat()}],
    )
    record_change(
        actor=actor,
        action=AuditAction.OPERATE,
        instance=job,
        after=snapshot(job),
        message=f"{description}: {len(user_data)} SMS to the handset of {subscriber.msisdn}",
    )
    return job


def _requeue_for_handset(message: OtaMessage) -> None:
    """Another attempt of an SMS for the handset: the same octets (no counter to renew)."""
    message.attempt += 1
    message.state = OtaMessageState.QUEUED
    message.queued_at = timezone.now()
    message.submitted_at = message.delivered_at = message.next_attempt_at = None
    message.history = [
        *message.history,
        {"attempt": message.attempt, "at": message.queued_at.isoformat()},
    ]
    message.save()


def _set_installation(card: Card, version: AppletVersion, state: str, source: str) -> None:
    Installation.objects.update_or_create(
        card=card,
        applet_version=version,
        defaults={"state": state, "confirmed_by": source, "updated": timezone.now()},
    )


def _build(message: OtaMessage, keys: ota.KeySet, params: ota.CardProfileParams) -> None:
    """Spend a counter and secure the packet: after this the message may be sent once."""
    counter = allocate_counter(card_id=message.card_id, kvn=message.kvn)
    packet = ota.encode_command(
        ota.SecuredCommandPacket(
            params.spi,
            params.kic,
            params.kid,
            bytes.fromhex(message.tar),
            counter,
            script_of(message),
        ),
        keys.kic_key,
        keys.kid_key,
        cmac_length=params.cmac_length,
    )
    # The counter's low bits as concatenation reference: concurrent packets differ.
    segments = ota.segment_packet(packet, reference=counter & 0xFF)
    message.counter = counter
    message.attempt += 1
    message.user_data = [s.hex() for s in segments]
    message.state = OtaMessageState.QUEUED
    message.queued_at = timezone.now()
    message.submitted_at = message.delivered_at = message.next_attempt_at = None
    message.history = [
        *message.history,
        {"attempt": message.attempt, "counter": counter, "at": message.queued_at.isoformat()},
    ]
    message.save()


def advance_ota_job(*, job_id: int) -> OtaJob:
    """Move a job on: build the steps that may go now, or finish the job."""
    with transaction.atomic():
        # The job's row only: a plain FOR UPDATE would lock the card and its profile too, and
        # every job of cards sharing a profile would wait for the others.
        job = (
            OtaJob.objects.select_for_update(of=("self",))
            .select_related("card__profile")
            .get(pk=job_id)
        )
        if job.is_finished:
            return job
        return _advance(job, list(job.messages.order_by("step")))


def _advance(job: OtaJob, messages: list[OtaMessage]) -> OtaJob:
    from cardmgmt import otabridge

    failed = next((m for m in messages if m.state == OtaMessageState.FAILED), None)
    if failed is not None:
        return _finish(
            job,
            OtaJobState.FAILED,
            f"step {failed.step + 1} ({failed.description}): {failed.failure_reason}",
            messages,
        )
    if all(m.state == OtaMessageState.CONFIRMED for m in messages):
        return _finish(job, OtaJobState.DONE, _outcome(job, messages), messages)
    now = timezone.now()
    due = [
        m
        for m in messages
        if m.state == OtaMessageState.PENDING
        and (m.next_attempt_at is None or m.next_attempt_at <= now)
    ]
    if not job.card.profile.pipelined:
        # In order: the next step only once every earlier one is confirmed.
        first_open = next(m for m in messages if m.state != OtaMessageState.CONFIRMED)
        due = [m for m in due if m is first_open]
    for message in [m for m in due if _is_for_handset(m)]:
        _requeue_for_handset(message)
    due = [m for m in due if not _is_for_handset(m)]
    if due:
        keyset = KeySet.objects.get(card=job.card, kvn=due[0].kvn)
        keys = otabridge.card_keys(keyset)
        params = otabridge.profile_params(
            job.card.profile, algorithm=keyset.algorithm, kvn=keyset.kvn
        )
        for message in due:
            _build(message, keys, params)
    if job.state == OtaJobState.QUEUED:
        job.state = OtaJobState.RUNNING
        job.save(update_fields=["state"])
    waiting = [
        m.next_attempt_at
        for m in messages
        if m.state == OtaMessageState.PENDING and m.next_attempt_at and m.next_attempt_at > now
    ]
    if waiting:
        _enqueue_advance(job.pk, countdown=(min(waiting) - now).total_seconds())
    return job


def _finish(job: OtaJob, state: str, result: str, messages: list[OtaMessage]) -> OtaJob:
    before = snapshot(job)
    job.state = state
    job.result = result[:500]
    job.finished = timezone.now()
    batch = _ADVANCING.get()
    if batch is not None:
        batch.finished.append(job)  # written with the batch's other jobs
    else:
        job.save(update_fields=["state", "result", "finished"])
    if any(m.state == OtaMessageState.PENDING for m in messages):  # read under the job's lock
        job.messages.filter(state=OtaMessageState.PENDING).update(state=OtaMessageState.CANCELLED)
    if state == OtaJobState.FAILED and job.operation == OtaOperation.LOAD_INSTALL:
        _set_installation(job.card, job.applet_version, InstallationState.FAILED, "por")
    record_change(
        actor=TASK_ACTOR,
        action=AuditAction.UPDATE,
        instance=job,
        before=before,
        after=snapshot(job),
        message=job.result,
    )
    return job


def _outcome(job: OtaJob, messages: list[OtaMessage]) -> str:
    """Apply what a completed job proves to the installations; say it in words."""
    if job.operation == OtaOperation.LOAD_INSTALL:
        _set_installation(job.card, job.applet_version, InstallationState.INSTALLED, "por")
        return f"{job.applet_version} installed"
    if job.operation == OtaOperation.DELETE:
        for version in AppletVersion.objects.filter(package_aid=job.applet_version.package_aid):
            Installation.objects.filter(card=job.card, applet_version=version).update(
                state=InstallationState.DELETED, confirmed_by="por", updated=timezone.now()
            )
        return f"{job.applet_version.package_aid} deleted"
    if job.operation == OtaOperation.PUSH_PARAMS and "version" in job.parameters:
        _record_card_version(job)
        return f"the card holds parameter record version {job.parameters['version']}"
    if job.operation == OtaOperation.AUDIT:
        return _apply_audit(job, bytes.fromhex(messages[-1].por_data))
    return messages[-1].por_text


def _record_card_version(job: OtaJob) -> None:
    from sync.models import SyncProfile
    from sync.services import record_card_version

    profile = SyncProfile.objects.filter(subscriber__card=job.card).first()
    if profile is not None and int(job.parameters["version"]) <= profile.version:
        record_card_version(
            actor=TASK_ACTOR, profile=profile, version=int(job.parameters["version"])
        )


def _apply_audit(job: OtaJob, data: bytes) -> str:
    """GET STATUS of applications: the installations of this card become what it reports."""
    try:
        entries = ota.parse_get_status(data, int(job.parameters.get("p1", 0x40)))
    except ota.OtaError as exc:
        return f"audit answer unreadable: {exc}"
    on_card = {e.aid.hex().upper() for e in entries}
    on_card |= {e.load_file_aid.hex().upper() for e in entries if e.load_file_aid}
    now = timezone.now()
    found = []
    batch = _ADVANCING.get()
    if batch is not None and job.card_id in batch.installations:
        installed = batch.installations.pop(job.card_id)  # read once, for this job only
    else:
        installed = {i.applet_version_id: i for i in Installation.objects.filter(card=job.card)}
    versions = (
        batch.versions
        if batch is not None
        else AppletVersion.objects.all().only("id", "instance_aid", "package_aid")
    )
    for version in versions:
        present = version.instance_aid in on_card
        current = installed.get(version.pk)
        if present and (current is None or current.state != InstallationState.INSTALLED):
            _set_installation(job.card, version, InstallationState.INSTALLED, "audit")
        elif (
            not present
            and current is not None
            and current.state in (InstallationState.INSTALLED, InstallationState.LOADING)
        ):
            Installation.objects.filter(pk=current.pk).update(
                state=InstallationState.DELETED, confirmed_by="audit", updated=now
            )
        if present:
            found.append(str(version))
    return f"audit: {len(entries)} registry entr{'y' if len(entries) == 1 else 'ies'}" + (
        f"; installed: {', '.join(found)}" if found else ""
    )


@transaction.atomic
def cancel_ota_job(*, actor: Actor, job: OtaJob) -> OtaJob:
    job = OtaJob.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        return job
    before = snapshot(job)
    job.messages.filter(state__in=(OtaMessageState.PENDING, OtaMessageState.QUEUED)).update(
        state=OtaMessageState.CANCELLED
    )
    job.state = OtaJobState.CANCELLED
    job.finished = timezone.now()
    job.result = f"cancelled by {actor.label}"
    job.save(update_fields=["state", "finished", "result"])
    record_change(
        actor=actor,
        action=AuditAction.UPDATE,
        instance=job,
        before=before,
        after=snapshot(job),
        message="cancelled",
    )
    return job


# --- the SMPP link process ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """What the link needs of a claimed message to send it."""

    pk: int
    attempt: int
    msisdn: str
    user_data: list[str]


_CLAIM_SQL = """
UPDATE cardmgmt_otamessage SET state = %s, submitted_at = %s, link_id = %s
WHERE id = ANY(ARRAY(
    SELECT id FROM cardmgmt_otamessage WHERE state = %s
    ORDER BY priority, id LIMIT %s FOR UPDATE SKIP LOCKED
))
RETURNING priority, id, attempt, msisdn, user_data
"""


# The claim reads `otamessage_sendable` in order and stops after `limit` rows. Left to the
# statistics, a table that grew by a campaign since it was last analysed (a million rows
# COPYed in a minute) is planned as a bitmap scan of every queued row and a sort of them all
# under the row locks (no top-N sort below LockRows; it spills to disk): 100-200 ms per claim
# with a few hundred thousand queued, one database core busy with the link's claims.
_CLAIM_PLAN = {"enable_sort": "off"}


def claim_sendable_messages(*, link: SmscLink, limit: int) -> list[Claimed]:
    """Take queued messages for one link (single-card operations first) and mark them
    submitted before anything is sent: a crash after this never resends their counter.
    On PostgreSQL one statement (skip-locked select and update, planned as an ordered index
    scan whatever the statistics say), so link processes side by side never claim the same
    message; `id = ANY(ARRAY(...))` keeps the update on the primary
    key (with `IN (...)` the planner hashes a scan of the whole table)."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            planner_settings(cursor, **_CLAIM_PLAN),
        ):
            cursor.execute(
                _CLAIM_SQL,
                [OtaMessageState.SUBMITTED, now, link.pk, OtaMessageState.QUEUED, limit],
            )
            rows = sorted(cursor.fetchall(), key=lambda row: (row[0], row[1]))
        return [
            Claimed(pk, attempt, msisdn, json.loads(data) if isinstance(data, str) else data)
            for _, pk, attempt, msisdn, data in rows
        ]
    with transaction.atomic():
        queryset = OtaMessage.objects.filter(state=OtaMessageState.QUEUED).order_by(
            "priority", "id"
        )
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True)
        rows = list(queryset.values_list("id", "attempt", "msisdn", "user_data")[:limit])
        if rows:
            OtaMessage.objects.filter(pk__in=[row[0] for row in rows]).update(
                state=OtaMessageState.SUBMITTED, submitted_at=now, link=link
            )
        return [Claimed(*row) for row in rows]


def record_submitted(*, submissions: list[tuple[int, int, list[str]]]) -> None:
    """The SMSC message ids of each (message, attempt): one insert for a whole batch."""
    now = timezone.now()
    rows = [
        (message_id, attempt, i, smpp_id)
        for message_id, attempt, smpp_ids in submissions
        for i, smpp_id in enumerate(smpp_ids)
    ]
    if not rows:
        return
    if connection.vendor == "postgresql":
        # unnest: one statement and no model instance per row.
        message_ids, attempts, indexes, smpp_ids = (
            list(column) for column in zip(*rows, strict=True)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO cardmgmt_smssegment"
                ' (message_id, attempt, "index", smpp_id, submitted, receipt_state)'
                " SELECT m, a, i, s, %s, '' FROM unnest(%s::bigint[], %s::int[], %s::int[],"
                " %s::text[]) AS t(m, a, i, s)",
                [now, message_ids, attempts, indexes, smpp_ids],
            )
        return
    SmsSegment.objects.bulk_create(
        SmsSegment(message_id=m, attempt=a, index=i, smpp_id=s, submitted=now)
        for m, a, i, s in rows
    )


def release_unsent(*, claimed: list[tuple[int, int]]) -> int:
    """Claimed messages (message, attempt) the link never handed to the SMSC (the link was
    down): queued again as they are, since their counter never left. Only while still
    submitted with that attempt: the PoR timeout may have moved them on meanwhile."""
    released = 0
    for message_id, attempt in claimed:
        released += OtaMessage.objects.filter(
            pk=message_id, attempt=attempt, state=OtaMessageState.SUBMITTED
        ).update(state=OtaMessageState.QUEUED, submitted_at=None, link=None)
    return released


def record_submit_failure(*, message_id: int, attempt: int, reason: str) -> None:
    """The SMSC refused a segment (or the link dropped): retry the message with a new counter."""
    with transaction.atomic():
        message = OtaMessage.objects.select_for_update().get(pk=message_id)
        if message.attempt == attempt and message.state == OtaMessageState.SUBMITTED:
            _retry_or_fail(message, f"SMSC: {reason}")


def _retry_or_fail(message: OtaMessage, reason: str, *, retry: bool = True) -> None:
    now = timezone.now()
    # One history entry per attempt (written when the packet was built): note how it ended.
    last = message.history[-1] if message.history else {}
    if last.get("attempt") != message.attempt:
        last = {"attempt": message.attempt, "counter": message.counter}
        message.history = [*message.history, last]
    last.update(failed=reason[:200], failed_at=now.isoformat())
    message.history = [*message.history[:-1], last]
    message.failure_reason = reason[:300]
    if retry and message.attempt < message.max_attempts:
        delay = RETRY_BACKOFF[min(message.attempt - 1, len(RETRY_BACKOFF) - 1)]
        message.state = OtaMessageState.PENDING
        message.next_attempt_at = now + datetime.timedelta(seconds=delay)
        message.save()
        _enqueue_advance(message.job_id, countdown=delay)
    else:
        message.state = OtaMessageState.FAILED
        message.save()
        _enqueue_advance(message.job_id)


@dataclass(frozen=True)
class Inbound:
    """A deliver_sm as the link received it."""

    source_addr: str
    payload: bytes
    is_receipt: bool
    receipted_id: str = ""
    receipt_state: str = ""


def _inbound_kind(message: Inbound) -> str:
    if message.is_receipt:
        return InboundKind.RECEIPT
    return InboundKind.POR if message.payload[:3] == b"\x02\x71\x00" else InboundKind.OTHER


def record_inbound(*, link: SmscLink | None, messages: list[Inbound]) -> list[int]:
    """Store what the SMSC delivered, a batch at a time, and let workers process it
    (card keys stay in the workers). Returns once it is committed: only then may the link
    acknowledge the deliver_sm."""
    from cardmgmt.tasks import process_inbound_batch_task

    with transaction.atomic():
        if connection.vendor == "postgresql" and messages:
            ids = _insert_inbound(link, messages)
        else:
            rows = [
                InboundMessage(
                    link=link,
                    kind=_inbound_kind(m),
                    source_addr=m.source_addr[:21],
                    payload=m.payload,
                    receipted_id=m.receipted_id[:65],
                    receipt_state=m.receipt_state[:20],
                )
                for m in messages
            ]
            ids = [row.pk for row in InboundMessage.objects.bulk_create(rows)]
        transaction.on_commit(lambda: process_inbound_batch_task.delay(ids))
    return ids


def _insert_inbound(link: SmscLink | None, messages: list[Inbound]) -> list[int]:
    """One INSERT ... SELECT FROM unnest for a whole batch (ids in the order of `messages`),
    its columns built straight from the messages: a model instance per row would cost more
    than the insert's share of the row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cardmgmt_inboundmessage (link_id, kind, source_addr, payload,"
            " receipted_id, receipt_state, received, verdict, detail)"
            " SELECT %s, k, s, p, r, st, %s, %s, '' FROM unnest(%s::text[], %s::text[],"
            " %s::bytea[], %s::text[], %s::text[]) WITH ORDINALITY AS t(k, s, p, r, st, n)"
            " ORDER BY n RETURNING id",
            [
                link.pk if link is not None else None,
                timezone.now(),
                InboundVerdict.PENDING,
                [str(_inbound_kind(m)) for m in messages],
                [m.source_addr[:21] for m in messages],
                [bytes(m.payload) for m in messages],
                [m.receipted_id[:65] for m in messages],
                [m.receipt_state[:20] for m in messages],
            ],
        )
        return sorted(row[0] for row in cursor.fetchall())


class CardKeys:
    """The keys and parameters of (card, KVN) for PoR checks, unsealed once per batch."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], tuple[ota.CardProfileParams, ota.KeySet]] = {}

    def _add(self, message: OtaMessage, keyset: KeySet) -> tuple[ota.CardProfileParams, Any]:
        from cardmgmt import otabridge

        params = otabridge.profile_params(
            message.card.profile, algorithm=keyset.algorithm, kvn=keyset.kvn
        )
        entry = self._entries[(message.card_id, message.kvn)] = (
            params,
            otabridge.card_keys(keyset),
        )
        return entry

    def preload(self, messages: list[OtaMessage]) -> None:
        """The key sets of all these messages' cards in one query."""
        missing = {
            (m.card_id, m.kvn): m for m in messages if (m.card_id, m.kvn) not in self._entries
        }
        if not missing:
            return
        for keyset in KeySet.objects.filter(card_id__in={card for card, _kvn in missing}):
            message = missing.get((keyset.card_id, keyset.kvn))
            if message is not None:
                self._add(message, keyset)

    def get(self, message: OtaMessage) -> tuple[ota.CardProfileParams, ota.KeySet]:
        entry = self._entries.get((message.card_id, message.kvn))
        if entry is None:
            keyset = KeySet.objects.get(card_id=message.card_id, kvn=message.kvn)
            entry = self._add(message, keyset)
        return entry


@dataclass
class _InboundChunk:
    """What one chunk of inbound messages touches, read in a few queries before and written
    in a few after, instead of a handful of statements per deliver_sm: the segments its
    receipts name, the messages those and its PoRs may match (locked in one statement, in
    id order), the rows changed, and the jobs to advance (one task for the chunk).

    Every step still sees the changes of the steps before it in the chunk: they share these
    objects, as they shared the rows of one transaction."""

    segments_by_smpp_id: dict[str, SmsSegment] = field(default_factory=dict)
    segments_of: dict[tuple[int, int], list[SmsSegment]] = field(default_factory=dict)
    messages: dict[int, OtaMessage] = field(default_factory=dict)
    in_flight: dict[tuple[str, str], list[OtaMessage]] = field(default_factory=dict)
    changed_segments: dict[int, SmsSegment] = field(default_factory=dict)
    changed_messages: dict[int, OtaMessage] = field(default_factory=dict)
    message_fields: set[str] = field(default_factory=set)
    advance: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, rows: list[InboundMessage], keys: CardKeys) -> _InboundChunk:
        from django.db.models import Q

        chunk = cls()
        receipted = {r.receipted_id for r in rows if r.kind == InboundKind.RECEIPT}
        if receipted:
            # The latest segment of each id wins, as in `_process_receipt`.
            for segment in SmsSegment.objects.filter(smpp_id__in=receipted).order_by("id"):
                chunk.segments_by_smpp_id[segment.smpp_id] = segment
        message_ids = {s.message_id for s in chunk.segments_by_smpp_id.values()}
        addresses = {
            (_msisdn(r.source_addr), _por_tar(bytes(r.payload)))
            for r in rows
            if r.kind == InboundKind.POR
        }
        query = Q(pk__in=message_ids)
        if addresses:
            query |= Q(msisdn__in={a for a, _t in addresses}, state__in=ACTIVE_STATES)
        if not message_ids and not addresses:
            return chunk
        locked = (
            OtaMessage.objects.select_for_update(of=("self",))  # not the card's profile
            .select_related("card__profile")
            .filter(query)
            .order_by("id")
        )
        for message in locked:
            chunk.messages[message.pk] = message
            address = (message.msisdn, message.tar)
            if message.state in ACTIVE_STATES and address in addresses:
                chunk.in_flight.setdefault(address, []).append(message)
        if message_ids:
            named = {s.pk: s for s in chunk.segments_by_smpp_id.values()}
            for segment in SmsSegment.objects.filter(message_id__in=message_ids).order_by("id"):
                segment = named.get(segment.pk, segment)
                chunk.segments_of.setdefault((segment.message_id, segment.attempt), []).append(
                    segment
                )
            for smpp_id, segment in list(chunk.segments_by_smpp_id.items()):
                if segment.message_id in chunk.messages:
                    segment.message = chunk.messages[segment.message_id]
                else:  # deleted meanwhile: as if the id were unknown
                    del chunk.segments_by_smpp_id[smpp_id]
        keys.preload([m for group in chunk.in_flight.values() for m in group[:20]])
        return chunk

    def candidates(self, msisdn: str, tar: str) -> list[OtaMessage]:
        """Messages in flight to (MSISDN, TAR) now, oldest first (at most 20)."""
        group = self.in_flight.get((msisdn, tar), [])
        return [m for m in group if m.state in ACTIVE_STATES][:20]

    def flush(self) -> None:
        _update_rows(
            SmsSegment, list(self.changed_segments.values()), ["receipt_state", "receipt_at"]
        )
        _update_rows(OtaMessage, list(self.changed_messages.values()), sorted(self.message_fields))
        if self.advance:
            from cardmgmt.tasks import advance_ota_jobs_task

            job_ids = sorted(self.advance)
            transaction.on_commit(lambda: advance_ota_jobs_task.delay(job_ids))


def _update_rows(model: type, rows: list[Any], fields: list[str]) -> None:
    """Write `fields` of `rows` back: on PostgreSQL one UPDATE from unnest'ed arrays (Django's
    bulk_update builds a CASE per field and row, slower to compose than to run)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, fields)
        return
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    rows = sorted(rows, key=lambda row: row.pk)
    arrays = [[row.pk for row in rows]] + [
        [getattr(row, column.attname) for row in rows] for column in columns
    ]
    names = ", ".join(f'"{column.column}"' for column in columns)
    sets = ", ".join(f'"{column.column}" = v."{column.column}"' for column in columns)
    casts = ", ".join(f"%s::{column.db_type(connection)}[]" for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {meta.db_table} AS t SET {sets} "
            f'FROM unnest(%s::bigint[], {casts}) AS v(id, {names}) WHERE t."id" = v.id',
            arrays,
        )


_CHUNK: contextvars.ContextVar[_InboundChunk | None] = contextvars.ContextVar(
    "inbound_chunk", default=None
)


def _save_message(message: OtaMessage, fields: list[str]) -> None:
    """Save now, or with the rest of the chunk being processed."""
    chunk = _CHUNK.get()
    if chunk is None:
        message.save(update_fields=fields)
        return
    chunk.changed_messages[message.pk] = message
    chunk.message_fields.update(fields)


def process_inbound(*, inbound_id: int, keys: CardKeys | None = None) -> InboundMessage:
    with transaction.atomic():
        inbound = InboundMessage.objects.select_for_update().get(pk=inbound_id)
        if inbound.verdict != InboundVerdict.PENDING:
            return inbound
        _process(inbound, keys or CardKeys())
        inbound.save()
        return inbound


def _process(inbound: InboundMessage, keys: CardKeys) -> None:
    if inbound.kind == InboundKind.RECEIPT:
        _process_receipt(inbound)
    elif inbound.kind == InboundKind.POR:
        _process_por(inbound, keys)
    else:
        inbound.verdict = InboundVerdict.UNMATCHED
        inbound.detail = "not a PoR (no UDH 02 71 00)"


def _process_chunk(inbound_ids: list[int], keys: CardKeys) -> list[InboundMessage]:
    """Several inbound messages in one transaction: read in a few queries, written in a few."""
    with transaction.atomic():
        rows = list(
            InboundMessage.objects.select_for_update()
            .filter(pk__in=inbound_ids, verdict=InboundVerdict.PENDING)
            .order_by("pk")
        )
        with _bound(_CHUNK, _InboundChunk.load(rows, keys)) as chunk:
            for inbound in rows:
                _process(inbound, keys)
            chunk.flush()
        _update_rows(InboundMessage, rows, ["verdict", "detail", "message"])
        return rows


def process_inbound_batch(*, inbound_ids: list[int], chunk: int = 100) -> list[int]:
    """Process what the link stored in one go, `chunk` messages per transaction (one commit
    instead of one each); card keys are unsealed once per card for the whole batch. A chunk
    that fails (a deadlock with another worker, say) is rolled back whole and processed again
    one message per transaction, so one bad message holds up no other. Returns the ids still
    pending: receipts that overtook the record of their submit."""
    keys = CardKeys()
    later: list[int] = []
    for start in range(0, len(inbound_ids), chunk):
        part = inbound_ids[start : start + chunk]
        try:
            done = _process_chunk(part, keys)
        except Exception as exc:
            log.warning("inbound %s..%s together failed (%s); one by one", part[0], part[-1], exc)
            done = [process_inbound(inbound_id=i, keys=keys) for i in part]
        later += [m.pk for m in done if m.verdict == InboundVerdict.PENDING]
    return later


_DELIVERED = {"DELIVERED", "DELIVRD", "2"}


def _process_receipt(inbound: InboundMessage) -> None:
    chunk = _CHUNK.get()
    if chunk is not None:
        segment = chunk.segments_by_smpp_id.get(inbound.receipted_id)
    else:
        segment = (
            SmsSegment.objects.select_related("message")
            .filter(smpp_id=inbound.receipted_id)
            .order_by("-id")
            .first()
        )
    if segment is None:
        if timezone.now() - inbound.received < RECEIPT_GRACE:
            # The receipt can overtake the link's record of the submit: look again shortly.
            inbound.detail = "message id not recorded yet"
            return
        inbound.verdict, inbound.detail = InboundVerdict.UNMATCHED, "unknown message id"
        return
    inbound.verdict, inbound.message = InboundVerdict.MATCHED, segment.message
    segment.receipt_state, segment.receipt_at = inbound.receipt_state, timezone.now()
    if chunk is not None:
        chunk.changed_segments[segment.pk] = segment
        message = chunk.messages[segment.message_id]
    else:
        segment.save(update_fields=["receipt_state", "receipt_at"])
        message = OtaMessage.objects.select_for_update().get(pk=segment.message_id)
    if segment.attempt != message.attempt or message.state not in (
        OtaMessageState.SUBMITTED,
        OtaMessageState.DELIVERED,
    ):
        inbound.detail = "receipt for an earlier attempt"
        return
    if inbound.receipt_state.upper() not in _DELIVERED:
        # A card that answers the SMS-PP download with 93 00 (toolkit busy) or an error SW
        # makes the handset return RP-ERROR: the receipt fails though the card saw the SMS.
        inbound.detail = f"delivery failed: {inbound.receipt_state}"
        _retry_or_fail(message, f"delivery receipt {inbound.receipt_state}")
        return
    if message.state != OtaMessageState.SUBMITTED:
        return
    if chunk is not None:
        segments = chunk.segments_of.get((message.pk, message.attempt), [])
        states = [s.receipt_state for s in segments]
    else:
        states = list(
            SmsSegment.objects.filter(message=message, attempt=message.attempt).values_list(
                "receipt_state", flat=True
            )
        )
    if len(states) == len(message.user_data) and all(state in _DELIVERED for state in states):
        message.state, message.delivered_at = OtaMessageState.DELIVERED, timezone.now()
        if _is_for_handset(message):
            # No applet answers a WAP push: delivered to the handset is the end of it.
            message.state, message.confirmed_at = OtaMessageState.CONFIRMED, message.delivered_at
            message.por_text = "delivered to the handset (no PoR for a WAP push)"
            _save_message(message, ["state", "delivered_at", "confirmed_at", "por_text"])
            _enqueue_advance(message.job_id)
            return
        _save_message(message, ["state", "delivered_at"])


def _msisdn(source_addr: str) -> str:
    # Cards answer from their MSISDN's digits; the inventory keeps E.164 with a '+'.
    return source_addr if source_addr.startswith("+") else "+" + source_addr.lstrip("0")


def _por_tar(payload: bytes) -> str:
    try:
        return ota.decode_por(payload).tar.hex().upper()  # header read: TAR in clear
    except ota.OtaError:
        return payload[6:9].hex().upper() if len(payload) >= 9 else ""


def _process_por(inbound: InboundMessage, keys: CardKeys) -> None:
    """Match a PoR on (MSISDN, TAR, counter); the counter may be ciphered, so each candidate
    card's keys are tried. A PoR that verifies with none is suspicious and trusted nowhere.

    Error PoRs (status not OK) often come back unsecured with CNTR 0 or a counter the card
    deciphered with a wrong key (ota.md 1.6): they are applied to the oldest message in
    flight to that TAR as a failure, never as a confirmation.
    """
    payload = bytes(inbound.payload)
    msisdn = _msisdn(inbound.source_addr)
    tar = _por_tar(payload)
    chunk = _CHUNK.get()
    if chunk is not None:
        candidates = chunk.candidates(msisdn, tar)
    else:
        candidates = list(
            OtaMessage.objects.select_for_update(of=("self",))  # not the card's profile
            .select_related("card__profile")
            .filter(msisdn=msisdn, tar=tar, state__in=ACTIVE_STATES)
            .order_by("id")[:20]
        )
    errors = []
    unsecured_error = None
    for message in candidates:
        params, card_keys = keys.get(message)
        try:
            por = ota.decode_por(
                payload,
                spi=params.spi,
                kic=params.kic,
                kid=params.kid,
                keys=card_keys,
                expected_tar=bytes.fromhex(message.tar),
            )
        except ota.OtaError as exc:
            errors.append(str(exc))
            continue
        if por.cntr == message.counter and (por.verified or por.status != ota.PorStatus.OK):
            return _matched(inbound, message, por)
        if por.status != ota.PorStatus.OK and unsecured_error is None:
            unsecured_error = (message, por)
        errors.append(f"counter {por.cntr} is not {message.counter}")
    if unsecured_error is not None:
        return _matched(inbound, *unsecured_error)
    inbound.verdict = InboundVerdict.SUSPICIOUS if candidates else InboundVerdict.UNMATCHED
    inbound.detail = ("; ".join(errors) or f"no message in flight to TAR {tar}")[:300]
    log.warning("PoR from %s for TAR %s not trusted: %s", msisdn, tar, inbound.detail)
    return None


def _matched(inbound: InboundMessage, message: OtaMessage, por: ota.ResponsePacket) -> None:
    inbound.verdict, inbound.message = InboundVerdict.MATCHED, message
    inbound.detail = ota.describe_por(por)[:300]
    _apply_por(message, por)


def script_of(message: OtaMessage) -> bytes:
    """The message's APDU script in clear (unsealed here, in the worker, when sealed)."""
    data = bytes(message.secured_data)
    return crypto.unseal(data, SEALED_SCRIPT) if message.sealed else data


def _instruction(message: OtaMessage) -> int | None:
    data = script_of(message)
    return data[1] if len(data) >= 2 else None


def _apply_por(message: OtaMessage, por: ota.ResponsePacket) -> None:
    now = timezone.now()
    message.por_status = int(por.status)
    message.por_text = ota.describe_por(por)[:200]
    sw = None
    if por.additional_data:
        try:
            result = ota.parse_compact_result(por.additional_data)
            sw, message.por_sw, message.por_data = result.sw, result.sw_hex, result.data.hex()
        except ota.OtaError:
            message.por_data = por.additional_data.hex()[:600]
    if por.status != ota.PorStatus.OK:
        # Security failures will not get better with a new counter except "counter low".
        retry = por.status in (ota.PorStatus.COUNTER_LOW, ota.PorStatus.MORE_TIME)
        _retry_or_fail(message, message.por_text, retry=retry)
        return
    if sw == SW_NOTHING_FOUND and _instruction(message) in (INS_GET_STATUS, INS_DELETE):
        # GET STATUS with no matching entry, DELETE of what is not there: the card's state
        # is known, which is what the step was for.
        sw = 0x9000
        message.por_data = ""
    if sw is not None and sw not in SW_OK and sw >> 8 != 0x61:
        _retry_or_fail(message, f"{message.por_text}: command refused", retry=False)
        return
    message.state, message.confirmed_at = OtaMessageState.CONFIRMED, now
    message.failure_reason = ""
    _save_message(message, _POR_FIELDS)
    _enqueue_advance(message.job_id)


# What `_apply_por` sets on a confirmed message.
_POR_FIELDS = [
    "por_status",
    "por_text",
    "por_sw",
    "por_data",
    "state",
    "confirmed_at",
    "failure_reason",
]


def expire_overdue_messages(*, now: datetime.datetime | None = None) -> int:
    """Messages whose PoR has not come within the profile's timeout: retry with a new counter."""
    now = now or timezone.now()
    expired = 0
    overdue = (
        OtaMessage.objects.filter(state__in=(OtaMessageState.SUBMITTED, OtaMessageState.DELIVERED))
        .select_related("card__profile")
        .only("id", "submitted_at", "card__profile__por_timeout")
    )
    for message in overdue.iterator(chunk_size=500):
        limit = message.submitted_at + datetime.timedelta(seconds=message.card.profile.por_timeout)
        if limit > now:
            continue
        with transaction.atomic():
            locked = OtaMessage.objects.select_for_update().get(pk=message.pk)
            if locked.state in (OtaMessageState.SUBMITTED, OtaMessageState.DELIVERED):
                _retry_or_fail(locked, "no PoR within the timeout")
                expired += 1
    return expired
