"""One exception family for the whole package.

Every decoder of outside input (XML, WBXML, vCard, SAN, DevInf) raises only these, with a
message a support engineer can act on.
"""

from __future__ import annotations


class SyncMLError(Exception):
    """Base class of every error raised by :mod:`sync.syncml`."""


class SyncMLParseError(SyncMLError):
    """Input bytes or text are not a valid message (malformed XML/WBXML, bad field value)."""


class SyncMLSizeError(SyncMLParseError):
    """Input exceeds a configured limit (bytes, nesting depth, element count)."""


class SyncMLEncodeError(SyncMLError):
    """A model cannot be written in the requested representation."""


class SyncMLAuthError(SyncMLError):
    """Credentials are missing, malformed or of an unsupported type."""
