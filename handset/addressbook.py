"""DB1 of a virtual handset: its address book (vCards) and its device record.

Both are local datastores the SyncML client (`handset.syncclient`) synchronizes. A datastore is
a map LUID -> item text with `add`, `replace`, `delete`, `clear`; the client finds what changed
by comparing it with its snapshot of the last completed session, as a handset's change log
would.

* `AddressBook`: vCards in memory, optionally mirrored to a folder (one ``<luid>.vcf`` per
  contact, as SyncEvolution's file backend keeps them).
* `DeviceRecord`: IMEI, manufacturer, model, firmware, language and installed applications;
  `inventory_items()` is the device inventory datastore of docs/sync.md ("Device inventory
  datastore"), `devinf()` the SyncML DevInf with the handset's CTCap.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sync.syncml import ContentTypeRef, CTCap, DataStore, DevInf, DSMem, Property, PropParam
from sync.syncml.vcard import Contact, parse_vcard, serialize_vcard

INVENTORY_TYPE = "application/vnd.portal.device-inventory+json"
VCARD21 = "text/x-vcard"
VCARD30 = "text/vcard"

# What a typical feature phone's address book can hold (its CTCap).
FULL_VCARD_PROPERTIES = (
    "BEGIN", "END", "VERSION", "N", "FN", "NICKNAME", "TEL", "EMAIL", "ADR", "ORG", "TITLE",
    "NOTE", "BDAY", "PHOTO", "URL", "CATEGORIES", "UID", "REV",
)  # fmt: skip
TEL_TYPES = ("CELL", "HOME", "WORK", "FAX", "VOICE", "PREF")


class LocalStore:
    """A handset datastore: LUID -> item (text). Subclasses hold vCards or inventory items."""

    content_type = ""

    def __init__(self) -> None:
        self._items: dict[str, str] = {}
        self._luids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __contains__(self, luid: object) -> bool:
        return luid in self._items

    def items(self) -> dict[str, str]:
        return dict(self._items)

    def get(self, luid: str) -> str | None:
        return self._items.get(luid)

    def new_luid(self) -> str:
        while True:
            luid = str(next(self._luids))
            if luid not in self._items:
                return luid

    def add(self, data: str) -> str:
        luid = self.new_luid()
        self._items[luid] = data
        self._saved(luid)
        return luid

    def replace(self, luid: str, data: str) -> None:
        self._items[luid] = data
        self._saved(luid)

    def delete(self, luid: str) -> bool:
        if self._items.pop(luid, None) is None:
            return False
        self._removed(luid)
        return True

    def clear(self) -> None:
        for luid in list(self._items):
            self.delete(luid)

    # storage hooks
    def _saved(self, luid: str) -> None:
        pass

    def _removed(self, luid: str) -> None:
        pass


class AddressBook(LocalStore):
    """The handset's contacts as vCard text, in `version` ("2.1" or "3.0").

    Items from the server are kept as received; `contacts()` parses them. With `folder`, each
    contact is also a ``<luid>.vcf`` file there, loaded at start.
    """

    def __init__(self, *, version: str = "2.1", folder: str | os.PathLike[str] | None = None):
        super().__init__()
        self.version = version
        self.folder = Path(folder) if folder else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            for path in sorted(self.folder.glob("*.vcf")):
                self._items[path.stem] = path.read_bytes().decode("utf-8")
            numeric = [int(k) for k in self._items if k.isdigit()]
            self._luids = itertools.count(max(numeric, default=0) + 1)

    @property
    def content_type(self) -> str:  # type: ignore[override]
        return VCARD21 if self.version == "2.1" else VCARD30

    def add_contact(self, contact: Contact) -> str:
        return self.add(serialize_vcard(contact, self.version))

    def replace_contact(self, luid: str, contact: Contact) -> None:
        self.replace(luid, serialize_vcard(contact, self.version))

    def contact(self, luid: str) -> Contact:
        return parse_vcard(self._items[luid])

    def contacts(self) -> dict[str, Contact]:
        return {luid: parse_vcard(text) for luid, text in self._items.items()}

    def _saved(self, luid: str) -> None:
        if self.folder is not None:
            (self.folder / f"{luid}.vcf").write_bytes(self._items[luid].encode("utf-8"))

    def _removed(self, luid: str) -> None:
        if self.folder is not None:
            (self.folder / f"{luid}.vcf").unlink(missing_ok=True)


@dataclass
class InstalledApp:
    name: str
    version: str
    size: int = 0


@dataclass
class DeviceRecord:
    """The handset's device-management record (DESIGN.md section 1)."""

    imei: str
    manufacturer: str = "Simulated"
    model: str = "SIM-Phone 1"
    firmware: str = "1.0.0"
    firmware_size: int = 16 * 1024 * 1024
    software: str = "1.0"
    hardware: str = "A"
    language: str = "en"
    apps: list[InstalledApp] = field(default_factory=list)
    vcard_properties: tuple[str, ...] = FULL_VCARD_PROPERTIES
    max_guid_size: int = 32

    @property
    def dev_id(self) -> str:
        return f"IMEI:{self.imei}"

    def inventory_items(self) -> dict[str, dict]:
        """Stable LUID -> inventory object (docs/sync.md): the device, its firmware, its apps."""
        items: dict[str, dict] = {
            "device": {
                "kind": "device",
                "imei": self.imei,
                "manufacturer": self.manufacturer,
                "model": self.model,
                "language": self.language,
            },
            "component:firmware": {
                "kind": "component",
                "name": "firmware",
                "version": self.firmware,
                "size": self.firmware_size,
            },
        }
        for app in self.apps:
            items[f"app:{app.name}"] = {
                "kind": "application",
                "name": app.name,
                "version": app.version,
                "size": app.size,
            }
        return items

    def install(self, name: str, version: str, size: int = 0) -> None:
        self.apps = [a for a in self.apps if a.name != name] + [InstalledApp(name, version, size)]

    def uninstall(self, name: str) -> None:
        self.apps = [a for a in self.apps if a.name != name]

    def ctcap(self, content_type: str) -> CTCap:
        version = "2.1" if content_type == VCARD21 else "3.0"
        props = []
        for name in self.vcard_properties:
            p = Property(name=name)
            if name == "TEL":
                if version == "2.1":
                    p.params = [PropParam(name=t) for t in TEL_TYPES]
                else:
                    p.params = [PropParam(name="TYPE", val_enums=list(TEL_TYPES))]
            elif name == "VERSION":
                p.val_enums = [version]
            props.append(p)
        return CTCap(ct_type=content_type, ver_ct=version, properties=props)

    def devinf(self, stores: list[tuple[str, str, str]], *, version: str = "1.2") -> DevInf:
        """DevInf for these datastores: (local URI, display name, content type)."""
        datastores = []
        for uri, name, ctype in stores:
            if ctype == INVENTORY_TYPE:
                pref = ContentTypeRef(ct_type=INVENTORY_TYPE, ver_ct="1.0")
                caps: list[CTCap] = []
                rx: list[ContentTypeRef] = []
            else:
                ver = "2.1" if ctype == VCARD21 else "3.0"
                pref = ContentTypeRef(ct_type=ctype, ver_ct=ver)
                caps = [self.ctcap(ctype)]
                rx = []
            datastores.append(
                DataStore(
                    source_ref=uri,
                    display_name=name,
                    max_guid_size=self.max_guid_size,
                    rx_pref=pref,
                    rx=rx,
                    tx_pref=pref,
                    tx=list(rx),
                    ctcaps=caps if version == "1.2" else [],
                    dsmem=DSMem(max_id=5000),
                    sync_types=[1, 2, 3, 4, 5, 6, 7],
                )
            )
        flat = (
            [self.ctcap(c) for _, _, c in stores if c != INVENTORY_TYPE] if version == "1.1" else []
        )
        return DevInf(
            ver_dtd=version,
            man=self.manufacturer,
            mod=self.model,
            fwv=self.firmware,
            swv=self.software,
            hwv=self.hardware,
            dev_id=self.dev_id,
            dev_typ="phone",
            utc=True,
            support_large_objs=True,
            support_number_of_changes=True,
            datastores=datastores,
            ctcaps=flat,
        )

    def to_dict(self) -> dict:
        return {
            "imei": self.imei,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "firmware": self.firmware,
            "language": self.language,
            "apps": [{"name": a.name, "version": a.version, "size": a.size} for a in self.apps],
        }

    @classmethod
    def from_dict(cls, data: dict) -> DeviceRecord:
        apps = [InstalledApp(str(a["name"]), str(a.get("version", "")), int(a.get("size", 0)))
                for a in data.get("apps", [])]  # fmt: skip
        known = ("manufacturer", "model", "firmware", "software", "hardware", "language")
        return cls(
            imei=str(data["imei"]),
            apps=apps,
            **{k: str(data[k]) for k in known if k in data},
        )


class Inventory(LocalStore):
    """The device inventory datastore: one JSON object per item, built from a `DeviceRecord`.

    `refresh()` (the client calls it before each session) rewrites the items from the record:
    an installed app is an Add, an updated one a Replace, a removed one a Delete. Items the
    server sends are kept as received until the record no longer explains them.
    """

    content_type = INVENTORY_TYPE

    def __init__(self, record: DeviceRecord) -> None:
        super().__init__()
        self.record = record
        self._own: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        wanted = {k: json.dumps(v, sort_keys=True, ensure_ascii=False)
                  for k, v in self.record.inventory_items().items()}  # fmt: skip
        for luid in list(self._own):
            if luid not in wanted:
                self.delete(luid)
        for luid, text in wanted.items():
            if self._items.get(luid) != text:
                self._items[luid] = text
        self._own = set(wanted)

    def delete(self, luid: str) -> bool:
        self._own.discard(luid)
        return super().delete(luid)
