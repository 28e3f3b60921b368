"""PDU codec: round trips for every PDU type, hand-computed bytes, framer, receipts."""

import pytest

from cardmgmt.smpp.dlr import DeliveryReceipt, InboundMessage, parse_receipt
from cardmgmt.smpp.errors import SmppDecodeError, SmppEncodeError, SmppError, SmppFramingError
from cardmgmt.smpp.pdu import (
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARSTREAM,
    ESME_RINVPARLEN,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    PDU_CLASSES,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CommandId,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    MessageState,
    PduFramer,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Unbind,
    UnbindResp,
    decode_pdu,
    receipt_tlvs,
    relative_time,
    status_name,
)

EXAMPLES = [
    BindTransmitter(sequence_number=1, system_id="ota", password="secret", system_type="OTA"),
    BindReceiver(
        sequence_number=2,
        system_id="ota",
        password="secret",
        addr_ton=1,
        addr_npi=1,
        address_range="^44",
    ),
    BindTransceiver(sequence_number=3, system_id="a" * 15, password="b" * 8, system_type="c" * 12),
    BindTransmitterResp(sequence_number=1, system_id="SMSC"),
    BindReceiverResp(sequence_number=2, system_id="SMSC", tlvs={Tag.SC_INTERFACE_VERSION: b"\x34"}),
    BindTransceiverResp(sequence_number=3, system_id="SMSC"),
    Unbind(sequence_number=4),
    UnbindResp(sequence_number=4),
    EnquireLink(sequence_number=0x7FFFFFFF),
    EnquireLinkResp(sequence_number=0x7FFFFFFF),
    GenericNack(sequence_number=9, command_status=ESME_RINVCMDID),
    SubmitSm(
        sequence_number=10,
        source_addr="4000",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="447700900123",
        esm_class=0x40,
        protocol_id=0x7F,
        data_coding=0xF6,
        registered_delivery=1,
        validity_period=relative_time(3600),
        short_message=bytes(range(140)),
    ),
    SubmitSm(sequence_number=11, short_message=b"", tlvs={Tag.MESSAGE_PAYLOAD: b"x" * 1000}),
    SubmitSm(
        sequence_number=12,
        short_message=b"seg",
        tlvs={
            Tag.SAR_MSG_REF_NUM: b"\x01\x02",
            Tag.SAR_TOTAL_SEGMENTS: b"\x02",
            Tag.SAR_SEGMENT_SEQNUM: b"\x01",
        },
    ),
    SubmitSmResp(sequence_number=10, message_id="0123456789abcdef"),
    DeliverSm(
        sequence_number=13,
        source_addr="447700900123",
        destination_addr="4000",
        esm_class=0x04,
        short_message=b"id:abc sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 "
        b"stat:DELIVRD err:000 text:",
        tlvs=receipt_tlvs("abc", MessageState.DELIVERED),
    ),
    DeliverSm(sequence_number=14, esm_class=0x40, short_message=b"\x02\x71\x00" + b"\x00" * 20),
    DeliverSmResp(sequence_number=13),
    DataSm(
        sequence_number=15,
        source_addr="1" * 64,
        destination_addr="2" * 64,
        tlvs={Tag.MESSAGE_PAYLOAD: b"data"},
    ),
    DataSmResp(sequence_number=15, message_id="m1"),
]


@pytest.mark.parametrize("pdu", EXAMPLES, ids=lambda p: f"{p.name}-{p.sequence_number}")
def test_round_trip(pdu):
    data = pdu.encode()
    assert int.from_bytes(data[:4], "big") == len(data)
    again = decode_pdu(data)
    assert again == pdu
    assert type(again) is type(pdu)
    assert again.encode() == data


def test_every_modelled_command_has_an_example():
    assert {type(p) for p in EXAMPLES} == set(PDU_CLASSES.values())


def test_enquire_link_bytes():
    assert EnquireLink(sequence_number=1).encode() == bytes.fromhex(
        "00000010000000150000000000000001"
    )


