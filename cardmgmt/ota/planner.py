"""From an operation on a card (load and install an applet, delete, audit, applet commands) to
the ordered secured packets and SMS that carry it.

Usable two ways:
- `plan(operation, profile)` needs no keys: it gives the APDUs, the size of every secured
  packet and the SMS count (the catalog's "SMS per card profile" figure);
- `secure_plan(plan, keys, allocate_counter)` turns a plan into real packets, one counter per
  packet from `allocate_counter()` (the Django side allocates from the database).

One secured packet per card-content-management command, so each PoR tells which step failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import gp
from .cap import CapFile
from .command import KeySet, SecuredCommandPacket, command_packet_length, encode_command
from .errors import OtaError, PlanningError
from .gp import InstallParams
from .rapdu import compact_script
from .sms import MAX_SINGLE_PACKET, segment_packet, sms_count
from .spi import CounterMode, KeyAlgorithm, PorRequest, Security, Spi

SPI_1639 = Spi(
    security=Security.CC, ciphering=True, counter=CounterMode.HIGHER, por=PorRequest.ALWAYS,
    por_security=Security.CC, por_ciphering=True, por_via_submit=True,
)  # fmt: skip


@dataclass(frozen=True)
class CardProfileParams:
    """What the planner needs to know about a family of cards."""

    name: str = "default"
    spi: Spi = SPI_1639  # the SPI used for every packet (counter mode included)
    kic_algorithm: int = KeyAlgorithm.AES  # KeyAlgorithm for ciphering
    kid_algorithm: int = KeyAlgorithm.AES  # KeyAlgorithm for CC, or RcAlgorithm for RC
    kvn: int = 1  # keyset used (KIc/KID b8-b5)
    cmac_length: int = 8  # AES-CMAC octets: 8, or 4 on cards that say so
    ram_tar: bytes = b"\x00\x00\x00"  # ISD / remote application management
    rfm_tar: bytes = bytes.fromhex("B00010")  # remote file management
    max_load_block: int = 255  # largest LOAD data the card takes
    include_descriptor: bool = False  # put the Descriptor component in the load file
    single_sms: bool = False  # every packet must fit one SMS (no concatenation)
    concat_ref16: bool = False  # 16-bit concatenation references (IEI 08)

    @property
    def kic(self) -> int:
        return (self.kvn << 4) | int(self.kic_algorithm)

    @property
    def kid(self) -> int:
        return (self.kvn << 4) | int(self.kid_algorithm)

    @property
    def counter_mode(self) -> CounterMode:
        return self.spi.counter

    def packet_length(self, data_len: int) -> int:
        """Secured packet length (CPL included) for `data_len` octets of secured data."""
        return command_packet_length(
            self.spi, self.kic, self.kid, data_len, cmac_length=self.cmac_length
        )

    def sms_for(self, data_len: int) -> int:
        """SMS needed for one packet carrying `data_len` octets (0 if the profile forbids it)."""
        length = self.packet_length(data_len)
        if self.single_sms and length > MAX_SINGLE_PACKET:
            return 0
        return sms_count(length, ref16=self.concat_ref16)


@dataclass(frozen=True)
class LoadAndInstall:
    """Load a CAP file and (unless `install` is False) install and make selectable its applet."""

    cap: CapFile
    applet_aid: bytes | None = None  # class AID in the package; default: its first applet
    instance_aid: bytes | None = None  # default: the applet AID
    privileges: bytes = b"\x00"
    install_params: InstallParams | bytes = field(default_factory=InstallParams)
    security_domain_aid: bytes = b""
    install: bool = True


@dataclass(frozen=True)
class Delete:
    aid: bytes
    related_objects: bool = True  # P2 80: the load file and its instances


@dataclass(frozen=True)
class Audit:
    """GET STATUS to the RAM TAR (keep it narrow: the answer must fit one PoR)."""

    p1: int = gp.GET_STATUS_APPS
    tlv_format: bool = True
    aid: bytes = b""


@dataclass(frozen=True)
class AppletCommands:
    """Applet-specific C-APDUs to the applet's own TAR, in one packet (one compact script)."""

    tar: bytes
    apdus: tuple[bytes, ...]


@dataclass(frozen=True)
class StoreData:
    """STORE DATA blocks to a TAR (e.g. the sync applet's parameter record), one per packet."""

    tar: bytes
    data: bytes
    p1_format: int = 0x00


Operation = LoadAndInstall | Delete | Audit | AppletCommands | StoreData


@dataclass(frozen=True)
class PlannedPacket:
    """One secured packet of a plan, before securing."""

    tar: bytes
    apdus: tuple[bytes, ...]
    description: str
    length: int  # secured packet octets, CPL included
    sms: int

    @property
    def data(self) -> bytes:
        return compact_script(self.apdus)


@dataclass(frozen=True)
class ScriptPlan:
    profile: CardProfileParams
    steps: tuple[PlannedPacket, ...]
    load_block_size: int | None = None

    @property
    def sms_count(self) -> int:
        return sum(step.sms for step in self.steps)

    @property
    def packet_count(self) -> int:
        return len(self.steps)


APDU_OVERHEAD = 6  # CLA INS P1 P2 Lc ... Le


