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
from collections.abc import Callable, Collection
from typing import Any

from fdtgen.errors import BlobTooLargeError, EncodeError
from fdtgen.fdt.names import (
    SPEC_NODE_CHARS,
    SPEC_NODE_NAME_RE,
    SPEC_PROP_CHARS,
    SPEC_PROP_NAME_RE,
)
from fdtgen.fdt.tree import DeviceTree, Node, Prop
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


_BEGIN = struct.pack(">I", FDT_BEGIN_NODE)
_END_NODE = struct.pack(">I", FDT_END_NODE)
_END = struct.pack(">I", FDT_END)
_PAD_LEN = (0, 3, 2, 1)
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")  # zeros to the next 4-byte boundary, by length % 4
_NAME_END = (b"\0\0\0\0", b"\0\0\0", b"\0\0", b"\0")  # a name's NUL and padding, by length % 4
_HEADER = struct.Struct(">10I").pack
_PROP_HEAD = struct.Struct(">III").pack  # FDT_PROP, value length, name offset
_RSV_ENTRY = struct.Struct(">QQ").pack
# Many names, each followed by a newline (which no name may hold): the spec's
# rules, possessive, as no backtracking can help a name match.
_N, _P = SPEC_NODE_CHARS, SPEC_PROP_CHARS
_node_names_ok = re.compile(f"(?:[{_N}]{{1,31}}+(?:@[{_N}]++)?\n)*+").fullmatch
_prop_names_ok = re.compile(f"(?:[{_P}]{{1,31}}+\n)*+").fullmatch


def encode(tree: DeviceTree, *, max_size: int = U32_MAX) -> bytes:
    """Flatten ``tree`` into a DTB, byte-identical to ``dtc -I dts -O dtb``.

    ``max_size`` caps the blob (the format's own cap is its 32-bit ``totalsize``).
    """
    return encode_located(tree, (), max_size=max_size)[0]


def encode_located(
    tree: DeviceTree, locate: Collection[tuple[str, str]], *, max_size: int = U32_MAX
) -> tuple[bytes, dict[tuple[str, str], int]]:
    """Like :func:`encode`, also returning the blob offset of each property value
    named in ``locate`` as ``(node path, property name)``.

    One pre-order walk, with an explicit stack, appends to one buffer. Names
    are checked against the DT spec in bulk after the walk, each rule by one
    regular expression over all the names: the string table's (a property
    name used a hundred times is checked once) and the nodes'. A property
    name seen twice in one node is caught by the string table, which notes
    the last node to use each name (nodes are numbered as they are met). The
    table also keeps the ``FDT_PROP`` header last written under each name: a
    name mostly comes in runs of one value length (every cpu's ``reg``, then
    every device's), so most headers are reused rather than packed again.
    Paths are worked out only for an error message or a located property.
    """
    root = tree.root
    if root.name:
        raise EncodeError(f"dtb: root node must have an empty name, not {root.name!r}")
    located = _targets(root, locate)
    buf = bytearray()
    strings = bytearray()
    # property name -> [offset in the strings block, the number of the last node using
    # it, the value length last written under it, the FDT_PROP header written then]
    table: dict[str, list[Any]] = {}
    visit = 0
    names: list[str] = []
    found: dict[tuple[str, str], int] = {}
    head, pad, name_end = _PROP_HEAD, _PAD, _NAME_END
    todo: list[Node | None] = [root]
    pop, push = todo.pop, todo.append
    try:
        while todo:
            node = pop()
            if node is None:
                buf += _END_NODE
                continue
            name, props, children, _ = node
            visit += 1
            raw = name.encode()
            buf += _BEGIN
            buf += raw
            buf += name_end[len(raw) & 3]
            for pname, value, _kind, _items in props:
                n = len(value)
                entry = table.get(pname)
                if entry is None:  # a new name: reuse a string that ends in it, or add it
                    key = pname.encode() + b"\0"
                    off = strings.find(key)
                    if off < 0:
                        off = len(strings)
                        strings += key
                    entry = table[pname] = [off, visit, n, head(FDT_PROP, n, off)]
                elif entry[1] == visit:
                    raise EncodeError(
                        f"dtb: node {_path_of(root, node)!r}: property {pname!r} appears twice"
                    )
                else:
                    entry[1] = visit
                    if n != entry[2]:
                        entry[2] = n
                        entry[3] = head(FDT_PROP, n, entry[0])
                buf += entry[3]
                buf += value
                if n & 3:
                    buf += pad[n & 3]
            if located and id(node) in located:
                path, wanted = located[id(node)]
                _locate(props, path, wanted, len(buf), found)
            if not children:
                buf += _END_NODE
            else:
                push(None)
                kids = [c[0] for c in children]
                if len(set(kids)) < len(kids):
                    raise EncodeError(
                        f"dtb: node {_path_of(root, node)!r}: child {_twice(kids)!r} appears twice"
                    )
                names += kids
                todo += children[::-1]
    except UnicodeEncodeError:  # a name with a lone surrogate, which no rule admits
        raise _bad_name(root) from None
    if not (_all_match(_prop_names_ok, table) and _all_match(_node_names_ok, names)):
        raise _bad_name(root)
    buf += _END

    rsv = bytearray()
    for base, size in tree.reserve:
        if not (0 <= base <= U64_MAX and 0 < size <= U64_MAX and base + size <= U64_MAX + 1):
            raise EncodeError(f"dtb: /memreserve/ {base:#x} {size:#x} is not a valid 64-bit range")
        rsv += _RSV_ENTRY(base, size)
    rsv += bytes(16)

    off_struct = HEADER_SIZE + len(rsv)
    off_strings = off_struct + len(buf)
    total = off_strings + len(strings)
    if total > max_size:
        raise BlobTooLargeError(total, max_size)
    header = _HEADER(
        FDT_MAGIC,
        total,
        off_struct,
        off_strings,
        HEADER_SIZE,
        FDT_VERSION,
        FDT_LAST_COMP_VERSION,
        tree.boot_cpuid(),
        len(strings),
        len(buf),
    )
    for located_prop in found:
        found[located_prop] += off_struct
    return b"".join((header, rsv, buf, strings)), found


