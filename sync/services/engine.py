"""The SyncML DS server: one call per HTTP request, state in the database between them.

Flow (OMA DS Protocol 1.2 section 6; docs/sync.md has the whole picture):

* package 1 (client init: Alert per datastore, Put/Get DevInf, Cred) -> package 2 (Status
  212 with a NextNonce, Alert with the mode we accept, Results with our DevInf, RespURI);
* package 3 (client Sync, possibly over several messages, large objects in chunks) -> package
  4 (Statuses, our Sync with NumberOfChanges, split by the client's MaxMsgSize);
* package 5 (Statuses, Map) -> package 6 (Statuses); only then are the anchors stored.

Every reply is stored with its request's MsgID: a resent message gets the same bytes back and
nothing is applied twice. Client deletions wait for the end of package 3 and go through the
mass-delete guard. This module is part of the service layer: it is the only writer of
sessions, maps, shadows and DB2 items during a sync, and it audits each session.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import JSONField, Max, Q
from django.utils import timezone

from portal.audit import record_change
from portal.context import Actor
from portal.crypto import SealError, unseal
from portal.models import AuditAction
from sync.choices import DeviceEventKind, HeldDeleteStatus, SessionStatus
from sync.fields import StringListField
from sync.messagelog import MESSAGE_LIMITS, pack_request, pack_response, redacted_xml, unpack
from sync.models import (
    AuthFailure,
    Contact,
    Device,
    DeviceEvent,
    DeviceNonce,
    HeldDelete,
    InventoryItem,
    ItemMap,
    SyncConflict,
    SyncMessage,
    SyncProfile,
    SyncSession,
    SyncState,
)
from sync.sequence import next_change_seqs
from sync.stores import INVENTORY_TYPE, STORES, VCARD21, VCARD30, ItemError, resolve_store
from sync.syncml import (
    CONTENT_TYPE_WBXML,
    CONTENT_TYPE_XML,
    NS_METINF,
    Add,
    Alert,
    Anchor,
    Chal,
    ContentTypeRef,
    DataStore,
    Delete,
    DevInf,
    Element,
    Get,
    Item,
    Location,
    Map,
    Meta,
    Put,
    Replace,
    Results,
    Status,
    Sync,
    SyncHdr,
    SyncML,
    SyncMLError,
    detect_encoding,
    parse_message,
    serialize_message,
)
from sync.syncml.auth import (
    AUTH_BASIC,
    AUTH_MD5,
    credential_user,
    decode_nonce,
    generate_nonce,
    verify_credential,
)

log = logging.getLogger("sync.server")

LIMITS = MESSAGE_LIMITS
MAX_REQUEST_BYTES = LIMITS.max_bytes
SERVER_MAX_MSG_SIZE = 1024 * 1024
SERVER_MAX_OBJ_SIZE = 4 * 1024 * 1024
DEFAULT_CLIENT_MAX_MSG = 64 * 1024
MIN_CLIENT_MAX_MSG = 4 * 1024
ITEM_OVERHEAD = 260  # bytes a command costs around its data, XML-encoded
STATUS_COST = 180
RESEND_WINDOW = datetime.timedelta(minutes=30)
# Throttle: this many failures of one account, device or address within the window block it.
AUTH_FAIL_LIMIT = 5
AUTH_FAIL_WINDOW = datetime.timedelta(minutes=15)
# Mass-delete guard: more than this share of a store, and at least this many items.
GUARD_FRACTION = 0.5
GUARD_MIN_ITEMS = 5
TWO_WAY_LIKE = {200, 204}
FROM_CLIENT = {202, 203}
SEND_MODES = {200, 201, 204, 205}


@dataclass
class Reply:
    body: bytes
    content_type: str
    status: int = 200


def _text_reply(status: int, message: str) -> Reply:
    return Reply(message.encode(), "text/plain; charset=utf-8", status)


def _anchor_now() -> str:
    return timezone.now().strftime("%Y%m%dT%H%M%S") + f"{secrets.randbelow(1000):03d}Z"


def _next_seqs(n: int) -> list[int]:
    return next_change_seqs(n)


_PLAIN_FIELDS = (
    models.CharField, models.BooleanField, models.IntegerField, models.BigIntegerField,
    models.PositiveIntegerField, models.DateTimeField, models.ForeignKey,
)  # fmt: skip


class _NewRow:
    """A row about to be inserted: its column values by attname, without the cost of a model
    instance (a refresh from a handset creates two rows per item, thousands per session).
    `_copy_insert` writes it; nothing else sees it."""

    pk = None

    def __init__(self, values: dict) -> None:
        self.__dict__ = values


@functools.cache
def _defaults(model) -> list[tuple[str, Any, bool]]:  # type: ignore[no-untyped-def]
    """(attname, default, whether the default is called) of each non-key field."""
    return [
        (f.attname, f.default, callable(f.default))
        for f in model._meta.concrete_fields
        if not f.primary_key
    ]


def _new_row_values(model, now: datetime.datetime | None = None, **values: Any) -> _NewRow:  # type: ignore[no-untyped-def]
    """`values` (by attname) over the model's field defaults; a callable default (the GUID, an
    empty dict) is called for each row, as a model instance would, except that a time
    defaulting to now takes `now` when given: the rows of one message share their time, and
    `timezone.now` (settings read, then the clock) cost as much as the rest of the row."""
    row = {}
    for name, default, call in _defaults(model):
        if name in values:
            row[name] = values[name]
        elif default is models.NOT_PROVIDED:
            row[name] = None
        elif default is timezone.now and now is not None:
            row[name] = now
        else:
            row[name] = default() if call else default
    return _NewRow(row)


def _copy_insert(model, objs: list, json_texts: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    """Insert many new rows (model instances or `_NewRow`): COPY on PostgreSQL (no RETURNING
    needed: the engine keys rows by GUID), bulk_create elsewhere or for a handful.

    `json_texts` remembers the JSON text of each value written, by identity, for a later call
    in the same message: a new item's fields and its map's shadow are usually one dict."""
    if not objs:
        return
    if connection.vendor != "postgresql" or len(objs) < 20:
        model.objects.bulk_create(
            [model(**o.__dict__) if isinstance(o, _NewRow) else o for o in objs]
        )
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_cols = [i for i, f in enumerate(fields) if isinstance(f, JSONField)]
    list_cols = [i for i, f in enumerate(fields) if _plain_list(f)]
    other_cols = [
        i
        for i, f in enumerate(fields)
        if not isinstance(f, JSONField) and type(f) not in _PLAIN_FIELDS and not _plain_list(f)
    ]
    names = [f.attname for f in fields]
    # Keyed by identity: the values are held by `objs` (and the caller's rows) meanwhile.
    memo = {} if json_texts is None else json_texts
    with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for obj in objs:
            d = obj.__dict__
            row = [d[name] for name in names]
            for i in json_cols:  # jsonb takes its text form in a text COPY
                value, encoder = row[i], fields[i].encoder
                text = memo.get((id(value), encoder))
                if text is None:
                    text = memo[id(value), encoder] = json.dumps(value, cls=encoder)
                row[i] = text
            for i in list_cols:
                row[i] = _array_literal(row[i])
            for i in other_cols:
                row[i] = fields[i].get_db_prep_save(row[i], connection)
            copy.write_row(row)


def _plain_list(field) -> bool:  # type: ignore[no-untyped-def]
    """A PostgreSQL array of strings (written as its text literal)."""
    return isinstance(field, StringListField) and isinstance(field.base_field, models.CharField)


def _array_literal(values: list[str] | None) -> str | None:
    """The text form of a text[] value, each element quoted (psycopg's list adapter costs
    more than the rest of a row)."""
    if values is None:
        return None
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


@functools.cache
def _columns(model, alias: str) -> tuple[list, str]:  # type: ignore[no-untyped-def]
    """A model's fields and their column list (built once: every message needs a few)."""
    fields = list(model._meta.concrete_fields)
    qn = connection.ops.quote_name
    return fields, ", ".join(f"{alias}.{qn(f.column)}" for f in fields)


@functools.cache
def _converters(model) -> tuple[list[str], list[tuple[int, Any]]]:  # type: ignore[no-untyped-def]
    """Attnames, and (position, field) of the fields whose database values need converting."""
    fields = list(model._meta.concrete_fields)
    return [f.attname for f in fields], [
        (i, f) for i, f in enumerate(fields) if hasattr(f, "from_db_value")
    ]


def _instance(model, fields: list, values):  # type: ignore[no-untyped-def]
    names, convert = _converters(model)
    out = list(values)
    if len(out) != len(names):
        raise ValueError(f"{len(out)} values for {len(names)} {model.__name__} columns")
    for i, f in convert:
        if out[i] is not None:
            out[i] = f.from_db_value(out[i], None, connection)
    return model.from_db(connection.alias, names, out)


def _select_one(model, where: str, params: list, *, prefix: str = "SELECT"):  # type: ignore[no-untyped-def]
    """One row of `model` as an instance, by plain SQL (`where` uses the alias ``t``)."""
    fields, cols = _columns(model, "t")
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(f"{prefix} {cols} FROM {table} t WHERE {where} LIMIT 1", params)
        row = cur.fetchone()
    return None if row is None else _instance(model, fields, row)


