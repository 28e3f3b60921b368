"""The handset lab: the SMSC simulator with a fleet of cards *in phones*.

`python -m handset lab --fleet FILE` runs the SMSC (as `python -m handset smsc --fleet FILE`)
and puts every card of the fleet into a virtual phone (`handset.phone.Phone`) with a generated
address book and device record (seeded: the same seed and fleet give the same phones). The
phones are powered on, answer their cards' SYNC REQUESTs with SyncML sessions (on a thread
pool, so the SMSC never waits for HTTP), let the applets' timers run, and take WAP push SMS
(the Server-Alerted Notification) addressed to them.

A card entry of the fleet file may carry an optional ``"handset"`` object (docs/handset.md):
``imei``, ``manufacturer``, ``model``, ``firmware``, ``language``, ``apps``, ``contacts`` (the
address book size), ``vcard`` ("2.1"/"3.0"), ``encoding`` ("xml"/"wbxml") and ``account`` (a
sync account for a handset without the applet: ``server_url``, ``username``, ``secret``,
``auth``, ``datastores``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sync.syncml.paramrecord import DatastoreParam, ParamRecord

from .addressbook import INVENTORY_TYPE, AddressBook, InstalledApp
from .edits import generate_addressbook, generate_device
from .fleet import PID_SIM_DATA_DOWNLOAD, FleetError, FleetRouter, is_class2, load_fleet
from .fleet import normalize_msisdn as _digits
from .phone import Phone
from .smsc import DEFAULT_SYSTEM_ID, MoMessage, SmscSimulator, _account
from .syncclient import Transport
from .uicc import Uicc

log = logging.getLogger(__name__)

DEVICE_KEYS = ("imei", "manufacturer", "model", "firmware", "language")


class PhoneRouter(FleetRouter):
    """A `FleetRouter` whose cards sit in phones: SMS that are not for the card (not PID 7F
    class 2) go to the phone itself, which takes WAP pushes (SAN) and ignores the rest."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.phones: dict[str, Phone] = {}

    def attach(self, phone: Phone, card: Uicc) -> Phone:
        phone.insert_card(card)
        self.phones[_digits(card.msisdn)] = phone
        return phone

    def phone(self, msisdn: str) -> Phone:
        try:
            return self.phones[_digits(msisdn)]
        except KeyError:
            raise KeyError(f"no phone for MSISDN {msisdn}") from None

    def route(
        self,
        source_addr: str,
        dest_addr: str,
        esm_class: int,
        protocol_id: int,
        data_coding: int,
        short_message: bytes,
    ) -> list[MoMessage]:
        out = super().route(
            source_addr, dest_addr, esm_class, protocol_id, data_coding, short_message
        )
        for_card = protocol_id == PID_SIM_DATA_DOWNLOAD and (
            not self.require_class2 or is_class2(data_coding)
        )
        phone = self.phones.get(_digits(dest_addr))
        if phone is not None and not for_card:
            phone.receive_sms(short_message, udhi=bool(esm_class & 0x40), originator=source_addr)
        return out

    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for phone in self.phones.values():
            phone.tick(now)


def _account_record(data: Mapping[str, Any]) -> ParamRecord:
    stores = data.get("datastores") or [
        {"local_name": "Contacts", "remote_uri": "contacts", "content_type": "text/x-vcard"},
        {"local_name": "Inventory", "remote_uri": "inventory", "content_type": INVENTORY_TYPE,
         "mode": 202},
    ]  # fmt: skip
    return ParamRecord(
        version=0,
        server_url=str(data["server_url"]),
        datastores=[DatastoreParam(**{"mode": 200, **s}) for s in stores],
        username=str(data["username"]),
        secret=str(data["secret"]),
        auth_type=str(data.get("auth", "md5")),
    )


