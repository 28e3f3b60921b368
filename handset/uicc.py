"""A virtual UICC: SCP80 remote management as a real card does it, for tests, demos and the lab.

The card receives SMS-PP data download ENVELOPEs (`envelope()`; or `receive()` with the TP-UD of
one SMS), joins concatenated segments (3GPP TS 31.111: the terminal passes every segment to the
card), and for each whole command packet (`process_packet()`):

1. checks TAR, algorithms and minimum security level, then verifies, deciphers and applies the
   counter policy with `cardmgmt.ota.card_decode_command` (PoR statuses 09, 0A, 06, 05, 01,
   02, 03, 04);
2. runs the compact (C-APDUs back to back) or expanded (`AA`/`AE` template) script on the
   application the TAR names, stopping at the first error status word:
   - the RAM TAR: GlobalPlatform card content management (INSTALL [for load], LOAD, INSTALL
     [for install and make selectable], DELETE, GET STATUS, STORE DATA), against a registry of
     load files and instances with a non-volatile memory quota;
   - the RFM TAR: known, but no file system is simulated (every command 6D00);
   - an instance's toolkit TAR (from its install parameters): the instance's behaviour
     (`handset.applet`), e.g. the sync applet;
3. answers with a PoR secured per SPI2 with the command's keyset, sent by SMS-SUBMIT to the
   command's TP-OA (returned in `EnvelopeResult.submits`) or, when SPI2 b6 is 0, in the
   ENVELOPE response (the RP-ACK, which an SMPP SMSC does not pass on).

Failure injection (`Uicc.failures`): toolkit busy (ENVELOPE answered 93 00, no PoR) and lost
PoRs; the memory quota (`CardProfile.memory_quota`) gives 6A 84 on LOAD / INSTALL.
Pure: no Django. See docs/handset.md.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cardmgmt.ota import gp, syncapplet
from cardmgmt.ota.cap import COMPONENT_TAGS, parse_components
from cardmgmt.ota.command import (
    CommandVerdict,
    KeySet,
    card_decode_command,
    parse_command_header,
)
from cardmgmt.ota.crypto import algorithm_of
from cardmgmt.ota.errors import FormatError, OtaError
from cardmgmt.ota.por import card_por
from cardmgmt.ota.rapdu import (
    TAG_COMMAND_SCRIPT,
    TAG_COMMAND_SCRIPT_INDEFINITE,
    expanded_response,
    parse_expanded_command,
    split_compact_script,
)
from cardmgmt.ota.sms import CPI, RPI, Reassembler, segment_packet
from cardmgmt.ota.spi import CounterMode, KeyAlgorithm, PorStatus, Security, key_index
from cardmgmt.ota.syncapplet import SyncRequest, encode_sync_request
from cardmgmt.ota.tlv import lv, parse_tlvs, read_length, tlv
from cardmgmt.ota.tpdu import (
    Address,
    SmsSubmit,
    decode_sms_deliver,
    parse_sms_pp_download_envelope,
)

from . import toolkit
from .applet import SYNC_APPLET_MODULES, AppletBehaviour, GenericApplet, SyncApplet

log = logging.getLogger(__name__)

# --- Status words ------------------------------------------------------------------------------

SW_OK = 0x9000
SW_TOOLKIT_BUSY = 0x9300
SW_MORE_DATA = 0x6310
SW_WRONG_LENGTH = 0x6700
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_DATA = 0x6A80
SW_NOT_ENOUGH_MEMORY = 0x6A84
SW_WRONG_P1P2 = 0x6A86
SW_NOT_FOUND = 0x6A88
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_TECHNICAL_PROBLEM = 0x6F00

ISD_AID = bytes.fromhex("A000000151000000")
LIFECYCLE_CARD_SECURED = 0x0F
LIFECYCLE_LOADED = 0x01
LIFECYCLE_INSTALLED = 0x03
LIFECYCLE_SELECTABLE = 0x07
MAX_RESPONSE = 255  # GET STATUS answers at most this much, then 63 10 and "next"


def is_error_sw(sw: int) -> bool:
    """Statuses that stop a script: anything but 9000, 91xx, 92xx and 61xx/62xx/63xx."""
    return not (sw == SW_OK or (sw >> 8) in (0x91, 0x92, 0x61, 0x62, 0x63))


# --- Profile and keys --------------------------------------------------------------------------

# name -> (KIc/KID algorithm code, key length)
ALGORITHMS: dict[str, tuple[KeyAlgorithm, int]] = {
    "aes128": (KeyAlgorithm.AES, 16),
    "aes192": (KeyAlgorithm.AES, 24),
    "aes256": (KeyAlgorithm.AES, 32),
    "3des2": (KeyAlgorithm.TDES_2KEY, 16),
    "3des3": (KeyAlgorithm.TDES_3KEY, 24),
    # The portal's names (cardmgmt KeyAlgorithm), as `manage.py export_fleet` writes them.
    "3des2k": (KeyAlgorithm.TDES_2KEY, 16),
    "3des3k": (KeyAlgorithm.TDES_3KEY, 24),
    "des": (KeyAlgorithm.DES_CBC, 8),
}
COUNTER_MODES = {
    "none": CounterMode.NONE,
    "not_checked": CounterMode.NOT_CHECKED,
    "higher": CounterMode.HIGHER,
    "plus_one": CounterMode.PLUS_ONE,
}


@dataclass
class CardProfile:
    """Parameters of a family of cards (the fleet file's `profile`)."""

    name: str = "default"
    ram_tar: bytes = bytes.fromhex("B00000")
    rfm_tar: bytes = bytes.fromhex("B00010")
    counter_mode: str = "higher"  # the SPI counter mode the portal uses (see docs/handset.md)
    cmac_length: int = 8
    min_security_level: int | None = 0x12  # minimum SPI1 for the RAM and RFM TARs
    algorithms: tuple[str, ...] = ("aes128",)
    memory_quota: int = 65536  # non-volatile octets for load files and instance quotas

    def __post_init__(self) -> None:
        for tar in (self.ram_tar, self.rfm_tar):
            if len(tar) != 3:
                raise FormatError(f"profile {self.name!r}: TAR {tar.hex()} is not 3 octets")
        if self.counter_mode not in COUNTER_MODES:
            raise FormatError(f"profile {self.name!r}: counter mode {self.counter_mode!r}")
        if self.cmac_length not in (4, 8):
            raise FormatError(f"profile {self.name!r}: CMAC length must be 4 or 8")
        unknown = set(self.algorithms) - set(ALGORITHMS)
        if unknown:
            raise FormatError(f"profile {self.name!r}: unknown algorithms {sorted(unknown)}")
        if self.memory_quota < 0:
            raise FormatError(f"profile {self.name!r}: negative memory quota")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ram_tar": self.ram_tar.hex().upper(),
            "rfm_tar": self.rfm_tar.hex().upper(),
            "counter_mode": self.counter_mode,
            "cmac_length": self.cmac_length,
            "min_security_level": self.min_security_level,
            "algorithms": list(self.algorithms),
            "memory_quota": self.memory_quota,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CardProfile:
        defaults = cls()
        return cls(
            name=str(data.get("name", defaults.name)),
            ram_tar=bytes.fromhex(data.get("ram_tar", defaults.ram_tar.hex())),
            rfm_tar=bytes.fromhex(data.get("rfm_tar", defaults.rfm_tar.hex())),
            counter_mode=str(data.get("counter_mode", defaults.counter_mode)),
            cmac_length=int(data.get("cmac_length", defaults.cmac_length)),
            min_security_level=data.get("min_security_level", defaults.min_security_level),
            algorithms=tuple(data.get("algorithms", defaults.algorithms)),
            memory_quota=int(data.get("memory_quota", defaults.memory_quota)),
        )


@dataclass
class CardKeys:
    """One SCP80 keyset (KVN) of the card and its counter (the last CNTR it accepted)."""

    kvn: int
    algorithm: str
    kic: bytes
    kid: bytes
    kik: bytes | None = None  # kept for PUT KEY; not used by the simulator
    counter: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.kvn <= 15:
            raise FormatError(f"KVN {self.kvn} must be 1..15")
        if self.algorithm not in ALGORITHMS:
            raise FormatError(f"keyset {self.kvn}: unknown algorithm {self.algorithm!r}")
        size = ALGORITHMS[self.algorithm][1]
        for name in ("kic", "kid", "kik"):
            key = getattr(self, name)
            if key is not None and len(key) != size:
                raise FormatError(
                    f"keyset {self.kvn}: {name} has {len(key)} octets, {self.algorithm} needs {size}"
                )

    @property
    def code(self) -> KeyAlgorithm:
        return ALGORITHMS[self.algorithm][0]

    @property
    def keyset(self) -> KeySet:
        return KeySet(self.kic, self.kid)

    def __repr__(self) -> str:  # never print key material
        return f"CardKeys(kvn={self.kvn}, algorithm={self.algorithm!r}, counter={self.counter})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kvn": self.kvn,
            "algorithm": self.algorithm,
            "kic": self.kic.hex().upper(),
            "kid": self.kid.hex().upper(),
            "kik": None if self.kik is None else self.kik.hex().upper(),
            "counter": self.counter,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CardKeys:
        kik = data.get("kik")
        return cls(
            kvn=int(data["kvn"]),
            algorithm=str(data.get("algorithm", "aes128")),
            kic=bytes.fromhex(data["kic"]),
            kid=bytes.fromhex(data["kid"]),
            kik=bytes.fromhex(kik) if kik else None,
            counter=int(data.get("counter", 0)),
        )


# --- Registry ----------------------------------------------------------------------------------


@dataclass
class LoadFile:
    aid: bytes
    size: int  # non-volatile octets it takes (the load file data block's content)
    modules: tuple[bytes, ...] = ()
    version: tuple[int, int] | None = None
    security_domain_aid: bytes = ISD_AID
    lifecycle: int = LIFECYCLE_LOADED


@dataclass
class Instance:
    aid: bytes
    load_file_aid: bytes
    module_aid: bytes
    privileges: bytes = b"\x00\x00\x00"
    install_params: bytes = b"\xc9\x00"
    lifecycle: int = LIFECYCLE_SELECTABLE
    tars: tuple[bytes, ...] = ()
    msl: int | None = None  # minimum SPI1 from the toolkit parameters
    non_volatile_quota: int = 0
    behaviour: AppletBehaviour = field(default_factory=GenericApplet, repr=False)
    security_domain_aid: bytes = ISD_AID


@dataclass
class _LoadSession:
    aid: bytes
    security_domain_aid: bytes
    next_block: int = 0
    buffer: bytearray = field(default_factory=bytearray)


# --- Results -----------------------------------------------------------------------------------


@dataclass
class Failures:
    """Failure injection. Counts: 0 off, n > 0 the next n times, -1 always."""

    toolkit_busy: int = 0  # ENVELOPE answered 93 00: nothing processed, no PoR
    lose_por: int = 0  # the packet is processed, but its PoR never leaves the card

    def take(self, name: str) -> bool:
        value = getattr(self, name)
        if value == 0:
            return False
        if value > 0:
            setattr(self, name, value - 1)
        return True

    def clear(self) -> None:
        self.toolkit_busy = self.lose_por = 0


@dataclass(frozen=True)
class IssuedCommand:
    """A proactive command an applet issued to the handset (the SYNC REQUEST)."""

    instance_aid: bytes
    command: bytes = field(repr=False)  # the D0 TLV as the terminal would FETCH it
    request: SyncRequest = field(repr=False)
    at: float = 0.0

    @property
    def record(self) -> bytes:
        return self.request.record

    @property
    def mode(self) -> int | None:
        return self.request.mode

    @property
    def campaign(self) -> bytes:
        return self.request.campaign


@dataclass
class PacketResult:
    """What the card did with one whole command packet (kept in `Uicc.history`)."""

    originator: str
    tar: bytes
    status: PorStatus
    reason: str = ""
    cntr: int | None = None
    executed: int = 0
    sw: int | None = None
    data: bytes = b""
    por: bytes | None = None  # the PoR's TP-UD (unsegmented), None if none was sent
    por_lost: bool = False
    por_via_submit: bool = True  # SPI2 b6: PoR by SMS-SUBMIT, else in the RP-ACK


@dataclass
class EnvelopeResult:
    """The card's answer to one ENVELOPE(SMS-PP DOWNLOAD)."""

    sw: int
    response: bytes = b""  # data for the RP-ACK (PoR when SPI2 b6 = 0)
    submits: list[bytes] = field(default_factory=list)  # SMS-SUBMIT TPDUs the card sends
    packet: PacketResult | None = None  # set when a whole packet was processed


class _ScriptError(Exception):
    """Internal: a command failed with this SW."""

    def __init__(self, sw: int, why: str = "", data: bytes = b"") -> None:
        super().__init__(why or f"{sw:04X}")
        self.sw = sw
        self.data = data


# --- The card ----------------------------------------------------------------------------------


class Uicc:
    """A virtual UICC with SCP80 keysets, a GlobalPlatform registry and toolkit applets."""

    def __init__(
        self,
        *,
        iccid: str,
        imsi: str = "",
        msisdn: str = "",
        profile: CardProfile | None = None,
        keysets: Iterable[CardKeys] = (),
        on_proactive: Callable[[Uicc, IssuedCommand], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.iccid = iccid
        self.imsi = imsi
        self.msisdn = msisdn
        self.profile = profile or CardProfile()
        self.keys: dict[int, CardKeys] = {}
        for keys in keysets:
            if keys.kvn in self.keys:
                raise FormatError(f"card {iccid}: keyset {keys.kvn} given twice")
            if keys.algorithm not in self.profile.algorithms:
                raise FormatError(
                    f"card {iccid}: keyset {keys.kvn} uses {keys.algorithm}, which profile "
                    f"{self.profile.name!r} does not support"
                )
            self.keys[keys.kvn] = keys
        self.load_files: dict[bytes, LoadFile] = {}
        self.instances: dict[bytes, Instance] = {}
        self.isd_store: list[bytes] = []  # STORE DATA sent to the ISD, kept verbatim
        self.failures = Failures()
        self.issued_commands: list[IssuedCommand] = []
        self.on_proactive = on_proactive
        self.history: deque[PacketResult] = deque(maxlen=1000)
        self.reassembler = Reassembler(max_sets=64)
        self._clock = clock
        self._load: _LoadSession | None = None
        self._status_more: tuple[int, int, list[bytes]] | None = None  # (P1, P2 fmt, entries)
        self._mr = 0

    def __repr__(self) -> str:
        return f"Uicc(iccid={self.iccid!r}, msisdn={self.msisdn!r}, profile={self.profile.name!r})"

    # --- Memory and TARs -----------------------------------------------------------------------

    @property
    def used_memory(self) -> int:
        used = sum(f.size for f in self.load_files.values())
        used += sum(i.non_volatile_quota for i in self.instances.values())
        if self._load is not None:
            used += len(self._load.buffer)
        return used

    @property
    def free_memory(self) -> int:
        return max(self.profile.memory_quota - self.used_memory, 0)

    def known_tars(self) -> dict[bytes, int | None]:
        """TAR -> minimum SPI1 (None: no minimum) of every application the card can address."""
        msl = self.profile.min_security_level
        tars: dict[bytes, int | None] = {self.profile.ram_tar: msl, self.profile.rfm_tar: msl}
        for instance in self.instances.values():
            if instance.lifecycle & LIFECYCLE_SELECTABLE == LIFECYCLE_SELECTABLE:
                for tar in instance.tars:
                    tars.setdefault(tar, instance.msl)
        return tars

    def instance_for_tar(self, tar: bytes) -> Instance | None:
        for instance in self.instances.values():
            selectable = instance.lifecycle & LIFECYCLE_SELECTABLE == LIFECYCLE_SELECTABLE
            if tar in instance.tars and selectable:
                return instance
        return None

    def applet(self, aid: bytes = syncapplet.INSTANCE_AID) -> AppletBehaviour | None:
        """The behaviour of an installed instance (e.g. the `SyncApplet`), or None."""
        instance = self.instances.get(aid)
        return None if instance is None else instance.behaviour

    # --- SMS-PP data download ------------------------------------------------------------------

    def envelope(self, data: bytes) -> EnvelopeResult:
        """ENVELOPE(SMS-PP DOWNLOAD) (TS 31.111 7.1.1): `D1 .. 8B TPDU`."""
        if self.failures.take("toolkit_busy"):
            return EnvelopeResult(SW_TOOLKIT_BUSY)
        if data[:1] == bytes([toolkit.TAG_MENU_SELECTION]):
            return self._menu_selection(data)
        try:
            deliver = decode_sms_deliver(parse_sms_pp_download_envelope(data))
        except OtaError as exc:
            log.info("card %s: unreadable envelope: %s", self.iccid, exc)
            return EnvelopeResult(SW_WRONG_DATA)
        return self._sms(deliver.user_data, deliver.originating_address, udhi=deliver.udhi)

    def receive(self, user_data: bytes, originator: Address | str = "") -> EnvelopeResult:
        """One SMS-PP download, given its TP-UD (UDH included): for tests without TPDUs."""
        if self.failures.take("toolkit_busy"):
            return EnvelopeResult(SW_TOOLKIT_BUSY)
        if isinstance(originator, str):
            originator = Address(originator)
        return self._sms(user_data, originator, udhi=True)

    def _sms(self, user_data: bytes, originator: Address, *, udhi: bool) -> EnvelopeResult:
        if not udhi:
            return EnvelopeResult(SW_OK)  # no command packet identifier: nothing for SCP80
        try:
            whole = self.reassembler.add(user_data, originator)
        except OtaError as exc:
            log.info("card %s: bad user data header: %s", self.iccid, exc)
            return EnvelopeResult(SW_WRONG_DATA)
        if whole is None:
            return EnvelopeResult(SW_OK)  # more segments to come
        if CPI not in whole.ies:
            return EnvelopeResult(SW_OK)
        try:
            result = self.process_packet(whole.packet, originator.digits)
        except OtaError as exc:
            log.info("card %s: unusable command packet: %s", self.iccid, exc)
            return EnvelopeResult(SW_TECHNICAL_PROBLEM)
        out = EnvelopeResult(SW_OK, packet=result)
        if result.por is not None and not result.por_lost:
            if result.por_via_submit:
                out.submits = self._submits(result.por, originator)
            else:
                out.response = result.por[3:]
        return out

    def _submits(self, por_user_data: bytes, destination: Address) -> list[bytes]:
        """The PoR as SMS-SUBMIT TPDUs (concatenated when longer than one SMS)."""
        packet = por_user_data[3:]
        self._mr = (self._mr + 1) & 0xFF
        parts = segment_packet(packet, reference=self._mr, iei=RPI)
        return [
            SmsSubmit(destination, ud, message_reference=(self._mr + n) & 0xFF).encode()
            for n, ud in enumerate(parts)
        ]

    # --- Command packets -----------------------------------------------------------------------

    def process_packet(self, packet: bytes, originator: str = "") -> PacketResult:
        """Verify, execute and answer one whole secured command packet (CPL to the end).

        Raises FormatError only when the packet's own length fields are inconsistent.
        """
        head = parse_command_header(packet)
        tars = self.known_tars()
        keysets = {kvn: k.keyset for kvn, k in self.keys.items()}
        counter_kvn = key_index(head.kid if head.spi.security is not Security.NONE else head.kic)
        counter_keys = self.keys.get(counter_kvn)
        mismatch = self._algorithm_mismatch(head.spi, head.kic, head.kid)
        verdict = card_decode_command(
            packet,
            keysets,
            card_counter=None if counter_keys is None else counter_keys.counter,
            known_tars=tars,
        )
        if mismatch and verdict.status not in (
            PorStatus.TAR_UNKNOWN,
            PorStatus.INSUFFICIENT_SECURITY_LEVEL,
        ):
            verdict = _refused(verdict, PorStatus.UNIDENTIFIED_SECURITY_ERROR, mismatch)
        result = PacketResult(originator, head.tar, verdict.status, verdict.reason, verdict.cntr)
        result.por_via_submit = head.spi.por_via_submit
        additional = b""
        if verdict.accepted:
            if counter_keys is not None and verdict.new_counter is not None:
                counter_keys.counter = verdict.new_counter
            additional = self._run_script(verdict, result)
        result.por = card_por(verdict, keysets, additional_data=additional)
        if result.por is not None and self.failures.take("lose_por"):
            result.por_lost = True
        self.history.append(result)
        log.debug(
            "card %s: TAR %s CNTR %s -> %s %s",
            self.iccid, head.tar.hex().upper(), verdict.cntr, verdict.status.name,
            "" if result.sw is None else f"SW {result.sw:04X}",
        )  # fmt: skip
        return result

    def _algorithm_mismatch(self, spi: Any, kic: int, kid: int) -> str:
        """Why KIc/KID name an algorithm the keyset does not have ('' when they agree)."""
        checks = []
        if spi.ciphering:
            checks.append(("KIc", kic))
        if spi.security is Security.CC:
            checks.append(("KID", kid))
        for name, value in checks:
            keys = self.keys.get(key_index(value))
            if keys is None:
                continue  # card_decode_command answers "no keyset"
            try:
                alg = algorithm_of(value)
            except OtaError as exc:
                return str(exc)
            if alg is not keys.code:
                return (
                    f"{name} {value:02X} asks for {alg.name}, keyset {keys.kvn} is {keys.algorithm}"
                )
        return ""

    def _run_script(self, verdict: CommandVerdict, result: PacketResult) -> bytes:
        """Execute the secured data on the TAR's application; returns the PoR additional data."""
        data = verdict.data
        expanded = bool(data) and data[0] in (TAG_COMMAND_SCRIPT, TAG_COMMAND_SCRIPT_INDEFINITE)
        execute = self._executor(verdict.tar)
        if expanded:
            try:
                apdus = list(parse_expanded_command(data).apdus)
            except OtaError:
                return expanded_response(0, bad_format=b"\x01")
        else:
            try:
                if verdict.tar in (self.profile.ram_tar, self.profile.rfm_tar):
                    apdus = split_compact_script(data)
                else:
                    apdus = syncapplet.split_applet_script(data)
            except OtaError:
                result.sw = SW_WRONG_LENGTH
                return bytes((0,)) + SW_WRONG_LENGTH.to_bytes(2, "big")
        rapdus: list[bytes] = []
        sw, response = SW_OK, b""
        for apdu in apdus:
            response, sw = execute(apdu)
            rapdus.append(response + sw.to_bytes(2, "big"))
            if is_error_sw(sw):
                break
        result.executed, result.sw, result.data = len(rapdus), sw, response
        if expanded:
            return expanded_response(len(rapdus), rapdus)
        return bytes((len(rapdus),)) + sw.to_bytes(2, "big") + response

    def _executor(self, tar: bytes) -> Callable[[bytes], tuple[bytes, int]]:
        if tar == self.profile.ram_tar:
            return self._isd_command
        if tar == self.profile.rfm_tar:
            return lambda apdu: (b"", SW_INS_NOT_SUPPORTED)
        instance = self.instance_for_tar(tar)
        assert instance is not None  # the TAR was known
        return instance.behaviour.process

    # --- GlobalPlatform card content management ------------------------------------------------

    def _isd_command(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            if len(apdu) < 4:
                raise _ScriptError(SW_WRONG_LENGTH)
            cla, ins, p1, p2 = apdu[:4]
            data = b""
            if len(apdu) > 4:
                lc = apdu[4]
                data = apdu[5 : 5 + lc]
                if len(data) != lc or len(apdu) > 6 + lc:
                    raise _ScriptError(SW_WRONG_LENGTH, "Lc does not match the data")
            if cla & 0xFC not in (0x80, 0x84):
                raise _ScriptError(SW_CLA_NOT_SUPPORTED)
            handler = {
                gp.INS_INSTALL: self._install,
                gp.INS_LOAD: self._load_block,
                gp.INS_DELETE: self._delete,
                gp.INS_GET_STATUS: self._get_status,
                gp.INS_STORE_DATA: self._store_data,
            }.get(ins)
            if handler is None:
                raise _ScriptError(SW_INS_NOT_SUPPORTED)
            return handler(p1, p2, data), SW_OK
        except _ScriptError as exc:
            if exc.sw == SW_MORE_DATA:
                return exc.data, SW_MORE_DATA
            log.debug("card %s: ISD command %s -> %04X %s", self.iccid, apdu[:4].hex(), exc.sw, exc)
            return b"", exc.sw
        except OtaError as exc:
            log.debug("card %s: ISD command %s: %s", self.iccid, apdu[:4].hex(), exc)
            return b"", SW_WRONG_DATA

    def _install(self, p1: int, p2: int, data: bytes) -> bytes:
        fields = _lvs(data)
        if p1 == gp.INSTALL_FOR_LOAD:
            return self._install_for_load(fields)
        if p1 & gp.INSTALL_FOR_INSTALL:
            return self._install_for_install(fields, selectable=bool(p1 & 0x08))
        if p1 == gp.INSTALL_FOR_MAKE_SELECTABLE:
            instance = self.instances.get(fields[2] if len(fields) > 2 else b"")
            if instance is None:
                raise _ScriptError(SW_NOT_FOUND, "no such instance to make selectable")
            instance.lifecycle = LIFECYCLE_SELECTABLE
            return b"\x00"
        raise _ScriptError(SW_WRONG_P1P2, f"INSTALL P1 {p1:02X} not supported")

    def _install_for_load(self, fields: list[bytes]) -> bytes:
        if len(fields) < 5:
            raise _ScriptError(SW_WRONG_DATA, "INSTALL [for load] needs five LV fields")
        aid, sd_aid, _hash, params = fields[0], fields[1], fields[2], fields[3]
        if not 5 <= len(aid) <= 16:
            raise _ScriptError(SW_WRONG_DATA, "load file AID length")
        if aid in self.load_files or aid in self.instances:
            raise _ScriptError(SW_CONDITIONS_NOT_SATISFIED, "AID already on the card")
        if sd_aid and sd_aid != ISD_AID:
            raise _ScriptError(SW_NOT_FOUND, "unknown security domain")
        self._load = None
        declared = _declared_code_size(params)
        if declared is not None and declared > self.free_memory:
            raise _ScriptError(SW_NOT_ENOUGH_MEMORY, f"{declared} octets declared")
        self._load = _LoadSession(aid, sd_aid or ISD_AID)
        return b"\x00"

    def _load_block(self, p1: int, p2: int, data: bytes) -> bytes:
        session = self._load
        if session is None:
            raise _ScriptError(SW_CONDITIONS_NOT_SATISFIED, "LOAD without INSTALL [for load]")
        if p1 not in (0x00, 0x80):
            raise _ScriptError(SW_WRONG_P1P2)
        if p2 != session.next_block:
            raise _ScriptError(SW_WRONG_P1P2, f"block {p2}, expected {session.next_block}")
        if len(data) > self.free_memory:
            self._load = None
            raise _ScriptError(SW_NOT_ENOUGH_MEMORY, "load file exceeds the memory quota")
        session.buffer += data
        session.next_block += 1
        if p1 == 0x00:
            return b""
        self._load = None
        load_file = _parse_load_file(session.aid, bytes(session.buffer))
        load_file.security_domain_aid = session.security_domain_aid
        self.load_files[load_file.aid] = load_file
        return b"\x00"

    def _install_for_install(self, fields: list[bytes], *, selectable: bool) -> bytes:
        if len(fields) < 6:
            raise _ScriptError(SW_WRONG_DATA, "INSTALL [for install] needs six LV fields")
        elf_aid, module_aid, aid, privileges, params = fields[:5]
        load_file = self.load_files.get(elf_aid)
        if load_file is None or module_aid not in load_file.modules:
            raise _ScriptError(SW_NOT_FOUND, "load file or module not on the card")
        if not 5 <= len(aid) <= 16 or len(privileges) not in (1, 3):
            raise _ScriptError(SW_WRONG_DATA, "instance AID or privileges length")
        if aid in self.instances or aid in self.load_files or aid == ISD_AID:
            raise _ScriptError(SW_CONDITIONS_NOT_SATISFIED, "instance AID already in use")
        parsed = gp.parse_install_params(params)  # FormatError -> 6A80
        toolkit = parsed.uicc_toolkit or parsed.sim_toolkit
        tars: tuple[bytes, ...] = ()
        msl = None
        if toolkit is not None:
            tars = tuple(toolkit.tars or ())
            if not tars and len(aid) >= 15:
                tars = (aid[12:15],)  # no TAR given: bytes 13-15 of the instance AID
            msl = toolkit.min_spi1
        taken = set(self.known_tars())
        if any(t in taken for t in tars) or len(set(tars)) != len(tars):
            raise _ScriptError(SW_WRONG_DATA, "TAR already in use")
        quota = parsed.non_volatile_quota or 0
        if quota > self.free_memory:
            raise _ScriptError(SW_NOT_ENOUGH_MEMORY, f"non-volatile quota {quota}")
        instance = Instance(
            aid=aid,
            load_file_aid=elf_aid,
            module_aid=module_aid,
            privileges=privileges.ljust(3, b"\x00"),
            install_params=params,
            lifecycle=LIFECYCLE_SELECTABLE if selectable else LIFECYCLE_INSTALLED,
            tars=tars,
            msl=msl,
            non_volatile_quota=quota,
        )
        instance.behaviour = self._behaviour(instance)
        self.instances[aid] = instance
        return b"\x00"

    def _behaviour(self, instance: Instance) -> AppletBehaviour:
        if instance.module_aid in SYNC_APPLET_MODULES:
            capacity = instance.non_volatile_quota or syncapplet.MAX_RECORD_LENGTH

            def issue(request: SyncRequest, aid: bytes = instance.aid) -> None:
                self._issue(aid, request)

            return SyncApplet(issue, capacity=capacity)
        return GenericApplet()

    def _issue(self, aid: bytes, request: SyncRequest) -> None:
        issued = IssuedCommand(aid, encode_sync_request(request), request, self._clock())
        self.issued_commands.append(issued)
        if self.on_proactive is not None:
            try:
                self.on_proactive(self, issued)
            except Exception:
                log.exception("card %s: proactive command hook failed", self.iccid)

    def _delete(self, p1: int, p2: int, data: bytes) -> bytes:
        if p2 not in (0x00, 0x80):
            raise _ScriptError(SW_WRONG_P1P2)
        aids = [v for t, v in parse_tlvs(data, what="DELETE data") if t == 0x4F]
        if len(aids) != 1:
            raise _ScriptError(SW_WRONG_DATA, "DELETE needs one AID (4F)")
        aid = aids[0]
        if aid == ISD_AID:
            raise _ScriptError(SW_CONDITIONS_NOT_SATISFIED, "the ISD cannot be deleted")
        if aid in self.instances:
            del self.instances[aid]
            return b"\x00"
        if aid not in self.load_files:
            raise _ScriptError(SW_NOT_FOUND, "no such AID")
        dependents = [i.aid for i in self.instances.values() if i.load_file_aid == aid]
        if dependents and p2 != 0x80:
            raise _ScriptError(SW_CONDITIONS_NOT_SATISFIED, "load file has instances")
        for instance_aid in dependents:
            del self.instances[instance_aid]
        del self.load_files[aid]
        return b"\x00"

    def _store_data(self, p1: int, p2: int, data: bytes) -> bytes:
        self.isd_store.append(data)
        return b""

    def _get_status(self, p1: int, p2: int, data: bytes) -> bytes:
        tlv_format = bool(p2 & 0x02)
        if p2 & ~0x03:
            raise _ScriptError(SW_WRONG_P1P2)
        if p2 & 0x01:  # next occurrences
            pending = self._status_more
            if pending is None or pending[:2] != (p1, p2 & 0x02):
                raise _ScriptError(SW_CONDITIONS_NOT_SATISFIED, "no GET STATUS to continue")
            return self._status_page(p1, p2 & 0x02, pending[2])
        criteria = [v for t, v in parse_tlvs(data, what="GET STATUS data") if t == 0x4F]
        if len(criteria) != 1:
            raise _ScriptError(SW_WRONG_DATA, "GET STATUS needs a search criterion 4F")
        prefix = criteria[0]
        if p1 == gp.GET_STATUS_ISD:
            entries = [self._status_isd(tlv_format)] if ISD_AID.startswith(prefix) else []
        elif p1 == gp.GET_STATUS_APPS:
            entries = [
                self._status_instance(i, tlv_format)
                for i in self.instances.values()
                if i.aid.startswith(prefix)
            ]
        elif p1 in (gp.GET_STATUS_ELFS, gp.GET_STATUS_ELFS_AND_MODULES):
            modules = p1 == gp.GET_STATUS_ELFS_AND_MODULES
            entries = [
                self._status_load_file(f, tlv_format, modules)
                for f in self.load_files.values()
                if f.aid.startswith(prefix)
            ]
        else:
            raise _ScriptError(SW_WRONG_P1P2, f"GET STATUS P1 {p1:02X}")
        if not entries:
            raise _ScriptError(SW_NOT_FOUND, "no matching registry entry")
        return self._status_page(p1, p2 & 0x02, entries)

    def _status_page(self, p1: int, fmt: int, entries: list[bytes]) -> bytes:
        out = b""
        taken = 0
        for entry in entries:
            if out and len(out) + len(entry) > MAX_RESPONSE:
                break
            out += entry
            taken += 1
        rest = entries[taken:]
        self._status_more = (p1, fmt, rest) if rest else None
        if rest:
            raise _ScriptError(SW_MORE_DATA, "more entries", out)
        return out

    def _status_isd(self, tlv_format: bool) -> bytes:
        privileges = b"\x9e\x00\x00"
        if not tlv_format:
            return lv(ISD_AID) + bytes((LIFECYCLE_CARD_SECURED, privileges[0]))
        return tlv(
            0xE3,
            tlv(0x4F, ISD_AID)
            + tlv(0x9F70, bytes((LIFECYCLE_CARD_SECURED,)))
            + tlv(0xC5, privileges),
        )

    def _status_instance(self, instance: Instance, tlv_format: bool) -> bytes:
        if not tlv_format:
            return lv(instance.aid) + bytes((instance.lifecycle, instance.privileges[0]))
        return tlv(
            0xE3,
            tlv(0x4F, instance.aid)
            + tlv(0x9F70, bytes((instance.lifecycle,)))
            + tlv(0xC5, instance.privileges)
            + tlv(0xC4, instance.load_file_aid)
            + tlv(0xCC, instance.security_domain_aid),
        )

    def _status_load_file(self, load_file: LoadFile, tlv_format: bool, modules: bool) -> bytes:
        if not tlv_format:
            out = lv(load_file.aid) + bytes((load_file.lifecycle, 0x00))
            if modules:
                out += bytes((len(load_file.modules),)) + b"".join(lv(m) for m in load_file.modules)
            return out
        body = tlv(0x4F, load_file.aid) + tlv(0x9F70, bytes((load_file.lifecycle,)))
        if load_file.version is not None:
            body += tlv(0xCE, bytes(load_file.version))
        if modules:
            body += b"".join(tlv(0x84, m) for m in load_file.modules)
        body += tlv(0xCC, load_file.security_domain_aid)
        return tlv(0xE3, body)

    # --- Toolkit events from the handset (handset/toolkit.py) ----------------------------------

    def _sync_applets(self) -> list[SyncApplet]:
        return [
            i.behaviour
            for i in self.instances.values()
            if isinstance(i.behaviour, SyncApplet)
            and i.lifecycle & LIFECYCLE_SELECTABLE == LIFECYCLE_SELECTABLE
        ]

    def menu_items(self) -> dict[int, bytes]:
        """Item identifier -> instance AID: one menu entry per selectable sync applet, from 1
        (what SET UP MENU would show)."""
        return {
            n: i.aid
            for n, i in enumerate(
                (i for i in self.instances.values() if isinstance(i.behaviour, SyncApplet)
                 and i.lifecycle & LIFECYCLE_SELECTABLE == LIFECYCLE_SELECTABLE),
                start=1,
            )
        }  # fmt: skip

    def _menu_selection(self, data: bytes) -> EnvelopeResult:
        try:
            item, help_request = toolkit.parse_menu_selection(data)
        except OtaError:
            return EnvelopeResult(SW_WRONG_DATA)
        aid = self.menu_items().get(item)
        if aid is None:
            return EnvelopeResult(SW_WRONG_DATA)
        behaviour = self.instances[aid].behaviour
        if not help_request and isinstance(behaviour, SyncApplet):
            behaviour.menu_selection()
        return EnvelopeResult(SW_OK)

    def power_on(self, terminal: Callable[[bytes], bytes], now: float | None = None) -> None:
        """The handset powered on (after TERMINAL PROFILE): each sync applet issues PROVIDE
        LOCAL INFORMATION (IMEI), `terminal(command) -> terminal response`, and acts on it."""
        now = self._clock() if now is None else now
        for applet in self._sync_applets():
            try:
                imei = toolkit.parse_imei_terminal_response(
                    terminal(toolkit.provide_local_information_imei())
                )
            except OtaError as exc:
                log.info("card %s: no IMEI from the terminal: %s", self.iccid, exc)
                continue
            applet.power_on(imei, now)

    def tick(self, now: float | None = None) -> None:
        """Let the applets' timers run up to `now` (in place of TIMER EXPIRATION envelopes)."""
        now = self._clock() if now is None else now
        for applet in self._sync_applets():
            applet.tick(now)

    # --- Installing directly (test fixtures) ---------------------------------------------------

    def preinstall(
        self,
        load_file_aid: bytes = syncapplet.PACKAGE_AID,
        module_aid: bytes = syncapplet.APPLET_AID,
        instance_aid: bytes = syncapplet.INSTANCE_AID,
        *,
        install_params: bytes | None = None,
        size: int = 0,
    ) -> Instance:
        """Put a load file and an instance on the card without OTA (factory personalisation)."""
        if load_file_aid not in self.load_files:
            self.load_files[load_file_aid] = LoadFile(load_file_aid, size, (module_aid,))
        params = syncapplet.install_parameters() if install_params is None else install_params
        fields = [load_file_aid, module_aid, instance_aid, b"\x00", params, b""]
        self._install_for_install(fields, selectable=True)
        return self.instances[instance_aid]

    # --- State file ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Counters and registry, for the fleet state file (keys are not part of it)."""
        return {
            "counters": {str(kvn): k.counter for kvn, k in self.keys.items()},
            "load_files": [
                {
                    "aid": f.aid.hex().upper(),
                    "size": f.size,
                    "modules": [m.hex().upper() for m in f.modules],
                    "version": None if f.version is None else list(f.version),
                }
                for f in self.load_files.values()
            ],
            "instances": [
                {
                    "aid": i.aid.hex().upper(),
                    "load_file": i.load_file_aid.hex().upper(),
                    "module": i.module_aid.hex().upper(),
                    "privileges": i.privileges.hex().upper(),
                    "install_params": i.install_params.hex().upper(),
                    "lifecycle": i.lifecycle,
                    "applet": i.behaviour.state(),
                }
                for i in self.instances.values()
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Apply a `state()` (counters of keysets that exist, registry, applet data)."""
        for kvn, counter in state.get("counters", {}).items():
            if int(kvn) in self.keys:
                self.keys[int(kvn)].counter = int(counter)
        self.load_files.clear()
        self.instances.clear()
        for item in state.get("load_files", []):
            version = item.get("version")
            load_file = LoadFile(
                bytes.fromhex(item["aid"]),
                int(item.get("size", 0)),
                tuple(bytes.fromhex(m) for m in item.get("modules", [])),
                None if version is None else (int(version[0]), int(version[1])),
            )
            self.load_files[load_file.aid] = load_file
        for item in state.get("instances", []):
            aid = bytes.fromhex(item["aid"])
            privileges = bytes.fromhex(item.get("privileges", "000000"))
            fields = [
                bytes.fromhex(item["load_file"]),
                bytes.fromhex(item["module"]),
                aid,
                privileges[:3],
                bytes.fromhex(item.get("install_params", "C900")),
                b"",
            ]
            try:
                self._install_for_install(fields, selectable=True)
            except _ScriptError as exc:
                raise FormatError(f"card {self.iccid}: state of {item['aid']}: {exc}") from None
            instance = self.instances[aid]
            instance.lifecycle = int(item.get("lifecycle", LIFECYCLE_SELECTABLE))
            instance.behaviour.restore(item.get("applet", {}))


# --- Helpers -----------------------------------------------------------------------------------


def _refused(verdict: CommandVerdict, status: PorStatus, reason: str) -> CommandVerdict:
    return CommandVerdict(
        status, reason, verdict.spi, verdict.kic, verdict.kid, verdict.tar, verdict.cntr, b"",
        None, verdict.cc_length,
    )  # fmt: skip


def _lvs(data: bytes) -> list[bytes]:
    """Consecutive one-octet-length fields (GP INSTALL data)."""
    out = []
    pos = 0
    while pos < len(data):
        n = data[pos]
        if pos + 1 + n > len(data):
            raise _ScriptError(SW_WRONG_DATA, "LV field runs past the data")
        out.append(data[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return out


def _declared_code_size(params: bytes) -> int | None:
    """Non-volatile code size from load parameters `EF { C6 size }`, if given."""
    if not params:
        return None
    for tag, value in parse_tlvs(params, what="load parameters"):
        if tag == 0xEF:
            for inner, size in parse_tlvs(value, what="system parameters"):
                if inner == 0xC6 and len(size) in (2, 4):
                    return int.from_bytes(size, "big")
    return None


_COMPONENT_NAMES = {tag: name for name, tag in COMPONENT_TAGS.items()}


def _parse_load_file(aid: bytes, data: bytes) -> LoadFile:
    """Read `[E2 DAP]* C4 L components` as a card does at the last LOAD block."""
    try:
        pos = 0
        while pos < len(data) and data[pos] == 0xE2:  # DAP blocks: not checked here
            length, pos = read_length(data, pos + 1)
            if length is None:
                raise FormatError("DAP block with indefinite length")
            pos += length
        if pos >= len(data) or data[pos] != 0xC4:
            raise FormatError("load file data block does not start with C4")
        length, pos = read_length(data, pos + 1)
        if length is None or pos + length != len(data):
            raise FormatError("C4 length does not match the blocks received")
        components: dict[str, bytes] = {}
        while pos < len(data):
            if pos + 3 > len(data):
                raise FormatError("load file ends inside a component header")
            tag = data[pos]
            size = int.from_bytes(data[pos + 1 : pos + 3], "big")
            name = _COMPONENT_NAMES.get(tag)
            if name is None or name in components:
                raise FormatError(f"component tag {tag} unknown or repeated")
            components[name] = data[pos : pos + 3 + size]
            pos += 3 + size
        cap = parse_components(components)
    except OtaError as exc:
        raise _ScriptError(SW_WRONG_DATA, f"bad load file: {exc}") from None
    if cap.package_aid != aid:
        raise _ScriptError(SW_WRONG_DATA, "package AID differs from the INSTALL [for load] AID")
    return LoadFile(aid, length, cap.applet_aids, cap.package_version)
