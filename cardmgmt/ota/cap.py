"""Java Card CAP files to GlobalPlatform load files (JCVM spec 2.2 6; GP 11.6.2.2 Table 11-60).

A CAP file is a zip holding `<package path>/javacard/<Component>.cap`. The load file data
block is `C4 <BER length>` and the components in the order the JCVM spec gives for loading;
Debug never goes to a card, Descriptor only when the card profile asks for it.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from .errors import CapFileError
from .tlv import ber_length

MAX_CAP_SIZE = 4 * 1024 * 1024  # zip as uploaded
MAX_UNCOMPRESSED = 8 * 1024 * 1024  # all entries together, decompressed
MAX_ENTRIES = 256
MAGIC = 0xDECAFFED

# Component tags (JCVM 2.2 6.1 Table 6-1), by file name.
COMPONENT_TAGS = {
    "Header": 1, "Directory": 2, "Applet": 3, "Import": 4, "ConstantPool": 5, "Class": 6,
    "Method": 7, "StaticField": 8, "RefLocation": 9, "Export": 10, "Descriptor": 11, "Debug": 12,
}  # fmt: skip
# Order of components in the load file (JCVM 2.2 6.2; GP 11.6.2.2).
LOAD_ORDER = (
    "Header", "Directory", "Import", "Applet", "Class", "Method", "StaticField", "Export",
    "ConstantPool", "RefLocation", "Descriptor",
)  # fmt: skip
REQUIRED = ("Header", "Directory", "Import", "Class", "Method", "StaticField", "ConstantPool",
            "RefLocation")  # fmt: skip


@dataclass(frozen=True)
class LoadFileDataBlock:
    """`C4 len components`: what the LOAD commands carry, sliced into blocks."""

    data: bytes
    components: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class CapFile:
    """A parsed CAP file."""

    package_aid: bytes
    package_version: tuple[int, int]  # (major, minor)
    cap_version: tuple[int, int]
    applet_aids: tuple[bytes, ...]
    imports: tuple[tuple[bytes, tuple[int, int]], ...]  # (package AID, (major, minor))
    components: dict[str, bytes]  # name -> whole component (tag, size, info)

    def load_file_data_block(self, *, include_descriptor: bool = False) -> LoadFileDataBlock:
        names = tuple(
            name
            for name in LOAD_ORDER
            if name in self.components and (include_descriptor or name != "Descriptor")
        )
        body = b"".join(self.components[name] for name in names)
        return LoadFileDataBlock(b"\xc4" + ber_length(len(body)) + body, names)

    def load_file_size(self, *, include_descriptor: bool = False) -> int:
        return len(self.load_file_data_block(include_descriptor=include_descriptor))

    @property
    def version_text(self) -> str:
        return f"{self.package_version[0]}.{self.package_version[1]}"


def _read_entries(data: bytes) -> dict[str, bytes]:
    if len(data) > MAX_CAP_SIZE:
        raise CapFileError(f"CAP file of {len(data)} octets exceeds the {MAX_CAP_SIZE} limit")
    if not data.startswith(b"PK"):
        raise CapFileError("not a CAP file: not a zip archive")
    components: dict[str, bytes] = {}
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES:
                raise CapFileError(f"CAP zip has {len(infos)} entries, more than {MAX_ENTRIES}")
            for info in infos:
                if info.is_dir():
                    continue
                name = info.filename.rsplit("/", 1)[-1]
                if not name.endswith(".cap") or "/javacard/" not in "/" + info.filename:
                    continue  # manifest, export files, sources...
                stem = name[:-4]
                if stem not in COMPONENT_TAGS:
                    continue  # custom components are not loaded
                if stem in components:
                    raise CapFileError(f"CAP file holds two {stem} components")
                # Read at most what is left of the budget + 1: the declared size can lie.
                budget = MAX_UNCOMPRESSED - total
                with archive.open(info) as member:
                    content = member.read(budget + 1)
                if len(content) > budget:
                    raise CapFileError(
                        f"CAP file decompresses to more than {MAX_UNCOMPRESSED} octets (zip bomb?)"
                    )
                total += len(content)
                components[stem] = content
    except CapFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
            RuntimeError, struct.error, KeyError, IndexError, OverflowError) as exc:  # fmt: skip
        # zipfile reports damage through many exception types; all mean "not a readable zip".
        raise CapFileError(f"not a readable CAP zip: {exc}") from None
    return components


def parse_components(components: dict[str, bytes]) -> CapFile:
    """Check each component's tag and size field and read the package, applets and imports."""
    for name in REQUIRED:
        if name not in components:
            raise CapFileError(f"CAP file has no {name} component")
    for name, comp in components.items():
        if len(comp) < 3:
            raise CapFileError(f"{name} component is shorter than its 3-octet header")
        if comp[0] != COMPONENT_TAGS[name]:
            raise CapFileError(
                f"{name} component starts with tag {comp[0]}, expected {COMPONENT_TAGS[name]}"
            )
        size = int.from_bytes(comp[1:3], "big")
        if size != len(comp) - 3:
            raise CapFileError(
                f"{name} component size field says {size} octets but it has {len(comp) - 3}"
            )
    header = components["Header"]
    # Header: tag size(2) magic(4) minor major flags | package: minor major AID_length AID
    if len(header) < 13:
        raise CapFileError("Header component too short for magic, versions and package AID")
    magic = int.from_bytes(header[3:7], "big")
    if magic != MAGIC:
        raise CapFileError(f"Header magic is {magic:08X}, not DECAFFED: not a CAP file")
    cap_version = (header[8], header[7])
    package_version = (header[11], header[10])
    aid_len = header[12]
    package_aid = header[13 : 13 + aid_len]
    if not 5 <= aid_len <= 16 or len(package_aid) != aid_len:
        raise CapFileError(f"Header package AID length {aid_len} is impossible")
    applets: list[bytes] = []
    if "Applet" in components:
        applet = components["Applet"]
        if len(applet) < 4:
            raise CapFileError("Applet component has no applet count")
        pos = 4
        for _ in range(applet[3]):
            if pos >= len(applet):
                raise CapFileError("Applet component ends inside its applet list")
            n = applet[pos]
            aid = applet[pos + 1 : pos + 1 + n]
            if not 5 <= n <= 16 or len(aid) != n or pos + 3 + n > len(applet):
                raise CapFileError("Applet component has an impossible applet AID")
            applets.append(aid)
            pos += 3 + n  # AID and install_method_offset(2)
        if pos != len(applet):
            raise CapFileError("Applet component has octets after its applet list")
    imports: list[tuple[bytes, tuple[int, int]]] = []
    imp = components["Import"]
    if len(imp) < 4:
        raise CapFileError("Import component has no package count")
    pos = 4
    for _ in range(imp[3]):
        if pos + 3 > len(imp):
            raise CapFileError("Import component ends inside its package list")
        minor, major, n = imp[pos], imp[pos + 1], imp[pos + 2]
        aid = imp[pos + 3 : pos + 3 + n]
        if len(aid) != n or not 5 <= n <= 16:
            raise CapFileError("Import component has an impossible package AID")
        imports.append((aid, (major, minor)))
        pos += 3 + n
    if pos != len(imp):
        raise CapFileError("Import component has octets after its package list")
    return CapFile(
        package_aid, package_version, cap_version, tuple(applets), tuple(imports), components
    )


def parse_cap(data: bytes) -> CapFile:
    """Parse a CAP file (zip bytes). Raises CapFileError with the reason on anything wrong."""
    return parse_components(_read_entries(data))
