"""XML codec for the element tree, hardened for untrusted input.

Two parsers, one behaviour. The common message (no DOCTYPE, an ASCII-compatible encoding) is
parsed by libxml2 through lxml with entity substitution, DTD loading and network access off,
then copied into :class:`Element` trees with the nesting depth and element count checked on the
way: it is several times faster than the pure-Python route, and SyncML messages of thousands of
items are the hot path of the sync server. Anything else (a DOCTYPE, another encoding, or a
document libxml2 refuses) goes through defusedxml's expat parser, which gives the errors: entity
declarations and external references are refused (no billion laughs, no XXE); a DOCTYPE naming
the public SyncML DTD, as some handsets send, is tolerated only without an internal subset; the
DTD is never fetched. Size is checked before either parser runs, nesting depth and element count
while parsing, so a hostile document is rejected before it is built.
"""

from __future__ import annotations

import re
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from lxml import etree

from .element import Element
from .errors import SyncMLEncodeError, SyncMLParseError, SyncMLSizeError
from .limits import DEFAULT_LIMITS, Limits


class _Builder:
    """expat target that builds :class:`Element` trees within limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.stack: list[tuple[Element, list[str]]] = []
        self.root: Element | None = None
        self.count = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.count += 1
        if self.count > self.limits.max_elements:
            raise SyncMLSizeError(f"XML document has more than {self.limits.max_elements} elements")
        if len(self.stack) >= self.limits.max_depth:
            raise SyncMLSizeError(f"XML nesting deeper than {self.limits.max_depth}")
        if tag.startswith("{"):
            ns, _, local = tag[1:].partition("}")
        else:
            ns, local = "", tag
        e = Element(local, ns)
        if self.stack:
            self.stack[-1][0].children.append(e)
        else:
            self.root = e
        self.stack.append((e, []))

    def end(self, tag: str) -> None:
        e, pieces = self.stack.pop()
        text = "".join(pieces)
        if e.children:
            # No mixed content in SyncML: whitespace between elements is formatting.
            e.text = text if text.strip() else None
        else:
            e.text = text if text else None

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1][1].append(text)

    def close(self) -> Element | None:
        return self.root


def _doctype(name, sysid, pubid, has_internal_subset):
    if has_internal_subset:
        raise SyncMLParseError("XML DOCTYPE with an internal subset is not accepted")


def parse_xml(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Element:
    """Parse XML bytes (or text) into an :class:`Element` tree."""
    if isinstance(data, str):
        data = data.encode("utf-8")
        if data.startswith(b"<?xml"):
            # The text is already decoded: drop a declared encoding that no longer applies.
            data = re.sub(rb"^(<\?xml[^>]*?)\s+encoding=[\"'][^\"']*[\"']", rb"\1", data)
    if not isinstance(data, bytes | bytearray):
        raise SyncMLParseError("XML input must be bytes or str")
    if len(data) > limits.max_bytes:
        raise SyncMLSizeError(f"XML message of {len(data)} bytes exceeds {limits.max_bytes}")
    data = bytes(data)
    if _plain_document(data):
        root = _parse_libxml2(data, limits)
        if root is not None:
            return root
    return _parse_expat(data, limits)


# libxml2 with everything that reaches outside the document switched off. `resolve_entities`
# False keeps undeclared references as errors and declared ones unexpanded; documents with a
# DOCTYPE never get here (lxml would read a SYSTEM identifier as a file).
_LXML_PARSER = etree.XMLParser(
    resolve_entities=False,
    load_dtd=False,
    no_network=True,
    dtd_validation=False,
    remove_comments=True,
    remove_pis=True,
    huge_tree=False,
    collect_ids=False,
)
# Encodings in which "<!DOCTYPE" can only be written as those ASCII bytes.
_ASCII_COMPATIBLE = {b"utf-8", b"utf8", b"us-ascii", b"ascii", b"iso-8859-1", b"latin1",
                     b"iso8859-1", b"latin-1"}  # fmt: skip
_XML_DECL_ENCODING = re.compile(rb"^<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def _plain_document(data: bytes) -> bool:
    """True when libxml2 may parse `data`: no DOCTYPE (hence no DTD, no declared entity) in an
    encoding where that is visible in the bytes. The rest takes the expat route."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.startswith(b"<") or b"<!DOCTYPE" in data:
        return False
    if data.startswith(b"<?xml"):
        m = _XML_DECL_ENCODING.match(data, 0, 200)
        if m is not None and m.group(1).lower() not in _ASCII_COMPATIBLE:
            return False
    return True


