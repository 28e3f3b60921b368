"""vCard 2.1 (``text/x-vcard``) and 3.0 (``text/vcard``, RFC 2425/2426) parsing and writing.

Own parser rather than vobject: vCard 2.1 as phones send it needs per-property ``CHARSET=``
decoding of quoted-printable bytes, QP soft line breaks (``=`` at the end of a line) and
2.1 folding (the whitespace after the line break is kept), and it must work on the raw
bytes of mixed-charset cards. vobject's 2.1 handling gets several of these wrong (QP soft
breaks before unfolding, CHARSET ignored for QP) and it raises many exception types.

:func:`parse_vcard` returns a :class:`Contact`; :func:`serialize_vcard` writes 2.1 or 3.0.
Properties the model does not know (``X-`` and others) are preserved in ``Contact.extra``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass, field

from .errors import SyncMLParseError, SyncMLSizeError
from .normalize import normalize_email, normalize_name, normalize_phone

MAX_VCARD_BYTES = 4 * 1024 * 1024
MAX_PROPERTIES = 5_000

_ENCODING_WORDS = {"QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"}
_STRUCTURED = {"N", "ADR", "ORG"}
_SINGLE = {"FN", "NICKNAME", "TITLE", "ROLE", "BDAY", "NOTE", "UID", "REV"}


# ------------------------------------------------------------------------------- model


@dataclass(kw_only=True)
class Name:
    """N: family; given; additional; honorific prefixes; honorific suffixes."""

    family: str = ""
    given: str = ""
    additional: str = ""
    prefix: str = ""
    suffix: str = ""

    def parts(self) -> list[str]:
        return [self.family, self.given, self.additional, self.prefix, self.suffix]


@dataclass(kw_only=True)
class Phone:
    value: str = ""
    types: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Email:
    value: str = ""
    types: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Url:
    value: str = ""
    types: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Address:
    po_box: str = ""
    extended: str = ""
    street: str = ""
    locality: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    types: list[str] = field(default_factory=list)

    def parts(self) -> list[str]:
        return [self.po_box, self.extended, self.street, self.locality, self.region,
                self.postal_code, self.country]  # fmt: skip


@dataclass(kw_only=True)
class Photo:
    """Inline image (``data`` plus ``type`` such as JPEG) or a link (``uri``)."""

    data: bytes | None = None
    type: str | None = None
    uri: str | None = None


@dataclass(kw_only=True)
class VCardProperty:
    """A property kept verbatim: ``value`` is decoded text still in vCard escaping, or bytes."""

    name: str
    params: list[tuple[str, str]] = field(default_factory=list)
    value: str | bytes = ""
    group: str | None = None


@dataclass(kw_only=True)
class Contact:
    version: str = "3.0"
    fn: str | None = None
    n: Name | None = None
    nickname: str | None = None
    org: str | None = None
    org_units: list[str] = field(default_factory=list)
    title: str | None = None
    role: str | None = None
    bday: str | None = None
    note: str | None = None
    uid: str | None = None
    rev: str | None = None
    photo: Photo | None = None
    categories: list[str] = field(default_factory=list)
    tels: list[Phone] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    adrs: list[Address] = field(default_factory=list)
    urls: list[Url] = field(default_factory=list)
    extra: list[VCardProperty] = field(default_factory=list)

    def display_name(self) -> str:
        if self.fn:
            return self.fn
        if self.n:
            return " ".join(p for p in (self.n.prefix, self.n.given, self.n.additional,
                                        self.n.family, self.n.suffix) if p)  # fmt: skip
        return self.org or ""

    def normalized(self, default_country_code: str = "+49") -> dict:
        """Matching keys: normalised name, E.164 phones, lower-cased e-mails (sorted, unique)."""
        phones = {normalize_phone(t.value, default_country_code) for t in self.tels}
        return {
            "name": normalize_name(self.display_name()),
            "phones": sorted(p for p in phones if p),
            "emails": sorted({e for e in (normalize_email(m.value) for m in self.emails) if e}),
        }


# ------------------------------------------------------------------------------- reading


def _is_qp(prefix: bytes) -> bool:
    return b"QUOTED-PRINTABLE" in prefix.upper()


def _split_prefix(line: bytes) -> tuple[bytes, bytes] | None:
    """Split a logical line at the first ':' outside double quotes."""
    colon = line.find(b":")
    if colon >= 0 and line.find(b'"', 0, colon) < 0:  # the usual line: no quote before it
        return line[:colon], line[colon + 1 :]
    quoted = False
    for i, ch in enumerate(line):
        if ch == 0x22:
            quoted = not quoted
        elif ch == 0x3A and not quoted:
            return line[:i], line[i + 1 :]
    return None


def _logical_lines(data: bytes) -> list[bytes]:
    physical = re.split(rb"\r\n|\n|\r", data)
    version = re.search(rb"(?im)^VERSION:[ \t]*([0-9.]+)", data)
    v21 = version is None or version.group(1) == b"2.1"
    out: list[bytes] = []
    for line in physical:
        if out:
            prev = out[-1]
            if prev.endswith(b"=") and _is_qp(prev.split(b":", 1)[0]):
                out[-1] = prev[:-1] + line  # QP soft line break (RFC 2045 6.7 rule 5)
                continue
            if line[:1] in (b" ", b"\t"):
                # 2.1 folds before whitespace and keeps it; 3.0 (RFC 2425 5.8.1) drops one.
                out[-1] = prev + (line if v21 else line[1:])
                continue
        if line.strip():
            out.append(line)
        if len(out) > MAX_PROPERTIES:
            raise SyncMLSizeError(f"vCard data has more than {MAX_PROPERTIES} lines")
    return out


def _parse_params(prefix: str) -> tuple[str | None, str, list[tuple[str, str]]]:
    if ";" not in prefix and "." not in prefix:  # a bare name (FN, N, EMAIL...)
        return None, prefix.strip().upper(), []
    if '"' not in prefix:  # nothing quoted: every ';' separates
        parts = prefix.split(";")
    else:
        parts = []
        buf: list[str] = []
        quoted = False
        for ch in prefix:
            if ch == '"':
                quoted = not quoted
            elif ch == ";" and not quoted:
                parts.append("".join(buf))
                buf = []
                continue
            buf.append(ch)
        parts.append("".join(buf))
    name = parts[0].strip()
    group = None
    if "." in name:
        group, name = name.rsplit(".", 1)
    params: list[tuple[str, str]] = []
    for p in parts[1:]:
        p = p.strip()
        if not p:
            continue
        if "=" in p:
            k, v = p.split("=", 1)
            k = k.strip().upper()
            for item in _split_param_values(v):
                params.append((k, item))
        else:
            word = p.upper()
            params.append(("ENCODING" if word in _ENCODING_WORDS else "TYPE", p))
    return group, name.upper(), params


def _split_param_values(v: str) -> list[str]:
    v = v.strip()
    if v.startswith('"') and v.endswith('"') and len(v) >= 2:
        return [v[1:-1]]
    return [x.strip().strip('"') for x in v.split(",")]


def _charset_decode(raw: bytes, charset: str | None) -> str:
    if charset:
        try:
            codecs.lookup(charset)
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError, ValueError):
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _qp_decode(raw: bytes) -> bytes:
    return binascii.a2b_qp(raw)


def _unescape(s: str, v30: bool) -> str:
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            if nxt in "nN" and v30:
                out.append("\n")
                i += 2
                continue
            if nxt in ",;\\":
                out.append(nxt)
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_unescaped(s: str, sep: str) -> list[str]:
    if "\\" not in s:
        return s.split(sep)
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            buf.append(s[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


@dataclass
class _RawProp:
    group: str | None
    name: str
    params: list[tuple[str, str]]
    text: str | None  # decoded text, still escaped
    binary: bytes | None


def _read_property(line: bytes, from_text: bool) -> _RawProp | None:
    split = _split_prefix(line)
    if split is None:
        return None
    prefix_b, value_b = split
    group, name, params = _parse_params(prefix_b.decode("latin-1"))
    if not name:
        return None
    if params:
        encoding = next((v.upper() for k, v in params if k == "ENCODING"), "")
        charset = next((v for k, v in params if k == "CHARSET"), None)
        keep = [(k, v) for k, v in params if k not in ("ENCODING", "CHARSET")]
    else:  # FN:, N:, EMAIL:... as most lines come
        encoding, charset, keep = "", None, params
    if encoding in ("BASE64", "B"):
        compact = re.sub(rb"\s+", b"", value_b)
        try:
            binary = base64.b64decode(compact + b"=" * (-len(compact) % 4))
        except (binascii.Error, ValueError):
            binary = None
        if binary is not None:
            return _RawProp(group, name, keep, None, binary)
        return _RawProp(group, name, keep, value_b.decode("latin-1"), None)
    if encoding == "QUOTED-PRINTABLE":
        text = _charset_decode(_qp_decode(value_b), charset)
    elif from_text:
        text = value_b.decode("utf-8", errors="replace")
    else:
        text = _charset_decode(value_b, charset)
    return _RawProp(group, name, keep, text, None)


def _types(params: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for k, v in params:
        if k == "TYPE" and v:
            t = v.upper()
            if t not in out:
                out.append(t)
    return out


def _vcard_blocks(data: bytes) -> list[list[bytes]]:
    blocks: list[list[bytes]] = []
    current: list[bytes] | None = None
    depth = 0
    for line in _logical_lines(data):
        head = line.strip().upper()
        if head == b"BEGIN:VCARD":
            depth += 1
            if depth == 1:
                current = []
            continue
        if head == b"END:VCARD":
            if depth == 0:
                raise SyncMLParseError("END:VCARD without BEGIN:VCARD")
            depth -= 1
            if depth == 0 and current is not None:
                blocks.append(current)
                current = None
            continue
        if depth == 1 and current is not None:
            current.append(line)
        elif depth == 0:
            raise SyncMLParseError(f"text outside BEGIN:VCARD/END:VCARD: {line[:40]!r}")
        # depth > 1: a nested vCard (2.1 AGENT) is skipped
    if depth:
        raise SyncMLParseError("vCard not terminated (END:VCARD missing)")
    return blocks


def parse_vcards(data: str | bytes, *, max_bytes: int = MAX_VCARD_BYTES) -> list[Contact]:
    """Parse every vCard in ``data`` (bytes are decoded per property with its CHARSET)."""
    if isinstance(data, str):
        raw, from_text = data.encode("utf-8", errors="surrogatepass"), True
    elif isinstance(data, bytes | bytearray):
        raw, from_text = bytes(data), False
    else:
        raise SyncMLParseError("vCard input must be str or bytes")
    if len(raw) > max_bytes:
        raise SyncMLSizeError(f"vCard data of {len(raw)} bytes exceeds {max_bytes}")
    try:
        simple = _simple_card(data) if from_text else None
        if simple is not None:
            return [simple]
        return [_contact(block, from_text) for block in _vcard_blocks(raw)]
    except (SyncMLParseError, SyncMLSizeError):
        raise
    except (ValueError, UnicodeError, IndexError, TypeError) as exc:
        raise SyncMLParseError(f"invalid vCard: {exc}") from None


def parse_vcard(data: str | bytes, *, max_bytes: int = MAX_VCARD_BYTES) -> Contact:
    """Parse exactly one vCard."""
    cards = parse_vcards(data, max_bytes=max_bytes)
    if len(cards) != 1:
        raise SyncMLParseError(f"expected one vCard, found {len(cards)}")
    return cards[0]


_ASCII_BLANKS = " \t\n\r\x0b\x0c"  # what bytes.strip() removes
_LINE_BREAK = re.compile(r"\r\n|\n|\r")


def _simple_card(data: str) -> Contact | None:
    """One vCard as most handsets send it, read straight from the text; None for anything
    else (folding, quoting, escapes, encodings, charsets, groups of cards, non-ASCII property
    names, oversize), which the general reader below takes. The result is the general
    reader's for the same input: only the splitting into lines and properties is shortcut."""
    if '"' in data or "\\" in data:
        return None
    try:
        data.encode("utf-8")  # strict: lone surrogates go the general way
    except UnicodeEncodeError:
        return None
    upper = data.upper()
    if "QUOTED-PRINTABLE" in upper or "ENCODING" in upper or "CHARSET" in upper:
        return None
    physical = _LINE_BREAK.split(data)
    if any(line[:1] in (" ", "\t") for line in physical):  # folding
        return None
    lines = [line for line in physical if line.strip(_ASCII_BLANKS)]
    if len(lines) < 2 or len(lines) > MAX_PROPERTIES:
        return None
    if not all(line.isascii() for line in (lines[0], lines[-1])):
        return None
    if lines[0].strip(_ASCII_BLANKS).upper() != "BEGIN:VCARD":
        return None
    if lines[-1].strip(_ASCII_BLANKS).upper() != "END:VCARD":
        return None
    props: list[_RawProp] = []
    for line in lines[1:-1]:
        prefix, colon, value = line.partition(":")
        if not prefix.isascii():
            return None
        head = line.strip(_ASCII_BLANKS).upper()
        if head in ("BEGIN:VCARD", "END:VCARD"):  # a nested or a second card
            return None
        if not colon:
            continue  # not a property (the general reader skips it too)
        group, name, params = _parse_params(prefix)
        if not name:
            continue
        for k, _v in params:
            if k in ("ENCODING", "CHARSET"):
                return None
        props.append(_RawProp(group, name, params, value, None))
    return _contact_from(props)


