"""Property-based tests: garbage never escapes the SmppError family, round trips hold."""

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardmgmt.smpp.dlr import InboundMessage, parse_receipt
from cardmgmt.smpp.errors import SmppDecodeError, SmppFramingError
from cardmgmt.smpp.pdu import (
    MAX_PDU_LENGTH,
    PDU_CLASSES,
    DeliverSm,
    Pdu,
    PduFramer,
    SubmitSm,
    decode_pdu,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COMMAND_IDS = [*sorted(PDU_CLASSES), 0x00000003, 0x00000099, 0x80000099]


def _decode_or_smpp_error(data: bytes) -> Pdu | None:
    try:
        pdu = decode_pdu(data)
    except SmppDecodeError:
        return None
    # whatever decoded must encode again without surprises
    assert isinstance(pdu, Pdu)
    if isinstance(pdu, DeliverSm):
        InboundMessage.from_pdu(pdu)
    return pdu


@FUZZ
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes(data):
    _decode_or_smpp_error(data)


@FUZZ
@given(
    st.sampled_from(COMMAND_IDS),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=300),
)
def test_decode_valid_header_random_body(command_id, status, seq, body):
    data = struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body
    _decode_or_smpp_error(data)


def _pdus():
    text = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=20)
    octet = st.integers(0, 255)
    return st.builds(
        SubmitSm,
        sequence_number=st.integers(1, 0x7FFFFFFF),
        service_type=text.map(lambda s: s[:5]),
        source_addr_ton=octet,
        source_addr_npi=octet,
        source_addr=text,
        dest_addr_ton=octet,
        dest_addr_npi=octet,
        destination_addr=text,
        esm_class=octet,
        protocol_id=octet,
        priority_flag=octet,
        registered_delivery=octet,
        data_coding=octet,
        short_message=st.binary(max_size=254),
        tlvs=st.dictionaries(st.integers(0x1400, 0x14FF), st.binary(max_size=40), max_size=3),
    )


@FUZZ
@given(_pdus())
def test_submit_sm_round_trip(pdu):
    assert decode_pdu(pdu.encode()) == pdu


@FUZZ
@given(_pdus(), st.data())
def test_mutated_pdus(pdu, data):
    raw = bytearray(pdu.encode())
    for _ in range(data.draw(st.integers(1, 5))):
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        pos = data.draw(st.integers(0, len(raw) - 1))
        if action == "flip":
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif action == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        elif len(raw) > 1:
            del raw[pos]
    if data.draw(st.booleans()):
        raw[0:4] = len(raw).to_bytes(4, "big")  # keep the length consistent, stress the body
    _decode_or_smpp_error(bytes(raw))


@FUZZ
@given(st.lists(_pdus(), min_size=1, max_size=5), st.lists(st.integers(1, 64), max_size=50))
def test_framer_any_split(pdus, cuts):
    stream = b"".join(p.encode() for p in pdus)
    framer = PduFramer()
    frames = []
    pos = 0
    for cut in cuts:
        frames += framer.feed(stream[pos : pos + cut])
        pos += cut
    frames += framer.feed(stream[pos:])
    assert [decode_pdu(f) for f in frames] == pdus


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_framer_garbage(chunks):
    framer = PduFramer()
    try:
        for chunk in chunks:
            for frame in framer.feed(chunk):
                assert 16 <= len(frame) <= MAX_PDU_LENGTH
                _decode_or_smpp_error(frame)
    except SmppFramingError:
        pass


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_receipt_parser(text):
    try:
        receipt = parse_receipt(text)
    except SmppDecodeError:
        return
    assert receipt.message_id
