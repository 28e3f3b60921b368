"""The one exception family of the SMPP package.

Every error the codec, the client or the session raises is an `SmppError`. Callers that only want
to know "may I try again later?" read `retryable`: throttling, a lost link and a response timeout
are retryable; a refused bind or a rejected message is not.
"""

from __future__ import annotations


class SmppError(Exception):
    """Base of every SMPP error."""

    retryable: bool = False


class SmppEncodeError(SmppError):
    """A PDU could not be encoded: a field is too long, out of range or not representable."""


class SmppDecodeError(SmppError):
    """Bytes that are not a valid SMPP 3.4 PDU.

    `status` is the command_status to answer with in a generic_nack (SMPP 3.4 section 4.3.1),
    `command_id` and `sequence_number` are those of the offending header when it could be read
    (0 otherwise), so a peer can still nack the right request.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0x00000002,  # ESME_RINVCMDLEN
        command_id: int = 0,
        sequence_number: int = 0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.command_id = command_id
        self.sequence_number = sequence_number


class SmppFramingError(SmppDecodeError):
    """The byte stream itself is lost (absurd command_length): the connection must be dropped."""


class SmppCommandError(SmppError):
    """The peer answered a request with a non-zero command_status."""

    def __init__(self, status: int, command_id: int = 0, message: str = "") -> None:
        from cardmgmt.smpp.pdu import command_name, status_name  # pdu imports this module

        self.status = status
        self.command_id = command_id
        text = f"{command_name(command_id)} refused: {status_name(status)}"
        if message:
            text = f"{text}: {message}"
        super().__init__(text)


class SmppThrottledError(SmppCommandError):
    """ESME_RTHROTTLED or ESME_RMSGQFUL: the SMSC wants us to slow down; back off and retry."""

    retryable = True


class SmppBindError(SmppCommandError):
    """The SMSC refused the bind (wrong system_id or password, already bound, ...)."""


class SmppConnectionError(SmppError):
    """No usable bound link: never connected, lost, unbound or closed."""

    retryable = True


class SmppTimeoutError(SmppError):
    """No response within the response timeout (the request may or may not have been applied)."""

    retryable = True
