"""The DTB encoder: the same bytes dtc writes for the same tree.

dtc (``flattree.c``): header v17 (last compatible 16), the reservation map at
offset 40 (``ALIGN(sizeof header, 8)``) ending in a 16-byte zero entry, the
structure block right after it, the strings block right after that, no
padding. Strings are added as the pre-order walk meets property names; a name
that already occurs anywhere in the table, including as the tail of a longer
name (``method`` inside ``enable-method``), reuses that offset
(``stringtable_insert``). No NOP tokens are written.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Collection

from fdtgen.errors import BlobTooLargeError, EncodeError
from fdtgen.fdt.tree import DeviceTree, Node
from fdtgen.units import U32_MAX, U64_MAX

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE = 1
FDT_END_NODE = 2
FDT_PROP = 3
FDT_NOP = 4
FDT_END = 9
FDT_VERSION = 17
FDT_LAST_COMP_VERSION = 16
HEADER_SIZE = 40

# DT spec "Node Names" / "Property Names": allowed characters, 1..31 of them.
NODE_NAME_RE = re.compile(r"[A-Za-z0-9,._+-]{1,31}(@[A-Za-z0-9,._+-]+)?")
PROP_NAME_RE = re.compile(r"[A-Za-z0-9,._+?#-]{1,31}")

_BEGIN = struct.pack(">I", FDT_BEGIN_NODE)
_END_NODE = struct.pack(">I", FDT_END_NODE)
_END = struct.pack(">I", FDT_END)
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")
_HEADER = struct.Struct(">10I").pack
_PROP_HEAD = struct.Struct(">III").pack  # FDT_PROP, value length, name offset


def encode(tree: DeviceTree, *, max_size: int = U32_MAX) -> bytes:
    """Flatten ``tree`` into a DTB, byte-identical to ``dtc -I dts -O dtb``.

    ``max_size`` caps the blob (the format's own cap is its 32-bit ``totalsize``).
    """
    return encode_located(tree, (), max_size=max_size)[0]


def encode_located(
    tree: DeviceTree, locate: Collection[tuple[str, str]], *, max_size: int = U32_MAX
) -> tuple[bytes, dict[tuple[str, str], int]]:
    """Like :func:`encode`, also returning the blob offset of each property value
    named in ``locate`` as ``(node path, property name)``."""
    struct_block = bytearray()
    strings = bytearray()
    offsets: dict[str, int] = {}
    found: dict[tuple[str, str], int] = {}
    pending_offsets: dict[tuple[str, str], int] = {}
    want = set(locate)

    def name_offset(name: str) -> int:
        off = offsets.get(name)
        if off is None:
            key = name.encode() + b"\0"
            off = strings.find(key)
            if off < 0:
                off = len(strings)
                strings.extend(key)
            offsets[name] = off
        return off

    def flatten(node: Node, path: str, is_root: bool) -> None:
        if is_root:
            if node.name:
                raise EncodeError(f"dtb: root node must have an empty name, not {node.name!r}")
        elif not NODE_NAME_RE.fullmatch(node.name):
            raise EncodeError(
                f"dtb: node {path!r}: name {node.name!r} breaks the DT spec node-name rule "
                "(1-31 of [A-Za-z0-9,._+-], optional @unit-address)"
            )
        raw = node.name.encode()
        struct_block.extend(_BEGIN)
        struct_block.extend(raw)
        struct_block.extend(b"\0")
        struct_block.extend(_PAD[(len(raw) + 1) % 4])
        seen: set[str] = set()
        for p in node.props:
            if not PROP_NAME_RE.fullmatch(p.name):
                raise EncodeError(
                    f"dtb: node {path!r}: property name {p.name!r} breaks the DT spec "
                    "property-name rule (1-31 of [A-Za-z0-9,._+?#-])"
                )
            if p.name in seen:
                raise EncodeError(f"dtb: node {path!r}: property {p.name!r} appears twice")
            seen.add(p.name)
            struct_block.extend(struct.pack(">III", FDT_PROP, len(p.value), name_offset(p.name)))
            if want and (path, p.name) in want:
                pending_offsets[(path, p.name)] = len(struct_block)
            struct_block.extend(p.value)
            struct_block.extend(_PAD[len(p.value) % 4])
        names: set[str] = set()
        for c in node.children:
            if c.name in names:
                raise EncodeError(f"dtb: node {path!r}: child {c.name!r} appears twice")
            names.add(c.name)
            flatten(c, f"{path.rstrip('/')}/{c.name}", False)
        struct_block.extend(_END_NODE)

    flatten(tree.root, "/", True)
    struct_block.extend(_END)

    rsv = bytearray()
    for base, size in tree.reserve:
        if not (0 <= base <= U64_MAX and 0 < size <= U64_MAX and base + size <= U64_MAX + 1):
            raise EncodeError(f"dtb: /memreserve/ {base:#x} {size:#x} is not a valid 64-bit range")
        rsv.extend(struct.pack(">QQ", base, size))
    rsv.extend(bytes(16))

    off_rsv = HEADER_SIZE
    off_struct = off_rsv + len(rsv)
    off_strings = off_struct + len(struct_block)
    total = off_strings + len(strings)
    if total > max_size:
        raise BlobTooLargeError(total, max_size)
    header = struct.pack(
        ">10I",
        FDT_MAGIC,
        total,
        off_struct,
        off_strings,
        off_rsv,
        FDT_VERSION,
        FDT_LAST_COMP_VERSION,
        tree.boot_cpuid(),
        len(strings),
        len(struct_block),
    )
    for key, rel in pending_offsets.items():
        found[key] = off_struct + rel
    return header + rsv + struct_block + strings, found
