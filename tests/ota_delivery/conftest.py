from __future__ import annotations

import pytest

from cardmgmt import ota
from cardmgmt import services as inventory
from cardmgmt.ota import syncapplet
from cardmgmt.validators import luhn_check_digit
from portal.context import Actor
from tests.ota_delivery.lab import (
    OTA_ADDRESS,
    PASSWORD,
    SYSTEM_ID,
    LinkProcess,
    SmscThread,
    export_fleet,
)

ACTOR = Actor.command("tests")
CARDS = 4


def lab_iccid(n: int) -> str:
    body = f"8949009{n:011d}"
    return body + str(luhn_check_digit(body))


@pytest.fixture
def ota_lab(transactional_db, celery_worker, tmp_path):
    """Cards with keys and subscribers, the SMSC with their virtual twins, the link, a worker."""
    profile = inventory.create_card_profile(
        actor=ACTOR,
        name="Lab AES",
        vendor="Lab",
        algorithms=["aes128"],
        ram_tar="B00000",
        rfm_tar="B00010",
        counter_mode="higher",
        por_timeout=5,
        max_load_block=240,
    )
    cards = []
    for n in range(CARDS):
        key = bytes([n + 1]) * 16
        card = inventory.create_card(
            actor=ACTOR,
            iccid=lab_iccid(n),
            imsi=f"26209{n:010d}",
            profile=profile,
            keysets=[
                inventory.KeySetInput(
                    kvn=1,
                    algorithm="aes128",
                    kic=key.hex(),
                    kid=(key[::-1] + b"\x01").hex()[:32],
                    kik="",
                )
            ],
        )
        inventory.create_subscriber(actor=ACTOR, msisdn=f"+4917990000{n:02d}", card=card)
        cards.append(card)
    cap = ota.build_demo_cap(syncapplet.PACKAGE_AID, syncapplet.APPLET_AID, (1, 0), 1400)
    version = inventory.upload_applet_version(
        actor=ACTOR, applet_name="Sync applet", version="1.0", cap_bytes=cap, cap_name="sync.cap"
    )
    version = inventory.update_install_defaults(
        actor=ACTOR, version=version, toolkit_tar=syncapplet.TAR.hex().upper()
    )
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
        tps=500,
        window=16,
    )
    process = LinkProcess()
    process.start()
    lab = type(
        "Lab",
        (),
        {
            "profile": profile,
            "cards": cards,
            "version": version,
            "smsc": smsc,
            "link": link,
            "link_process": process,
            "worker": celery_worker,
        },
    )()
    yield lab
    process.stop()
    smsc.stop()