def _load_session(token: str) -> SyncSession | None:
    """The session of a RespURI token, locked, with its profile and device, in one query.

    Plain SQL: every message after the first starts here, and building the equivalent
    select_related query costs more CPU than running it.
    """
    if connection.vendor != "postgresql":
        return (
            SyncSession.objects.select_for_update(of=("self",))
            .select_related("profile", "device")
            .filter(token=token)
            .first()
        )
    sf, scols = _columns(SyncSession, "s")
    pf, pcols = _columns(SyncProfile, "p")
    df, dcols = _columns(Device, "d")
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {scols}, {pcols}, {dcols} FROM sync_syncsession s"
            " JOIN sync_syncprofile p ON p.id = s.profile_id"
            " LEFT JOIN sync_device d ON d.id = s.device_id"
            " WHERE s.token = %s FOR UPDATE OF s",
            [token],
        )
        row = cur.fetchone()
    if row is None:
        return None
    n, m = len(sf), len(sf) + len(pf)
    session = _instance(SyncSession, sf, row[:n])
    session.profile = _instance(SyncProfile, pf, row[n:m])
    session.device = _instance(Device, df, row[m:]) if row[m] is not None else None
    return session


# The columns of SyncSession the engine changes after the first INSERT.
_SESSION_COLUMNS = (
    "state", "modes", "device_id", "status", "finished", "error", "last_activity",
    "message_count", "client_added", "client_replaced", "client_deleted", "server_added",
    "server_replaced", "server_deleted", "conflict_count",
)  # fmt: skip
_MESSAGE_INSERT = (
    "INSERT INTO sync_syncmessage (session_id, msg_id, received, request_size,"
    " response_size, request, response, resent) VALUES (%s, %s, %s, %s, %s, %s, %s, 0)"
)


