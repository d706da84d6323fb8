"""The device-tree model: immutable nodes and typed properties.

A :class:`Prop` keeps both its encoded bytes (what goes into the blob) and how
it was written (strings, 32-bit cells, 64-bit cells, raw bytes, phandle
references), so the DTS writer can render it the way a person would write it
and dtc compiles it back to the same bytes.

:class:`Prop` and :class:`Node` are named tuples rather than dataclasses: a
build makes a few hundred of each, and a tuple is immutable, compares by value
and is built in one step, where a frozen dataclass sets each field through
``object.__setattr__`` (about five times the cost). The encoder unpacks them
as the plain tuples they are. :class:`Ref` and :class:`DeviceTree` are named
tuples too, so that reading a blob (``fdtgen dts``, ``diff``) never imports
``dataclasses``, whose ``inspect`` costs some 5 ms of every start.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from typing import NamedTuple

from fdtgen.units import U32_MAX, U64_MAX


class Kind(enum.Enum):
    EMPTY = "empty"
    STRINGS = "strings"
    CELLS = "cells"  # 32-bit cells, possibly with phandle references
    U64 = "u64"  # /bits/ 64 cells
    BYTES = "bytes"


class Ref(NamedTuple):
    """A phandle reference: rendered ``&label`` in DTS, encoded as the number.

    ``operator.index(ref)`` is the phandle, so a cell packs the same whether it
    was written as a reference or as the number.
    """

    label: str
    phandle: int

    def __index__(self) -> int:
        return int(self.phandle)


Cell = int | Ref

_EMPTY, _STRINGS, _CELLS, _U64, _BYTES = Kind.EMPTY, Kind.STRINGS, Kind.CELLS, Kind.U64, Kind.BYTES
CELLS = _CELLS
_tuple = tuple.__new__
# Packers for the common cell counts; longer values take struct's own format cache.
_PACK32 = tuple(struct.Struct(f">{n}I").pack for n in range(17))

# Loops that make a node per vCPU or per virtio transport build their nodes and
# properties as ``new(Node, (name, props, (), None))`` and
# ``new(Prop, (name, PACK_CELLS[n](*cells), CELLS, cells))``: the same tuples,
# without the generated ``__new__`` or the class methods' frames. They pass
# cells known to fit (a struct.error otherwise, never a wrong blob).
new = tuple.__new__
PACK_CELLS = _PACK32
_PACK64 = tuple(struct.Struct(f">{n}Q").pack for n in range(5))


class Prop(NamedTuple):
    """A property. Build it with the class methods, which validate and encode."""

    name: str
    value: bytes
    kind: Kind
    items: tuple[object, ...] = ()

    @classmethod
    def empty(cls, name: str) -> Prop:
        return _tuple(cls, (name, b"", _EMPTY, ()))

    @classmethod
    def strings(cls, name: str, *values: str) -> Prop:
        if len(values) == 1:
            v = values[0]
            if "\0" not in v:
                return _tuple(cls, (name, v.encode() + b"\0", _STRINGS, values))
        elif not values:
            raise ValueError(f"property {name!r}: a string list needs at least one string")
        for v in values:
            if "\0" in v:
                raise ValueError(f"property {name!r}: string {v!r} contains a NUL byte")
        return _tuple(cls, (name, "\0".join(values).encode() + b"\0", _STRINGS, values))

    @classmethod
    def cells(cls, name: str, *values: Cell) -> Prop:
        n = len(values)
        try:
            value = _PACK32[n](*values) if n < 17 else struct.pack(f">{n}I", *values)
        except (struct.error, TypeError):
            for v in values:
                c = v.phandle if isinstance(v, Ref) else v
                if not 0 <= c <= U32_MAX:
                    raise ValueError(
                        f"property {name!r}: cell {c:#x} does not fit in 32 bits"
                    ) from None
            raise
        return _tuple(cls, (name, value, _CELLS, values))

    @classmethod
    def u64(cls, name: str, *values: int) -> Prop:
        n = len(values)
        try:
            value = _PACK64[n](*values) if n < 5 else struct.pack(f">{n}Q", *values)
        except (struct.error, TypeError):
            for v in values:
                if not 0 <= v <= U64_MAX:
                    raise ValueError(
                        f"property {name!r}: value {v:#x} does not fit in 64 bits"
                    ) from None
            raise
        return _tuple(cls, (name, value, _U64, values))

    @classmethod
    def bytes_(cls, name: str, data: bytes) -> Prop:
        return _tuple(cls, (name, bytes(data), _BYTES, ()))

    def as_cells(self) -> tuple[int, ...]:
        """The value as big-endian 32-bit cells (any kind whose length is a multiple of 4)."""
        if len(self.value) % 4:
            raise ValueError(f"property {self.name!r}: {len(self.value)} bytes is not whole cells")
        return struct.unpack(f">{len(self.value) // 4}I", self.value)

    def as_strings(self) -> tuple[str, ...]:
        if not self.value.endswith(b"\0"):
            raise ValueError(f"property {self.name!r} is not a NUL-terminated string list")
        return tuple(s.decode(errors="replace") for s in self.value[:-1].split(b"\0"))


class Node(NamedTuple):
    """A node: properties first, then children (DT spec "Structure Block")."""

    name: str
    props: tuple[Prop, ...] = ()
    children: tuple[Node, ...] = ()
    label: str | None = None

    def prop(self, name: str) -> Prop | None:
        for p in self.props:
            if p.name == name:
                return p
        return None

    def child(self, name: str) -> Node | None:
        for c in self.children:
            if c.name == name:
                return c
        return None

    def find(self, path: str) -> Node | None:
        """Node at an absolute path (``/cpus/cpu@0``); ``/`` is this node."""
        node: Node | None = self
        for part in path.strip("/").split("/") if path.strip("/") else ():
            node = node.child(part) if node else None
        return node

    def walk(self, path: str = "/") -> Iterator[tuple[str, Node]]:
        """Every node with its absolute path, pre-order (the blob's order)."""
        yield path, self
        for c in self.children:
            yield from c.walk(child_path(path, c.name))


class DeviceTree(NamedTuple):
    """A whole blob's content: the root, the reservation map, the boot CPU.

    ``boot_cpuid_phys`` ``None`` means what dtc derives from DTS source: the
    ``reg`` of the first child of ``/cpus`` when it is one cell, else 0.
    """

    root: Node
    reserve: tuple[tuple[int, int], ...] = ()
    boot_cpuid_phys: int | None = None

    def boot_cpuid(self) -> int:
        if self.boot_cpuid_phys is not None:
            return self.boot_cpuid_phys
        cpus = self.root.child("cpus")
        if cpus and cpus.children:
            reg = cpus.children[0].prop("reg")
            if reg is not None and len(reg.value) == 4:
                return int.from_bytes(reg.value, "big")
        return 0


# Bytes dtc prints inside a string: printable ASCII and the NUL between strings.
_PRINTABLE_OR_NUL = bytes([0, *range(0x20, 0x7F)])


def guess_kind(value: bytes) -> Kind:
    """How dtc would print an untyped value: strings, cells, or bytes."""
    if not value:
        return _EMPTY
    if (
        value[-1] == 0
        and value[0] != 0
        and b"\0\0" not in value
        and not value.translate(None, _PRINTABLE_OR_NUL)
    ):
        return _STRINGS
    return _CELLS if len(value) % 4 == 0 else _BYTES


def child_path(path: str, name: str) -> str:
    """The path of the child ``name`` of the node at ``path`` (``/`` is the root)."""
    return f"{path.rstrip('/')}/{name}"


def unit_name(prefix: str, base: int) -> str:
    """``virtio_mmio@a000000``: lowercase hex, no ``0x``, equal to the first reg address."""
    return f"{prefix}@{base:x}"


def reg_cells(base: int, size: int, address_cells: int = 2, size_cells: int = 2) -> tuple[int, ...]:
    """Split ``base``/``size`` into the parent's ``#address-cells``/``#size-cells``."""
    if address_cells == 2 and size_cells == 2 and not (base >> 64 or size >> 64):
        return (base >> 32, base & U32_MAX, size >> 32, size & U32_MAX)
    out: list[int] = []
    for value, n in ((base, address_cells), (size, size_cells)):
        if value >> (32 * n):
            raise ValueError(f"{value:#x} does not fit in {n} cell(s)")
        out.extend((value >> (32 * i)) & U32_MAX for i in reversed(range(n)))
    return tuple(out)
