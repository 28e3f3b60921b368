"""The sync applet's OTA interface: what the portal sends to it and what it tells the handset.

Shared by both sides: the portal builds the commands with the `*_apdu` functions, the virtual
card (`handset`) parses them with `parse_applet_apdu` / `split_applet_script`, and the proactive
command the applet issues to its handset is `encode_sync_request` / `decode_sync_request`.
The byte-level codings, with worked examples, are in docs/applet-commands.md.

The applet is addressed by its toolkit TAR (`TAR`, "SYN"), registered by the install parameters
(`install_parameters()`). Its secured data is a compact remote-APDU script (TS 102 226 5.1) of:

- STORE  `80 E2 P1 P2 Lc record-block 00`   P1 b8 = last block, P2 = block number (00, 01, ...)
- READ   `80 CA 00 E0 00`                   summary of the stored record (`RecordSummary`)
         `80 CA 01 nn 00`                   octets nn*96 .. nn*96+95 of the stored record
- TRIGGER `80 5A 00 00 Lc A0 L {80 01 mode} {81 L campaign} 00`   "synchronize now"

The parameter record itself is opaque here (its BER-TLV content is `sync.syncml.paramrecord`'s
business); the applet stores it verbatim. Pure code: no Django, every failure an `OtaError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from .errors import FormatError, OtaError
from .gp import InstallParams, ToolkitParams
from .rapdu import build_apdu, compact_script, split_compact_script
from .tlv import parse_template, parse_tlvs, tlv

# --- Identifiers -------------------------------------------------------------------------------

TAR = bytes.fromhex("53594E")  # "SYN": the applet's toolkit TAR
PACKAGE_AID = bytes.fromhex("A0000005591010")  # load file (package) AID
APPLET_AID = bytes.fromhex("A000000559101001")  # module (class) AID
INSTANCE_AID = APPLET_AID  # default instance AID
DEFAULT_MSL = 0x12  # minimum SPI1: cryptographic checksum + counter higher

# --- Command codings ---------------------------------------------------------------------------

CLA = 0x80
INS_STORE = 0xE2  # STORE DATA (GP 11.11 layout)
INS_READ = 0xCA  # GET DATA
INS_TRIGGER = 0x5A  # applet-specific: synchronize now

READ_SUMMARY = (0x00, 0xE0)  # P1 P2 of READ for the summary (data object E0)
READ_CHUNK_P1 = 0x01  # P1 of READ for a record chunk, P2 = chunk number
READ_CHUNK_SIZE = 96  # octets per chunk: one chunk fits a ciphered PoR in one SMS

STORE_LAST_BLOCK = 0x80
MAX_STORE_BLOCK = 255
MAX_RECORD_LENGTH = 4096  # the applet's record space (same as sync.syncml.paramrecord.MAX_RECORD)
MAX_CAMPAIGN_REF = 16
SUMMARY_HEAD_LENGTH = 32
MAX_MODE = 10  # SyncML alert codes 200..210

# For `split_compact_script`: which applet instructions carry data (case 4, Le follows) and
# which have P3 = Le (case 2).
CASE4_INS = frozenset({INS_STORE, INS_TRIGGER})
CASE2_INS = frozenset({INS_READ})

TAG_TRIGGER = 0xA0
TAG_MODE = 0x80
TAG_CAMPAIGN = 0x81

# Status words the applet answers (ISO/IEC 7816-4 5.6).
SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_DATA = 0x6A80
SW_NOT_ENOUGH_MEMORY = 0x6A84
SW_WRONG_P1P2 = 0x6A86
SW_NOT_FOUND = 0x6A88
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00


class SyncMode(IntEnum):
    """The mode override of TRIGGER: a SyncML alert code (OMA DS Protocol 1.2 §10) minus 200."""

    TWO_WAY = 0
    SLOW = 1
    ONE_WAY_FROM_CLIENT = 2
    REFRESH_FROM_CLIENT = 3
    ONE_WAY_FROM_SERVER = 4
    REFRESH_FROM_SERVER = 5

    @property
    def alert_code(self) -> int:
        return 200 + self.value


class TriggerReason(IntEnum):
    """Why the applet asked its handset to synchronize (DESIGN.md section 1, step 3)."""

    OTA = 0x00
    TIMER = 0x01
    IMEI_CHANGE = 0x02
    MENU = 0x03


class AppletError(FormatError):
    """An applet command the applet refuses; `sw` is the status word it answers."""

    def __init__(self, message: str, sw: int) -> None:
        super().__init__(message)
        self.sw = sw


# --- Portal side: building the commands --------------------------------------------------------


def store_record_apdus(record: bytes, block_size: int = MAX_STORE_BLOCK) -> list[bytes]:
    """STORE commands carrying the record in blocks of at most `block_size` octets.

    `80 E2 P1 P2 Lc block 00`: P2 counts the blocks from 00, P1 is 80 on the last one, 00 before.
    These are the same APDUs as `gp.store_data` / the planner's `StoreData(TAR, record)`.
    """
    if not record:
        raise FormatError("the parameter record is empty")
    if len(record) > MAX_RECORD_LENGTH:
        raise FormatError(
            f"parameter record of {len(record)} octets exceeds the applet's {MAX_RECORD_LENGTH}"
        )
    if not 1 <= block_size <= MAX_STORE_BLOCK:
        raise FormatError(f"STORE block size {block_size} must be 1 to {MAX_STORE_BLOCK}")
    blocks = [record[i : i + block_size] for i in range(0, len(record), block_size)]
    if len(blocks) > 256:
        raise FormatError(f"{len(blocks)} STORE blocks exceed the 256 block numbers of P2")
    last = len(blocks) - 1
    return [
        build_apdu(CLA, INS_STORE, STORE_LAST_BLOCK if n == last else 0x00, n, block, le=0)
        for n, block in enumerate(blocks)
    ]


def read_summary_apdu() -> bytes:
    """READ of the record summary: `80 CA 00 E0 00`; the answer parses with `parse_summary`."""
    return bytes((CLA, INS_READ, *READ_SUMMARY, 0x00))


def read_chunk_apdu(chunk: int) -> bytes:
    """READ of record octets chunk*96 .. chunk*96+95: `80 CA 01 nn 00`."""
    if not 0 <= chunk <= 0xFF:
        raise FormatError(f"chunk number {chunk} must be 0 to 255")
    return bytes((CLA, INS_READ, READ_CHUNK_P1, chunk, 0x00))


def trigger_data(mode: int | None = None, campaign: bytes | None = None) -> bytes:
    """The TRIGGER data field: `A0 L [80 01 mode] [81 L campaign]` (A0 00 without options)."""
    body = b""
    if mode is not None:
        if not 0 <= int(mode) <= MAX_MODE:
            raise FormatError(f"mode override {mode} is not a SyncML alert code 200..210 - 200")
        body += tlv(TAG_MODE, bytes((int(mode),)))
    if campaign:
        if len(campaign) > MAX_CAMPAIGN_REF:
            raise FormatError(
                f"campaign reference of {len(campaign)} octets exceeds {MAX_CAMPAIGN_REF}"
            )
        body += tlv(TAG_CAMPAIGN, campaign)
    return tlv(TAG_TRIGGER, body)


def trigger_apdu(mode: int | None = None, campaign: bytes | str | None = None) -> bytes:
    """TRIGGER "synchronize now": `80 5A 00 00 Lc A0 L {...} 00`.

    `mode` is a `SyncMode` (alert code - 200) or None for the record's own modes; `campaign` an
    optional reference of up to 16 octets (a str is encoded as UTF-8).
    """
    if isinstance(campaign, str):
        campaign = campaign.encode()
    return build_apdu(CLA, INS_TRIGGER, 0x00, 0x00, trigger_data(mode, campaign), le=0)


def applet_script(apdus: Iterable[bytes]) -> bytes:
    """The secured data of one packet to the applet's TAR: the commands back to back."""
    script = compact_script(apdus)
    if not script:
        raise FormatError("no applet commands")
    return script


