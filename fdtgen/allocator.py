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

import bisect
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
        free_ranges = [Range(0, self.limit)]
        for r in (*self._reserved, *self._fixed):
            free_ranges = subtract(free_ranges, r.range)
        free = _FreeList(free_ranges)
        placed = [Placed(r.range, r.tag, "fixed") for r in self._fixed]

        def key(d: _Dynamic) -> tuple[int, int]:
            return (-d.align, -d.size)

        def exhausted(d: _Dynamic | _Ram, phase: str, window: list[Range]) -> Exception:
            return AllocationExhaustedError(d.tag, d.size, d.align, phase, describe_free(window))

        low = sorted((d for d in self._dynamic if d.placement is Placement.BELOW_4G), key=key)
        for d in low:
            got = free.top_down(d.size, d.align, min(FOUR_GIB, self.limit))
            if got is None:
                window = [r for r in free.ranges() if r.base < FOUR_GIB]
                raise exhausted(d, d.placement.value, window)
            free.take(got)
            placed.append(Placed(got, d.tag, d.placement.value))

        ram_end = 0
        for m in self._ram:
            cursor = max(m.min_base, ram_end)
            ceiling = self.limit if m.max_end is None else min(m.max_end, self.limit)
            pieces = _bottom_up_split(free.ranges(), m.size, m.align, cursor, ceiling)
            if pieces is None:
                window = [r for r in free.ranges() if r.end > cursor and r.base < ceiling]
                raise exhausted(m, "ram", window)
            for i, piece in enumerate(pieces):
                free.take(piece)
                placed.append(Placed(piece, f"{m.tag}{i or ''}", "ram"))
            ram_end = pieces[-1].end

        high = sorted((d for d in self._dynamic if d.placement is Placement.ABOVE_4G), key=key)
        cursor = max(ram_end, FOUR_GIB)
        for d in high:
            got = free.bottom_up(d.size, d.align, cursor, self.limit)
            if got is None:
                raise exhausted(d, d.placement.value, [r for r in free.ranges() if r.end > cursor])
            free.take(got)
            placed.append(Placed(got, d.tag, d.placement.value))

        cursor = max((p.range.end for p in placed), default=0)
        for d in self._dynamic:
            if d.placement is not Placement.AFTER_RAM:
                continue
            got = free.bottom_up(d.size, d.align, cursor, self.limit)
            if got is None:
                raise exhausted(d, d.placement.value, [r for r in free.ranges() if r.end > cursor])
            free.take(got)
            placed.append(Placed(got, d.tag, d.placement.value))
            cursor = got.end
        return tuple(sorted(placed, key=lambda p: (p.range.base, p.range.size, p.tag, p.kind)))


