"""Shared Hypothesis strategies."""

from __future__ import annotations

from hypothesis import strategies as st

from fdtgen.devicetree.machine import Machine
from fdtgen.units import MiB

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
