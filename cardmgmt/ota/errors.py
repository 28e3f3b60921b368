"""The one exception family of the OTA package.

Every decoder of outside input (SMS user data, TPDUs, secured packets, PoRs, CAP files, GET STATUS
responses, install parameters) raises only subclasses of `OtaError`, with a message a support
engineer can act on without reading the code.
"""

from __future__ import annotations


class OtaError(Exception):
    """Base class of every error raised by `cardmgmt.ota`."""


class FormatError(OtaError, ValueError):
    """Bytes that do not follow the layout the specification gives (too short, bad length...)."""


class SecurityError(OtaError):
    """A checksum or signature did not verify, or a key does not suit its algorithm."""


class UnsupportedError(OtaError):
    """A valid option this package deliberately does not implement (DS, proprietary algorithms)."""


class CapFileError(FormatError):
    """A CAP file that cannot be turned into a load file (not a zip, bomb, bad component...)."""


class PlanningError(OtaError):
    """An operation that cannot be turned into secured packets for the given card profile."""
