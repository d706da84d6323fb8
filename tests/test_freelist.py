"""The allocator's free-list tree finds exactly what plain first fit finds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fdtgen.allocator import _FreeList
from fdtgen.ranges import Range, subtract
from fdtgen.units import align_down, align_up

PAGE = 0x1000

# (ranges per leaf, kids per inner node) when built: the default, and tiny
# shapes that make the tree several levels deep and split and unlink often.
SHAPES = [(_FreeList.LEAF, _FreeList.FANOUT), (1, 2), (2, 2), (3, 3)]


@pytest.fixture(params=SHAPES, ids=lambda shape: f"leaf{shape[0]}-fanout{shape[1]}")
def shape(request, monkeypatch):
    """Build every free list in this test with the given tree shape."""
    monkeypatch.setattr(_FreeList, "LEAF", request.param[0])
    monkeypatch.setattr(_FreeList, "FANOUT", request.param[1])
    return request.param


def naive_bottom_up(free, size, align, floor, ceiling):
    for r in free:
        base = align_up(max(r.base, floor), align)
        if base + size <= min(r.end, ceiling):
            return Range(base, size)
    return None


def naive_top_down(free, size, align, ceiling):
    for r in reversed(free):
        top = min(r.end, ceiling)
        if top - r.base < size:
            continue
        base = align_down(top - size, align)
        if base >= r.base:
            return Range(base, size)
    return None


@pytest.mark.parametrize(
    ("seed", "shape"),
    [
        pytest.param(seed, shape, id=f"{seed}-leaf{shape[0]}-fanout{shape[1]}")
        for shape in SHAPES
        for seed in range(24 if shape == SHAPES[0] else 3)
    ],
    indirect=["shape"],
)
def test_tree_first_fit_equals_plain_first_fit(seed, shape):
    rnd = random.Random(seed)
    page = PAGE
    limit = 1 << 36
    free = [Range(0, limit)]
    for _ in range(rnd.randint(0, 30)):  # start fragmented
        base = rnd.randrange(0, limit // page) * page
        free = subtract(free, Range(base, rnd.randint(1, 64) * page))
    fl = _FreeList(free)
    for _ in range(rnd.choice([50, 300, 1000])):
        size = rnd.choice([1, 2, 3, 4, 16, 17, 64, 256]) * page
        align = rnd.choice([1, 4, 16, 64, 256]) * page
        if rnd.random() < 0.5:
            ceiling = rnd.choice([limit, 1 << 32, rnd.randrange(page, limit)])
            want = naive_top_down(free, size, align, ceiling)
            got = fl.top_down(size, align, ceiling)
        else:
            floor = rnd.choice([0, 1 << 32, rnd.randrange(0, limit)])
            ceiling = rnd.choice([limit, rnd.randrange(floor + 1, limit + 1)])
            want = naive_bottom_up(free, size, align, floor, ceiling)
            got = fl.bottom_up(size, align, floor, ceiling)
        assert got == want
        if got is not None:
            free = subtract(free, got)
            fl.take(got)
        assert fl.ranges() == free


def fragmented(rnd, limit, holes):
    free = [Range(0, limit)]
    for _ in range(holes):
        base = rnd.randrange(0, limit // PAGE) * PAGE
        free = subtract(free, Range(base, rnd.randint(1, 64) * PAGE))
    return free


@st.composite
def sessions(draw):
    """A fragmented start, then runs of equal requests: the allocator's phases
    repeat a request with a fixed or rising floor, or a fixed ceiling."""
    limit = 1 << draw(st.integers(24, 36))
    seed = draw(st.integers(0, 2**32 - 1))
    holes = draw(st.integers(0, 40))
    runs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["bottom-up", "rising", "top-down"]),
                st.sampled_from([1, 2, 3, 4, 12, 16, 17, 64]),  # size, in pages
                st.sampled_from([1, 4, 16, 64]),  # alignment, in pages
                st.integers(1, 40),  # requests in the run
                st.floats(0, 1),  # where the floor or ceiling sits
                st.floats(0, 1),  # how often a hit is not taken
            ),
            min_size=1,
            max_size=12,
        )
    )
    return limit, seed, holes, runs


@settings(max_examples=60, deadline=None)
@given(s=sessions(), shape_index=st.integers(0, len(SHAPES) - 1))
def test_repeated_requests_still_get_plain_first_fit(s, shape_index):
    limit, seed, holes, runs = s
    rnd = random.Random(seed)
    free = fragmented(rnd, limit, holes)
    saved = _FreeList.LEAF, _FreeList.FANOUT
    try:
        _FreeList.LEAF, _FreeList.FANOUT = SHAPES[shape_index]
        fl = _FreeList(free)
        for how, pages, align_pages, count, where, skip in runs:
            size, align = pages * PAGE, align_pages * PAGE
            bound = int(where * limit) // PAGE * PAGE
            for _ in range(count):
                if how == "top-down":
                    ceiling = max(bound, PAGE)
                    want = naive_top_down(free, size, align, ceiling)
                    got = fl.top_down(size, align, ceiling)
                else:
                    floor = bound
                    want = naive_bottom_up(free, size, align, floor, limit)
                    got = fl.bottom_up(size, align, floor, limit)
                assert got == want
                if got is None:
                    break
                if rnd.random() >= skip:  # else the same search must find it again
                    free = subtract(free, got)
                    fl.take(got)
                if how == "rising":
                    bound = got.end
            assert fl.ranges() == free
            floor = rnd.randrange(0, limit)
            assert list(fl.spans(floor)) == [(r.base, r.end) for r in free if r.end > floor]
    finally:
        _FreeList.LEAF, _FreeList.FANOUT = saved


def test_taking_what_is_not_free_is_a_bug(shape):
    fl = _FreeList([Range(0, 4 * PAGE), Range(8 * PAGE, 4 * PAGE)])
    for bad in (Range(4 * PAGE, PAGE), Range(2 * PAGE, 4 * PAGE), Range(12 * PAGE, PAGE)):
        with pytest.raises(AssertionError, match="is not free"):
            fl.take(bad)
    fl.take(Range(0, 4 * PAGE))
    with pytest.raises(AssertionError, match="is not free"):
        fl.take(Range(0, PAGE))
    assert fl.ranges() == [Range(8 * PAGE, 4 * PAGE)]