def _contact(lines: list[bytes], from_text: bool) -> Contact:
    props = [p for p in (_read_property(line, from_text) for line in lines) if p is not None]
    return _contact_from(props)


def _contact_from(props: list[_RawProp]) -> Contact:
    version = next((p.text.strip() for p in props if p.name == "VERSION" and p.text), "2.1")
    v30 = version != "2.1"
    c = Contact(version=version)
    for p in props:
        if p.name == "VERSION":
            continue
        if p.binary is not None and p.name != "PHOTO":
            c.extra.append(
                VCardProperty(name=p.name, params=p.params, value=p.binary, group=p.group)
            )
            continue
        text = (p.text or "").replace("\r\n", "\n").replace("\r", "\n")
        # 2.1: only compound values use backslash escapes (vCard 2.1 section 2.1.3).
        plain = _unescape(text, v30) if v30 else text
        if p.name in _SINGLE:
            if not plain:
                continue  # Synthesis sends empty NOTE:, PHOTO:, ... meaning "no value"
            attr = p.name.lower()
            if getattr(c, attr) is None:
                setattr(c, attr, plain)
            else:
                c.extra.append(
                    VCardProperty(name=p.name, params=p.params, value=text, group=p.group)
                )
        elif p.name == "N":
            parts = [_unescape(x, v30) for x in _split_unescaped(text, ";")] + [""] * 5
            if any(parts[:5]) and c.n is None:
                c.n = Name(family=parts[0], given=parts[1], additional=parts[2],
                           prefix=parts[3], suffix=parts[4])  # fmt: skip
        elif p.name == "ORG":
            parts = [_unescape(x, v30) for x in _split_unescaped(text, ";")]
            if any(parts) and c.org is None:
                c.org, c.org_units = parts[0], parts[1:]
                while c.org_units and not c.org_units[-1]:
                    c.org_units.pop()
        elif p.name == "ADR":
            parts = [_unescape(x, v30) for x in _split_unescaped(text, ";")] + [""] * 7
            if any(parts[:7]):
                c.adrs.append(Address(po_box=parts[0], extended=parts[1], street=parts[2],
                                      locality=parts[3], region=parts[4], postal_code=parts[5],
                                      country=parts[6], types=_types(p.params)))  # fmt: skip
        elif p.name == "TEL":
            if plain.strip():
                c.tels.append(Phone(value=plain, types=_types(p.params)))
        elif p.name == "EMAIL":
            if plain.strip():
                c.emails.append(Email(value=plain, types=_types(p.params)))
        elif p.name == "URL":
            if plain.strip():
                c.urls.append(Url(value=plain, types=_types(p.params)))
        elif p.name == "CATEGORIES":
            c.categories += [_unescape(x, v30) for x in _split_unescaped(text, ",") if x.strip()]
        elif p.name == "PHOTO":
            value_type = next((v.upper() for k, v in p.params if k == "VALUE"), "")
            types = _types(p.params)
            if p.binary is not None:
                if p.binary and c.photo is None:
                    c.photo = Photo(data=p.binary, type=types[0] if types else None)
            elif value_type in ("URI", "URL") and plain and c.photo is None:
                c.photo = Photo(uri=plain, type=types[0] if types else None)
        else:
            c.extra.append(VCardProperty(name=p.name, params=p.params, value=text, group=p.group))
    return c


