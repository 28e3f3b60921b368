"""A generator of structurally valid CAP files, so tests and demo data never download anything.

`build_demo_cap()` writes a Java Card 2.2 CAP zip for a one-applet package (the project's sync
applet by default): Header, Directory, Import, Applet, Class, Method, StaticField, ConstantPool,
RefLocation and Descriptor components with consistent tags, size fields and Directory sizes
(JCVM 2.2 6.3-6.14). The bytecode is filler (nop ... return): the file is for exercising
loaders and planners, not for running on a card. `code_size` sets the Method component's code
octets, hence the load file size, so a load can be made to need several SMS.
"""

from __future__ import annotations

import io
import zipfile

from .cap import COMPONENT_TAGS
from .errors import FormatError

SYNC_PACKAGE_AID = bytes.fromhex("D2760001185359")
SYNC_APPLET_AID = bytes.fromhex("D276000118535901")
_IMPORTS = (  # (AID, major, minor): java.lang 1.0, javacard.framework 1.3, sim.toolkit 1.0
    (bytes.fromhex("A0000000620001"), 1, 0),
    (bytes.fromhex("A0000000620101"), 1, 3),
    (bytes.fromhex("A0000000090003FFFFFFFF8910710001"), 1, 0),
)


def _component(name: str, info: bytes) -> bytes:
    return bytes((COMPONENT_TAGS[name],)) + len(info).to_bytes(2, "big") + info


def demo_components(
    package_aid: bytes = SYNC_PACKAGE_AID,
    applet_aid: bytes = SYNC_APPLET_AID,
    version: tuple[int, int] = (1, 0),
    code_size: int = 64,
) -> dict[str, bytes]:
    """The components of the demo CAP, by name (see `build_demo_cap`)."""
    if not (5 <= len(package_aid) <= 16 and 5 <= len(applet_aid) <= 16):
        raise FormatError("package and applet AIDs must be 5 to 16 octets")
    if not 3 <= code_size <= 0xFFF0:
        raise FormatError(f"code_size {code_size} must be 3 to 65520")
    major, minor = version
    name = b"sync"
    header = _component(
        "Header",
        bytes.fromhex("DECAFFED")
        + bytes((2, 2, 0x04))  # CAP format 2.2, ACC_APPLET
        + bytes((minor, major, len(package_aid)))
        + package_aid
        + bytes((len(name),))
        + name,
    )
    imports = _component(
        "Import",
        bytes((len(_IMPORTS),))
        + b"".join(bytes((mi, ma, len(aid))) + aid for aid, ma, mi in _IMPORTS),
    )
    applet = _component("Applet", bytes((1, len(applet_aid))) + applet_aid + (1).to_bytes(2, "big"))
    constant_pool = _component(
        "ConstantPool",
        (2).to_bytes(2, "big")
        + bytes.fromhex("06 80 03 00")  # static method ref: javacard.framework, class 3
        + bytes.fromhex("02 00 00 08"),  # instance method ref: class 0, token 8
    )
    klass = _component(
        "Class",
        (0).to_bytes(2, "big")  # signature pool length
        + bytes.fromhex("00 80 03 00 FF 00 01 00 00 00")  # class_info, one public method
        + bytes.fromhex("00 01"),  # public virtual method table entry
    )
    # Method: handler_count 0, one method: header (flags|max_stack, nargs|max_locals), then
    # filler code ending in `return`.
    method = _component("Method", b"\x00" + bytes((0x01, 0x10)) + bytes(code_size - 3) + b"\x7a")
    static_field = _component("StaticField", bytes(10))
    ref_location = _component("RefLocation", bytes.fromhex("0001 01 0000"))
    descriptor = _component(
        "Descriptor",
        bytes((0,))  # no class descriptors
        + (2).to_bytes(2, "big")
        + bytes.fromhex("FFFF FFFF"),  # constant pool types: none
    )
    sizes = {
        "Header": header, "Directory": None, "Applet": applet, "Import": imports,
        "ConstantPool": constant_pool, "Class": klass, "Method": method,
        "StaticField": static_field, "RefLocation": ref_location, "Export": b"",
        "Descriptor": descriptor, "Debug": b"",
    }  # fmt: skip
    # Directory: component_sizes[12], static field size info, import/applet/custom counts.
    dir_info_len = 12 * 2 + 6 + 3
    component_sizes = b"".join(
        (
            dir_info_len if key == "Directory" else max(len(comp) - 3, 0)  # type: ignore[arg-type]
        ).to_bytes(2, "big")
        for key, comp in sizes.items()
    )
    directory = _component(
        "Directory",
        component_sizes + bytes(6) + bytes((len(_IMPORTS), 1, 0)),
    )
    return {
        "Header": header, "Directory": directory, "Import": imports, "Applet": applet,
        "Class": klass, "Method": method, "StaticField": static_field,
        "ConstantPool": constant_pool, "RefLocation": ref_location, "Descriptor": descriptor,
    }  # fmt: skip


def build_demo_cap(
    package_aid: bytes = SYNC_PACKAGE_AID,
    applet_aid: bytes = SYNC_APPLET_AID,
    version: tuple[int, int] = (1, 0),
    code_size: int = 64,
) -> bytes:
    """A CAP zip (deterministic bytes) for a one-applet package; see the module docstring."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        manifest = zipfile.ZipInfo("META-INF/MANIFEST.MF", date_time=(1980, 1, 1, 0, 0, 0))
        archive.writestr(manifest, b"Manifest-Version: 1.0\r\nCreated-By: cardmgmt.ota\r\n\r\n")
        for name, comp in demo_components(package_aid, applet_aid, version, code_size).items():
            info = zipfile.ZipInfo(f"sync/javacard/{name}.cap", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, comp)
    return buffer.getvalue()


def code_size_for_load_file(
    target: int,
    *,
    include_descriptor: bool = False,
    package_aid: bytes = SYNC_PACKAGE_AID,
    applet_aid: bytes = SYNC_APPLET_AID,
) -> int:
    """The `code_size` whose demo CAP has a load file data block of exactly `target` octets."""
    from .cap import parse_components

    def size(code: int) -> int:
        comps = demo_components(package_aid, applet_aid, (1, 0), code)
        cap = parse_components(comps)
        return cap.load_file_size(include_descriptor=include_descriptor)

    code = 3 + target - size(3)
    for candidate in (code, code - 1, code - 2):  # the C4 length may grow by one or two octets
        if candidate >= 3 and size(candidate) == target:
            return candidate
    raise FormatError(f"no demo CAP has a load file of exactly {target} octets")
