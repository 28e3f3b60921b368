"""The card application toolkit codings between the virtual handset and its card (ETSI TS 102 223).

Pure: bytes in, bytes out. Only what the sync applet's triggers need:

* ``MENU SELECTION`` (envelope ``D3``, 7.3): the user picked a menu item;
* ``PROVIDE LOCAL INFORMATION`` (proactive ``D0``, type ``26``, qualifier ``01`` = IMEI) and its
  ``TERMINAL RESPONSE`` with the IMEI (8.20, BCD as in TS 24.008 10.5.1.4): how an applet learns
  the handset's IMEI at power-on, after the terminal's ``TERMINAL PROFILE``.

The applet's timer is not coded here: the virtual card's applets are ticked with the time
(``Uicc.tick(now)``) instead of ``TIMER MANAGEMENT`` / ``ENVELOPE(TIMER EXPIRATION)``.
"""

from __future__ import annotations

from cardmgmt.ota.errors import FormatError

TAG_MENU_SELECTION = 0xD3
TAG_PROACTIVE = 0xD0
TAG_COMMAND_DETAILS = 0x81
TAG_DEVICE_IDENTITIES = 0x82
TAG_RESULT = 0x83
TAG_ITEM_IDENTIFIER = 0x90
TAG_HELP_REQUEST = 0x95
TAG_IMEI = 0x94

DEVICE_KEYPAD = 0x01
DEVICE_UICC = 0x81
DEVICE_TERMINAL = 0x82

TYPE_PROVIDE_LOCAL_INFORMATION = 0x26
QUALIFIER_IMEI = 0x01
RESULT_OK = 0x00


def _tlv(tag: int, value: bytes) -> bytes:
    if len(value) < 0x80:
        return bytes([tag, len(value)]) + value
    if len(value) < 0x100:
        return bytes([tag, 0x81, len(value)]) + value
    raise FormatError("toolkit TLV longer than 255 octets")


def _tlvs(data: bytes, what: str) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise FormatError(f"{what}: truncated TLV")
        tag, length = data[i], data[i + 1]
        i += 2
        if length == 0x81:
            if i >= len(data):
                raise FormatError(f"{what}: truncated length")
            length = data[i]
            i += 1
        elif length > 0x80:
            raise FormatError(f"{what}: bad length octet {length:02X}")
        if i + length > len(data):
            raise FormatError(f"{what}: TLV {tag:02X} runs past the end")
        out.append((tag & 0x7F, data[i : i + length]))  # comprehension-required bit ignored
        i += length
    return out


def _outer(data: bytes, tag: int, what: str) -> list[tuple[int, bytes]]:
    items = _tlvs(data, what)
    if len(items) != 1 or items[0][0] != tag & 0x7F or data[0] != tag:
        raise FormatError(f"{what}: expected one {tag:02X} template")
    return _tlvs(items[0][1], what)


# --- MENU SELECTION ----------------------------------------------------------------------------


def menu_selection_envelope(item: int, *, help_request: bool = False) -> bytes:
    """``D3 L 82 02 01 81 90 01 item [15 00]``: keypad -> UICC, the chosen item identifier."""
    if not 1 <= item <= 0xFF:
        raise FormatError(f"menu item identifier {item} must be 1 to 255")
    body = _tlv(TAG_DEVICE_IDENTITIES, bytes([DEVICE_KEYPAD, DEVICE_UICC]))
    body += _tlv(TAG_ITEM_IDENTIFIER, bytes([item]))
    if help_request:
        body += _tlv(TAG_HELP_REQUEST, b"")
    return _tlv(TAG_MENU_SELECTION, body)


def parse_menu_selection(data: bytes) -> tuple[int, bool]:
    """(item identifier, help requested) of a MENU SELECTION envelope; FormatError if bad."""
    fields = dict(_outer(data, TAG_MENU_SELECTION, "MENU SELECTION"))
    item = fields.get(TAG_ITEM_IDENTIFIER & 0x7F)
    if item is None or len(item) != 1 or item[0] == 0:
        raise FormatError("MENU SELECTION: no item identifier")
    return item[0], (TAG_HELP_REQUEST & 0x7F) in fields