# ------------------------------------------------------------------------------- writing


def _escape30(s: str) -> str:
    return (
        s.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
        .replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    )  # fmt: skip


def _escape21_component(s: str) -> str:
    return s.replace("\\", "\\\\").replace(";", "\\;")


def _fold30(line: str) -> list[str]:
    """RFC 2425 5.8.1: at most 75 octets per line, never splitting a UTF-8 sequence."""
    out: list[str] = []
    limit = 75
    cur: list[str] = []
    size = 0
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append("".join(cur))
            cur, size, limit = [], 0, 74  # continuation lines start with a space
        cur.append(ch)
        size += n
    out.append("".join(cur))
    return [out[0]] + [" " + x for x in out[1:]]


def _qp_encode(text: str) -> str:
    raw = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode("utf-8")
    out: list[str] = []
    for i, b in enumerate(raw):
        if (33 <= b <= 126 and b != 0x3D) or (b == 0x20 and i != len(raw) - 1):
            out.append(chr(b))
        else:
            out.append(f"={b:02X}")
    return "".join(out)


def _qp_lines(prefix: str, encoded: str) -> list[str]:
    """Soft line breaks (``=``) so lines stay within 76 characters, never inside ``=XX``."""
    lines: list[str] = []
    cur = prefix
    i = 0
    while i < len(encoded):
        tok = encoded[i : i + 3] if encoded[i] == "=" else encoded[i]
        if len(cur) + len(tok) > 75:
            lines.append(cur + "=")
            cur = ""
        cur += tok
        i += len(tok)
    lines.append(cur)
    return lines


