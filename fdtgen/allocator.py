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

Each dynamic request takes the first fit in its phase: the highest free
``align``-aligned slot below 4 GiB, the lowest one from the phase's floor up
in phases 5 and 6. Within phases 3 and 5, requests are sorted by alignment (descending), then
size (descending), then input order (ascending): Python's sort is stable, so
equal keys keep the caller's order. The same requests always give the same
addresses; the layout is part of the guest's contract.

Arithmetic is on exact integers, and every range is checked against the
address-width limit (``1 << address_width``), so a sum or a count never wraps
and no range escapes the width check.
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Iterable
from operator import attrgetter
from typing import NamedTuple

from fdtgen.errors import AllocationExhaustedError, LayoutError, RegionOverlapError
from fdtgen.ranges import Range, Region, by_address, by_range
from fdtgen.spec import MAX_ADDRESS_WIDTH, PAGE_SIZE
from fdtgen.units import U64_MAX, GiB, align_down, align_up, is_aligned, is_pow2

FOUR_GIB = 4 * GiB


class Placement(enum.Enum):
    """Where a dynamic request may go."""

    BELOW_4G = "below-4g"
    ABOVE_4G = "above-4g"
    AFTER_RAM = "after-ram"


# Named tuples rather than frozen dataclasses: immutable, compared (and ordered)
# field by field all the same, and each class made at import in a fraction of
# the time, which every `fdtgen build` pays (the layout places RAM from here).
class Placed(NamedTuple):
    """One allocated range: ``kind`` is ``fixed``, ``ram`` or a :class:`Placement` value."""

    range: Range
    tag: str
    kind: str


class _Dynamic(NamedTuple):
    tag: str
    size: int
    align: int
    placement: Placement


class _Ram(NamedTuple):
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
        # In base order, a range that overlaps any later one overlaps the next.
        for a, b in itertools.pairwise(sorted(self._fixed, key=by_address)):
            if b.range.base < a.range.end:
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
        free = _FreeList((r.range for r in (*self._reserved, *self._fixed)), self.limit)
        placed = [Placed(r.range, r.tag, "fixed") for r in self._fixed]

        def place(d: _Dynamic, got: Range | None, floor: int, ceiling: int) -> None:
            if got is None:
                raise _exhausted(d, d.placement.value, free, floor, ceiling)
            free.take(got)
            placed.append(Placed(got, d.tag, d.placement.value))

        todo: dict[Placement, list[_Dynamic]] = {p: [] for p in _PLACEMENTS}
        for d in self._dynamic:
            todo[d.placement].append(d)
        for p in (Placement.BELOW_4G, Placement.ABOVE_4G):
            # By alignment, then size, both descending; the sort is stable,
            # even reversed, so equal requests keep the caller's order.
            todo[p].sort(key=_align_size, reverse=True)

        ceiling = min(FOUR_GIB, self.limit)
        for d in todo[Placement.BELOW_4G]:
            place(d, free.highest(d.size, d.align, ceiling), 0, ceiling)

        ram_end = 0
        for m in self._ram:
            cursor = max(m.min_base, ram_end)
            ceiling = self.limit if m.max_end is None else min(m.max_end, self.limit)
            pieces = _bottom_up_split(free.spans(cursor), m.size, m.align, cursor, ceiling)
            if pieces is None:
                raise _exhausted(m, "ram", free, cursor, ceiling)
            for i, piece in enumerate(pieces):
                free.take(piece)
                placed.append(Placed(piece, f"{m.tag}{i or ''}", "ram"))
            ram_end = pieces[-1].end

        cursor = max(ram_end, FOUR_GIB)
        for d in todo[Placement.ABOVE_4G]:
            place(d, free.lowest(d.size, d.align, cursor), cursor, self.limit)

        cursor = max((p.range.end for p in placed), default=0)
        for d in todo[Placement.AFTER_RAM]:
            place(d, free.lowest(d.size, d.align, cursor), cursor, self.limit)
            cursor = placed[-1].range.end
        # Placed ranges are disjoint and never empty, so their bases alone order them.
        placed.sort(key=_base)
        return tuple(placed)


_PLACEMENTS = tuple(Placement)  # iterating the enum class itself runs a generator
_align_size = attrgetter("align", "size")
_base = attrgetter("range.base")


def _exhausted(
    d: _Dynamic | _Ram, phase: str, free: _FreeList, floor: int, ceiling: int
) -> AllocationExhaustedError:
    window = describe_free(Range(b, e - b) for b, e in free.spans(floor) if b < ceiling)
    return AllocationExhaustedError(d.tag, d.size, d.align, phase, window)