# --- PROVIDE LOCAL INFORMATION (IMEI) ----------------------------------------------------------


def encode_imei(imei: str) -> bytes:
    """The IMEI as 8 BCD octets (TS 24.008 10.5.1.4: odd indication, type 010 = IMEI)."""
    if not imei.isdigit() or len(imei) not in (14, 15):
        raise FormatError(f"IMEI {imei!r} must be 14 or 15 digits")
    digits = [int(c) for c in imei.ljust(15, "0")]
    out = bytearray([(digits[0] << 4) | 0x0A])  # odd number of digits (15), type IMEI
    for i in range(1, 15, 2):
        out.append((digits[i + 1] << 4) | digits[i])
    return bytes(out)


def decode_imei(data: bytes) -> str:
    if len(data) != 8 or data[0] & 0x07 != 0x02:
        raise FormatError("IMEI: expected 8 octets of type IMEI")
    digits = [data[0] >> 4]
    for octet in data[1:]:
        digits += [octet & 0x0F, octet >> 4]
    if any(d > 9 for d in digits):
        raise FormatError("IMEI: not BCD")
    return "".join(str(d) for d in digits)


def provide_local_information_imei(number: int = 1) -> bytes:
    """The proactive command ``D0 09 81 03 nn 26 01 82 02 81 82`` (the card asks for the IMEI)."""
    body = _tlv(
        TAG_COMMAND_DETAILS, bytes([number, TYPE_PROVIDE_LOCAL_INFORMATION, QUALIFIER_IMEI])
    )
    body += _tlv(TAG_DEVICE_IDENTITIES, bytes([DEVICE_UICC, DEVICE_TERMINAL]))
    return _tlv(TAG_PROACTIVE, body)


def parse_proactive_details(data: bytes) -> tuple[int, int, int]:
    """(number, type, qualifier) of a proactive command ``D0``."""
    fields = dict(_outer(data, TAG_PROACTIVE, "proactive command"))
    details = fields.get(TAG_COMMAND_DETAILS & 0x7F)
    if details is None or len(details) != 3:
        raise FormatError("proactive command: no command details")
    return details[0], details[1], details[2]


def imei_terminal_response(number: int, imei: str) -> bytes:
    """``81 03 nn 26 01 82 02 82 81 83 01 00 94 08 <IMEI>``: the terminal's answer."""
    out = _tlv(TAG_COMMAND_DETAILS, bytes([number, TYPE_PROVIDE_LOCAL_INFORMATION, QUALIFIER_IMEI]))
    out += _tlv(TAG_DEVICE_IDENTITIES, bytes([DEVICE_TERMINAL, DEVICE_UICC]))
    out += _tlv(TAG_RESULT, bytes([RESULT_OK]))
    out += _tlv(TAG_IMEI, encode_imei(imei))
    return out


def parse_imei_terminal_response(data: bytes) -> str:
    """The IMEI in a successful TERMINAL RESPONSE to PROVIDE LOCAL INFORMATION (IMEI)."""
    fields = dict(_tlvs(data, "TERMINAL RESPONSE"))
    details = fields.get(TAG_COMMAND_DETAILS & 0x7F, b"")
    if len(details) != 3 or details[1:] != bytes([TYPE_PROVIDE_LOCAL_INFORMATION, QUALIFIER_IMEI]):
        raise FormatError("TERMINAL RESPONSE: not for PROVIDE LOCAL INFORMATION (IMEI)")
    result = fields.get(TAG_RESULT & 0x7F, b"")
    if not result or result[0] != RESULT_OK:
        raise FormatError(f"TERMINAL RESPONSE: result {result.hex() or 'missing'}")
    imei = fields.get(TAG_IMEI & 0x7F)
    if imei is None:
        raise FormatError("TERMINAL RESPONSE: no IMEI")
    return decode_imei(imei)
