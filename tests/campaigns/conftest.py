"""Campaign fixtures: a fleet of cards made fast (bulk inserts of sealed keys), the SMSC
simulator with their virtual twins, the SMPP link process and a real worker (the OTA lab of
tests/ota_delivery, sized for campaigns)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from cardmgmt import services as inventory
from cardmgmt.models import Card, KeySet, Subscriber
from cardmgmt.validators import luhn_check_digit
from portal import crypto
from portal.context import Actor
from tests.conftest import ROOT, _worker_env
from tests.ota_delivery.lab import (
    OTA_ADDRESS,
    PASSWORD,
    SYSTEM_ID,
    LinkProcess,
    SmscThread,
    export_fleet,
)

ACTOR = Actor.command("tests")
KIC = bytes(range(16))
KID = bytes(range(16, 32))


def fleet_iccid(n: int) -> str:
    body = f"8949077{n:011d}"
    return body + str(luhn_check_digit(body))


def make_fleet(count: int, *, profile=None, start: int = 0, segment=None):  # type: ignore[no-untyped-def]
    """`count` cards with one AES key set each and their subscribers (bulk inserts)."""
    profile = profile or inventory.create_card_profile(
        actor=ACTOR,
        name="Campaign AES",
        vendor="Lab",
        algorithms=["aes128"],
        ram_tar="B00000",
        rfm_tar="B00010",
        counter_mode="higher",
        por_timeout=5,
    )
    kic, kid = crypto.seal(KIC, "kic"), crypto.seal(KID, "kid")
    cards = Card.objects.bulk_create(
        Card(
            iccid=fleet_iccid(start + n),
            imsi=f"26277{start + n:010d}",
            profile=profile,
            status="active",
        )
        for n in range(count)
    )
    KeySet.objects.bulk_create(
        KeySet(card=c, kvn=1, algorithm="aes128", kic=kic, kid=kid) for c in cards
    )
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(msisdn=f"+4917755{start + n:06d}", card=c) for n, c in enumerate(cards)
    )
    if segment is not None:
        through = Subscriber.segments.through
        through.objects.bulk_create(
            through(subscriber_id=s.pk, segment_id=segment.pk) for s in subscribers
        )
    return profile, cards


class BeatProcess:
    """`celery beat` with the DatabaseScheduler, on the test database and broker."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.log = ROOT / "data" / "test" / f"beat-{os.getpid()}.log"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        schedule = ROOT / "data" / "test" / f"beat-{os.getpid()}.schedule"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "--loglevel",
                "INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--max-interval",
                "1",
                "-s",
                str(schedule),
            ],
            cwd=ROOT,
            env=_worker_env(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(0.5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def campaign_lab(transactional_db, celery_worker, tmp_path, request):
    """A lab of 200 cards (parametrize indirectly with another size for more)."""
    size = getattr(request, "param", 200)
    profile, cards = make_fleet(size)
    fleet = tmp_path / "fleet.json"
    export_fleet(fleet)
    smsc = SmscThread(fleet)
    link = inventory.save_smsc_link(
        actor=ACTOR,
        name="lab",
        host="127.0.0.1",
        port=smsc.port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        source_addr=OTA_ADDRESS,
        tps=2000,
        window=16,  # a wider window exhausts the link's Redis pool (MaxConnectionsError)
    )
    process = LinkProcess()
    process.start()
    lab = type(
        "Lab",
        (),
        {
            "profile": profile,
            "cards": cards,
            "smsc": smsc,
            "link": link,
            "link_process": process,
            "worker": celery_worker,
        },
    )()
    yield lab
    process.stop()
    smsc.stop()


@pytest.fixture
def beat():
    process = BeatProcess()
    process.start()
    yield process
    process.stop()
