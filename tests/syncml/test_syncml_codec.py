"""SyncML model and XML/WBXML codecs on realistic client messages."""

import pytest
from syncml_samples import INIT_12, MAP_11, SYNC_12, VCARD_30

from sync.syncml import (
    Add,
    Alert,
    Chal,
    Cred,
    Delete,
    DevInf,
    Element,
    Get,
    Item,
    Limits,
    Location,
    Map,
    Meta,
    Put,
    Replace,
    Results,
    Status,
    Sync,
    SyncHdr,
    SyncML,
    SyncMLEncodeError,
    SyncMLParseError,
    SyncMLSizeError,
    UnknownCommand,
    parse_message,
    to_wbxml,
    to_xml,
)

SAMPLES = {"init12": INIT_12, "sync12": SYNC_12, "map11": MAP_11}


def as_wbxml_client_sends(xml: bytes):
    """A WBXML client labels its DevInf +wbxml; the codec does the same when it writes WBXML."""
    msg = parse_message(xml)
    for cmd in msg.iter_commands():
        if any(isinstance(i.data, DevInf) for i in getattr(cmd, "items", [])):
            cmd.meta.type = "application/vnd.syncml-devinf+wbxml"
    return msg


@pytest.mark.parametrize("name", SAMPLES)
def test_xml_model_xml_round_trip(name):
    msg = parse_message(SAMPLES[name])
    assert parse_message(to_xml(msg)) == msg


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("string_table", [False, True])
@pytest.mark.parametrize("wbxml_version", [2, 3])
def test_xml_model_wbxml_round_trip(name, string_table, wbxml_version):
    msg = parse_message(SAMPLES[name])
    wb = to_wbxml(msg, string_table=string_table, wbxml_version=wbxml_version)
    assert wb[0] == wbxml_version
    assert parse_message(wb) == as_wbxml_client_sends(SAMPLES[name])
    # and back to XML, unchanged
    assert parse_message(to_xml(parse_message(wb))) == msg


def test_init_message_fields():
    msg = parse_message(INIT_12)
    assert msg.version == "1.2" and msg.final
    hdr = msg.hdr
    assert hdr.session_id == "1764089279" and hdr.msg_id == "1"
    assert hdr.source == Location(loc_uri="imei-0001", loc_name="bob")
    assert hdr.cred.data == "Ym9iOnB3Mg==" and hdr.cred.auth_type == "syncml:auth-basic"
    assert hdr.meta.max_msg_size == 150000 and hdr.meta.max_obj_size == 4000000
    alert, put, get = msg.commands
    assert isinstance(alert, Alert) and alert.data == 200
    assert alert.items[0].meta.anchor.last == "20261125T172759Z"
    assert alert.items[0].meta.anchor.next == "20261125T172812Z"
    assert isinstance(put, Put) and isinstance(put.items[0].data, DevInf)
    dev = put.items[0].data
    assert dev.dev_id == "imei-0001" and dev.support_large_objs and dev.utc
    assert dev.datastores[0].max_guid_size == 64
    assert dev.datastores[0].sync_types == [1, 2, 7]
    assert isinstance(get, Get) and get.items[0].target.loc_uri == "./devinf12"


def test_sync_message_fields():
    msg = parse_message(SYNC_12)
    status_hdr, status_alert, sync = msg.commands
    assert isinstance(status_hdr, Status) and status_hdr.cmd == "SyncHdr" and status_hdr.data == 200
    assert status_alert.items[0].data.tag == "Anchor"  # foreign element kept as Element
    assert isinstance(sync, Sync) and sync.number_of_changes == 3
    replace, delete, add = sync.commands
    assert isinstance(replace, Replace) and replace.items[0].data == VCARD_30
    assert replace.meta.type == "text/vcard"
    assert isinstance(delete, Delete) and delete.items[0].source.loc_uri == "1"
    assert isinstance(add, Add) and add.items[0].more_data and add.meta.size == 21500
    assert add.items[0].data == "BEGIN:VCARD\nVERSION:3.0\nFN:A & B <c>\n"
    assert [c.cmd_id for c in msg.iter_commands()] == ["1", "2", "4", "5", "6", "7"]


def test_map_message_fields():
    msg = parse_message(MAP_11)
    assert msg.version == "1.1"
    m = msg.commands[-1]
    assert isinstance(m, Map)
    assert [(i.target.loc_uri, i.source.loc_uri) for i in m.map_items] == [("9", "4"), ("10", "5")]
    assert msg.commands[1].data == 201


