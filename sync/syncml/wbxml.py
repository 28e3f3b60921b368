"""WBXML 1.1-1.3 binary XML codec (W3C NOTE-wbxml-19990624 / WAP-192-WBXML).

Hand-written because no maintained Python WBXML library exists. Decoding works on untrusted
bytes: it is iterative (no recursion on input nesting), bounded by :class:`Limits`, and raises
only :class:`SyncMLParseError`/:class:`SyncMLSizeError`.

SyncML specifics handled here:

* a SyncML document uses code page 0 (SyncML) and 1 (MetInf);
* DevInf is a document of its own; inside SyncML ``Data`` it travels as OPAQUE bytes holding a
  complete WBXML DevInf document (this is what libwbxml2 and handsets do);
* item content (vCards) is written as OPAQUE, short values as STR_I, and a string table
  (STR_T) is read always and written on request.
"""

from __future__ import annotations

from dataclasses import dataclass

from .element import NS_DEVINF, Element
from .errors import SyncMLEncodeError, SyncMLParseError, SyncMLSizeError
from .limits import DEFAULT_LIMITS, Limits
from .wbxml_tables import (
    DEVINF_PAGES,
    DEVINF_PUBID,
    FPI_DEVINF,
    FPI_SYNCML,
    PUBID_DEVINF_ALIASES,
    PUBID_SYNCML,
    SYNCML_PAGES,
    SYNCML_PUBID,
    CodePages,
)

# Global tokens (WBXML 1.3 section 7.1).
SWITCH_PAGE = 0x00
END = 0x01
ENTITY = 0x02
STR_I = 0x03
LITERAL = 0x04
EXT_I_0, EXT_I_1, EXT_I_2 = 0x40, 0x41, 0x42
PI = 0x43
LITERAL_C = 0x44
EXT_T_0, EXT_T_1, EXT_T_2 = 0x80, 0x81, 0x82
STR_T = 0x83
LITERAL_A = 0x84
EXT_0, EXT_1, EXT_2 = 0xC0, 0xC1, 0xC2
OPAQUE = 0xC3
LITERAL_AC = 0xC4

TAG_HAS_ATTRIBUTES = 0x80
TAG_HAS_CONTENT = 0x40

CHARSET_UTF8 = 106
_CHARSETS = {0: "utf-8", 3: "ascii", 4: "latin-1", CHARSET_UTF8: "utf-8"}

WBXML_1_2 = 0x02
WBXML_1_3 = 0x03


@dataclass
class WbxmlDocument:
    """A decoded WBXML document: ``kind`` is ``"syncml"``, ``"devinf"`` or ``"unknown"``."""

    version: int
    public_id: int
    kind: str
    dtd_version: str
    charset: int
    root: Element