def install_parameters(
    tar: bytes = TAR,
    *,
    msl: int | None = DEFAULT_MSL,
    non_volatile_quota: int | None = None,
    application_parameters: bytes = b"",
) -> bytes:
    """Install parameters registering the applet's toolkit TAR (`C9 .. EA { 80 toolkit }`).

    The UICC toolkit parameters carry the minimum security level `01 msl` and the TAR list
    (TS 102 226 8.2.1.3.2.1); `non_volatile_quota` adds `EF { C8 quota }`.
    """
    if len(tar) != 3:
        raise FormatError(f"TAR must be 3 octets, got {len(tar)}")
    toolkit = ToolkitParams(msl=b"" if msl is None else bytes((0x01, msl)), tars=(tar,))
    return InstallParams(
        application_parameters=application_parameters,
        non_volatile_quota=non_volatile_quota,
        uicc_toolkit=toolkit,
    ).encode()


# --- Card side: reading the commands -----------------------------------------------------------


@dataclass(frozen=True)
class StoreBlock:
    """STORE: one block of the parameter record."""

    block: int
    last: bool
    data: bytes


@dataclass(frozen=True)
class ReadSummary:
    """READ of the record summary."""


@dataclass(frozen=True)
class ReadChunk:
    """READ of one 96-octet chunk of the stored record."""

    chunk: int


