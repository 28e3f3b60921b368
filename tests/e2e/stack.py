"""The whole system on loopback, for end-to-end and browser tests.

`Stack` puts together what runs in production, each piece real:

- the portal (pytest-django's ``live_server``: real HTTP, the REST API and the staff pages,
  the SyncML endpoint at ``/syncml``) on the test database (PostgreSQL);
- a Celery worker process on the test broker (Redis), from ``tests/conftest.py``;
- the portal's SMPP link process (``manage.py run_smpp_link``), from ``tests/ota_delivery/lab.py``;
- the SMSC simulator on an event loop in a thread of this process, whose cards sit in virtual
  phones (``handset.lab.PhoneRouter``): the phones run their SyncML sessions against the live
  portal over HTTP on a thread pool, as ``python -m handset lab`` does.

Typical use (``tests/e2e/conftest.py`` gives the ``stack`` fixture)::

    stack.provision(cards=2)            # cards and subscribers imported by CSV, profiles,
                                        # the sync applet uploaded, SMSC + phones + link started
    stack.load_applet(iccid)            # OTA jobs over the API, waited for
    stack.push_params(iccid)
    stack.trigger_sync(iccid)
    report = stack.wait_phone_sessions(stack.phone(msisdn), 1).report

Cards and phones are not thread-safe: touch them through `on_smsc` (the simulator's loop).
Every wait is bounded and polls a condition; none sleeps a fixed time.

The interface is used by tests/browser/ too: add to it, do not rename.
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from cardmgmt import ota
from cardmgmt import services as inventory
from cardmgmt.management.commands.export_fleet import build_fleet, write_fleet
from cardmgmt.models import Card, OtaJob
from cardmgmt.ota import syncapplet
from cardmgmt.validators import luhn_check_digit
from handset.lab import Lab
from handset.lab import make_phone as make_lab_phone
from handset.phone import Phone, PhoneSession
from portal import services as portal_services
from portal.context import Actor
from tests.ota_delivery.lab import OTA_ADDRESS, PASSWORD, SYSTEM_ID, LinkProcess, SmscThread

ACTOR = Actor.command("tests-e2e")
T = TypeVar("T")

CARD_PROFILE = "E2E AES"
APPLET_NAME = "Sync applet"
TEMPLATE_NAME = "e2e default"
STAFF_USERNAME = "e2e-admin"
STAFF_PASSWORD = "e2e-Secret-123"
SYNCML_PATH = "/syncml"

# Bounds for the waits (seconds). The machine is shared: generous, never unbounded.
JOB_TIMEOUT = 90.0
SESSION_TIMEOUT = 60.0


def e2e_iccid(n: int) -> str:
    body = f"8949077{n:011d}"
    return body + str(luhn_check_digit(body))


def e2e_msisdn(n: int) -> str:
    return f"+4917770000{n:02d}"


def card_key(n: int) -> tuple[str, str]:
    """KIC and KID of card n (AES-128), distinct per card."""
    kic = bytes([n + 1]) * 16
    kid = bytes([(n + 1) ^ 0x5A]) * 16
    return kic.hex().upper(), kid.hex().upper()


class HttpError(AssertionError):
    """The portal answered with an unexpected status."""


@dataclass
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class PortalClient:
    """A small HTTP client for the live portal's REST API (token auth), on urllib."""

    def __init__(self, base_url: str, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        multipart: Mapping[str, Any] | None = None,
        expect: int | Iterable[int] | None = None,
        timeout: float = 60.0,
    ) -> Response:
        """`multipart`: form fields; a value with `read` is a file (give it a `name`)."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif multipart is not None:
            data = encode_multipart(BOUNDARY, dict(multipart))
            headers["Content-Type"] = MULTIPART_CONTENT
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method.upper(), headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as answer:
                response = Response(answer.status, answer.read(), dict(answer.headers))
        except urllib.error.HTTPError as exc:
            response = Response(exc.code, exc.read(), dict(exc.headers))
        if expect is not None:
            wanted = {expect} if isinstance(expect, int) else set(expect)
            if response.status not in wanted:
                raise HttpError(
                    f"{method} {path}: {response.status}, expected {sorted(wanted)}: "
                    f"{response.body[:500]!r}"
                )
        return response

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, json_body=body if body is not None else {}, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> Response:
        return self.request("PATCH", path, json_body=body, **kw)


def wait_for(
    predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll `predicate` until it returns something true (returned); AssertionError after
    `timeout` seconds, naming `what` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what or predicate}")
        time.sleep(interval)


def named_file(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


class Stack:
    """The whole system (see the module docstring).

    Attributes once `provision` (or `start_handsets`) ran:

    - ``live_url``: the portal's base URL; ``syncml_url`` the sync endpoint the profiles use;
    - ``api``: a `PortalClient` with an administrator's write token;
    - ``staff_username`` / ``staff_password``: that administrator's login, for browsers;
    - ``lab``: the `handset.lab.Lab` (phones, router, the phones' thread pool);
    - ``router``: the `PhoneRouter` (cards and phones by MSISDN);
    - ``smsc``: the `SmscThread`; ``link``: the `SmscLink` row; ``link_process``;
    - ``worker``: the Celery `WorkerProcess`;
    - ``iccids`` / ``msisdns``: the provisioned cards and subscribers, in order;
    - ``secrets``: MSISDN -> device secret (in clear, as the profile creation returned it);
    - ``profiles``: MSISDN -> the sync profile as the API returned it (without the secret);
    - ``applet_version``: the id of the uploaded sync applet version.
    """

    def __init__(self, live_url: str, worker: Any, workdir: Path) -> None:
        self.live_url = live_url.rstrip("/")
        self.syncml_url = self.live_url + SYNCML_PATH
        self.worker = worker
        self.workdir = workdir
        self.staff_username = STAFF_USERNAME
        self.staff_password = STAFF_PASSWORD
        user = portal_services.create_user_with_role(
            actor=ACTOR, username=STAFF_USERNAME, role="administrator", password=STAFF_PASSWORD
        )
        _token, key = portal_services.create_api_token(
            actor=ACTOR, user=user, name="e2e", write_enabled=True
        )
        self.api = PortalClient(self.live_url, key)
        self.lab: Lab | None = None
        self.smsc: SmscThread | None = None
        self.link = None
        self.link_process: LinkProcess | None = None
        self.iccids: list[str] = []
        self.msisdns: list[str] = []
        self.secrets: dict[str, str] = {}
        self.profiles: dict[str, dict[str, Any]] = {}  # MSISDN -> the API's profile
        self.applet_version: int | None = None
        self.card_profile = None

    # --- Provisioning through the portal -------------------------------------------------------

    def provision(
        self,
        cards: int = 2,
        *,
        interval_minutes: int = 60,
        handsets: Mapping[int, Mapping[str, Any]] | None = None,
        contacts: tuple[int, int] = (8, 25),
        seed: int = 1,
        accounts: Iterable[int] = (),
    ) -> Stack:
        """Cards 0..cards-1 and their subscribers imported by CSV over the API, a sync profile
        template pointing at the live portal, a profile per subscriber, the sync applet
        uploaded; then the SMSC with the cards in phones, the SMSC link and its process.
        `handsets`: card number -> the fleet file's ``handset`` object for that phone.
        `accounts`: card numbers whose phone is a handset without the applet, configured
        with its sync account (the profile's credentials): it honours a server alert."""
        self.create_card_profile()
        self.import_cards(range(cards))
        self.import_subscribers(range(cards))
        self.create_template(interval_minutes=interval_minutes)
        for msisdn in self.msisdns:
            self.create_profile(msisdn)
        self.upload_applet()
        specs = {n: dict(spec) for n, spec in (handsets or {}).items()}
        for n in accounts:
            specs.setdefault(n, {})["account"] = self.account_spec(e2e_msisdn(n))
        self.start_handsets(handsets=specs, contacts=contacts, seed=seed)
        return self

    def account_spec(self, msisdn: str) -> dict[str, Any]:
        """The fleet file's ``handset.account`` for the subscriber (docs/handset.md): what an
        operator would configure in a handset without the applet."""
        profile = self.profiles[msisdn]
        return {
            "server_url": profile["server_url"],
            "username": profile["username"],
            "secret": self.secrets[msisdn],
            "auth": "md5",
            "datastores": profile["datastores"],
        }

    def create_card_profile(self) -> Any:
        self.card_profile = inventory.create_card_profile(
            actor=ACTOR,
            name=CARD_PROFILE,
            vendor="E2E",
            algorithms=["aes128"],
            ram_tar="B00000",
            rfm_tar="B00010",
            counter_mode="higher",
            por_timeout=30,
            max_load_block=240,
        )
        return self.card_profile

    def import_cards(self, numbers: Iterable[int]) -> dict[str, Any]:
        """The card manufacturer's CSV (docs/imports.md) through ``POST /api/imports/``."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["ICCID", "IMSI", "PROFILE", "ALG1", "KIC1", "KID1", "KIK1"])
        for n in numbers:
            kic, kid = card_key(n)
            writer.writerow([e2e_iccid(n), f"26277{n:010d}", CARD_PROFILE, "aes128", kic, kid, ""])
            self.iccids.append(e2e_iccid(n))
        return self._import("cards", out.getvalue())

    def import_subscribers(self, numbers: Iterable[int]) -> dict[str, Any]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["MSISDN", "STATUS", "SEGMENTS", "ICCID"])
        for n in numbers:
            writer.writerow([e2e_msisdn(n), "active", "e2e", e2e_iccid(n)])
            self.msisdns.append(e2e_msisdn(n))
        return self._import("subscribers", out.getvalue())

    def _import(self, kind: str, text: str) -> dict[str, Any]:
        answer = self.api.request(
            "POST",
            "/api/imports/",
            multipart={"kind": kind, "file": named_file(f"{kind}.csv", text.encode())},
            expect=201,
        ).json()
        assert answer["status"] == "done", answer
        return answer

    def create_template(self, *, interval_minutes: int = 60) -> dict[str, Any]:
        return self.api.post(
            "/api/sync-templates/",
            {
                "name": TEMPLATE_NAME,
                "server_url": self.syncml_url,
                "interval_minutes": interval_minutes,
                "trigger_ota": True,
                "trigger_timer": True,
                "trigger_imei_change": True,
                "trigger_menu": True,
            },
            expect=201,
        ).json()

    def create_profile(self, msisdn: str) -> dict[str, Any]:
        answer = self.api.post("/api/sync-profiles/", {"subscriber": msisdn}, expect=201).json()
        self.secrets[msisdn] = answer.pop("secret")
        self.profiles[msisdn] = answer
        return answer

    def upload_applet(self) -> int:
        """The demo CAP with the sync applet's AIDs, and its toolkit TAR as install default."""
        cap = ota.build_demo_cap(syncapplet.PACKAGE_AID, syncapplet.APPLET_AID, (1, 0), 1400)
        answer = self.api.request(
            "POST",
            "/api/applet-versions/",
            multipart={
                "applet": APPLET_NAME,
                "version": "1.0",
                "cap_file": named_file("sync.cap", cap),
            },
            expect=201,
        ).json()
        self.applet_version = int(answer["id"])
        self.api.patch(
            f"/api/applet-versions/{self.applet_version}/",
            {"toolkit_tar": syncapplet.TAR.hex().upper()},
            expect=200,
        )
        return self.applet_version

    def start_handsets(
        self,
        *,
        handsets: Mapping[int, Mapping[str, Any]] | None = None,
        contacts: tuple[int, int] = (8, 25),
        seed: int = 1,
    ) -> Lab:
        """Export the fleet (cards with keys), put each card in a phone, start the SMSC on a
        free port, save the SMSC link pointing at it and start the link process."""
        specs = {e2e_iccid(n): dict(spec) for n, spec in (handsets or {}).items()}
        fleet = build_fleet(None, handset=lambda card: specs.get(card.iccid))
        path = self.workdir / "fleet.json"
        write_fleet(path, fleet)
        self.lab = Lab(str(path), seed=seed, contacts=contacts, workers=4)
        self.smsc = SmscThread(router=self.lab.router)
        self.link = inventory.save_smsc_link(
            actor=ACTOR,
            name="e2e",
            host="127.0.0.1",
            port=self.smsc.port,
            system_id=SYSTEM_ID,
            password=PASSWORD,
            source_addr=OTA_ADDRESS,
            tps=200,
            window=8,
        )
        self.link_process = LinkProcess()
        self.link_process.start()
        return self.lab

    # --- OTA operations over the API -----------------------------------------------------------

    def start_job(self, iccid: str, operation: str, *, applet_version: int | None = None) -> int:
        body: dict[str, Any] = {"iccid": iccid, "operation": operation}
        if applet_version is not None:
            body["applet_version"] = applet_version
        return int(self.api.post("/api/ota-jobs/", body, expect=201).json()["id"])

    def wait_job(self, job_id: int, timeout: float = JOB_TIMEOUT) -> OtaJob:
        """Wait until the job finished; AssertionError unless it is done."""
        job = wait_for(
            lambda: OtaJob.objects.filter(pk=job_id, finished__isnull=False).first(),
            timeout,
            what=f"OTA job {job_id} to finish ({self._job_state(job_id)})",
        )
        assert job.state == "done", f"OTA job {job_id} {job.state}: {job.result}"
        return job

    def _job_state(self, job_id: int) -> str:
        job = OtaJob.objects.filter(pk=job_id).first()
        if job is None:
            return "no such job"
        steps = ", ".join(f"{m.step}:{m.state}" for m in job.messages.order_by("step"))
        return f"{job.state}; messages {steps}"

    def load_applet(self, iccid: str) -> OtaJob:
        """Load and install the sync applet, then restart the phone (the new applet reads the
        handset's IMEI at power-on, as it would at the next switch-on of a real one)."""
        assert self.applet_version is not None, "upload_applet first"
        job = self.wait_job(
            self.start_job(iccid, "load_install", applet_version=self.applet_version)
        )
        phone = self.phone_of_card(iccid)
        self.on_smsc(phone.power_on)
        return job

    def push_params(self, iccid: str) -> OtaJob:
        return self.wait_job(self.start_job(iccid, "push_params"))

    def trigger_sync(self, iccid: str) -> OtaJob:
        return self.wait_job(self.start_job(iccid, "trigger_sync"))

    def server_alert(self, msisdn: str, sync_type: int = 206) -> int:
        """Send the handset a Server-Alerted Notification through the API; the job's id."""
        profile = self.profiles[msisdn]
        answer = self.api.post(
            f"/api/sync-profiles/{profile['id']}/server-alert/",
            {"sync_type": sync_type},
            expect=201,
        ).json()
        return int(answer["job"])

    # --- Phones --------------------------------------------------------------------------------

    def on_smsc(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the simulator's event loop (where cards and routing live)."""
        assert self.smsc is not None, "start_handsets first"
        return self.smsc.call(fn)

    def phone(self, msisdn: str) -> Phone:
        """The phone the subscriber's card is in now."""
        assert self.lab is not None, "start_handsets first"
        return self.lab.router.phone(msisdn)

    def phone_of_card(self, iccid: str) -> Phone:
        msisdn = Card.objects.get(iccid=iccid).subscriber.msisdn
        return self.phone(msisdn)

    @property
    def router(self) -> Any:
        assert self.lab is not None, "start_handsets first"
        return self.lab.router

    def move_card(
        self, msisdn: str, spec: Mapping[str, Any] | None = None, *, seed: int = 99
    ) -> Phone:
        """Take the subscriber's card out of its phone and put it in a new one (another IMEI
        unless `spec` fixes it), then switch the new phone on: the applet's new-handset
        trigger. The old phone keeps its address book and is no longer routed to."""
        assert self.lab is not None, "start_handsets first"
        lab = self.lab

        def swap() -> Phone:
            old = lab.router.phone(msisdn)
            card = old.remove_card()
            assert card is not None, f"no card in the phone of {msisdn}"
            new = make_lab_phone(card, spec, seed=seed, runner=lab._submit)
            assert new.imei != old.imei, "the new phone must have another IMEI"
            lab.router.attach(new, card)
            new.power_on()
            return new

        return self.on_smsc(swap)

    def wait_phone_sessions(
        self, phone: Phone, count: int, timeout: float = SESSION_TIMEOUT
    ) -> PhoneSession:
        """Wait until the phone ran `count` sessions in all; the last one."""
        wait_for(
            lambda: len(phone.sessions) >= count,
            timeout,
            what=f"{count} session(s) on {phone} (has {len(phone.sessions)}; "
            f"events {[(e.kind, e.detail) for e in phone.events[-5:]]})",
        )
        return phone.sessions[count - 1]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 30.0, what: str = "") -> T:
        return wait_for(predicate, timeout, what=what)

    # --- Teardown ------------------------------------------------------------------------------

    def close(self) -> None:
        if self.link_process is not None:
            self.link_process.stop()
        if self.smsc is not None:
            self.smsc.stop()
        if self.lab is not None:
            self.lab.close()
