"""SyncML 1.1/1.2 message model (SyncML RepPro 1.1 section 5, OMA DS RepPro 1.2 section 5-6).

Dataclasses for the header, the body and the commands a DS server needs, converted to and
from the :class:`~sync.syncml.element.Element` tree that the XML and WBXML codecs share.
Elements the model does not know are kept in ``extra`` lists (and unknown commands as
:class:`UnknownCommand`) so parsing never fails on them and re-encoding keeps them.

Identifiers (CmdID, MsgID, SessionID, MsgRef, CmdRef) are strings as on the wire; codes
(Alert and Status Data, sizes) are ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from .element import NS_DEVINF, NS_METINF, SYNCML_NAMESPACES, Element
from .errors import SyncMLEncodeError, SyncMLParseError

if TYPE_CHECKING:
    from .devinf import DevInf

# ------------------------------------------------------------------------------- helpers


def _text(e: Element | None) -> str | None:
    if e is None:
        return None
    return e.text_str().strip()


def _int(e: Element | None) -> int | None:
    if e is None:
        return None
    s = e.text_str().strip()
    if not s.isascii() or not s.isdigit() or len(s) > 18:
        raise SyncMLParseError(f"<{e.tag}> must be a non-negative number, got {s[:40]!r}")
    return int(s)


def _leaf(tag: str, ns: str, value: str | int | None) -> list[Element]:
    if value is None:
        return []
    return [Element(tag, ns, text=str(value))]


def _flag(tag: str, ns: str, on: bool) -> list[Element]:
    return [Element(tag, ns)] if on else []


def _extra(e: Element, known: frozenset[str] | set[str]) -> list[Element]:
    return [c for c in e.children if c.tag not in known]


def _first(e: Element) -> dict[str, Element]:
    """Each child tag's first element, found in one pass (``e.child`` scans every time)."""
    return {c.tag: c for c in reversed(e.children)}


# ------------------------------------------------------------------------------- meta


@dataclass(kw_only=True)
class Anchor:
    """MetInf Anchor: the client's Last and Next sync anchors (DS Protocol 2.2.3)."""

    last: str | None = None
    next: str | None = None


@dataclass(kw_only=True)
class Mem:
    shared_mem: bool = False
    free_mem: int | None = None
    free_id: int | None = None


_META_KNOWN = frozenset({
    "Format", "Type", "Mark", "Size", "Anchor", "Version", "NextNonce", "MaxMsgSize",
    "MaxObjSize", "EMI", "Mem", "MetInf",
})  # fmt: skip


@dataclass(kw_only=True)
class Meta:
    """MetInf (SyncML MetInf 1.1/1.2): written in DTD order."""

    format: str | None = None
    type: str | None = None
    mark: str | None = None
    size: int | None = None
    anchor: Anchor | None = None
    version: str | None = None
    next_nonce: str | None = None
    max_msg_size: int | None = None
    max_obj_size: int | None = None
    emi: list[str] = field(default_factory=list)
    mem: Mem | None = None
    extra: list[Element] = field(default_factory=list)

    @classmethod
    def from_element(cls, e: Element) -> Meta:
        box = e
        kids = _first(e)
        if "MetInf" in kids:  # some clients wrap MetInf in Meta
            children = list(e.children)
            for wrapper in e.all("MetInf"):
                children.extend(wrapper.children)
            box = Element("Meta", e.ns, children)
            kids = _first(box)
        get = kids.get
        anchor = get("Anchor")
        mem = get("Mem")
        return cls(
            format=_text(get("Format")),
            type=_text(get("Type")),
            mark=_text(get("Mark")),
            size=_int(get("Size")),
            anchor=None
            if anchor is None
            else Anchor(last=_text(anchor.child("Last")), next=_text(anchor.child("Next"))),
            version=_text(get("Version")),
            next_nonce=_text(get("NextNonce")),
            max_msg_size=_int(get("MaxMsgSize")),
            max_obj_size=_int(get("MaxObjSize")),
            emi=[e2.text_str().strip() for e2 in box.all("EMI")] if "EMI" in kids else [],
            mem=None
            if mem is None
            else Mem(
                shared_mem=mem.child("SharedMem") is not None,
                free_mem=_int(mem.child("FreeMem")),
                free_id=_int(mem.child("FreeID")),
            ),
            extra=_extra(box, _META_KNOWN),
        )

    def to_element(self, ns: str) -> Element:
        m = NS_METINF
        kids: list[Element] = []
        kids += _leaf("Format", m, self.format)
        kids += _leaf("Type", m, self.type)
        kids += _leaf("Mark", m, self.mark)
        kids += _leaf("Size", m, self.size)
        if self.anchor is not None:
            a = Element("Anchor", m)
            a.children += _leaf("Last", m, self.anchor.last)
            a.children += _leaf("Next", m, self.anchor.next)
            kids.append(a)
        kids += _leaf("Version", m, self.version)
        kids += _leaf("NextNonce", m, self.next_nonce)
        kids += _leaf("MaxMsgSize", m, self.max_msg_size)
        kids += _leaf("MaxObjSize", m, self.max_obj_size)
        for emi in self.emi:
            kids.append(Element("EMI", m, text=emi))
        if self.mem is not None:
            me = Element("Mem", m)
            me.children += _flag("SharedMem", m, self.mem.shared_mem)
            me.children += _leaf("FreeMem", m, self.mem.free_mem)
            me.children += _leaf("FreeID", m, self.mem.free_id)
            kids.append(me)
        kids += self.extra
        return Element("Meta", ns, kids)


