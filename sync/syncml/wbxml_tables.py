"""WBXML tag code pages and public identifiers for SyncML, MetInf and DevInf.

Token values from the SyncML Representation Protocol (1.1 and OMA DS 1.2, "WBXML code page
definitions") and the DevInf specification; they agree with libwbxml2's tables, which is
what the interoperability tests check.
"""

from __future__ import annotations

from .element import NS_DEVINF, NS_METINF, NS_SYNCML_11, NS_SYNCML_12

# Public identifiers (WBXML 1.3 section 5.5, OMA registry). libwbxml2 uses 0x0FD4 and 0x1203
# for DevInf 1.1 and 1.2; some documents quote 0x0FD2/0x1202, which the decoder also accepts.
PUBID_SYNCML_11 = 0x0FD3
PUBID_SYNCML_12 = 0x1201
PUBID_DEVINF_11 = 0x0FD4
PUBID_DEVINF_12 = 0x1203
PUBID_DEVINF_ALIASES = {0x0FD2: "1.1", 0x0FD4: "1.1", 0x1202: "1.2", 0x1203: "1.2"}
PUBID_SYNCML = {PUBID_SYNCML_11: "1.1", PUBID_SYNCML_12: "1.2"}

FPI_SYNCML = {
    "-//SYNCML//DTD SYNCML 1.1//EN": "1.1",
    "-//SYNCML//DTD SYNCML 1.2//EN": "1.2",
}
FPI_DEVINF = {
    "-//SYNCML//DTD DEVINF 1.1//EN": "1.1",
    "-//SYNCML//DTD DEVINF 1.2//EN": "1.2",
}

_SYNCML_PAGE0 = [
    "Add", "Alert", "Archive", "Atomic", "Chal", "Cmd", "CmdID", "CmdRef", "Copy", "Cred",
    "Data", "Delete", "Exec", "Final", "Get", "Item", "Lang", "LocName", "LocURI", "Map",
    "MapItem", "Meta", "MsgID", "MsgRef", "NoResp", "NoResults", "Put", "Replace", "RespURI",
    "Results", "Search", "Sequence", "SessionID", "SftDel", "Source", "SourceRef", "Status",
    "Sync", "SyncBody", "SyncHdr", "SyncML", "Target", "TargetRef", None, "VerDTD",
    "VerProto", "NumberOfChanges", "MoreData",
]  # fmt: skip
# OMA DS 1.2 additions, continuing at 0x35.
_SYNCML_PAGE0_12 = [
    "Field", "Filter", "Record", "FilterType", "SourceParent", "TargetParent", "Move",
    "Correlator",
]  # fmt: skip
_METINF_PAGE1 = [
    "Anchor", "EMI", "Format", "FreeID", "FreeMem", "Last", "Mark", "MaxMsgSize", "Mem",
    "MetInf", "Next", "NextNonce", "SharedMem", "Size", "Type", "Version", "MaxObjSize",
]  # fmt: skip
_METINF_PAGE1_12 = ["FieldLevel"]
_DEVINF_PAGE0 = [
    "CTCap", "CTType", "DataStore", "DataType", "DevID", "DevInf", "DevTyp", "DisplayName",
    "DSMem", "Ext", "FwV", "HwV", "Man", "MaxGUIDSize", "MaxID", "MaxMem", "Mod", "OEM",
    "ParamName", "PropName", "Rx", "Rx-Pref", "SharedMem", "Size", "SourceRef", "SwV",
    "SyncCap", "SyncType", "Tx", "Tx-Pref", "ValEnum", "VerCT", "VerDTD", "XNam", "XVal",
    "UTC", "SupportNumberOfChanges", "SupportLargeObjs",
]  # fmt: skip
# DevInf 1.2: token 0x1C is MaxSize (was Size); new tags from 0x2B.
_DEVINF_PAGE0_12 = [
    "Property", "PropParam", "MaxOccur", "NoTruncate", None, "Filter-Rx", "FilterCap",
    "FilterKeyword", "FieldLevel", "SupportHierarchicalSync",
]  # fmt: skip


def _page(names: list[str | None]) -> dict[int, str]:
    return {0x05 + i: n for i, n in enumerate(names) if n is not None}


class CodePages:
    """Tag tables of one document type: ``{page: {token: name}}`` plus namespaces per page."""

    def __init__(self, pages: dict[int, dict[int, str]], namespaces: dict[int, str]):
        self.pages = pages
        self.namespaces = namespaces
        self.by_name: dict[tuple[str, str], tuple[int, int]] = {}
        for page, table in pages.items():
            ns = namespaces[page]
            for token, name in table.items():
                self.by_name[(ns, name)] = (page, token)
        # Lookup by bare name, for elements whose namespace was not declared.
        self.by_local: dict[str, tuple[int, int]] = {}
        for (_ns, name), pt in self.by_name.items():
            self.by_local.setdefault(name, pt)

    def lookup(self, ns: str, name: str) -> tuple[int, int] | None:
        return self.by_name.get((ns, name)) or self.by_local.get(name)


def _syncml_pages(version: str) -> CodePages:
    p0 = list(_SYNCML_PAGE0)
    p1 = list(_METINF_PAGE1)
    if version == "1.2":
        p0 += _SYNCML_PAGE0_12
        p1 += _METINF_PAGE1_12
    ns = NS_SYNCML_12 if version == "1.2" else NS_SYNCML_11
    return CodePages({0: _page(p0), 1: _page(p1)}, {0: ns, 1: NS_METINF})


def _devinf_pages(version: str) -> CodePages:
    p0 = list(_DEVINF_PAGE0)
    if version == "1.2":
        p0[p0.index("Size")] = "MaxSize"
        p0 += _DEVINF_PAGE0_12
    return CodePages({0: _page(p0)}, {0: NS_DEVINF})


SYNCML_PAGES = {v: _syncml_pages(v) for v in ("1.1", "1.2")}
DEVINF_PAGES = {v: _devinf_pages(v) for v in ("1.1", "1.2")}
SYNCML_PUBID = {"1.1": PUBID_SYNCML_11, "1.2": PUBID_SYNCML_12}
DEVINF_PUBID = {"1.1": PUBID_DEVINF_11, "1.2": PUBID_DEVINF_12}
SYNCML_NS_VERSION = {NS_SYNCML_11: "1.1", NS_SYNCML_12: "1.2"}