def _insert_session(session: SyncSession) -> None:
    """INSERT ... RETURNING id in plain SQL on PostgreSQL (every session's first message)."""
    if connection.vendor != "postgresql":
        session.save(force_insert=True)
        return
    fields = [f for f in SyncSession._meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    cols = ", ".join(qn(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO sync_syncsession ({cols}) VALUES ({marks}) RETURNING id",
            [f.get_db_prep_save(getattr(session, f.attname), connection) for f in fields],
        )
        session.pk = cur.fetchone()[0]
    session._state.adding = False


def _insert_message(session_id: int, message: list) -> None:
    with connection.cursor() as cur:
        cur.execute(_MESSAGE_INSERT, [session_id, *message])


def _save_session_and_message(session: SyncSession, message: list) -> None:
    """The session's new state and the message log row in one statement (one round trip):
    this runs for every message of every session."""
    if connection.vendor != "postgresql":
        session.save(update_fields=[n.removesuffix("_id") for n in _SESSION_COLUMNS])
        _insert_message(session.pk, message)
        return
    values = []
    for name in _SESSION_COLUMNS:
        field = SyncSession._meta.get_field(name.removesuffix("_id"))
        values.append(field.get_db_prep_save(getattr(session, name), connection))
    sets = ", ".join(f"{name} = %s" for name in _SESSION_COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            f"WITH s AS (UPDATE sync_syncsession SET {sets} WHERE id = %s) {_MESSAGE_INSERT}",
            [*values, session.pk, session.pk, *message],
        )


def _row_model(ds: str):  # type: ignore[no-untyped-def]
    return Contact if ds == "contacts" else InventoryItem


def _redacted(msg: SyncML) -> str:
    """The message as XML with every credential blanked, for the support log."""
    return redacted_xml(msg)


# ------------------------------------------------------------------------------- entry point


def handle_request(
    body: bytes, *, token: str | None, address: str | None, endpoint_url: str
) -> Reply:
    """Answer one POSTed SyncML message. Never raises for bad input."""
    if not body:
        return _text_reply(400, "empty request: a SyncML message is expected")
    if len(body) > MAX_REQUEST_BYTES:
        return _text_reply(413, f"message larger than {MAX_REQUEST_BYTES} bytes")
    try:
        msg = parse_message(body, limits=LIMITS)
    except SyncMLError as exc:
        return _text_reply(400, f"malformed SyncML message: {exc}")
    if msg.hdr.ver_dtd not in ("1.1", "1.2"):
        return _reply_version_unsupported(msg, detect_encoding(body))
    encoding = detect_encoding(body)
    try:
        with transaction.atomic():
            return _Engine(msg, body, encoding, token, address, endpoint_url).run()
    except ProtocolAbort as exc:
        return exc.reply


class ProtocolAbort(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def _reply_version_unsupported(msg: SyncML, encoding: str) -> Reply:
    hdr = SyncHdr(
        ver_dtd="1.2",
        ver_proto="SyncML/1.2",
        session_id=msg.hdr.session_id,
        msg_id="1",
        target=Location(loc_uri=msg.hdr.source.loc_uri if msg.hdr.source else ""),
        source=Location(loc_uri=msg.hdr.target.loc_uri if msg.hdr.target else ""),
    )
    status = Status(cmd_id="1", msg_ref=msg.hdr.msg_id, cmd_ref="0", cmd="SyncHdr", data=513)
    return _encode(SyncML(hdr=hdr, commands=[status], final=True), encoding)


def _encode(msg: SyncML, encoding: str) -> Reply:
    body = serialize_message(msg, encoding)
    return Reply(body, CONTENT_TYPE_WBXML if encoding == "wbxml" else CONTENT_TYPE_XML)


# ------------------------------------------------------------------------------- the engine


class _Engine:
    def __init__(self, msg, body, encoding, token, address, endpoint_url) -> None:  # type: ignore[no-untyped-def]
        self.msg: SyncML = msg
        self.body: bytes = body
        self.encoding: str = encoding
        self.token = token
        self.address = address
        self.endpoint_url = endpoint_url
        self.session: SyncSession | None = None
        self.state: dict = {}
        self.out: list = []  # commands of the reply after the SyncHdr status
        self.statuses: list[Status] = []
        self._delete_statuses: dict[str, Status] = {}  # GUID -> Status of a Delete (this message)
        self.dev_id = msg.hdr.source.loc_uri if msg.hdr.source else ""
        self.cc = getattr(settings, "SYNC_DEFAULT_COUNTRY_CODE", "+49")
        self.message_time = timezone.now()  # the time of the rows this message creates

    # -- helpers
    def cmd_id(self) -> str:
        self.state["next_cmd"] = self.state.get("next_cmd", 0) + 1
        return str(self.state["next_cmd"])

    def status(self, cmd, code: int, *, target=None, source=None, cmd_name=None) -> Status:  # type: ignore[no-untyped-def]
        st = Status(
            cmd_id="",
            msg_ref=self.msg.hdr.msg_id,
            cmd_ref=cmd.cmd_id,
            cmd=cmd_name or cmd.NAME,
            data=code,
            target_refs=[target] if target else [],
            source_refs=[source] if source else [],
        )
        self.statuses.append(st)
        return st

    def _persist_session(self) -> None:
        """Insert the session now if it is still only in memory (rows are about to point at it)."""
        if self.session is not None and self.session.pk is None:
            _insert_session(self.session)

    def store(self, ds: str):  # type: ignore[no-untyped-def]
        cls = STORES[ds]
        return cls(self.cc) if ds == "contacts" else cls()

    # -- session lookup, resend detection, authentication
    def run(self) -> Reply:
        hdr = self.msg.hdr
        if self.token:
            session = _load_session(self.token)
            if session is None:
                return _text_reply(404, "unknown or expired SyncML session")
            cached = self._cached(session)
            if cached is not None:
                return cached
            if session.status != SessionStatus.ACTIVE:
                return _text_reply(409, f"SyncML session is {session.status}")
            self.session = session
            self.state = session.state
            header_status = self._header_status(200)
        else:
            recent = None
            with connection.cursor() as cur:
                # Hot path (every session's first message): plain SQL, the index
                # syncsession_client_ids; the row is loaded only for a resend candidate.
                cur.execute(
                    "SELECT id FROM sync_syncsession WHERE client_dev_id = %s"
                    " AND client_session_id = %s AND started >= %s"
                    " ORDER BY started DESC LIMIT 1",
                    [self.dev_id[:128], hdr.session_id[:64], timezone.now() - RESEND_WINDOW],
                )
                found = cur.fetchone()
            if found is not None:
                recent = SyncSession.objects.select_for_update().filter(pk=found[0]).first()
            if recent is not None:
                cached = self._cached(recent)
                if cached is not None:
                    return cached
            header_status = self._authenticate()
            if header_status.data not in (200, 212):
                return self._finish_unauthenticated(header_status)
        self.header_status = header_status
        self._process_commands()
        self._advance()
        return self._respond()

    def _cached(self, session: SyncSession) -> Reply | None:
        seen = session.state.get("seen") if isinstance(session.state, dict) else None
        if seen is not None and self.msg.hdr.msg_id[:16] not in seen:
            return None  # the session's own list of answered MsgIDs: no query needed
        m = SyncMessage.objects.filter(session=session, msg_id=self.msg.hdr.msg_id[:16]).first()
        if m is None:
            return None
        SyncMessage.objects.filter(pk=m.pk).update(resent=m.resent + 1)
        ctype = CONTENT_TYPE_WBXML if session.encoding == "wbxml" else CONTENT_TYPE_XML
        return Reply(unpack(bytes(m.response)), ctype)

    def _header_status(self, code: int) -> Status:
        hdr = self.msg.hdr
        return Status(
            cmd_id="",
            msg_ref=hdr.msg_id,
            cmd_ref="0",
            cmd="SyncHdr",
            data=code,
            target_refs=[hdr.target.loc_uri] if hdr.target else [],
            source_refs=[hdr.source.loc_uri] if hdr.source else [],
        )

    def _new_nonce(self) -> str:
        nonce = generate_nonce()
        now = timezone.now()
        if not DeviceNonce.objects.filter(dev_id=self.dev_id[:128]).update(
            nonce=nonce, updated=now
        ):
            DeviceNonce.objects.update_or_create(
                dev_id=self.dev_id[:128], defaults={"nonce": nonce, "updated": now}
            )
        return nonce

    def _chal(self, kind: str) -> Chal:
        if kind == AUTH_BASIC:
            return Chal(meta=Meta(type=AUTH_BASIC, format="b64"))
        return Chal(meta=Meta(type=AUTH_MD5, format="b64", next_nonce=self._new_nonce()))

    def _fail(self, user: str, reason: str, kind: str, code: int = 401) -> Status:
        AuthFailure.objects.create(
            username=user[:128], dev_id=self.dev_id[:128], address=self.address, reason=reason
        )
        log.warning(
            "SyncML authentication failed: user=%r device=%r address=%s: %s",
            user,
            self.dev_id,
            self.address,
            reason,
        )
        st = self._header_status(code)
        st.chal = self._chal(kind)
        return st

    def _throttled(self, user: str) -> bool:
        since = timezone.now() - AUTH_FAIL_WINDOW
        conds = []
        if self.dev_id:
            conds.append(("dev_id", self.dev_id[:128]))
        if user:
            conds.append(("username", user[:128]))
        if self.address:
            conds.append(("address", self.address))
        if not conds:
            return False
        # One query for the three counters (each column has its own index); plain SQL because
        # it runs for every session.
        counters = ", ".join(f"SUM(CASE WHEN {col} = %s THEN 1 ELSE 0 END)" for col, _v in conds)
        either = " OR ".join(f"{col} = %s" for col, _v in conds)
        values = [v for _c, v in conds]
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT {counters} FROM sync_authfailure WHERE time >= %s AND ({either})",
                [*values, since, *values],
            )
            counts = cur.fetchone()
        return any((n or 0) >= AUTH_FAIL_LIMIT for n in counts)

    def _authenticate(self) -> Status:
        hdr = self.msg.hdr
        cred = hdr.cred
        if cred is None:
            st = self._header_status(407)
            st.chal = self._chal(AUTH_MD5)
            return st
        kind = cred.auth_type
        try:
            user = credential_user(cred, hdr) or ""
        except SyncMLError as exc:
            return self._fail("", f"unreadable credentials: {exc}", AUTH_MD5)
        if self._throttled(user):
            AuthFailure.objects.create(
                username=user[:128],
                dev_id=self.dev_id[:128],
                address=self.address,
                reason="throttled: too many failures",
            )
            log.warning("SyncML authentication throttled: user=%r device=%r", user, self.dev_id)
            return self._header_status(417)  # retry later
        profile = _select_one(SyncProfile, "t.username = %s", [user]) if user else None
        if profile is None:
            return self._fail(user, "unknown user", kind if kind == AUTH_BASIC else AUTH_MD5)
        try:
            secret = unseal(bytes(profile.secret_sealed), "sync-device-secret").decode()
        except SealError as exc:
            return self._fail(user, f"secret does not open: {exc}", kind, 401)
        nonce = None
        if kind == AUTH_MD5:
            row = DeviceNonce.objects.filter(dev_id=self.dev_id[:128]).first()
            if row is None:
                # The normal first MD5 round: challenge with a nonce, not a failed guess.
                st = self._header_status(401)
                st.chal = self._chal(AUTH_MD5)
                return st
            try:
                nonce = decode_nonce(row.nonce)
            except SyncMLError:
                return self._fail(user, "stored nonce unreadable", AUTH_MD5)
        try:
            ok = verify_credential(cred, user=user, password=secret, nonce=nonce)
        except SyncMLError as exc:
            return self._fail(user, f"unsupported credentials: {exc}", AUTH_MD5)
        if not ok:
            return self._fail(user, "wrong password", kind)
        self.profile = profile
        self._start_session(kind)
        st = self._header_status(212)
        if kind == AUTH_MD5:
            st.chal = self._chal(AUTH_MD5)  # the nonce for the next session
        return st

    def _finish_unauthenticated(self, header_status: Status) -> Reply:
        header_status.cmd_id = "1"
        hdr = self.msg.hdr
        reply = SyncML(
            hdr=SyncHdr(
                ver_dtd=hdr.ver_dtd,
                ver_proto=hdr.ver_proto or f"SyncML/{hdr.ver_dtd}",
                session_id=hdr.session_id,
                msg_id=hdr.msg_id,
                target=Location(loc_uri=self.dev_id),
                source=Location(loc_uri=hdr.target.loc_uri if hdr.target else ""),
            ),
            commands=[header_status],
            final=True,
        )
        # Commands of an unauthenticated message are not executed (RepPro 1.2 5.1.8).
        n = 2
        for cmd in self.msg.commands:
            if cmd.NAME == "Status":
                continue
            reply.commands.append(
                Status(
                    cmd_id=str(n),
                    msg_ref=hdr.msg_id,
                    cmd_ref=cmd.cmd_id,
                    cmd=cmd.NAME,
                    data=header_status.data,
                )
            )
            n += 1
        return _encode(reply, self.encoding)

    def _start_session(self, kind: str) -> None:
        hdr = self.msg.hdr
        max_msg = hdr.meta.max_msg_size if hdr.meta and hdr.meta.max_msg_size else None
        max_obj = hdr.meta.max_obj_size if hdr.meta and hdr.meta.max_obj_size else None
        self.state = {
            "next_cmd": 0,
            "server_msg": 0,
            "phase": "init",
            "stores": {},
            "outbox": [],
            "sent": {},
            "lo_in": None,
            "max_msg": max(MIN_CLIENT_MAX_MSG, max_msg or DEFAULT_CLIENT_MAX_MSG),
            "max_obj": max_obj,
            "client_final_sync": False,
        }
        now = timezone.now()
        # Saved (one INSERT) with the reply, or earlier when a row needs its key.
        self.session = SyncSession(
            profile=self.profile,
            subscriber_id=self.profile.subscriber_id,
            token=secrets.token_urlsafe(24),
            client_session_id=hdr.session_id[:64],
            client_dev_id=self.dev_id[:128],
            remote_address=self.address,
            syncml_version=hdr.ver_dtd,
            encoding=self.encoding,
            auth_type=kind,
            state=self.state,
            started=now,
            last_activity=now,
        )

    # -- commands
    def _process_commands(self) -> None:
        session = self.session
        assert session is not None
        if getattr(self, "profile", None) is None:
            self.profile = session.profile
        hdr = self.msg.hdr
        if hdr.meta and hdr.meta.max_msg_size:
            self.state["max_msg"] = max(MIN_CLIENT_MAX_MSG, hdr.meta.max_msg_size)
        commands = list(self.msg.commands)
        # DevInf first: it says which device this is before the Alerts need its anchors.
        for cmd in commands:
            if isinstance(cmd, Put) or (isinstance(cmd, Results) and self._devinf_items(cmd)):
                self._devinf(cmd)
        if self.session.device_id and getattr(self, "devinf", None) is None:
            self.device = self.session.device
        else:
            self.device = self._device()
        for cmd in commands:
            if isinstance(cmd, Put) or (isinstance(cmd, Results) and self._devinf_items(cmd)):
                continue
            if isinstance(cmd, Status):
                self._client_status(cmd)
            elif isinstance(cmd, Alert):
                self._alert(cmd)
            elif isinstance(cmd, Get):
                self._get(cmd)
            elif isinstance(cmd, Sync):
                self._sync(cmd)
            elif isinstance(cmd, Map):
                self._map(cmd)
            elif isinstance(cmd, Results):
                self.status(cmd, 200)
            else:
                self.status(cmd, 406, cmd_name=cmd.NAME)  # optional feature not supported

    @staticmethod
    def _devinf_items(cmd) -> list:  # type: ignore[no-untyped-def]
        return [i for i in cmd.items if isinstance(i.data, DevInf)]

    def _devinf(self, cmd) -> None:  # type: ignore[no-untyped-def]
        items = self._devinf_items(cmd)
        if isinstance(cmd, Put):
            self.status(cmd, 200 if items else 415, source=(
                items[0].source.loc_uri if items and items[0].source else None))  # fmt: skip
        else:
            self.status(cmd, 200)
        if items:
            self.devinf = items[0].data

    def _device(self) -> Device:
        subscriber = self.profile.subscriber_id
        devinf: DevInf | None = getattr(self, "devinf", None)
        dev_id = (devinf.dev_id if devinf and devinf.dev_id else self.dev_id)[:128]
        device = self.session.device
        now = timezone.now()
        seen_now = False
        if (device is None or device.dev_id != dev_id) and connection.vendor != "postgresql":
            device = Device.objects.filter(subscriber_id=subscriber, dev_id=dev_id).first()
        elif device is None or device.dev_id != dev_id:
            # The usual case in one statement: the known handset, its last_seen moved on.
            fields, cols = _columns(Device, "sync_device")
            with connection.cursor() as cur:
                cur.execute(
                    f"UPDATE sync_device SET last_seen = %s WHERE subscriber_id = %s"
                    f" AND dev_id = %s RETURNING {cols}",
                    [now, subscriber, dev_id],
                )
                row = cur.fetchone()
            device = None if row is None else _instance(Device, fields, row)
            seen_now = device is not None
        actor = Actor(kind="system", label=f"syncml {self.profile.username}")
        if device is None:
            previous = list(
                Device.objects.filter(subscriber_id=subscriber, current=True).exclude(dev_id=dev_id)
            )
            device = Device.objects.create(
                subscriber_id=subscriber, dev_id=dev_id, imei=_imei(dev_id), first_seen=now,
                last_seen=now,
            )  # fmt: skip
            DeviceEvent.objects.create(device=device, kind=DeviceEventKind.FIRST_SEEN)
            for old in previous:
                Device.objects.filter(pk=old.pk).update(current=False)
                DeviceEvent.objects.create(
                    device=device,
                    kind=DeviceEventKind.HANDSET_CHANGE,
                    previous_imei=old.imei or old.dev_id,
                    changes={"imei": [old.imei or old.dev_id, device.imei or dev_id]},
                )
                record_change(
                    actor=actor,
                    action=AuditAction.UPDATE,
                    instance=device,
                    before={"imei": old.imei or old.dev_id},
                    after={"imei": device.imei or dev_id},
                    message="handset change: new IMEI for the subscriber",
                )
            if not previous:
                record_change(actor=actor, action=AuditAction.CREATE, instance=device,
                              after={"dev_id": dev_id}, message="first SyncML contact")  # fmt: skip
        elif not device.current:
            Device.objects.filter(subscriber_id=subscriber, current=True).update(current=False)
            device.current = True
        fields = ["last_seen", "current"]
        if devinf is not None:
            fields += self._store_devinf(device, devinf)
        if not (seen_now and device.current and devinf is None):
            device.last_seen = now
            device.save(update_fields=fields)
        if self.session.device_id != device.pk:
            self.session.device = device
        return device

    def _store_devinf(self, device: Device, devinf: DevInf) -> list[str]:
        props = devinf.vcard_properties()
        values = {
            "manufacturer": (devinf.man or "")[:100],
            "model": (devinf.mod or "")[:100],
            "oem": (devinf.oem or "")[:100],
            "firmware_version": (devinf.fwv or "")[:100],
            "software_version": (devinf.swv or "")[:100],
            "hardware_version": (devinf.hwv or "")[:100],
            "device_type": (devinf.dev_typ or "")[:40],
            "support_large_objs": devinf.support_large_objs,
            "support_number_of_changes": devinf.support_number_of_changes,
            "vcard_properties": None if props is None else sorted(props),
            "datastores": [_datastore_json(ds) for ds in devinf.datastores],
        }
        changes = {
            k: [getattr(device, k), v]
            for k, v in values.items()
            if getattr(device, k) != v and k not in ("datastores", "vcard_properties")
        }
        if device.datastores != values["datastores"] and device.datastores:
            changes["datastores"] = ["changed", "changed"]
        if device.vcard_properties != values["vcard_properties"] and device.datastores:
            changes["vcard_properties"] = [device.vcard_properties, values["vcard_properties"]]
        had_devinf = bool(device.datastores or device.manufacturer or device.model)
        for k, v in values.items():
            setattr(device, k, v)
        if changes and had_devinf:
            DeviceEvent.objects.create(
                device=device, kind=DeviceEventKind.DEVINF_CHANGED, changes=changes
            )
        return list(values)

    # -- Alert: mode negotiation and anchors
    def _alert(self, cmd: Alert) -> None:
        code = cmd.data
        if code in (222, 223):  # next message / no end of data
            self.status(cmd, 200)
            return
        if code is None or not 200 <= code <= 210:
            self.status(cmd, 406)
            return
        if code >= 206:
            code -= 6  # server-alerted codes map onto the client-initiated ones
        item = cmd.items[0] if cmd.items else None
        if item is None or item.target is None or item.source is None:
            self.status(cmd, 412)
            return
        server_uri, client_uri = item.target.loc_uri, item.source.loc_uri
        ds = resolve_store(server_uri)
        if ds is None:
            self.status(cmd, 404, target=server_uri, source=client_uri)
            return
        anchor = item.meta.anchor if item.meta and item.meta.anchor else Anchor()
        state = _select_one(SyncState, "t.device_id = %s AND t.datastore = %s",
                            [self.device.pk, ds])  # fmt: skip
        created = state is None
        if created:
            state, created = SyncState.objects.get_or_create(device=self.device, datastore=ds)
        self.__dict__.setdefault("_states", {})[ds] = state
        code_status = 200
        mode = code
        if code in (200, 202, 204) and (
            state.completed is None or not anchor.last or state.client_anchor != anchor.last
        ):
            code_status, mode = 508, 201
        st = self.status(cmd, code_status, target=server_uri, source=client_uri)
        if anchor.next:  # RepPro 1.2 6.6.1: the Status of an Alert echoes the client's Next
            st.items = [
                Item(
                    data=Element(
                        "Anchor", NS_METINF, [Element("Next", NS_METINF, text=anchor.next)]
                    )
                )
            ]
        server_next = _anchor_now()
        server_last = None if created else state.server_anchor
        self.state["stores"][ds] = {
            "state_id": state.pk,
            "last_seq": state.last_seq,
            "client_uri": client_uri,
            "server_uri": server_uri,
            "requested": cmd.data,
            "mode": mode,
            "client_last": anchor.last,
            "client_next": anchor.next or "",
            "server_last": server_last or "",
            "server_next": server_next,
            "store_size": None,  # counted when the mass-delete guard needs it
            "version": self._vcard_version(client_uri, item),
            "deletes": [],
            "paired": [],
            "touched": [],
            "prepared": False,
            "counts": dict.fromkeys(("ca", "cr", "cd", "sa", "sr", "sd", "conf", "held"), 0),
            "noc_sent": False,
            "sync_sent": False,
        }
        self.session.modes = {**self.session.modes, ds: mode}
        self.out.append(
            Alert(
                cmd_id="",
                data=mode,
                items=[
                    Item(
                        target=Location(loc_uri=client_uri),
                        source=Location(loc_uri=server_uri),
                        meta=Meta(
                            anchor=Anchor(last=server_last, next=server_next),
                            max_obj_size=SERVER_MAX_OBJ_SIZE
                            if self.msg.hdr.ver_dtd == "1.2"
                            else None,
                        ),
                    )
                ],
            )
        )

    def _vcard_version(self, client_uri: str, item: Item) -> str:
        wanted = None
        if item.meta and item.meta.type:
            wanted = item.meta.type
        for ds in self.device.datastores or []:
            if ds.get("source_ref", "").strip("./") == client_uri.strip("./"):
                wanted = ds.get("rx_pref") or wanted
        if wanted and wanted.lower().startswith(VCARD30):
            return "3.0"
        return "2.1"

    # -- Get: the server's DevInf
    def _get(self, cmd: Get) -> None:
        uri = cmd.items[0].target.loc_uri if cmd.items and cmd.items[0].target else ""
        if "devinf" not in uri.lower():
            self.status(cmd, 404, target=uri)
            return
        self.status(cmd, 200, target=uri)
        version = self.msg.hdr.ver_dtd
        self.out.append(
            Results(
                cmd_id="",
                msg_ref=self.msg.hdr.msg_id,
                cmd_ref=cmd.cmd_id,
                meta=Meta(type="application/vnd.syncml-devinf+xml"),
                items=[Item(source=Location(loc_uri=uri), data=server_devinf(version))],
            )
        )

    # -- Sync: the client's changes
    def _sync(self, cmd: Sync) -> None:
        server_uri = cmd.target.loc_uri if cmd.target else ""
        client_uri = cmd.source.loc_uri if cmd.source else ""
        ds = resolve_store(server_uri)
        st = self.state["stores"].get(ds) if ds else None
        if st is None:
            self.status(cmd, 404, target=server_uri, source=client_uri)
            for sub in cmd.commands:
                self.status(sub, 404)
            return
        self.status(cmd, 200, target=server_uri, source=client_uri)
        self.state["phase"] = "sync"
        ops: list[tuple[Any, Item, Any]] = []
        for sub in cmd.commands:
            if not isinstance(sub, Add | Replace | Delete):
                self.status(sub, 406, cmd_name=sub.NAME)
                continue
            for item in sub.items:
                if st["mode"] in (204, 205):
                    # One-way/refresh from server: the client should send nothing.
                    self.status(sub, 403, source=_luid(item))
                    continue
                data = self._large_object(sub, item)
                if data is _PENDING:
                    continue
                ops.append((sub, item, data))
        if ops:
            self._apply(ds, st, ops)

    def _large_object(self, cmd, item: Item):  # type: ignore[no-untyped-def]
        """Assemble chunked items (MoreData): 213 per chunk, 424 on a size mismatch."""
        lo = self.state.get("lo_in")
        luid = _luid(item)
        chunk = item.data
        if isinstance(chunk, str):
            chunk_bytes = chunk.encode("utf-8")
        elif isinstance(chunk, bytes):
            chunk_bytes = chunk
        else:
            chunk_bytes = b""
        if lo is not None and lo["luid"] == luid:
            data = base64.b64decode(lo["data"]) + chunk_bytes
            size = lo["size"]
            ctype = lo["type"]
        elif item.more_data:
            data, size = chunk_bytes, _item_size(cmd, item)
            ctype = _item_type(cmd, item)
            if size is None:
                self.status(cmd, 412, source=luid)  # first chunk must carry the total Size
                return _PENDING
            if size > SERVER_MAX_OBJ_SIZE:
                self.status(cmd, 413, source=luid)
                return _PENDING
        else:
            if lo is not None:  # an unfinished object was abandoned for another item
                self.state["lo_in"] = None
            return item.data
        if item.more_data:
            if len(data) > SERVER_MAX_OBJ_SIZE:
                self.state["lo_in"] = None
                self.status(cmd, 413, source=luid)
                return _PENDING
            self.state["lo_in"] = {
                "luid": luid,
                "size": size,
                "type": ctype,
                "data": base64.b64encode(data).decode(),
            }
            self.status(cmd, 213, source=luid)
            return _PENDING
        self.state["lo_in"] = None
        # XML turns CRLF into LF, so a vCard's declared size may count the CRs.
        if size is not None and size not in (len(data), len(data.replace(b"\n", b"\r\n"))):
            self.status(cmd, 424, source=luid)
            return _PENDING
        if item.meta is None and ctype:
            item.meta = Meta(type=ctype)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data

    def _prepare(self, ds: str, st: dict, sync_state: SyncState) -> None:
        """Slow and refresh syncs start from no mapping: the old maps only help pairing."""
        if st["prepared"]:
            return
        st["prepared"] = True
        if st["mode"] in (201, 203, 205):
            old = dict(ItemMap.objects.filter(state=sync_state).values_list("luid", "guid"))
            st["old_maps"] = {k: v for k, v in old.items() if k}
            ItemMap.objects.filter(state=sync_state).delete()

    def _sync_state(self, ds: str) -> SyncState:
        """The (device, datastore) state; after the Alert's message only its key is needed."""
        cache = self.__dict__.setdefault("_states", {})
        if ds not in cache:
            st = self.state.get("stores", {}).get(ds) or {}
            if st.get("state_id"):
                cache[ds] = SyncState(
                    pk=st["state_id"], device=self.device, datastore=ds,
                    last_seq=st.get("last_seq", 0),
                )  # fmt: skip
            else:
                cache[ds], _ = SyncState.objects.get_or_create(device=self.device, datastore=ds)
        return cache[ds]

    def _apply(self, ds: str, st: dict, ops: list) -> None:
        store = self.store(ds)
        model = _row_model(ds)
        subscriber = self.profile.subscriber_id
        sync_state = self._sync_state(ds)
        self._prepare(ds, st, sync_state)
        supported = self.device.vcard_properties if ds == "contacts" else None
        policy = self.profile.conflict_policy
        slowish = st["mode"] in (201, 203)
        luids = [_luid(item) for _cmd, item, _d in ops]
        maps = {m.luid: m for m in ItemMap.objects.filter(state=sync_state, luid__in=luids)}
        rows = {
            r.guid: r
            for r in model.objects.filter(
                subscriber_id=subscriber, guid__in=[m.guid for m in maps.values()]
            )
        }
        # Parse every item once: its fields, the handset's view, its digest and match key.
        parsed: list = []
        for cmd, item, data in ops:
            if isinstance(cmd, Delete):
                parsed.append(None)
                continue
            try:
                fields = store.parse(data, _item_type(cmd, item))
            except ItemError as exc:
                parsed.append(exc)
                continue
            view = store.project(fields, supported)
            parsed.append((fields, view, store.hash(view), store.key(fields)))
        pool = None
        if slowish and st.get("store_size") is None:
            # The store as this session found it (before its first new row): the pairing
            # pool, and the size the mass-delete guard compares with.
            st["store_size"] = model.objects.filter(subscriber_id=subscriber, deleted=False).count()
            st["pool_left"] = st["store_size"]
        if slowish:
            # Pairing candidates: only unpaired live rows that share a normalised name with an
            # item of this message (every pairing rule needs the same name), indexed once.
            paired = set(st["paired"])
            buckets = {store.bucket(p[3]) for p in parsed if isinstance(p, tuple)}
            pool = (
                [
                    r
                    for r in self._pool_rows(ds, model, subscriber, buckets)
                    if r.guid not in paired and not _created_here(st, r.guid)
                ]
                if st.get("pool_left", 1) > 0
                else []
            )
            by_hash: dict[str, list] = {}
            by_bucket: dict[Any, list] = {}
            by_guid = {r.guid: r for r in pool}
            keys = {}
            for r in pool:
                by_hash.setdefault(store.hash(store.project(r.fields, supported)), []).append(r)
                keys[r.guid] = store.key(r.fields)
                by_bucket.setdefault(store.bucket(keys[r.guid]), []).append(r)
        new_rows: list = []
        changed_rows: dict[str, Any] = {}
        new_maps: list[_NewRow] = []
        changed_maps: dict[int, ItemMap] = {}
        conflicts: list[SyncConflict] = []
        counts = st["counts"]
        for (cmd, item, _data), p in zip(ops, parsed, strict=True):
            luid = _luid(item)
            if isinstance(cmd, Delete):
                m = maps.get(luid)
                if m is None:
                    self.status(cmd, 211, source=luid)
                else:
                    if m.guid not in st["deletes"]:
                        st["deletes"].append(m.guid)
                    # 200 now; becomes 202 if the mass-delete guard holds it at the end of
                    # the package (only for Deletes in the package's last message).
                    self._delete_statuses[m.guid] = self.status(cmd, 200, source=luid)
                continue
            if isinstance(p, ItemError):
                self.status(cmd, p.status, source=luid)
                self._note_error(f"item {luid}: {p}")
                continue
            fields, client_view, client_hash, key = p
            m = maps.get(luid)
            created_status = 201 if isinstance(cmd, Add) else 200
            if m is None and slowish and pool is not None:
                row = self._pair(store, st, luid, key, client_hash, by_hash, by_bucket, by_guid,
                                 keys)  # fmt: skip
                if row is None:
                    # Known by its GUID as this session's (not an unpaired server item at the
                    # end, never a pairing candidate).
                    row = self._new_row(model, subscriber, store, fields, new_rows, key,
                                        guid=_session_guid(st))  # fmt: skip
                    counts["ca"] += 1
                    shadow = client_view
                else:
                    st["paired"].append(row.guid)
                    st["pool_left"] = st.get("pool_left", 1) - 1
                    if st["mode"] == 203:  # refresh from client: its copy wins, hidden kept
                        merged, _c = store.merge3(
                            store.project(row.fields, supported), row.fields, fields,
                            "client_wins", supported,
                        )  # fmt: skip
                        found = []
                    else:
                        merged, found = store.merge3({}, row.fields, fields, policy, supported)
                    if store.hash(merged) != store.hash(row.fields):
                        self._update_row(row, store, merged, changed_rows)
                        counts["cr"] += 1
                    self._log_conflicts(ds, row.guid, found, conflicts)
                    shadow = client_view
                    if store.hash(store.project(merged, supported)) != client_hash:
                        st["touched"].append(row.guid)
                shadow_hash = client_hash if shadow is client_view else store.hash(shadow)
                new_maps.append(_map(sync_state, luid, row.guid, shadow, shadow_hash))
                maps[luid] = new_maps[-1]
                self.status(cmd, created_status, source=luid)
                continue
            if m is None:
                row = self._new_row(model, subscriber, store, fields, new_rows, key)
                counts["ca"] += 1
                new_maps.append(_map(sync_state, luid, row.guid, client_view, client_hash))
                maps[luid] = new_maps[-1]
                self.status(cmd, created_status, source=luid)
                continue
            if client_hash == m.shadow_hash:
                self.status(cmd, 200, source=luid)  # nothing new (a resend or a touch)
                continue
            item_status = 200
            row = rows.get(m.guid)
            if row is None or row.deleted:
                # Changed on the handset, deleted here: the change brings the item back.
                if row is None:
                    row = self._new_row(model, subscriber, store, fields, new_rows)
                    m.guid = row.guid
                else:
                    row.deleted = False
                    self._update_row(row, store, fields, changed_rows)
                counts["ca"] += 1
                merged = fields
            else:
                shadow = m.shadow or {}
                merged, found = store.merge3(shadow, row.fields, fields, policy, supported)
                if found and policy == "duplicate":
                    self._log_conflicts(ds, row.guid, found, conflicts, resolution="duplicated")
                    dup = self._new_row(model, subscriber, store, fields, new_rows)
                    m.guid = dup.guid
                    counts["ca"] += 1
                    merged = fields
                    item_status = 209  # conflict resolved with a duplicate
                else:
                    self._log_conflicts(ds, row.guid, found, conflicts)
                    if store.hash(merged) != store.hash(row.fields):
                        self._update_row(row, store, merged, changed_rows)
                        counts["cr"] += 1
            m.shadow, m.shadow_hash = client_view, client_hash
            if store.hash(store.project(merged, supported)) != client_hash:
                st["touched"].append(m.guid)
            if m.pk:
                changed_maps[m.pk] = m
            self.status(cmd, item_status, source=luid)
        json_texts: dict = {}
        self._save_rows(model, new_rows, changed_rows, json_texts)
        _copy_insert(ItemMap, new_maps, json_texts)
        if changed_maps:
            ItemMap.objects.bulk_update(
                list(changed_maps.values()), ["guid", "shadow", "shadow_hash"]
            )
        if conflicts:
            self._persist_session()
            for c in conflicts:
                c.session = self.session
            SyncConflict.objects.bulk_create(conflicts)
            counts["conf"] += len(conflicts)

    def _pool_rows(self, ds, model, subscriber, buckets):  # type: ignore[no-untyped-def]
        live = model.objects.filter(subscriber_id=subscriber, deleted=False)
        if ds != "contacts":
            return list(live)  # a device inventory is small
        if not buckets:
            return []
        return list(live.filter(name_norm__in=sorted({b[:200] for b in buckets})))

    def _pair(self, store, st, luid, key, client_hash, by_hash, by_bucket, by_guid, keys):  # type: ignore[no-untyped-def]
        """A server item for a slow-sync client item: old map, same content, or a twin.

        A paired row leaves `by_guid`; the hash and name indexes skip rows no longer in it.
        """
        guid = st.get("old_maps", {}).get(luid)
        if guid in by_guid and keys[guid][0] == key[0]:
            return by_guid.pop(guid)
        for row in by_hash.get(client_hash, ()):
            if row.guid in by_guid:
                return by_guid.pop(row.guid)
        for row in by_bucket.get(store.bucket(key), ()):
            if row.guid in by_guid and store.is_twin(keys[row.guid], key):
                return by_guid.pop(row.guid)
        return None

    def _new_row(self, model, subscriber, store, fields, new_rows, key=None, guid=None):  # type: ignore[no-untyped-def]
        values = store.row_values(fields, key)
        if guid is not None:
            values["guid"] = guid
        row = _new_row_values(model, self.message_time, subscriber_id=subscriber, **values)
        new_rows.append(row)
        return row

    def _update_row(self, row, store, fields, changed_rows) -> None:  # type: ignore[no-untyped-def]
        for k, v in store.row_values(fields).items():
            setattr(row, k, v)
        changed_rows[row.guid] = row

    def _save_rows(self, model, new_rows, changed_rows, json_texts=None) -> None:  # type: ignore[no-untyped-def]
        seqs = _next_seqs(len(new_rows) + len(changed_rows))
        now = timezone.now()
        for row, seq in zip([*new_rows, *changed_rows.values()], seqs, strict=True):
            row.seq = seq
            row.updated = now
        _copy_insert(model, new_rows, json_texts)
        if changed_rows:
            names = ["fields", "deleted", "seq", "updated"]
            names += (
                ["display_name", "name_norm", "phones_norm", "emails_norm", "version"]
                if model is Contact
                else ["kind", "name", "version", "size"]
            )
            if model is Contact:
                for row in changed_rows.values():
                    row.version += 1
            model.objects.bulk_update(list(changed_rows.values()), names)

    def _log_conflicts(self, ds, guid, found, out, resolution=None) -> None:  # type: ignore[no-untyped-def]
        for c in found:
            out.append(
                SyncConflict(
                    session=self.session,
                    datastore=ds,
                    guid=guid,
                    field=c.field,
                    server_value=c.server_value[:2000],
                    client_value=c.client_value[:2000],
                    resolution=resolution or c.resolution,
                )
            )

    def _note_error(self, text: str) -> None:
        errors = self.state.setdefault("errors", [])
        if len(errors) < 50:
            errors.append(text[:300])

    # -- Map
    def _map(self, cmd: Map) -> None:
        server_uri = cmd.target.loc_uri if cmd.target else ""
        ds = resolve_store(server_uri)
        if ds is None or ds not in self.state["stores"]:
            self.status(cmd, 404, target=server_uri)
            return
        sync_state = self._sync_state(ds)
        pairs = [
            (mi.target.loc_uri, mi.source.loc_uri)
            for mi in cmd.map_items
            if mi.target and mi.source and mi.target.loc_uri and mi.source.loc_uri
        ]
        existing = {m.guid: m for m in ItemMap.objects.filter(state=sync_state,
                                                              guid__in=[g for g, _ in pairs])}  # fmt: skip
        ItemMap.objects.filter(state=sync_state, luid__in=[lu for _, lu in pairs]).exclude(
            guid__in=[g for g, _ in pairs]
        ).delete()
        create = []
        for guid, luid in pairs:
            m = existing.get(guid)
            if m is None:
                create.append(ItemMap(state=sync_state, guid=guid, luid=luid, shadow={},
                                      shadow_hash=""))  # fmt: skip
            else:
                m.luid = luid
        if existing:
            ItemMap.objects.bulk_update(list(existing.values()), ["luid"])
        if create:
            ItemMap.objects.bulk_create(create, ignore_conflicts=True)
        self.status(cmd, 200, target=server_uri, source=cmd.source.loc_uri if cmd.source else None)

    # -- statuses of our commands
    def _client_status(self, st: Status) -> None:
        key = f"{st.msg_ref}:{st.cmd_ref}"
        sent = self.state["sent"].pop(key, None)
        if sent is None:
            return
        code = st.data or 0
        ds = sent["ds"]
        sync_state = self._sync_state(ds)
        if code == 213:
            return
        if not 200 <= code < 300:
            self._note_error(f"client answered {code} to {sent['op']} of {sent['guid']}")
            if sent["op"] != "Delete":
                # Not on the handset as sent: forget the shadow so the next session resends.
                ItemMap.objects.filter(state=sync_state, guid=sent["guid"]).update(shadow_hash="")
            return
        if sent["op"] == "Delete":
            ItemMap.objects.filter(state=sync_state, guid=sent["guid"]).delete()
        elif sent["op"] == "Add":
            updated = ItemMap.objects.filter(state=sync_state, guid=sent["guid"]).update(
                shadow=sent["shadow"], shadow_hash=sent["hash"]
            )
            if not updated:
                ItemMap.objects.create(state=sync_state, guid=sent["guid"], luid=None,
                                       shadow=sent["shadow"], shadow_hash=sent["hash"])  # fmt: skip
        else:
            ItemMap.objects.filter(state=sync_state, guid=sent["guid"]).update(
                shadow=sent["shadow"], shadow_hash=sent["hash"]
            )

    # -- what comes next
    def _advance(self) -> None:
        phase = self.state["phase"]
        final = self.msg.final
        if (
            phase in ("init", "sync")
            and final
            and self.state.get("init_done")
            and (phase == "sync" or not self.out)
        ):
            # End of package 3: apply deletions through the guard, then our changes.
            for ds, st in self.state["stores"].items():
                self._finish_client_changes(ds, st)
                self._queue_server_changes(ds, st)
            self.state["phase"] = "map"
        elif phase == "init" and final:
            self.state["init_done"] = True
        elif phase == "map" and final and not self.state["outbox"] and self.state.get("final_sent"):
            # Package 5 complete: the session is done, anchors move on.
            self.state["phase"] = "done"

    def _finish_client_changes(self, ds: str, st: dict) -> None:
        model = _row_model(ds)
        subscriber = self.profile.subscriber_id
        sync_state = self._sync_state(ds)
        guids = list(dict.fromkeys(st["deletes"]))
        if st["mode"] == 203:
            self._prepare(ds, st, sync_state)
            paired = set(st["paired"])
            guids += [
                g
                for g in model.objects.filter(subscriber_id=subscriber, deleted=False).values_list(
                    "guid", flat=True
                )
                if g not in paired and not _created_here(st, g)
            ]
        if not guids:
            return
        if st.get("store_size") is None:
            # The store as the session found it: rows that came alive in it are not counted.
            live = model.objects.filter(subscriber_id=subscriber, deleted=False).count()
            st["store_size"] = max(live - st["counts"]["ca"], 0)
        if len(guids) >= GUARD_MIN_ITEMS and len(guids) > GUARD_FRACTION * st["store_size"]:
            self._persist_session()
            HeldDelete.objects.create(
                session=self.session,
                subscriber_id=subscriber,
                datastore=ds,
                guids=guids,
                store_size=st["store_size"],
            )
            ItemMap.objects.filter(state=sync_state, guid__in=guids).delete()
            st["counts"]["held"] += len(guids)
            for guid in guids:  # "accepted for processing": an operator decides
                held_status = self._delete_statuses.get(guid)
                if held_status is not None:
                    held_status.data = 202
            log.warning(
                "mass-delete guard: %d of %d %s items held for review (session %s)",
                len(guids),
                st["store_size"],
                ds,
                self.session.pk,
            )
            return
        rows = list(model.objects.filter(subscriber_id=subscriber, guid__in=guids, deleted=False))
        seqs = _next_seqs(len(rows))
        now = timezone.now()
        for row, seq in zip(rows, seqs, strict=True):
            row.deleted, row.seq, row.updated = True, seq, now
        model.objects.bulk_update(rows, ["deleted", "seq", "updated"])
        ItemMap.objects.filter(state=sync_state, guid__in=guids).delete()
        st["counts"]["cd"] += len(rows)

    def _queue_server_changes(self, ds: str, st: dict) -> None:
        model = _row_model(ds)
        subscriber = self.profile.subscriber_id
        sync_state = self._sync_state(ds)
        self._prepare(ds, st, sync_state)
        rows_q = model.objects.filter(subscriber_id=subscriber)
        mode = st["mode"]
        last_seq = st.get("last_seq", sync_state.last_seq)
        if mode not in SEND_MODES:
            # Nothing went to the handset: server changes stay pending for the next session.
            st["seq_snapshot"] = last_seq
            return
        if mode in (201, 205):
            st["seq_snapshot"] = rows_q.aggregate(m=Max("seq"))["m"] or 0
            candidates = rows_q.filter(deleted=False)
            rows = list(candidates.only("guid", "fields", "deleted", "seq").order_by("id"))
        elif connection.vendor != "postgresql":
            candidates = rows_q.filter(Q(seq__gt=last_seq) | Q(guid__in=st["touched"]))
            rows = list(candidates.only("guid", "fields", "deleted", "seq").order_by("id"))
            st["seq_snapshot"] = max([last_seq, *(r.seq for r in rows)])
        else:
            # Every row changed since the last session is a candidate, so the highest seq
            # among them is the store's: no separate MAX query. Plain SQL: every session
            # runs this.
            table = connection.ops.quote_name(model._meta.db_table)
            fields_field = model._meta.get_field("fields")
            with connection.cursor() as cur:
                cur.execute(
                    f"SELECT guid, fields, deleted, seq FROM {table} WHERE subscriber_id = %s"
                    " AND (seq > %s OR guid = ANY(%s)) ORDER BY id",
                    [subscriber, last_seq, list(st["touched"])],
                )
                rows = [
                    _Candidate(guid, fields_field.from_db_value(f, None, connection), deleted, seq)
                    for guid, f, deleted, seq in cur.fetchall()
                ]
            st["seq_snapshot"] = max([last_seq, *(r.seq for r in rows)])
        if not rows:
            st["noc"] = 0
            return
        guids = [r.guid for r in rows]
        maps_q = ItemMap.objects.filter(state=sync_state)
        if len(guids) <= 5000:
            maps_q = maps_q.filter(guid__in=guids)
        maps = {m.guid: m for m in maps_q}
        store = self.store(ds)
        supported = self.device.vcard_properties if ds == "contacts" else None
        outbox = self.state["outbox"]
        unmapped_deleted: list[int] = []
        for row in rows:
            m = maps.get(row.guid)
            if row.deleted:
                if m is not None and m.luid:
                    outbox.append({"ds": ds, "op": "Delete", "guid": row.guid, "luid": m.luid})
                elif m is not None:
                    unmapped_deleted.append(m.pk)
                continue
            if m is None or not m.luid:
                outbox.append({"ds": ds, "op": "Add", "guid": row.guid, "luid": None})
            elif store.hash(store.project(row.fields, supported)) != m.shadow_hash:
                outbox.append({"ds": ds, "op": "Replace", "guid": row.guid, "luid": m.luid})
        if unmapped_deleted:
            ItemMap.objects.filter(pk__in=unmapped_deleted).delete()
        st["noc"] = sum(1 for e in outbox if e["ds"] == ds)

    # -- the reply
    def _respond(self) -> Reply:
        session = self.session
        self.state["server_msg"] = self.state.get("server_msg", 0) + 1
        hdr = self.msg.hdr
        resp_uri = f"{self.endpoint_url}?sessionid={session.token}"
        reply_hdr = SyncHdr(
            ver_dtd=hdr.ver_dtd,
            ver_proto=hdr.ver_proto or f"SyncML/{hdr.ver_dtd}",
            session_id=hdr.session_id,
            msg_id=str(self.state["server_msg"]),
            target=Location(loc_uri=self.dev_id),
            source=Location(loc_uri=hdr.target.loc_uri if hdr.target else self.endpoint_url),
            resp_uri=resp_uri,
            # What this server accepts (MaxMsgSize in a header is its sender's own limit),
            # not the client's: a handset's small buffer limits our replies, not its messages.
            meta=Meta(max_msg_size=SERVER_MAX_MSG_SIZE),
        )
        commands: list = [self.header_status, *self.statuses]
        for c in commands:
            c.cmd_id = self.cmd_id()
        for c in self.out:
            c.cmd_id = self.cmd_id()
            commands.append(c)
        final = True
        phase = self.state["phase"]
        if phase == "map" and not self.state.get("final_sent"):
            final = self._fill(commands)
            if final:
                self.state["final_sent"] = True
        elif not self.msg.final:
            final = False  # the client's package continues
        reply = SyncML(hdr=reply_hdr, commands=commands, final=final)
        if phase == "done":
            self._complete()
        out = serialize_message(reply, self.encoding)
        msg_id = hdr.msg_id[:16]
        seen = self.state.setdefault("seen", [])
        if msg_id not in seen:
            seen.append(msg_id)
        session.state = self.state
        now = timezone.now()
        session.last_activity = now
        session.message_count += 1
        self._update_counts()
        message = [msg_id, now, len(self.body), len(out), pack_request(self.body, self.msg),
                   pack_response(out)]  # fmt: skip
        if session.pk is None:
            _insert_session(session)
            _insert_message(session.pk, message)
        else:
            _save_session_and_message(session, message)
        return Reply(out, CONTENT_TYPE_WBXML if self.encoding == "wbxml" else CONTENT_TYPE_XML)

    def _fill(self, commands: list) -> bool:
        """Add our Sync commands up to the client's MaxMsgSize; True when all went out."""
        max_msg = self.state["max_msg"]
        used = 600 + sum(STATUS_COST for _ in commands)
        for c in commands:
            if isinstance(c, Results):
                used += 2500
        budget = max_msg - used
        outbox = self.state["outbox"]
        stores = self.state["stores"]
        # Every datastore gets its Sync in package 4, even with no changes.
        pending_ds = [ds for ds, st in stores.items() if not st["sync_sent"]]
        groups: dict[str, Sync] = {}

        def sync_for(ds: str) -> Sync:
            if ds not in groups:
                st = stores[ds]
                sync = Sync(
                    cmd_id=self.cmd_id(),
                    target=Location(loc_uri=st["client_uri"]),
                    source=Location(loc_uri=st["server_uri"]),
                )
                if not st["noc_sent"] and self.msg.hdr.ver_dtd == "1.2":
                    sync.number_of_changes = st.get("noc", 0)
                    st["noc_sent"] = True
                st["sync_sent"] = True
                groups[ds] = sync
                commands.append(sync)
            return groups[ds]

        for ds in pending_ds:
            sync_for(ds)
            budget -= 200
        while outbox and budget > 0:
            batch = outbox[:50]
            rendered = self._render(batch)
            for entry in batch:
                cost = self._emit(entry, rendered.get(entry["guid"]), budget, sync_for)
                if cost is None:
                    return False  # the rest goes in the next message
                budget -= cost
                if entry.get("offset"):
                    return False  # a large object continues in the next message
                outbox.pop(0)
        return not outbox

    def _render(self, batch: list) -> dict:
        out: dict = {}
        by_ds: dict[str, list[str]] = {}
        for e in batch:
            if e["op"] != "Delete" and "chunk_data" not in e:
                by_ds.setdefault(e["ds"], []).append(e["guid"])
        for ds, guids in by_ds.items():
            store = self.store(ds)
            st = self.state["stores"][ds]
            supported = self.device.vcard_properties if ds == "contacts" else None
            for row in _row_model(ds).objects.filter(guid__in=guids).only("guid", "fields"):
                view = store.project(row.fields, supported)
                text, ctype = store.render(view, st["version"])
                out[row.guid] = (text, ctype, view, store.hash(view))
        return out

    def _emit(self, entry: dict, rendered, budget: int, sync_for) -> int | None:  # type: ignore[no-untyped-def]
        ds, op = entry["ds"], entry["op"]
        st = self.state["stores"][ds]
        sync = sync_for(ds)
        msg_id = str(self.state["server_msg"])
        if op == "Delete":
            if budget < ITEM_OVERHEAD:
                return None
            cmd = Delete(cmd_id=self.cmd_id(), items=[Item(target=Location(loc_uri=entry["luid"]))])
            sync.commands.append(cmd)
            self.state["sent"][f"{msg_id}:{cmd.cmd_id}"] = {
                "ds": ds, "op": "Delete", "guid": entry["guid"]}  # fmt: skip
            st["counts"]["sd"] += 1
            return ITEM_OVERHEAD
        if "chunk_data" in entry:
            data = base64.b64decode(entry["chunk_data"])
            ctype, view, digest = entry["ctype"], entry["view"], entry["hash"]
        elif rendered is None:  # removed meanwhile: nothing to send
            entry["skip"] = True
            return 0
        else:
            text, ctype, view, digest = rendered
            data = text.encode("utf-8")
        offset = entry.get("offset", 0)
        remaining = data[offset:]
        first = offset == 0
        item = Item(meta=Meta(type=ctype))
        if op == "Add":
            item.source = Location(loc_uri=entry["guid"])
        else:
            item.target = Location(loc_uri=entry["luid"])
            item.source = Location(loc_uri=entry["guid"])
        if len(remaining) + ITEM_OVERHEAD <= budget:
            item.data = remaining.decode("utf-8")
            if not first:
                entry.pop("offset", None)
            cost = len(remaining) + ITEM_OVERHEAD
            done = True
        else:
            max_msg = self.state["max_msg"]
            if len(remaining) + ITEM_OVERHEAD <= max_msg - 1200 and first:
                return None  # fits in a message of its own: next message
            if budget < 1024:
                return None
            cut = _utf8_cut(remaining, budget - ITEM_OVERHEAD)
            item.data = remaining[:cut].decode("utf-8")
            item.more_data = True
            entry["offset"] = offset + cut
            if first:
                entry["chunk_data"] = base64.b64encode(data).decode()
                entry.update(ctype=ctype, view=view, hash=digest)
            cost = cut + ITEM_OVERHEAD
            done = False
        if first and not done:
            item.meta.size = len(data)
        cls = Add if op == "Add" else Replace
        cmd = cls(cmd_id=self.cmd_id(), items=[item])
        sync.commands.append(cmd)
        if done:
            self.state["sent"][f"{msg_id}:{cmd.cmd_id}"] = {
                "ds": ds, "op": op, "guid": entry["guid"], "shadow": view, "hash": digest}  # fmt: skip
            st["counts"]["sa" if op == "Add" else "sr"] += 1
        return cost

    def _update_counts(self) -> None:
        s = self.session
        stores = self.state["stores"].values()
        s.client_added = sum(st["counts"]["ca"] for st in stores)
        s.client_replaced = sum(st["counts"]["cr"] for st in stores)
        s.client_deleted = sum(st["counts"]["cd"] for st in stores)
        s.server_added = sum(st["counts"]["sa"] for st in stores)
        s.server_replaced = sum(st["counts"]["sr"] for st in stores)
        s.server_deleted = sum(st["counts"]["sd"] for st in stores)
        s.conflict_count = sum(st["counts"]["conf"] for st in stores)
        if self.state.get("errors"):
            s.error = "\n".join(self.state["errors"])[:5000]

    def _complete(self) -> None:
        now = timezone.now()
        self._persist_session()
        for ds, st in self.state["stores"].items():
            with connection.cursor() as cur:
                cur.execute(
                    "UPDATE sync_syncstate SET client_anchor = %s, server_anchor = %s,"
                    " last_seq = %s, last_mode = %s, completed = %s WHERE id = %s",
                    [(st["client_next"] or "")[:64], st["server_next"],
                     st.get("seq_snapshot", 0), st["mode"], now, self._sync_state(ds).pk],
                )  # fmt: skip
        s = self.session
        s.status = SessionStatus.COMPLETED
        s.finished = now
        self.state["outbox"] = []
        self.state["sent"] = {}
        self.state.pop("old_maps", None)
        for st in self.state["stores"].values():
            st.pop("old_maps", None)
            st["paired"] = []
        held = sum(st["counts"]["held"] for st in self.state["stores"].values())
        record_change(
            actor=Actor(kind="system", label=f"syncml {self.profile.username}"),
            action=AuditAction.UPDATE,
            instance=s,
            after={
                "modes": s.modes,
                "client": [s.client_added, s.client_replaced, s.client_deleted],
                "server": [s.server_added, s.server_replaced, s.server_deleted],
                "conflicts": s.conflict_count,
                "held_deletes": held,
            },
            message="SyncML session completed",
        )


_PENDING = object()


@dataclass
class _Candidate:
    """A DB2 row that may go to the handset (what `_queue_server_changes` reads of it)."""

    guid: str
    fields: Any
    deleted: bool
    seq: int


def _luid(item: Item) -> str:
    if item.source is not None and item.source.loc_uri:
        return item.source.loc_uri[:128]
    if item.target is not None and item.target.loc_uri:
        return item.target.loc_uri[:128]
    return ""


def _item_type(cmd, item: Item) -> str | None:  # type: ignore[no-untyped-def]
    if item.meta is not None and item.meta.type:
        return item.meta.type
    if getattr(cmd, "meta", None) is not None and cmd.meta.type:
        return cmd.meta.type
    return None


def _item_size(cmd, item: Item) -> int | None:  # type: ignore[no-untyped-def]
    if item.meta is not None and item.meta.size is not None:
        return item.meta.size
    if getattr(cmd, "meta", None) is not None and cmd.meta.size is not None:
        return cmd.meta.size
    return None


def _utf8_cut(data: bytes, n: int) -> int:
    n = max(1, min(n, len(data)))
    while n < len(data) and n > 0 and 0x80 <= data[n] <= 0xBF:
        n -= 1
    return n


def _session_guid(st: dict) -> str:
    """The GUID of a row a slow or refresh session creates: a random prefix of the session's
    and a counter. The session recognises its own rows by the prefix rather than listing
    them in its state, which is rewritten with every message (a refresh of thousands of items
    made it the largest write of the session)."""
    if "own_prefix" not in st:
        st["own_prefix"] = secrets.token_hex(10)
        st["own_count"] = 0
    st["own_count"] += 1
    return f"{st['own_prefix']}{st['own_count']:012x}"


def _created_here(st: dict, guid: str) -> bool:
    prefix = st.get("own_prefix")
    return prefix is not None and guid.startswith(prefix)


def _map(state: SyncState, luid: str, guid: str, shadow: dict, shadow_hash: str) -> _NewRow:
    return _new_row_values(ItemMap, state_id=state.pk, luid=luid, guid=guid, shadow=shadow,
                           shadow_hash=shadow_hash)  # fmt: skip


def _imei(dev_id: str) -> str:
    """The IMEI in a DevID such as ``IMEI:356938035643809`` (or a bare 14-16 digit id)."""
    text = dev_id.strip()
    if text.upper().startswith("IMEI:"):
        text = text[5:]
    digits = text.strip()
    return digits if digits.isdigit() and 14 <= len(digits) <= 16 else ""


def _datastore_json(ds: DataStore) -> dict:
    caps = []
    for c in ds.ctcaps:
        caps.append(
            {"type": c.ct_type, "version": c.ver_ct, "properties": sorted(c.property_names())}
        )
    return {
        "source_ref": ds.source_ref,
        "display_name": ds.display_name,
        "rx_pref": ds.rx_pref.ct_type if ds.rx_pref else None,
        "tx_pref": ds.tx_pref.ct_type if ds.tx_pref else None,
        "max_guid_size": ds.max_guid_size,
        "sync_types": ds.sync_types,
        "ctcaps": caps,
    }


def server_devinf(version: str) -> DevInf:
    """What this server supports (OMA DS DevInf 1.2; flattened for 1.1 by the codec)."""

    def store(uri: str, name: str, rx: list[tuple[str, str]]) -> DataStore:
        refs = [ContentTypeRef(ct_type=t, ver_ct=v) for t, v in rx]
        return DataStore(
            source_ref=uri,
            display_name=name,
            max_guid_size=64,
            rx_pref=refs[0],
            rx=refs[1:],
            tx_pref=refs[0],
            tx=refs[1:],
            sync_types=[1, 2, 3, 4, 5, 6, 7],
        )

    return DevInf(
        ver_dtd=version,
        man="SIM sync portal",
        mod="SyncML DS server",
        swv="1.0",
        dev_id="portal-syncml-server",
        dev_typ="server",
        utc=True,
        support_large_objs=True,
        support_number_of_changes=True,
        datastores=[
            store("contacts", "Contacts", [(VCARD30, "3.0"), (VCARD21, "2.1")]),
            store("inventory", "Device inventory", [(INVENTORY_TYPE, "1.0")]),
        ],
    )


# ------------------------------------------------------------------------------- housekeeping


def expire_sessions(*, idle: datetime.timedelta = datetime.timedelta(minutes=30)) -> int:
    """Mark sessions without traffic for `idle` as abandoned (their anchors never moved)."""
    cutoff = timezone.now() - idle
    return SyncSession.objects.filter(status=SessionStatus.ACTIVE, last_activity__lt=cutoff).update(
        status=SessionStatus.ABANDONED, finished=timezone.now(), state={}
    )


__all__ = ["HeldDeleteStatus", "Reply", "expire_sessions", "handle_request", "server_devinf"]
