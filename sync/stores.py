"""The two DB2 datastores as the engine sees them: parse, render, compare, match, merge.

No database access here: the engine loads and saves rows, a store adapter only knows how one
datastore's items look on the wire and how two copies are reconciled.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sync import merge
from sync.syncml.errors import SyncMLError

INVENTORY_TYPE = "application/vnd.portal.device-inventory+json"
INVENTORY_KINDS = ("device", "component", "application")
VCARD21 = "text/x-vcard"
VCARD30 = "text/vcard"


class ItemError(Exception):
    """An item that cannot be taken: `status` is the SyncML status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ContactStore:
    name = "contacts"
    uris = ("contacts", "addressbook", "contact", "card", "vcard", "pim/contacts")
    content_types = (VCARD21, VCARD30)

    def __init__(self, cc: str = "+49") -> None:
        self.cc = cc

    def parse(self, data: Any, ctype: str | None) -> dict:
        if ctype and ctype.split(";")[0].strip().lower() not in self.content_types:
            raise ItemError(415, f"unsupported content type {ctype!r} for contacts")
        if not data:
            raise ItemError(412, "item without data")
        try:
            fields = merge.parse_contact(data)
        except SyncMLError as exc:
            raise ItemError(400, f"bad vCard: {exc}") from None
        if not fields:
            raise ItemError(400, "empty vCard")
        return fields

    def render(self, fields: dict, version: str) -> tuple[str, str]:
        return merge.render_contact(fields, version), VCARD21 if version == "2.1" else VCARD30

    def project(self, fields: dict, supported: Any) -> dict:
        return merge.project(fields, None if supported is None else frozenset(supported))

    def hash(self, fields: dict) -> str:
        return merge.content_hash(fields, self.cc)

    def key(self, fields: dict) -> Any:
        return merge.normalized_keys(fields, self.cc)

    def is_twin(self, a: Any, b: Any) -> bool:
        return merge.is_twin(a, b)

    def bucket(self, key: Any) -> Any:
        """What two items must share to be paired at all: the normalised name."""
        return key[0]

    def merge3(self, shadow, server, client, policy, supported):  # type: ignore[no-untyped-def]
        return merge.merge_three_way(
            shadow, server, client, policy=policy, supported=supported, cc=self.cc
        )

    def row_values(self, fields: dict, key: Any = None) -> dict:
        name, phones, emails = key if key is not None else self.key(fields)
        return {
            "fields": fields,
            "display_name": merge.display_name(fields)[:200],
            "name_norm": name[:200],
            "phones_norm": [p[:40] for p in phones],
            "emails_norm": [e[:254] for e in emails],
        }


class InventoryStore:
    """Device inventory items: one JSON object per item (docs/sync.md)."""

    name = "inventory"
    uris = ("inventory", "deviceinventory", "device-inventory")
    content_types = (INVENTORY_TYPE,)

    def parse(self, data: Any, ctype: str | None) -> dict:
        if ctype and ctype.split(";")[0].strip().lower() != INVENTORY_TYPE:
            raise ItemError(415, f"unsupported content type {ctype!r} for inventory")
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ItemError(400, "inventory item is not UTF-8") from None
        if not isinstance(data, str) or not data.strip():
            raise ItemError(412, "item without data")
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise ItemError(400, f"inventory item is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ItemError(400, "inventory item must be a JSON object")
        if obj.get("kind") not in INVENTORY_KINDS:
            raise ItemError(400, f"inventory kind must be one of {', '.join(INVENTORY_KINDS)}")
        name = obj.get("name", obj.get("imei") if obj["kind"] == "device" else None)
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ItemError(400, "inventory item needs a name (device: imei) of 1-200 characters")
        size = obj.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ItemError(400, "inventory size must be a non-negative integer")
        for k, v in obj.items():
            if not isinstance(v, str | int | float | bool | list | dict | None):
                raise ItemError(400, f"inventory field {k!r} has an unsupported value")
        return obj

    def render(self, fields: dict, version: str) -> tuple[str, str]:
        return json.dumps(fields, sort_keys=True, ensure_ascii=False), INVENTORY_TYPE

    def project(self, fields: dict, supported: Any) -> dict:
        return fields

    def hash(self, fields: dict) -> str:
        return hashlib.md5(json.dumps(fields, sort_keys=True).encode()).hexdigest()

    def key(self, fields: dict) -> Any:
        name = fields.get("name", fields.get("imei", ""))
        return (fields.get("kind"), str(name).casefold())

    def is_twin(self, a: Any, b: Any) -> bool:
        return a == b

    def bucket(self, key: Any) -> Any:
        return key

    def merge3(self, shadow, server, client, policy, supported):  # type: ignore[no-untyped-def]
        # The handset is the source of truth for what it has installed: the client's copy wins.
        return dict(client), []

    def row_values(self, fields: dict, key: Any = None) -> dict:
        name = fields.get("name", fields.get("imei", ""))
        version = fields.get("version", "")
        size = fields.get("size")
        return {
            "fields": fields,
            "kind": fields["kind"],
            "name": str(name)[:200],
            "version": str(version)[:100],
            "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
        }


STORES = {"contacts": ContactStore, "inventory": InventoryStore}


def resolve_store(uri: str) -> str | None:
    """The datastore a client's Target LocURI names (``./contacts``, ``addressbook``...)."""
    name = uri.strip().lower()
    if "?" in name:
        name = name.split("?", 1)[0]
    name = name.removeprefix("./").strip("/")
    if "/" in name and name.rsplit("/", 1)[-1] in ContactStore.uris + InventoryStore.uris:
        name = name.rsplit("/", 1)[-1]
    if name in ContactStore.uris:
        return "contacts"
    if name in InventoryStore.uris:
        return "inventory"
    return None
