"""The allocator's blocked free list finds exactly what plain first fit finds."""

from __future__ import annotations

import random

import pytest

from fdtgen.allocator import _FreeList
from fdtgen.layout import Range, subtract
from fdtgen.units import align_down, align_up


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


@pytest.mark.parametrize("seed", range(24))
def test_blocked_first_fit_equals_plain_first_fit(seed):
    rnd = random.Random(seed)
    page = 0x1000
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
