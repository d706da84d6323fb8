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
from operator import attrgetter
from typing import Any

from fdtgen.errors import AllocationExhaustedError, LayoutError, RegionOverlapError
from fdtgen.ranges import Range, Region, by_address
from fdtgen.spec import MAX_ADDRESS_WIDTH, PAGE_SIZE
from fdtgen.units import U64_MAX, GiB, align_down, align_up, is_aligned, is_pow2

FOUR_GIB = 4 * GiB


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
        ordered = sorted(self._fixed, key=by_address)
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
        free = _FreeList(
            _complement((r.range for r in (*self._reserved, *self._fixed)), self.limit)
        )
        placed = [Placed(r.range, r.tag, "fixed") for r in self._fixed]

        def exhausted(d: _Dynamic | _Ram, phase: str, window: list[Range]) -> Exception:
            return AllocationExhaustedError(d.tag, d.size, d.align, phase, describe_free(window))

        low: list[_Dynamic] = []
        high: list[_Dynamic] = []
        after: list[_Dynamic] = []
        for d in self._dynamic:
            if d.placement is Placement.BELOW_4G:
                low.append(d)
            elif d.placement is Placement.ABOVE_4G:
                high.append(d)
            elif d.placement is Placement.AFTER_RAM:
                after.append(d)
        for todo in (low, high):
            # By alignment, then size, both descending; the sort is stable,
            # even reversed, so equal requests keep the caller's order.
            todo.sort(key=_align_size, reverse=True)

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
            pieces = _bottom_up_split(free.spans(cursor), m.size, m.align, cursor, ceiling)
            if pieces is None:
                window = [r for r in free.ranges() if r.end > cursor and r.base < ceiling]
                raise exhausted(m, "ram", window)
            for i, piece in enumerate(pieces):
                free.take(piece)
                placed.append(Placed(piece, f"{m.tag}{i or ''}", "ram"))
            ram_end = pieces[-1].end

        cursor = max(ram_end, FOUR_GIB)
        for d in high:
            got = free.bottom_up(d.size, d.align, cursor, self.limit)
            if got is None:
                raise exhausted(d, d.placement.value, [r for r in free.ranges() if r.end > cursor])
            free.take(got)
            placed.append(Placed(got, d.tag, d.placement.value))

        cursor = max((p.range.end for p in placed), default=0)
        for d in after:
            got = free.bottom_up(d.size, d.align, cursor, self.limit)
            if got is None:
                raise exhausted(d, d.placement.value, [r for r in free.ranges() if r.end > cursor])
            free.take(got)
            placed.append(Placed(got, d.tag, d.placement.value))
            cursor = got.end
        # Placed ranges are disjoint and never empty, so their bases alone order them.
        placed.sort(key=_base)
        return tuple(placed)


_align_size = attrgetter("align", "size")
_base = attrgetter("range.base")


def _complement(taken: Iterable[Range], limit: int) -> list[Range]:
    """``[0, limit)`` less every range of ``taken`` (each ending at or below ``limit``),
    as sorted, disjoint, maximal ranges."""
    free: list[Range] = []
    cursor = 0
    for r in sorted(taken, key=lambda r: r.base):
        if r.base > cursor:
            free.append(Range(cursor, r.base - cursor))
        cursor = max(cursor, r.base + r.size)
    if cursor < limit:
        free.append(Range(cursor, limit - cursor))
    return free


_NONE = -1  # a search found nothing under a node: look further
_STOP = -2  # a search reached its ceiling: nothing further can fit


class _Node:
    """An inner node of :class:`_FreeList`'s tree.

    ``kids`` are all leaves or all inner nodes, in address order, and never
    empty. A leaf is a flat list ``[base0, end0, base1, end1, ...]`` of free
    ranges: they are sorted and disjoint, so the list is sorted and a bisect
    over it lands on a range boundary (see :meth:`_FreeList.take`).

    ``seps[k]`` is at most every base under ``kids[k]`` and at least every end
    under ``kids[:k]``, so a bisect over ``seps`` finds the kid that holds an
    address. ``caps[align][k]`` is at least the longest ``align``-aligned
    run, ``end - align_up(base, align)``, of any range under ``kids[k]``.
    Free ranges only shrink, so every bound stays true as ranges are taken;
    searches tighten them as they go.
    """

    __slots__ = ("caps", "kids", "seps")

    def __init__(self, kids: list[Any], seps: list[int], caps: dict[int, list[int]]) -> None:
        self.kids = kids
        self.seps = seps
        self.caps = caps


