"""Canonical contact fields and the reconciliation rules of DESIGN 4a. No Django here.

A contact's canonical form (`fields`) is a JSON-safe dict keyed by vCard property name:

* single-valued: ``FN``, ``NICKNAME``, ``TITLE``, ``ROLE``, ``BDAY``, ``NOTE`` (text),
  ``N`` (5 parts), ``ORG`` (organisation then units), ``PHOTO`` (``{"data": b64, "type"}``
  or ``{"uri"}``);
* multi-valued (sets): ``TEL``, ``EMAIL``, ``URL``, ``CATEGORIES`` (``[{"v": text, "t":
  [TYPES]}]``), ``ADR`` (``{"v": 7 parts, "t"}``), ``X`` (properties the model does not know,
  ``{"n": name, "g": group, "p": params, "v": value}``).

UID and REV are not kept: clients rewrite them (the Synthesis engine sends a constant REV).
Values are compared in normalised form (E.164 phones, lower-cased e-mails, unfolded text), so
a reformatted value is not a change.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from sync.syncml.normalize import normalize_email, normalize_name, normalize_phone
from sync.syncml.vcard import (
    Address,
    Contact,
    Email,
    Name,
    Phone,
    Photo,
    Url,
    VCardProperty,
    parse_vcard,
    serialize_vcard,
)

SINGLE = ("FN", "N", "NICKNAME", "ORG", "TITLE", "ROLE", "BDAY", "NOTE", "PHOTO")
MULTI = ("TEL", "EMAIL", "ADR", "URL", "CATEGORIES", "X")
# Properties a handset must be able to represent for the field to be sent to it / merged.
ALWAYS = frozenset({"N", "FN"})


# ------------------------------------------------------------------------------- conversion


def contact_to_fields(c: Contact) -> dict:
    f: dict = {}
    if c.fn:
        f["FN"] = c.fn
    if c.n is not None and any(c.n.parts()):
        f["N"] = c.n.parts()
    for name in ("nickname", "title", "role", "bday", "note"):
        value = getattr(c, name)
        if value:
            f[name.upper()] = value
    if c.org:
        f["ORG"] = [c.org, *c.org_units]
    if c.photo is not None:
        if c.photo.data is not None:
            f["PHOTO"] = {"data": base64.b64encode(c.photo.data).decode(), "type": c.photo.type}
        elif c.photo.uri:
            f["PHOTO"] = {"uri": c.photo.uri, "type": c.photo.type}
    if c.tels:
        f["TEL"] = [{"v": t.value, "t": t.types} for t in c.tels]
    if c.emails:
        f["EMAIL"] = [{"v": e.value, "t": e.types} for e in c.emails]
    if c.adrs:
        f["ADR"] = [{"v": a.parts(), "t": a.types} for a in c.adrs]
    if c.urls:
        f["URL"] = [{"v": u.value, "t": u.types} for u in c.urls]
    if c.categories:
        f["CATEGORIES"] = [{"v": x, "t": []} for x in c.categories]
    extra = [
        {"n": x.name, "g": x.group, "p": [list(p) for p in x.params], "v": x.value}
        for x in c.extra
        if isinstance(x.value, str)
        and x.name not in ("UID", "REV", "PRODID")
        and x.value.replace(";", "").strip()  # empty properties (Synthesis sends many) are absent
    ]
    if extra:
        f["X"] = extra
    return f


def fields_to_contact(f: dict, version: str = "3.0") -> Contact:
    c = Contact(version=version)
    c.fn = f.get("FN")
    if "N" in f:
        parts = (list(f["N"]) + [""] * 5)[:5]
        c.n = Name(family=parts[0], given=parts[1], additional=parts[2], prefix=parts[3],
                   suffix=parts[4])  # fmt: skip
    for name in ("NICKNAME", "TITLE", "ROLE", "BDAY", "NOTE"):
        if f.get(name):
            setattr(c, name.lower(), f[name])
    if f.get("ORG"):
        c.org, c.org_units = f["ORG"][0], list(f["ORG"][1:])
    photo = f.get("PHOTO")
    if photo:
        if photo.get("data"):
            c.photo = Photo(data=base64.b64decode(photo["data"]), type=photo.get("type"))
        elif photo.get("uri"):
            c.photo = Photo(uri=photo["uri"], type=photo.get("type"))
    c.tels = [Phone(value=x["v"], types=list(x.get("t", []))) for x in f.get("TEL", [])]
    c.emails = [Email(value=x["v"], types=list(x.get("t", []))) for x in f.get("EMAIL", [])]
    c.urls = [Url(value=x["v"], types=list(x.get("t", []))) for x in f.get("URL", [])]
    c.adrs = []
    for x in f.get("ADR", []):
        p = (list(x["v"]) + [""] * 7)[:7]
        c.adrs.append(Address(po_box=p[0], extended=p[1], street=p[2], locality=p[3],
                              region=p[4], postal_code=p[5], country=p[6],
                              types=list(x.get("t", []))))  # fmt: skip
    c.categories = [x["v"] for x in f.get("CATEGORIES", [])]
    c.extra = [
        VCardProperty(
            name=x["n"], group=x.get("g"), params=[tuple(p) for p in x.get("p", [])], value=x["v"]
        )
        for x in f.get("X", [])
    ]
    if c.fn is None and c.n is None:
        c.fn = ""
    return c


def parse_contact(data: str | bytes) -> dict:
    return contact_to_fields(parse_vcard(data))


def render_contact(f: dict, version: str) -> str:
    return serialize_vcard(fields_to_contact(f, version), version)


def display_name(f: dict) -> str:
    if f.get("FN"):
        return f["FN"]
    n = f.get("N")
    if n:
        parts = (list(n) + [""] * 5)[:5]
        return " ".join(p for p in (parts[3], parts[1], parts[2], parts[0], parts[4]) if p)
    return (f.get("ORG") or [""])[0]


# ------------------------------------------------------------------------------- comparison


def _clean(text: str) -> str:
    return " ".join(str(text).replace("\r\n", "\n").split())


def element_key(prop: str, element: dict, cc: str) -> str:
    """The identity of one value of a multi-valued property, in normalised form."""
    v = element.get("v", "")
    if prop == "TEL":
        return normalize_phone(v, cc) or _clean(v)
    if prop == "EMAIL":
        return normalize_email(v)
    if prop == "ADR":
        return "|".join(_clean(x).casefold() for x in v)
    if prop == "CATEGORIES":
        return _clean(v).casefold()
    if prop == "X":
        return f"{element.get('n', '').upper()}|{_clean(v)}"
    return _clean(v)


def single_key(prop: str, value) -> str:  # type: ignore[no-untyped-def]
    if value in (None, "", [], {}):
        return ""
    if prop in ("N", "ORG"):
        parts = [_clean(x) for x in value]
        while parts and not parts[-1]:
            parts.pop()
        return "|".join(parts)
    if prop == "PHOTO":
        return value.get("data") or value.get("uri") or ""
    return _clean(value)


def content_hash(f: dict, cc: str = "+49") -> str:
    """Digest of the normalised content: equal for two copies that differ only in format."""
    norm: dict = {}
    for prop in SINGLE:
        if prop in f:  # an absent property has no key
            k = single_key(prop, f[prop])
            if k:
                norm[prop] = k
    for prop in MULTI:
        if prop in f:
            keys = sorted({element_key(prop, e, cc) for e in f[prop]} - {""})
            if keys:
                norm[prop] = keys
    raw = json.dumps(norm, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.md5(raw).hexdigest()


def _prop_name(prop: str, element: dict | None = None) -> str:
    return element.get("n", "").upper() if prop == "X" and element else prop


def project(f: dict, supported: frozenset[str] | set[str] | None) -> dict:
    """What a handset supporting `supported` vCard properties can hold (None: everything)."""
    if supported is None:
        return f
    out: dict = {}
    for prop, value in f.items():
        if prop == "X":
            kept = [e for e in value if _prop_name("X", e) in supported]
            if kept:
                out["X"] = kept
        elif prop in supported or prop in ALWAYS:
            out[prop] = value
    return out


def normalized_keys(f: dict, cc: str = "+49") -> tuple[str, list[str], list[str]]:
    """(normalised name, E.164 phones, lower-cased e-mails) for twin detection."""
    phones = sorted({normalize_phone(e["v"], cc) for e in f.get("TEL", [])} - {""})
    emails = sorted({normalize_email(e["v"]) for e in f.get("EMAIL", [])} - {""})
    return normalize_name(display_name(f)), phones, emails


# ------------------------------------------------------------------------------- merging


@dataclass
class FieldConflict:
    field: str
    server_value: str
    client_value: str
    resolution: str  # client_won, server_won, merged


def _show(value) -> str:  # type: ignore[no-untyped-def]
    if isinstance(value, dict) and "data" in value:
        return f"<photo {len(value.get('data') or '') * 3 // 4} bytes>"
    if isinstance(value, list):
        return ";".join(str(x) for x in value)
    return "" if value is None else str(value)


def merge_three_way(
    shadow: dict,
    server: dict,
    client: dict,
    *,
    policy: str = "merge",
    supported: frozenset[str] | set[str] | None = None,
    cc: str = "+49",
) -> tuple[dict, list[FieldConflict]]:
    """Field-level three-way merge of a client change against the server copy (DESIGN 4a).

    `client` is what the handset sent (it holds only its `supported` properties); `shadow` the
    last agreed copy as the handset held it; `server` the current DB2 copy. Fields the handset
    cannot represent are kept from the server. Single values changed on both sides to
    different values are settled by `policy` (merge = newer by receive time, i.e. the client
    whose change arrives now); the loser is reported as a conflict. Multi-valued properties
    merge as sets against the shadow: removals and additions on either side both apply.
    """
    result: dict = {}
    conflicts: list[FieldConflict] = []
    visible = (lambda p: True) if supported is None else (lambda p: p in supported or p in ALWAYS)
    for prop in SINGLE:
        s_val, c_val, b_val = server.get(prop), client.get(prop), shadow.get(prop)
        if not visible(prop):
            chosen = s_val
        else:
            sk, ck, bk = single_key(prop, s_val), single_key(prop, c_val), single_key(prop, b_val)
            if ck == bk:
                chosen = s_val
            elif sk in (bk, ck):
                chosen = c_val
            else:
                client_wins = policy in ("merge", "client_wins")
                chosen = c_val if client_wins else s_val
                conflicts.append(
                    FieldConflict(
                        field=prop,
                        server_value=_show(s_val),
                        client_value=_show(c_val),
                        resolution="client_won" if client_wins else "server_won",
                    )
                )
        if chosen not in (None, "", [], {}):
            result[prop] = chosen
    for prop in MULTI:
        if prop == "X":
            merged = _merge_set_x(shadow, server, client, visible, cc)
        elif not visible(prop):
            merged = list(server.get(prop, []))
        else:
            merged = _merge_set(prop, shadow.get(prop, []), server.get(prop, []),
                                client.get(prop, []), cc)  # fmt: skip
        if merged:
            result[prop] = merged
    return result, conflicts


def _merge_set(prop: str, shadow: list, server: list, client: list, cc: str) -> list:
    base = {element_key(prop, e, cc) for e in shadow}
    client_by = {element_key(prop, e, cc): e for e in client}
    removed_by_client = base - set(client_by)
    out: list = []
    seen: set[str] = set()
    for e in server:
        k = element_key(prop, e, cc)
        if k in removed_by_client or k in seen:
            continue
        seen.add(k)
        # A value both sides hold: the client's formatting and types when it changed them.
        out.append(client_by.get(k, e) if k in base else e)
    for k, e in client_by.items():
        if k not in base and k not in seen:
            seen.add(k)
            out.append(e)
    return out


def _merge_set_x(shadow: dict, server: dict, client: dict, visible, cc: str) -> list:  # type: ignore[no-untyped-def]
    hidden = [e for e in server.get("X", []) if not visible(_prop_name("X", e))]
    shown = [e for e in server.get("X", []) if visible(_prop_name("X", e))]
    return hidden + _merge_set("X", shadow.get("X", []), shown, client.get("X", []), cc)


def merge_two_way(
    server: dict, client: dict, *, policy: str = "merge", cc: str = "+49"
) -> tuple[dict, list[FieldConflict]]:
    """Slow-sync merge of twins (no shadow): union of what differs (DESIGN 4a)."""
    return merge_three_way({}, server, client, policy=policy, cc=cc)


def is_twin(a: tuple[str, list[str], list[str]], b: tuple[str, list[str], list[str]]) -> bool:
    """Same normalised name and at least one shared phone or e-mail."""
    return bool(a[0]) and a[0] == b[0] and bool(set(a[1]) & set(b[1]) or set(a[2]) & set(b[2]))