def test_generic_nack_bytes():
    assert GenericNack(sequence_number=7, command_status=3).encode() == bytes.fromhex(
        "00000010800000000000000300000007"
    )


def test_bind_transceiver_bytes():
    expected = bytes.fromhex(
        "00000020"  # length 16 + 16
        "00000009"  # bind_transceiver
        "00000000"
        "00000001"
        "6f746100"  # system_id "ota"
        "73656372657400"  # password "secret"
        "00"  # system_type ""
        "34"  # interface_version 3.4
        "00"
        "00"  # addr_ton, addr_npi
        "00"  # address_range ""
    )
    pdu = BindTransceiver(sequence_number=1, system_id="ota", password="secret")
    assert pdu.encode() == expected
    assert decode_pdu(expected) == pdu


def test_ota_submit_sm_bytes():
    expected = bytes.fromhex(
        "00000036"  # 16 + 38
        "00000004"  # submit_sm
        "00000000"
        "00000005"
        "00"  # service_type
        "00"
        "01"  # source ton, npi
        "3430303000"  # "4000"
        "01"
        "01"  # dest ton, npi
        "34343737303039303031323300"  # "447700900123"
        "40"  # esm_class UDHI
        "7f"  # protocol_id (U)SIM data download
        "00"  # priority_flag
        "00"  # schedule_delivery_time
        "00"  # validity_period
        "01"  # registered_delivery
        "00"  # replace_if_present_flag
        "f6"  # data_coding 8-bit class 2
        "00"  # sm_default_msg_id
        "05"  # sm_length
        "0203700000"
    )
    pdu = SubmitSm(
        sequence_number=5,
        source_addr_npi=1,
        source_addr="4000",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="447700900123",
        esm_class=0x40,
        protocol_id=0x7F,
        registered_delivery=1,
        data_coding=0xF6,
        short_message=bytes.fromhex("0203700000"),
    )
    assert pdu.encode() == expected
    assert decode_pdu(expected) == pdu


def test_submit_sm_resp_bytes():
    data = bytes.fromhex("0000001480000004000000000000000261626300")
    assert SubmitSmResp(sequence_number=2, message_id="abc").encode() == data
    assert decode_pdu(data).message_id == "abc"


def test_error_response_has_no_body():
    data = SubmitSmResp(sequence_number=2, command_status=ESME_RTHROTTLED, message_id="x").encode()
    assert data == bytes.fromhex("00000010800000040000005800000002")
    pdu = decode_pdu(data)
    assert pdu.command_status == ESME_RTHROTTLED
    assert pdu.message_id == ""


def test_receipt_tlvs_bytes_and_accessors():
    pdu = DeliverSm(
        sequence_number=1,
        esm_class=0x04,
        tlvs=receipt_tlvs("abc", MessageState.UNDELIVERABLE, network_error=(3, 0x0102)),
    )
    data = pdu.encode()
    assert data.endswith(bytes.fromhex("001e000461626300042700010504230003030102"))
    again = decode_pdu(data)
    assert again.receipted_message_id == "abc"
    assert again.message_state == MessageState.UNDELIVERABLE
    assert again.network_error_code == (3, 0x0102)
    assert again.is_delivery_receipt


def test_sar_and_payload_accessors():
    pdu = decode_pdu(EXAMPLES[13].encode())
    assert pdu.sar == (0x0102, 2, 1)
    assert decode_pdu(EXAMPLES[12].encode()).payload == b"x" * 1000
    assert pdu.payload == b"seg"
    assert decode_pdu(EXAMPLES[11].encode()).sar is None


def test_response_builder_keeps_sequence():
    request = SubmitSm(sequence_number=77)
    response = request.response(message_id="m")
    assert isinstance(response, SubmitSmResp)
    assert response.sequence_number == 77
    with pytest.raises(SmppEncodeError):
        GenericNack().response()


