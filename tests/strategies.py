"""Shared Hypothesis strategies."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from fdtgen.allocator import Placement
from fdtgen.devicetree.machine import Machine
from fdtgen.ranges import Range
from fdtgen.units import GiB, KiB, MiB

CMDLINE_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@st.composite
def squib_machines(draw: st.DrawFn) -> Machine:
    """Valid squib machines: 1..32 vCPUs, 16 MiB..1 TiB-ish RAM, 0..32 virtio."""
    mib = draw(
        st.one_of(
            st.integers(16, 4096),
            st.sampled_from([64, 128, 256, 512, 1024, 2048, 4096, 65536, 1022 * 1024]),
        )
    )
    return Machine(
        vcpus=draw(st.integers(1, 32)),
        memory=mib * MiB,
        virtio=draw(st.integers(0, 32)),
        serial=draw(st.booleans()),
        cmdline=draw(st.text(CMDLINE_CHARS, max_size=200)),
        psci_method=draw(st.sampled_from([None, "hvc", "smc"])),
    )


# -- allocator --------------------------------------------------------------
#
# A scenario is the keyword arguments of tests/test_allocator.py's allocate():
# width, fixed and reserved ranges as (tag, Range), requests as (tag, size,
# align, Placement), RAM as (tag, size, align, min_base, max_end).

PAGE = 4 * KiB
ALIGNS = st.sampled_from([PAGE, 16 * KiB, 64 * KiB, 2 * MiB, 1 * GiB])
PLACEMENTS = st.sampled_from(list(Placement))


@st.composite
def allocator_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A few fixed ranges spread over the address space, up to 12 dynamic
    requests of any placement and up to 2 unbounded RAM requests."""
    width = draw(st.integers(33, 40))
    # Non-overlapping fixed ranges by construction: distinct page slots of a grid.
    grid = 1 << (width - 6)
    slots = draw(st.lists(st.integers(0, 63), unique=True, max_size=6))
    fixed = [
        (f"fixed{i}", Range(s * grid, draw(st.integers(1, grid // PAGE)) * PAGE))
        for i, s in enumerate(sorted(slots))
    ]
    requests = [
        (f"dyn{i}", draw(st.integers(1, 4096)) * PAGE, draw(ALIGNS), draw(PLACEMENTS))
        for i in range(draw(st.integers(0, 12)))
    ]
    rams = [
        (
            f"ram{i}n",
            draw(st.integers(1, 1 << 18)) * PAGE,
            draw(st.sampled_from([PAGE, 2 * MiB])),
            draw(st.sampled_from([0, 1 * GiB, 2 * GiB])),
            None,
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    return {"width": width, "fixed": fixed, "requests": requests, "rams": rams}


def _holes(draw: st.DrawFn, base: int, prefix: str) -> list[tuple[str, Range]]:
    # Up to 40 holes of 1..15 pages, each in its own 64 KiB slot of a 16 MiB window.
    slots = draw(st.lists(st.integers(0, 255), unique=True, max_size=40))
    return [
        (f"{prefix}{i}", Range(base + s * 64 * KiB + draw(st.integers(0, 8)) * PAGE, n * PAGE))
        for i, s in enumerate(sorted(slots))
        for n in [draw(st.integers(1, 7))]
    ]


@st.composite
def fragmented_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Free space cut into many small gaps just below 4 GiB and just above the
    RAM, then runs of equal requests (as for BARs), so that a request has to
    skip gaps too small or badly aligned for it, and a run fills them in turn."""
    ram_size = draw(st.sampled_from([0, 1 * GiB, 2 * GiB + 12 * MiB]))
    ram_end = 4 * GiB + ram_size
    fixed = _holes(draw, 4 * GiB - 16 * MiB, "low") + _holes(draw, ram_end, "high")
    reserved = []
    if draw(st.booleans()):  # a reserved zone around some of the low holes
        reserved.append(("zone", Range(4 * GiB - 8 * MiB, 4 * MiB)))
    requests = []
    for run in range(draw(st.integers(1, 8))):
        size = draw(st.sampled_from([1, 2, 3, 4, 12, 16, 17, 64])) * PAGE
        align = draw(st.sampled_from([1, 4, 16, 64])) * PAGE
        placement = draw(PLACEMENTS)
        count = draw(st.integers(1, 30))
        requests += [(f"run{run}-{i}", size, align, placement) for i in range(count)]
    rams = [("ram", ram_size, 2 * MiB, 4 * GiB, None)] if ram_size else []
    return {
        "width": draw(st.integers(33, 40)),
        "fixed": fixed,
        "reserved": reserved,
        "requests": requests,
        "rams": rams,
    }
