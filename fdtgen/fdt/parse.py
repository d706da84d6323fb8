"""The strict DTB parser: untrusted bytes -> :class:`fdtgen.fdt.tree.DeviceTree`.

Devicetree Specification, chapter "Flattened Devicetree (DTB) Format": a
header, then a memory reservation block ("Memory Reservation Block", 8-byte
aligned, ended by a zero-size entry), a structure block ("Structure Block",
4-byte tokens ``FDT_BEGIN_NODE``/``FDT_END_NODE``/``FDT_PROP``/``FDT_NOP``/
``FDT_END``, properties before subnodes) and a strings block ("Strings
Block"), in any order ("Alignment": "the devicetree blob may be placed at any
position"). Every read is bounds-checked against both ``len(buf)`` and the
header's sizes, and the walk is iterative, so a corrupt blob can only end in a
:class:`fdtgen.errors.BlobError` naming the offset, what was expected and what
was found.

Accepted and kept: ``FDT_NOP`` tokens anywhere, padding between and after the
blocks, any block order, versions 16 and 17 and any later version whose
``last_comp_version`` is at most 17 (libfdt ``fdt_check_header``). Rejected:
everything libfdt's ``fdt_check_full`` rejects (except a named root node, which
``fdtgen verify`` reports instead), plus overlapping blocks, a structure block
that does not end exactly at ``FDT_END``, properties after subnodes, duplicate
names, names dtc refuses as errors (so DTS could not spell them), and nesting
deeper than Linux reads
(``FDT_MAX_DEPTH`` 64 in ``drivers/of/fdt.c``).

:func:`phandle_uses` decodes the phandle references dtc's checks know
(``checks.c``: ``clocks``/``#clock-cells`` and the other provider pairs,
``*-gpios``, ``interrupt-parent``, ``interrupt-map``, ``msi-map``), and
:func:`with_labels` turns them back into ``&label`` references so the DTS of a
parsed blob reads like source and compiles without phandle warnings.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from fdtgen.errors import BlobError
from fdtgen.fdt.encode import (
    FDT_BEGIN_NODE,
    FDT_END,
    FDT_END_NODE,
    FDT_MAGIC,
    FDT_NOP,
    FDT_PROP,
    HEADER_SIZE,
)
from fdtgen.fdt.names import DTC_NAME_CHARS, DTC_NODE_NAME_RE, DTC_PROP_NAME_RE
from fdtgen.fdt.tree import DeviceTree, Node, Prop, guess_kind

MAX_DEPTH = 64  # Linux drivers/of/fdt.c FDT_MAX_DEPTH: deeper nodes are dropped
V16_HEADER_SIZE = 36  # v16 has no size_dt_struct (added in v17)
FIRST_VERSION = 16
LAST_COMP_VERSION = 17  # the newest format version this parser reads
RSV_ENTRY_SIZE = 16  # two big-endian u64: address, size


_TOKEN_NAMES = {
    FDT_BEGIN_NODE: "FDT_BEGIN_NODE",
    FDT_END_NODE: "FDT_END_NODE",
    FDT_PROP: "FDT_PROP",
    FDT_NOP: "FDT_NOP",
    FDT_END: "FDT_END",
}
_U32 = struct.Struct(">I")
_PROP_HEAD = struct.Struct(">II")
_PENDING = Node("")  # a child's place among its siblings until its FDT_END_NODE


class Header(NamedTuple):
    """The header fields (DT spec "Header"); ``size_dt_struct`` is ``None`` before v17."""

    totalsize: int
    off_dt_struct: int
    off_dt_strings: int
    off_mem_rsvmap: int
    version: int
    last_comp_version: int
    boot_cpuid_phys: int
    size_dt_strings: int
    size_dt_struct: int | None

    @property
    def size(self) -> int:
        return HEADER_SIZE if self.version >= 17 else V16_HEADER_SIZE


class Block(NamedTuple):
    """One of the blob's blocks: ``[base, end)`` in blob offsets."""

    name: str
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


class Blob(NamedTuple):
    """A parsed blob: the tree plus what the encoding looked like.

    ``blocks`` lists the header and the three blocks by offset; ``nops`` counts
    ``FDT_NOP`` tokens; ``file_size`` is ``len(buf)`` (it may exceed
    ``totalsize``).
    """

    header: Header
    tree: DeviceTree
    blocks: tuple[Block, ...]
    nops: int
    file_size: int


def parse(buf: bytes) -> DeviceTree:
    """The tree in ``buf``; raises :class:`BlobError` on any malformation."""
    return parse_blob(buf).tree