def _leaf_cap(leaf: list[int], align: int) -> int:
    """The longest ``align``-aligned run in ``leaf`` (negative if none)."""
    mask = align - 1
    return max(e - ((b + mask) & ~mask) for b, e in zip(leaf[::2], leaf[1::2], strict=True))


def _scan_up(leaf: list[int], size: int, align: int, floor: int, ceiling: int, start: int) -> int:
    """The lowest fitting base in ``leaf`` among its ranges ending after ``start``,
    ``_NONE``, or ``_STOP`` at a range starting at or above ``ceiling``."""
    mask = align - 1
    i = bisect.bisect_right(leaf, start) & ~1
    for b, e in zip(leaf[i::2], leaf[i + 1 :: 2], strict=True):
        if b >= ceiling:
            return _STOP
        base = ((b if b > floor else floor) + mask) & ~mask
        if base + size <= (e if e < ceiling else ceiling):
            return base
    return _NONE


def _scan_down(leaf: list[int], size: int, align: int, ceiling: int, upto: int) -> int:
    """The highest fitting base in ``leaf`` among its ranges starting below ``upto``,
    or ``_NONE``."""
    down = ~(align - 1)
    for i in range((bisect.bisect_left(leaf, upto) - 1) & ~1, -1, -2):
        b = leaf[i]
        top = leaf[i + 1]
        if top > ceiling:
            top = ceiling
        if top - b >= size:
            base = (top - size) & down
            if base >= b:
                return base
    return _NONE