class _FreeList:
    """Free space as sorted, disjoint ranges ``[bases[i], ends[i])``, searched first fit.

    A plain list, scanned from where a search starts. Gaps left by alignment
    make the list grow with the requests, so a search costs up to the number
    of requests placed before it: quadratic in all, and cheaper than any index
    at the sizes templates use (a few dozen ranges, one or two requests). A
    thousand mixed requests take about 15 ms.
    """

    __slots__ = ("bases", "ends")

    def __init__(self, taken: Iterable[Range], limit: int) -> None:
        """``[0, limit)`` less every range of ``taken`` (each ending at or below ``limit``)."""
        self.bases: list[int] = []
        self.ends: list[int] = []
        cursor = 0
        for r in sorted(taken, key=by_range):
            if r.base > cursor:
                self.bases.append(cursor)
                self.ends.append(r.base)
            cursor = max(cursor, r.end)
        if cursor < limit:
            self.bases.append(cursor)
            self.ends.append(limit)

    def spans(self, floor: int) -> Iterable[tuple[int, int]]:
        """``(base, end)`` of every free range that ends after ``floor``, in order."""
        i = bisect.bisect_right(self.ends, floor)
        return zip(self.bases[i:], self.ends[i:], strict=True)

    def lowest(self, size: int, align: int, floor: int) -> Range | None:
        """The lowest ``align``-aligned ``size`` free bytes at or above ``floor``."""
        i = bisect.bisect_right(self.ends, floor)
        bases = self.bases[i:]
        if bases:  # only the first range ending after floor can start below it
            bases[0] = max(bases[0], floor)
        # align_up and align_down, inlined in these two loops: the allocator's hot spot.
        mask, down = align - 1, -align
        for b, e in zip(bases, self.ends[i:], strict=True):
            base = (b + mask) & down
            if base + size <= e:
                return Range(base, size)
        return None

    def highest(self, size: int, align: int, ceiling: int) -> Range | None:
        """The highest ``align``-aligned ``size`` free bytes ending at or below ``ceiling``."""
        i = bisect.bisect_left(self.bases, ceiling)
        ends = self.ends[:i]
        if ends:  # only the last range starting below ceiling can end above it
            ends[-1] = min(ends[-1], ceiling)
        down = -align
        for b, e in zip(reversed(self.bases[:i]), reversed(ends), strict=True):
            base = (e - size) & down
            if base >= b:
                return Range(base, size)
        return None

    def take(self, got: Range) -> None:
        """Remove ``got``, which lies inside one free range."""
        i = bisect.bisect_right(self.bases, got.base) - 1
        if i < 0 or got.end > self.ends[i]:
            raise AssertionError(f"allocator: {got} is not free")  # a bug, not input
        b, e = self.bases[i], self.ends[i]
        if b < got.base and got.end < e:  # split in two
            self.bases.insert(i + 1, got.end)
            self.ends.insert(i, got.base)
        elif b < got.base:
            self.ends[i] = got.base
        elif got.end < e:
            self.bases[i] = got.end
        else:
            del self.bases[i], self.ends[i]


def ram_around(
    taken: Iterable[Range], limit: int, size: int, align: int, floor: int, ceiling: int
) -> list[Range] | None:
    """RAM alone: ``size`` bytes in ``[floor, ceiling)`` below ``limit``, split around
    ``taken`` into ``align``-aligned pieces, lowest first (``None``: they do not fit).

    The pieces :meth:`Allocator.allocate` gives one :meth:`Allocator.ram` request
    (already valid: ``size`` a positive multiple of a page, ``align`` a power of
    two of at least one) when ``taken`` is all it is given besides, without the
    bookkeeping of requests it does not have.
    """
    return _bottom_up_split(_FreeList(taken, limit).spans(floor), size, align, floor, ceiling)


def _bottom_up_split(
    free: Iterable[tuple[int, int]], size: int, align: int, floor: int, ceiling: int
) -> list[Range] | None:
    """``size`` bytes of ``free`` in ``[floor, ceiling)``, lowest first, in aligned fragments."""
    pieces: list[Range] = []
    remaining = size
    for b, e in free:
        base = align_up(max(b, floor), align)
        end = align_down(min(e, ceiling), PAGE_SIZE)
        if end <= base:
            continue
        take = min(remaining, end - base)
        pieces.append(Range(base, take))
        remaining -= take
        if remaining == 0:
            return pieces
    return None