@dataclass(frozen=True)
class Trigger:
    """TRIGGER: synchronize now, with an optional mode override and campaign reference."""

    mode: int | None = None
    campaign: bytes = b""


AppletCommand = StoreBlock | ReadSummary | ReadChunk | Trigger


def split_applet_script(script: bytes) -> list[bytes]:
    """Cut a compact script to the applet into its C-APDUs (READ is case 2, the others case 4)."""
    if not script:
        raise AppletError("empty applet script", SW_WRONG_LENGTH)
    try:
        return split_compact_script(script, case4_ins=CASE4_INS, case2_ins=CASE2_INS)
    except AppletError:
        raise
    except OtaError as exc:
        raise AppletError(f"applet script: {exc}", SW_WRONG_LENGTH) from None


def _body(apdu: bytes, case2: bool) -> tuple[bytes, bool]:
    """(data, whether the form was right) of a short C-APDU."""
    if len(apdu) < 4:
        raise AppletError(f"C-APDU of {len(apdu)} octets is shorter than a header", SW_WRONG_LENGTH)
    if case2:
        if len(apdu) != 5:
            raise AppletError("READ takes no data: CLA INS P1 P2 Le", SW_WRONG_LENGTH)
        return b"", True
    if len(apdu) < 6:
        raise AppletError("command needs data: CLA INS P1 P2 Lc data [Le]", SW_WRONG_LENGTH)
    lc = apdu[4]
    if lc == 0 or len(apdu) not in (5 + lc, 6 + lc):
        raise AppletError(
            f"Lc {lc} does not match the {len(apdu) - 5} octets after it", SW_WRONG_LENGTH
        )
    return apdu[5 : 5 + lc], True


def parse_applet_apdu(apdu: bytes) -> AppletCommand:
    """What one C-APDU asks the applet; raises `AppletError` (with the SW to answer)."""
    if len(apdu) < 4:
        raise AppletError(f"C-APDU of {len(apdu)} octets is shorter than a header", SW_WRONG_LENGTH)
    cla, ins, p1, p2 = apdu[:4]
    if cla != CLA:
        raise AppletError(f"class {cla:02X} is not the applet's {CLA:02X}", SW_CLA_NOT_SUPPORTED)
    if ins == INS_STORE:
        data, _ = _body(apdu, case2=False)
        if p1 & 0x7F:
            raise AppletError(f"STORE P1 {p1:02X}: only b8 (last block) may be set", SW_WRONG_P1P2)
        return StoreBlock(p2, bool(p1 & STORE_LAST_BLOCK), data)
    if ins == INS_READ:
        _body(apdu, case2=True)
        if (p1, p2) == READ_SUMMARY:
            return ReadSummary()
        if p1 == READ_CHUNK_P1:
            return ReadChunk(p2)
        raise AppletError(f"READ P1 P2 {p1:02X}{p2:02X} is neither 00E0 nor 01nn", SW_WRONG_P1P2)
    if ins == INS_TRIGGER:
        data, _ = _body(apdu, case2=False)
        if p1 or p2:
            raise AppletError(f"TRIGGER P1 P2 {p1:02X}{p2:02X} must be 0000", SW_WRONG_P1P2)
        return parse_trigger_data(data)
    raise AppletError(f"instruction {ins:02X} is not one of the applet's", SW_INS_NOT_SUPPORTED)


def parse_trigger_data(data: bytes) -> Trigger:
    """Read `A0 L [80 01 mode] [81 L campaign]`; unknown or repeated tags are refused."""
    try:
        _, body = parse_template(data, (TAG_TRIGGER,), what="TRIGGER data")
        items = parse_tlvs(body, what="TRIGGER data")
    except OtaError as exc:
        raise AppletError(str(exc), SW_WRONG_DATA) from None
    mode: int | None = None
    campaign = b""
    seen: set[int] = set()
    for tag, value in items:
        if tag in seen:
            raise AppletError(f"TRIGGER data repeats tag {tag:02X}", SW_WRONG_DATA)
        seen.add(tag)
        if tag == TAG_MODE:
            if len(value) != 1 or value[0] > MAX_MODE:
                raise AppletError(
                    f"TRIGGER mode {value.hex().upper()} is not one octet 00..0A", SW_WRONG_DATA
                )
            mode = value[0]
        elif tag == TAG_CAMPAIGN:
            if not 1 <= len(value) <= MAX_CAMPAIGN_REF:
                raise AppletError(
                    f"campaign reference of {len(value)} octets is not 1..16", SW_WRONG_DATA
                )
            campaign = value
        else:
            raise AppletError(f"TRIGGER data: unexpected tag {tag:02X}", SW_WRONG_DATA)
    return Trigger(mode, campaign)