class _Budget:
    """Element counter shared between a document and the documents embedded in it."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.elements = 0

    def add(self) -> None:
        self.elements += 1
        if self.elements > self.limits.max_elements:
            raise SyncMLSizeError(
                f"WBXML document has more than {self.limits.max_elements} elements"
            )


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise SyncMLParseError(f"WBXML truncated at offset {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def mb_u_int32(self) -> int:
        # WBXML 1.3 section 5.1: big-endian base-128, at most 5 octets for 32 bits.
        value = 0
        for _ in range(5):
            b = self.byte()
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                if value > 0xFFFFFFFF:
                    break
                return value
        raise SyncMLParseError(f"WBXML multi-byte integer too long at offset {self.pos}")

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise SyncMLParseError(
                f"WBXML length {n} at offset {self.pos} runs past the end of the data"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def cstring(self) -> bytes:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise SyncMLParseError(f"WBXML inline string at offset {self.pos} is not terminated")
        out = self.data[self.pos : end]
        self.pos = end + 1
        return out


def _strtbl_string(table: bytes, index: int) -> bytes:
    if index >= len(table):
        raise SyncMLParseError(f"WBXML string table reference {index} out of range")
    end = table.find(b"\x00", index)
    if end < 0:
        raise SyncMLParseError(f"WBXML string table entry {index} is not terminated")
    return table[index:end]


def _decode_text(raw: bytes, encoding: str, where: int) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise SyncMLParseError(f"WBXML string at offset {where} is not valid {encoding}") from None


def looks_like_wbxml(data: bytes) -> bool:
    """True when ``data`` starts with a WBXML 1.x header naming a SyncML or DevInf document."""
    if len(data) < 4 or data[0] > 0x03:
        return False
    try:
        r = _Reader(data, 1)
        pubid = r.mb_u_int32()
    except SyncMLParseError:
        return False
    return pubid in PUBID_SYNCML or pubid in PUBID_DEVINF_ALIASES or pubid == 0


def decode_wbxml(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS, _budget: _Budget | None = None
) -> WbxmlDocument:
    """Decode a WBXML SyncML or DevInf document into an :class:`Element` tree."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SyncMLParseError("WBXML input must be bytes")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise SyncMLSizeError(f"WBXML message of {len(data)} bytes exceeds {limits.max_bytes}")
    budget = _budget or _Budget(limits)
    r = _Reader(data)
    version = r.byte()
    if version > 0x03:
        raise SyncMLParseError(f"not a WBXML document (version byte {version:#04x})")
    pubid = r.mb_u_int32()
    fpi_index = r.mb_u_int32() if pubid == 0 else None
    charset = r.mb_u_int32() if version >= 0x01 else CHARSET_UTF8
    encoding = _CHARSETS.get(charset)
    if encoding is None:
        raise SyncMLParseError(f"unsupported WBXML charset (MIBenum {charset})")
    strtbl = r.take(r.mb_u_int32())

    kind, dtd_version = "unknown", "1.2"
    if pubid in PUBID_SYNCML:
        kind, dtd_version = "syncml", PUBID_SYNCML[pubid]
    elif pubid in PUBID_DEVINF_ALIASES:
        kind, dtd_version = "devinf", PUBID_DEVINF_ALIASES[pubid]
    elif fpi_index is not None:
        fpi = _decode_text(_strtbl_string(strtbl, fpi_index), encoding, 0).upper()
        if fpi in FPI_SYNCML:
            kind, dtd_version = "syncml", FPI_SYNCML[fpi]
        elif fpi in FPI_DEVINF:
            kind, dtd_version = "devinf", FPI_DEVINF[fpi]
    if kind == "unknown":
        # Anonymous or unregistered public id: guess from the root tag token.
        first = data[r.pos] if r.pos < len(data) else 0
        if first & 0x3F == 0x2D:
            kind = "syncml"
        elif first & 0x3F == 0x0A:
            kind = "devinf"
        else:
            raise SyncMLParseError(f"WBXML document with unknown public id {pubid:#x}")
    pages = SYNCML_PAGES[dtd_version] if kind == "syncml" else DEVINF_PAGES[dtd_version]

    root = _decode_body(r, pages, strtbl, encoding, limits, budget, kind)
    return WbxmlDocument(version, pubid, kind, dtd_version, charset, root)


def _skip_attributes(r: _Reader) -> None:
    # SyncML defines no attributes; skip whatever is there (WBXML 1.3 section 5.8.3).
    while True:
        tok = r.byte()
        if tok == END:
            return
        if tok == SWITCH_PAGE:
            r.byte()
        elif tok in (LITERAL, STR_T, ENTITY, EXT_T_0, EXT_T_1, EXT_T_2):
            r.mb_u_int32()
        elif tok in (STR_I, EXT_I_0, EXT_I_1, EXT_I_2):
            r.cstring()
        elif tok == OPAQUE:
            r.take(r.mb_u_int32())
        # other tokens are ATTRSTART/ATTRVALUE codes or EXT_n without payload


