"""Pure SyncML DS 1.1/1.2 protocol package: no Django, no database, no settings.

Bytes and text in, dataclasses out (and back). Every decoder of outside input raises only
:class:`SyncMLError` subclasses. See docs/syncml.md.
"""

from .codec import (
    CONTENT_TYPE_WBXML,
    CONTENT_TYPE_XML,
    detect_encoding,
    parse_message,
    parse_wbxml_message,
    parse_xml_message,
    serialize_message,
    to_wbxml,
    to_xml,
)
from .devinf import (
    DEVINF_WBXML_TYPE,
    DEVINF_XML_TYPE,
    ContentTypeRef,
    CTCap,
    DataStore,
    DevInf,
    DSMem,
    Ext,
    Property,
    PropParam,
    parse_devinf,
    serialize_devinf,
)
from .element import NS_DEVINF, NS_METINF, NS_SYNCML_11, NS_SYNCML_12, Element
from .errors import (
    SyncMLAuthError,
    SyncMLEncodeError,
    SyncMLError,
    SyncMLParseError,
    SyncMLSizeError,
)
from .limits import DEFAULT_LIMITS, Limits
from .model import (
    Add,
    Alert,
    Anchor,
    Atomic,
    Chal,
    Command,
    Copy,
    Cred,
    Delete,
    Get,
    Item,
    Location,
    Map,
    MapItem,
    Mem,
    Meta,
    Move,
    Put,
    Replace,
    Results,
    Sequence,
    Status,
    Sync,
    SyncHdr,
    SyncML,
    UnknownCommand,
)

__all__ = [
    "CONTENT_TYPE_WBXML", "CONTENT_TYPE_XML", "DEFAULT_LIMITS", "DEVINF_WBXML_TYPE",
    "DEVINF_XML_TYPE", "NS_DEVINF", "NS_METINF", "NS_SYNCML_11", "NS_SYNCML_12", "Add", "Alert",
    "Anchor", "Atomic", "CTCap", "Chal", "Command", "ContentTypeRef", "Copy", "Cred", "DSMem",
    "DataStore", "Delete", "DevInf", "Element", "Ext", "Get", "Item", "Limits", "Location",
    "Map", "MapItem", "Mem", "Meta", "Move", "PropParam", "Property", "Put", "Replace",
    "Results", "Sequence", "Status", "Sync", "SyncHdr", "SyncML", "SyncMLAuthError",
    "SyncMLEncodeError", "SyncMLError", "SyncMLParseError", "SyncMLSizeError", "UnknownCommand",
    "detect_encoding", "parse_devinf", "parse_message", "parse_wbxml_message",
    "parse_xml_message", "serialize_devinf", "serialize_message", "to_wbxml", "to_xml",
]  # fmt: skip