def _meta(e: Element | None) -> Meta | None:
    return None if e is None else Meta.from_element(e)


def _meta_el(meta: Meta | None, ns: str) -> list[Element]:
    return [] if meta is None else [meta.to_element(ns)]


# ------------------------------------------------------------------------------- basics


@dataclass(kw_only=True)
class Location:
    """Target or Source: LocURI plus optional LocName (the user name for MD5 auth)."""

    loc_uri: str = ""
    loc_name: str | None = None
    extra: list[Element] = field(default_factory=list)

    @classmethod
    def from_element(cls, e: Element) -> Location:
        children = e.children
        if len(children) == 1 and children[0].tag == "LocURI":  # the usual Target/Source
            return cls(loc_uri=_text(children[0]) or "")
        kids = _first(e)
        return cls(
            loc_uri=_text(kids.get("LocURI")) or "",
            loc_name=_text(kids.get("LocName")),
            extra=_extra(e, _LOCATION_KNOWN),
        )

    def to_element(self, tag: str, ns: str) -> Element:
        kids = [Element("LocURI", ns, text=self.loc_uri)]
        kids += _leaf("LocName", ns, self.loc_name)
        return Element(tag, ns, kids + self.extra)


_LOCATION_KNOWN = frozenset({"LocURI", "LocName"})


def _loc(c: Element | None) -> Location | None:
    return None if c is None else Location.from_element(c)


def _loc_el(loc: Location | None, tag: str, ns: str) -> list[Element]:
    return [] if loc is None else [loc.to_element(tag, ns)]


@dataclass(kw_only=True)
class Cred:
    """Credentials: Meta Type ``syncml:auth-basic`` (default) or ``syncml:auth-md5``."""

    meta: Meta | None = None
    data: str = ""

    @classmethod
    def from_element(cls, e: Element) -> Cred:
        return cls(meta=_meta(e.child("Meta")), data=_text(e.child("Data")) or "")

    def to_element(self, ns: str) -> Element:
        return Element("Cred", ns, [*_meta_el(self.meta, ns), Element("Data", ns, text=self.data)])

    @property
    def auth_type(self) -> str:
        return (self.meta.type if self.meta and self.meta.type else "syncml:auth-basic").strip()


def _cred(c: Element | None) -> Cred | None:
    return None if c is None else Cred.from_element(c)


def _cred_el(cred: Cred | None, ns: str) -> list[Element]:
    return [] if cred is None else [cred.to_element(ns)]


@dataclass(kw_only=True)
class Chal:
    """Challenge: Meta with Type, Format and NextNonce."""

    meta: Meta = field(default_factory=Meta)

    @classmethod
    def from_element(cls, e: Element) -> Chal:
        return cls(meta=_meta(e.child("Meta")) or Meta())

    def to_element(self, ns: str) -> Element:
        return Element("Chal", ns, [self.meta.to_element(ns)])


ItemData = Union[str, bytes, "DevInf", Element, None]


