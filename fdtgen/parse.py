"""The strict DTB parser: untrusted bytes -> :class:`fdtgen.tree.DeviceTree`.

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

from dataclasses import dataclass
import re
import struct

from .dtb import (
    FDT_BEGIN_NODE,
    FDT_END,
    FDT_END_NODE,
    FDT_MAGIC,
    FDT_NOP,
    FDT_PROP,
    HEADER_SIZE,
)
from .errors import BlobError
from .tree import DeviceTree, Kind, Node, Prop, Ref, guess_kind

MAX_DEPTH = 64  # Linux drivers/of/fdt.c FDT_MAX_DEPTH: deeper nodes are dropped
V16_HEADER_SIZE = 36  # v16 has no size_dt_struct (added in v17)
FIRST_VERSION = 16
LAST_COMP_VERSION = 17  # the newest format version this parser reads
RSV_ENTRY_SIZE = 16  # two big-endian u64: address, size

# The names dtc accepts without an error (checks.c: PROPNODECHARS for
# properties, NODECHARS plus node_name_format's single '@' for nodes); any
# other name could not be compiled back from DTS.
PROP_NAME_CHARS = "A-Za-z0-9,._+*#?-"
PROP_NAME_RE = re.compile(f"[{PROP_NAME_CHARS}]+")
NODE_NAME_RE = re.compile(f"[{PROP_NAME_CHARS}]+(@[{PROP_NAME_CHARS}]*)?")

_TOKEN_NAMES = {
    FDT_BEGIN_NODE: "FDT_BEGIN_NODE",
    FDT_END_NODE: "FDT_END_NODE",
    FDT_PROP: "FDT_PROP",
    FDT_NOP: "FDT_NOP",
    FDT_END: "FDT_END",
}
_U32 = struct.Struct(">I")
_PROP_HEAD = struct.Struct(">II")


@dataclass(frozen=True, slots=True)
class Header:
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


@dataclass(frozen=True, slots=True)
class Block:
    """One of the blob's blocks: ``[base, end)`` in blob offsets."""

    name: str
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class Blob:
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
        raise BlobError(f"header: expected at least 4 bytes for the magic, found {len(buf)}", 0)
    magic = _u32(buf, 0)
    if magic != FDT_MAGIC:
        raise BlobError(f"magic: expected {FDT_MAGIC:#010x}, found {magic:#010x}", 0)
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


class _Open:
    """A node whose ``FDT_END_NODE`` has not been seen yet."""

    __slots__ = ("name", "props", "children", "prop_names", "child_names", "path")

    def __init__(self, name: str, path: str) -> None:
        self.name, self.path = name, path
        self.props: list[Prop] = []
        self.children: list[Node] = []
        self.prop_names: set[str] = set()
        self.child_names: set[str] = set()