class _FreeList:
    """Sorted, disjoint free ranges in a B+tree, for first-fit search.

    First fit over a plain list costs the whole list per request, and
    alignment gaps make the list grow with the requests: quadratic. Here the
    ranges sit in leaves of up to ``2 * LEAF`` ranges, under inner nodes of up
    to ``2 * FANOUT`` kids (see :class:`_Node`). For each alignment asked for,
    every inner node keeps an upper bound on the longest aligned run under
    each kid, so a search skips every subtree that cannot hold the request
    and scans only the leaves that may.

    Taking a range only shrinks free space, so the bounds stay upper bounds
    and a take does not recompute them; a search that enters a kid in vain
    tightens that kid's bound instead (exact for a leaf, the largest of its
    own bounds for a node). A leaf or node that overflows splits in two, and
    an emptied leaf is unlinked: either touches one root-to-leaf path. With
    ``n`` ranges, a take costs ``O(log n)``, a search ``O(log n)`` amortized
    over the takes, and the first search with a new alignment ``O(n)`` to
    set up its bounds.

    Free space only shrinking also means that where a search found room,
    the next search for the same request may resume (see :meth:`bottom_up`
    and :meth:`top_down`): a run of equal requests does not rescan ranges
    already too small for it. And the leaf of the last hit is kept as a
    finger: a take, or a search starting inside that leaf, begins there
    without descending the tree, and goes on in the tree only if the leaf
    has no room. Every result is exactly plain first fit's.
    """

    LEAF = 16  # ranges per leaf when built; a leaf over 2 * LEAF splits in two
    FANOUT = 16  # kids per inner node when built (at least 2); a node over 2 * FANOUT splits

    def __init__(self, ranges: Iterable[Range]) -> None:
        flat = [x for r in ranges for x in (r.base, r.end)]
        step, fanout = 2 * self.LEAF, self.FANOUT
        level: list[Any] = [flat[i : i + step] for i in range(0, len(flat), step)]
        seps = [kid[0] for kid in level]
        height = 1
        while True:
            nodes = [
                _Node(level[i : i + fanout], seps[i : i + fanout], {})
                for i in range(0, len(level), fanout)
            ]
            if len(nodes) <= 1:
                break
            level, seps = nodes, [node.seps[0] for node in nodes]
            height += 1
        self.root: _Node = nodes[0] if nodes else _Node([], [], {})
        self.height = height  # inner levels: root.kids are leaves at height 1
        self.aligns: set[int] = set()  # the alignments every node keeps bounds for
        # Where the last search for a (size, align, ceiling) succeeded, with its floor.
        self.lows: dict[tuple[int, int, int], tuple[int, int]] = {}
        # Where the last search for a (size, align) succeeded, with its ceiling.
        self.highs: dict[tuple[int, int], tuple[int, int]] = {}
        # The leaf of the last hit or take. An emptied leaf is unlinked and
        # stays empty, so a non-empty finger is always in the tree.
        self.finger: list[int] = []

    # -- reading -----------------------------------------------------------

    def spans(self, floor: int = 0) -> Iterable[tuple[int, int]]:
        """``(base, end)`` of every free range that ends after ``floor``, in order."""
        return self._spans(self.root, self.height, floor)

    def _spans(self, node: _Node, height: int, floor: int) -> Iterable[tuple[int, int]]:
        k = max(bisect.bisect_right(node.seps, floor) - 1, 0)
        for kid in node.kids[k:]:
            if height > 1:
                yield from self._spans(kid, height - 1, floor)
            else:
                i = bisect.bisect_right(kid, floor) & ~1
                yield from zip(kid[i::2], kid[i + 1 :: 2], strict=True)

    def ranges(self) -> list[Range]:
        return [Range(b, e - b) for b, e in self.spans()]

    def _bounds(self, align: int) -> None:
        """Make sure every node keeps bounds for ``align``."""
        if align not in self.aligns:
            self.aligns.add(align)
            self._fill(self.root, self.height, align)

    def _fill(self, node: _Node, height: int, align: int) -> int:
        if height > 1:
            caps = [self._fill(kid, height - 1, align) for kid in node.kids]
        else:
            caps = [_leaf_cap(kid, align) for kid in node.kids]
        node.caps[align] = caps
        return max(caps, default=-1)

    # -- searching ---------------------------------------------------------

    def bottom_up(self, size: int, align: int, floor: int, ceiling: int) -> Range | None:
        """The lowest aligned ``size`` bytes within ``[floor, ceiling)``.

        Once a search for ``(size, align, ceiling)`` from ``floor`` found
        ``got``, no free range ending at or below ``got.base`` can hold that
        request from that floor or above, now or later: the next such search
        starts at ``got.base``.
        """
        key = (size, align, ceiling)
        start = floor
        last = self.lows.get(key)
        if last is not None and last[0] <= floor < last[1]:
            start = last[1]
        leaf = self.finger
        if leaf and leaf[0] <= start < leaf[-1]:  # the first range ending after start is here
            base = _scan_up(leaf, size, align, floor, ceiling, start)
            if base == _NONE:
                start = leaf[-1]
        else:
            base = _NONE
        if base == _NONE:
            self._bounds(align)
            base = self._first(self.root, self.height, size, align, floor, ceiling, start)
        if base < 0:
            return None
        self.lows[key] = (floor, base)
        return Range(base, size)

    def _first(
        self,
        node: _Node,
        height: int,
        size: int,
        align: int,
        floor: int,
        ceiling: int,
        start: int,
    ) -> int:
        """The lowest fitting base under ``node``, ``_NONE`` or ``_STOP``.

        Ranges ending at or below ``start`` (at least ``floor``) are skipped
        by bisection, kids whose bound is below ``size`` by their bound; a kid
        entered in vain gets a tighter bound (exact for a leaf, the largest of
        its own bounds for a node).
        """
        kids, seps, caps = node.kids, node.seps, node.caps[align]
        for k in range(max(bisect.bisect_right(seps, start) - 1, 0), len(kids)):
            if seps[k] >= ceiling:
                return _STOP
            if caps[k] < size:
                continue
            kid = kids[k]
            if height > 1:
                got = self._first(kid, height - 1, size, align, floor, ceiling, start)
                if got != _NONE:
                    return got
                caps[k] = max(kid.caps[align])
                continue
            got = _scan_up(kid, size, align, floor, ceiling, start)
            if got != _NONE:
                self.finger = kid
                return got
            caps[k] = _leaf_cap(kid, align)
        return _NONE

    def top_down(self, size: int, align: int, ceiling: int) -> Range | None:
        """The highest aligned ``size`` bytes ending at or below ``ceiling``.

        As in :meth:`bottom_up`, once a search for ``(size, align)`` below
        ``ceiling`` found ``got``, no free range starting at or above
        ``got.end`` can hold that request below that ceiling or a lower one.
        """
        key = (size, align)
        upto = ceiling
        last = self.highs.get(key)
        if last is not None and last[1] < ceiling <= last[0]:
            upto = last[1]
        leaf = self.finger
        if leaf and leaf[0] < upto <= leaf[-1]:  # the last range starting below upto is here
            base = _scan_down(leaf, size, align, ceiling, upto)
            if base == _NONE:
                upto = leaf[0]
        else:
            base = _NONE
        if base == _NONE:
            self._bounds(align)
            base = self._last(self.root, self.height, size, align, ceiling, upto)
        if base < 0:
            return None
        self.highs[key] = (ceiling, base + size)
        return Range(base, size)

    def _last(
        self, node: _Node, height: int, size: int, align: int, ceiling: int, upto: int
    ) -> int:
        """The highest fitting base under ``node``, or ``_NONE``: as :meth:`_first`,
        from the last range starting below ``upto`` (at most ``ceiling``) down."""
        kids, seps, caps = node.kids, node.seps, node.caps[align]
        for k in range(bisect.bisect_left(seps, upto) - 1, -1, -1):
            if caps[k] < size:
                continue
            kid = kids[k]
            if height > 1:
                got = self._last(kid, height - 1, size, align, ceiling, upto)
                if got != _NONE:
                    return got
                caps[k] = max(kid.caps[align])
                continue
            got = _scan_down(kid, size, align, ceiling, upto)
            if got != _NONE:
                self.finger = kid
                return got
            caps[k] = _leaf_cap(kid, align)
        return _NONE

    # -- taking ------------------------------------------------------------

    def take(self, got: Range) -> None:
        """Remove ``got``, which lies inside one free range.

        In a leaf, ``bisect_right(leaf, addr)`` is odd exactly when ``addr``
        lies inside a range, and is then the index of that range's end.
        """
        start = got.base
        end = start + got.size
        leaf = self.finger
        if not (leaf and leaf[0] <= start < leaf[-1]):  # a range holding start is not here
            leaf = self.finger = self._leaf(start)
        i = bisect.bisect_right(leaf, start)
        if not i & 1 or end > leaf[i]:
            raise AssertionError(f"allocator: {got} is not free")  # a bug, not input
        if leaf[i - 1] < start:
            if end < leaf[i]:
                leaf[i:i] = (start, end)
                if len(leaf) > 4 * self.LEAF:
                    self._split(self._path(start), leaf)
            else:
                leaf[i] = start
        elif end < leaf[i]:
            leaf[i - 1] = end
        else:
            del leaf[i - 1 : i + 1]
            if not leaf:
                self._unlink(self._path(start))

    def _leaf(self, addr: int) -> list[int]:
        """The leaf that would hold a range holding ``addr`` (empty if none could)."""
        node: Any = self.root
        for _ in range(self.height):
            k = bisect.bisect_right(node.seps, addr) - 1
            if k < 0:
                return []
            node = node.kids[k]
        leaf: list[int] = node
        return leaf

    def _path(self, addr: int) -> list[tuple[_Node, int]]:
        """The inner nodes from the root to the leaf holding ``addr``, each with the kid taken."""
        path = []
        node: Any = self.root
        for _ in range(self.height):
            k = bisect.bisect_right(node.seps, addr) - 1
            path.append((node, k))
            node = node.kids[k]
        return path

    def _split(self, path: list[tuple[_Node, int]], leaf: list[int]) -> None:
        """Split the overfull ``leaf`` at the end of ``path``, and any node that overflows."""
        half = len(leaf) // 4 * 2
        kid: list[int] | _Node = leaf[half:]
        sep = leaf[half]
        del leaf[half:]
        for node, k in reversed(path):
            node.kids.insert(k + 1, kid)
            node.seps.insert(k + 1, sep)
            for caps in node.caps.values():
                caps.insert(k + 1, caps[k])  # each half's run is at most the whole's
            if len(node.kids) <= 2 * self.FANOUT:
                return
            half = len(node.kids) // 2
            kid = right = _Node(
                node.kids[half:], node.seps[half:], {a: c[half:] for a, c in node.caps.items()}
            )
            sep = node.seps[half]
            del node.kids[half:], node.seps[half:]
            for caps in node.caps.values():
                del caps[half:]
        # The root itself split: a new root above it and its right half.
        old = self.root
        self.root = _Node(
            [old, right],
            [old.seps[0], sep],
            {a: [max(c), max(right.caps[a])] for a, c in old.caps.items()},
        )
        self.height += 1

    def _unlink(self, path: list[tuple[_Node, int]]) -> None:
        """Drop the emptied leaf at the end of ``path``, and any node left empty."""
        for node, k in reversed(path):
            del node.kids[k], node.seps[k]
            for caps in node.caps.values():
                del caps[k]
            if node.kids:
                return


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