@dataclass(kw_only=True)
class Item:
    """An Item. ``data`` is text (vCard), bytes (binary), a DevInf, or a foreign element tree."""

    target: Location | None = None
    source: Location | None = None
    source_parent: Location | None = None
    target_parent: Location | None = None
    meta: Meta | None = None
    data: ItemData = None
    more_data: bool = False
    extra: list[Element] = field(default_factory=list)

    @classmethod
    def from_element(cls, e: Element) -> Item:
        data: ItemData = None
        kids = _first(e)
        d = kids.get("Data")
        if d is not None:
            dev = d.child("DevInf")
            if dev is not None:
                from .devinf import DevInf

                data = DevInf.from_element(dev)
            elif d.children:
                data = d.children[0]
            elif isinstance(d.text, bytes):
                try:
                    data = d.text.decode("utf-8")
                except UnicodeDecodeError:
                    data = d.text
            else:
                data = d.text or ""
        return cls(
            target=_loc(kids.get("Target")),
            source=_loc(kids.get("Source")),
            source_parent=_loc(kids.get("SourceParent")),
            target_parent=_loc(kids.get("TargetParent")),
            meta=_meta(kids.get("Meta")),
            data=data,
            more_data="MoreData" in kids,
            extra=_extra(e, _ITEM_KNOWN),
        )

    def to_element(self, ns: str) -> Element:
        from .devinf import DevInf

        kids = _loc_el(self.target, "Target", ns) + _loc_el(self.source, "Source", ns)
        kids += _loc_el(self.source_parent, "SourceParent", ns)
        kids += _loc_el(self.target_parent, "TargetParent", ns)
        kids += _meta_el(self.meta, ns)
        if self.data is not None:
            d = Element("Data", ns)
            if isinstance(self.data, DevInf):
                d.children.append(self.data.to_element())
            elif isinstance(self.data, Element):
                d.children.append(self.data)
            elif isinstance(self.data, str):
                d.text = self.data.encode("utf-8")  # content: OPAQUE in WBXML, CDATA in XML
            elif isinstance(self.data, bytes):
                d.text = self.data
            else:
                raise SyncMLEncodeError(f"Item data of type {type(self.data).__name__}")
            kids.append(d)
        kids += _flag("MoreData", ns, self.more_data)
        return Element("Item", ns, kids + self.extra)


_ITEM_KNOWN = frozenset(
    {"Target", "Source", "SourceParent", "TargetParent", "Meta", "Data", "MoreData"}
)


def _items(e: Element) -> list[Item]:
    return [Item.from_element(i) for i in e.children if i.tag == "Item"]


def _items_el(items: list[Item], ns: str) -> list[Element]:
    return [i.to_element(ns) for i in items]


# ------------------------------------------------------------------------------- commands


_ALERT_KNOWN = frozenset({"CmdID", "NoResp", "Cred", "Data", "Correlator", "Item"})


@dataclass(kw_only=True)
class Alert:
    """Alert: ``data`` is the alert code (200 two-way, 201 slow, 222 next message, ...)."""

    cmd_id: str = ""
    no_resp: bool = False
    cred: Cred | None = None
    data: int | None = None
    correlator: str | None = None
    items: list[Item] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)
    NAME = "Alert"

    @classmethod
    def from_element(cls, e: Element) -> Alert:
        kids = _first(e)
        return cls(
            cmd_id=_text(kids.get("CmdID")) or "",
            no_resp="NoResp" in kids,
            cred=_cred(kids.get("Cred")),
            data=_int(kids.get("Data")),
            correlator=_text(kids.get("Correlator")),
            items=_items(e),
            extra=_extra(e, _ALERT_KNOWN),
        )

    def to_element(self, ns: str) -> Element:
        kids = [Element("CmdID", ns, text=self.cmd_id), *_flag("NoResp", ns, self.no_resp)]
        kids += _cred_el(self.cred, ns) + _leaf("Data", ns, self.data)
        kids += _leaf("Correlator", ns, self.correlator) + _items_el(self.items, ns)
        return Element(self.NAME, ns, kids + self.extra)


_STATUS_KNOWN = frozenset(
    {"CmdID", "MsgRef", "CmdRef", "Cmd", "Data", "TargetRef", "SourceRef", "Cred", "Chal", "Item"}
)


