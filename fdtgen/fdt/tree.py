"""The device-tree model: immutable nodes and typed properties.

A :class:`Prop` keeps both its encoded bytes (what goes into the blob) and how
it was written (strings, 32-bit cells, 64-bit cells, raw bytes, phandle
references), so the DTS writer can render it the way a person would write it
and dtc compiles it back to the same bytes.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from fdtgen.units import U32_MAX, U64_MAX


class Kind(enum.Enum):
    EMPTY = "empty"
    STRINGS = "strings"
    CELLS = "cells"  # 32-bit cells, possibly with phandle references
    U64 = "u64"  # /bits/ 64 cells
    BYTES = "bytes"


@dataclass(frozen=True, slots=True)
class Ref:
    """A phandle reference: rendered ``&label`` in DTS, encoded as the number."""

    label: str
    phandle: int


Cell = int | Ref


@dataclass(frozen=True, slots=True)
class Prop:
    """A property. Build it with the class methods, which validate and encode."""

    name: str
    value: bytes
    kind: Kind
    items: tuple[object, ...] = ()

    @classmethod
    def empty(cls, name: str) -> Prop:
        return cls(name, b"", Kind.EMPTY)

    @classmethod
    def strings(cls, name: str, *values: str) -> Prop:
        if not values:
            raise ValueError(f"property {name!r}: a string list needs at least one string")
        parts = []
        for v in values:
            if "\0" in v:
                raise ValueError(f"property {name!r}: string {v!r} contains a NUL byte")
            parts.append(v.encode() + b"\0")
        return cls(name, b"".join(parts), Kind.STRINGS, values)

    @classmethod
    def cells(cls, name: str, *values: Cell) -> Prop:
        nums = []
        for v in values:
            n = v.phandle if isinstance(v, Ref) else v
            if not 0 <= n <= U32_MAX:
                raise ValueError(f"property {name!r}: cell {n:#x} does not fit in 32 bits")
            nums.append(n)
        return cls(name, struct.pack(f">{len(nums)}I", *nums), Kind.CELLS, values)

    @classmethod
    def u64(cls, name: str, *values: int) -> Prop:
        for v in values:
            if not 0 <= v <= U64_MAX:
                raise ValueError(f"property {name!r}: value {v:#x} does not fit in 64 bits")
        return cls(name, struct.pack(f">{len(values)}Q", *values), Kind.U64, values)

    @classmethod
    def bytes_(cls, name: str, data: bytes) -> Prop:
        return cls(name, bytes(data), Kind.BYTES, ())

    def as_cells(self) -> tuple[int, ...]:
        """The value as big-endian 32-bit cells (any kind whose length is a multiple of 4)."""
        if len(self.value) % 4:
            raise ValueError(f"property {self.name!r}: {len(self.value)} bytes is not whole cells")
        return struct.unpack(f">{len(self.value) // 4}I", self.value)

    def as_strings(self) -> tuple[str, ...]:
        if not self.value.endswith(b"\0"):
            raise ValueError(f"property {self.name!r} is not a NUL-terminated string list")
        return tuple(s.decode(errors="replace") for s in self.value[:-1].split(b"\0"))


@dataclass(frozen=True, slots=True)
class Node:
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
            yield from c.walk(f"{path.rstrip('/')}/{c.name}")


@dataclass(frozen=True, slots=True)
class DeviceTree:
    """A whole blob's content: the root, the reservation map, the boot CPU.

    ``boot_cpuid_phys`` ``None`` means what dtc derives from DTS source: the
    ``reg`` of the first child of ``/cpus`` when it is one cell, else 0.
    """

    root: Node
    reserve: tuple[tuple[int, int], ...] = field(default=())
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


def guess_kind(value: bytes) -> Kind:
    """How dtc would print an untyped value: strings, cells, or bytes."""
    if not value:
        return Kind.EMPTY
    if (
        value.endswith(b"\0")
        and not value.startswith(b"\0")
        and b"\0\0" not in value
        and all(0x20 <= b < 0x7F or b == 0 for b in value)
    ):
        return Kind.STRINGS
    if len(value) % 4 == 0:
        return Kind.CELLS
    return Kind.BYTES


def unit_name(prefix: str, base: int) -> str:
    """``virtio_mmio@a000000``: lowercase hex, no ``0x``, equal to the first reg address."""
    return f"{prefix}@{base:x}"


def reg_cells(base: int, size: int, address_cells: int = 2, size_cells: int = 2) -> tuple[int, ...]:
    """Split ``base``/``size`` into the parent's ``#address-cells``/``#size-cells``."""
    out: list[int] = []
    for value, n in ((base, address_cells), (size, size_cells)):
        if value >> (32 * n):
            raise ValueError(f"{value:#x} does not fit in {n} cell(s)")
        out.extend((value >> (32 * i)) & U32_MAX for i in reversed(range(n)))
    return tuple(out)