def _targets(root: Node, locate: Collection[tuple[str, str]]) -> dict[int, tuple[str, list[str]]]:
    """The nodes ``locate`` names, by identity for this walk, with their paths and properties."""
    out: dict[int, tuple[str, list[str]]] = {}
    for path, name in locate:
        node = root.find(path)
        if node is not None:
            out.setdefault(id(node), (path, []))[1].append(name)
    return out


def _locate(
    props: tuple[Prop, ...],
    path: str,
    names: list[str],
    end: int,
    found: dict[tuple[str, str], int],
) -> None:
    """Record where ``names``' values start in the structure block, given that
    ``props`` end at ``end`` (walking back over them)."""
    at = end
    for name, value, _, _ in reversed(props):
        at -= len(value) + _PAD_LEN[len(value) & 3]
        if name in names:
            found[(path, name)] = at
        at -= 12


def _twice(names: list[str]) -> str:
    """The first name that an earlier one repeats."""
    return next(n for i, n in enumerate(names) if n in names[:i])


def _path_of(root: Node, target: Node) -> str:
    """The path of ``target`` (found by identity) under ``root``, for error messages."""
    return next(path for path, node in root.walk() if node is target)


def _all_match(names_ok: Callable[[str], object], names: Collection[str]) -> bool:
    """Every name (none holding a newline) matches, checked with one regular expression."""
    if not names:
        return True
    text = "\n".join(names) + "\n"
    return text.count("\n") == len(names) and names_ok(text) is not None


def _bad_name(root: Node) -> EncodeError:
    """The error for the first name, in blob order (a node's own, then its
    properties'), that breaks its DT spec rule."""
    for path, node in root.walk():
        if node is not root and not SPEC_NODE_NAME_RE.fullmatch(node.name):
            return EncodeError(
                f"dtb: node {path!r}: name {node.name!r} breaks the DT spec node-name rule "
                "(1-31 of [A-Za-z0-9,._+-], optional @unit-address)"
            )
        for prop in node.props:
            if not SPEC_PROP_NAME_RE.fullmatch(prop.name):
                return EncodeError(
                    f"dtb: node {path!r}: property name {prop.name!r} breaks the DT spec "
                    "property-name rule (1-31 of [A-Za-z0-9,._+?#-])"
                )
    raise AssertionError("every name keeps its rule")