def _decode_body(
    r: _Reader,
    pages: CodePages,
    strtbl: bytes,
    encoding: str,
    limits: Limits,
    budget: _Budget,
    kind: str,
) -> Element:
    page = 0
    stack: list[tuple[Element, list[str | bytes]]] = []
    root: Element | None = None
    while True:
        if root is not None and not stack:
            return root
        at = r.pos
        tok = r.byte()
        if tok == SWITCH_PAGE:
            page = r.byte()
        elif tok == END:
            if not stack:
                raise SyncMLParseError(f"WBXML END without open element at offset {at}")
            elem, pieces = stack.pop()
            _finish(elem, pieces, limits, budget, kind)
        elif tok in (STR_I, STR_T, OPAQUE, ENTITY) or tok in (EXT_I_0, EXT_I_1, EXT_I_2):
            if not stack:
                raise SyncMLParseError(f"WBXML content outside the root element at offset {at}")
            pieces = stack[-1][1]
            if tok == STR_I:
                pieces.append(_decode_text(r.cstring(), encoding, at))
            elif tok == STR_T:
                pieces.append(_decode_text(_strtbl_string(strtbl, r.mb_u_int32()), encoding, at))
            elif tok == OPAQUE:
                pieces.append(r.take(r.mb_u_int32()))
            elif tok == ENTITY:
                code = r.mb_u_int32()
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise SyncMLParseError(f"WBXML entity {code:#x} is not a character")
                pieces.append(chr(code))
            else:
                r.cstring()  # EXT_I_n: extension strings, not used by SyncML
        elif tok in (EXT_T_0, EXT_T_1, EXT_T_2):
            r.mb_u_int32()
        elif tok in (EXT_0, EXT_1, EXT_2):
            pass
        elif tok == PI:
            raise SyncMLParseError(f"WBXML processing instruction at offset {at} not supported")
        else:
            ident = tok & 0x3F
            if ident == LITERAL:
                name = _decode_text(_strtbl_string(strtbl, r.mb_u_int32()), encoding, at)
                ns = pages.namespaces.get(page, "")
            else:
                name = pages.pages.get(page, {}).get(ident)
                ns = pages.namespaces.get(page, "")
                if name is None:
                    # Keep unknown tokens instead of failing: the model ignores them.
                    name = f"Unknown-{page:02x}-{ident:02x}"
            if tok & TAG_HAS_ATTRIBUTES:
                _skip_attributes(r)
            budget.add()
            elem = Element(name, ns)
            if stack:
                stack[-1][0].children.append(elem)
            elif root is None:
                root = elem
            else:
                raise SyncMLParseError(f"WBXML second root element at offset {at}")
            if tok & TAG_HAS_CONTENT:
                if len(stack) >= limits.max_depth:
                    raise SyncMLSizeError(
                        f"WBXML nesting deeper than {limits.max_depth} at offset {at}"
                    )
                stack.append((elem, []))


def _finish(
    elem: Element, pieces: list[str | bytes], limits: Limits, budget: _Budget, kind: str
) -> None:
    if not pieces:
        return
    if all(isinstance(p, str) for p in pieces):
        elem.text = "".join(pieces)  # type: ignore[arg-type]
        return
    if len(pieces) == 1:
        raw = pieces[0]
    else:
        raw = b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in pieces)
    assert isinstance(raw, bytes)
    # An embedded DevInf document (SyncML RepPro: Data of Put/Results with DevInf).
    if kind == "syncml" and elem.tag == "Data" and not elem.children and looks_like_wbxml(raw):
        try:
            inner = decode_wbxml(raw, limits=limits, _budget=budget)
        except SyncMLSizeError:
            raise
        except SyncMLParseError:
            inner = None
        if inner is not None and inner.kind == "devinf":
            elem.children.append(inner.root)
            return
    elem.text = raw


# ---------------------------------------------------------------------------------- encoding


