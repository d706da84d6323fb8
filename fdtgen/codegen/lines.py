"""The interrupt lines of a template's map, and the devices that take blocks of them.

Each device's SPI (or PPI), INTID and trigger, with the proofs that keep them
apart: SPIs as a chain in the template's order (linear in the devices, lines
the template shares on purpose kept together), PPIs likewise, and where the
VMM hands lines out in attach order (``[irq] order``), each right after the
one before. The virtio transports, the PCI INTx lines and a GICv2m frame take
a block of SPIs each.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

from fdtgen.codegen.model import SPI_TRIGGERS, U32, Builder, E, Expr, const_name, trigger_doc
from fdtgen.ranges import Region
from fdtgen.spec import (
    BUS_CONFIG_SIZE,
    BUS_MAX,
    ECAM,
    MEM32_LIMIT,
    PAGE_SIZE,
    PCI_IO_LIMIT,
    SLOTS,
    SPI_MAX,
    TIMER_NAMES,
    VIRTIO_MMIO_MIN_SIZE,
    Trigger,
)
from fdtgen.template.model import Template
from fdtgen.units import fmt_size


class Line(NamedTuple):
    """SPIs ``first .. first + size``, named by constants (size: a name or a number)."""

    label: str
    first: str
    size: str | int
    numbers: range
    trigger: str | None = None


def interrupts(
    b: Builder, t: Template, names: list[tuple[Region, str]], virtio: int, serial: bool
) -> list[Line]:
    """Every device's interrupt, the timer's and the GIC's PPIs; the SPI lines they take."""
    stem = {r.tag: n for r, n in names}
    handed = t.handed_out_spis(virtio, serial)
    lines: list[Line] = []
    if serial:
        spi = handed.get("uart0", t.uart.spi).number
        origin = "[irq] order" if "uart0" in handed else "[uart] spi"
        b.irq(stem["uart0"], spi, t.uart.trigger, False, "Console UART", origin)
        n = stem["uart0"]
        lines.append(Line("uart0", f"{n}_SPI", 1, range(spi, spi + 1), f"{n}_TRIGGER"))
    ppis: list[tuple[str, int]] = []
    for d in t.devices:
        if d.spi is not None:
            spi = handed.get(d.tag, d.spi).number
            origin = "[irq] order" if d.tag in handed else f'[[device]] tag = "{d.tag}"'
            b.irq(stem[d.tag], spi, d.trigger, False, f"Device `{d.tag}` ({d.kind})", origin)
            n = stem[d.tag]
            lines.append(Line(d.tag, f"{n}_SPI", 1, range(spi, spi + 1), f"{n}_TRIGGER"))
        elif d.ppi is not None:
            what = f"Device `{d.tag}` ({d.kind})"
            b.irq(stem[d.tag], d.ppi.number, d.trigger, True, what, f'[[device]] tag = "{d.tag}"')
            ppis.append((f"{stem[d.tag]}_PPI", d.ppi.number))
    timer_names = t.timer_names or TIMER_NAMES  # by position, unless the template names them
    for name, ppi in zip(timer_names, t.timer_ppis, strict=False):
        timer = f"TIMER_{const_name(name)}"
        b.irq(timer, ppi.number, None, True, f"Arch timer, {name}", "[timer] ppis")
        ppis.append((f"{timer}_PPI", ppi.number))
    if t.timer_ppis:
        trigger = t.timer_trigger
        b.trigger("TIMER_TRIGGER", trigger, f"Arch timer, every PPI: {trigger_doc(trigger)}.")
    g = t.gic
    if g.maintenance_ppi is not None:
        maint = g.maintenance_ppi.number
        b.irq("GIC_MAINTENANCE", maint, None, True, "GIC maintenance", "[gic] maintenance_ppi")
        ppis.append(("GIC_MAINTENANCE_PPI", g.maintenance_ppi.number))
    if t.pmu is not None:
        b.irq("PMU", t.pmu.ppi.number, t.pmu.trigger, True, "PMU overflow interrupt", "[pmu] ppi")
        ppis.append(("PMU_PPI", t.pmu.ppi.number))
    _prove_ppis_apart(b, ppis)
    return lines


def _prove_ppis_apart(b: Builder, ppis: list[tuple[str, int]]) -> None:
    """The PPIs stay in their order, so no two are one (a chain: linear in their number)."""
    ordered = sorted(ppis, key=lambda p: (p[1], p[0]))
    for (x, xv), (y, yv) in itertools.pairwise(ordered):
        if xv != yv:
            b.prove(E.lt(x, y), f"{x} must stay below {y}: no two interrupts share a PPI")


