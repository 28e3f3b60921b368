"""Device information (SyncML DevInf 1.1 and OMA DS DevInf 1.2).

CTCap comes in two shapes: DevInf 1.1 has one flat top-level ``CTCap`` where a ``CTType``
starts a content type and ``PropName``/``ParamName`` start properties and parameters;
DevInf 1.2 nests ``CTCap`` inside each ``DataStore`` with ``Property``/``PropParam``
elements. Both map to :class:`CTCap`; which shape is written follows ``DevInf.ver_dtd``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .element import NS_DEVINF, Element
from .errors import SyncMLParseError
from .limits import DEFAULT_LIMITS, Limits

VCARD_TYPES = ("text/x-vcard", "text/vcard")


def _t(e: Element | None) -> str | None:
    return None if e is None else e.text_str().strip()


def _i(e: Element | None) -> int | None:
    if e is None:
        return None
    s = e.text_str().strip()
    if not s.isascii() or not s.isdigit() or len(s) > 18:
        raise SyncMLParseError(f"DevInf <{e.tag}> must be a number, got {s[:40]!r}")
    return int(s)


def _leaf(tag: str, value: str | int | None) -> list[Element]:
    return [] if value is None else [Element(tag, NS_DEVINF, text=str(value))]


def _flag(tag: str, on: bool) -> list[Element]:
    return [Element(tag, NS_DEVINF)] if on else []


@dataclass(kw_only=True)
class ContentTypeRef:
    """Rx/Tx/Rx-Pref/Tx-Pref: a content type and its version."""

    ct_type: str = ""
    ver_ct: str | None = None

    @classmethod
    def from_element(cls, e: Element) -> ContentTypeRef:
        return cls(ct_type=_t(e.child("CTType")) or "", ver_ct=_t(e.child("VerCT")))

    def to_element(self, tag: str) -> Element:
        kids = [Element("CTType", NS_DEVINF, text=self.ct_type), *_leaf("VerCT", self.ver_ct)]
        return Element(tag, NS_DEVINF, kids)


@dataclass(kw_only=True)
class PropParam:
    name: str = ""
    data_type: str | None = None
    val_enums: list[str] = field(default_factory=list)
    display_name: str | None = None
    max_size: int | None = None  # DevInf 1.1 only (Size)


@dataclass(kw_only=True)
class Property:
    name: str = ""
    data_type: str | None = None
    max_occur: int | None = None
    max_size: int | None = None
    no_truncate: bool = False
    val_enums: list[str] = field(default_factory=list)
    display_name: str | None = None
    params: list[PropParam] = field(default_factory=list)


@dataclass(kw_only=True)
class CTCap:
    """Capabilities for one content type: which properties (and parameters) are supported."""

    ct_type: str = ""
    ver_ct: str | None = None
    field_level: bool = False
    properties: list[Property] = field(default_factory=list)

    def property_names(self) -> frozenset[str]:
        return frozenset(p.name.upper() for p in self.properties if p.name)

    # -- DevInf 1.2 nested form
    @classmethod
    def from_element_12(cls, e: Element) -> CTCap:
        props = []
        for p in e.all("Property"):
            props.append(
                Property(
                    name=_t(p.child("PropName")) or "",
                    data_type=_t(p.child("DataType")),
                    max_occur=_i(p.child("MaxOccur")),
                    max_size=_i(p.child("MaxSize") or p.child("Size")),
                    no_truncate=p.child("NoTruncate") is not None,
                    val_enums=[v.text_str().strip() for v in p.all("ValEnum")],
                    display_name=_t(p.child("DisplayName")),
                    params=[
                        PropParam(
                            name=_t(pp.child("ParamName")) or "",
                            data_type=_t(pp.child("DataType")),
                            val_enums=[v.text_str().strip() for v in pp.all("ValEnum")],
                            display_name=_t(pp.child("DisplayName")),
                        )
                        for pp in p.all("PropParam")
                    ],
                )
            )
        return cls(
            ct_type=_t(e.child("CTType")) or "",
            ver_ct=_t(e.child("VerCT")),
            field_level=e.child("FieldLevel") is not None,
            properties=props,
        )

    def to_element_12(self) -> Element:
        kids = [Element("CTType", NS_DEVINF, text=self.ct_type)]
        kids += _leaf("VerCT", self.ver_ct or "") + _flag("FieldLevel", self.field_level)
        for p in self.properties:
            pk = [Element("PropName", NS_DEVINF, text=p.name)]
            pk += _leaf("DataType", p.data_type) + _leaf("MaxOccur", p.max_occur)
            pk += _leaf("MaxSize", p.max_size) + _flag("NoTruncate", p.no_truncate)
            pk += [Element("ValEnum", NS_DEVINF, text=v) for v in p.val_enums]
            pk += _leaf("DisplayName", p.display_name)
            for pp in p.params:
                ppk = [Element("ParamName", NS_DEVINF, text=pp.name)]
                ppk += _leaf("DataType", pp.data_type)
                ppk += [Element("ValEnum", NS_DEVINF, text=v) for v in pp.val_enums]
                ppk += _leaf("DisplayName", pp.display_name)
                pk.append(Element("PropParam", NS_DEVINF, ppk))
            kids.append(Element("Property", NS_DEVINF, pk))
        return Element("CTCap", NS_DEVINF, kids)


def ctcaps_from_flat(e: Element) -> list[CTCap]:
    """Read a DevInf 1.1 flat CTCap (a sequence, not a tree) into CTCap objects."""
    caps: list[CTCap] = []
    prop: Property | None = None
    param: PropParam | None = None
    for c in e.children:
        value = c.text_str().strip()
        if c.tag == "CTType":
            caps.append(CTCap(ct_type=value))
            prop = param = None
        elif c.tag == "VerCT" and caps:  # not in the 1.1 DTD, but seen in the wild
            caps[-1].ver_ct = value
        elif c.tag == "PropName":
            if not caps:
                caps.append(CTCap())
            prop = Property(name=value)
            param = None
            caps[-1].properties.append(prop)
        elif c.tag == "ParamName" and prop is not None:
            param = PropParam(name=value)
            prop.params.append(param)
        elif prop is not None:
            target = param if param is not None else prop
            if c.tag == "ValEnum":
                target.val_enums.append(value)
            elif c.tag == "DataType":
                target.data_type = value
            elif c.tag in ("Size", "MaxSize"):
                target.max_size = _i(c)
            elif c.tag == "DisplayName":
                target.display_name = value
    return caps


def ctcaps_to_flat(caps: list[CTCap]) -> Element:
    kids: list[Element] = []
    for cap in caps:
        kids.append(Element("CTType", NS_DEVINF, text=cap.ct_type))
        for p in cap.properties:
            kids.append(Element("PropName", NS_DEVINF, text=p.name))
            kids += [Element("ValEnum", NS_DEVINF, text=v) for v in p.val_enums]
            if not p.val_enums:
                kids += _leaf("DataType", p.data_type) + _leaf("Size", p.max_size)
            kids += _leaf("DisplayName", p.display_name)
            for pp in p.params:
                kids.append(Element("ParamName", NS_DEVINF, text=pp.name))
                kids += [Element("ValEnum", NS_DEVINF, text=v) for v in pp.val_enums]
                if not pp.val_enums:
                    kids += _leaf("DataType", pp.data_type) + _leaf("Size", pp.max_size)
                kids += _leaf("DisplayName", pp.display_name)
    return Element("CTCap", NS_DEVINF, kids)


@dataclass(kw_only=True)
class DSMem:
    shared_mem: bool = False
    max_mem: int | None = None
    max_id: int | None = None


@dataclass(kw_only=True)
class DataStore:
    source_ref: str = ""
    display_name: str | None = None
    max_guid_size: int | None = None
    rx_pref: ContentTypeRef | None = None
    rx: list[ContentTypeRef] = field(default_factory=list)
    tx_pref: ContentTypeRef | None = None
    tx: list[ContentTypeRef] = field(default_factory=list)
    ctcaps: list[CTCap] = field(default_factory=list)
    dsmem: DSMem | None = None
    supports_hierarchical_sync: bool = False
    sync_types: list[int] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)

    _KNOWN = frozenset(
        {"SourceRef", "DisplayName", "MaxGUIDSize", "Rx-Pref", "Rx", "Tx-Pref", "Tx", "CTCap",
         "DSMem", "SupportHierarchicalSync", "SyncCap"}
    )  # fmt: skip

    @classmethod
    def from_element(cls, e: Element) -> DataStore:
        rx_pref, tx_pref, dsmem, sync_cap = (
            e.child("Rx-Pref"),
            e.child("Tx-Pref"),
            e.child("DSMem"),
            e.child("SyncCap"),
        )
        return cls(
            source_ref=_t(e.child("SourceRef")) or "",
            display_name=_t(e.child("DisplayName")),
            max_guid_size=_i(e.child("MaxGUIDSize")),
            rx_pref=None if rx_pref is None else ContentTypeRef.from_element(rx_pref),
            rx=[ContentTypeRef.from_element(x) for x in e.all("Rx")],
            tx_pref=None if tx_pref is None else ContentTypeRef.from_element(tx_pref),
            tx=[ContentTypeRef.from_element(x) for x in e.all("Tx")],
            ctcaps=[CTCap.from_element_12(c) for c in e.all("CTCap")],
            dsmem=None
            if dsmem is None
            else DSMem(
                shared_mem=dsmem.child("SharedMem") is not None,
                max_mem=_i(dsmem.child("MaxMem")),
                max_id=_i(dsmem.child("MaxID")),
            ),
            supports_hierarchical_sync=e.child("SupportHierarchicalSync") is not None,
            sync_types=[]
            if sync_cap is None
            else [n for n in (_i(s) for s in sync_cap.all("SyncType")) if n is not None],
            extra=[c for c in e.children if c.tag not in cls._KNOWN],
        )

    def to_element(self) -> Element:
        kids = [Element("SourceRef", NS_DEVINF, text=self.source_ref)]
        kids += _leaf("DisplayName", self.display_name) + _leaf("MaxGUIDSize", self.max_guid_size)
        if self.rx_pref is not None:
            kids.append(self.rx_pref.to_element("Rx-Pref"))
        kids += [x.to_element("Rx") for x in self.rx]
        if self.tx_pref is not None:
            kids.append(self.tx_pref.to_element("Tx-Pref"))
        kids += [x.to_element("Tx") for x in self.tx]
        kids += [c.to_element_12() for c in self.ctcaps]
        if self.dsmem is not None:
            dk = _flag("SharedMem", self.dsmem.shared_mem) + _leaf("MaxMem", self.dsmem.max_mem)
            kids.append(Element("DSMem", NS_DEVINF, dk + _leaf("MaxID", self.dsmem.max_id)))
        kids += _flag("SupportHierarchicalSync", self.supports_hierarchical_sync)
        sc = [Element("SyncType", NS_DEVINF, text=str(n)) for n in self.sync_types]
        kids.append(Element("SyncCap", NS_DEVINF, sc))
        return Element("DataStore", NS_DEVINF, kids + self.extra)


@dataclass(kw_only=True)
class Ext:
    name: str = ""
    values: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class DevInf:
    """A device's capabilities. ``ctcaps`` is the DevInf 1.1 top-level CTCap list."""

    ver_dtd: str = "1.2"
    man: str | None = None
    mod: str | None = None
    oem: str | None = None
    fwv: str | None = None
    swv: str | None = None
    hwv: str | None = None
    dev_id: str = ""
    dev_typ: str = ""
    utc: bool = False
    support_large_objs: bool = False
    support_number_of_changes: bool = False
    datastores: list[DataStore] = field(default_factory=list)
    ctcaps: list[CTCap] = field(default_factory=list)
    exts: list[Ext] = field(default_factory=list)
    extra: list[Element] = field(default_factory=list)

    _KNOWN = frozenset(
        {"VerDTD", "Man", "Mod", "OEM", "FwV", "SwV", "HwV", "DevID", "DevTyp", "UTC",
         "SupportLargeObjs", "SupportNumberOfChanges", "DataStore", "CTCap", "Ext"}
    )  # fmt: skip

    @classmethod
    def from_element(cls, e: Element) -> DevInf:
        if e.tag != "DevInf":
            raise SyncMLParseError(f"root element is <{e.tag}>, expected <DevInf>")
        caps: list[CTCap] = []
        for c in e.all("CTCap"):
            # A top-level CTCap is the 1.1 flat form; a 1.2 one may also appear at top level.
            caps.extend([CTCap.from_element_12(c)] if c.child("Property") else ctcaps_from_flat(c))
        return cls(
            ver_dtd=_t(e.child("VerDTD")) or "",
            man=_t(e.child("Man")),
            mod=_t(e.child("Mod")),
            oem=_t(e.child("OEM")),
            fwv=_t(e.child("FwV")),
            swv=_t(e.child("SwV")),
            hwv=_t(e.child("HwV")),
            dev_id=_t(e.child("DevID")) or "",
            dev_typ=_t(e.child("DevTyp")) or "",
            utc=e.child("UTC") is not None,
            support_large_objs=e.child("SupportLargeObjs") is not None,
            support_number_of_changes=e.child("SupportNumberOfChanges") is not None,
            datastores=[DataStore.from_element(d) for d in e.all("DataStore")],
            ctcaps=caps,
            exts=[
                Ext(name=_t(x.child("XNam")) or "", values=[_t(v) or "" for v in x.all("XVal")])
                for x in e.all("Ext")
            ],
            extra=[c for c in e.children if c.tag not in cls._KNOWN],
        )

    def to_element(self) -> Element:
        n = NS_DEVINF
        kids = [Element("VerDTD", n, text=self.ver_dtd)]
        for tag, value in (("Man", self.man), ("Mod", self.mod), ("OEM", self.oem),
                           ("FwV", self.fwv), ("SwV", self.swv), ("HwV", self.hwv)):  # fmt: skip
            kids += _leaf(tag, value)
        kids += [Element("DevID", n, text=self.dev_id), Element("DevTyp", n, text=self.dev_typ)]
        kids += _flag("UTC", self.utc) + _flag("SupportLargeObjs", self.support_large_objs)
        kids += _flag("SupportNumberOfChanges", self.support_number_of_changes)
        kids += [d.to_element() for d in self.datastores]
        if self.ctcaps:
            if self.ver_dtd == "1.1":
                kids.append(ctcaps_to_flat(self.ctcaps))
            else:
                kids += [c.to_element_12() for c in self.ctcaps]
        for x in self.exts:
            xk = [Element("XNam", n, text=x.name)] + [Element("XVal", n, text=v) for v in x.values]
            kids.append(Element("Ext", n, xk))
        return Element("DevInf", n, kids + self.extra)

    # -- what the handset can represent
    def all_ctcaps(self) -> list[CTCap]:
        caps = list(self.ctcaps)
        for ds in self.datastores:
            caps.extend(ds.ctcaps)
        return caps

    def ctcap_for(self, *ct_types: str) -> list[CTCap]:
        wanted = {t.lower() for t in ct_types}
        return [c for c in self.all_ctcaps() if c.ct_type.strip().lower() in wanted]

    def vcard_properties(self) -> frozenset[str] | None:
        """Upper-case vCard property names the handset declares, or None if it sent no CTCap.

        None means "unknown": the caller must then assume every property is supported rather
        than dropping fields (DESIGN 4a).
        """
        caps = self.ctcap_for(*VCARD_TYPES)
        if not caps:
            return None
        names: set[str] = set()
        for c in caps:
            names |= c.property_names()
        return frozenset(names)

    def vcard_property_types(self) -> dict[str, frozenset[str]]:
        """For each vCard property, the TYPE values the handset enumerates (may be empty)."""
        out: dict[str, set[str]] = {}
        for c in self.ctcap_for(*VCARD_TYPES):
            for p in c.properties:
                s = out.setdefault(p.name.upper(), set())
                for pp in p.params:
                    if pp.name.upper() == "TYPE":
                        s |= {v.upper() for v in pp.val_enums}
                    elif not pp.val_enums:  # 1.1 style: bare parameter words like CELL
                        s.add(pp.name.upper())
        return {k: frozenset(v) for k, v in out.items()}

    def datastore(self, source_ref: str) -> DataStore | None:
        for ds in self.datastores:
            if ds.source_ref.strip("./") == source_ref.strip("./"):
                return ds
        return None


