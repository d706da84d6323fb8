"""Guest-physical address ranges and tagged regions: the values every map is made of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING

from fdtgen.errors import (
    LayoutError,
)
from fdtgen.spec import PAGE_SIZE

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, slots=True, order=True)
class Range:
    """Half-open guest-physical range ``[base, end)``, in bytes."""

    base: int
    size: int

    def __post_init__(self) -> None:
        if self.base < 0 or self.size <= 0:
            raise LayoutError(f"invalid range base={self.base:#x} size={self.size:#x}")

    @property
    def end(self) -> int:
        return self.base + self.size

    def overlaps(self, other: Range) -> bool:
        return self.base < other.end and other.base < self.end

    def contains(self, other: Range) -> bool:
        return self.base <= other.base and other.end <= self.end

    def __str__(self) -> str:
        return f"[{self.base:#x}, {self.end:#x})"


def subtract(ranges: Sequence[Range], taken: Range) -> list[Range]:
    """``ranges`` (sorted, disjoint) without ``taken``; the result stays sorted and disjoint."""
    out: list[Range] = []
    for r in ranges:
        if not r.overlaps(taken):
            out.append(r)
            continue
        if r.base < taken.base:
            out.append(Range(r.base, taken.base - r.base))
        if taken.end < r.end:
            out.append(Range(taken.end, r.end - taken.end))
    return out


# Sort keys in Range's own order (base, then size), read in C rather than
# through Range's comparison methods: maps are sorted on every build.
by_range = attrgetter("base", "size")
by_address = attrgetter("range.base", "range.size", "tag")  # Region, Device, hole


@dataclass(frozen=True, slots=True)
class Region:
    """A tagged range of the map (``"gic-dist"``, ``"uart0"``, ``"virtio-7"``)."""

    tag: str
    range: Range
    align: int = PAGE_SIZE
