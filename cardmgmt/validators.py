"""Validation of identifiers and keys, shared by forms, the API and CSV imports.

Each `check_*` returns the normalised value or raises `ValueError` with a message that
names the problem; callers attach the field, line and column.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from cardmgmt.choices import KEY_LENGTHS

_DIGITS = re.compile(r"^[0-9]+$")
_HEX = re.compile(r"^[0-9A-Fa-f]*$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


# ASCII digit -> its value, and -> the digit sum of twice its value (the Luhn doubling).
_PLAIN = bytes(48) + bytes(range(10)) + bytes(198)
_DOUBLED = bytes(48) + bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)) + bytes(198)


def luhn_check_digit(payload: str) -> int:
    """The Luhn digit that completes `payload` (ITU-T E.118 for ICCIDs). Digits only."""
    digits = payload.encode()
    # From the right: the digits next to the check digit are doubled. translate() and sum()
    # over bytes keep this at C speed for million-row imports.
    total = sum(digits[-1::-2].translate(_DOUBLED)) + sum(digits[-2::-2].translate(_PLAIN))
    return (10 - total % 10) % 10


def check_iccid(value: str) -> str:
    value = value.strip()
    if not _DIGITS.match(value):
        raise ValueError("ICCID must be digits only")
    if not 19 <= len(value) <= 20:
        raise ValueError(f"ICCID must be 19 or 20 digits, got {len(value)}")
    if not value.startswith("89"):
        raise ValueError("ICCID must start with 89 (telecom industry identifier)")
    if luhn_check_digit(value[:-1]) != ord(value[-1]) - 48:
        raise ValueError(
            f"ICCID Luhn check digit is wrong (expected {luhn_check_digit(value[:-1])})"
        )
    return value


def check_imsi(value: str) -> str:
    value = value.strip()
    if not _DIGITS.match(value):
        raise ValueError("IMSI must be digits only")
    if not 14 <= len(value) <= 15:
        raise ValueError(f"IMSI must be 14 or 15 digits, got {len(value)}")
    return value


def check_msisdn(value: str) -> str:
    """E.164 with a leading +: '+491701234567'. Spaces and dashes are tolerated."""
    value = re.sub(r"[\s\-()]", "", value.strip())
    if value.startswith("00"):
        value = "+" + value[2:]
    if not _E164.match(value):
        raise ValueError("MSISDN must be E.164: '+', country code and number, 8 to 15 digits")
    return value


_KEY_BYTES = {str(k.value): n for k, n in KEY_LENGTHS.items()}


def check_key(value: str, algorithm: str) -> bytes:
    # Hot path of million-row imports: one dict lookup and one fromhex on good input.
    expected = _KEY_BYTES.get(algorithm)
    if expected is None:
        raise ValueError(f"unknown key algorithm {algorithm!r}")
    value = value.strip()
    if not value:
        raise ValueError("key is empty")
    if not _HEX.match(value) or len(value) % 2:
        raise ValueError("key must be hexadecimal with an even number of digits")
    key = bytes.fromhex(value)
    if len(key) != expected:
        raise ValueError(f"key must be {expected} bytes for {algorithm}, got {len(key)}")
    return key


def check_tar(value: str) -> str:
    value = value.strip().upper()
    if len(value) != 6 or not _HEX.match(value):
        raise ValueError("TAR must be 3 bytes in hex, e.g. B00000")
    return value


def django_validator(check, name: str):  # type: ignore[no-untyped-def]
    """Wrap a `check_*` function as a Django field validator importable as `name`."""

    def validate(value: str) -> None:
        try:
            check(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    validate.__name__ = validate.__qualname__ = name
    return validate


validate_iccid = django_validator(check_iccid, "validate_iccid")
validate_imsi = django_validator(check_imsi, "validate_imsi")
validate_msisdn = django_validator(check_msisdn, "validate_msisdn")
validate_tar = django_validator(check_tar, "validate_tar")