class _Writer:
    def __init__(self, version: str, qp_non_ascii: bool):
        self.v30 = version != "2.1"
        self.qp_non_ascii = qp_non_ascii
        self.lines: list[str] = []

    def params(self, params: list[tuple[str, str]]) -> str:
        out = []
        if self.v30:
            types = [v for k, v in params if k == "TYPE" and not any(ch in v for ch in ':;,"')]
            if types:
                out.append("TYPE=" + ",".join(types))
            for k, v in params:
                if k == "TYPE" and v in types:
                    continue
                quoted = f'"{v}"' if any(ch in v for ch in ":;,") else v
                out.append(f"{k}={quoted}")
        else:
            for k, v in params:
                out.append(v if k == "TYPE" else f"{k}={v}")
        return "".join(";" + p for p in out)

    def prop(self, name: str, params: list[tuple[str, str]], value: str, group: str | None = None):
        head = (group + "." if group else "") + name
        if self.v30:
            self.lines += _fold30(head + self.params(params) + ":" + value)
            return
        needs_qp = "\n" in value or "\r" in value or (self.qp_non_ascii and not value.isascii())
        extra: list[tuple[str, str]] = []
        if not value.isascii():
            extra.append(("CHARSET", "UTF-8"))
        if needs_qp:
            extra.append(("ENCODING", "QUOTED-PRINTABLE"))
            prefix = head + self.params(params + extra) + ":"
            self.lines += _qp_lines(prefix, _qp_encode(value))
        else:
            self.lines.append(head + self.params(params + extra) + ":" + value)

    def text(self, name: str, value: str, params: list[tuple[str, str]] | None = None) -> None:
        self.prop(name, params or [], _escape30(value) if self.v30 else value)

    def structured(self, name: str, parts: list[str], params: list[tuple[str, str]]) -> None:
        esc = _escape30 if self.v30 else _escape21_component
        self.prop(name, params, ";".join(esc(p) for p in parts))

    def binary(self, name: str, params: list[tuple[str, str]], data: bytes) -> None:
        b64 = base64.b64encode(data).decode("ascii")
        if self.v30:
            self.lines += _fold30(name + self.params([("ENCODING", "b"), *params]) + ":" + b64)
        else:
            # vCard 2.1 2.1.3: BASE64 lines folded with leading whitespace, blank line after.
            self.lines.append(name + self.params([("ENCODING", "BASE64"), *params]) + ":")
            self.lines += ["  " + b64[i : i + 72] for i in range(0, len(b64), 72)]
            self.lines.append("")


