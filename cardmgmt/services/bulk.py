"""OTA jobs for many cards at once: the campaign path (docs/campaigns.md, "The bulk path").

`start_ota_job` costs a handful of queries per card; a campaign chunk of N cards costs a
handful of statements in all:

1. one SELECT of the cards' first key sets (KVN, algorithm);
2. planning per (card profile, algorithm, KVN) from a cache (per card only where the data
   differs, e.g. a subscriber's sync parameter record);
3. one `UPDATE keyset SET counter = counter + 1 ... RETURNING` allocating every counter of
   the chunk (the row locks serialise it against single-card operations; the values are
   committed with the jobs, so a rolled-back chunk spent nothing that went out);
4. keys unsealed and packets secured in one Python loop (the only other place that unseals
   keys besides `otabridge`, and it runs in the worker only);
5. OtaJob and OtaMessage rows written with COPY on PostgreSQL (ids drawn from the sequence
   first), `bulk_create` elsewhere.

Step 0 of each job is built and queued here; later steps (load and install) stay `pending`
and the existing per-job machinery (`advance_ota_job`, run on every confirmed PoR) builds
them with fresh counters. The caller writes one audit entry per chunk.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from itertools import groupby
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from cardmgmt import ota
from cardmgmt.choices import InstallationState, OtaJobState, OtaMessageState, OtaOperation
from cardmgmt.models import AppletVersion, CardProfile, Installation, KeySet, OtaJob, OtaMessage
from portal import crypto

__all__ = ["BulkResult", "BulkTarget", "plan_bulk_jobs"]

MAX_ATTEMPTS = 3


@dataclass
class BulkTarget:
    """One card to plan for. `key` is the caller's identifier (e.g. the subscriber id)."""

    key: int
    card_id: int
    msisdn: str
    profile_id: int
    # Per-card input for `plan_for` (e.g. the parameter record); None: same for every card.
    data: Any = None


@dataclass
class BulkResult:
    jobs: dict[int, int] = field(default_factory=dict)  # key -> OtaJob id
    skipped: dict[int, str] = field(default_factory=dict)  # key -> reason
    messages: int = 0  # secured packets built and queued
    sms: int = 0


# plan_for(target, profile params) -> the plan; raise ota.OtaError / ValueError to skip.
PlanFor = Callable[[BulkTarget, ota.CardProfileParams], ota.ScriptPlan]


def _first_keysets(card_ids: list[int]) -> dict[int, tuple[int, int, str]]:
    """card_id -> (key set id, KVN, algorithm) of each card's lowest KVN."""
    if connection.vendor == "postgresql":
        # One array parameter: a 5000-element IN list costs more to build than to run.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT ON (card_id) card_id, id, kvn, algorithm FROM cardmgmt_keyset "
                "WHERE card_id = ANY(%s) ORDER BY card_id, kvn",
                [card_ids],
            )
            return {row[0]: row[1:] for row in cursor.fetchall()}
    rows = (
        KeySet.objects.filter(card_id__in=card_ids)
        .order_by("card_id", "kvn")
        .values_list("card_id", "pk", "kvn", "algorithm")
    )
    found: dict[int, tuple[int, int, str]] = {}
    for card_id, pk, kvn, algorithm in rows:
        found.setdefault(card_id, (pk, kvn, algorithm))
    return found


def _allocate(keysets: list[tuple[int, int, int]]) -> dict[int, tuple[int, bytes, bytes]]:
    """card_id -> (counter, sealed KIc, sealed KID) for (card id, key set id, KVN) triples,
    in one statement on PostgreSQL.

    The rows are found by primary key (an index scan whatever the table's size: a join on
    (card, KVN) with the chunk's arrays was planned as a hash join over the whole table)."""
    if not keysets:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE cardmgmt_keyset SET counter = counter + 1 WHERE id = ANY(%s) "
                "RETURNING card_id, counter, kic, kid",
                [[keyset_id for _card, keyset_id, _kvn in keysets]],
            )
            return {row[0]: (row[1], bytes(row[2]), bytes(row[3])) for row in cursor.fetchall()}
    from cardmgmt.services.inventory import allocate_counter

    out = {}
    for card_id, _keyset_id, kvn in keysets:
        counter = allocate_counter(card_id=card_id, kvn=kvn)
        keyset = KeySet.objects.only("kic", "kid").get(card_id=card_id, kvn=kvn)
        out[card_id] = (counter, bytes(keyset.kic), bytes(keyset.kid))
    return out


