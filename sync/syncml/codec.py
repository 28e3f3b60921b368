"""Message-level encode/decode: bytes <-> :class:`SyncML`, in XML or WBXML."""

from __future__ import annotations

from .devinf import DEVINF_WBXML_TYPE, DEVINF_XML_TYPE, DevInf
from .element import SYNCML_NAMESPACES, Element
from .errors import SyncMLEncodeError, SyncMLError, SyncMLParseError
from .limits import DEFAULT_LIMITS, Limits
from .model import SyncML, UnknownCommand
from .wbxml import WBXML_1_2, decode_wbxml, encode_wbxml
from .xmlcodec import parse_xml, serialize_xml

CONTENT_TYPE_XML = "application/vnd.syncml+xml"
CONTENT_TYPE_WBXML = "application/vnd.syncml+wbxml"


def detect_encoding(data: bytes) -> str:
    """``"wbxml"`` or ``"xml"`` from the first byte (WBXML starts with version 0x01-0x03)."""
    return "wbxml" if data[:1] in (b"\x01", b"\x02", b"\x03") else "xml"


def _guarded(fn, *args, **kwargs):
    # Last line of defence: decoders of outside input raise only SyncMLError.
    try:
        return fn(*args, **kwargs)
    except SyncMLError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise SyncMLParseError(f"invalid message: {exc.__class__.__name__}: {exc}") from None


def parse_message(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SyncML:
    """Decode an XML or WBXML SyncML message (encoding detected from the first byte)."""
    if not isinstance(data, bytes | bytearray):
        raise SyncMLParseError("message must be bytes")
    if detect_encoding(data) == "wbxml":
        return parse_wbxml_message(data, limits=limits)
    return parse_xml_message(data, limits=limits)


def parse_xml_message(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> SyncML:
    return _guarded(lambda: SyncML.from_element(parse_xml(data, limits=limits)))


def parse_wbxml_message(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SyncML:
    def run() -> SyncML:
        doc = decode_wbxml(data, limits=limits)
        if doc.kind != "syncml":
            raise SyncMLParseError(f"WBXML document is {doc.kind}, not a SyncML message")
        return SyncML.from_element(doc.root)

    return _guarded(run)


def _devinf_type(root: Element, wanted: str) -> Element:
    """Make the Meta Type of items carrying DevInf name the encoding actually written.

    DevInf travels as nested XML in XML messages and as an embedded WBXML document in WBXML
    ones; its type says which (``application/vnd.syncml-devinf+xml`` / ``+wbxml``).
    libwbxml2 and handsets rely on it, so the codec keeps it consistent.
    """
    for cmd in root.iter():
        for item in cmd.all("Item"):
            data = item.child("Data")
            if data is None or data.child("DevInf") is None:
                continue
            for meta in (item.child("Meta"), cmd.child("Meta")):
                t = meta.child("Type") if meta is not None else None
                if t is not None and t.text_str().strip() in (DEVINF_XML_TYPE, DEVINF_WBXML_TYPE):
                    t.text = wanted
    return root


def _may_carry_devinf(msg: SyncML) -> bool:
    """False when no item of `msg` can hold DevInf: then `_devinf_type` has nothing to do
    (it walks the whole tree, which costs as much as writing a message of statuses)."""
    if msg.hdr.extra:
        return True
    for cmd in msg.iter_commands():
        if isinstance(cmd, UnknownCommand) or cmd.extra:
            return True
        for item in getattr(cmd, "items", ()):
            if item.extra or isinstance(item.data, DevInf | Element):
                return True
    return False


def to_xml(msg: SyncML) -> bytes:
    """Serialise a message as UTF-8 XML (item content as CDATA)."""
    root = msg.to_element()
    if _may_carry_devinf(msg):
        root = _devinf_type(root, DEVINF_XML_TYPE)
    return serialize_xml(root)


def to_wbxml(msg: SyncML, *, string_table: bool = False, wbxml_version: int = WBXML_1_2) -> bytes:
    """Serialise a message as WBXML (SyncML 1.1: public id 0x0FD3, 1.2: 0x1201; UTF-8)."""
    if msg.version not in SYNCML_NAMESPACES:
        raise SyncMLEncodeError(f"WBXML encoding needs SyncML 1.1 or 1.2, not {msg.version!r}")
    root = msg.to_element()
    if _may_carry_devinf(msg):
        root = _devinf_type(root, DEVINF_WBXML_TYPE)
    return encode_wbxml(
        root,
        kind="syncml",
        dtd_version=msg.version,
        string_table=string_table,
        wbxml_version=wbxml_version,
    )


def serialize_message(msg: SyncML, encoding: str = "xml", **options) -> bytes:
    """Serialise in ``encoding`` ``"xml"`` or ``"wbxml"`` (answer in the client's encoding)."""
    if encoding == "xml":
        return to_xml(msg)
    if encoding == "wbxml":
        return to_wbxml(msg, **options)
    raise ValueError(f"encoding must be 'xml' or 'wbxml', not {encoding!r}")
