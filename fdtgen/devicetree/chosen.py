"""``/chosen``: the command line, the console, the initrd range and the entropy properties.

Built from the machine, its layout, its placement and its boot inputs; none of
them is changed. Entropy properties are either derived from an explicit seed
(deterministic output) or reserved as zero bytes whose blob offsets the
pipeline reports as patch slots, for a loader to fill per boot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fdtgen.fdt.tree import Node, Prop, unit_name
from fdtgen.spec import KASLR_SEED_SIZE
from fdtgen.template.registry import KINDS

if TYPE_CHECKING:
    from fdtgen.boot.placement import Placement
    from fdtgen.boot.request import Boot
    from fdtgen.layout import Layout

CHOSEN = "/chosen"


def uart_path(layout: Layout) -> str | None:
    """The console's node path (``stdout-path``, ``serial0``), if the machine has one."""
    uart = layout.uart
    if uart is None:
        return None
    return "/" + unit_name(KINDS[layout.template.uart.kind].node_name, uart.range.base)


def chosen_node(
    layout: Layout, cmdline: str, placement: Placement | None = None, boot: Boot | None = None
) -> Node:
    props = [Prop.strings("bootargs", cmdline)]
    path = uart_path(layout)
    if path:
        props.append(Prop.strings("stdout-path", path))
    props.extend(initrd_chosen_props(placement))
    if boot is not None:
        props.extend(entropy_chosen_props(boot))
    return Node("chosen", tuple(props))


def initrd_chosen_props(placement: Placement | None) -> tuple[Prop, ...]:
    """``linux,initrd-start`` / ``-end`` as 64-bit values.

    chosen.yaml: "linux,initrd-start is inclusive, but linux,initrd-end is
    exclusive". 64-bit cells keep initrds above 4 GiB intact.
    """
    if placement is None or placement.initrd is None:
        return ()
    return (
        Prop.u64("linux,initrd-start", placement.initrd.base),
        Prop.u64("linux,initrd-end", placement.initrd.end),
    )


def entropy_names(boot: Boot) -> list[tuple[str, int]]:
    """The entropy properties ``boot`` asks for, with their value sizes in bytes."""
    out = []
    if boot.rng_seed:
        out.append(("rng-seed", boot.rng_seed))
    if boot.kaslr_seed:
        out.append(("kaslr-seed", KASLR_SEED_SIZE))
    return out


def entropy_chosen_props(boot: Boot) -> tuple[Prop, ...]:
    """``rng-seed`` (bytes) and ``kaslr-seed`` (uint64), per dt-schema chosen.yaml."""
    props = []
    if boot.rng_seed:
        props.append(
            Prop.bytes_("rng-seed", entropy_bytes(boot.entropy_seed, "rng-seed", boot.rng_seed))
        )
    if boot.kaslr_seed:
        value = int.from_bytes(
            entropy_bytes(boot.entropy_seed, "kaslr-seed", KASLR_SEED_SIZE), "big"
        )
        props.append(Prop.u64("kaslr-seed", value))
    return tuple(props)


def entropy_bytes(seed: bytes | None, label: str, size: int) -> bytes:
    """``size`` bytes for property ``label``: SHAKE-256 of the seed under a per-property
    domain label, or zeros when there is no seed (a slot for the loader)."""
    if seed is None:
        return bytes(size)
    import hashlib  # OpenSSL's import is not free; only seeded builds need it

    return hashlib.shake_256(b"fdtgen " + label.encode() + b"\0" + seed).digest(size)
