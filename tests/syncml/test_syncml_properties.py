"""Property-based round trips and fuzzing of every decoder of outside input."""

import contextlib
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from syncml_samples import DEVINF_11, INIT_12, MAP_11, SYNC_12

from sync.syncml import (
    Add,
    Alert,
    Anchor,
    Delete,
    Item,
    Location,
    Map,
    MapItem,
    Meta,
    Replace,
    Status,
    Sync,
    SyncHdr,
    SyncML,
    SyncMLError,
    parse_devinf,
    parse_message,
    serialize_devinf,
    to_wbxml,
    to_xml,
)
from sync.syncml.san import decode_san
from sync.syncml.vcard import Address, Contact, Email, Name, Phone, parse_vcards, serialize_vcard

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text XML 1.0 can carry, without leading/trailing blanks (the model strips identifiers).
xml_char = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
ident = st.text(xml_char, min_size=1, max_size=12).map(str.strip).filter(bool)
content = st.text(st.one_of(xml_char, st.sampled_from("\n\t")), max_size=200)
number = st.integers(min_value=0, max_value=10**9)
loc = st.builds(Location, loc_uri=ident, loc_name=st.none() | ident)
meta = st.builds(
    Meta,
    type=st.none() | st.sampled_from(["text/vcard", "text/x-vcard"]),
    size=st.none() | number,
    max_obj_size=st.none() | number,
    anchor=st.none() | st.builds(Anchor, last=st.none() | ident, next=ident),
    emi=st.lists(ident, max_size=2),
)
item = st.builds(Item, source=st.none() | loc, target=st.none() | loc, meta=st.none() | meta,
                 data=st.none() | content, more_data=st.booleans())  # fmt: skip
items = st.lists(item, min_size=1, max_size=3)
change = st.one_of(
    st.builds(Add, cmd_id=ident, items=items, meta=st.none() | meta),
    st.builds(Replace, cmd_id=ident, items=items, no_resp=st.booleans()),
    st.builds(Delete, cmd_id=ident, items=items, sft_del=st.booleans()),
)
command = st.one_of(
    st.builds(Alert, cmd_id=ident, data=st.sampled_from([200, 201, 206, 222]), items=st.lists(item, max_size=2)),
    st.builds(Status, cmd_id=ident, msg_ref=ident, cmd_ref=ident, cmd=ident, data=st.integers(100, 599),
              target_refs=st.lists(ident, max_size=2), source_refs=st.lists(ident, max_size=2)),
    st.builds(Sync, cmd_id=ident, target=st.none() | loc, source=st.none() | loc,
              number_of_changes=st.none() | number, commands=st.lists(change, max_size=4)),
    st.builds(Map, cmd_id=ident, target=loc, source=loc,
              map_items=st.lists(st.builds(MapItem, target=loc, source=loc), min_size=1, max_size=3)),
)  # fmt: skip
message = st.builds(
    SyncML,
    hdr=st.builds(SyncHdr, ver_dtd=st.sampled_from(["1.1", "1.2"]), session_id=ident, msg_id=ident,
                  target=loc, source=loc, resp_uri=st.none() | ident),
    commands=st.lists(command, max_size=5),
    final=st.booleans(),
)  # fmt: skip


@SETTINGS
@given(message, st.booleans())
def test_wbxml_and_xml_round_trip_generated_messages(msg, string_table):
    assert parse_message(to_wbxml(msg, string_table=string_table)) == msg
    assert parse_message(to_xml(msg)) == msg


vtext = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40).map(str.strip)
vword = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1, max_size=12)
types = st.lists(
    st.sampled_from(["CELL", "HOME", "WORK", "VOICE", "PREF", "FAX"]), unique=True, max_size=3
)
phone_value = st.text(st.sampled_from("0123456789 +-()/"), min_size=1, max_size=20).filter(
    str.strip
)
contact = st.builds(
    Contact,
    fn=st.none() | vtext.filter(bool),
    n=st.none() | st.builds(Name, family=vtext, given=vtext, additional=vtext).filter(lambda n: any(n.parts())),
    org=st.none() | vtext.filter(bool),
    title=st.none() | vtext.filter(bool),
    note=st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc"), ) | st.just("\n"), max_size=120).map(str.strip).filter(bool),
    tels=st.lists(st.builds(Phone, value=phone_value.map(str.strip), types=types), max_size=3),
    emails=st.lists(st.builds(Email, value=vword.map(lambda w: w + "@example.org"), types=types), max_size=2),
    adrs=st.lists(st.builds(Address, street=vtext, locality=vtext, country=vtext, types=types)
                  .filter(lambda a: any(a.parts())), max_size=2),
    categories=st.lists(vtext.filter(bool), max_size=3),
)  # fmt: skip