def _mb(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


class _StringTable:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.index: dict[str, int] = {}

    def add(self, s: str) -> int:
        if s not in self.index:
            self.index[s] = len(self.buf)
            self.buf += s.encode("utf-8") + b"\x00"
        return self.index[s]


def encode_wbxml(
    root: Element,
    *,
    kind: str,
    dtd_version: str,
    wbxml_version: int = WBXML_1_2,
    string_table: bool = False,
) -> bytes:
    """Encode an element tree as a WBXML document of ``kind`` ``"syncml"`` or ``"devinf"``.

    With ``string_table`` repeated strings go into the string table and are referenced with
    STR_T; otherwise only literal (unknown) tag names use the table.
    """
    if dtd_version not in ("1.1", "1.2"):
        raise SyncMLEncodeError(f"no WBXML code pages for version {dtd_version!r}")
    if kind == "syncml":
        pages, pubid = SYNCML_PAGES[dtd_version], SYNCML_PUBID[dtd_version]
    elif kind == "devinf":
        pages, pubid = DEVINF_PAGES[dtd_version], DEVINF_PUBID[dtd_version]
    else:
        raise SyncMLEncodeError(f"unknown WBXML document kind {kind!r}")
    table = _StringTable()
    if string_table:
        counts: dict[str, int] = {}
        for e in root.iter():
            if isinstance(e.text, str) and len(e.text.encode("utf-8")) >= 3:
                counts[e.text] = counts.get(e.text, 0) + 1
        for s, n in counts.items():
            if n >= 2 and "\x00" not in s:
                table.add(s)
    body = bytearray()
    state = {"page": 0}
    _encode_element(root, pages, table, string_table, body, state, dtd_version, wbxml_version)
    head = bytes([wbxml_version]) + _mb(pubid) + _mb(CHARSET_UTF8)
    return head + _mb(len(table.buf)) + bytes(table.buf) + bytes(body)


def _encode_element(
    e: Element,
    pages: CodePages,
    table: _StringTable,
    use_table: bool,
    out: bytearray,
    state: dict[str, int],
    dtd_version: str,
    wbxml_version: int,
) -> None:
    found = pages.lookup(e.ns, e.tag)
    has_content = bool(e.children) or bool(e.text)
    if found is None:
        # Unknown element: LITERAL tag with its name in the string table.
        token = LITERAL
        literal = table.add(e.tag)
        # The decoder gives a literal tag the namespace of the current page: keep it right.
        page = next((p for p, ns in pages.namespaces.items() if ns == e.ns), state["page"])
        if page != state["page"]:
            out += bytes([SWITCH_PAGE, page])
            state["page"] = page
    else:
        page, token = found
        literal = -1
        if page != state["page"]:
            out += bytes([SWITCH_PAGE, page])
            state["page"] = page
    out.append(token | (TAG_HAS_CONTENT if has_content else 0))
    if literal >= 0:
        out += _mb(literal)
    if not has_content:
        return
    for c in e.children:
        if c.ns == NS_DEVINF and c.tag == "DevInf" and pages.namespaces.get(0) != NS_DEVINF:
            # DevInf inside SyncML Data: its own WBXML document, carried as OPAQUE.
            verdtd = c.child("VerDTD")
            v = verdtd.text_str().strip() if verdtd is not None else ""
            inner = encode_wbxml(
                c,
                kind="devinf",
                dtd_version=v if v in ("1.1", "1.2") else dtd_version,
                wbxml_version=wbxml_version,
                string_table=use_table,
            )
            out += bytes([OPAQUE]) + _mb(len(inner)) + inner
        else:
            _encode_element(c, pages, table, use_table, out, state, dtd_version, wbxml_version)
    if isinstance(e.text, bytes):
        out += bytes([OPAQUE]) + _mb(len(e.text)) + e.text
    elif e.text:
        if "\x00" in e.text:
            raw = e.text.encode("utf-8")
            out += bytes([OPAQUE]) + _mb(len(raw)) + raw
        elif use_table and e.text in table.index:
            out += bytes([STR_T]) + _mb(table.index[e.text])
        else:
            out += bytes([STR_I]) + e.text.encode("utf-8") + b"\x00"
    out.append(END)
