"""A minimal SyncML client for tests and benchmarks (pure: no Django).

It speaks to any `post(body, content_type, url) -> (status, body)` callable, so tests drive
the engine in-process and the benchmark drives it over HTTP. It keeps what a handset keeps:
its items by LUID, anchors, the server's nonce.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from sync.syncml import (
    Add,
    Alert,
    Anchor,
    ContentTypeRef,
    DataStore,
    Delete,
    DevInf,
    Get,
    Item,
    Location,
    Map,
    MapItem,
    Meta,
    Replace,
    Results,
    Status,
    Sync,
    SyncHdr,
    SyncML,
    parse_message,
    serialize_message,
)
from sync.syncml.auth import AUTH_BASIC, AUTH_MD5, decode_nonce, make_cred

Post = Callable[[bytes, str, str], tuple[int, bytes]]
_sessions = itertools.count(1)

# What a handset assumes of a server that names no MaxMsgSize, and the most commands it puts
# in one message whatever the size (a handset's own working memory).
DEFAULT_SERVER_MAX_MSG = 16 * 1024
MAX_COMMANDS_PER_MESSAGE = 2000
# Bytes of markup around each command's data (CmdID, Meta Type, Item, Source LocURI), and
# around the message (header, statuses), counted when filling a message.
COMMAND_OVERHEAD = 160
MESSAGE_OVERHEAD = 2048


def message_batches(changes: list, server_max_msg: int | None) -> list[list]:
    """The changes cut into messages that each stay under the server's MaxMsgSize (as a real
    client fills its messages: many small ones cost the server a round trip and a transaction
    each). Always at least one, possibly empty, message."""
    budget = (server_max_msg or DEFAULT_SERVER_MAX_MSG) - MESSAGE_OVERHEAD
    batches: list[list] = [[]]
    used = 0
    for change in changes:
        data = change.items[0].data if change.items else None
        # XML writes a CR as "&#13;" (CDATA would lose it): four more bytes each.
        size = COMMAND_OVERHEAD + (len(data.encode()) + 4 * data.count("\r")
                                   if isinstance(data, str) else 0)  # fmt: skip
        current = batches[-1]
        if current and (used + size > budget or len(current) >= MAX_COMMANDS_PER_MESSAGE):
            batches.append([])
            current, used = batches[-1], 0
        current.append(change)
        used += size
    return batches


@dataclass
class SimClient:
    post: Post
    url: str
    username: str
    password: str
    dev_id: str = "IMEI:490154203237518"
    version: str = "1.2"
    encoding: str = "xml"
    auth: str = AUTH_BASIC
    max_msg_size: int = 64 * 1024
    items: dict[str, str] = field(default_factory=dict)  # LUID -> vCard
    last_anchor: str | None = None
    nonce: str | None = None
    ctype: str = "text/vcard"
    server_uri: str = "contacts"  # the datastore: "contacts" or "inventory"
    client_uri: str = "./contacts"
    log: list[SyncML] = field(default_factory=list)
    large_objects: list[tuple] = field(default_factory=list)  # (declared Size, bytes received)
    sent: list[SyncML] = field(default_factory=list)  # what this client posted
    keep_log: bool = True  # False: `log` and `sent` stay empty (a load generator's memory)

    def _send(self, msg: SyncML, url: str) -> SyncML:
        ctype = f"application/vnd.syncml+{self.encoding}"
        if self.keep_log:
            self.sent.append(msg)
        status, body = self.post(serialize_message(msg, self.encoding), ctype, url)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        reply = parse_message(body)
        if self.keep_log:
            self.log.append(reply)
        return reply

    def _answers(self, reply: SyncML, cmd) -> list:  # type: ignore[no-untyped-def]
        """A Status for the header and each command of `reply` that asks for one (RepPro
        section 5.1.6; our server does not need them, SyncEvolution's does), and Results with
        this handset's DevInf for a Get."""
        msg = reply.hdr.msg_id
        out: list = [Status(cmd_id=str(next(cmd)), msg_ref=msg, cmd_ref="0", cmd="SyncHdr",
                            data=200)]  # fmt: skip
        for c in reply.commands:
            if isinstance(c, Status) or getattr(c, "no_resp", False):
                continue
            out.append(Status(cmd_id=str(next(cmd)), msg_ref=msg, cmd_ref=c.cmd_id, cmd=c.NAME,
                              data=200))  # fmt: skip
            if isinstance(c, Get):
                out.append(Results(cmd_id=str(next(cmd)), msg_ref=msg, cmd_ref=c.cmd_id,
                                   meta=Meta(type="application/vnd.syncml-devinf+xml"),
                                   items=[Item(source=Location(loc_uri="./devinf12"),
                                               data=self._devinf())]))  # fmt: skip
        return out

    def _devinf(self) -> DevInf:
        ref = ContentTypeRef(ct_type=self.ctype, ver_ct="3.0" if self.ctype == "text/vcard"
                             else "1.0")  # fmt: skip
        return DevInf(ver_dtd=self.version, man="portal", mod="SimClient", dev_id=self.dev_id,
                      dev_typ="phone", datastores=[DataStore(
                          source_ref=self.client_uri, rx_pref=ref, tx_pref=ref,
                          sync_types=[1, 2, 3, 4, 5, 6, 7])])  # fmt: skip

    def sync(
        self,
        mode: int = 200,
        *,
        adds: dict[str, str] | None = None,
        replaces: dict[str, str] | None = None,
        deletes: list[str] | None = None,
        drop_after_changes: bool = False,
    ) -> dict:
        """One session. Returns {"alert": code used, "status": header status, "received": n}."""
        sid = str(next(_sessions))
        msg_id = itertools.count(1)
        cmd = itertools.count(1)
        anchor_next = f"a{sid}"
        url = self.url
        nonce = decode_nonce(self.nonce) if self.nonce else None
        if self.auth == AUTH_MD5 and nonce is None:
            nonce = b""
        cred = make_cred(self.auth, self.username, self.password, nonce)

        def hdr() -> SyncHdr:
            return SyncHdr(
                ver_dtd=self.version, ver_proto=f"SyncML/{self.version}", session_id=sid,
                msg_id=str(next(msg_id)), target=Location(loc_uri=url),
                source=Location(loc_uri=self.dev_id, loc_name=self.username),
                meta=Meta(max_msg_size=self.max_msg_size),
            )  # fmt: skip

        alert = Alert(cmd_id=str(next(cmd)), data=mode, items=[Item(
            target=Location(loc_uri=self.server_uri), source=Location(loc_uri=self.client_uri),
            meta=Meta(anchor=Anchor(last=self.last_anchor, next=anchor_next)))])  # fmt: skip
        h = hdr()
        h.cred = cred
        reply = self._send(SyncML(hdr=h, commands=[alert], final=True), url)
        head = reply.commands[0]
        if head.chal and head.chal.meta.next_nonce:
            self.nonce = head.chal.meta.next_nonce
        if head.data in (401, 407) and self.auth == AUTH_MD5 and nonce == b"":
            return self.sync(mode, adds=adds, replaces=replaces, deletes=deletes,
                             drop_after_changes=drop_after_changes)  # fmt: skip
        if head.data not in (200, 212):
            return {"status": head.data}
        url = reply.hdr.resp_uri or url
        server_alert = next(c for c in reply.commands if isinstance(c, Alert))
        used = server_alert.data
        changes: list = []
        if used in (201, 203):
            source = dict(self.items)
            source.update(adds or {})
            for luid, data in source.items():
                changes.append(Add(cmd_id=str(next(cmd)), meta=Meta(type=self.ctype),
                                   items=[Item(source=Location(loc_uri=luid), data=data)]))  # fmt: skip
        elif used in (200, 202):
            for luid, data in (adds or {}).items():
                changes.append(Add(cmd_id=str(next(cmd)), meta=Meta(type=self.ctype),
                                   items=[Item(source=Location(loc_uri=luid), data=data)]))  # fmt: skip
            for luid, data in (replaces or {}).items():
                changes.append(Replace(cmd_id=str(next(cmd)), meta=Meta(type=self.ctype),
                                       items=[Item(source=Location(loc_uri=luid), data=data)]))  # fmt: skip
            for luid in deletes or []:
                changes.append(Delete(cmd_id=str(next(cmd)),
                                      items=[Item(source=Location(loc_uri=luid))]))  # fmt: skip
        if used in (205,):
            self.items.clear()
        for luid, data in (adds or {}).items():
            self.items[luid] = data
        for luid, data in (replaces or {}).items():
            self.items[luid] = data
        for luid in deletes or []:
            self.items.pop(luid, None)
        # Package 3, split so each message stays under the server's MaxMsgSize.
        server_meta = reply.hdr.meta
        batches = message_batches(changes, server_meta.max_msg_size if server_meta else None)
        received = 0
        statuses: list = []
        maps: list[MapItem] = []
        for n, batch in enumerate(batches):
            answers = self._answers(reply, cmd)
            sync = Sync(cmd_id=str(next(cmd)), target=Location(loc_uri=self.server_uri),
                        source=Location(loc_uri=self.client_uri), commands=batch)  # fmt: skip
            reply = self._send(SyncML(hdr=hdr(), commands=[*answers, sync],
                                      final=n == len(batches) - 1), url)  # fmt: skip
        if drop_after_changes:
            return {"alert": used, "dropped": True}
        chunks: dict[str, list] = {}  # large objects being received: key -> [data, size]
        while True:
            statuses, more = self._answers(reply, cmd), False
            for c in reply.commands:
                if isinstance(c, Sync):
                    for sub in c.commands:
                        for it in sub.items:
                            key = (it.source or it.target).loc_uri
                            data = it.data.encode() if isinstance(it.data, str) else it.data
                            if it.more_data or key in chunks:
                                part = chunks.setdefault(key, [b"", it.meta.size if it.meta
                                                               else None])  # fmt: skip
                                part[0] += data or b""
                                if it.more_data:  # a chunk: buffered, 213, wait for the rest
                                    statuses.append(Status(
                                        cmd_id=str(next(cmd)), msg_ref=reply.hdr.msg_id,
                                        cmd_ref=sub.cmd_id, cmd=sub.NAME, data=213))  # fmt: skip
                                    continue
                                whole, size = chunks.pop(key)
                                self.large_objects.append((size, len(whole)))
                                it.data = whole.decode("utf-8")
                            received += 1
                            code = 200
                            if isinstance(sub, Add):
                                luid = f"s{len(self.items) + received}"
                                self.items[luid] = it.data
                                maps.append(MapItem(target=Location(loc_uri=it.source.loc_uri),
                                                    source=Location(loc_uri=luid)))  # fmt: skip
                                code = 201
                            elif isinstance(sub, Replace):
                                self.items[it.target.loc_uri] = it.data
                            elif isinstance(sub, Delete):
                                self.items.pop(it.target.loc_uri, None)
                            statuses.append(Status(cmd_id=str(next(cmd)), msg_ref=reply.hdr.msg_id,
                                                   cmd_ref=sub.cmd_id, cmd=sub.NAME, data=code))  # fmt: skip
            if not reply.final:
                more = True
            cmds = statuses
            if more:
                cmds = [*statuses, Alert(cmd_id=str(next(cmd)), data=222)]
                reply = self._send(SyncML(hdr=hdr(), commands=cmds, final=False), url)
                continue
            if not maps and all(c.cmd == "SyncHdr" for c in statuses):
                break  # nothing to answer: the session ends with the server's package 4
            if maps:
                cmds = [*statuses, Map(cmd_id=str(next(cmd)),
                                       target=Location(loc_uri=self.server_uri),
                                       source=Location(loc_uri=self.client_uri), map_items=maps)]  # fmt: skip
            reply = self._send(SyncML(hdr=hdr(), commands=cmds, final=True), url)
            break
        self.last_anchor = anchor_next
        return {"alert": used, "status": head.data, "received": received}
