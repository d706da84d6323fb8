"""The stencil fast path gives the generic path's bytes, slots and placement."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen import Machine
from fdtgen.errors import FdtgenError
from fdtgen.fast import FastBuilder
from fdtgen.image import declared_kernel
from fdtgen.pipeline import Boot, build
from fdtgen.templates import builtin_names, load_template
from fdtgen.units import MiB

from .strategies import squib_machines

BUILDER = FastBuilder(cache_size=8)  # small: evictions are exercised too


@st.composite
def boots(draw: st.DrawFn) -> Boot:
    if not draw(st.booleans()):
        return Boot()
    kernel = declared_kernel(
        draw(st.integers(1, 64)) * MiB,
        text_offset=draw(st.sampled_from([0, 0x80000])),
        image_size=draw(st.sampled_from([0, 48 * MiB, 70 * MiB])),
    )
    return Boot(
        kernel=kernel,
        initrd_size=draw(st.one_of(st.none(), st.integers(1, 64 * MiB))),
        rng_seed=draw(st.sampled_from([0, 32, 64, 256])),
        kaslr_seed=draw(st.booleans()),
        entropy_seed=draw(st.one_of(st.none(), st.binary(min_size=1, max_size=16))),
    )


def same(m, boot) -> None:
    try:
        generic = build(m, boot)
    except FdtgenError as e:
        with pytest.raises(type(e)):
            BUILDER.build(m, boot)
        return
    fast = BUILDER.build(m, boot)
    assert fast.blob == generic.blob
    assert fast.slots == generic.slots
    assert fast.placement == generic.placement
    assert fast.layout == generic.layout
    assert fast.machine == generic.machine


@given(m=squib_machines(), boot=boots())
def test_fast_path_equals_generic_path_for_squib(m, boot):
    same(m, boot)


@given(
    name=st.sampled_from(builtin_names()),
    vcpus=st.integers(1, 8),
    mib=st.sampled_from([128, 256, 1024, 3072, 8192]),
    cmdline=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
    boot=boots(),
)
def test_fast_path_equals_generic_path_for_every_template(name, vcpus, mib, cmdline, boot):
    t = load_template(name)
    m = Machine(
        template=name,
        vcpus=min(vcpus, t.max_vcpus),
        memory=mib * MiB,
        cmdline=cmdline,
        virtio=min(4, t.virtio.slots),
    )
    same(m, boot)


def test_same_shape_reuses_one_stencil():
    b = FastBuilder()
    for i in range(5):
        b.build(Machine(cmdline=f"console=ttyAMA0 n={i}" * (i + 1), memory=(256 + i) * MiB))
    assert len(b._stencils) == 1


def test_remembered_placements_are_the_generic_ones_and_errors_are_not_remembered():
    builder = FastBuilder(cache_size=2)
    kernel = declared_kernel(30 * MiB, text_offset=0, image_size=40 * MiB)
    small = Machine(memory=64 * MiB)
    cases = [
        (Machine(), Boot(kernel=kernel, initrd_size=8 * MiB)),
        (Machine(), Boot(kernel=kernel, initrd_size=8 * MiB)),  # remembered
        (Machine(), Boot(kernel=kernel, initrd_size=9 * MiB)),
        (Machine(memory=1024 * MiB), Boot(kernel=kernel, initrd_size=8 * MiB)),
        (small, Boot(kernel=kernel, initrd_size=40 * MiB)),  # does not fit
        (small, Boot(kernel=kernel, initrd_size=40 * MiB)),  # still does not fit
        (Machine(), Boot(kernel=kernel, initrd_size=8 * MiB)),  # evicted, placed again
    ]
    for m, boot in cases:
        try:
            generic = build(m, boot)
        except FdtgenError as e:
            with pytest.raises(type(e), match="initrd"):
                builder.build(m, boot)
            continue
        fast = builder.build(m, boot)
        assert (fast.placement, fast.blob) == (generic.placement, generic.blob)