@pytest.mark.parametrize(
    "pdu",
    [
        SubmitSm(short_message=b"x" * 255),
        SubmitSm(source_addr="1" * 21),
        SubmitSm(destination_addr="\u20ac"),
        SubmitSm(destination_addr="12\x0034"),
        SubmitSm(esm_class=256),
        SubmitSm(data_coding=-1),
        SubmitSm(validity_period="1h"),
        SubmitSm(short_message="text"),
        BindTransmitter(password="123456789"),
        BindTransmitter(interface_version=0x100),
        EnquireLink(sequence_number=-1),
        SubmitSm(tlvs={0x10000: b""}),
        SubmitSm(tlvs={Tag.MESSAGE_PAYLOAD: "str"}),
    ],
)
def test_encode_rejects_bad_fields(pdu):
    with pytest.raises(SmppEncodeError):
        pdu.encode()


def _header(length, command_id, status=0, seq=1):
    return b"".join(x.to_bytes(4, "big") for x in (length, command_id, status, seq))


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", ESME_RINVCMDLEN),
        (b"\x00" * 15, ESME_RINVCMDLEN),
        (_header(17, CommandId.ENQUIRE_LINK), ESME_RINVCMDLEN),
        (_header(16, 0x00000099, seq=42), ESME_RINVCMDID),
        (_header(16, CommandId.QUERY_SM, seq=42), ESME_RINVCMDID),
        (_header(18, CommandId.SUBMIT_SM) + b"\x00\x00", ESME_RINVCMDLEN),
        # system_id without its NUL within 16 octets
        (_header(16 + 20, CommandId.BIND_TRANSMITTER) + b"a" * 20, ESME_RINVCMDLEN),
        # a TLV header cut short
        (_header(16 + 2, CommandId.ENQUIRE_LINK) + b"\x00\x1e", ESME_RINVOPTPARSTREAM),
        # message_state must be one octet
        (_header(16 + 6, CommandId.UNBIND) + bytes.fromhex("042700020102"), ESME_RINVPARLEN),
    ],
)
def test_decode_rejects_garbage(data, status):
    with pytest.raises(SmppDecodeError) as info:
        decode_pdu(data)
    assert info.value.status == status


def test_decode_rejects_sm_length_beyond_body():
    good = SubmitSm(sequence_number=3, short_message=b"abc").encode()
    bad = good[:-4] + b"\x09" + good[-3:]
    with pytest.raises(SmppDecodeError) as info:
        decode_pdu(bad)
    assert info.value.status == ESME_RINVMSGLEN
    assert info.value.sequence_number == 3
    assert info.value.command_id == CommandId.SUBMIT_SM


def test_framer_partial_and_merged_reads():
    pdus = [p.encode() for p in EXAMPLES]
    stream = b"".join(pdus)
    for chunk in (1, 3, 7, 16, 17, 100, len(stream)):
        framer = PduFramer()
        frames = []
        for i in range(0, len(stream), chunk):
            frames.extend(framer.feed(stream[i : i + chunk]))
        assert frames == pdus
        assert framer.buffered == 0


def test_framer_keeps_remainder():
    framer = PduFramer()
    data = EnquireLink(sequence_number=1).encode()
    assert framer.feed(data + data[:5]) == [data]
    assert framer.buffered == 5
    assert framer.feed(data[5:]) == [data]


@pytest.mark.parametrize("length", [0, 15, 64 * 1024 + 1, 0xFFFFFFFF])
def test_framer_rejects_absurd_lengths(length):
    with pytest.raises(SmppFramingError):
        PduFramer().feed(length.to_bytes(4, "big") + b"\x00" * 12)


def test_status_names():
    assert "ESME_RTHROTTLED" in status_name(0x58)
    assert "ESME_RMSGQFUL" in status_name(ESME_RMSGQFUL)
    assert "ESME_ROK" in status_name(ESME_ROK)
    assert "0x00001234" in status_name(0x1234)


def test_relative_time():
    assert relative_time(3600) == "000000010000000R"
    assert relative_time(2 * 86400 + 61) == "000002000101000R"
    with pytest.raises(SmppEncodeError):
        relative_time(-1)


def test_errors_are_one_family():
    for exc in (SmppDecodeError, SmppEncodeError, SmppFramingError):
        assert issubclass(exc, SmppError)


# --- Delivery receipts -------------------------------------------------------------------------