_SEQUENCES: dict[str, str] = {}


def _next_ids(model: type, count: int) -> list[int]:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        sequence = _SEQUENCES.get(table)
        if sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = _SEQUENCES[table] = cursor.fetchone()[0]
        # The sequence named once: pg_get_serial_sequence in the select list runs per row
        # and costs twenty times the nextval itself.
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count]
        )
        return [row[0] for row in cursor.fetchall()]


def copy_text(value: Any) -> str:
    """One value as a field of COPY's text format."""
    if type(value) is int:
        return str(value)
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    text = str(value.value if isinstance(value, Enum) else value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def copy_rows_varying(
    table: str, columns: tuple[str, ...], rows: list[tuple], varying: tuple[int, ...]
) -> None:
    """COPY rows whose columns other than `varying` mostly repeat (PostgreSQL only): those
    are formatted once per distinct combination, the varying ones per row."""
    shared_columns = tuple(i for i in range(len(columns)) if i not in varying)
    order = tuple(columns[i] for i in shared_columns + varying)
    prefixes = CopyPrefixes()
    lines = [
        prefixes[tuple(row[i] for i in shared_columns)]
        + "\t".join([copy_text(row[i]) for i in varying])
        + "\n"
        for row in rows
    ]
    copy_lines(table, order, lines)


class CopyPrefixes(dict[tuple, str]):
    """The COPY text of a row's repeating columns (with the tab after them), by their values:
    formatted the first time a combination is seen."""

    def __missing__(self, shared: tuple) -> str:
        prefix = self[shared] = "".join(copy_text(v) + "\t" for v in shared)
        return prefix


def copy_lines(table: str, columns: tuple[str, ...], lines: list[str]) -> None:
    """COPY lines already in COPY's text format into `table` (PostgreSQL only)."""
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for start in range(0, len(lines), 2000):
                copy.write("".join(lines[start : start + 2000]))


_JOB_COLUMNS = (
    "id",
    "operation",
    "card_id",
    "applet_version_id",
    "parameters",
    "state",
    "priority",
    "requested_by",
    "result",
    "created",
    "finished",
)
_MESSAGE_COLUMNS = (
    "job_id",
    "step",
    "description",
    "card_id",
    "msisdn",
    "tar",
    "kvn",
    "secured_data",
    "sealed",
    "state",
    "priority",
    "attempt",
    "max_attempts",
    "counter",
    "user_data",
    "smpp_ids",
    "queued_at",
    "por_sw",
    "por_data",
    "por_text",
    "failure_reason",
    "history",
)


# OtaMessage rows for COPY on PostgreSQL: the columns that repeat from row to row (one text
# prefix per step shape, formatted once), then the seven that change. psycopg's `write_row`
# formats each of the 22 values per row (about 5 us a row; this, about 1 us).
_MESSAGE_SHARED = (1, 2, 5, 6, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20)
_MESSAGE_OWN = (0, 3, 4, 7, 13, 14, 21)
_MESSAGE_COPY_COLUMNS = tuple(_MESSAGE_COLUMNS[i] for i in _MESSAGE_SHARED + _MESSAGE_OWN)


_NULL = "\\N"


def _message_lines(messages: list[tuple]) -> list[str]:
    prefixes = CopyPrefixes()
    lines = []
    for row in messages:
        prefix = prefixes[tuple(row[i] for i in _MESSAGE_SHARED)]
        job_id, _step, _desc, card_id, msisdn, _tar, _kvn, data = row[:8]
        counter, user_data, history = row[13], row[14], row[21]
        lines.append(
            f"{prefix}{job_id}\t{card_id}\t{copy_text(msisdn)}\t\\\\x{data.hex()}\t"
            f"{_NULL if counter is None else counter}\t{copy_text(user_data)}\t"
            f"{copy_text(history)}\n"
        )
    return lines


def plan_bulk_jobs(
    *,
    operation: str,
    targets: list[BulkTarget],
    plan_for: PlanFor,
    requested_by: str,
    priority: int,
    applet_version: AppletVersion | None = None,
    parameters: Callable[[BulkTarget], dict[str, Any]] | None = None,
    now: datetime.datetime | None = None,
    sensitive: bool = False,
) -> BulkResult:
    """Create one OTA job per target with its first packet secured and queued.

    Must run inside the caller's transaction (the counters, the jobs and the caller's own
    rows commit together). Targets that cannot be planned are returned in `skipped`.
    `sensitive`: the scripts carry a secret (a sync parameter record): they are stored sealed,
    as `start_ota_job` does.
    """
    from cardmgmt import otabridge
    from cardmgmt.services.delivery import SEALED_SCRIPT

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("plan_bulk_jobs must run inside a transaction")
    now = now or timezone.now()
    result = BulkResult()
    if not targets:
        return result
    keysets = _first_keysets([t.card_id for t in targets])
    profiles = CardProfile.objects.in_bulk({t.profile_id for t in targets})
    params_cache: dict[tuple[int, str, int], ota.CardProfileParams] = {}
    plan_cache: dict[tuple[int, str, int], ota.ScriptPlan | str] = {}
    planned: list[tuple[BulkTarget, ota.CardProfileParams, ota.ScriptPlan, int]] = []
    keyset_ids: dict[int, int] = {}
    for target in targets:
        keyset = keysets.get(target.card_id)
        if keyset is None:
            result.skipped[target.key] = "card has no OTA key set"
            continue
        keyset_id, kvn, algorithm = keyset
        cache_key = (target.profile_id, algorithm, kvn)
        params = params_cache.get(cache_key)
        if params is None:
            params = otabridge.profile_params(
                profiles[target.profile_id], algorithm=algorithm, kvn=kvn
            )
            params_cache[cache_key] = params
        try:
            if target.data is None:
                plan = plan_cache.get(cache_key)
                if plan is None:
                    try:
                        plan = plan_for(target, params)
                    except (ota.OtaError, ValueError) as exc:
                        plan = f"cannot plan: {exc}"
                    plan_cache[cache_key] = plan
                if isinstance(plan, str):
                    raise ValueError(plan)
            else:
                plan = plan_for(target, params)
        except (ota.OtaError, ValueError) as exc:
            result.skipped[target.key] = str(exc)[:300]
            continue
        planned.append((target, params, plan, kvn))
        keyset_ids[target.card_id] = keyset_id

    allocated = _allocate([(t.card_id, keyset_ids[t.card_id], kvn) for t, _p, _s, kvn in planned])
    jobs: list[tuple] = []
    messages: list[tuple] = []
    is_pg = connection.vendor == "postgresql"
    job_ids = _next_ids(OtaJob, len(planned)) if is_pg and planned else []
    version_id = applet_version.pk if applet_version else None
    # Targets without per-card data share their job parameters: serialised once per chunk.
    shared_parameters = (
        json.dumps(parameters(planned[0][0]) if parameters else {})
        if planned and not any(t.data is not None for t, *_ in planned)
        else None
    )
    stamp = now.isoformat()
    packets = _secure_first_steps(planned, allocated)
    for n, (target, _params, plan, kvn) in enumerate(planned):
        counter = allocated[target.card_id][0]
        segments = ota.segment_packet(packets[n], reference=counter & 0xFF)
        job_id = job_ids[n] if is_pg else None
        if target.data is None and shared_parameters is not None:
            job_parameters = shared_parameters
        else:
            job_parameters = json.dumps(parameters(target) if parameters else {})
        jobs.append(
            (
                job_id,
                operation,
                target.card_id,
                version_id,
                job_parameters,
                OtaJobState.RUNNING,
                priority,
                requested_by[:200],
                "",
                now,
                None,
            )
        )
        for step, planned_step in enumerate(plan.steps):
            built = step == 0
            messages.append(
                (
                    job_id if is_pg else n,
                    step,
                    planned_step.description[:100],
                    target.card_id,
                    target.msisdn,
                    planned_step.tar.hex().upper(),
                    kvn,
                    crypto.seal(planned_step.data, SEALED_SCRIPT)
                    if sensitive
                    else planned_step.data,
                    sensitive,
                    OtaMessageState.QUEUED if built else OtaMessageState.PENDING,
                    priority,
                    1 if built else 0,
                    MAX_ATTEMPTS,
                    counter if built else None,
                    ("[" + ",".join(f'"{s.hex()}"' for s in segments) + "]") if built else "[]",
                    "[]",
                    now if built else None,
                    "",
                    "",
                    "",
                    "",
                    # json.dumps' own output, formatted directly (a million calls add up).
                    f'[{{"attempt": 1, "counter": {counter}, "at": "{stamp}"}}]' if built else "[]",
                )
            )
        result.jobs[target.key] = job_id if is_pg else n
        result.messages += 1
        result.sms += len(segments)

    if is_pg:
        # id, card, parameters (shared by the chunk's jobs unless per-card data).
        copy_rows_varying(OtaJob._meta.db_table, _JOB_COLUMNS, jobs, (0, 2, 4))
        copy_lines(OtaMessage._meta.db_table, _MESSAGE_COPY_COLUMNS, _message_lines(messages))
    elif jobs:
        # The rows carry JSON as text for COPY; the models' JSON fields want the values.
        created = OtaJob.objects.bulk_create(
            OtaJob(**_model_values(_JOB_COLUMNS[1:], row[1:])) for row in jobs
        )
        ids = [j.pk for j in created]
        OtaMessage.objects.bulk_create(
            OtaMessage(**_model_values(_MESSAGE_COLUMNS, (ids[row[0]], *row[1:])))
            for row in messages
        )
        result.jobs = {key: ids[n] for key, n in result.jobs.items()}

    if operation == OtaOperation.LOAD_INSTALL and applet_version is not None and planned:
        _mark_loading([t.card_id for t, *_ in planned], applet_version, now)
    return result


_JSON_COLUMNS = frozenset({"parameters", "user_data", "smpp_ids", "history"})


def _model_values(columns: tuple[str, ...], row: tuple) -> dict[str, Any]:
    """One COPY row as model field values (the embedded SQLite path)."""
    return {
        column: json.loads(value) if column in _JSON_COLUMNS else value
        for column, value in zip(columns, row, strict=True)
    }


def _secure_first_steps(
    planned: list[tuple[BulkTarget, ota.CardProfileParams, ota.ScriptPlan, int]],
    allocated: dict[int, tuple[int, bytes, bytes]],
) -> list[bytes]:
    """The secured packet of each planned job's first step, in `planned` order.

    Consecutive jobs with the same packet shape (SPI, KIc, KID, TAR, CMAC length: one card
    profile and operation) go through `ota.encode_commands` as one batch; keys are unsealed
    one card at a time as the batch reaches it, as the per-packet loop did.
    """

    def shape(entry: tuple[int, tuple]) -> tuple:
        _target, params, plan, _kvn = entry[1]
        return (params.spi, params.kic, params.kid, plan.steps[0].tar, params.cmac_length)

    def items(run: Iterable[tuple[int, tuple]]) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        for _n, (target, _params, plan, _kvn) in run:
            counter, sealed_kic, sealed_kid = allocated[target.card_id]
            yield (
                counter,
                plan.steps[0].data,
                crypto.unseal(sealed_kic, "kic"),
                crypto.unseal(sealed_kid, "kid"),
            )

    packets: list[bytes] = []
    for (spi, kic, kid, tar, cmac_length), run in groupby(enumerate(planned), key=shape):
        packets += ota.encode_commands(spi, kic, kid, tar, items(run), cmac_length=cmac_length)
    return packets


def _mark_loading(card_ids: list[int], version: AppletVersion, now: datetime.datetime) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Installation._meta.db_table} "
                "(card_id, applet_version_id, state, confirmed_by, updated) "
                "SELECT c, %s, %s, '', %s FROM unnest(%s::bigint[]) AS c "
                "ON CONFLICT (card_id, applet_version_id) DO UPDATE "
                "SET state = EXCLUDED.state, confirmed_by = '', updated = EXCLUDED.updated",
                [version.pk, InstallationState.LOADING, now, card_ids],
            )
        return
    for card_id in card_ids:
        Installation.objects.update_or_create(
            card_id=card_id,
            applet_version=version,
            defaults={"state": InstallationState.LOADING, "confirmed_by": "", "updated": now},
        )