@SETTINGS
@given(contact, st.sampled_from(["2.1", "3.0"]), st.booleans())
def test_vcard_round_trip_generated_contacts(c, version, qp):
    if version == "2.1":
        # 2.1 has no escaping for commas in CATEGORIES
        c.categories = [x for x in c.categories if "," not in x]
    c.version = version
    text = serialize_vcard(c, version, qp_non_ascii=qp)
    assert parse_vcards(text) == [c]
    assert parse_vcards(text.encode("utf-8")) == [c]


def _mutations(seed: bytes, data: st.DataObject) -> bytes:
    b = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        if not b:
            break
        i = data.draw(st.integers(0, len(b) - 1))
        if op == "flip":
            b[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del b[i : i + data.draw(st.integers(1, 64))]
        elif op == "dup":
            b[i:i] = b[i : i + data.draw(st.integers(1, 64))]
        else:
            b[i:i] = data.draw(st.binary(max_size=16))
    return bytes(b)


SEEDS = {
    "xml": [INIT_12, SYNC_12, MAP_11],
    "wbxml": [to_wbxml(parse_message(s), string_table=t) for s in (INIT_12, SYNC_12, MAP_11) for t in (False, True)],
    "devinf": [DEVINF_11, serialize_devinf(parse_devinf(DEVINF_11), "wbxml")],
    "vcard": [serialize_vcard(Contact(fn="Jürgen", note="a\nb", tels=[Phone(value="1")]), v).encode() for v in ("2.1", "3.0")],
    "san": [bytes(16) + bytes.fromhex("03080000000001") + b"\x0cOperatorSync\x10\x60\x00\x00\x07\x08contacts"],
}  # fmt: skip
DECODERS = {
    "xml": parse_message,
    "wbxml": parse_message,
    "devinf": parse_devinf,
    "vcard": parse_vcards,
    "san": decode_san,
}


def _only_syncml_errors(decoder, data):
    start = time.monotonic()
    with contextlib.suppress(SyncMLError):
        decoder(data)
    assert time.monotonic() - start < 2.0


@SETTINGS
@given(st.sampled_from(sorted(DECODERS)), st.data())
def test_fuzz_mutated_valid_inputs(kind, data):
    seed = data.draw(st.sampled_from(SEEDS[kind]))
    _only_syncml_errors(DECODERS[kind], _mutations(seed, data))


@SETTINGS
@given(st.sampled_from(sorted(DECODERS)), st.binary(max_size=512))
def test_fuzz_garbage(kind, blob):
    _only_syncml_errors(DECODERS[kind], blob)
    _only_syncml_errors(DECODERS[kind], bytes([2, 0xA4, 1, 0x6A, 0]) + blob)
    _only_syncml_errors(DECODERS[kind], b"BEGIN:VCARD\r\n" + blob)


# The shortcut for plain text vCards must read exactly what the general reader reads.
vcard_line = st.one_of(
    st.builds(
        lambda name, params, value: f"{name}{params}:{value}",
        st.sampled_from(["FN", "N", "TEL", "EMAIL", "ORG", "ADR", "NOTE", "CATEGORIES", "URL",
                         "X-FOO", "item1.TEL", "UID", "REV", "VERSION", "PHOTO", "tel", "", "NICKNAME"]),
        st.sampled_from(["", ";TYPE=CELL", ";CELL;PREF", ";TYPE=HOME,WORK", ";X-A=1;", ";;",
                         ";VALUE=uri", ";ENCODING=b", ";CHARSET=UTF-8", ";8BIT", ";type=cell"]),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    ),
    st.sampled_from(["", " ", "\t", " folded", "no colon", "BEGIN:VCARD", "END:VCARD",
                     "VERSION:2.1", "VERSION:3.0", "\u00a0", "=", "begin:vcard"]),
)  # fmt: skip
vcard_text = st.builds(
    lambda head, lines, tail, sep: sep.join([head, *lines, tail]),
    st.sampled_from(["BEGIN:VCARD", "begin:vcard", " BEGIN:VCARD", "", "X:1"]),
    st.lists(vcard_line, max_size=8),
    st.sampled_from(
        ["END:VCARD", "END:VCARD\r\n", "end:vcard\n\n", "", "END:VCARD\r\nBEGIN:VCARD"]
    ),
    st.sampled_from(["\r\n", "\n", "\r"]),
)


@SETTINGS
@given(vcard_text | contact.map(lambda c: serialize_vcard(c, "3.0")))
def test_the_plain_vcard_shortcut_reads_what_the_general_reader_reads(text):
    from sync.syncml.vcard import _contact, _simple_card, _vcard_blocks

    fast = _simple_card(text)
    try:
        general = [_contact(b, True) for b in _vcard_blocks(text.encode("utf-8", "surrogatepass"))]
    except (SyncMLError, ValueError, UnicodeError, IndexError, TypeError):
        general = None
    if fast is not None:
        assert general == [fast]