def test_wbxml_header_bytes_12_and_11():
    wb = to_wbxml(parse_message(INIT_12))
    # WBXML 1.2, public id 0x1201, UTF-8, empty string table; SyncML SyncHdr VerDTD STR_I "1.2"
    assert wb[:5] == bytes.fromhex("02a4016a00")
    assert wb[5:13] == bytes.fromhex("6d6c7103") + b"1.2\x00"
    wb11 = to_wbxml(parse_message(MAP_11))
    assert wb11[:5] == bytes.fromhex("029f536a00")  # 0x0FD3


def test_devinf_is_embedded_as_opaque_wbxml_document():
    wb = to_wbxml(parse_message(INIT_12))
    assert b"application/vnd.syncml-devinf+wbxml" in wb
    assert b"devinf+xml" in to_xml(parse_message(wb))
    # OPAQUE (0xC3), mb_u_int32 length, then WBXML 1.2 DevInf 1.2 (public id 0x1203)
    assert bytes.fromhex("02a4036a00") in wb
    assert b"\x0a" not in wb[:5]


def test_item_content_is_opaque_and_metinf_on_page_1():
    msg = parse_message(SYNC_12)
    wb = to_wbxml(msg)
    vcard = VCARD_30.encode()
    assert b"\xc3" + bytes([len(vcard)]) + vcard in wb
    assert b"\x00\x01" in wb  # SWITCH_PAGE to MetInf


def test_string_table_is_used_when_asked():
    msg = parse_message(SYNC_12)
    plain, tabled = to_wbxml(msg), to_wbxml(msg, string_table=True)
    assert plain[4] == 0 and tabled[4] > 0
    assert b"\x83" in tabled and len(tabled) < len(plain)


def test_unknown_elements_and_commands_are_kept():
    xml = INIT_12.replace(
        b"<Final/>",
        b"<Exec><CmdID>9</CmdID><Item><Target><LocURI>x</LocURI></Target></Item></Exec><Final/>",
    ).replace(b"<MsgID>1</MsgID>", b"<MsgID>1</MsgID><Frobnicate>7</Frobnicate>")
    msg = parse_message(xml)
    assert isinstance(msg.commands[-1], UnknownCommand) and msg.commands[-1].cmd_id == "9"
    assert msg.hdr.extra[0].tag == "Frobnicate"
    assert parse_message(to_xml(msg)) == msg
    back = parse_message(to_wbxml(msg))  # the unknown header tag travels as LITERAL
    assert back.hdr == msg.hdr and back.commands[-1] == msg.commands[-1]


def test_server_reply_with_chal_results_and_respuri():
    from sync.syncml.auth import make_chal

    dev = parse_message(INIT_12).commands[1].items[0].data
    reply = SyncML(
        hdr=SyncHdr(
            ver_dtd="1.2",
            ver_proto="SyncML/1.2",
            session_id="1764089279",
            msg_id="1",
            target=Location(loc_uri="imei-0001"),
            source=Location(loc_uri="http://127.0.0.1:9000/sync"),
            resp_uri="http://127.0.0.1:9000/sync?sessionid=abc",
            meta=Meta(max_msg_size=65536),
        ),
        commands=[
            Status(cmd_id="1", msg_ref="1", cmd_ref="0", cmd="SyncHdr", data=401,
                   target_refs=["http://127.0.0.1:9000/sync"], source_refs=["imei-0001"],
                   chal=make_chal("syncml:auth-md5", "Zm9vYmFy")),
            Results(cmd_id="2", msg_ref="1", cmd_ref="3", meta=Meta(type="application/vnd.syncml-devinf+xml"),
                    items=[Item(source=Location(loc_uri="./devinf12"), data=dev)]),
            Alert(cmd_id="3", data=201, items=[Item(target=Location(loc_uri="./addressbook"))]),
        ],
        final=True,
    )  # fmt: skip
    for data in (to_xml(reply), to_wbxml(reply), to_wbxml(reply, string_table=True)):
        back = parse_message(data)
        back.commands[1].meta.type = "application/vnd.syncml-devinf+xml"
        assert back == reply
        assert isinstance(back.commands[0].chal, Chal)
        assert back.commands[0].chal.meta.next_nonce == "Zm9vYmFy"


def test_cdata_and_special_characters_survive():
    body = "a ]]> b & <c> \u00fc\u20ac\U0001f600\r\nnext"
    msg = SyncML(
        hdr=SyncHdr(session_id="1", msg_id="1"),
        commands=[Add(cmd_id="1", items=[Item(source=Location(loc_uri="1"), data=body)])],
    )
    assert parse_message(to_xml(msg)).commands[0].items[0].data == body
    assert parse_message(to_wbxml(msg)).commands[0].items[0].data == body