def make_phone(
    card: Uicc,
    spec: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    contacts: tuple[int, int] = (5, 200),
    books: Path | None = None,
    **phone_options: Any,
) -> Phone:
    """A phone for this card: device and address book from the seed and the card's ICCID,
    with whatever the fleet file's ``handset`` entry fixes."""
    spec = dict(spec or {})
    rng = random.Random(f"{seed}:{card.iccid}")
    overrides: dict[str, Any] = {k: str(spec[k]) for k in DEVICE_KEYS if k in spec}
    if "apps" in spec:
        overrides["apps"] = [
            InstalledApp(str(a["name"]), str(a.get("version", "")), int(a.get("size", 0)))
            for a in spec["apps"]
        ]
    device = generate_device(rng, **overrides)
    version = str(spec.get("vcard", "2.1"))
    size = int(spec.get("contacts", rng.randint(*contacts)))
    folder = books / card.iccid if books is not None else None
    if folder is not None and any(folder.glob("*.vcf")):
        book = AddressBook(version=version, folder=folder)  # kept from an earlier run
    else:
        book = generate_addressbook(rng, size, version=version, folder=folder)
    if "encoding" in spec:
        phone_options.setdefault("encoding", str(spec["encoding"]))
    account = _account_record(spec["account"]) if spec.get("account") else None
    return Phone(device, addressbook=book, account=account, **phone_options)


class Lab:
    """Router, phones and the thread pool that runs their sessions."""

    def __init__(
        self,
        fleet_path: str,
        *,
        seed: int = 0,
        contacts: tuple[int, int] = (5, 200),
        books: str | None = None,
        workers: int = 4,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        fleet = load_fleet(fleet_path)
        raw = json.loads(Path(fleet_path).read_text(encoding="utf-8"))
        specs = {str(c.get("iccid")): c.get("handset") or {} for c in raw.get("cards", [])}
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="phone")
        self.router = PhoneRouter.from_fleet(fleet)
        book_dir = Path(books) if books else None
        for card in self.router.cards:
            spec = specs.get(card.iccid, {})
            if not isinstance(spec, Mapping):
                raise FleetError(f"fleet file: card {card.iccid}: 'handset' must be an object")
            phone = make_phone(
                card, spec, seed=seed, contacts=contacts, books=book_dir,
                runner=self._submit, transport=transport, clock=clock,
            )  # fmt: skip
            self.router.attach(phone, card)
        for phone in self.router.phones.values():
            phone.power_on()

    def _submit(self, job: Callable[[], Any]) -> None:
        future = self.executor.submit(job)
        future.add_done_callback(_log_failure)

    @property
    def phones(self) -> dict[str, Phone]:
        return self.router.phones

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.router.flush()


def _log_failure(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("phone session crashed: %r", exc)


def _range(value: str) -> tuple[int, int]:
    low, _, high = value.partition("-")
    try:
        a, b = int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError("expected N or MIN-MAX") from None
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError("expected 0 <= MIN <= MAX")
    return a, b


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fleet", required=True, help="fleet file (docs/handset.md)")
    parser.add_argument("--host", default="127.0.0.1", help="SMSC address to listen on")
    parser.add_argument("--port", type=int, default=2775, help="SMSC port (0: any free port)")
    parser.add_argument(
        "--account", type=_account, action="append", default=[], metavar="SYSTEM_ID:PASSWORD",
        help="an ESME account; repeat for more (default ota:secret)",
    )  # fmt: skip
    parser.add_argument("--system-id", default=DEFAULT_SYSTEM_ID)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated phones")
    parser.add_argument(
        "--contacts", type=_range, default=(5, 200), metavar="MIN-MAX",
        help="address book sizes (default 5-200)",
    )  # fmt: skip
    parser.add_argument("--books", help="keep each phone's address book in DIR/<ICCID>/*.vcf")
    parser.add_argument("--tick", type=float, default=30.0, help="seconds between timer ticks")
    parser.add_argument("--workers", type=int, default=4, help="concurrent phone sessions")
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(func=run_cli)


async def serve(args: argparse.Namespace) -> None:
    lab = Lab(args.fleet, seed=args.seed, contacts=args.contacts, books=args.books,
              workers=args.workers)  # fmt: skip
    accounts = dict(args.account or [("ota", "secret")])
    smsc = SmscSimulator(accounts, router=lab.router, host=args.host, port=args.port,
                         system_id=args.system_id, window=args.window)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await smsc.start()
    print(
        f"SMSC listening on {smsc.host}:{smsc.port} accounts={','.join(accounts)} "
        f"phones={len(lab.phones)}",
        flush=True,
    )
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.tick)
            lab.router.tick()
    finally:
        await smsc.stop()
        await asyncio.to_thread(lab.close)
        log.info("SMSC stopped: %s", smsc.stats)


def run_cli(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args))
    return 0