def prove_lines_apart(b: Builder, lines: list[Line]) -> None:
    """No two devices share an SPI the template keeps apart.

    The lines are proved in the template's order, each ending before the next
    starts, so the proof is linear in the number of devices. Lines the
    template shares on purpose (crosvm's COM ports) form one group and must
    stay one line.
    """
    groups: list[list[Line]] = []
    for line in sorted(lines, key=lambda x: (x.numbers.start, -len(x.numbers), x.label)):
        if groups and line.numbers.start < max(x.numbers.stop for x in groups[-1]):
            groups[-1].append(line)
        else:
            groups.append([line])
    for group in groups:
        head = group[0]  # the first and widest line of the group
        for other in group[1:]:
            offset = other.numbers.start - head.numbers.start
            b.prove(
                E.eq(other.first, E.add(head.first, offset) if offset else head.first),
                f"{other.label} shares {head.label}'s SPIs in the template; keep them together",
            )
            if other.trigger is not None and head.trigger is not None:
                b.prove(
                    E.eq(other.trigger, head.trigger),
                    f"{other.label} shares {head.label}'s SPI: it must trigger the same way",
                )
    for before, after in itertools.pairwise(groups):
        last = max(before, key=lambda x: x.numbers.stop)
        nxt = after[0]
        b.prove(
            E.le(E.add(last.first, last.size), nxt.first),
            f"{last.label} and {nxt.label} share an SPI (or left their order)",
        )


def prove_below_gic_spis(b: Builder, lines: list[Line]) -> None:
    """Every SPI the map wires is one the VMM's GIC implements (``[gic] spis``): a
    single line below ``GIC_SPIS``, a block's last line too (its first below it
    before the subtraction, which could wrap in C)."""
    for line in lines:
        if line.size == 1:
            b.prove(
                E.lt(line.first, "GIC_SPIS"),
                f"{line.first} must be below GIC_SPIS: the GIC has no SPI past its last "
                "([gic] spis)",
            )
        else:
            b.prove(
                E.and_(
                    E.lt(line.first, "GIC_SPIS"), E.le(line.size, E.sub("GIC_SPIS", line.first))
                ),
                f"{line.label} SPIs run past GIC_SPIS: the GIC has no SPI past its last "
                "([gic] spis)",
            )


def prove_attach_order(b: Builder, t: Template, lines: list[Line], serial: bool) -> None:
    """Where the VMM hands lines out in attach order (``[irq] order``), each device's
    first SPI is where the one before it stops (a line taken for something without
    constants, Cloud Hypervisor's GED, counts one)."""
    by_label = {x.label: x for x in lines}
    prev: Line | None = None
    gap = 0
    for tag in t.irq_order:
        if tag == "uart0" and not serial:
            continue
        line = by_label.get(tag)
        if line is None:
            gap += tag != "virtio"  # no transports take no line
            continue
        if prev is None:
            expected: Expr = t.irq_first + gap
        else:
            expected = (
                E.add(prev.first, prev.size)
                if not gap
                else E.add(E.add(prev.first, prev.size), gap)
            )
        after = f"the SPI after {prev.label}'s" if prev is not None else "the first SPI handed out"
        b.prove(E.eq(line.first, expected), f"{tag} must take {after} ([irq] order)")
        prev, gap = line, 0


