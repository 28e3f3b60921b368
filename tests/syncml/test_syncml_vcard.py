"""vCard 2.1/3.0 parsing and writing, and the normalisation used for matching."""

import base64
import os

import pytest

from sync.syncml import SyncMLParseError, SyncMLSizeError
from sync.syncml.normalize import normalize_email, normalize_name, normalize_phone
from sync.syncml.vcard import (
    Contact,
    Email,
    Name,
    Phone,
    Photo,
    convert_vcard,
    parse_vcard,
    parse_vcards,
    serialize_vcard,
)

MUELLER_21 = (
    b"BEGIN:VCARD\r\nVERSION:2.1\r\n"
    b"N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;\r\n"
    b"FN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:J=FCrgen M=FCller\r\n"
    b"TEL;CELL;PREF:+49 170 1234567\r\nTEL;HOME;VOICE:030 / 123 45-6\r\n"
    b"EMAIL;INTERNET:Juergen@Example.COM\r\n"
    b"NOTE;ENCODING=QUOTED-PRINTABLE:first line=0D=0Asecond line is long and=\r\n"
    b" continues=\r\nhere\r\n"
    b"X-SYNCEVO-FOO;BAR=1:keep;me\r\n"
    b"END:VCARD\r\n"
)


def test_21_quoted_printable_and_charset():
    c = parse_vcard(MUELLER_21)
    assert c.version == "2.1"
    assert c.n == Name(family="Müller", given="Jürgen")
    assert c.fn == "Jürgen Müller"  # ISO-8859-1 QP bytes decoded with their CHARSET
    assert c.tels == [Phone(value="+49 170 1234567", types=["CELL", "PREF"]),
                      Phone(value="030 / 123 45-6", types=["HOME", "VOICE"])]  # fmt: skip
    assert c.emails == [Email(value="Juergen@Example.COM", types=["INTERNET"])]
    assert c.note == "first line\nsecond line is long and continueshere"
    assert c.extra[0].name == "X-SYNCEVO-FOO" and c.extra[0].value == "keep;me"


def test_21_8bit_charset_bytes_and_text_input():
    latin = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=ISO-8859-1:M\xfcller;J\xfcrgen\r\nEND:VCARD\r\n"
    )
    assert parse_vcard(latin).n.family == "Müller"
    # already-decoded text keeps its characters whatever CHARSET says
    assert parse_vcard(latin.decode("latin-1")).n.family == "Müller"
    lower_qp = "BEGIN:VCARD\nVERSION:2.1\nN;ENCODING=QUOTED-PRINTABLE;CHARSET=utf-8:m=c3=bcller\nEND:VCARD\n"
    assert parse_vcard(lower_qp).n.family == "müller"


def test_21_output_like_synthesis():
    out = serialize_vcard(parse_vcard(MUELLER_21), "2.1")
    assert "N;CHARSET=UTF-8:Müller;Jürgen;;;\r\n" in out  # as re-emitted by the Synthesis engine
    assert "TEL;CELL;PREF:+49 170 1234567\r\n" in out
    assert "NOTE;ENCODING=QUOTED-PRINTABLE:first line=0D=0Asecond" in out
    qp = serialize_vcard(parse_vcard(MUELLER_21), "2.1", qp_non_ascii=True)
    assert "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;\r\n" in qp
    assert all(len(line) <= 76 for line in qp.split("\r\n"))
    assert parse_vcard(qp) == parse_vcard(out) == parse_vcard(MUELLER_21)


def test_21_to_30_conversion():
    out = convert_vcard(MUELLER_21, "3.0")
    assert out.startswith(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Müller;Jürgen;;;\r\nFN:Jürgen Müller\r\n"
    )
    assert "TEL;TYPE=CELL,PREF:+49 170 1234567\r\n" in out
    assert "NOTE:first line\\nsecond line" in out
    c21, c30 = parse_vcard(MUELLER_21), parse_vcard(out)
    c30.version = "2.1"
    assert c30 == c21
    assert parse_vcard(convert_vcard(out, "2.1")) == c21


def test_30_escapes_types_and_folding():
    card = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:O\\,Neil;Ann\\;Marie;;Dr.;\r\nFN:Ann O'Neil\r\n"
        "ORG:Acme\\, Inc.;R&D;Lab\r\nNOTE:a\\nb\\\\c\r\n"
        "TEL;TYPE=cell,voice:0170-1234\r\nTEL;type=WORK;type=pref:+1 (555) 010-9999\r\n"
        "ADR;TYPE=HOME:;;Main St 1;Berlin;;10115;Germany\r\n"
        "URL:http://example.com/a\r\n  very/long/path\r\nCATEGORIES:Friends,Work\\,Team\r\n"
        "item1.X-ABLabel:custom\r\nEND:VCARD\r\n"
    )
    c = parse_vcard(card)
    assert c.n == Name(family="O,Neil", given="Ann;Marie", prefix="Dr.")
    assert (c.org, c.org_units) == ("Acme, Inc.", ["R&D", "Lab"])
    assert c.note == "a\nb\\c"
    assert c.tels[0].types == ["CELL", "VOICE"] and c.tels[1].types == ["WORK", "PREF"]
    assert c.adrs[0].street == "Main St 1" and c.adrs[0].country == "Germany"
    assert c.urls[0].value == "http://example.com/a very/long/path"
    assert c.categories == ["Friends", "Work,Team"]
    assert c.extra[0].group == "item1"
    out = serialize_vcard(c)
    assert all(len(line.encode()) <= 75 for line in out.split("\r\n"))
    assert parse_vcard(out) == c