def _refs(e: Element, tag: str) -> list[str]:
    return [c.text_str().strip() for c in e.children if c.tag == tag]


@dataclass(kw_only=True)
class Status:
    """Status for command ``cmd_ref`` of message ``msg_ref``; ``data`` is the status code."""

    cmd_id: str = ""
    msg_ref: str = ""
    cmd_ref: str = ""
    cmd: str = ""
    data: int | None = None
    target_refs: list[str] = field(default_factory=list)
    source_refs: list[str] = field(default_factory=list)
    cred: Cred | None = None
    chal: Chal | None = None
    items: list[Item] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)
    NAME = "Status"

    @classmethod
    def from_element(cls, e: Element) -> Status:
        kids = _first(e)
        chal = kids.get("Chal")
        return cls(
            cmd_id=_text(kids.get("CmdID")) or "",
            msg_ref=_text(kids.get("MsgRef")) or "",
            cmd_ref=_text(kids.get("CmdRef")) or "",
            cmd=_text(kids.get("Cmd")) or "",
            data=_int(kids.get("Data")),
            target_refs=_refs(e, "TargetRef") if "TargetRef" in kids else [],
            source_refs=_refs(e, "SourceRef") if "SourceRef" in kids else [],
            cred=_cred(kids.get("Cred")),
            chal=None if chal is None else Chal.from_element(chal),
            items=_items(e) if "Item" in kids else [],
            extra=_extra(e, _STATUS_KNOWN),
        )

    def to_element(self, ns: str) -> Element:
        kids = [
            Element("CmdID", ns, text=self.cmd_id),
            Element("MsgRef", ns, text=self.msg_ref),
            Element("CmdRef", ns, text=self.cmd_ref),
            Element("Cmd", ns, text=self.cmd),
        ]
        kids += [Element("TargetRef", ns, text=t) for t in self.target_refs]
        kids += [Element("SourceRef", ns, text=s) for s in self.source_refs]
        kids += _cred_el(self.cred, ns)
        kids += [] if self.chal is None else [self.chal.to_element(ns)]
        kids += _leaf("Data", ns, self.data) + _items_el(self.items, ns)
        return Element(self.NAME, ns, kids + self.extra)


@dataclass(kw_only=True)
class _ItemCommand:
    """Add, Replace, Copy, Move: CmdID, NoResp?, Cred?, Meta?, Item+."""

    cmd_id: str = ""
    no_resp: bool = False
    cred: Cred | None = None
    meta: Meta | None = None
    items: list[Item] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)
    NAME = ""
    _KNOWN = frozenset({"CmdID", "NoResp", "Cred", "Meta", "Item"})

    @classmethod
    def from_element(cls, e: Element):
        kids = _first(e)
        return cls(
            cmd_id=_text(kids.get("CmdID")) or "",
            no_resp="NoResp" in kids,
            cred=_cred(kids.get("Cred")),
            meta=_meta(kids.get("Meta")),
            items=_items(e),
            extra=_extra(e, cls._KNOWN),
        )

    def _head(self, ns: str) -> list[Element]:
        return [Element("CmdID", ns, text=self.cmd_id), *_flag("NoResp", ns, self.no_resp)]

    def to_element(self, ns: str) -> Element:
        kids = self._head(ns) + _cred_el(self.cred, ns) + _meta_el(self.meta, ns)
        return Element(self.NAME, ns, kids + _items_el(self.items, ns) + self.extra)


@dataclass(kw_only=True)
class Add(_ItemCommand):
    NAME = "Add"


@dataclass(kw_only=True)
class Replace(_ItemCommand):
    NAME = "Replace"


@dataclass(kw_only=True)
class Copy(_ItemCommand):
    NAME = "Copy"


@dataclass(kw_only=True)
class Move(_ItemCommand):
    NAME = "Move"


@dataclass(kw_only=True)
class Delete(_ItemCommand):
    """Delete; ``archive`` and ``sft_del`` are the Archive/SftDel flags."""

    archive: bool = False
    sft_del: bool = False
    NAME = "Delete"
    _KNOWN = frozenset({"CmdID", "NoResp", "Archive", "SftDel", "Cred", "Meta", "Item"})

    @classmethod
    def from_element(cls, e: Element) -> Delete:
        d = super().from_element(e)
        d.archive = e.child("Archive") is not None
        d.sft_del = e.child("SftDel") is not None
        return d

    def _head(self, ns: str) -> list[Element]:
        return (
            super()._head(ns)
            + _flag("Archive", ns, self.archive)
            + _flag("SftDel", ns, self.sft_del)
        )


