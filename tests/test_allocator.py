"""The allocator: phases, ordering, errors, and its invariants under Hypothesis."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fdtgen.allocator import FOUR_GIB, Allocator, Placed, Placement
from fdtgen.errors import AllocationExhaustedError, LayoutError, RegionOverlapError
from fdtgen.ranges import Range, subtract
from fdtgen.units import GiB, KiB, MiB, align_down, align_up

from .strategies import allocator_scenarios, fragmented_scenarios

PAGE = 4 * KiB
BELOW, ABOVE, AFTER = Placement.BELOW_4G, Placement.ABOVE_4G, Placement.AFTER_RAM


def allocate(width=40, fixed=(), reserved=(), requests=(), rams=()):
    a = Allocator(width)
    for tag, r in reserved:
        a.reserve(tag, r)
    for tag, r in fixed:
        a.fixed(tag, r)
    for tag, size, align, placement in requests:
        a.request(tag, size, align, placement)
    for tag, size, align, min_base, max_end in rams:
        a.ram(tag, size, align, min_base=min_base, max_end=max_end)
    return a.allocate()


def by_tag(placed):
    return {p.tag: p.range for p in placed}


# -- phases and ordering ----------------------------------------------------


def test_below_4g_requests_are_placed_top_down_under_4_gib():
    placed = allocate(requests=[("a", 64 * KiB, PAGE, BELOW)])
    assert placed == (Placed(Range(FOUR_GIB - 64 * KiB, 64 * KiB), "a", "below-4g"),)


def test_below_4g_requests_sort_by_alignment_then_size_then_input_order():
    placed = allocate(
        requests=[
            ("small", PAGE, PAGE, BELOW),
            ("big", 2 * MiB, PAGE, BELOW),
            ("aligned", PAGE, 1 * MiB, BELOW),
            ("small2", PAGE, PAGE, BELOW),
        ]
    )
    got = by_tag(placed)
    assert got["aligned"] == Range(FOUR_GIB - 1 * MiB, PAGE)  # highest alignment first
    assert got["big"] == Range(FOUR_GIB - 1 * MiB - 2 * MiB, 2 * MiB)  # then the largest
    # Then input order, greedily into the highest free space: the gap the
    # 1 MiB-aligned page left above itself.
    assert got["small"] == Range(FOUR_GIB - PAGE, PAGE)
    assert got["small2"] == Range(FOUR_GIB - 2 * PAGE, PAGE)


def test_dynamic_requests_go_around_fixed_and_reserved_ranges():
    placed = allocate(
        fixed=[("gic", Range(FOUR_GIB - 64 * KiB, 64 * KiB))],
        reserved=[("zone", Range(FOUR_GIB - 16 * MiB, 16 * MiB - 64 * KiB))],
        requests=[("virtio", 128 * KiB, PAGE, BELOW)],
    )
    assert by_tag(placed)["virtio"] == Range(FOUR_GIB - 16 * MiB - 128 * KiB, 128 * KiB)
    assert [p.tag for p in placed] == ["virtio", "gic"]  # reserved ranges are not output


def test_a_fixed_range_may_sit_inside_a_reserved_one():
    placed = allocate(
        reserved=[("chipset", Range(0xEF00_0000, 0x1100_0000))],
        fixed=[("gic-dist", Range(0xFFFF_0000, 64 * KiB))],
    )
    assert placed == (Placed(Range(0xFFFF_0000, 64 * KiB), "gic-dist", "fixed"),)


def test_ram_is_split_around_what_is_in_its_way_and_sorted_by_address():
    placed = allocate(
        fixed=[("hole", Range(0xFC00_0000, 64 * MiB))],
        rams=[("ram", 4 * GiB, 2 * MiB, 1 * GiB, None)],
    )
    ram = [p for p in placed if p.kind == "ram"]
    assert ram == [
        Placed(Range(1 * GiB, 0xFC00_0000 - 1 * GiB), "ram", "ram"),
        Placed(Range(FOUR_GIB, 4 * GiB - (0xFC00_0000 - 1 * GiB)), "ram1", "ram"),
    ]
    assert sum(p.range.size for p in ram) == 4 * GiB


def test_ram_fragments_are_never_backfilled_and_stay_in_address_order():
    # openvmm's review bug: a 1 GiB-aligned node skips a low fragment, and a
    # later node must not land below it (the RAM list has to stay sorted).
    placed = allocate(
        fixed=[("mmio", Range(1 * GiB + 512 * MiB, 64 * MiB))],
        rams=[
            ("node0", 1 * GiB, 1 * GiB, 1 * GiB, None),
            ("node1", 256 * MiB, 2 * MiB, 0, None),
        ],
    )
    got = by_tag(placed)
    assert got["node0"].base == 1 * GiB
    assert got["node1"].base >= got["node0"].base
    ram = [p.range for p in placed if p.kind == "ram"]
    assert ram == sorted(ram)
    assert [p.range.base for p in placed] == sorted(p.range.base for p in placed)


def test_above_4g_requests_go_bottom_up_after_ram():
    placed = allocate(
        rams=[("ram", 8 * GiB, 2 * MiB, 2 * GiB, None)],
        requests=[("ecam", 256 * MiB, 256 * MiB, ABOVE), ("bar", 1 * GiB, 1 * GiB, ABOVE)],
    )
    got = by_tag(placed)
    ram_end = max(p.range.end for p in placed if p.kind == "ram")
    assert got["bar"] == Range(ram_end, 1 * GiB)  # larger alignment first, at the RAM end
    assert got["ecam"] == Range(ram_end + 1 * GiB, 256 * MiB)


def test_after_ram_requests_follow_everything_in_caller_order():
    placed = allocate(
        rams=[("ram", 1 * GiB, 2 * MiB, 1 * GiB, None)],
        requests=[
            ("p1", PAGE, PAGE, AFTER),
            ("p0", 2 * MiB, 2 * MiB, AFTER),
            ("high", 1 * GiB, 1 * GiB, ABOVE),
        ],
    )
    got = by_tag(placed)
    assert got["p1"].base == got["high"].end
    assert got["p0"].base >= got["p1"].end and got["p0"].base % (2 * MiB) == 0


# -- errors -----------------------------------------------------------------


def test_overlapping_fixed_ranges_are_rejected_naming_both_in_hex():
    with pytest.raises(
        RegionOverlapError,
        match=r"'uart0' \[0x9000000, 0x9001000\) overlaps region 'rtc' \[0x9000800",
    ):
        allocate(fixed=[("uart0", Range(0x0900_0000, PAGE)), ("rtc", Range(0x0900_0800, PAGE))])


def test_exhaustion_names_tag_size_alignment_phase_and_free_space():
    with pytest.raises(AllocationExhaustedError) as e:
        allocate(
            width=32,
            fixed=[("low", Range(0, FOUR_GIB - 1 * MiB))],
            requests=[("virtio", 2 * MiB, PAGE, BELOW)],
        )
    msg = str(e.value)
    assert "'virtio'" in msg and "size 0x200000" in msg and "alignment 0x1000" in msg
    assert "phase below-4g" in msg and "[0xfff00000, 0x100000000)" in msg
    assert (e.value.tag, e.value.size, e.value.align, e.value.phase) == (
        "virtio",
        2 * MiB,
        PAGE,
        "below-4g",
    )


def test_ram_past_its_max_end_is_exhaustion():
    with pytest.raises(AllocationExhaustedError, match=r"'ram'.*phase ram"):
        allocate(rams=[("ram", 2 * GiB, 2 * MiB, 1 * GiB, 2 * GiB)])


@pytest.mark.parametrize(
    "request_, match",
    [
        pytest.param(
            ("x", PAGE, 3 * PAGE, BELOW),
            "alignment 0x3000 must be a power of 2",
            id="align-not-pow2",
        ),
        pytest.param(
            ("x", PAGE, 512, BELOW),
            "alignment 0x200 must be a power of 2 >= 0x1000",
            id="align-below-page",
        ),
        pytest.param(
            ("x", 0x1800, PAGE, BELOW),
            "size 0x1800 must be a positive multiple of 0x1000",
            id="size-not-pages",
        ),
        pytest.param(("x", 0, PAGE, BELOW), "size 0x0 must be", id="size-zero"),
        pytest.param(
            ("x", 1 << 41, PAGE, ABOVE), "exceeds the 40-bit address space", id="size-over-width"
        ),
    ],
)
def test_invalid_requests_are_rejected_before_anything_is_placed(request_, match):
    with pytest.raises(LayoutError, match=match):
        allocate(requests=[request_])


def test_a_tag_may_be_requested_only_once():
    a = Allocator()
    a.fixed("uart0", Range(0, PAGE))
    with pytest.raises(LayoutError, match="tag 'uart0' is requested twice"):
        a.request("uart0", PAGE, PAGE, BELOW)


@pytest.mark.parametrize("kind", ["fixed", "reserved"])
def test_every_range_is_checked_against_the_address_width(kind):
    # openvmm's review bug: the width check must not skip any class of range.
    r = Range(1 << 36, PAGE)
    with pytest.raises(LayoutError, match=r"ends past the 36-bit address limit 0x1000000000"):
        allocate(width=36, **{kind: [("high", r)]})


def test_after_ram_placements_must_fit_the_address_width_too():
    with pytest.raises(AllocationExhaustedError, match="phase after-ram"):
        allocate(
            width=32,
            rams=[("ram", 2 * GiB, 2 * MiB, 2 * GiB, None)],
            requests=[("p", PAGE, PAGE, AFTER)],
        )


def test_sizes_near_two_to_the_64_do_not_wrap():
    # openvmm's review bug: size arithmetic that overflows. Python integers do
    # not wrap, and the limit is checked on the exact sum.
    top = Range((1 << 64) - PAGE, PAGE)
    placed = allocate(width=64, fixed=[("top", top)], requests=[("big", 1 << 62, 1 << 62, ABOVE)])
    assert by_tag(placed) == {"top": top, "big": Range(1 << 62, 1 << 62)}
    with pytest.raises(AllocationExhaustedError, match="'half'"):  # would end exactly at 2^64
        allocate(width=64, fixed=[("top", top)], requests=[("half", 1 << 63, 1 << 63, ABOVE)])
    with pytest.raises(AllocationExhaustedError, match="'big2'"):
        allocate(width=64, fixed=[("top", top)], requests=[("big2", (1 << 64) - PAGE, PAGE, ABOVE)])


# -- properties -------------------------------------------------------------


@given(s=allocator_scenarios())
def test_placements_never_overlap_respect_alignment_and_stay_below_4_gib(s):
    try:
        placed = allocate(**s)
    except AllocationExhaustedError as e:
        assert f"{e.size:#x}" in str(e) and e.tag in str(e)
        return
    ranges = [p.range for p in placed]
    assert ranges == sorted(ranges)
    for a, b in itertools.pairwise(ranges):
        assert not a.overlaps(b), (a, b)
    assert all(p.range.end <= 1 << s["width"] for p in placed)
    got = {p.tag: p for p in placed}
    for tag, r in s["fixed"]:
        assert got[tag].range == r
    for tag, size, align, placement in s["requests"]:
        assert got[tag].range.size == size and got[tag].range.base % align == 0
        if placement is BELOW:
            assert got[tag].range.end <= FOUR_GIB
        if placement is ABOVE:
            assert got[tag].range.base >= FOUR_GIB
    for tag, size, align, min_base, _ in s["rams"]:
        pieces = [p.range for p in placed if p.kind == "ram" and p.tag.startswith(tag)]
        assert sum(r.size for r in pieces) == size
        assert all(r.base >= min_base and r.base % align == 0 for r in pieces)


@given(s=allocator_scenarios(), seed=st.integers(0, 2**32 - 1))
def test_allocation_is_repeatable_and_independent_of_dynamic_request_order(s, seed):
    try:
        first = allocate(**s)
    except AllocationExhaustedError as e:
        with pytest.raises(AllocationExhaustedError) as again:
            allocate(**s)
        assert str(again.value) == str(e)
        return
    assert allocate(**s) == first
    # Below/above-4G requests are sorted by (alignment, size), so any order of
    # them gives the same ranges; equal keys take those ranges in input order.
    sortable = [r for r in s["requests"] if r[3] is not AFTER]
    shuffled = sortable[:]
    random.Random(seed).shuffle(shuffled)
    permuted = {**s, "requests": shuffled + [r for r in s["requests"] if r[3] is AFTER]}
    second = allocate(**permuted)
    assert [(p.range, p.kind) for p in second] == [(p.range, p.kind) for p in first]
    for key, group in itertools.groupby(
        sorted(sortable, key=lambda r: (r[3].value, r[2], r[1])), key=lambda r: (r[3], r[2], r[1])
    ):
        tags = [r[0] for r in group]
        ranges_first = sorted(by_tag(first)[t] for t in tags)
        in_order = [by_tag(second)[t] for t in sorted(tags, key=[r[0] for r in shuffled].index)]
        assert sorted(in_order) == ranges_first, key
        # Within one key, placement follows input order (top-down below 4 GiB).
        expected = sorted(in_order, reverse=key[0] is BELOW)
        assert in_order == expected


@given(size_pages=st.integers(1, 1 << 20), width=st.integers(32, 36))
def test_exhaustion_is_a_clear_error_never_a_partial_result(size_pages, width):
    limit_pages = (1 << width) // PAGE
    try:
        placed = allocate(width=width, requests=[("big", size_pages * PAGE * 64, PAGE, AFTER)])
    except AllocationExhaustedError as e:
        assert size_pages * 64 > limit_pages
        assert "'big'" in str(e) and "phase after-ram" in str(e)
        return
    except LayoutError as e:
        assert "exceeds the" in str(e) and size_pages * 64 > limit_pages
        return
    assert placed[0].range.end <= 1 << width


def highest_fit(free, size, align, ceiling):
    """The highest ``align``-aligned ``size`` bytes of ``free`` ending at or below ``ceiling``."""
    for r in reversed(free):
        base = align_down(min(r.end, ceiling) - size, align)
        if base >= r.base:
            return Range(base, size)
    return None


def lowest_fit(free, size, align, floor, ceiling):
    """The lowest ``align``-aligned ``size`` bytes of ``free`` within ``[floor, ceiling)``."""
    for r in free:
        base = align_up(max(r.base, floor), align)
        if base + size <= min(r.end, ceiling):
            return Range(base, size)
    return None


def first_fit(s, ram):
    """The dynamic requests of scenario ``s`` placed as the module docstring says,
    one at a time over a plain list, with ``ram`` taken as placed: (tag, range)
    in placement order, and the tag of the first request that found no room."""
    limit = 1 << s["width"]
    free = [Range(0, limit)]
    for _, r in (*s["fixed"], *s.get("reserved", ())):
        free = subtract(free, r)
    requests = {p: [r for r in s["requests"] if r[3] is p] for p in Placement}
    done = []

    def take(tag, got):
        nonlocal free
        if got is None:
            return tag
        done.append((tag, got))
        free = subtract(free, got)
        return None

    for tag, size, align, _ in sorted(requests[BELOW], key=lambda r: (r[2], r[1]), reverse=True):
        if take(tag, highest_fit(free, size, align, min(FOUR_GIB, limit))):
            return done, tag
    for r in ram:
        free = subtract(free, r)
    cursor = max([FOUR_GIB, *(r.end for r in ram)])
    for tag, size, align, _ in sorted(requests[ABOVE], key=lambda r: (r[2], r[1]), reverse=True):
        if take(tag, lowest_fit(free, size, align, cursor, limit)):
            return done, tag
    cursor = max([0, *(r.end for _, r in (*s["fixed"], *done)), *(r.end for r in ram)])
    for tag, size, align, _ in requests[AFTER]:
        if take(tag, lowest_fit(free, size, align, cursor, limit)):
            return done, tag
        cursor = done[-1][1].end
    return done, None


@settings(max_examples=100)
@given(s=st.one_of(allocator_scenarios(), fragmented_scenarios()))
def test_dynamic_requests_take_the_first_fit_of_their_phase_in_sort_order(s):
    ram_tags = {r[0] for r in s["rams"]}
    try:
        placed = allocate(**s)
    except AllocationExhaustedError as e:
        if e.tag in ram_tags:
            return  # RAM is the subject of other tests
        placed, failed = (), e.tag
    else:
        failed = None
    ram = [p.range for p in placed if p.kind == "ram"]
    want, want_failed = first_fit(s, ram)
    assert failed == want_failed
    if failed is None:
        got = by_tag(placed)
        assert [(tag, got[tag]) for tag, _ in want] == want