def test_folding_never_splits_utf8():
    c = Contact(fn="Ü" * 100, note="€" * 80)
    out = serialize_vcard(c, "3.0")
    for line in out.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75
    assert parse_vcard(out.encode("utf-8")) == c


def test_photo_21_and_30():
    jpeg = b"\xff\xd8\xff\xe0" + os.urandom(21 * 1024) + b"\xff\xd9"  # ~21 KB
    c = Contact(version="2.1", fn="Pic", photo=Photo(data=jpeg, type="JPEG"))
    v21 = serialize_vcard(c, "2.1")
    assert "PHOTO;ENCODING=BASE64;JPEG:\r\n  " in v21 and "\r\n\r\nEND:VCARD" in v21
    assert parse_vcard(v21).photo == c.photo
    v30 = serialize_vcard(c, "3.0")
    assert "PHOTO;TYPE=JPEG;ENCODING=b:" in v30
    assert parse_vcard(v30).photo == c.photo
    # a 2.1 photo as phones write it: bare JPEG word, value starting on the first line
    b64 = base64.b64encode(jpeg[:300]).decode()
    phone = "BEGIN:VCARD\r\nVERSION:2.1\r\nPHOTO;JPEG;ENCODING=BASE64:" + b64[:60] + "\r\n"
    phone += "".join(" " + b64[i : i + 60] + "\r\n" for i in range(60, len(b64), 60))
    phone += "\r\nEND:VCARD\r\n"
    assert parse_vcard(phone).photo == Photo(data=jpeg[:300], type="JPEG")
    uri = parse_vcard("BEGIN:VCARD\nVERSION:3.0\nPHOTO;VALUE=uri:http://x/p.jpg\nEND:VCARD\n")
    assert uri.photo == Photo(uri="http://x/p.jpg")


def test_empty_properties_like_synthesis_are_absent():
    c = parse_vcard(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:;;;;\r\nFN:\r\nNOTE:\r\nPHOTO:\r\nTEL:\r\nEND:VCARD\r\n"
    )
    assert c == Contact(version="3.0")


def test_several_cards_and_nested_agent():
    two = (
        MUELLER_21
        + b"BEGIN:VCARD\nVERSION:3.0\nFN:B\nAGENT:\nBEGIN:VCARD\nFN:inner\nEND:VCARD\nEND:VCARD\n"
    )
    cards = parse_vcards(two)
    assert [c.fn for c in cards] == ["Jürgen Müller", "B"]


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"FN:x",
        b"BEGIN:VCARD\nFN:x\n",
        b"END:VCARD\n",
        b"BEGIN:VCARD\nEND:VCARD\nBEGIN:VCARD\nEND:VCARD\n",
    ],
)
def test_bad_single_vcards(bad):
    with pytest.raises(SyncMLParseError):
        parse_vcard(bad)


def test_vcard_size_limit():
    with pytest.raises(SyncMLSizeError):
        parse_vcard(b"BEGIN:VCARD\n" + b"X-A:b\n" * 10 + b"END:VCARD\n", max_bytes=20)
    with pytest.raises(SyncMLSizeError):
        parse_vcard(b"BEGIN:VCARD\n" + b"X-A:b\n" * 6000 + b"END:VCARD\n")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+49 170 1234567", "+491701234567"),
        ("0049 (170) 123-4567", "+491701234567"),
        ("0170/1234567", "+491701234567"),
        ("+49 (0)30 123 456", "+4930123456"),
        ("030-123 456 p123", "+4930123456"),
        ("tel:+44 20 7946 0018", "+442079460018"),
        ("\uff11\uff12\uff13", "123"),  # full-width digits, local number: digits only
        ("112", "112"),
        ("", ""),
        ("abc", ""),
    ],
)
def test_normalize_phone_germany(raw, expected):
    assert normalize_phone(raw, "+49") == expected


def test_normalize_phone_other_plans():
    assert normalize_phone("06 1234 5678", "+39", trunk_prefix="") == "+390612345678"
    assert (
        normalize_phone("1 (555) 010-9999", "+1", international_prefix="011", trunk_prefix="1")
        == "+15550109999"
    )
    assert (
        normalize_phone("011 49 30 1234", "+1", international_prefix="011", trunk_prefix="1")
        == "+49301234"
    )


def test_normalize_name_and_email():
    assert normalize_name("  Jürgen   MÜLLER ") == "jürgen müller"
    assert normalize_name("Ju\u0308rgen") == normalize_name("Jürgen")  # NFD vs NFC
    assert normalize_name("Jurgen") != normalize_name("Jürgen")  # accents kept
    assert normalize_name("Straße") == normalize_name("STRASSE")
    assert normalize_email(" Bob@Example.COM ") == "bob@example.com"
    assert normalize_email("mailto:A@B.c") == "a@b.c"
    c = parse_vcard(MUELLER_21)
    assert c.normalized("+49") == {
        "name": "jürgen müller",
        "phones": ["+491701234567", "+4930123456"],
        "emails": ["juergen@example.com"],
    }