DEVINF_XML_TYPE = "application/vnd.syncml-devinf+xml"
DEVINF_WBXML_TYPE = "application/vnd.syncml-devinf+wbxml"


def parse_devinf(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> DevInf:
    """Parse a DevInf document given as XML (bytes/str) or WBXML bytes."""
    from .wbxml import decode_wbxml
    from .xmlcodec import parse_xml

    if isinstance(data, bytes | bytearray) and data[:1] in (b"\x01", b"\x02", b"\x03"):
        doc = decode_wbxml(bytes(data), limits=limits)
        if doc.kind != "devinf":
            raise SyncMLParseError("WBXML document is not DevInf")
        return DevInf.from_element(doc.root)
    return DevInf.from_element(parse_xml(data, limits=limits))


def serialize_devinf(
    devinf: DevInf, encoding: str = "xml", *, string_table: bool = False, wbxml_version: int = 2
) -> bytes:
    """Write DevInf as a standalone XML or WBXML document."""
    from .wbxml import encode_wbxml
    from .xmlcodec import serialize_xml

    root = devinf.to_element()
    if encoding == "xml":
        return serialize_xml(root)
    if encoding == "wbxml":
        version = devinf.ver_dtd if devinf.ver_dtd in ("1.1", "1.2") else "1.2"
        return encode_wbxml(
            root,
            kind="devinf",
            dtd_version=version,
            string_table=string_table,
            wbxml_version=wbxml_version,
        )
    raise ValueError(f"encoding must be 'xml' or 'wbxml', not {encoding!r}")