# --- The record summary (answer to READ 00 E0) --------------------------------------------------


class RecordState(IntEnum):
    EMPTY = 0x00  # nothing stored yet
    STORED = 0x01  # a complete record is stored
    UPLOADING = 0x02  # blocks of a new record arrived, its last block not yet


@dataclass(frozen=True)
class RecordSummary:
    """What READ 00 E0 answers, and what the portal compares with the record it pushed.

    Coded `E0 L { 80 01 state, 81 02 length, 82 04 CRC-32, 83 02 triggers, [84 head],
    [85 01 next block] }`. Length, CRC-32 (zlib / ISO 3309) and head (the first 32 octets,
    where the record's version field sits) describe the last *complete* record; `next_block`
    is present while an upload is in progress.
    """

    state: RecordState
    length: int = 0
    crc32: int = 0
    triggers: int = 0
    head: bytes = b""
    next_block: int | None = None

    @classmethod
    def of(cls, record: bytes, *, triggers: int = 0) -> RecordSummary:
        """The summary of a stored record (what the portal expects after pushing it)."""
        if not record:
            return cls(RecordState.EMPTY, triggers=triggers)
        return cls(
            RecordState.STORED,
            len(record),
            zlib.crc32(record),
            triggers,
            record[:SUMMARY_HEAD_LENGTH],
        )

    def matches(self, record: bytes) -> bool:
        """Whether the card holds exactly `record` (length, CRC-32 and head agree)."""
        expected = RecordSummary.of(record)
        return (
            self.state in (RecordState.STORED, RecordState.UPLOADING)
            and bool(record)
            and (self.length, self.crc32, self.head)
            == (expected.length, expected.crc32, expected.head)
        )

    def encode(self) -> bytes:
        body = (
            tlv(0x80, bytes((int(self.state),)))
            + tlv(0x81, self.length.to_bytes(2, "big"))
            + tlv(0x82, self.crc32.to_bytes(4, "big"))
            + tlv(0x83, min(self.triggers, 0xFFFF).to_bytes(2, "big"))
        )
        if self.head:
            body += tlv(0x84, self.head[:SUMMARY_HEAD_LENGTH])
        if self.next_block is not None:
            body += tlv(0x85, bytes((self.next_block,)))
        return tlv(0xE0, body)


def parse_summary(data: bytes) -> RecordSummary:
    """Read the answer to READ 00 E0 (the response data of the last command in the PoR)."""
    _, body = parse_template(data, (0xE0,), what="record summary")
    fields: dict[int, bytes] = {}
    for tag, value in parse_tlvs(body, what="record summary"):
        if tag in fields:
            raise FormatError(f"record summary repeats tag {tag:02X}")
        fields[tag] = value
    sizes = {0x80: 1, 0x81: 2, 0x82: 4, 0x83: 2}
    for tag, size in sizes.items():
        if len(fields.get(tag, b"")) != size:
            raise FormatError(f"record summary: tag {tag:02X} missing or not {size} octets")
    unknown = set(fields) - {*sizes, 0x84, 0x85}
    if unknown:
        raise FormatError(f"record summary: unexpected tag {min(unknown):02X}")
    try:
        state = RecordState(fields[0x80][0])
    except ValueError:
        raise FormatError(f"record summary: state {fields[0x80][0]:02X} unknown") from None
    head = fields.get(0x84, b"")
    if len(head) > SUMMARY_HEAD_LENGTH:
        raise FormatError(f"record summary: head of {len(head)} octets exceeds 32")
    nxt = fields.get(0x85)
    if nxt is not None and len(nxt) != 1:
        raise FormatError("record summary: next block (85) must be one octet")
    return RecordSummary(
        state,
        int.from_bytes(fields[0x81], "big"),
        int.from_bytes(fields[0x82], "big"),
        int.from_bytes(fields[0x83], "big"),
        head,
        None if nxt is None else nxt[0],
    )


# --- The proactive command to the handset -------------------------------------------------------

PROACTIVE_COMMAND_TAG = 0xD0
TYPE_SYNC_REQUEST = 0x7E  # private type of command, understood by the project's handsets
TAG_COMMAND_DETAILS = 0x81
TAG_DEVICE_IDENTITIES = 0x82
TAG_SYNC_TEMPLATE = 0xF1
DEVICE_UICC = 0x81
DEVICE_TERMINAL = 0x82