def is_blob(head: bytes) -> bool:
    """Whether ``head`` starts with the FDT magic ``0xd00dfeed``."""
    return len(head) >= 4 and _U32.unpack_from(head, 0)[0] == FDT_MAGIC


def _u32(buf: bytes, off: int) -> int:
    return int(_U32.unpack_from(buf, off)[0])


def parse_header(buf: bytes) -> Header:
    """The header, checked against ``len(buf)`` (libfdt ``fdt_check_header``)."""
    if len(buf) < 4:
        raise BlobError(
            f"header: expected at least 4 bytes for the magic {FDT_MAGIC:#010x}, found "
            f"{len(buf)} (not a DTB)",
            0,
        )
    magic = _u32(buf, 0)
    if magic != FDT_MAGIC:
        # The file's own bytes are not echoed: it may be anything (a key, /etc/shadow).
        found = (
            "it byte-swapped (a blob written little-endian)"
            if magic == int.from_bytes(FDT_MAGIC.to_bytes(4, "big"), "little")
            else "other bytes"
        )
        raise BlobError(f"magic: expected {FDT_MAGIC:#010x}, found {found} (not a DTB)", 0)
    if len(buf) < V16_HEADER_SIZE:
        raise BlobError(f"header: expected at least {V16_HEADER_SIZE} bytes, found {len(buf)}", 0)
    version, last_comp = _u32(buf, 0x14), _u32(buf, 0x18)
    if version < FIRST_VERSION:
        raise BlobError(f"version: expected {FIRST_VERSION} or later, found {version}", 0x14)
    if last_comp > LAST_COMP_VERSION or last_comp > version:
        raise BlobError(
            f"last_comp_version: expected at most {min(version, LAST_COMP_VERSION)} "
            f"(version {version}), found {last_comp}",
            0x18,
        )
    hdr_size = HEADER_SIZE if version >= 17 else V16_HEADER_SIZE
    if len(buf) < hdr_size:
        raise BlobError(
            f"header: expected {hdr_size} bytes for version {version}, found {len(buf)}", 0
        )
    totalsize = _u32(buf, 0x04)
    if totalsize < hdr_size:
        raise BlobError(
            f"totalsize: expected at least the {hdr_size}-byte header, found {totalsize:#x}", 0x04
        )
    if totalsize > len(buf):
        raise BlobError(
            f"totalsize: expected at most the {len(buf):#x} bytes present, found {totalsize:#x}",
            0x04,
        )
    return Header(
        totalsize=totalsize,
        off_dt_struct=_u32(buf, 0x08),
        off_dt_strings=_u32(buf, 0x0C),
        off_mem_rsvmap=_u32(buf, 0x10),
        version=version,
        last_comp_version=last_comp,
        boot_cpuid_phys=_u32(buf, 0x1C),
        size_dt_strings=_u32(buf, 0x20),
        size_dt_struct=_u32(buf, 0x24) if version >= 17 else None,
    )


def _check_block(hdr: Header, name: str, field_off: int, base: int, size: int | None) -> None:
    if not hdr.size <= base <= hdr.totalsize:
        raise BlobError(
            f"{name} offset: expected {hdr.size:#x}..{hdr.totalsize:#x} (after the header, "
            f"inside totalsize), found {base:#x}",
            field_off,
        )
    if size is not None and base + size > hdr.totalsize:
        raise BlobError(
            f"{name}: expected [{base:#x}, {base + size:#x}) to end inside totalsize "
            f"{hdr.totalsize:#x}, found size {size:#x}",
            field_off,
        )