def test_receipt_format_and_parse():
    from datetime import datetime

    receipt = DeliveryReceipt(
        message_id="2325520000000001",
        stat="UNDELIV",
        err="005",
        dlvrd="000",
        submit_date=datetime(2026, 1, 2, 3, 4),
        done_date=datetime(2026, 1, 2, 3, 5),
        text="hello",
    )
    text = receipt.format()
    assert text == (
        "id:2325520000000001 sub:001 dlvrd:000 submit date:2601020304 done date:2601020305 "
        "stat:UNDELIV err:005 text:hello"
    )
    assert parse_receipt(text.encode()) == receipt
    assert parse_receipt(text).state == MessageState.UNDELIVERABLE


def test_receipt_parse_is_lenient():
    receipt = parse_receipt(
        b"ID:77 SUB:001 DLVRD:001 SUBMIT DATE:260102030405 DONE DATE:xx STAT:delivrd ERR:0"
    )
    assert receipt.message_id == "77"
    assert receipt.state == MessageState.DELIVERED
    assert receipt.submit_date.second == 5
    assert receipt.done_date is None
    assert receipt.text == ""


@pytest.mark.parametrize("text", [b"", b"hello", b"stat:DELIVRD", b"id: stat:DELIVRD"])
def test_receipt_parse_rejects_non_receipts(text):
    with pytest.raises(SmppDecodeError):
        parse_receipt(text)


def test_inbound_message_from_receipt_prefers_tlvs():
    pdu = DeliverSm(
        source_addr="447700900123",
        destination_addr="4000",
        esm_class=0x04,
        short_message=b"id:fromtext sub:001 dlvrd:001 submit date:2601011200 "
        b"done date:2601011201 stat:DELIVRD err:000 text:",
        tlvs=receipt_tlvs("fromtlv", MessageState.EXPIRED),
    )
    message = InboundMessage.from_pdu(decode_pdu(pdu.encode()))
    assert message.is_receipt
    assert message.receipted_message_id == "fromtlv"
    assert message.state == MessageState.EXPIRED
    assert message.receipt.message_id == "fromtext"
    assert not message.delivered


def test_receipt_text_is_read_only_when_asked_for_if_the_tlvs_say_it_all(monkeypatch):
    from cardmgmt.smpp import dlr

    calls = []
    monkeypatch.setattr(
        dlr, "parse_receipt", lambda text: calls.append(text) or parse_receipt(text)
    )
    text = b"id:fromtext sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:UNDELIV err:011 text:"
    pdu = DeliverSm(
        esm_class=0x04, short_message=text, tlvs=receipt_tlvs("fromtlv", MessageState.DELIVERED)
    )
    message = InboundMessage.from_pdu(decode_pdu(pdu.encode()))
    assert (message.receipted_message_id, message.state, calls) == (
        "fromtlv",
        MessageState.DELIVERED,
        [],
    )
    assert message.receipt.err == "011" and message.receipt.stat == "UNDELIV"
    assert message.receipt is message.receipt and calls == [text]  # read once
    # Without the TLVs the text is read at once: it gives the id and the state.
    message = InboundMessage.from_pdu(DeliverSm(esm_class=0x04, short_message=text))
    assert (message.receipted_message_id, message.state) == ("fromtext", MessageState.UNDELIVERABLE)
    assert len(calls) == 2


def test_inbound_message_from_text_only_receipt():
    pdu = DeliverSm(esm_class=0x04, short_message=b"id:42 stat:DELIVRD err:000")
    message = InboundMessage.from_pdu(pdu)
    assert message.receipted_message_id == "42"
    assert message.delivered


def test_inbound_message_mo():
    pdu = DeliverSm(
        source_addr="447700900123",
        esm_class=0x40,
        protocol_id=0x00,
        data_coding=0xF6,
        short_message=b"\x02\x71\x00",
    )
    message = InboundMessage.from_pdu(pdu)
    assert not message.is_receipt
    assert message.payload == b"\x02\x71\x00"
    assert message.receipted_message_id is None
    assert message.state is None