def _parse_libxml2(data: bytes, limits: Limits) -> Element | None:
    """The fast route; None when libxml2 refuses the document (expat then says why)."""
    try:
        tree = etree.fromstring(data, _LXML_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if tree.getroottree().docinfo.internalDTD is not None:
        return None
    return _copy_tree(tree, limits)


def _copy_tree(root, limits: Limits) -> Element:  # type: ignore[no-untyped-def]
    """An lxml tree as :class:`Element` trees (same text rules as :class:`_Builder`), elements
    and depth counted on the way. About a microsecond per element, which is most of parsing a
    message of a thousand items: a SyncML message repeats a few dozen tags, so each tag is
    split into namespace and local name once (a closure: cheaper than a method per node)."""
    max_elements, max_depth = limits.max_elements, limits.max_depth
    names: dict[str, tuple[str, str]] = {}
    count = 1  # the root

    def copy(node, depth: int) -> Element:  # type: ignore[no-untyped-def]
        nonlocal count
        tag = node.tag
        try:
            ns, local = names[tag]
        except KeyError:
            if not isinstance(tag, str):  # an entity reference kept unexpanded
                raise SyncMLParseError("XML refused: entity references are not accepted") from None
            if tag[0] == "{":
                ns, _, local = tag[1:].partition("}")
            else:
                ns, local = "", tag
            names[tag] = (ns, local)
        text = node.text
        if not len(node):
            return Element(local, ns, [], text or None)
        if depth >= max_depth:
            raise SyncMLSizeError(f"XML nesting deeper than {max_depth}")
        count += len(node)
        if count > max_elements:
            raise SyncMLSizeError(f"XML document has more than {max_elements} elements")
        children = [copy(c, depth + 1) for c in node]
        tails = [c.tail for c in node if c.tail]
        if tails or text:
            # No mixed content in SyncML: whitespace between elements is formatting.
            joined = (text or "") + "".join(tails)
            text = joined if joined.strip() else None
        return Element(local, ns, children, text)

    return copy(root, 1)


def _parse_expat(data: bytes, limits: Limits) -> Element:
    builder = _Builder(limits)
    try:
        parser = DefusedXMLParser(
            target=builder, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
        parser.parser.StartDoctypeDeclHandler = _doctype
        parser.feed(data)
        root = parser.close()
    except SyncMLParseError:
        raise
    except DefusedXmlException as exc:
        raise SyncMLParseError(f"XML refused: {exc}") from None
    except (expat.ExpatError, SyntaxError) as exc:  # ParseError subclasses SyntaxError
        raise SyncMLParseError(f"malformed XML: {exc}") from None
    except (ValueError, LookupError, RecursionError, MemoryError) as exc:
        raise SyncMLParseError(f"malformed XML: {exc}") from None
    if root is None:
        raise SyncMLParseError("XML document has no root element")
    return root


# ---------------------------------------------------------------------------------- writing

_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _check_chars(s: str, tag: str) -> None:
    if _INVALID_XML_CHARS.search(s):
        raise SyncMLEncodeError(f"<{tag}> holds a control character that XML 1.0 cannot carry")


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _cdata(s: str) -> str:
    if "\r" in s:
        return _escape(s)  # CR would be normalised away inside CDATA
    return "<![CDATA[" + s.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def serialize_xml(root: Element, *, declaration: bool = True) -> bytes:
    """Write an element tree as UTF-8 XML. ``bytes`` text (item content) becomes CDATA."""
    parts: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>'] if declaration else []
    _write(root, "", parts)
    return "".join(parts).encode("utf-8")


# Text that needs no escaping and holds nothing XML 1.0 refuses is written as it is.
_ATTENTION = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff&<>\r]")


def _write(e: Element, parent_ns: str, parts: list[str]) -> None:
    tag = e.tag
    ns = e.ns
    if ns and ns != parent_ns:
        start = f'<{tag} xmlns="{_escape(ns).replace(chr(34), "&quot;")}"'
    else:
        start = "<" + tag
        ns = parent_ns
    text = e.text
    if isinstance(text, bytes):
        try:
            text_s = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SyncMLEncodeError(
                f"<{tag}> holds binary data; XML needs it base64-encoded (Meta Format b64)"
            ) from None
        _check_chars(text_s, tag)
        body = _cdata(text_s) if text_s else ""
    elif text:
        if _ATTENTION.search(text) is None:
            body = text
        else:
            _check_chars(text, tag)
            body = _escape(text)
    else:
        body = ""
    children = e.children
    if not children:
        parts.append(f"{start}>{body}</{tag}>" if body else start + "/>")
        return
    parts.append(start + ">")
    for c in children:
        _write(c, ns, parts)
    parts.append(f"{body}</{tag}>")