def choose_block_size(total: int, profile: CardProfileParams) -> int:
    """The LOAD (or STORE DATA) block size giving the fewest SMS for `total` octets.

    Every size up to the profile's maximum is tried: small blocks fit single SMS, big ones
    spread the per-packet overhead over concatenated SMS; ties go to fewer packets, then to
    the bigger block.
    """
    best: tuple[int, int, int] | None = None
    for size in range(1, min(profile.max_load_block, 255) + 1):
        full, rest = divmod(total, size)
        blocks = full + (1 if rest else 0)
        if blocks > 256:
            continue
        per_full = profile.sms_for(size + APDU_OVERHEAD)
        per_rest = profile.sms_for(rest + APDU_OVERHEAD) if rest else 0
        if per_full == 0 or (rest and per_rest == 0):
            continue  # does not fit one SMS and the profile forbids concatenation
        key = (full * per_full + per_rest, blocks, -size)
        if best is None or key < best:
            best = key
    if best is None:
        raise PlanningError(
            f"no LOAD block size up to {profile.max_load_block} fits profile {profile.name!r}"
        )
    return -best[2]


def _step(
    profile: CardProfileParams, tar: bytes, apdus: tuple[bytes, ...], what: str
) -> PlannedPacket:
    size = sum(len(a) for a in apdus)
    length = profile.packet_length(size)
    sms = profile.sms_for(size)
    if sms == 0:
        raise PlanningError(
            f"{what}: a {length}-octet packet exceeds one SMS and profile "
            f"{profile.name!r} allows no concatenation"
        )
    return PlannedPacket(tar, apdus, what, length, sms)


def plan(operation: Operation, profile: CardProfileParams) -> ScriptPlan:
    """The secured packets an operation needs on cards of `profile` (no keys needed)."""
    try:
        return _plan(operation, profile)
    except PlanningError:
        raise
    except OtaError as exc:
        raise PlanningError(f"cannot plan {type(operation).__name__}: {exc}") from exc


def _plan(operation: Operation, profile: CardProfileParams) -> ScriptPlan:
    ram = profile.ram_tar
    if isinstance(operation, LoadAndInstall):
        cap = operation.cap
        lfdb = cap.load_file_data_block(include_descriptor=profile.include_descriptor).data
        block = choose_block_size(len(lfdb), profile)
        steps = [
            _step(
                profile, ram,
                (gp.install_for_load(cap.package_aid, operation.security_domain_aid),),
                "INSTALL [for load]",
            )
        ]  # fmt: skip
        loads = gp.load_blocks(lfdb, block)
        steps += [
            _step(profile, ram, (apdu,), f"LOAD block {n + 1}/{len(loads)}")
            for n, apdu in enumerate(loads)
        ]
        if operation.install:
            applet = operation.applet_aid or (cap.applet_aids[0] if cap.applet_aids else None)
            if applet is None:
                raise PlanningError("the CAP file declares no applet to install")
            params = operation.install_params
            raw = params.encode() if isinstance(params, InstallParams) else params
            apdu = gp.install_for_install(
                cap.package_aid, applet, operation.instance_aid or applet,
                privileges=operation.privileges, install_parameters=raw,
            )  # fmt: skip
            steps.append(_step(profile, ram, (apdu,), "INSTALL [for install and make selectable]"))
        return ScriptPlan(profile, tuple(steps), block)
    if isinstance(operation, Delete):
        apdu = gp.delete(operation.aid, related_objects=operation.related_objects)
        return ScriptPlan(profile, (_step(profile, ram, (apdu,), "DELETE"),))
    if isinstance(operation, Audit):
        apdu = gp.get_status(operation.p1, aid=operation.aid, tlv_format=operation.tlv_format)
        return ScriptPlan(profile, (_step(profile, ram, (apdu,), "GET STATUS"),))
    if isinstance(operation, AppletCommands):
        if not operation.apdus:
            raise PlanningError("no applet commands to send")
        step = _step(profile, operation.tar, tuple(operation.apdus), "applet commands")
        return ScriptPlan(profile, (step,))
    if isinstance(operation, StoreData):
        block = choose_block_size(max(len(operation.data), 1), profile)
        apdus = [
            gp.store_data(
                operation.data[i : i + block], block=n, p1_format=operation.p1_format,
                last=i + block >= len(operation.data),
            )[0]
            for n, i in enumerate(range(0, max(len(operation.data), 1), block))
        ]  # fmt: skip
        steps = tuple(
            _step(profile, operation.tar, (a,), f"STORE DATA block {n + 1}/{len(apdus)}")
            for n, a in enumerate(apdus)
        )
        return ScriptPlan(profile, steps, block)
    raise PlanningError(f"unknown operation {type(operation).__name__}")


@dataclass(frozen=True)
class SecuredMessage:
    """One secured packet of a plan and the TP-UD of each SMS that carries it."""

    step: PlannedPacket
    cntr: int
    packet: bytes
    user_data: tuple[bytes, ...]


def secure_plan(
    script: ScriptPlan,
    keys: KeySet,
    allocate_counter: Callable[[], int],
    *,
    reference: Callable[[int], int] | None = None,
) -> list[SecuredMessage]:
    """Secure every packet of a plan, each with its own counter from `allocate_counter()`.

    `reference(cntr)` gives the concatenation reference of a multi-SMS packet; by default the
    counter's low 8 (or 16) bits, so concurrent packets to one card do not share one.
    """
    profile = script.profile
    mask = 0xFFFF if profile.concat_ref16 else 0xFF
    out = []
    for step in script.steps:
        cntr = allocate_counter()
        packet = encode_command(
            SecuredCommandPacket(profile.spi, profile.kic, profile.kid, step.tar, cntr, step.data),
            keys.kic_key,
            keys.kid_key,
            cmac_length=profile.cmac_length,
        )
        if len(packet) != step.length:
            raise PlanningError(
                f"{step.description}: planned {step.length} octets, got {len(packet)}"
            )
        ref = (reference(cntr) if reference else cntr) & mask
        user_data = segment_packet(packet, reference=ref, ref16=profile.concat_ref16)
        out.append(SecuredMessage(step, cntr, packet, tuple(user_data)))
    return out
