"""Normalisation of contact fields for matching and comparison (DESIGN 4a).

Normalised values are for comparing, never for storing in place of what the user typed.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_WS = re.compile(r"\s+")
_PHONE_SEPARATORS = re.compile(r"[\s\-./()\[\]\u00a0\u2010-\u2015]")
_DIAL_SUFFIX = re.compile(r"[pPwW,;xX#*].*$|\s*(?:ext|Ext|EXT)\.?\s*\d+$")
# Already E.164 as typed (ASCII digits only): the rules below would return it unchanged.
_E164 = re.compile(r"\+[0-9]+")


def normalize_name(name: str | None) -> str:
    """Case-folded, whitespace-collapsed, NFC name; accents are kept (``Müller`` != ``Muller``)."""
    if not name:
        return ""
    folded = unicodedata.normalize("NFC", name).casefold()
    return _WS.sub(" ", unicodedata.normalize("NFC", folded)).strip()


def normalize_email(email: str | None) -> str:
    """Lower-cased e-mail address without surrounding blanks or a ``mailto:`` prefix."""
    if not email:
        return ""
    e = email.strip()
    if e.lower().startswith("mailto:"):
        e = e[7:]
    return e.strip().lower()


def normalize_phone(
    number: str | None,
    default_country_code: str = "+49",
    *,
    international_prefix: str = "00",
    trunk_prefix: str = "0",
) -> str:
    """Best-effort E.164 form of a dialled number.

    ``+CC...`` stays, ``00CC...`` (``international_prefix``) becomes ``+CC...``, a national
    number with the ``trunk_prefix`` (``0``) gets ``default_country_code`` in its place, and
    ``+49 (0)30 ...`` drops the bracketed trunk zero. Spaces, dashes, dots, slashes and
    brackets are ignored; a DTMF/extension suffix (``p``, ``w``, ``x``, ``ext``) is cut off.
    A number that cannot be placed (a local number without area code, a short code) is
    returned as its digits only. With ``trunk_prefix=""`` (countries without one, such as
    Italy) every number not already international gets the country code in front.
    Returns ``""`` when there are no digits.
    """
    if not number:
        return ""
    if _E164.fullmatch(number):
        return number
    return _normalize_phone(number, default_country_code, international_prefix, trunk_prefix)


# Matching normalises each phone several times (content digest, twin keys), and a handset's
# numbers repeat from session to session: the rules run once per distinct input.
@functools.lru_cache(maxsize=8192)
def _normalize_phone(
    number: str, default_country_code: str, international_prefix: str, trunk_prefix: str
) -> str:
    s = unicodedata.normalize("NFKC", number).strip()
    if s.lower().startswith("tel:"):
        s = s[4:]
    s = _DIAL_SUFFIX.sub("", s)
    s = re.sub(r"\(\s*0\s*\)", "", s) if s.lstrip().startswith(("+", "00")) else s
    s = _PHONE_SEPARATORS.sub("", s)
    plus = s.startswith("+")
    digits = "".join(str(unicodedata.decimal(ch)) for ch in s if ch.isdecimal())
    if not digits:
        return ""
    cc = default_country_code.lstrip("+")
    if plus:
        return "+" + digits
    if international_prefix and digits.startswith(international_prefix):
        return "+" + digits[len(international_prefix) :]
    if trunk_prefix:
        if digits.startswith(trunk_prefix) and len(digits) > len(trunk_prefix) + 2:
            return "+" + cc + digits[len(trunk_prefix) :]
        return digits
    return "+" + cc + digits
