"""``fdtgen place``: the placement table (kernel, initrd, DTB, entry registers) for humans."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fdtgen.cli.common import add_config_arguments
from fdtgen.units import fmt_size

if TYPE_CHECKING:
    from fdtgen.boot.image import KernelImage
    from fdtgen.boot.placement import Placement
    from fdtgen.pipeline import Build

HELP = "show where kernel, initrd and DTB go for a machine config and kernel"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fdtgen.cli.common import add_boot_arguments

    add_config_arguments(p)
    add_boot_arguments(p)


def run(args: argparse.Namespace) -> int:
    from fdtgen.cli.common import load_boot_config, readers
    from fdtgen.errors import ConfigError

    cfg = load_boot_config(args)
    b = cfg.build(**readers(args))
    if b.placement is None or b.boot is None or b.boot.kernel is None:
        raise ConfigError(
            "place: placement needs a kernel (--kernel, or kernel = ... in the config)"
        )
    print("\n".join(placement_table(b, b.placement, b.boot.kernel)))
    return 0


def placement_table(b: Build, p: Placement, k: KernelImage) -> list[str]:
    """The placement of build ``b`` as aligned text lines."""
    t = b.layout.template
    lines = [f"template {t.name}, {b.layout.vcpus} vCPUs"]
    for i, r in enumerate(b.layout.ram):
        lines.append(f"ram{i or ''}    {r}  ({fmt_size(r.size, 1, trim=False)})")
    lines.append("")
    lines.append(f"{'file':8} {'address':>18} {'end (exclusive)':>18} {'bytes':>12}  notes")
    lines.append(
        _row("kernel", p.kernel.base, p.kernel.end, p.kernel.size)
        + f"  {k.format} Image, {k.size:#x} to copy; text_offset {p.text_offset:#x} above "
        f"base {p.kernel_base:#x}; image_size {k.image_size:#x}"
    )
    if p.initrd is not None:
        lines.append(_row("initrd", p.initrd.base, p.initrd.end, p.initrd.size))
    lines.append(
        _row("dtb", p.dtb.base, p.dtb.base + len(b.blob), len(b.blob))
        + f"  slot of {p.dtb.size:#x} bytes, alone in 2 MiB block {p.dtb_block}"
    )
    regs = p.registers
    lines.append("")
    lines.append(
        f"entry: pc={regs.pc:#x} x0={regs.x0:#x} x1={regs.x1:#x} x2={regs.x2:#x} x3={regs.x3:#x}"
    )
    for s in b.slots:
        fill = "derived from the entropy seed" if s.derived else "zero: fill per boot"
        lines.append(f"patch: {s.property} at DTB offset {s.offset:#x}, {s.size} bytes ({fill})")
    lines += [f"note: {n}" for n in p.notes]
    return lines


def _row(name: str, base: int, end: int, size: int) -> str:
    return f"{name:8} {base:#18x} {end:#18x} {size:#12x}  ({fmt_size(size, 1, trim=False)})"
