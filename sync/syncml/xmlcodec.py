"""XML codec for the element tree, hardened for untrusted input.

Parsing uses defusedxml's expat parser: entity declarations and external references are
refused (no billion laughs, no XXE). A DOCTYPE naming the public SyncML DTD, as some
handsets send, is tolerated only without an internal subset; the DTD is never fetched. Size,
nesting depth and element count are checked while parsing, so a hostile document is rejected
before it is built.
"""

from __future__ import annotations

import re
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

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
    builder = _Builder(limits)
    try:
        parser = DefusedXMLParser(
            target=builder, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
        parser.parser.StartDoctypeDeclHandler = _doctype
        parser.feed(bytes(data))
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


def _write(e: Element, parent_ns: str, parts: list[str]) -> None:
    attr = (
        f' xmlns="{_escape(e.ns).replace(chr(34), "&quot;")}"' if e.ns and e.ns != parent_ns else ""
    )
    ns = e.ns or parent_ns
    text = e.text
    if isinstance(text, bytes):
        try:
            text_s = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SyncMLEncodeError(
                f"<{e.tag}> holds binary data; XML needs it base64-encoded (Meta Format b64)"
            ) from None
        _check_chars(text_s, e.tag)
        body = _cdata(text_s) if text_s else ""
    elif text:
        _check_chars(text, e.tag)
        body = _escape(text)
    else:
        body = ""
    if not body and not e.children:
        parts.append(f"<{e.tag}{attr}/>")
        return
    parts.append(f"<{e.tag}{attr}>")
    for c in e.children:
        _write(c, ns, parts)
    parts.append(body)
    parts.append(f"</{e.tag}>")
