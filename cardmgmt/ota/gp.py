"""GlobalPlatform card content management commands sent over SCP80 (GP Card Specification
v2.3 11.x; ETSI TS 102 226 8 for the UICC install parameters).

Commands use CLA 80 and end with Le 00 (case 4), as sent in compact scripts; SCP80 protects
them, so no SCP02/03 session is needed (TS 102 226 8.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import FormatError
from .rapdu import build_apdu
from .tlv import lv, parse_tlvs, tlv

CLA_GP = 0x80
INS_INSTALL = 0xE6
INS_LOAD = 0xE8
INS_DELETE = 0xE4
INS_GET_STATUS = 0xF2
INS_STORE_DATA = 0xE2

INSTALL_FOR_LOAD = 0x02
INSTALL_FOR_INSTALL = 0x04
INSTALL_FOR_MAKE_SELECTABLE = 0x08

GET_STATUS_ISD = 0x80
GET_STATUS_APPS = 0x40  # applications and security domains
GET_STATUS_ELFS = 0x20
GET_STATUS_ELFS_AND_MODULES = 0x10


def _aid(aid: bytes, what: str, *, empty: bool = False) -> bytes:
    if not (5 <= len(aid) <= 16 or (empty and not aid)):
        raise FormatError(f"{what} must be 5 to 16 octets, got {len(aid)}")
    return aid


def install_for_load(
    load_file_aid: bytes,
    security_domain_aid: bytes = b"",
    *,
    load_file_hash: bytes = b"",
    load_parameters: bytes = b"",
    token: bytes = b"",
    non_volatile_code_size: int | None = None,
) -> bytes:
    """INSTALL [for load] `80 E6 02 00` (GP 11.5.2.3.1).

    `non_volatile_code_size` adds the system parameter `EF 04 C6 02 size` unless
    `load_parameters` are given verbatim.
    """
    if non_volatile_code_size is not None and not load_parameters:
        load_parameters = tlv(0xEF, tlv(0xC6, non_volatile_code_size.to_bytes(2, "big")))
    data = (
        lv(_aid(load_file_aid, "load file AID"))
        + lv(_aid(security_domain_aid, "security domain AID", empty=True))
        + lv(load_file_hash)
        + lv(load_parameters)
        + lv(token)
    )
    return build_apdu(CLA_GP, INS_INSTALL, INSTALL_FOR_LOAD, 0x00, data, le=0)


def load_blocks(load_file_data_block: bytes, block_size: int) -> list[bytes]:
    """LOAD commands `80 E8 P1 P2` carrying consecutive slices (GP 11.6): P1 80 on the last
    block, P2 the block number."""
    if not 1 <= block_size <= 255:
        raise FormatError(f"LOAD block size {block_size} must be 1 to 255")
    blocks = [
        load_file_data_block[i : i + block_size]
        for i in range(0, len(load_file_data_block), block_size)
    ]
    if len(blocks) > 256:
        raise FormatError(f"{len(blocks)} LOAD blocks exceed the 256 block numbers of P2")
    last = len(blocks) - 1
    return [
        build_apdu(CLA_GP, INS_LOAD, 0x80 if n == last else 0x00, n, block, le=0)
        for n, block in enumerate(blocks)
    ]


def install_for_install(
    load_file_aid: bytes,
    module_aid: bytes,
    instance_aid: bytes,
    *,
    privileges: bytes = b"\x00",
    install_parameters: bytes = b"\xc9\x00",
    token: bytes = b"",
    make_selectable: bool = True,
) -> bytes:
    """INSTALL [for install (and make selectable)] `80 E6 0C 00` (GP 11.5.2.3.2)."""
    if len(privileges) not in (1, 3):
        raise FormatError(f"privileges must be 1 or 3 octets, got {len(privileges)}")
    p1 = INSTALL_FOR_INSTALL | (INSTALL_FOR_MAKE_SELECTABLE if make_selectable else 0)
    data = (
        lv(_aid(load_file_aid, "load file AID"))
        + lv(_aid(module_aid, "module (class) AID"))
        + lv(_aid(instance_aid, "instance AID"))
        + lv(privileges)
        + lv(install_parameters)
        + lv(token)
    )
    return build_apdu(CLA_GP, INS_INSTALL, p1, 0x00, data, le=0)


def delete(aid: bytes, *, related_objects: bool = False) -> bytes:
    """DELETE `80 E4 00 P2` with `4F len AID`; P2 80 also deletes related objects (GP 11.2)."""
    return build_apdu(
        CLA_GP, INS_DELETE, 0x00, 0x80 if related_objects else 0x00,
        tlv(0x4F, _aid(aid, "AID")), le=0,
    )  # fmt: skip


def get_status(
    p1: int = GET_STATUS_APPS, *, aid: bytes = b"", tlv_format: bool = True, next_: bool = False
) -> bytes:
    """GET STATUS `80 F2 P1 P2` with `4F len AID` as search criterion (GP 11.4).

    P2 b2 selects the TLV (E3) format, b1 asks for the next occurrences after SW 6310.
    """
    if p1 not in (GET_STATUS_ISD, GET_STATUS_APPS, GET_STATUS_ELFS, GET_STATUS_ELFS_AND_MODULES):
        raise FormatError(f"GET STATUS P1 {p1:02X} is none of 80, 40, 20, 10")
    p2 = (0x02 if tlv_format else 0x00) | (0x01 if next_ else 0x00)
    return build_apdu(CLA_GP, INS_GET_STATUS, p1, p2, tlv(0x4F, aid), le=0)


def store_data(
    data: bytes, *, block: int = 0, last: bool = True, p1_format: int = 0x00
) -> list[bytes]:
    """STORE DATA `80 E2 P1 P2` (GP 11.11): P1 b8 last block, b5-b4 format (00 no information,
    08 DGI, 10 BER-TLV) from `p1_format`; P2 the block number. Data over 255 octets is split."""
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        number = block + i
        if number > 255:
            raise FormatError("STORE DATA block number exceeds 255")
        p1 = p1_format | (0x80 if last and i == len(chunks) - 1 else 0)
        out.append(build_apdu(CLA_GP, INS_STORE_DATA, p1, number, chunk, le=0))
    return out


# --- Install parameters (GP 11.5.2.3.7; TS 102 226 8.2.1.3) ---------------------------------


@dataclass(frozen=True)
class ToolkitParams:
    """UICC toolkit parameters (tag 80 in EA, TS 102 226 8.2.1.3.2.1) or, with `access_domain`
    set, SIM toolkit parameters (tag CA in EF, TS 102 226 8.2.1.3.2.2 / TS 43.019).

    `msl` is the value of the minimum security level LV (`01 <min SPI1>`, or empty) and `tars`
    its TAR list; `None` leaves a trailing field out, as some cards' parameters do.
    """

    priority: int = 0x01
    max_timers: int = 0
    max_menu_text_length: int = 0
    menu_entries: tuple[tuple[int, int], ...] = ()  # (position, identifier)
    max_channels: int = 0
    msl: bytes | None = b""
    tars: tuple[bytes, ...] | None = ()
    max_services: int | None = 0  # UICC toolkit only
    access_domain: bytes | None = None  # SIM toolkit (CA) only

    @property
    def min_spi1(self) -> int | None:
        """The minimum SPI1 when the MSL is `01 xx`."""
        if self.msl and len(self.msl) == 2 and self.msl[0] == 0x01:
            return self.msl[1]
        return None

    def encode(self) -> bytes:
        out = b""
        if self.access_domain is not None:
            out += lv(self.access_domain)
        out += bytes((self.priority, self.max_timers, self.max_menu_text_length))
        out += bytes((len(self.menu_entries),))
        out += b"".join(bytes(entry) for entry in self.menu_entries)
        out += bytes((self.max_channels,))
        if self.msl is None:
            return out
        out += lv(self.msl)
        if self.tars is None:
            return out
        if any(len(t) != 3 for t in self.tars):
            raise FormatError("every TAR must be 3 octets")
        out += lv(b"".join(self.tars))
        if self.max_services is not None and self.access_domain is None:
            out += bytes((self.max_services,))
        return out


def parse_toolkit_params(data: bytes, *, sim: bool = False) -> ToolkitParams:
    """Read UICC toolkit parameters, or SIM toolkit parameters with `sim=True` (CA layout)."""
    r = _Reader(data, "SIM toolkit parameters" if sim else "UICC toolkit parameters")
    access = r.lv() if sim else None
    priority, timers, text_len, count = r.take(4)
    menu = tuple((r.byte(), r.byte()) for _ in range(count))
    channels = r.byte()
    msl = r.lv() if r.more() else None
    tars_raw = r.lv() if r.more() else None
    if tars_raw is not None and len(tars_raw) % 3:
        raise FormatError(f"{r.what}: TAR list of {len(tars_raw)} octets is not a multiple of 3")
    tars = (
        None if tars_raw is None else tuple(tars_raw[i : i + 3] for i in range(0, len(tars_raw), 3))
    )
    services = r.byte() if not sim and r.more() else None
    r.end()
    return ToolkitParams(
        priority, timers, text_len, menu, channels, msl, tars,
        services if not sim else None, access,
    )  # fmt: skip


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def more(self) -> bool:
        return self.pos < len(self.data)

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise FormatError(f"{self.what} end after {self.pos} octets, {n} more expected")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def lv(self) -> bytes:
        return self.take(self.byte())

    def end(self) -> None:
        if self.more():
            raise FormatError(
                f"{self.what}: {len(self.data) - self.pos} unexpected trailing octets"
            )


@dataclass(frozen=True)
class InstallParams:
    """Install parameters for INSTALL [for install] (GP 11.5.2.3.7, TS 102 226 8.2.1).

    Encoded as `C9 app-params`, then `EF { C8 non-volatile, C7 volatile, CA SIM toolkit }` when
    any is set, then `EA { 80 UICC toolkit, 81 UICC access, 82 admin access }` when any is set.
    C8 is written before C7 as in the example that real cards accept.
    """

    application_parameters: bytes = b""
    volatile_quota: int | None = None
    non_volatile_quota: int | None = None
    sim_toolkit: ToolkitParams | None = None
    uicc_toolkit: ToolkitParams | None = None
    uicc_access: bytes | None = None
    admin_access: bytes | None = None
    other_ef: tuple[tuple[int, bytes], ...] = field(default=())  # unknown EF TLVs, kept as is

    def encode(self) -> bytes:
        out = tlv(0xC9, self.application_parameters)
        ef = b""
        if self.non_volatile_quota is not None:
            ef += tlv(0xC8, self.non_volatile_quota.to_bytes(2, "big"))
        if self.volatile_quota is not None:
            ef += tlv(0xC7, self.volatile_quota.to_bytes(2, "big"))
        if self.sim_toolkit is not None:
            ef += tlv(0xCA, self.sim_toolkit.encode())
        ef += b"".join(tlv(t, v) for t, v in self.other_ef)
        if ef:
            out += tlv(0xEF, ef)
        ea = b""
        if self.uicc_toolkit is not None:
            ea += tlv(0x80, self.uicc_toolkit.encode())
        if self.uicc_access is not None:
            ea += tlv(0x81, self.uicc_access)
        if self.admin_access is not None:
            ea += tlv(0x82, self.admin_access)
        if ea:
            out += tlv(0xEA, ea)
        return out


def _quota(value: bytes, tag: int) -> int:
    if len(value) not in (2, 4):
        raise FormatError(f"install parameters: quota {tag:02X} must be 2 or 4 octets")
    return int.from_bytes(value, "big")


def parse_install_params(data: bytes) -> InstallParams:
    """Read install parameters back (what a card does with INSTALL [for install] data)."""
    top = parse_tlvs(data, what="install parameters")
    tags = [t for t, _ in top]
    if 0xC9 not in tags:
        raise FormatError("install parameters have no application parameters (C9)")
    if len(set(tags)) != len(tags):
        raise FormatError("install parameters repeat a tag")
    values = dict(top)
    unknown = set(values) - {0xC9, 0xEF, 0xEA}
    if unknown:
        raise FormatError(f"install parameters: unexpected tag {min(unknown):02X}")
    volatile = non_volatile = None
    sim = uicc = uicc_access = admin_access = None
    other: list[tuple[int, bytes]] = []
    for tag, value in parse_tlvs(values.get(0xEF, b""), what="system parameters (EF)"):
        if tag == 0xC7:
            volatile = _quota(value, tag)
        elif tag == 0xC8:
            non_volatile = _quota(value, tag)
        elif tag == 0xCA:
            sim = parse_toolkit_params(value, sim=True)
        else:
            other.append((tag, value))
    for tag, value in parse_tlvs(values.get(0xEA, b""), what="UICC parameters (EA)"):
        if tag == 0x80:
            uicc = parse_toolkit_params(value)
        elif tag == 0x81:
            uicc_access = value
        elif tag == 0x82:
            admin_access = value
        else:
            raise FormatError(f"UICC parameters (EA): unexpected tag {tag:02X}")
    return InstallParams(
        values[0xC9], volatile, non_volatile, sim, uicc, uicc_access, admin_access, tuple(other)
    )


# --- GET STATUS responses (GP 11.4.3) --------------------------------------------------------


@dataclass(frozen=True)
class RegistryEntry:
    """One GP registry entry from a GET STATUS response."""

    aid: bytes
    lifecycle: int
    privileges: bytes = b""
    load_file_aid: bytes | None = None  # C4 (TLV format)
    version: bytes | None = None  # CE (TLV format)
    module_aids: tuple[bytes, ...] = ()  # 84 (TLV) or the module list (legacy, P1 10)
    security_domain_aid: bytes | None = None  # CC (TLV format)


def parse_get_status(
    data: bytes, p1: int = GET_STATUS_APPS, *, tlv_format: bool = True
) -> list[RegistryEntry]:
    """Parse GET STATUS response data in the TLV (E3 templates) or the legacy format."""
    if tlv_format:
        return list(_status_tlv(data))
    return list(_status_legacy(data, p1))


def _status_tlv(data: bytes) -> Iterator[RegistryEntry]:
    for tag, value in parse_tlvs(data, what="GET STATUS response"):
        if tag != 0xE3:
            raise FormatError(f"GET STATUS response: expected template E3, got {tag:02X}")
        fields: dict[int, bytes] = {}
        modules = []
        for t, v in parse_tlvs(value, what="GET STATUS entry (E3)"):
            if t == 0x84:
                modules.append(v)
            else:
                fields.setdefault(t, v)
        if 0x4F not in fields:
            raise FormatError("GET STATUS entry (E3) without an AID (4F)")
        life = fields.get(0x9F70, b"")
        if len(life) not in (1, 2):
            raise FormatError("GET STATUS entry (E3) without a life cycle state (9F70)")
        yield RegistryEntry(
            fields[0x4F], life[0], fields.get(0xC5, b""), fields.get(0xC4),
            fields.get(0xCE), tuple(modules), fields.get(0xCC),
        )  # fmt: skip


def _status_legacy(data: bytes, p1: int) -> Iterator[RegistryEntry]:
    r = _Reader(data, "GET STATUS response")
    while r.more():
        aid = r.lv()
        lifecycle, privileges = r.take(2)
        modules: tuple[bytes, ...] = ()
        if p1 == GET_STATUS_ELFS_AND_MODULES:
            modules = tuple(r.lv() for _ in range(r.byte()))
        yield RegistryEntry(aid, lifecycle, bytes((privileges,)), module_aids=modules)