@dataclass(frozen=True)
class SyncRequest:
    """The proactive command "synchronize" the applet issues to its handset.

    `D0 L { 81 03 number 7E 00, 82 02 81 82, F1 L { 80 L record, [81 01 mode],
    [82 L campaign], 83 01 reason } }` (docs/applet-commands.md section 4).
    """

    record: bytes
    mode: int | None = None
    campaign: bytes = b""
    reason: TriggerReason = TriggerReason.OTA
    number: int = 1  # command number of the command details (01..FE)


def encode_sync_request(request: SyncRequest) -> bytes:
    """The proactive command as the terminal FETCHes it (BER-TLV D0)."""
    if not 1 <= request.number <= 0xFE:
        raise FormatError(f"command number {request.number} must be 01..FE")
    if not request.record:
        raise FormatError("a sync request needs a parameter record")
    if request.mode is not None and not 0 <= request.mode <= MAX_MODE:
        raise FormatError(f"mode override {request.mode} is not 0..10")
    if len(request.campaign) > MAX_CAMPAIGN_REF:
        raise FormatError(f"campaign reference exceeds {MAX_CAMPAIGN_REF} octets")
    inner = tlv(0x80, request.record)
    if request.mode is not None:
        inner += tlv(0x81, bytes((request.mode,)))
    if request.campaign:
        inner += tlv(0x82, request.campaign)
    inner += tlv(0x83, bytes((int(request.reason),)))
    body = (
        tlv(TAG_COMMAND_DETAILS, bytes((request.number, TYPE_SYNC_REQUEST, 0x00)))
        + tlv(TAG_DEVICE_IDENTITIES, bytes((DEVICE_UICC, DEVICE_TERMINAL)))
        + tlv(TAG_SYNC_TEMPLATE, inner)
    )
    return tlv(PROACTIVE_COMMAND_TAG, body)


def decode_sync_request(data: bytes) -> SyncRequest:
    """Read the proactive command back (what the virtual handset does after FETCH)."""
    _, body = parse_template(data, (PROACTIVE_COMMAND_TAG,), what="proactive command")
    items = parse_tlvs(body, what="proactive command")
    tags = [tag & 0x7F if tag <= 0xFF else tag for tag, _ in items]  # CR bit is not meaningful
    if len(set(tags)) != len(tags):
        raise FormatError("proactive command repeats a data object")
    values = dict(zip(tags, (v for _, v in items), strict=True))
    details = values.get(TAG_COMMAND_DETAILS & 0x7F)
    if details is None or len(details) != 3:
        raise FormatError("proactive command: command details (81 03) missing or malformed")
    number, kind, _qualifier = details
    if kind != TYPE_SYNC_REQUEST:
        raise FormatError(f"proactive command type {kind:02X} is not SYNC REQUEST (7E)")
    identities = values.get(TAG_DEVICE_IDENTITIES & 0x7F)
    if identities != bytes((DEVICE_UICC, DEVICE_TERMINAL)):
        raise FormatError("proactive command: device identities are not UICC -> terminal")
    template = values.get(TAG_SYNC_TEMPLATE & 0x7F)
    if template is None:
        raise FormatError("proactive command: no sync request template (F1)")
    fields: dict[int, bytes] = {}
    for tag, value in parse_tlvs(template, what="sync request template"):
        if tag in fields:
            raise FormatError(f"sync request template repeats tag {tag:02X}")
        fields[tag] = value
    unknown = set(fields) - {0x80, 0x81, 0x82, 0x83}
    if unknown:
        raise FormatError(f"sync request template: unexpected tag {min(unknown):02X}")
    record = fields.get(0x80, b"")
    if not record:
        raise FormatError("sync request template: no parameter record (80)")
    mode = fields.get(0x81)
    if mode is not None and (len(mode) != 1 or mode[0] > MAX_MODE):
        raise FormatError("sync request template: mode (81) must be one octet 00..0A")
    campaign = fields.get(0x82, b"")
    if len(campaign) > MAX_CAMPAIGN_REF:
        raise FormatError("sync request template: campaign reference over 16 octets")
    reason = fields.get(0x83, b"\x00")
    if len(reason) != 1:
        raise FormatError("sync request template: reason (83) must be one octet")
    try:
        why = TriggerReason(reason[0])
    except ValueError:
        raise FormatError(f"sync request template: reason {reason[0]:02X} unknown") from None
    if not 1 <= number <= 0xFE:
        raise FormatError(f"proactive command number {number:02X} is not 01..FE")
    return SyncRequest(record, None if mode is None else mode[0], campaign, why, number)