@dataclass(kw_only=True)
class _DevCommand(_ItemCommand):
    """Put and Get: CmdID, NoResp?, Lang?, Cred?, Meta?, Item+."""

    lang: str | None = None
    _KNOWN = frozenset({"CmdID", "NoResp", "Lang", "Cred", "Meta", "Item"})

    @classmethod
    def from_element(cls, e: Element):
        d = super().from_element(e)
        d.lang = _text(e.child("Lang"))
        return d

    def _head(self, ns: str) -> list[Element]:
        return super()._head(ns) + _leaf("Lang", ns, self.lang)


@dataclass(kw_only=True)
class Put(_DevCommand):
    NAME = "Put"


@dataclass(kw_only=True)
class Get(_DevCommand):
    NAME = "Get"


@dataclass(kw_only=True)
class Results:
    """Results of a Get (typically the server's or client's DevInf)."""

    cmd_id: str = ""
    msg_ref: str | None = None
    cmd_ref: str = ""
    meta: Meta | None = None
    target_refs: list[str] = field(default_factory=list)
    source_refs: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)
    NAME = "Results"

    @classmethod
    def from_element(cls, e: Element) -> Results:
        return cls(
            cmd_id=_text(e.child("CmdID")) or "",
            msg_ref=_text(e.child("MsgRef")),
            cmd_ref=_text(e.child("CmdRef")) or "",
            meta=_meta(e.child("Meta")),
            target_refs=_refs(e, "TargetRef"),
            source_refs=_refs(e, "SourceRef"),
            items=_items(e),
            extra=_extra(
                e, {"CmdID", "MsgRef", "CmdRef", "Meta", "TargetRef", "SourceRef", "Item"}
            ),
        )

    def to_element(self, ns: str) -> Element:
        kids = [Element("CmdID", ns, text=self.cmd_id), *_leaf("MsgRef", ns, self.msg_ref)]
        kids += [Element("CmdRef", ns, text=self.cmd_ref), *_meta_el(self.meta, ns)]
        kids += [Element("TargetRef", ns, text=t) for t in self.target_refs]
        kids += [Element("SourceRef", ns, text=s) for s in self.source_refs]
        return Element(self.NAME, ns, kids + _items_el(self.items, ns) + self.extra)


_MAPITEM_KNOWN = frozenset({"Target", "Source"})


@dataclass(kw_only=True)
class MapItem:
    """One LUID/GUID pair: ``target`` is the server GUID, ``source`` the client LUID."""

    target: Location | None = None
    source: Location | None = None
    extra: list[Element] = field(default_factory=list)

    @classmethod
    def from_element(cls, e: Element) -> MapItem:
        kids = _first(e)
        return cls(
            target=_loc(kids.get("Target")),
            source=_loc(kids.get("Source")),
            extra=_extra(e, _MAPITEM_KNOWN),
        )

    def to_element(self, ns: str) -> Element:
        kids = _loc_el(self.target, "Target", ns) + _loc_el(self.source, "Source", ns)
        return Element("MapItem", ns, kids + self.extra)


@dataclass(kw_only=True)
class Map:
    cmd_id: str = ""
    target: Location | None = None
    source: Location | None = None
    cred: Cred | None = None
    meta: Meta | None = None
    map_items: list[MapItem] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)
    NAME = "Map"

    @classmethod
    def from_element(cls, e: Element) -> Map:
        return cls(
            cmd_id=_text(e.child("CmdID")) or "",
            target=_loc(e.child("Target")),
            source=_loc(e.child("Source")),
            cred=_cred(e.child("Cred")),
            meta=_meta(e.child("Meta")),
            map_items=[MapItem.from_element(m) for m in e.all("MapItem")],
            extra=_extra(e, {"CmdID", "Target", "Source", "Cred", "Meta", "MapItem"}),
        )

    def to_element(self, ns: str) -> Element:
        kids = [Element("CmdID", ns, text=self.cmd_id)]
        kids += _loc_el(self.target, "Target", ns) + _loc_el(self.source, "Source", ns)
        kids += _cred_el(self.cred, ns) + _meta_el(self.meta, ns)
        kids += [m.to_element(ns) for m in self.map_items]
        return Element(self.NAME, ns, kids + self.extra)