def parse_blob(buf: bytes) -> Blob:
    """Parse ``buf`` strictly; see the module docstring for what is accepted."""
    buf = bytes(buf)
    hdr = parse_header(buf)
    _check_block(hdr, "strings block", 0x0C, hdr.off_dt_strings, hdr.size_dt_strings)
    _check_block(hdr, "structure block", 0x08, hdr.off_dt_struct, hdr.size_dt_struct)
    _check_block(hdr, "memory reservation map", 0x10, hdr.off_mem_rsvmap, None)
    if hdr.off_dt_struct % 4:
        raise BlobError(
            f"structure block offset: expected a multiple of 4, found {hdr.off_dt_struct:#x}", 0x08
        )
    starts = (hdr.off_dt_struct, hdr.off_dt_strings, hdr.totalsize)
    rsv_limit = min(s for s in starts if s > hdr.off_mem_rsvmap or s == hdr.totalsize)
    reserve, rsv_size = _reservations(buf, hdr.off_mem_rsvmap, rsv_limit)
    if hdr.size_dt_struct is None:
        others = (hdr.off_mem_rsvmap, hdr.off_dt_strings, hdr.totalsize)
        struct_limit = min(s for s in others if s > hdr.off_dt_struct or s == hdr.totalsize)
    else:
        struct_limit = hdr.off_dt_struct + hdr.size_dt_struct
    head = Block("header", 0, hdr.size)
    rsv = Block("memory reservation map", hdr.off_mem_rsvmap, rsv_size)
    strings_block = Block("strings block", hdr.off_dt_strings, hdr.size_dt_strings)
    if hdr.size_dt_struct is not None:  # v17: check the layout before walking
        _check_disjoint(
            (
                head,
                rsv,
                Block("structure block", hdr.off_dt_struct, hdr.size_dt_struct),
                strings_block,
            )
        )
    strings = buf[hdr.off_dt_strings : hdr.off_dt_strings + hdr.size_dt_strings]
    root, struct_end, nops = _structure(buf, hdr, struct_limit, strings)
    blocks = (
        head,
        rsv,
        Block("structure block", hdr.off_dt_struct, struct_end - hdr.off_dt_struct),
        strings_block,
    )
    _check_disjoint(blocks)
    tree = DeviceTree(root, reserve=reserve, boot_cpuid_phys=hdr.boot_cpuid_phys)
    return Blob(hdr, tree, tuple(sorted(blocks, key=lambda b: (b.base, b.name))), nops, len(buf))


def _check_disjoint(blocks: tuple[Block, ...]) -> None:
    """DT spec "Alignment": the header and the blocks must not share bytes."""
    ordered = sorted((b for b in blocks if b.size), key=lambda b: (b.base, b.name))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.base < a.end:
            raise BlobError(
                f"{b.name}: expected to start at or after the end of the {a.name} "
                f"[{a.base:#x}, {a.end:#x}), found it at {b.base:#x}",
                b.base,
            )


def _reservations(buf: bytes, base: int, limit: int) -> tuple[tuple[tuple[int, int], ...], int]:
    """The reservation entries up to the terminator (libfdt: the first zero size)."""
    out: list[tuple[int, int]] = []
    off = base
    while True:
        if off + RSV_ENTRY_SIZE > limit:
            raise BlobError(
                f"memory reservation map: expected a terminating zero-size entry before "
                f"{limit:#x}, found {len(out)} entries and no terminator",
                off,
            )
        address, size = struct.unpack_from(">QQ", buf, off)
        off += RSV_ENTRY_SIZE
        if size == 0:
            return tuple(out), off - base
        out.append((address, size))


def _path(names: list[str]) -> str:
    """The path of the innermost open node, from the open nodes' names (root first)."""
    return "/" + "/".join(names[1:])


