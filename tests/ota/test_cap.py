"""CAP parsing, load file data block order, and clear refusals of bad files."""

from __future__ import annotations

import io
import zipfile

import pytest

from cardmgmt.ota import CapFileError, build_demo_cap, parse_cap
from cardmgmt.ota.cap import MAX_ENTRIES, MAX_UNCOMPRESSED
from cardmgmt.ota.demo_cap import SYNC_APPLET_AID, SYNC_PACKAGE_AID, demo_components


def _zip(entries: list[tuple[str, bytes]], *, stored: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as z:
        for name, content in entries:
            z.writestr(name, content)
    return buf.getvalue()


def _cap_with(**replace: bytes | None) -> bytes:
    comps = demo_components()
    for name, value in replace.items():
        if value is None:
            del comps[name]
        else:
            comps[name] = value
    return _zip([(f"org/example/javacard/{n}.cap", c) for n, c in comps.items()])


def test_demo_cap_parses() -> None:
    cap = parse_cap(build_demo_cap(version=(2, 1)))
    assert cap.package_aid == SYNC_PACKAGE_AID
    assert cap.applet_aids == (SYNC_APPLET_AID,)
    assert cap.package_version == (2, 1) and cap.version_text == "2.1"
    assert cap.cap_version == (2, 2)
    assert [aid.hex() for aid, _ in cap.imports][:2] == ["a0000000620001", "a0000000620101"]
    assert cap.imports[1][1] == (1, 3)


def test_demo_cap_is_deterministic_and_sized_by_code_size() -> None:
    assert build_demo_cap() == build_demo_cap()
    small = parse_cap(build_demo_cap(code_size=10)).load_file_size()
    big = parse_cap(build_demo_cap(code_size=1010)).load_file_size()
    assert big - small == 1000 + 1  # the C4 length grows from 81 xx to 82 xxxx


def test_demo_cap_directory_sizes_match_components() -> None:
    comps = demo_components(code_size=123)
    directory = comps["Directory"]
    sizes = [int.from_bytes(directory[3 + 2 * i : 5 + 2 * i], "big") for i in range(12)]
    names = ["Header", "Directory", "Applet", "Import", "ConstantPool", "Class", "Method",
             "StaticField", "RefLocation", "Export", "Descriptor", "Debug"]  # fmt: skip
    for name, size in zip(names, sizes, strict=True):
        assert size == (len(comps[name]) - 3 if name in comps else 0), name


def test_load_file_order_and_descriptor_flag() -> None:
    cap = parse_cap(build_demo_cap())
    without = cap.load_file_data_block()
    assert without.components == (
        "Header", "Directory", "Import", "Applet", "Class", "Method", "StaticField",
        "ConstantPool", "RefLocation",
    )  # fmt: skip
    body = b"".join(cap.components[n] for n in without.components)
    assert without.data == b"\xc4\x81" + bytes((len(body),)) + body
    with_descriptor = cap.load_file_data_block(include_descriptor=True)
    assert with_descriptor.components[-1] == "Descriptor"
    assert len(with_descriptor) == len(without) + len(cap.components["Descriptor"])


def test_debug_component_never_loaded() -> None:
    debug = b"\x0c\x00\x02\xaa\xbb"
    cap = parse_cap(_cap_with(Debug=debug))
    assert "Debug" in cap.components
    assert "Debug" not in cap.load_file_data_block(include_descriptor=True).components


def test_not_a_zip() -> None:
    with pytest.raises(CapFileError, match="not a zip"):
        parse_cap(b"hello world")
    with pytest.raises(CapFileError, match="not a readable CAP zip"):
        parse_cap(b"PK\x03\x04" + bytes(100))


def test_missing_header() -> None:
    with pytest.raises(CapFileError, match="no Header component"):
        parse_cap(_cap_with(Header=None))


def test_bad_magic() -> None:
    header = bytearray(demo_components()["Header"])
    header[3:7] = bytes.fromhex("CAFEBABE")
    with pytest.raises(CapFileError, match="not DECAFFED"):
        parse_cap(_cap_with(Header=bytes(header)))


def test_component_size_mismatch() -> None:
    method = demo_components()["Method"]
    with pytest.raises(CapFileError, match="Method component size field says"):
        parse_cap(_cap_with(Method=method + b"\x00"))


def test_wrong_component_tag() -> None:
    with pytest.raises(CapFileError, match="starts with tag"):
        parse_cap(_cap_with(Class=b"\x07" + demo_components()["Class"][1:]))


def test_duplicate_components() -> None:
    comps = demo_components()
    entries = [(f"a/javacard/{n}.cap", c) for n, c in comps.items()]
    entries.append(("b/javacard/Header.cap", comps["Header"]))
    with pytest.raises(CapFileError, match="two Header components"):
        parse_cap(_zip(entries))


def test_zip_bomb_is_bounded() -> None:
    entries = [(f"a/javacard/{n}.cap", c) for n, c in demo_components().items() if n != "Method"]
    entries.append(("a/javacard/Method.cap", bytes(MAX_UNCOMPRESSED + 1)))
    bomb = _zip(entries)
    assert len(bomb) < 100_000
    with pytest.raises(CapFileError, match="zip bomb"):
        parse_cap(bomb)


def test_too_many_entries() -> None:
    entries = [(f"junk/{i}.txt", b"") for i in range(MAX_ENTRIES + 1)]
    with pytest.raises(CapFileError, match="entries"):
        parse_cap(_zip(entries, stored=True))
