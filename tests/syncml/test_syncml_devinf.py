"""DevInf 1.1 (flat CTCap) and 1.2 (CTCap in DataStore), XML and WBXML."""

import pytest
from syncml_samples import DEVINF_11, INIT_12

from sync.syncml import (
    CTCap,
    DataStore,
    DevInf,
    Property,
    PropParam,
    SyncMLParseError,
    parse_devinf,
    parse_message,
    serialize_devinf,
)


def devinf_12():
    return parse_message(INIT_12).commands[1].items[0].data


def test_12_ctcap_and_supported_vcard_properties():
    dev = devinf_12()
    assert (dev.man, dev.mod, dev.fwv, dev.dev_typ) == (
        "SyncEvolution",
        "SyncEvolution",
        "2.0.0",
        "workstation",
    )
    ds = dev.datastore("addressbook")
    assert ds.rx_pref.ct_type == "text/vcard" and ds.rx_pref.ver_ct == "3.0"
    assert ds.rx[0].ct_type == "text/x-vcard" and ds.tx[0].ver_ct == "2.1"
    cap = ds.ctcaps[0]
    assert cap.ct_type == "text/vcard" and cap.ver_ct == "3.0"
    tel = next(p for p in cap.properties if p.name == "TEL")
    assert tel.max_size == 40 and tel.params[0].val_enums == ["CELL", "HOME", "WORK"]
    assert dev.vcard_properties() == {"BEGIN", "N", "FN", "TEL", "EMAIL", "PHOTO"}
    assert dev.vcard_property_types()["TEL"] == {"CELL", "HOME", "WORK"}


def test_11_flat_ctcap():
    dev = parse_devinf(DEVINF_11)
    assert dev.ver_dtd == "1.1" and dev.mod == "6230i"
    assert dev.datastores[0].dsmem.max_id == 500
    assert dev.vcard_properties() == {"BEGIN", "VERSION", "N", "TEL", "EMAIL", "NOTE"}
    tel = next(p for p in dev.ctcaps[0].properties if p.name == "TEL")
    assert [p.name for p in tel.params] == ["CELL", "HOME", "WORK"]
    note = next(p for p in dev.ctcaps[0].properties if p.name == "NOTE")
    assert note.data_type == "chr" and note.max_size == 255
    assert dev.vcard_property_types()["TEL"] == {"CELL", "HOME", "WORK"}


def test_no_ctcap_means_unknown_not_empty():
    dev = DevInf(dev_id="x", dev_typ="phone", datastores=[DataStore(source_ref="contacts")])
    assert dev.vcard_properties() is None


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
@pytest.mark.parametrize("string_table", [False, True])
def test_round_trips(encoding, string_table):
    for dev in (devinf_12(), parse_devinf(DEVINF_11)):
        data = serialize_devinf(dev, encoding, string_table=string_table)
        assert parse_devinf(data) == dev


def test_11_writes_flat_form_and_12_nested():
    cap = CTCap(
        ct_type="text/x-vcard",
        properties=[Property(name="TEL", params=[PropParam(name="TYPE", val_enums=["CELL"])])],
    )
    flat = serialize_devinf(DevInf(ver_dtd="1.1", dev_id="d", dev_typ="phone", ctcaps=[cap]))
    assert b"<CTCap><CTType>text/x-vcard</CTType><PropName>TEL</PropName><ParamName>TYPE" in flat
    nested = serialize_devinf(DevInf(ver_dtd="1.2", dev_id="d", dev_typ="phone", ctcaps=[cap]))
    assert b"<Property><PropName>TEL</PropName><PropParam>" in nested
    assert parse_devinf(nested).vcard_properties() == {"TEL"}


def test_wbxml_devinf_public_ids():
    dev = devinf_12()
    assert serialize_devinf(dev, "wbxml")[:5] == bytes.fromhex("02a4036a00")  # 0x1203
    dev11 = parse_devinf(DEVINF_11)
    assert serialize_devinf(dev11, "wbxml")[:5] == bytes.fromhex("029f546a00")  # 0x0FD4


@pytest.mark.parametrize(
    "bad",
    [
        b"<Foo/>",
        b"<DevInf><DataStore><MaxGUIDSize>x</MaxGUIDSize></DataStore></DevInf>",
        b"\x02\xa4\x01\x6a\x00\x6d\x01",
    ],
)
def test_bad_devinf(bad):
    with pytest.raises(SyncMLParseError):
        parse_devinf(bad)
