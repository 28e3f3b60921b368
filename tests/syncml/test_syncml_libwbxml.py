"""Cross-checks against libwbxml2 (Debian package libwbxml2-utils: xml2wbxml, wbxml2xml)."""

import re
import shutil
import subprocess

import pytest
from syncml_samples import INIT_12, MAP_11, SYNC_12

from sync.syncml import DevInf, parse_message, to_wbxml, to_xml
from sync.syncml.element import Element
from sync.syncml.wbxml import encode_wbxml
from sync.syncml.wbxml_tables import DEVINF_PAGES, SYNCML_PAGES

TOOLS = ("xml2wbxml", "wbxml2xml")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"libwbxml2 tool(s) {', '.join(MISSING)} not installed: "
        "apt-get install libwbxml2-utils (listed in apt-packages.txt)",
    ),
]

SAMPLES = {"init12": INIT_12, "sync12": SYNC_12, "map11": MAP_11}


def run(tool, data, *args, tmp_path):
    src = tmp_path / "in"
    dst = tmp_path / "out"
    src.write_bytes(data)
    proc = subprocess.run([tool, *args, "-o", str(dst), str(src)], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dst.read_bytes()


def comparable(msg):
    """libwbxml rewrites the DevInf Meta Type (+xml/+wbxml) and vCard line ends (LF/CRLF)."""
    for cmd in msg.iter_commands():
        for m in [getattr(cmd, "meta", None)] + [i.meta for i in getattr(cmd, "items", [])]:
            if m is not None and m.type and "devinf" in m.type:
                m.type = "application/vnd.syncml-devinf"
        for item in getattr(cmd, "items", []):
            if isinstance(item.data, str):
                item.data = item.data.replace("\r\n", "\n")
    return msg


@pytest.mark.parametrize("kind, tables", [("syncml", SYNCML_PAGES), ("devinf", DEVINF_PAGES)])
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_every_tag_token_matches_libwbxml(kind, tables, version, tmp_path):
    cp = tables[version]
    names, kids = [], []
    for page, table in cp.pages.items():
        for _token, name in sorted(table.items()):
            kids.append(Element(name, cp.namespaces[page], text="x"))
            names.append(name)
    root = Element("SyncML" if kind == "syncml" else "DevInf", cp.namespaces[0], kids)
    wb = encode_wbxml(root, kind=kind, dtd_version=version)
    assert wb[4] == 0, "no tag may need a LITERAL"
    xml = run("wbxml2xml", wb, tmp_path=tmp_path).decode()
    assert re.findall(r"<([A-Za-z-]+)[ >]", xml)[1:] == names


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("string_table", [False, True])
def test_our_wbxml_is_read_by_libwbxml(name, string_table, tmp_path):
    msg = parse_message(SAMPLES[name])
    xml = run("wbxml2xml", to_wbxml(msg, string_table=string_table), tmp_path=tmp_path)
    assert comparable(parse_message(xml)) == comparable(parse_message(SAMPLES[name]))


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize(
    "opts", [["-n", "-v", "1.2"], ["-v", "1.3"], []], ids=["nostr", "v13", "default"]
)
def test_libwbxml_output_is_read_by_us(name, opts, tmp_path):
    # libwbxml wants the +wbxml type to embed DevInf as an opaque document, like handsets do.
    xml = to_xml(parse_message(SAMPLES[name])).replace(b"devinf+xml", b"devinf+wbxml")
    wb = run("xml2wbxml", xml, *opts, tmp_path=tmp_path)
    ours = parse_message(wb)
    assert comparable(ours) == comparable(parse_message(SAMPLES[name]))
    if name == "init12":
        assert isinstance(ours.commands[1].items[0].data, DevInf)
