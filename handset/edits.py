"""Seeded generators for the virtual handsets: address books, device records and realistic edits.

Everything takes a `random.Random` (or a seed), so a run is reproducible: the same seed gives
the same contacts, the same IMEIs and the same edits. Contacts mix languages (non-ASCII names:
Müller, Øster, Zoë, Łukasz, 王伟, Ἀλέξανδρος...), several phone types, e-mails, addresses,
notes, and now and then a photo (a few hundred octets, or a large one that has to travel as a
SyncML large object).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sync.syncml.vcard import Address, Contact, Email, Name, Phone, Photo

from .addressbook import AddressBook, DeviceRecord, InstalledApp

GIVEN = (
    "Anna", "Jürgen", "Zoë", "Łukasz", "Søren", "Chloé", "José", "Ana", "Mehmet", "Ayşe",
    "Björn", "Émilie", "Nikolaos", "Ἀλέξανδρος", "Dmitri", "Ольга", "伟", "秀英", "Yuki", "Priya",
    "Carlos", "Fatima", "Olivier", "Giulia", "Kai", "Ingrid", "Tomás", "Niamh", "Jan", "Eva",
)  # fmt: skip
FAMILY = (
    "Müller", "Schmidt", "Øster", "Nowak", "Dubois", "García", "Núñez", "Yılmaz", "Kowalski",  # noqa: RUF001
    "Papadopoulos", "Иванова", "王", "李", "Tanaka", "Sharma", "Rossi", "Jensen", "O'Brien",
    "van der Berg", "Fischer", "Weiß", "Lefèvre", "Costa", "Novák", "Horváth", "Andersson",
)  # fmt: skip
DOMAINS = ("example.com", "example.org", "mail.example", "corp.example", "exämple.de")
CITIES = (("Berlin", "10115", "DE"), ("München", "80331", "DE"), ("Paris", "75001", "FR"),
          ("Kraków", "30-001", "PL"), ("Zürich", "8001", "CH"), ("Göteborg", "41101", "SE"))  # fmt: skip
STREETS = ("Hauptstraße", "Rue de la Paix", "Kościuszki", "Bahnhofstrasse", "Storgatan")
ORGS = ("ACME GmbH", "Müller & Söhne", "Société Générale", "", "", "Stadtwerke", "Café Olé")
NOTES = ("", "", "", "Met at the conference", "Zweitwohnung\nbitte nicht vor 9 Uhr anrufen",
         "Birthday party ☺", "Allergic to peanuts")  # fmt: skip
MODELS = (
    ("Nokia", "6230i", "V 03.88"), ("Sony Ericsson", "K750i", "R1CA021"),
    ("Samsung", "SGH-E250", "E250XXHL1"), ("Motorola", "RAZR V3", "R374_G_0E.41.C3R"),
    ("Siemens", "S65", "58"), ("Nokia", "E71", "510.21.009"),
)  # fmt: skip
APPS = (
    ("com.example.wallet", 482133), ("com.example.maps", 2_104_331), ("org.example.chess", 96_000),
    ("com.operator.selfcare", 310_220), ("com.example.radio", 150_004),
    ("net.example.weather", 77_000), ("com.example.mail", 640_512),
)  # fmt: skip
LANGUAGES = ("de", "en", "fr", "pl", "sv", "tr", "el", "zh")


def _rng(seed: int | random.Random | None) -> random.Random:
    return seed if isinstance(seed, random.Random) else random.Random(seed)


def luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def random_imei(rng: random.Random) -> str:
    body = "35" + "".join(rng.choice("0123456789") for _ in range(12))
    return body + luhn_digit(body)


def random_photo(rng: random.Random, size: int) -> Photo:
    """A JPEG-looking blob of `size` octets (SOI, JFIF header, noise, EOI)."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    body = rng.randbytes(max(size - len(head) - 2, 0))
    return Photo(data=head + body + b"\xff\xd9", type="JPEG")


def random_phone(rng: random.Random, cc: str = "+49") -> Phone:
    kind = rng.choice((["CELL"], ["HOME"], ["WORK"], ["CELL", "PREF"], ["FAX"]))
    digits = "".join(rng.choice("0123456789") for _ in range(8))
    style = rng.randrange(3)
    if style == 0:
        value = f"{cc}17{rng.randrange(10)}{digits}"
    elif style == 1:
        value = f"017{rng.randrange(10)} {digits[:4]} {digits[4:]}"
    else:
        value = f"{cc} (0)30 {digits}"
    return Phone(value=value, types=kind)