def test_binary_item_data():
    msg = SyncML(
        hdr=SyncHdr(session_id="1", msg_id="1"),
        commands=[Add(cmd_id="1", items=[Item(data=b"\xff\x00\xfe")])],
    )
    assert parse_message(to_wbxml(msg)).commands[0].items[0].data == b"\xff\x00\xfe"
    with pytest.raises(SyncMLEncodeError, match="base64"):
        to_xml(msg)


def test_cred_in_sync_and_empty_data():
    msg = SyncML(
        hdr=SyncHdr(ver_dtd="1.1", ver_proto="SyncML/1.1", session_id="1", msg_id="1"),
        commands=[
            Sync(cmd_id="1", cred=Cred(data="x"), commands=[Delete(cmd_id="2", sft_del=True, items=[Item(data="")])])
        ],
    )  # fmt: skip
    for data in (to_xml(msg), to_wbxml(msg)):
        assert parse_message(data) == msg


def test_doctype_with_public_id_is_accepted():
    xml = INIT_12.replace(
        b"<SyncML ",
        b'<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN" '
        b'"http://www.openmobilealliance.org/tech/DTD/OMA-TS-SyncML_RepPro_DTD-V1_2.dtd">\n<SyncML ',
    )
    assert parse_message(xml) == parse_message(INIT_12)


def test_parse_from_str():
    assert parse_message(MAP_11) == __import__("sync.syncml").syncml.parse_xml_message(
        MAP_11.decode()
    )


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<SyncML><SyncHdr><VerDTD>&lol3;</VerDTD></SyncHdr><SyncBody/></SyncML>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE SyncML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<SyncML><SyncHdr><VerDTD>&xxe;</VerDTD></SyncHdr><SyncBody/></SyncML>"""

XXE_PARAM = b"""<?xml version="1.0"?>
<!DOCTYPE SyncML SYSTEM "http://127.0.0.1:1/evil.dtd">
<SyncML><SyncHdr><VerDTD>&ent;</VerDTD></SyncHdr><SyncBody/></SyncML>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, XXE, XXE_PARAM], ids=["laughs", "xxe", "ext-dtd"])
def test_entity_attacks_are_rejected(doc):
    with pytest.raises(SyncMLParseError):
        parse_message(doc)


def test_size_limits():
    with pytest.raises(SyncMLSizeError, match="exceeds"):
        parse_message(INIT_12, limits=Limits(max_bytes=100))
    with pytest.raises(SyncMLSizeError, match="deeper"):
        parse_message(INIT_12, limits=Limits(max_depth=5))
    with pytest.raises(SyncMLSizeError, match="elements"):
        parse_message(INIT_12, limits=Limits(max_elements=20))
    wb = to_wbxml(parse_message(INIT_12))
    with pytest.raises(SyncMLSizeError, match="deeper"):
        parse_message(wb, limits=Limits(max_depth=5))
    with pytest.raises(SyncMLSizeError, match="elements"):
        parse_message(wb, limits=Limits(max_elements=20))
    deep = b"<SyncML>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</SyncML>"
    with pytest.raises(SyncMLSizeError):
        parse_message(deep)
    deep_wb = bytes.fromhex("02a4016a00") + b"\x6d" + b"\x6c" * 100_000
    with pytest.raises(SyncMLSizeError):
        parse_message(deep_wb)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "no root|malformed"),
        (b"<Foo/>", "expected <SyncML>"),
        (b"<SyncML><SyncHdr/><SyncBody/></SyncML>", "VerDTD"),
        (b"<SyncML><SyncBody/></SyncML>", "SyncHdr"),
        (INIT_12.replace(b"<Data>200</Data>", b"<Data>two</Data>"), "number"),
        (bytes.fromhex("02a4016a00"), "truncated"),
        (bytes.fromhex("02a4016a056162"), "past the end"),
        (bytes.fromhex("02a4016a006d6c7103312e32"), "not terminated"),
        (bytes.fromhex("02a4016a0001"), "END without"),
        (bytes.fromhex("02ffffffffff7f"), "too long"),
        (bytes.fromhex("02a40163"), "charset"),
        (bytes.fromhex("02a4016a006d8305"), "out of range"),
    ],
)
def test_garbage_gives_clear_errors(data, match):
    with pytest.raises(SyncMLParseError, match=match):
        parse_message(data)


def test_wbxml_literal_entity_and_unknown_tokens():
    # SyncML > SyncHdr > VerDTD "1.2" with an ENTITY, an unknown tag token and a LITERAL tag
    strtbl = b"Zork\x00"
    body = (
        b"\x6d\x6c\x71\x03"
        + b"1."
        + b"\x00\x02\x32\x01"  # "1." + ENTITY '2'
        + b"\x7f\x01"  # unknown token 0x3f with content: kept as Unknown-00-3f
        + b"\x44\x00\x03x\x00\x01"  # LITERAL_C "Zork" with content
        + b"\x01\x6b\x12\x01\x01"  # end SyncHdr, SyncBody(Final), end SyncML
    )
    data = bytes.fromhex("02a4016a") + bytes([len(strtbl)]) + strtbl + body
    msg = parse_message(data)
    assert msg.hdr.ver_dtd == "1.2" and msg.final
    assert [e.tag for e in msg.hdr.extra] == ["Unknown-00-3f", "Zork"]


