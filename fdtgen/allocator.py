"""A deterministic guest-physical address allocator.

The design is openvmm's ``vm_topology::layout``: a pure-math allocator that
knows ranges, sizes, alignments and placement classes, and nothing about
architectures. Callers state what they need; :meth:`Allocator.allocate`
decides where, in fixed phases:

1. **validate** every request first: dynamic sizes are page multiples,
   alignments powers of two of at least a page, tags are unique, and every
   fixed range fits the guest physical address width;
2. **reserved and fixed**: fixed requests land at their own address and may
   not overlap one another. A reserved range only keeps dynamic requests and
   RAM out; a fixed request may sit inside one (a chipset zone holding the GIC);
3. **below 4 GiB**: top-down from 4 GiB;
4. **RAM**: the only splittable request, bottom-up in caller order, each
   request starting at or above the previous one's end (fragments are never
   backfilled), split around anything already placed;
5. **above 4 GiB**: bottom-up from ``max(RAM end, 4 GiB)``;
6. **after RAM**: in caller order, bottom-up after everything placed so far,
   so private ranges never move the guest-visible layout.

Within phases 3 and 5, requests are sorted by alignment (descending), then
size (descending), then input order (ascending): Python's sort is stable, so
equal keys keep the caller's order. The same requests always give the same
addresses; the layout is part of the guest's contract.

Arithmetic is on exact integers, and every range is checked against the
address-width limit (``1 << address_width``), so a sum or a count never wraps
and no range escapes the width check.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import AllocationExhaustedError, LayoutError, RegionOverlapError
from .layout import PAGE_SIZE, Range, Region, subtract
from .units import U64_MAX, GiB, align_down, align_up, is_aligned, is_pow2

FOUR_GIB = 4 * GiB
MAX_ADDRESS_WIDTH = 64


class Placement(enum.Enum):
    """Where a dynamic request may go."""

    BELOW_4G = "below-4g"
    ABOVE_4G = "above-4g"
    AFTER_RAM = "after-ram"


@dataclass(frozen=True, slots=True, order=True)
class Placed:
    """One allocated range: ``kind`` is ``fixed``, ``ram`` or a :class:`Placement` value."""

    range: Range
    tag: str
    kind: str


@dataclass(frozen=True, slots=True)
class _Dynamic:
    tag: str
    size: int
    align: int
    placement: Placement


@dataclass(frozen=True, slots=True)
class _Ram:
    tag: str
    size: int
    align: int
    min_base: int
    max_end: int | None


def describe_free(free: Iterable[Range], limit: int = 6) -> str:
    """Free ranges for an error message, in hex, at most ``limit`` of them."""
    ranges = list(free)
    if not ranges:
        return "none"
    shown = " ".join(str(r) for r in ranges[:limit])
    more = len(ranges) - limit
    return shown + (f" and {more} more" if more > 0 else "")


class Allocator:
    """Collects requests, then :meth:`allocate` places them all at once.

    ``address_width`` is the guest physical address width in bits (36 on
    Apple M1 Hypervisor.framework, 40 or more elsewhere): every range must end
    at or below ``1 << address_width``.
    """

    def __init__(self, address_width: int = MAX_ADDRESS_WIDTH) -> None:
        if type(address_width) is not int or not 12 <= address_width <= MAX_ADDRESS_WIDTH:
            raise LayoutError(
                f"allocator: address width {address_width!r} is outside "
                f"12..{MAX_ADDRESS_WIDTH} bits"
            )
        self.address_width = address_width
        self.limit = 1 << address_width
        self._reserved: list[Region] = []
        self._fixed: list[Region] = []
        self._dynamic: list[_Dynamic] = []
        self._ram: list[_Ram] = []
        self._tags: set[str] = set()

    def _claim(self, tag: str) -> None:
        if not tag:
            raise LayoutError("allocator: a request needs a non-empty tag")
        if tag in self._tags:
            raise LayoutError(f"allocator: tag {tag!r} is requested twice")
        self._tags.add(tag)

    def reserve(self, tag: str, range_: Range) -> None:
        """Keep dynamic requests and RAM out of ``range_`` (not in the output)."""
        self._claim(tag)
        self._reserved.append(Region(tag, range_, align=1))

    def fixed(self, tag: str, range_: Range) -> None:
        """A pinned range: placed exactly there, or an overlap error."""
        self._claim(tag)
        self._fixed.append(Region(tag, range_, align=1))

    def request(self, tag: str, size: int, align: int, placement: Placement) -> None:
        """A dynamic range of ``size`` bytes at an ``align``-aligned base."""
        self._claim(tag)
        self._dynamic.append(_Dynamic(tag, size, align, placement))

    def ram(
        self, tag: str, size: int, align: int, *, min_base: int = 0, max_end: int | None = None
    ) -> None:
        """RAM: ``size`` bytes from ``min_base`` up, split around what is in the way.

        Fragments are tagged ``tag``, ``tag1``, ``tag2`` ... in address order;
        each starts ``align``-aligned and none ends past ``max_end``.
        """
        self._claim(tag)
        self._ram.append(_Ram(tag, size, align, min_base, max_end))

    # -- validation --------------------------------------------------------

    def _check_size_align(self, tag: str, size: int, align: int) -> None:
        if type(align) is not int or not is_pow2(align) or align < PAGE_SIZE or align > U64_MAX:
            raise LayoutError(
                f"allocator: {tag!r}: alignment {align:#x} must be a power of 2 >= {PAGE_SIZE:#x}"
            )
        if type(size) is not int or size <= 0 or not is_aligned(size, PAGE_SIZE):
            raise LayoutError(
                f"allocator: {tag!r}: size {size:#x} must be a positive multiple of {PAGE_SIZE:#x}"
            )
        if size > self.limit:
            raise LayoutError(
                f"allocator: {tag!r}: size {size:#x} exceeds the {self.address_width}-bit "
                f"address space ({self.limit:#x})"
            )

    def _check_fits(self, region: Region) -> None:
        if region.range.end > self.limit:
            raise LayoutError(
                f"allocator: {region.tag!r} {region.range} ends past the {self.address_width}-bit "
                f"address limit {self.limit:#x}"
            )

    def _validate(self) -> None:
        for r in (*self._reserved, *self._fixed):
            self._check_fits(r)
        for d in self._dynamic:
            self._check_size_align(d.tag, d.size, d.align)
        for m in self._ram:
            self._check_size_align(m.tag, m.size, m.align)
            if m.min_base < 0 or (m.max_end is not None and m.max_end <= m.min_base):
                raise LayoutError(
                    f"allocator: {m.tag!r}: RAM window from {m.min_base:#x} to "
                    f"{m.max_end if m.max_end is None else hex(m.max_end)} is empty"
                )
        ordered = sorted(self._fixed, key=lambda r: (r.range, r.tag))
        for i, a in enumerate(ordered):
            # Compare with every later range that starts before a ends (not
            # only the neighbour): a long range can overlap several.
            for b in ordered[i + 1 :]:
                if b.range.base >= a.range.end:
                    break
                raise RegionOverlapError(a, b, "allocator")

    # -- placement ---------------------------------------------------------

    def allocate(self) -> tuple[Placed, ...]:
        """Every fixed, dynamic and RAM range, sorted by address.

        Raises :class:`LayoutError` for invalid requests,
        :class:`RegionOverlapError` for overlapping fixed ranges and
        :class:`AllocationExhaustedError` naming the tag, size, alignment,
        phase and the free space left when a request finds no room.
        """
        self._validate()
        free = [Range(0, self.limit)]
        for r in (*self._reserved, *self._fixed):
            free = subtract(free, r.range)
        placed = [Placed(r.range, r.tag, "fixed") for r in self._fixed]

        def key(d: _Dynamic) -> tuple[int, int]:
            return (-d.align, -d.size)

        low = sorted((d for d in self._dynamic if d.placement is Placement.BELOW_4G), key=key)
        for d in low:
            got = _top_down(free, d.size, d.align, min(FOUR_GIB, self.limit))
            if got is None:
                window = [r for r in free if r.base < FOUR_GIB]
                raise AllocationExhaustedError(
                    d.tag, d.size, d.align, d.placement.value, describe_free(window)
                )
            free = subtract(free, got)
            placed.append(Placed(got, d.tag, d.placement.value))

        ram_end = 0
        for m in self._ram:
            cursor = max(m.min_base, ram_end)
            ceiling = self.limit if m.max_end is None else min(m.max_end, self.limit)
            pieces = _bottom_up_split(free, m.size, m.align, cursor, ceiling)
            if pieces is None:
                window = [r for r in free if r.end > cursor and r.base < ceiling]
                raise AllocationExhaustedError(m.tag, m.size, m.align, "ram", describe_free(window))
            for i, piece in enumerate(pieces):
                free = subtract(free, piece)
                placed.append(Placed(piece, f"{m.tag}{i or ''}", "ram"))
            ram_end = pieces[-1].end

        high = sorted((d for d in self._dynamic if d.placement is Placement.ABOVE_4G), key=key)
        cursor = max(ram_end, FOUR_GIB)
        for d in high:
            got = _bottom_up(free, d.size, d.align, cursor, self.limit)
            if got is None:
                window = [r for r in free if r.end > cursor]
                raise AllocationExhaustedError(
                    d.tag, d.size, d.align, d.placement.value, describe_free(window)
                )
            free = subtract(free, got)
            placed.append(Placed(got, d.tag, d.placement.value))

        cursor = max((p.range.end for p in placed), default=0)
        for d in self._dynamic:
            if d.placement is not Placement.AFTER_RAM:
                continue
            got = _bottom_up(free, d.size, d.align, cursor, self.limit)
            if got is None:
                window = [r for r in free if r.end > cursor]
                raise AllocationExhaustedError(
                    d.tag, d.size, d.align, d.placement.value, describe_free(window)
                )
            free = subtract(free, got)
            placed.append(Placed(got, d.tag, d.placement.value))
            cursor = got.end
        return tuple(sorted(placed))


def _top_down(free: list[Range], size: int, align: int, ceiling: int) -> Range | None:
    """The highest ``align``-aligned ``size`` bytes of ``free`` ending at or below ``ceiling``."""
    for r in reversed(free):
        top = min(r.end, ceiling)
        if top - r.base < size:
            continue
        base = align_down(top - size, align)
        if base >= r.base:
            return Range(base, size)
    return None


def _bottom_up(free: list[Range], size: int, align: int, floor: int, ceiling: int) -> Range | None:
    """The lowest ``align``-aligned ``size`` bytes of ``free`` within ``[floor, ceiling)``."""
    for r in free:
        base = align_up(max(r.base, floor), align)
        if base + size <= min(r.end, ceiling):
            return Range(base, size)
    return None


def _bottom_up_split(
    free: list[Range], size: int, align: int, floor: int, ceiling: int
) -> list[Range] | None:
    """``size`` bytes of ``free`` in ``[floor, ceiling)``, lowest first, in aligned fragments."""
    pieces: list[Range] = []
    remaining = size
    for r in free:
        base = align_up(max(r.base, floor), align)
        end = align_down(min(r.end, ceiling), PAGE_SIZE)
        if end <= base:
            continue
        take = min(remaining, end - base)
        pieces.append(Range(base, take))
        remaining -= take
        if remaining == 0:
            return pieces
    return None