@dataclass(kw_only=True)
class UnknownCommand:
    """A command the model does not interpret (Exec, Search, ...), kept as its element."""

    element: Element

    @property
    def NAME(self) -> str:
        return self.element.tag

    @property
    def cmd_id(self) -> str:
        return _text(self.element.child("CmdID")) or ""

    @classmethod
    def from_element(cls, e: Element) -> UnknownCommand:
        return cls(element=e)

    def to_element(self, ns: str) -> Element:
        return self.element


@dataclass(kw_only=True)
class Sync:
    """Sync for one datastore pair; ``commands`` holds Add/Replace/Delete/...."""

    cmd_id: str = ""
    no_resp: bool = False
    cred: Cred | None = None
    target: Location | None = None
    source: Location | None = None
    meta: Meta | None = None
    number_of_changes: int | None = None
    commands: list[Command] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)
    NAME = "Sync"

    @classmethod
    def from_element(cls, e: Element) -> Sync:
        known = {"CmdID", "NoResp", "Cred", "Target", "Source", "Meta", "NumberOfChanges"}
        return cls(
            cmd_id=_text(e.child("CmdID")) or "",
            no_resp=e.child("NoResp") is not None,
            cred=_cred(e.child("Cred")),
            target=_loc(e.child("Target")),
            source=_loc(e.child("Source")),
            meta=_meta(e.child("Meta")),
            number_of_changes=_int(e.child("NumberOfChanges")),
            commands=[_command(c) for c in e.children if c.tag in _SYNC_COMMANDS],
            extra=[c for c in e.children if c.tag not in known and c.tag not in _SYNC_COMMANDS],
        )

    def to_element(self, ns: str) -> Element:
        kids = [Element("CmdID", ns, text=self.cmd_id), *_flag("NoResp", ns, self.no_resp)]
        kids += _cred_el(self.cred, ns)
        kids += _loc_el(self.target, "Target", ns) + _loc_el(self.source, "Source", ns)
        kids += _meta_el(self.meta, ns) + _leaf("NumberOfChanges", ns, self.number_of_changes)
        kids += [c.to_element(ns) for c in self.commands]
        return Element(self.NAME, ns, kids + self.extra)


@dataclass(kw_only=True)
class _Container:
    """Atomic and Sequence: CmdID, NoResp?, Meta?, commands."""

    cmd_id: str = ""
    no_resp: bool = False
    meta: Meta | None = None
    commands: list[Command] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)
    NAME = ""

    @classmethod
    def from_element(cls, e: Element):
        known = {"CmdID", "NoResp", "Meta"}
        return cls(
            cmd_id=_text(e.child("CmdID")) or "",
            no_resp=e.child("NoResp") is not None,
            meta=_meta(e.child("Meta")),
            commands=[_command(c) for c in e.children if c.tag not in known],
        )

    def to_element(self, ns: str) -> Element:
        kids = [Element("CmdID", ns, text=self.cmd_id), *_flag("NoResp", ns, self.no_resp)]
        kids += _meta_el(self.meta, ns) + [c.to_element(ns) for c in self.commands]
        return Element(self.NAME, ns, kids + self.extra)


@dataclass(kw_only=True)
class Atomic(_Container):
    NAME = "Atomic"


@dataclass(kw_only=True)
class Sequence(_Container):
    NAME = "Sequence"


Command = (
    Alert
    | Status
    | Sync
    | Add
    | Replace
    | Delete
    | Copy
    | Move
    | Put
    | Get
    | Results
    | Map
    | Atomic
    | Sequence
    | UnknownCommand
)

_COMMANDS: dict[str, type] = {
    c.NAME: c
    for c in (Alert, Status, Sync, Add, Replace, Delete, Copy, Move, Put, Get, Results, Map,
              Atomic, Sequence)
}  # fmt: skip
_SYNC_COMMANDS = {"Add", "Replace", "Delete", "Copy", "Move", "Atomic", "Sequence"}