def random_contact(rng: random.Random, *, photo_chance: float = 0.1, large_photo: float = 0.0,
                   version: str = "2.1") -> Contact:  # fmt: skip
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    tag = rng.randrange(1000)
    contact = Contact(version=version, n=Name(family=family, given=given),
                      fn=f"{given} {family}")  # fmt: skip
    if rng.random() < 0.5:  # make names less likely to collide (twins are tested on purpose)
        contact.n.additional = f"{chr(65 + tag % 26)}."
        contact.fn = f"{given} {contact.n.additional} {family}"
    contact.tels = [random_phone(rng) for _ in range(rng.choice((1, 1, 2, 3)))]
    ascii_given = given.encode("ascii", "ignore").decode().lower() or "user"
    if rng.random() < 0.7:
        contact.emails = [Email(value=f"{ascii_given}.{tag}@{rng.choice(DOMAINS)}",
                                types=["INTERNET"])]  # fmt: skip
    if rng.random() < 0.3:
        city, code, country = rng.choice(CITIES)
        contact.adrs = [Address(street=f"{rng.choice(STREETS)} {rng.randrange(1, 200)}",
                                locality=city, postal_code=code, country=country,
                                types=[rng.choice(("HOME", "WORK"))])]  # fmt: skip
    org = rng.choice(ORGS)
    if org:
        contact.org = org
    note = rng.choice(NOTES)
    if note:
        contact.note = note
    if rng.random() < 0.2:
        contact.bday = (
            f"{rng.randrange(1940, 2010)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        )
    if rng.random() < large_photo:
        contact.photo = random_photo(rng, rng.randrange(20_000, 60_000))
    elif rng.random() < photo_chance:
        contact.photo = random_photo(rng, rng.randrange(300, 3_000))
    return contact


def generate_addressbook(seed: int | random.Random | None, size: int, *, version: str = "2.1",
                         folder: str | None = None, **kw: float) -> AddressBook:  # fmt: skip
    rng = _rng(seed)
    book = AddressBook(version=version, folder=folder)
    for _ in range(size):
        book.add_contact(random_contact(rng, version=version, **kw))
    return book


def generate_device(seed: int | random.Random | None, **overrides: object) -> DeviceRecord:
    rng = _rng(seed)
    manufacturer, model, firmware = rng.choice(MODELS)
    apps = [InstalledApp(name, f"{rng.randrange(1, 5)}.{rng.randrange(10)}", size)
            for name, size in rng.sample(APPS, rng.randrange(1, 5))]  # fmt: skip
    values: dict = {
        "imei": random_imei(rng),
        "manufacturer": manufacturer,
        "model": model,
        "firmware": firmware,
        "language": rng.choice(LANGUAGES),
        "apps": apps,
    }
    values.update(overrides)
    return DeviceRecord(**values)


@dataclass
class EditSummary:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.added) + len(self.changed) + len(self.deleted)


class EditGenerator:
    """Realistic user edits on an address book: adds, changes (a new number, an edited e-mail,
    a renamed contact, a photo added or removed, a note), deletes. Seeded."""

    def __init__(self, seed: int | random.Random | None = None, *, photo_chance: float = 0.15,
                 large_photo: float = 0.0) -> None:  # fmt: skip
        self.rng = _rng(seed)
        self.photo_chance = photo_chance
        self.large_photo = large_photo

    def contact(self, version: str = "2.1") -> Contact:
        return random_contact(self.rng, photo_chance=self.photo_chance,
                              large_photo=self.large_photo, version=version)  # fmt: skip

    def change(self, contact: Contact) -> Contact:
        rng = self.rng
        what = rng.choice(("tel", "tel_edit", "email", "name", "photo", "note", "org"))
        if what == "tel" or (what == "tel_edit" and not contact.tels):
            contact.tels.append(random_phone(rng))
        elif what == "tel_edit":
            contact.tels[rng.randrange(len(contact.tels))] = random_phone(rng)
        elif what == "email":
            tag = rng.randrange(10_000)
            contact.emails = [Email(value=f"new.{tag}@{rng.choice(DOMAINS)}", types=["INTERNET"])]
        elif what == "name":
            given = rng.choice(GIVEN)
            family = contact.n.family if contact.n else rng.choice(FAMILY)
            contact.n = Name(family=family, given=given)
            contact.fn = f"{given} {family}"
        elif what == "photo":
            contact.photo = None if contact.photo else random_photo(rng, rng.randrange(300, 3000))
        elif what == "note":
            contact.note = rng.choice(("Neue Nummer seit März", "Call after 18:00", "Ärztin ✚"))
        else:
            contact.org = rng.choice([o for o in ORGS if o])
        return contact

    def apply(self, book: AddressBook, n: int = 10, *, adds: float = 0.4, changes: float = 0.4,
              deletes: float = 0.2) -> EditSummary:  # fmt: skip
        """`n` random edits in these proportions (a delete or change of an empty book adds)."""
        summary = EditSummary()
        for _ in range(n):
            roll = self.rng.random() * (adds + changes + deletes)
            luids = sorted(book, key=lambda k: (len(k), k))
            if roll < adds or not luids:
                summary.added.append(book.add_contact(self.contact(book.version)))
            elif roll < adds + changes:
                luid = self.rng.choice(luids)
                old = book.get(luid)
                for _ in range(5):  # an edit that leaves the vCard as it was is no edit
                    book.replace_contact(luid, self.change(book.contact(luid)))
                    if book.get(luid) != old:
                        break
                summary.changed.append(luid)
            else:
                luid = self.rng.choice(luids)
                book.delete(luid)
                summary.deleted.append(luid)
                for lst in (summary.added, summary.changed):
                    if luid in lst:
                        lst.remove(luid)
        summary.changed = list(dict.fromkeys(c for c in summary.changed if c not in summary.added))
        return summary