class _FreeList:
    """Sorted, disjoint free ranges, kept in blocks for first-fit search.

    First fit over a plain list costs the whole list per request, and
    alignment gaps make the list grow with the requests: quadratic. Here the
    ranges sit in blocks, and for each alignment asked for, a max-tree over
    the blocks holds the largest aligned run each block can give
    (``end - align_up(base, align)``). A search descends the tree to the first
    (or last) block that can hold the request, then scans that block only.
    The result is exactly plain first fit's, found in logarithmic time.
    """

    BLOCK = 16

    def __init__(self, ranges: Iterable[Range]) -> None:
        spans = [(r.base, r.end) for r in ranges]
        self.blocks: list[list[tuple[int, int]]] = [
            spans[i : i + self.BLOCK] for i in range(0, len(spans), self.BLOCK)
        ]
        self.firsts = [b[0][0] for b in self.blocks]
        self.caps: list[dict[int, int]] = [{} for _ in self.blocks]  # per block: align -> cap
        self.trees: dict[int, list[int]] = {}  # alignment -> max-tree over block capacities
        self.size = 1

    def ranges(self) -> list[Range]:
        return [Range(b, e - b) for block in self.blocks for b, e in block]

    @staticmethod
    def _block_cap(block: list[tuple[int, int]], align: int) -> int:
        mask = align - 1
        return max(e - ((b + mask) & ~mask) for b, e in block)

    def _tree(self, align: int) -> list[int]:
        """The max-tree for ``align``: leaves at ``[size, 2 * size)``, node ``k``'s
        children at ``2k`` and ``2k + 1``; built level by level."""
        tree = self.trees.get(align)
        if tree is None:
            n = len(self.blocks)
            size = self.size
            if not self.trees:  # every tree shares one size; the first one sets it
                size = 1
                while size < n:
                    size *= 2
                self.size = size
            leaves = []
            for caps, block in zip(self.caps, self.blocks, strict=True):
                cap = caps.get(align)
                if cap is None:
                    cap = caps[align] = self._block_cap(block, align)
                leaves.append(cap)
            tree = [-1] * (2 * size)
            tree[size : size + n] = leaves
            width = size // 2
            while width:
                tree[width : 2 * width] = map(
                    max, tree[2 * width : 4 * width : 2], tree[2 * width + 1 : 4 * width : 2]
                )
                width //= 2
            self.trees[align] = tree
        return tree

    def _reshape(self, i: int, fresh: list[int]) -> None:
        """Blocks changed at index ``i`` (one removed, or one split into ``fresh``):
        shift every tree's leaves after it and refill the internal nodes."""
        n = len(self.blocks)
        if n > self.size or n <= self.size // 4:
            self.trees.clear()  # rebuilt at the next search, at the new size
            return
        size = self.size
        for align, tree in self.trees.items():
            if fresh:
                tree[size + i + 1 : size + n] = tree[size + i : size + n - 1]
                for j in fresh:
                    tree[size + j] = self.caps[j][align] = self._block_cap(self.blocks[j], align)
            else:
                tree[size + i : size + n + 1] = [*tree[size + i + 1 : size + n + 1], -1]
            width = size // 2
            while width:
                tree[width : 2 * width] = map(
                    max, tree[2 * width : 4 * width : 2], tree[2 * width + 1 : 4 * width : 2]
                )
                width //= 2

    def _update(self, i: int, removed: tuple[int, int]) -> None:
        """Block ``i`` lost free range ``removed`` (its pieces, if any, stayed).

        Capacities only shrink, so a stale tree entry is an upper bound: where
        ``removed`` may have been block ``i``'s largest run, its cached capacity
        is dropped and the tree keeps the old value until a search reaches it.
        """
        b, e = removed
        caps = self.caps[i]
        for align in self.trees:
            mask = align - 1
            cap = caps.get(align)
            if cap is not None and e - ((b + mask) & ~mask) >= cap:
                del caps[align]

    def _settle(self, tree: list[int], i: int, align: int) -> int:
        """Block ``i``'s exact capacity for ``align``, written back up the tree."""
        caps = self.caps[i]
        cap = caps.get(align)
        if cap is None:
            cap = caps[align] = self._block_cap(self.blocks[i], align)
            k = self.size + i
            tree[k] = cap
            k //= 2
            while k:
                tree[k] = max(tree[2 * k], tree[2 * k + 1])
                k //= 2
        return cap

    def _descend_first(self, tree: list[int], lo: int, need: int) -> int:
        """The first block index >= ``lo`` whose tree entry is >= ``need``, or -1."""
        size = self.size
        if lo >= size:
            return -1
        k = size + lo
        if tree[k] < need:
            # Climb until a right sibling (a range right of lo) may hold it.
            while True:
                if k == 1:
                    return -1
                if k % 2 == 0 and tree[k + 1] >= need:
                    k += 1
                    break
                k //= 2
        while k < size:  # descend, leftmost child first
            k = 2 * k if tree[2 * k] >= need else 2 * k + 1
        return k - size

    def _descend_last(self, tree: list[int], hi: int, need: int) -> int:
        """The last block index <= ``hi`` whose tree entry is >= ``need``, or -1."""
        size = self.size
        if hi < 0:
            return -1
        k = size + min(hi, size - 1)
        if tree[k] < need:
            while True:
                if k == 1:
                    return -1
                if k % 2 == 1 and tree[k - 1] >= need:
                    k -= 1
                    break
                k //= 2
        while k < size:  # descend, rightmost child first
            k = 2 * k + 1 if tree[2 * k + 1] >= need else 2 * k
        return k - size

    def _first(self, tree: list[int], lo: int, need: int, align: int) -> int:
        while True:
            i = self._descend_first(tree, lo, need)
            if i < 0 or self._settle(tree, i, align) >= need:
                return i
            lo = i + 1

    def _last(self, tree: list[int], hi: int, need: int, align: int) -> int:
        while True:
            i = self._descend_last(tree, hi, need)
            if i < 0 or self._settle(tree, i, align) >= need:
                return i
            hi = i - 1

    def bottom_up(self, size: int, align: int, floor: int, ceiling: int) -> Range | None:
        """The lowest aligned ``size`` bytes within ``[floor, ceiling)``."""
        tree = self._tree(align)
        i = max(bisect.bisect_right(self.firsts, floor) - 1, 0)
        while True:
            i = self._first(tree, i, size, align)
            if i < 0 or self.firsts[i] >= ceiling:
                return None
            block = self.blocks[i]
            start = max(bisect.bisect_right(block, (floor, U64_MAX + 1)) - 1, 0)
            for b, e in block[start:]:
                base = align_up(max(b, floor), align)
                if base + size <= min(e, ceiling):
                    return Range(base, size)
            i += 1  # the capacity was below floor or past ceiling: try the next block

    def top_down(self, size: int, align: int, ceiling: int) -> Range | None:
        """The highest aligned ``size`` bytes ending at or below ``ceiling``."""
        tree = self._tree(align)
        i = bisect.bisect_left(self.firsts, ceiling) - 1
        while i >= 0:
            i = self._last(tree, i, size, align)
            if i < 0:
                return None
            for b, e in reversed(self.blocks[i]):
                top = min(e, ceiling)
                if top - b < size:
                    continue
                base = align_down(top - size, align)
                if base >= b:
                    return Range(base, size)
            i -= 1
        return None

    def take(self, got: Range) -> None:
        """Remove ``got``, which lies inside one free range."""
        i = bisect.bisect_right(self.firsts, got.base) - 1
        block = self.blocks[i]
        j = bisect.bisect_right(block, (got.base, U64_MAX + 1)) - 1
        b, e = block[j]
        if not (b <= got.base and got.end <= e):
            raise AssertionError(f"allocator: {got} is not free")  # a bug, not input
        block[j : j + 1] = [p for p in ((b, got.base), (got.end, e)) if p[0] < p[1]]
        # A block removed or split shifts the tree's leaves after it.
        if not block:
            del self.blocks[i], self.firsts[i], self.caps[i]
            self._reshape(i, [])
        elif len(block) > 2 * self.BLOCK:
            half = len(block) // 2
            self.blocks[i : i + 1] = [block[:half], block[half:]]
            self.firsts[i : i + 1] = [block[0][0], block[half][0]]
            self.caps[i : i + 1] = [{}, {}]
            self._reshape(i, [i, i + 1])
        else:
            self.firsts[i] = block[0][0]
            self._update(i, (b, e))


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