def _command(e: Element) -> Command:
    cls = _COMMANDS.get(e.tag)
    if cls is None:
        return UnknownCommand(element=e)
    return cls.from_element(e)


# ------------------------------------------------------------------------------- message


@dataclass(kw_only=True)
class SyncHdr:
    ver_dtd: str = "1.2"
    ver_proto: str = "SyncML/1.2"
    session_id: str = ""
    msg_id: str = ""
    target: Location | None = None
    source: Location | None = None
    resp_uri: str | None = None
    no_resp: bool = False
    cred: Cred | None = None
    meta: Meta | None = None
    extra: list[Element] = field(default_factory=list)

    @classmethod
    def from_element(cls, e: Element) -> SyncHdr:
        known = {"VerDTD", "VerProto", "SessionID", "MsgID", "Target", "Source", "RespURI",
                 "NoResp", "Cred", "Meta"}  # fmt: skip
        ver = _text(e.child("VerDTD"))
        if not ver:
            raise SyncMLParseError("SyncHdr has no VerDTD")
        return cls(
            ver_dtd=ver,
            ver_proto=_text(e.child("VerProto")) or "",
            session_id=_text(e.child("SessionID")) or "",
            msg_id=_text(e.child("MsgID")) or "",
            target=_loc(e.child("Target")),
            source=_loc(e.child("Source")),
            resp_uri=_text(e.child("RespURI")),
            no_resp=e.child("NoResp") is not None,
            cred=_cred(e.child("Cred")),
            meta=_meta(e.child("Meta")),
            extra=_extra(e, known),
        )

    def to_element(self, ns: str) -> Element:
        kids = [
            Element("VerDTD", ns, text=self.ver_dtd),
            Element("VerProto", ns, text=self.ver_proto),
            Element("SessionID", ns, text=self.session_id),
            Element("MsgID", ns, text=self.msg_id),
        ]
        kids += _loc_el(self.target, "Target", ns) + _loc_el(self.source, "Source", ns)
        kids += _leaf("RespURI", ns, self.resp_uri) + _flag("NoResp", ns, self.no_resp)
        kids += _cred_el(self.cred, ns) + _meta_el(self.meta, ns)
        return Element("SyncHdr", ns, kids + self.extra)


@dataclass(kw_only=True)
class SyncML:
    """A whole message: header, body commands in order, and the Final flag."""

    hdr: SyncHdr = field(default_factory=SyncHdr)
    commands: list[Command] = field(default_factory=list)
    final: bool = False

    @property
    def version(self) -> str:
        return self.hdr.ver_dtd

    @classmethod
    def from_element(cls, root: Element) -> SyncML:
        if root.tag != "SyncML":
            raise SyncMLParseError(f"root element is <{root.tag}>, expected <SyncML>")
        hdr = root.child("SyncHdr")
        body = root.child("SyncBody")
        if hdr is None or body is None:
            raise SyncMLParseError("SyncML message lacks SyncHdr or SyncBody")
        return cls(
            hdr=SyncHdr.from_element(hdr),
            commands=[_command(c) for c in body.children if c.tag != "Final"],
            final=body.child("Final") is not None,
        )

    def to_element(self) -> Element:
        ns = SYNCML_NAMESPACES.get(self.hdr.ver_dtd, f"SYNCML:SYNCML{self.hdr.ver_dtd}")
        body = Element("SyncBody", ns, [c.to_element(ns) for c in self.commands])
        body.children += _flag("Final", ns, self.final)
        return Element("SyncML", ns, [self.hdr.to_element(ns), body])

    def iter_commands(self):
        """All commands, including those nested in Sync, Atomic and Sequence."""
        stack = list(reversed(self.commands))
        while stack:
            c = stack.pop()
            yield c
            stack.extend(reversed(getattr(c, "commands", [])))


__all__ = [
    "NS_DEVINF", "Add", "Alert", "Anchor", "Atomic", "Chal", "Command", "Copy", "Cred",
    "Delete", "Get", "Item", "Location", "Map", "MapItem", "Mem", "Meta", "Move", "Put",
    "Replace", "Results", "Sequence", "Status", "Sync", "SyncHdr", "SyncML", "UnknownCommand",
]  # fmt: skip