def serialize_vcard(
    contact: Contact, version: str | None = None, *, qp_non_ascii: bool = False
) -> str:
    """Write ``contact`` as vCard ``version`` ("2.1" or "3.0"; default: its own) with CRLF.

    2.1 output uses bare TYPE words, ``CHARSET=UTF-8`` for non-ASCII values (raw 8-bit like
    the Synthesis engine, or quoted-printable with ``qp_non_ascii``), quoted-printable for
    multi-line values and BASE64 photos. 3.0 output uses ``TYPE=``, UTF-8, ``ENCODING=b`` and
    75-octet folding.
    """
    version = version or contact.version or "3.0"
    if version not in ("2.1", "3.0"):
        raise ValueError(f"vCard version must be '2.1' or '3.0', not {version!r}")
    w = _Writer(version, qp_non_ascii)
    w.lines += ["BEGIN:VCARD", f"VERSION:{version}"]
    if contact.n is not None or w.v30:
        w.structured("N", (contact.n or Name()).parts(), [])
    if contact.fn is not None or w.v30:
        w.text("FN", contact.fn or "")
    for attr in ("nickname", "title", "role", "bday", "note", "uid", "rev"):
        value = getattr(contact, attr)
        if value:
            w.text(attr.upper(), value)
    if contact.org is not None:
        w.structured("ORG", [contact.org, *contact.org_units], [])

    def typed(types: list[str]) -> list[tuple[str, str]]:
        return [("TYPE", t) for t in types]

    for t in contact.tels:
        w.text("TEL", t.value, typed(t.types))
    for e in contact.emails:
        w.text("EMAIL", e.value, typed(e.types))
    for a in contact.adrs:
        w.structured("ADR", a.parts(), typed(a.types))
    for u in contact.urls:
        w.text("URL", u.value, typed(u.types))
    if contact.categories:
        esc = _escape30 if w.v30 else (lambda s: s)
        w.prop("CATEGORIES", [], ",".join(esc(x) for x in contact.categories))
    if contact.photo is not None:
        ptype = typed([contact.photo.type]) if contact.photo.type else []
        if contact.photo.data is not None:
            w.binary("PHOTO", ptype, contact.photo.data)
        elif contact.photo.uri:
            value_kind = "uri" if w.v30 else "URL"
            w.prop("PHOTO", [("VALUE", value_kind), *ptype], contact.photo.uri)
    for x in contact.extra:
        if isinstance(x.value, bytes):
            w.binary((x.group + "." if x.group else "") + x.name, x.params, x.value)
        else:
            value = x.value
            if w.v30:
                value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
            w.prop(x.name, x.params, value, x.group)
    w.lines.append("END:VCARD")
    return "\r\n".join(w.lines) + "\r\n"


def convert_vcard(data: str | bytes, version: str) -> str:
    """Re-write a vCard in another version (e.g. 2.1 from a phone to 3.0 for storage)."""
    return serialize_vcard(parse_vcard(data), version)