def _structure(buf: bytes, hdr: Header, limit: int, strings: bytes) -> tuple[Node, int, int]:
    """Walk the structure block iteratively; returns (root, end offset, NOP count).

    One loop over the tokens; a node under construction is its name, an
    ordered dict of its properties and one of its children (name to value), so
    the uniqueness checks are dict lookups. Property names are read and checked
    once per string-table offset; paths are spelled only for an error."""
    u32 = _U32.unpack_from
    prop_head = _PROP_HEAD.unpack_from
    find = buf.find
    node_ok = DTC_NODE_NAME_RE.fullmatch
    new = tuple.__new__
    pos = hdr.off_dt_struct
    names: list[str] = []  # the open nodes' names, root first
    props: list[dict[str, Prop]] = []  # their properties
    kids: list[dict[str, Node]] = []  # their children so far
    prop_names: dict[int, str] = {}  # strings-block offset -> checked name
    root: Node | None = None
    nops = 0
    while True:
        if pos + 4 > limit:
            what = "FDT_END" if root is not None else "a token"
            raise BlobError(
                f"structure block: expected {what}, found the end of the block at {limit:#x}", pos
            )
        (token,) = u32(buf, pos)
        if token == FDT_PROP:
            if not names:
                raise BlobError(
                    "structure block: expected FDT_BEGIN_NODE, found FDT_PROP outside any node", pos
                )
            if pos + 12 > limit:
                raise BlobError(
                    f"property header: expected 8 bytes (len, nameoff) before {limit:#x}, found "
                    f"{max(limit - pos - 4, 0)}",
                    pos + 4,
                )
            length, nameoff = prop_head(buf, pos + 4)
            value_end = pos + 12 + length
            if value_end > limit:
                raise BlobError(
                    f"node {_path(names)}: property length: expected at most "
                    f"{limit - pos - 12:#x} bytes left in the structure block, found {length:#x}",
                    pos + 4,
                )
            name = prop_names.get(nameoff)
            if name is None:
                name = prop_names[nameoff] = _prop_name(strings, nameoff, hdr, names, pos)
            mine = props[-1]
            if kids[-1]:
                raise BlobError(
                    f"node {_path(names)}: expected properties before subnodes (DT spec), found "
                    f"property {name!r} after a subnode",
                    pos,
                )
            if name in mine:
                raise BlobError(
                    f"node {_path(names)}: expected unique property names, found {name!r} twice",
                    pos,
                )
            value = buf[pos + 12 : value_end]
            mine[name] = new(Prop, (name, value, guess_kind(value), ()))
            pos = (value_end + 3) & ~3
        elif token == FDT_BEGIN_NODE:
            if root is not None:
                raise BlobError(
                    "structure block: expected FDT_END after the root node, found FDT_BEGIN_NODE",
                    pos,
                )
            if len(names) >= MAX_DEPTH:
                raise BlobError(
                    f"node {_path(names)}: expected nesting of at most {MAX_DEPTH} levels "
                    "(Linux FDT_MAX_DEPTH), found a deeper FDT_BEGIN_NODE",
                    pos,
                )
            nul = find(b"\0", pos + 4, limit)
            if nul < 0:
                raise BlobError(
                    "node name: expected a NUL-terminated name inside the structure block, "
                    "found none",
                    pos + 4,
                )
            name = buf[pos + 4 : nul].decode("latin-1")
            if names:
                if not node_ok(name):
                    raise _bad_name(name, pos + 4, f"node name under {_path(names)}", True)
                if name in kids[-1]:
                    raise BlobError(
                        f"node {_path(names)}: expected unique child names, found {name!r} twice",
                        pos,
                    )
                kids[-1][name] = _PENDING  # its place among the children, filled at its end
            elif name and not node_ok(name):
                raise _bad_name(name, pos + 4, "root node name", True)
            names.append(name)
            props.append({})
            kids.append({})
            pos = (nul + 1 + 3) & ~3
        elif token == FDT_END_NODE:
            if not names:
                raise BlobError(
                    "structure block: expected FDT_BEGIN_NODE or FDT_END, found FDT_END_NODE", pos
                )
            name = names.pop()
            built = new(Node, (name, tuple(props.pop().values()), tuple(kids.pop().values()), None))
            if names:
                kids[-1][name] = built
            else:
                root = built
            pos += 4
        elif token == FDT_NOP:
            nops += 1
            pos += 4
        elif token == FDT_END:
            if root is None:
                found = (
                    f"FDT_END with {len(names)} node(s) open"
                    if names
                    else "FDT_END before any node"
                )
                raise BlobError(f"structure block: expected FDT_END_NODE, found {found}", pos)
            end = pos + 4
            if hdr.size_dt_struct is not None and end != limit:
                raise BlobError(
                    f"size_dt_struct: expected {end - hdr.off_dt_struct:#x} (the block ends after "
                    f"FDT_END), found {hdr.size_dt_struct:#x}",
                    0x24,
                )
            return root, end, nops
        else:
            known = ", ".join(f"{n} {t}" for t, n in sorted(_TOKEN_NAMES.items()))
            raise BlobError(f"structure block: expected a token ({known}), found {token:#x}", pos)


def _prop_name(strings: bytes, nameoff: int, hdr: Header, names: list[str], pos: int) -> str:
    """The property name at ``nameoff`` in the strings block, checked; ``pos``
    is the ``FDT_PROP`` token naming it, ``names`` the open nodes."""
    if nameoff >= len(strings):
        raise BlobError(
            f"node {_path(names)}: property nameoff: expected less than the strings block "
            f"size {len(strings):#x}, found {nameoff:#x}",
            pos + 8,
        )
    nul = strings.find(b"\0", nameoff)
    if nul < 0:
        raise BlobError(
            f"node {_path(names)}: property name at strings offset {nameoff:#x}: expected a "
            "NUL inside the strings block, found none",
            hdr.off_dt_strings + nameoff,
        )
    name = strings[nameoff:nul].decode("latin-1")
    if not DTC_PROP_NAME_RE.fullmatch(name):
        raise _bad_name(
            name, hdr.off_dt_strings + nameoff, f"property name in {_path(names)}", False
        )
    return name


def _bad_name(text: str, offset: int, what: str, node: bool) -> BlobError:
    shape = f"[{DTC_NAME_CHARS}]+" + ("[@unit]" if node else "")
    return BlobError(f"{what}: expected {shape}, found {text!r}", offset)
