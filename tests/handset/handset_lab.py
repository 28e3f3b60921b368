"""Test helpers for the handset simulator (imported by the tests as `handset_lab`).

`Lab` is a small stand-in for the portal side: it plans and secures operations with the card's
keys and a counter of its own, and routes the SMS straight into a `FleetRouter`; the SMPP tests
submit the same secured messages through a real bind instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cardmgmt.ota import (
    CardProfileParams,
    KeySet,
    PorStatus,
    Reassembler,
    ResponsePacket,
    decode_por,
    decode_response_packet,
    parse_compact_result,
    plan,
    secure_plan,
)
from cardmgmt.ota import syncapplet as sa
from cardmgmt.ota.demo_cap import build_demo_cap
from cardmgmt.ota.planner import AppletCommands, Operation
from cardmgmt.ota.sms import RPI
from handset.fleet import FleetRouter
from handset.uicc import CardKeys, CardProfile, Uicc

KIC = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
KID = bytes.fromhex("101112131415161718191A1B1C1D1E1F")
KIK = bytes.fromhex("202122232425262728292A2B2C2D2E2F")
MSISDN = "+491701234567"
OTA_ADDRESS = "4915550001"
RAM_TAR = bytes.fromhex("B00000")
PROFILE = CardProfileParams(name="lab-aes", ram_tar=RAM_TAR, rfm_tar=bytes.fromhex("B00010"))


def make_card(msisdn: str = MSISDN, iccid: str = "8949000000000000001", **profile) -> Uicc:
    return Uicc(
        iccid=iccid,
        imsi="262011234567890",
        msisdn=msisdn,
        profile=CardProfile(name="lab-aes", **profile),
        keysets=[CardKeys(1, "aes128", KIC, KID, KIK, 0)],
    )


def sync_cap(code_size: int = 1500) -> bytes:
    """The demo CAP with the sync applet's AIDs; 1500 octets of code need concatenated SMS."""
    return build_demo_cap(sa.PACKAGE_AID, sa.APPLET_AID, code_size=code_size)


@dataclass
class Lab:
    router: FleetRouter
    msisdn: str = MSISDN
    profile: CardProfileParams = PROFILE
    keys: KeySet = field(default_factory=lambda: KeySet(KIC, KID))
    counter: int = 0

    def allocate(self) -> int:
        self.counter += 1
        return self.counter

    def secure(self, operation: Operation, keys: KeySet | None = None):
        return secure_plan(plan(operation, self.profile), keys or self.keys, self.allocate)

    def decode(self, user_data: bytes) -> ResponsePacket:
        p = self.profile
        return decode_por(user_data, spi=p.spi, kic=p.kic, kid=p.kid, keys=self.keys)

    def join(self, mos) -> ResponsePacket:
        """The PoR carried by the MO messages of one packet (one SMS or concatenated)."""
        if len(mos) == 1:
            return self.decode(mos[0].payload)
        joiner = Reassembler()
        whole = [joiner.add(m.payload, m.from_msisdn) for m in mos][-1]
        assert whole is not None and RPI in whole.ies
        p = self.profile
        return decode_response_packet(whole.packet, spi=p.spi, kic=p.kic, kid=p.kid, keys=self.keys)

    def route_message(self, user_data_list, *, source: str = OTA_ADDRESS) -> list:
        out = []
        for ud in user_data_list:
            out += self.router.route(source, self.msisdn, 0x40, 0x7F, 0xF6, ud)
        return out

    def direct(self, operation: Operation, keys: KeySet | None = None) -> list[ResponsePacket]:
        """Route every packet of an operation straight into the router; the decoded PoRs."""
        pors = []
        for message in self.secure(operation, keys):
            mos = self.route_message(message.user_data)
            assert mos, "no PoR"
            por = self.join(mos)
            if por.status is PorStatus.OK:  # error PoRs may not carry the counter (docs)
                assert por.cntr == message.cntr
            pors.append(por)
        return pors

    def applet(self, *apdus: bytes, tar: bytes = sa.TAR):
        """Applet commands in one packet; (PoR, compact result)."""
        (por,) = self.direct(AppletCommands(tar, apdus))
        return por, parse_compact_result(por.additional_data)

    @property
    def card(self) -> Uicc:
        return self.router.card(self.msisdn)


def make_lab(**profile) -> Lab:
    return Lab(FleetRouter([make_card(**profile)], ota_address=OTA_ADDRESS))