def test_fpi_public_id_from_string_table():
    strtbl = b"-//SYNCML//DTD SyncML 1.1//EN\x00"
    body = bytes.fromhex("6d6c7103") + b"1.1\x00\x01\x01\x2b\x01"
    data = b"\x02\x00\x00\x6a" + bytes([len(strtbl)]) + strtbl + body
    assert parse_message(data).version == "1.1"


def test_element_helpers():
    e = Element("A", children=[Element("B", text="1"), Element("B", text=b"\xff")])
    assert [x.tag for x in e.iter()] == ["A", "B", "B"]
    assert e.all("B")[1].text_str() == "\ufffd"


# ------------------------------------------------- the two XML parsers (libxml2 and expat)

ROUTE_SAMPLES = [
    INIT_12,
    SYNC_12,
    MAP_11,
    # whitespace between elements, CR kept by a character reference, CDATA next to text,
    # a comment and a processing instruction in the middle of a value, an unknown element
    b'<?xml version="1.0" encoding="UTF-8"?>\n<SyncML xmlns="SYNCML:SYNCML1.2">\n  <SyncHdr>'
    b"<VerDTD>1.2</VerDTD>\n <X-Foo><Bar/> </X-Foo></SyncHdr>\n<SyncBody><Add><Data>a&#13;\r\n"
    b"b<![CDATA[<c>\r\n]]>d<!-- note -->e<?pi x?>f&amp;&lt;</Data></Add> <Final/></SyncBody>"
    b"</SyncML>",
    # mixed content (not SyncML, but both parsers must agree on it)
    b"<SyncML> t1 <SyncHdr>x</SyncHdr> t2 <SyncBody/>t3</SyncML>",
    # another ASCII-compatible encoding, declared
    '<?xml version="1.0" encoding="ISO-8859-1"?><SyncML><SyncHdr><VerDTD>M\u00fcller</VerDTD>'
    "</SyncHdr><SyncBody/></SyncML>".encode("latin-1"),
]


@pytest.mark.parametrize("doc", ROUTE_SAMPLES)
def test_libxml2_and_expat_build_the_same_tree(doc):
    from sync.syncml import xmlcodec

    assert xmlcodec._plain_document(doc)
    fast = xmlcodec._parse_libxml2(doc, Limits())
    assert fast is not None
    assert fast == xmlcodec._parse_expat(doc, Limits())


@pytest.mark.parametrize(
    "doc",
    [
        b'<!DOCTYPE SyncML SYSTEM "file:///etc/passwd"><SyncML/>',
        b'<?xml version="1.0"?>\n<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN" "x.dtd">'
        b"<SyncML/>",
        '<?xml version="1.0" encoding="UTF-16"?><SyncML/>'.encode("utf-16"),
        b'<?xml version="1.0" encoding="UTF-7"?><SyncML/>',
        b" <SyncML/>",
    ],
)
def test_doctypes_and_other_encodings_take_the_expat_route(doc):
    # lxml would read a SYSTEM identifier as a local file: such documents never reach it.
    from sync.syncml import xmlcodec

    assert not xmlcodec._plain_document(doc)


def test_a_local_doctype_file_is_never_read(tmp_path):
    secret = tmp_path / "evil.dtd"
    secret.write_text('<!ENTITY ent "from the file">')
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE SyncML SYSTEM "{secret.as_uri()}">'
        "<SyncML><SyncHdr><VerDTD>&ent;</VerDTD></SyncHdr><SyncBody/></SyncML>"
    ).encode()
    with pytest.raises(SyncMLParseError):
        parse_message(doc)


@pytest.mark.parametrize(
    "doc, error",
    [
        (b"<SyncML><SyncHdr><VerDTD>&ent;</VerDTD></SyncHdr><SyncBody/></SyncML>", "malformed"),
        (b"<SyncML><SyncHdr></SyncBody></SyncML>", "malformed"),
        (b"<SyncML>" + b"<a>" * 300 + b"</a>" * 300 + b"</SyncML>", "deeper"),
    ],
)
def test_what_libxml2_refuses_gets_expats_error(doc, error):
    with pytest.raises((SyncMLParseError, SyncMLSizeError), match=error):
        parse_message(doc)