def virtio_lines(b: Builder, t: Template, virtio: int) -> Line | None:
    v = t.virtio
    ordered = "virtio" in t.irq_order
    b.const(
        "VIRTIO_STRIDE",
        v.stride,
        f"Bytes per virtio-mmio slot ({fmt_size(v.stride)}; [virtio] stride).",
    )
    b.const("VIRTIO_SLOTS", v.slots, "virtio-mmio slots in the window ([virtio] slots).", U32)
    b.prove(
        E.eq(E.bitand("VIRTIO_STRIDE", E.sub("VIRTIO_STRIDE", 1)), 0),
        "VIRTIO_STRIDE is not a power of 2",
    )
    b.prove(E.eq(E.mod("VIRTIO_START", "VIRTIO_STRIDE"), 0), "VIRTIO_START is not a slot boundary")
    b.prove(
        E.ge("VIRTIO_STRIDE", VIRTIO_MMIO_MIN_SIZE),
        f"VIRTIO_STRIDE is below the {VIRTIO_MMIO_MIN_SIZE:#x}-byte register block",
    )
    b.prove(
        E.and_(
            E.eq(E.div("VIRTIO_SIZE", "VIRTIO_STRIDE"), "VIRTIO_SLOTS"),
            E.eq(E.mod("VIRTIO_SIZE", "VIRTIO_STRIDE"), 0),
        ),
        "VIRTIO_SIZE != VIRTIO_STRIDE x VIRTIO_SLOTS",
    )
    if ordered and not virtio:
        return None
    first = t.handed_out_spis(virtio, True)["virtio-0"].number if ordered else v.first_spi.number
    how = "slot i raises VIRTIO_FIRST_SPI + i"
    if v.shared_spi:
        how = "every slot raises VIRTIO_FIRST_SPI"
    elif ordered:
        how = (
            f"handed out in attach order ([irq] order): transport i of {virtio} "
            "raises VIRTIO_FIRST_SPI + i"
        )
    origin = "[irq] order" if ordered else "[virtio] first_spi"
    b.irq("VIRTIO_FIRST", first, None, False, f"virtio-mmio ({how})", origin)
    doc = f"virtio-mmio, every slot: {trigger_doc(v.trigger)}."
    b.trigger("VIRTIO_TRIGGER", v.trigger, doc, SPI_TRIGGERS)
    lines = 1 if v.shared_spi else (virtio if ordered else v.slots)
    b.const("VIRTIO_SPI_LINES", lines, "SPIs the transports take, from VIRTIO_FIRST_SPI.", U32)
    if v.shared_spi:
        tie = E.eq("VIRTIO_SPI_LINES", 1)
    elif ordered:
        tie = E.le("VIRTIO_SPI_LINES", "VIRTIO_SLOTS")
    else:
        tie = E.eq("VIRTIO_SPI_LINES", "VIRTIO_SLOTS")
    b.prove(tie, "VIRTIO_SPI_LINES does not match the slots")
    b.prove(  # a subtraction, safe after VIRTIO_FIRST_SPI <= 987: a sum could wrap in C
        E.le("VIRTIO_SPI_LINES", E.sub(SPI_MAX + 1, "VIRTIO_FIRST_SPI")),
        f"virtio SPIs run past SPI {SPI_MAX}",
    )
    numbers = range(first, first + lines)
    return Line("virtio", "VIRTIO_FIRST_SPI", "VIRTIO_SPI_LINES", numbers, "VIRTIO_TRIGGER")