def _structure(buf: bytes, hdr: Header, limit: int, strings: bytes) -> tuple[Node, int, int]:
    """Walk the structure block iteratively; returns (root, end offset, NOP count)."""
    pos = hdr.off_dt_struct
    stack: list[_Open] = []
    root: Node | None = None
    nops = 0
    while True:
        if pos + 4 > limit:
            what = "FDT_END" if root is not None else "a token"
            raise BlobError(
                f"structure block: expected {what}, found the end of the block at {limit:#x}", pos
            )
        token = _u32(buf, pos)
        if token == FDT_NOP:
            nops += 1
            pos += 4
        elif token == FDT_BEGIN_NODE:
            if root is not None:
                raise BlobError(
                    "structure block: expected FDT_END after the root node, found FDT_BEGIN_NODE",
                    pos,
                )
            if len(stack) >= MAX_DEPTH:
                raise BlobError(
                    f"node {stack[-1].path}: expected nesting of at most {MAX_DEPTH} levels "
                    "(Linux FDT_MAX_DEPTH), found a deeper FDT_BEGIN_NODE",
                    pos,
                )
            nul = buf.find(b"\0", pos + 4, limit)
            if nul < 0:
                raise BlobError(
                    "node name: expected a NUL-terminated name inside the structure block, "
                    "found none",
                    pos + 4,
                )
            raw = buf[pos + 4 : nul]
            if stack:
                parent = stack[-1]
                name = _name(raw, pos + 4, f"node name under {parent.path}", NODE_NAME_RE)
                if name in parent.child_names:
                    raise BlobError(
                        f"node {parent.path}: expected unique child names, found {name!r} twice",
                        pos,
                    )
                parent.child_names.add(name)
                path = f"{parent.path.rstrip('/')}/{name}"
            else:
                name = _name(raw, pos + 4, "root node name", NODE_NAME_RE) if raw else ""
                path = "/"
            stack.append(_Open(name, path))
            pos = (nul + 1 + 3) & ~3
        elif token == FDT_PROP:
            if not stack:
                raise BlobError(
                    "structure block: expected FDT_BEGIN_NODE, found FDT_PROP outside any node", pos
                )
            node = stack[-1]
            if pos + 12 > limit:
                raise BlobError(
                    f"property header: expected 8 bytes (len, nameoff) before {limit:#x}, found "
                    f"{max(limit - pos - 4, 0)}",
                    pos + 4,
                )
            length, nameoff = _PROP_HEAD.unpack_from(buf, pos + 4)
            value_end = pos + 12 + length
            if value_end > limit:
                raise BlobError(
                    f"node {node.path}: property length: expected at most {limit - pos - 12:#x} "
                    f"bytes left in the structure block, found {length:#x}",
                    pos + 4,
                )
            if nameoff >= len(strings):
                raise BlobError(
                    f"node {node.path}: property nameoff: expected less than the strings block "
                    f"size {len(strings):#x}, found {nameoff:#x}",
                    pos + 8,
                )
            nul = strings.find(b"\0", nameoff)
            if nul < 0:
                raise BlobError(
                    f"node {node.path}: property name at strings offset {nameoff:#x}: expected a "
                    "NUL inside the strings block, found none",
                    hdr.off_dt_strings + nameoff,
                )
            name = _name(
                strings[nameoff:nul],
                hdr.off_dt_strings + nameoff,
                f"property name in {node.path}",
                PROP_NAME_RE,
            )
            if node.children:
                raise BlobError(
                    f"node {node.path}: expected properties before subnodes (DT spec), found "
                    f"property {name!r} after a subnode",
                    pos,
                )
            if name in node.prop_names:
                raise BlobError(
                    f"node {node.path}: expected unique property names, found {name!r} twice", pos
                )
            node.prop_names.add(name)
            value = buf[pos + 12 : value_end]
            node.props.append(Prop(name, value, guess_kind(value)))
            pos = (value_end + 3) & ~3
        elif token == FDT_END_NODE:
            if not stack:
                raise BlobError(
                    "structure block: expected FDT_BEGIN_NODE or FDT_END, found FDT_END_NODE", pos
                )
            done = stack.pop()
            built = Node(done.name, tuple(done.props), tuple(done.children))
            if stack:
                stack[-1].children.append(built)
            else:
                root = built
            pos += 4
        elif token == FDT_END:
            if root is None:
                found = (
                    f"FDT_END with {len(stack)} node(s) open"
                    if stack
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


def _name(raw: bytes, offset: int, what: str, rule: re.Pattern[str]) -> str:
    text = raw.decode("latin-1")
    if not rule.fullmatch(text):
        shape = f"[{PROP_NAME_CHARS}]+" + ("[@unit]" if rule is NODE_NAME_RE else "")
        raise BlobError(f"{what}: expected {shape}, found {text!r}", offset)
    return text


# ---------------------------------------------------------------------------
# Phandle references (dtc checks.c), for verify and for readable DTS.

# Consumer property -> the provider's cells property (dtc
# WARNING_PROPERTY_PHANDLE_CELLS); msi-parent's #msi-cells is optional.
PROVIDER_CELLS = {
    "clocks": "#clock-cells",
    "cooling-device": "#cooling-cells",
    "dmas": "#dma-cells",
    "hwlocks": "#hwlock-cells",
    "interrupts-extended": "#interrupt-cells",
    "io-channels": "#io-channel-cells",
    "iommus": "#iommu-cells",
    "mboxes": "#mbox-cells",
    "msi-parent": "#msi-cells",
    "mux-controls": "#mux-control-cells",
    "phys": "#phy-cells",
    "power-domains": "#power-domain-cells",
    "pwms": "#pwm-cells",
    "resets": "#reset-cells",
    "sound-dai": "#sound-dai-cells",
    "thermal-sensors": "#thermal-sensor-cells",
}
OPTIONAL_CELLS = frozenset({"msi-parent"})
SINGLE_PHANDLE = frozenset({"interrupt-parent", "next-level-cache"})
NO_PHANDLE = (0, 0xFFFF_FFFF)  # dtc: "a cell value 0 or -1 to skip over optional entries"


@dataclass(frozen=True, slots=True)
class PhandleUse:
    """One phandle cell in a property: ``cell`` indexes the property's cells.

    ``target`` is the path of the node carrying that phandle, ``None`` if none
    does; ``problem`` says why the rest of the property could not be decoded.
    """

    path: str
    prop: str
    cell: int
    phandle: int
    target: str | None
    problem: str = ""


class _Index:
    """Nodes by path, each path's parent, and the path each phandle names."""

    __slots__ = ("nodes", "parents", "by_phandle")

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.parents: dict[str, str] = {}
        self.by_phandle: dict[int, str] = {}


def node_phandle(node: Node) -> int | None:
    """The node's ``phandle`` (or legacy ``linux,phandle``) when it is one cell."""
    for name in ("phandle", "linux,phandle"):
        p = node.prop(name)
        if p is not None and len(p.value) == 4:
            return int.from_bytes(p.value, "big")
    return None


def _index(root: Node) -> _Index:
    ix = _Index()
    for path, node in root.walk():
        ix.nodes[path] = node
        for c in node.children:
            ix.parents[f"{path.rstrip('/')}/{c.name}"] = path
        ph = node_phandle(node)
        if ph is not None and ph not in NO_PHANDLE:
            ix.by_phandle.setdefault(ph, path)
    return ix


def _cells_of(node: Node, name: str) -> int | None:
    p = node.prop(name)
    if p is None or len(p.value) != 4:
        return None
    return int.from_bytes(p.value, "big")


def _is_gpio_prop(name: str) -> bool:
    """dtc ``prop_is_gpio``: ``gpios``, ``gpio``, ``*-gpios``, ``*-gpio``, not ``nr-gpio*``."""
    if "nr-gpio" in name:
        return False
    return name.rsplit("-", 1)[-1] in ("gpios", "gpio")


def _address_cells_for_map(ix: _Index, path: str) -> int:
    """``#address-cells`` from ``path`` upwards (Linux ``of_irq_parse_raw``), default 2."""
    cur: str | None = path
    while cur is not None:
        n = _cells_of(ix.nodes[cur], "#address-cells")
        if n is not None:
            return n
        cur = ix.parents.get(cur)
    return 2


def phandle_uses(root: Node) -> list[PhandleUse]:
    """Every phandle reference dtc's checks decode, in tree order."""
    ix = _index(root)
    out: list[PhandleUse] = []
    for path, node in root.walk():
        for p in node.props:
            if len(p.value) % 4 or not p.value:
                continue
            cells = p.as_cells()
            if p.name in SINGLE_PHANDLE or (p.name == "cpu" and "/cpu-map" in path):
                if len(cells) == 1:
                    out.append(PhandleUse(path, p.name, 0, cells[0], ix.by_phandle.get(cells[0])))
            elif p.name in PROVIDER_CELLS:
                out.extend(
                    _specifier_list(
                        ix, path, p.name, cells, PROVIDER_CELLS[p.name], p.name in OPTIONAL_CELLS
                    )
                )
            elif _is_gpio_prop(p.name) and node.prop("gpio-hog") is None:
                out.extend(_specifier_list(ix, path, p.name, cells, "#gpio-cells", False))
            elif p.name == "interrupt-map":
                out.extend(_interrupt_map(ix, path, node, cells))
            elif p.name in ("msi-map", "iommu-map"):
                for i in range(1, len(cells), 4):
                    out.append(PhandleUse(path, p.name, i, cells[i], ix.by_phandle.get(cells[i])))
    return out


def _specifier_list(
    ix: _Index, path: str, prop: str, cells: tuple[int, ...], cells_name: str, optional: bool
) -> list[PhandleUse]:
    """``<&provider args... &provider args...>`` (dtc ``check_property_phandle_args``)."""
    out: list[PhandleUse] = []
    i = 0
    while i < len(cells):
        ph = cells[i]
        if ph in NO_PHANDLE:
            i += 1
            continue
        target = ix.by_phandle.get(ph)
        if target is None:
            out.append(PhandleUse(path, prop, i, ph, None))
            break
        n = _cells_of(ix.nodes[target], cells_name)
        if n is None and not optional:
            out.append(
                PhandleUse(path, prop, i, ph, target, f"provider {target} has no {cells_name}")
            )
            break
        n = n or 0
        if i + 1 + n > len(cells):
            out.append(
                PhandleUse(
                    path,
                    prop,
                    i,
                    ph,
                    target,
                    f"{len(cells)} cells are too few for {target}'s {cells_name} = {n}",
                )
            )
            break
        out.append(PhandleUse(path, prop, i, ph, target))
        i += 1 + n
    return out


def _interrupt_map(ix: _Index, path: str, node: Node, cells: tuple[int, ...]) -> list[PhandleUse]:
    """DT spec "interrupt-map": child unit address, child specifier, parent
    phandle, parent unit address, parent specifier."""
    out: list[PhandleUse] = []
    child_ints = _cells_of(node, "#interrupt-cells")
    if child_ints is None:
        return [PhandleUse(path, "interrupt-map", 0, 0, None, f"{path} has no #interrupt-cells")]
    i = 0
    while i < len(cells):
        j = i + _address_cells_for_map(ix, path) + child_ints
        if j >= len(cells):
            out.append(
                PhandleUse(
                    path, "interrupt-map", i, 0, None, "entry ends before its parent phandle"
                )
            )
            break
        ph = cells[j]
        target = ix.by_phandle.get(ph)
        if target is None:
            out.append(PhandleUse(path, "interrupt-map", j, ph, None))
            break
        parent = ix.nodes[target]
        parent_ints = _cells_of(parent, "#interrupt-cells")
        if parent_ints is None:
            out.append(
                PhandleUse(
                    path, "interrupt-map", j, ph, target, f"{target} has no #interrupt-cells"
                )
            )
            break
        nxt = j + 1 + (_cells_of(parent, "#address-cells") or 0) + parent_ints
        if nxt > len(cells):
            out.append(
                PhandleUse(path, "interrupt-map", j, ph, target, "the last entry is truncated")
            )
            break
        out.append(PhandleUse(path, "interrupt-map", j, ph, target))
        i = nxt
    return out


_LABEL_BAD = re.compile(r"[^A-Za-z0-9_]")


def with_labels(tree: DeviceTree) -> DeviceTree:
    """``tree`` with a label on every node that has a unique ``phandle`` and each
    decodable reference to it written as :class:`fdtgen.tree.Ref`.

    Only nodes with an explicit 4-byte ``phandle`` get labels: dtc would add a
    ``phandle`` property to a node referenced by label that lacks one, which
    would change the blob. A tree whose phandles dtc rejects (checks.c
    ``explicit_phandles``: wrong length, 0 or 0xffffffff, used twice, or
    ``linux,phandle`` disagreeing) is returned as it is: dtc resolves no
    reference in such a tree.
    """
    root = tree.root
    counts: dict[int, int] = {}
    for _, node in root.walk():
        values = set()
        for name in ("phandle", "linux,phandle"):
            p = node.prop(name)
            if p is None:
                continue
            if len(p.value) != 4 or int.from_bytes(p.value, "big") in NO_PHANDLE:
                return tree
            values.add(int.from_bytes(p.value, "big"))
        if len(values) > 1:
            return tree
        for v in values:
            counts[v] = counts.get(v, 0) + 1
    if any(n > 1 for n in counts.values()):
        return tree
    labels: dict[str, str] = {}
    by_phandle: dict[int, str] = {}
    used: set[str] = set()
    for path, node in root.walk():
        p = node.prop("phandle")
        if p is None or len(p.value) != 4:
            continue
        v = int.from_bytes(p.value, "big")
        base = _LABEL_BAD.sub("_", node.name or "root")
        if base[0].isdigit():
            base = "n" + base
        label, n = base, 1
        while label in used:
            n += 1
            label = f"{base}_{n}"
        used.add(label)
        labels[path] = label
        by_phandle[v] = label
    refs: dict[tuple[str, str], set[int]] = {}
    broken: set[tuple[str, str]] = set()
    for use in phandle_uses(root):
        key = (use.path, use.prop)
        if use.problem or use.phandle not in by_phandle:
            broken.add(key)
        else:
            refs.setdefault(key, set()).add(use.cell)

    def rebuild(node: Node, path: str) -> Node:
        props = []
        for p in node.props:
            cells = refs.get((path, p.name))
            if cells and (path, p.name) not in broken:
                items = tuple(
                    Ref(by_phandle[c], c) if i in cells else c for i, c in enumerate(p.as_cells())
                )
                p = Prop(p.name, p.value, Kind.CELLS, items)
            props.append(p)
        kids = tuple(rebuild(c, f"{path.rstrip('/')}/{c.name}") for c in node.children)
        return Node(node.name, tuple(props), kids, labels.get(path))

    return DeviceTree(rebuild(root, "/"), tree.reserve, tree.boot_cpuid_phys)
