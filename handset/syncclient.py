"""The virtual handset's SyncML DS client (OMA DS 1.1/1.2 over HTTP), written for this project.

One `SyncClient` per handset account; `sync()` runs one session for the configured datastores:

* package 1: SyncHdr with credentials (syncml:auth-basic, or syncml:auth-md5 with the nonce of
  the last ``Chal``; a 401/407 with a fresh ``NextNonce`` is answered with a new attempt, at
  most three), ``Put`` of our DevInf with CTCap, ``Get`` of the server's, one ``Alert`` per
  datastore with its anchors (``Last`` from the previous session, a new ``Next``);
* package 3: per datastore a ``Sync`` with what changed since the last completed session
  (two-way, one-way from client), every item (slow, refresh from client) or nothing (from
  server), split over messages below the server's ``MaxMsgSize`` and the phone's own; an item
  too large for one message goes as a large object (``Size`` on the first chunk, ``MoreData``
  on all but the last);
* package 4: the server's changes, possibly over several messages (we answer with our statuses
  and ``Alert 222``) and in chunks (``213`` per chunk, ``424`` on a size mismatch);
* package 5: statuses and a ``Map`` of the LUIDs given to the server's additions; package 6
  closes the session, and only then do the anchors and the change snapshot move on.

The client finds local changes by comparing each datastore with its snapshot of the last
completed session (LUID -> MD5 of the item), so any `LocalStore` works. Its state
(`ClientState`: nonce, anchors, snapshots) is plain data that survives a restart via
`to_dict`/`from_dict`. Transport: `http_post` (urllib) or any `(url, body, content_type) ->
(status, body)` callable.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync.syncml import (
    CONTENT_TYPE_WBXML,
    CONTENT_TYPE_XML,
    DEVINF_XML_TYPE,
    Add,
    Alert,
    Anchor,
    Delete,
    DevInf,
    Get,
    Item,
    Location,
    Map,
    MapItem,
    Meta,
    Put,
    Replace,
    Results,
    Status,
    Sync,
    SyncHdr,
    SyncML,
    SyncMLError,
    parse_message,
    serialize_message,
)
from sync.syncml.auth import AUTH_BASIC, AUTH_MD5, decode_nonce, make_cred

from .addressbook import DeviceRecord, Inventory, LocalStore

log = logging.getLogger(__name__)

Transport = Callable[[str, bytes, str], tuple[int, bytes]]

TWO_WAY, SLOW, ONE_WAY_FROM_CLIENT, REFRESH_FROM_CLIENT = 200, 201, 202, 203
ONE_WAY_FROM_SERVER, REFRESH_FROM_SERVER = 204, 205
SENDS_CHANGES = {TWO_WAY, ONE_WAY_FROM_CLIENT}
SENDS_ALL = {SLOW, REFRESH_FROM_CLIENT}
RESETS_SNAPSHOT = {SLOW, REFRESH_FROM_CLIENT, REFRESH_FROM_SERVER}
MODE_NAMES = {
    200: "two-way", 201: "slow", 202: "one-way-from-client", 203: "refresh-from-client",
    204: "one-way-from-server", 205: "refresh-from-server",
}  # fmt: skip
ITEM_OVERHEAD = 320  # what a command costs around its data (XML)
MESSAGE_OVERHEAD = 1500  # header, Sync wrappers, statuses
MIN_CHUNK = 512
MAX_AUTH_ATTEMPTS = 3


class SessionError(Exception):
    """A session that could not complete; `status` is the SyncML or HTTP status if known."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def http_post(
    url: str, body: bytes, content_type: str, *, timeout: float = 30.0
) -> tuple[int, bytes]:
    """POST with urllib; HTTP errors come back as (status, body), network errors raise."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url!r}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def item_hash(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.md5(raw).hexdigest()


# --- Configuration and state -------------------------------------------------------------------


@dataclass
class Datastore:
    """One datastore of the session: the local store and how it maps to the server."""

    local_uri: str  # e.g. "./Contacts"
    remote_uri: str  # e.g. "contacts"
    content_type: str
    store: LocalStore
    mode: int = TWO_WAY
    name: str = ""


@dataclass
class StoreState:
    last_anchor: str | None = None
    snapshot: dict[str, str] = field(default_factory=dict)  # LUID -> item hash when agreed


@dataclass
class ClientState:
    nonce: str | None = None  # the server's last NextNonce (wire form)
    sessions: int = 0
    stores: dict[str, StoreState] = field(default_factory=dict)  # by remote URI

    def store(self, remote_uri: str) -> StoreState:
        return self.stores.setdefault(remote_uri, StoreState())

    def to_dict(self) -> dict:
        return {
            "nonce": self.nonce,
            "sessions": self.sessions,
            "stores": {k: {"last_anchor": v.last_anchor, "snapshot": v.snapshot}
                       for k, v in self.stores.items()},
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> ClientState:
        return cls(
            nonce=data.get("nonce"),
            sessions=int(data.get("sessions", 0)),
            stores={
                k: StoreState(v.get("last_anchor"), dict(v.get("snapshot", {})))
                for k, v in data.get("stores", {}).items()
            },
        )


@dataclass
class DatastoreReport:
    remote_uri: str
    requested: int
    mode: int | None = None  # what the server agreed to (None: datastore refused)
    alert_status: int | None = None
    sent: dict[str, int] = field(default_factory=lambda: {"add": 0, "replace": 0, "delete": 0})
    received: dict[str, int] = field(default_factory=lambda: {"add": 0, "replace": 0, "delete": 0})
    failed: dict[str, int] = field(default_factory=dict)  # LUID -> status the server answered
    chunks_sent: int = 0
    chunks_received: int = 0


@dataclass
class SessionReport:
    ok: bool = False
    status: int | None = None  # header status of the server's first answer (212, 200, 401...)
    error: str = ""
    session_id: str = ""
    messages: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    auth_attempts: int = 0
    datastores: dict[str, DatastoreReport] = field(default_factory=dict)
    server_devinf: DevInf | None = None
    started: float = 0.0
    finished: float = 0.0

    def summary(self) -> str:
        parts = []
        for uri, d in self.datastores.items():
            mode = MODE_NAMES.get(d.mode or 0, str(d.mode))
            parts.append(f"{uri}:{mode} sent {d.sent} received {d.received}")
        state = "ok" if self.ok else f"failed ({self.error})"
        return f"session {self.session_id} {state}: " + "; ".join(parts)


# --- The client --------------------------------------------------------------------------------


@dataclass
class _Sent:
    ds: str
    op: str  # add, replace, delete, map, other
    luid: str = ""
    chunk: bool = False


class SyncClient:
    """A SyncML DS client for one account on one handset (see the module docstring)."""

    def __init__(
        self,
        *,
        server_url: str,
        username: str,
        secret: str,
        device: DeviceRecord,
        datastores: list[Datastore],
        auth: str = "md5",
        encoding: str = "xml",
        version: str = "1.2",
        max_msg_size: int = 64 * 1024,
        max_obj_size: int = 4 * 1024 * 1024,
        state: ClientState | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if encoding not in ("xml", "wbxml"):
            raise ValueError("encoding must be xml or wbxml")
        if version not in ("1.1", "1.2"):
            raise ValueError("SyncML version must be 1.1 or 1.2")
        self.server_url = server_url
        self.username = username
        self.secret = secret
        self.device = device
        self.datastores = datastores
        self.auth = AUTH_BASIC if auth in ("basic", AUTH_BASIC) else AUTH_MD5
        self.encoding = encoding
        self.version = version
        self.max_msg_size = max_msg_size
        self.max_obj_size = max_obj_size
        self.state = state or ClientState()
        self.transport: Transport = transport or http_post
        self.clock = clock
        self.server_devinf: DevInf | None = None

    # --- one session ---------------------------------------------------------------------------

    def sync(self, modes: dict[str, int] | None = None) -> SessionReport:
        """Run one session. `modes` overrides the mode per remote URI (alert codes 200-210);
        datastores not named keep their configured mode. Never raises for protocol or network
        trouble: the report says what happened."""
        report = SessionReport(started=self.clock())
        try:
            _Session(self, report, modes or {}).run()
            report.ok = True
        except SessionError as exc:
            report.error = str(exc)
            if report.status is None:
                report.status = exc.status
        except (OSError, SyncMLError) as exc:
            report.error = f"{type(exc).__name__}: {exc}"
        report.finished = self.clock()
        log.info("%s %s", self.device.dev_id, report.summary())
        return report


class _Session:
    def __init__(self, client: SyncClient, report: SessionReport, modes: dict[str, int]) -> None:
        self.c = client
        self.report = report
        client.state.sessions += 1
        millis = int(client.clock() * 1000) % 10**10
        self.session_id = f"{millis}{client.state.sessions % 1000:03d}"
        report.session_id = self.session_id
        self.msg_ids = itertools.count(1)
        self.cmd_ids = itertools.count(1)
        self.url = client.server_url
        self.server_max_msg = client.max_msg_size
        self.sent: dict[tuple[str, str], _Sent] = {}
        self.stores = {d.remote_uri: d for d in client.datastores}
        self.requested: dict[str, int] = {}
        now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(client.clock()))
        self.next_anchor = f"{now}-{self.session_id}"
        for d in client.datastores:
            code = modes.get(d.remote_uri, d.mode)
            st = client.state.store(d.remote_uri)
            if st.last_anchor is None and code in (200, 202, 204, 206, 207, 209):
                code = SLOW  # first session with this server: nothing to compare against
            self.requested[d.remote_uri] = code
            report.datastores[d.remote_uri] = DatastoreReport(d.remote_uri, code)
        self.modes: dict[str, int] = {}
        self.pending_statuses: list[Status] = []
        self.maps: dict[str, list[MapItem]] = {}
        self.agreed: dict[str, dict[str, str | None]] = {u: {} for u in self.stores}
        self.failed: dict[str, set[str]] = {u: set() for u in self.stores}
        self.lo_in: dict[str, Any] | None = None

    # --- plumbing ------------------------------------------------------------------------------

    def cmd_id(self) -> str:
        return str(next(self.cmd_ids))

    def header(self, cred: bool = False) -> SyncHdr:
        c = self.c
        hdr = SyncHdr(
            ver_dtd=c.version,
            ver_proto=f"SyncML/{c.version}",
            session_id=self.session_id,
            msg_id=str(next(self.msg_ids)),
            target=Location(loc_uri=c.server_url),
            source=Location(loc_uri=c.device.dev_id, loc_name=c.username),
            meta=Meta(
                max_msg_size=c.max_msg_size,
                max_obj_size=c.max_obj_size if c.version == "1.2" else None,
            ),
        )
        if cred:
            nonce = decode_nonce(c.state.nonce) if c.state.nonce else b""
            hdr.cred = make_cred(c.auth, c.username, c.secret, nonce)
        return hdr

    def exchange(self, hdr: SyncHdr, commands: list, final: bool, init: bool = False) -> SyncML:
        msg = SyncML(hdr=hdr, commands=commands, final=final)
        body = serialize_message(msg, self.c.encoding)
        ctype = CONTENT_TYPE_WBXML if self.c.encoding == "wbxml" else CONTENT_TYPE_XML
        status, answer = self.c.transport(self.url, body, ctype)
        self.report.messages += 1
        self.report.bytes_sent += len(body)
        self.report.bytes_received += len(answer)
        if status != 200:
            raise SessionError(f"HTTP {status}: {answer[:200]!r}", status)
        reply = parse_message(answer)
        if reply.hdr.resp_uri:
            self.url = reply.hdr.resp_uri
        if reply.hdr.meta and reply.hdr.meta.max_msg_size:
            # The phone builds its messages in its own buffer too: the smaller limit holds.
            self.server_max_msg = min(reply.hdr.meta.max_msg_size, self.c.max_msg_size)
        for cmd in reply.commands:
            is_header = isinstance(cmd, Status) and cmd.cmd_ref == "0"
            if is_header and cmd.chal and cmd.chal.meta and cmd.chal.meta.next_nonce:
                self.c.state.nonce = cmd.chal.meta.next_nonce
        code = self.header_status(reply)
        if not init and code not in (200, 212):
            raise SessionError(f"server answered {code} in session {self.session_id}", code)
        return reply

    @staticmethod
    def header_status(reply: SyncML) -> int | None:
        for cmd in reply.commands:
            if isinstance(cmd, Status) and cmd.cmd_ref == "0":
                return cmd.data
        return None

    def status_for(self, reply: SyncML, cmd: Any, code: int, **refs: Any) -> None:
        self.pending_statuses.append(
            Status(
                cmd_id="",
                msg_ref=reply.hdr.msg_id,
                cmd_ref=cmd.cmd_id,
                cmd=cmd.NAME,
                data=code,
                target_refs=[refs["target"]] if refs.get("target") else [],
                source_refs=[refs["source"]] if refs.get("source") else [],
            )
        )

    def take_statuses(self) -> list:
        out = self.pending_statuses
        self.pending_statuses = []
        for st in out:
            st.cmd_id = self.cmd_id()
        return out

    # --- the packages --------------------------------------------------------------------------

    def run(self) -> None:
        reply = self.init()
        self.handle(reply)
        self.send_changes()
        self.receive_changes_and_map()
        self.commit()

    def init(self) -> SyncML:
        c = self.c
        last_status = None
        for attempt in range(1, MAX_AUTH_ATTEMPTS + 1):
            self.report.auth_attempts = attempt
            nonce_before = c.state.nonce
            hdr = self.header(cred=True)
            commands: list = []
            ref = "./devinf12" if c.version == "1.2" else "./devinf11"
            stores = [(d.local_uri, d.name or d.remote_uri, d.content_type)
                      for d in c.datastores]  # fmt: skip
            devinf = c.device.devinf(stores, version=c.version)
            commands.append(Put(cmd_id=self.cmd_id(), meta=Meta(type=DEVINF_XML_TYPE),
                                items=[Item(source=Location(loc_uri=ref), data=devinf)]))  # fmt: skip
            if c.server_devinf is None:
                commands.append(Get(cmd_id=self.cmd_id(), meta=Meta(type=DEVINF_XML_TYPE),
                                    items=[Item(target=Location(loc_uri=ref))]))  # fmt: skip
            for d in c.datastores:
                st = c.state.store(d.remote_uri)
                alert_id = self.cmd_id()
                self.sent[(hdr.msg_id, alert_id)] = _Sent(d.remote_uri, "alert")
                commands.append(
                    Alert(
                        cmd_id=alert_id,
                        data=self.requested[d.remote_uri],
                        items=[
                            Item(
                                target=Location(loc_uri=d.remote_uri),
                                source=Location(loc_uri=d.local_uri),
                                meta=Meta(
                                    type=d.content_type,
                                    anchor=Anchor(last=st.last_anchor, next=self.next_anchor),
                                    max_obj_size=c.max_obj_size if c.version == "1.2" else None,
                                ),
                            )
                        ],
                    )
                )
            reply = self.exchange(hdr, commands, True, init=True)
            last_status = self.header_status(reply)
            self.report.status = last_status
            if last_status in (200, 212):
                return reply
            if last_status in (401, 407) and c.auth == AUTH_MD5 and c.state.nonce != nonce_before:
                continue  # a fresh nonce: try again with it
            if last_status == 407 and attempt == 1:
                continue
            break
        raise SessionError(f"server refused the session: status {last_status}", last_status)

    def handle(self, reply: SyncML) -> None:
        """Everything the server sent in one message (statuses, alerts, results, changes)."""
        for cmd in reply.commands:
            if isinstance(cmd, Status):
                self.on_status(cmd)
            elif isinstance(cmd, Alert):
                self.on_alert(reply, cmd)
            elif isinstance(cmd, Results):
                for item in cmd.items:
                    if isinstance(item.data, DevInf):
                        self.c.server_devinf = item.data
                        self.report.server_devinf = item.data
                self.status_for(reply, cmd, 200)
            elif isinstance(cmd, Sync):
                self.on_sync(reply, cmd)
            elif isinstance(cmd, Get):
                self.status_for(reply, cmd, 200)  # our DevInf went with the Put already
            elif isinstance(cmd, Put):
                self.status_for(reply, cmd, 200)
            else:
                self.status_for(reply, cmd, 406)

    def on_status(self, st: Status) -> None:
        if st.cmd_ref == "0":
            return
        sent = self.sent.get((st.msg_ref, st.cmd_ref))
        if st.cmd == "Alert" and sent is not None and sent.op == "alert":
            self.report.datastores[sent.ds].alert_status = st.data
            if st.data not in (200, 508):
                self.modes.pop(sent.ds, None)
            return
        if sent is None or sent.op not in ("add", "replace", "delete"):
            return
        code = st.data or 0
        if code == 213 and sent.chunk:
            return
        if 200 <= code < 300:
            return
        self.failed[sent.ds].add(sent.luid)
        self.report.datastores[sent.ds].failed[sent.luid] = code

    def on_alert(self, reply: SyncML, cmd: Alert) -> None:
        item = cmd.items[0] if cmd.items else None
        remote = item.source.loc_uri if item and item.source else ""
        d = self.stores.get(remote) or next(
            (s for s in self.stores.values() if item and item.target
             and item.target.loc_uri == s.local_uri), None)  # fmt: skip
        if d is None or cmd.data is None or not 200 <= cmd.data <= 210:
            self.status_for(reply, cmd, 404 if d is None else 406)
            return
        mode = cmd.data - 6 if cmd.data >= 206 else cmd.data
        self.modes[d.remote_uri] = mode
        self.report.datastores[d.remote_uri].mode = mode
        self.status_for(reply, cmd, 200, target=item.target.loc_uri if item.target else None,
                        source=remote)  # fmt: skip

    # -- package 3
    def local_changes(self, d: Datastore, mode: int) -> list[tuple[str, str, str | None]]:
        """(op, LUID, data) to send for this datastore in this mode."""
        if isinstance(d.store, Inventory):
            d.store.refresh()
        items = d.store.items()
        if mode in SENDS_ALL:
            return [("replace", luid, data) for luid, data in items.items()]
        if mode not in SENDS_CHANGES:
            return []
        snapshot = self.c.state.store(d.remote_uri).snapshot
        out: list[tuple[str, str, str | None]] = []
        for luid, data in items.items():
            if luid not in snapshot:
                out.append(("add", luid, data))
            elif snapshot[luid] != item_hash(data):
                out.append(("replace", luid, data))
        out += [("delete", luid, None) for luid in snapshot if luid not in items]
        return out

    def send_changes(self) -> None:
        for remote, mode in self.modes.items():
            if mode == REFRESH_FROM_SERVER:
                self.stores[remote].store.clear()  # the server's copy replaces ours
        work: list[tuple[str, tuple[str, str, str | None]]] = []
        for remote, mode in self.modes.items():
            for change in self.local_changes(self.stores[remote], mode):
                work.append((remote, change))
        budget_total = max(self.server_max_msg - MESSAGE_OVERHEAD, 2048)
        messages: list[list[tuple[str, Any]]] = [[]]  # (remote, command) per message
        room = budget_total - 180 * len(self.pending_statuses)
        for remote, (op, luid, data) in work:
            raw = data.encode("utf-8") if data is not None else b""
            cost = len(raw) + ITEM_OVERHEAD
            if cost <= room:
                messages[-1].append((remote, (op, luid, data, None)))
                room -= cost
                continue
            if cost <= budget_total:
                messages.append([(remote, (op, luid, data, None))])
                room = budget_total - cost
                continue
            # A large object: chunks filling the rest of this message and the next ones.
            if room < MIN_CHUNK + ITEM_OVERHEAD:
                messages.append([])
                room = budget_total
            offset = 0
            while offset < len(raw):
                cut = _utf8_cut(raw, offset, room - ITEM_OVERHEAD)
                chunk = raw[offset:cut]
                more = cut < len(raw)
                info = {"first": offset == 0, "size": len(raw), "more": more}
                messages[-1].append((remote, (op, luid, chunk.decode("utf-8"), info)))
                offset = cut
                if more:
                    messages.append([])
                    room = budget_total
                else:
                    room -= len(chunk) + ITEM_OVERHEAD
        reply = None
        for n, batch in enumerate(messages):
            final = n == len(messages) - 1
            hdr = self.header()
            commands = self.take_statuses()
            syncs: dict[str, Sync] = {}
            order = list(self.modes) if n == 0 else []
            order += [r for r, _ in batch if r not in order]
            for remote in order:
                d = self.stores[remote]
                sync = Sync(cmd_id=self.cmd_id(), target=Location(loc_uri=d.remote_uri),
                            source=Location(loc_uri=d.local_uri))  # fmt: skip
                if n == 0 and self.c.version == "1.2":
                    sync.number_of_changes = sum(1 for r, _ in work if r == remote)
                syncs[remote] = sync
                commands.append(sync)
            for remote, (op, luid, data, info) in batch:
                cmd = self.change_command(remote, op, luid, data, info, hdr.msg_id)
                syncs[remote].commands.append(cmd)
            reply = self.exchange(hdr, commands, final)
            self.handle(reply)
        self.last_reply = reply

    def change_command(self, remote, op, luid, data, info, msg_id) -> Any:  # type: ignore[no-untyped-def]
        d = self.stores[remote]
        rep = self.report.datastores[remote]
        cmd_id = self.cmd_id()
        chunk = info is not None and info["more"]
        self.sent[(msg_id, cmd_id)] = _Sent(remote, op, luid, chunk)
        if op == "delete":
            rep.sent["delete"] += 1
            self.agreed[remote][luid] = None
            return Delete(cmd_id=cmd_id, items=[Item(source=Location(loc_uri=luid))])
        item = Item(source=Location(loc_uri=luid), data=data)
        meta = Meta(type=d.content_type)
        if info is not None:
            rep.chunks_sent += 1
            item.more_data = info["more"]
            if info["first"]:
                meta.size = info["size"]
        if info is None or not info["more"]:
            rep.sent[op] += 1
            self.agreed[remote][luid] = item_hash(d.store.get(luid) or "")
        cls = Add if op == "add" else Replace
        return cls(cmd_id=cmd_id, meta=meta, items=[item])

    # -- package 4 and 5
    def receive_changes_and_map(self) -> None:
        reply = self.last_reply
        while reply is not None and not reply.final:
            hdr = self.header()
            commands = [*self.take_statuses(), Alert(cmd_id=self.cmd_id(), data=222)]
            reply = self.exchange(hdr, commands, False)
            self.handle(reply)
        hdr = self.header()
        commands = self.take_statuses()
        for remote, items in self.maps.items():
            if items:
                d = self.stores[remote]
                map_cmd = Map(cmd_id=self.cmd_id(), target=Location(loc_uri=d.remote_uri),
                              source=Location(loc_uri=d.local_uri), map_items=items)  # fmt: skip
                self.sent[(hdr.msg_id, map_cmd.cmd_id)] = _Sent(remote, "map")
                commands.append(map_cmd)
        reply = self.exchange(hdr, commands, True)
        self.handle(reply)
        if not reply.final:
            raise SessionError("the server did not close the session after our Map")

    def on_sync(self, reply: SyncML, sync: Sync) -> None:
        target = sync.target.loc_uri if sync.target else ""
        d = next((s for s in self.stores.values() if target in (s.local_uri, s.remote_uri)
                  or target.strip("./") == s.local_uri.strip("./")), None)  # fmt: skip
        if d is None or d.remote_uri not in self.modes:
            self.status_for(reply, sync, 404, target=target)
            for sub in sync.commands:
                self.status_for(reply, sub, 404)
            return
        self.status_for(reply, sync, 200, target=target,
                        source=sync.source.loc_uri if sync.source else None)  # fmt: skip
        for sub in sync.commands:
            if not isinstance(sub, Add | Replace | Delete):
                self.status_for(reply, sub, 406)
                continue
            for item in sub.items:
                code = self.apply(d, sub, item)
                luid_ref = item.target.loc_uri if item.target else None
                src_ref = item.source.loc_uri if item.source else None
                self.status_for(reply, sub, code, target=luid_ref, source=src_ref)

    def apply(self, d: Datastore, cmd: Any, item: Item) -> int:
        rep = self.report.datastores[d.remote_uri]
        store = d.store
        if isinstance(cmd, Delete):
            luid = item.target.loc_uri if item.target else ""
            rep.received["delete"] += 1
            self.agreed[d.remote_uri][luid] = None
            return 200 if store.delete(luid) else 211
        data = self.assemble(cmd, item)
        if data is None:
            rep.chunks_received += 1
            return 213
        if isinstance(data, int):
            return data
        if isinstance(cmd, Add):
            guid = item.source.loc_uri if item.source else ""
            luid = store.add(data)
            self.maps.setdefault(d.remote_uri, []).append(
                MapItem(target=Location(loc_uri=guid), source=Location(loc_uri=luid))
            )
            rep.received["add"] += 1
            self.agreed[d.remote_uri][luid] = item_hash(data)
            return 201
        luid = item.target.loc_uri if item.target else ""
        if luid not in store:
            # Replace of an item we no longer have: keep it as a new one and map it.
            guid = item.source.loc_uri if item.source else ""
            new = store.add(data)
            if guid:
                self.maps.setdefault(d.remote_uri, []).append(
                    MapItem(target=Location(loc_uri=guid), source=Location(loc_uri=new))
                )
            rep.received["add"] += 1
            self.agreed[d.remote_uri][new] = item_hash(data)
            return 201
        store.replace(luid, data)
        rep.received["replace"] += 1
        self.agreed[d.remote_uri][luid] = item_hash(data)
        return 200

    def assemble(self, cmd: Any, item: Item) -> str | int | None:
        """The item's data; None while a large object is incomplete, an int status on error."""
        chunk = item.data
        raw = chunk.encode("utf-8") if isinstance(chunk, str) else (chunk or b"")
        key = (item.source.loc_uri if item.source else "") + "|" + (
            item.target.loc_uri if item.target else "")  # fmt: skip
        lo = self.lo_in
        if lo is not None and lo["key"] == key:
            lo["data"] += raw
        elif item.more_data:
            size = item.meta.size if item.meta and item.meta.size is not None else None
            if size is None and getattr(cmd, "meta", None) is not None:
                size = cmd.meta.size
            if size is None:
                return 412
            if size > self.c.max_obj_size:
                return 413
            self.lo_in = lo = {"key": key, "size": size, "data": bytearray(raw)}
        else:
            if isinstance(chunk, bytes):
                return chunk.decode("utf-8", "replace")
            return chunk if isinstance(chunk, str) else ""
        if item.more_data:
            if len(lo["data"]) > self.c.max_obj_size:
                self.lo_in = None
                return 413
            return None
        self.lo_in = None
        data = bytes(lo["data"])
        if lo["size"] not in (len(data), len(data.replace(b"\n", b"\r\n"))):
            return 424
        return data.decode("utf-8", "replace")

    # -- the end
    def commit(self) -> None:
        state = self.c.state
        for remote, mode in self.modes.items():
            st = state.store(remote)
            snapshot = {} if mode in RESETS_SNAPSHOT else dict(st.snapshot)
            for luid, digest in self.agreed[remote].items():
                if luid in self.failed[remote]:
                    continue
                if digest is None:
                    snapshot.pop(luid, None)
                else:
                    snapshot[luid] = digest
            if mode == REFRESH_FROM_SERVER:
                # Everything we hold now came from the server in this session.
                store = self.stores[remote].store
                snapshot = {k: item_hash(v) for k, v in store.items().items()}
            st.snapshot = snapshot
            st.last_anchor = self.next_anchor


def _utf8_cut(raw: bytes, start: int, room: int) -> int:
    end = min(len(raw), start + max(room, MIN_CHUNK))
    while start < end < len(raw) and 0x80 <= raw[end] <= 0xBF:
        end -= 1
    return end