def pcie_lines(b: Builder, t: Template) -> Line | None:
    p = t.pcie
    assert p is not None
    b.const("PCIE_BUS_FIRST", p.bus_first, "First bus of [pcie] bus_range.", U32)
    b.const("PCIE_BUS_LAST", p.bus_last, "Last bus of [pcie] bus_range.", U32)
    b.prove(
        E.and_(E.le("PCIE_BUS_FIRST", "PCIE_BUS_LAST"), E.le("PCIE_BUS_LAST", BUS_MAX)),
        f"PCIe bus range is not first..last within 0..{BUS_MAX}",
    )
    cfg = const_name("pcie-ecam" if p.compatible == ECAM else "pcie-cam")
    per_bus = BUS_CONFIG_SIZE[p.compatible]
    b.prove(
        E.and_(
            E.eq(E.mod(f"{cfg}_SIZE", per_bus), 0),
            E.ge(E.div(f"{cfg}_SIZE", per_bus), E.add(E.sub("PCIE_BUS_LAST", "PCIE_BUS_FIRST"), 1)),
        ),
        f"{cfg}_SIZE does not hold the buses PCIE_BUS_FIRST..PCIE_BUS_LAST "
        f"({fmt_size(per_bus)} each)",
    )
    if p.io is not None:
        b.prove(
            E.le("PCIE_IO_SIZE", PCI_IO_LIMIT),
            f"PCIE_IO_SIZE is over the {fmt_size(PCI_IO_LIMIT)} of I/O space Linux maps",
        )
    if p.mmio32 is not None:
        b.prove(E.le("PCIE_MMIO32_END", MEM32_LIMIT), "PCIE_MMIO32 ends above 4 GiB")
    a = p.mmio64_after_ram
    if a is not None:
        what = "PCI 64-bit memory window, which follows RAM"
        b.const(
            "PCIE_MMIO64_AFTER_RAM",
            a.gap,
            f"{what}: it starts this many bytes past the end of RAM, at "
            "max(PCIE_MMIO64_FLOOR, RAM end + PCIE_MMIO64_AFTER_RAM). "
            "Template: [pcie] mmio64_after_ram.",
        )
        b.const(
            "PCIE_MMIO64_FLOOR",
            a.floor,
            f"{what}: its lowest start. Template: [pcie] mmio64_floor.",
        )
        b.const(
            "PCIE_MMIO64_BELOW_TOP",
            a.top,
            f"{what}: it ends this many bytes below 2^PHYS_ADDR_BITS. "
            "Template: [pcie] mmio64_below_top.",
        )
        b.prove(
            E.and_(
                E.eq(E.mod("PCIE_MMIO64_AFTER_RAM", PAGE_SIZE), 0),
                E.and_(
                    E.eq(E.mod("PCIE_MMIO64_FLOOR", PAGE_SIZE), 0),
                    E.eq(E.mod("PCIE_MMIO64_BELOW_TOP", PAGE_SIZE), 0),
                ),
            ),
            f"PCIE_MMIO64_AFTER_RAM, _FLOOR and _BELOW_TOP are not whole {fmt_size(PAGE_SIZE)} "
            "pages",
        )
        top = E.sub("PHYS_ADDR_MAX", "PCIE_MMIO64_BELOW_TOP")  # its last byte at the most
        b.prove(
            E.and_(
                E.le("PCIE_MMIO64_BELOW_TOP", "PHYS_ADDR_MAX"),
                E.le("PCIE_MMIO64_FLOOR", top),
            ),
            "the PCI 64-bit window has no room between PCIE_MMIO64_FLOOR and "
            "2^PHYS_ADDR_BITS - PCIE_MMIO64_BELOW_TOP",
        )
        # After the least RAM a machine has (a page at RAM_START) and the gap, a byte
        # is left below the top: RAM_START + page + gap <= PHYS_ADDR_MAX - BELOW_TOP.
        ram = E.add("RAM_START", PAGE_SIZE)
        b.prove(
            E.and_(
                E.le("PCIE_MMIO64_BELOW_TOP", "PHYS_ADDR_MAX"),
                E.and_(
                    E.le("RAM_START", E.sub("PHYS_ADDR_MAX", PAGE_SIZE)),
                    E.and_(
                        E.le(ram, top),
                        E.le("PCIE_MMIO64_AFTER_RAM", E.sub(top, ram)),
                    ),
                ),
            ),
            f"the PCI 64-bit window has no room after {fmt_size(PAGE_SIZE)} of RAM at "
            "RAM_START and PCIE_MMIO64_AFTER_RAM, below 2^PHYS_ADDR_BITS - PCIE_MMIO64_BELOW_TOP",
        )
    if p.first_spi is None:
        return None
    n = len(p.intx_spis())
    style = (
        f"one INTA line for each of {n} slots" if p.intx == "per-slot" else "INTA..INTD, swizzled"
    )
    b.irq(
        "PCIE_INTX_FIRST",
        p.first_spi.number,
        None,
        False,
        f"PCI INTx ({style})",
        "[pcie] first_spi",
    )
    level = Trigger.LEVEL_HIGH
    doc = f"PCI INTx (level-sensitive): {trigger_doc(level)}."
    b.trigger("PCIE_INTX_TRIGGER", level, doc, (int(level),))
    if p.intx == "per-slot":
        b.const(
            "PCIE_INTX_FIRST_SLOT",
            p.intx_first_slot,
            "PCI INTx: slot PCIE_INTX_FIRST_SLOT + i raises PCIE_INTX_FIRST_SPI + i "
            "([pcie] intx_first_slot).",
            U32,
        )
        b.prove(
            E.le("PCIE_INTX_FIRST_SLOT", E.sub(SLOTS, "PCIE_INTX_LINES")),
            f"PCI INTx slots run past device {SLOTS - 1}",
        )
    b.const("PCIE_INTX_LINES", n, "SPIs the INTx lines take, from PCIE_INTX_FIRST_SPI.", U32)
    b.prove(E.eq("PCIE_INTX_LINES", n), f"PCIE_INTX_LINES is not {n} ({style})")
    b.prove(
        E.le("PCIE_INTX_LINES", E.sub(SPI_MAX + 1, "PCIE_INTX_FIRST_SPI")),
        f"PCI INTx SPIs run past SPI {SPI_MAX}",
    )
    first = p.first_spi.number
    numbers = range(first, first + n)
    return Line("pcie INTx", "PCIE_INTX_FIRST_SPI", "PCIE_INTX_LINES", numbers, "PCIE_INTX_TRIGGER")


def v2m_lines(b: Builder, t: Template) -> Line | None:
    v2m = t.gic.v2m
    if v2m is None or not v2m.spis():
        return None
    spis = [s.number for s in v2m.spis()]
    b.const(
        "GIC_V2M_FIRST_SPI", spis[0], "First SPI the v2m frame signals ([gic.v2m] base_intid).", U32
    )
    b.const("GIC_V2M_SPIS", len(spis), "SPIs the v2m frame signals ([gic.v2m] num_spis).", U32)
    b.prove(
        E.and_(
            E.le("GIC_V2M_FIRST_SPI", SPI_MAX),
            E.le("GIC_V2M_SPIS", E.sub(SPI_MAX + 1, "GIC_V2M_FIRST_SPI")),
        ),
        f"the v2m frame's SPIs run past SPI {SPI_MAX}",
    )
    return Line("gic-v2m", "GIC_V2M_FIRST_SPI", "GIC_V2M_SPIS", range(spis[0], spis[-1] + 1))
