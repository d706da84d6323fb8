"""A template's map as named constants and the proofs that hold between them.

This is the language-neutral half of ``fdtgen codegen``; :mod:`fdtgen.codegen.render`
writes it as a Rust module or a C header. Every proof is evaluated here, on the
template's own numbers, before anything is written: generated code that would
not compile is refused as a template error instead.

Names (docs/codegen.md): a region's tag upper-cased, each run of characters
other than letters and digits turned into one ``_`` (``gic-redist`` ->
``GIC_REDIST``, a name that would start with a digit gets ``R_`` in front),
then ``_START``, ``_SIZE`` and ``_END`` (exclusive). A wired device adds
``_SPI`` (or ``_PPI``), ``_INTID`` and ``_TRIGGER``; the rest are fixed names
(``MAX_VCPUS``, ``DRAM_START``, ``VIRTIO_FIRST_SPI``, ``FDT_MAX_SIZE``...).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

from fdtgen.codegen.model import (
    SPI_TRIGGERS,
    U32,
    AllOnes,
    Builder,
    E,
    Expr,
    Module,
    const_name,
    trigger_doc,
)
from fdtgen.errors import LayoutError
from fdtgen.irq import SPI_MAX, Trigger
from fdtgen.ranges import Range, Region
from fdtgen.spec import (
    DEFAULT_ADDRESS_WIDTH,
    DTB_ALIGN,
    FDT_MAX_SIZE,
    GICV2_MAX_VCPUS,
    GICV3_REDIST_FRAME,
    GICV3_REDIST_STRIDE,
    MAX_ADDRESS_WIDTH,
    MIN_ADDRESS_WIDTH,
    RAM_ALIGN,
    TIMER_NAMES,
    VIRTIO_MMIO_MIN_SIZE,
)
from fdtgen.template.model import Template
from fdtgen.template.pci import (
    BUS_CONFIG_SIZE,
    BUS_MAX,
    ECAM,
    MEM32_LIMIT,
    PCI_IO_LIMIT,
    SLOTS,
)
from fdtgen.units import fmt_size


def _origin(t: Template) -> dict[str, tuple[str, str]]:
    """``tag -> (what it is, where the template gives it)`` for every pinned region."""
    g = t.gic
    out = {
        r.tag: (f"Reserved `{r.tag}` (not in the DT)", f'[[reserved]] tag = "{r.tag}"')
        for r in t.reserved
    }
    out |= {
        "gic-dist": ("GIC distributor (GICD)", "[gic] dist_base, dist_size"),
        "gic-cpu": ("GICv2 CPU interface (GICC)", "[gic] cpu_base, cpu_size"),
        "gic-redist": (
            "GICv3 redistributor window (GICR"
            + (
                "; the live frames end at GIC_REDIST_END: n vCPUs' start at "
                "GIC_REDIST_END - n x GIC_REDIST_STRIDE)"
                if g.redist_anchor == "end"
                else "; n vCPUs' frames start at GIC_REDIST_START)"
            ),
            "[gic] redist_base..redist_end",
        ),
        "gic-redist2": ("Second GICv3 redistributor window", "[gic] redist2_base..redist2_end"),
        "gic-its": (
            "GICv3 ITS" + (" (where it sits with MAX_VCPUS vCPUs)" if g.its_below_redist else ""),
            "[gic.its]",
        ),
        "gic-v2m": ("GICv2m MSI frame", "[gic.v2m] base, size"),
        "uart0": (f"Console UART ({t.uart.kind})", "[uart] base, size"),
        "virtio": (
            "The virtio-mmio window (VIRTIO_SLOTS x VIRTIO_STRIDE)",
            "[virtio]"
            + (" placed below 4 GiB at load" if t.virtio.placement == "below-4g" else " base"),
        ),
    }
    out |= {
        d.tag: (f"Device `{d.tag}` ({d.kind})", f'[[device]] tag = "{d.tag}"') for d in t.devices
    }
    if t.pcie is not None:
        space = "ECAM" if t.pcie.compatible == ECAM else "CAM"
        out |= {
            "pcie-ecam": (f"PCIe configuration space ({space})", "[pcie] config_base..config_end"),
            "pcie-cam": (f"PCI configuration space ({space})", "[pcie] config_base..config_end"),
            "pcie-io": ("PCI I/O window (CPU addresses)", "[pcie] io_base..io_end"),
            "pcie-mmio32": ("PCI 32-bit memory window", "[pcie] mmio32_base..mmio32_end"),
            "pcie-mmio64": ("PCI 64-bit memory window", "[pcie] mmio64_base..mmio64_end"),
        }
    return out


def build_module(
    t: Template,
    *,
    virtio: int,
    serial: bool,
    address_width: int | None,
    redist_stride: int | None,
    command: str,
) -> Module:
    """The constants and proofs of template ``t`` for a machine with ``virtio`` transports.

    ``virtio`` and ``serial`` matter only where the VMM hands SPIs out in attach
    order (``[irq] order``); ``address_width`` and ``redist_stride`` default to
    the template's.
    """
    settings = ", ".join(
        text
        for text, value in (
            (f"address_width {address_width}", address_width),
            (f"redist_stride {redist_stride or 0:#x}", redist_stride),
        )
        if value is not None
    )
    b = Builder(t, settings)
    bits = address_width or t.address_width or DEFAULT_ADDRESS_WIDTH
    stride = redist_stride or t.gic.redist_stride
    # The DRAM window's pieces between holes are pinned regions too; the window and
    # its holes stand for them.
    pieces = {(f"dram{i or ''}", r) for i, r in enumerate(t.dram_ranges())}
    regions = [r for r in t.pinned_regions() if (r.tag, r.range) not in pieces]
    origin = _origin(t)
    limit = 1 << bits
    if t.dram.base >= limit:
        raise LayoutError(
            f"codegen: template {t.name!r}: DRAM starts at {t.dram.base:#x}, past the "
            f"{bits}-bit guest physical address limit {limit:#x}"
        )
    # RAM ends by the window's max_end or the address width, whichever comes first.
    dram_window = Range(t.dram.base, min(t.dram.end, limit) - t.dram.base)

    b.section("Machine")
    b.const("MAX_VCPUS", t.max_vcpus, "Most vCPUs a machine may have ([machine] max_vcpus).", U32)
    b.const("PHYS_ADDR_BITS", bits, "Guest physical address bits every range fits below.", U32)
    b.const("PHYS_ADDR_MAX", (1 << bits) - 1, "Last guest-physical address (2^PHYS_ADDR_BITS - 1).")
    b.prove(
        E.and_(
            E.le(MIN_ADDRESS_WIDTH, "PHYS_ADDR_BITS"), E.le("PHYS_ADDR_BITS", MAX_ADDRESS_WIDTH)
        ),
        f"PHYS_ADDR_BITS is outside {MIN_ADDRESS_WIDTH}..{MAX_ADDRESS_WIDTH}",
    )
    b.prove(
        E.eq("PHYS_ADDR_MAX", E.shr(AllOnes(), E.sub(64, "PHYS_ADDR_BITS"))),
        "PHYS_ADDR_MAX != 2^PHYS_ADDR_BITS - 1",
    )
    b.prove(E.ne("MAX_VCPUS", 0), "MAX_VCPUS is 0")

    b.section("Regions, in address order")
    names: list[tuple[Region, str]] = []
    for r in regions:
        what, where = origin.get(r.tag, (f"Region `{r.tag}`", "the template"))
        names.append((r, b.region(r.tag, r.range, what, where, r.align)))
    clamped = dram_window != t.dram
    dram = b.region(
        "dram",
        dram_window,
        "DRAM window (RAM starts at DRAM_START and ends by DRAM_END)",
        "[dram] base; DRAM_END is 2^PHYS_ADDR_BITS, below [dram] max_end"
        if clamped
        else "[dram] base, max_end",
        RAM_ALIGN,
    )
    holes = []
    for h in sorted(t.ram_holes, key=lambda h: h.range.base):
        if h.range.base >= dram_window.end:
            continue  # past the address width: nothing of it is in the window
        cut = Region(h.tag, Range(h.range.base, min(h.range.end, dram_window.end) - h.range.base))
        what = f"DRAM hole `{h.tag}` (no RAM" + (", cut at DRAM_END)" if cut != h else ")")
        origin_ = f'[[dram.hole]] tag = "{h.tag}"'
        holes.append((cut, b.region(h.tag, cut.range, what, origin_, h.align)))
    _prove_map(b, names, dram, holes, dram_window)

    b.section("Interrupts")
    lines: list[_Line | None] = [*_interrupts(b, t, names, virtio, serial)]

    b.section("GIC")
    _gic(
        b,
        t,
        stride,
        "[gic] redist_stride" if redist_stride is None else "the config's redist_stride",
    )
    lines.append(_v2m(b, t))

    if t.virtio.slots and t.virtio.base is not None:
        b.section("virtio-mmio transports")
        lines.append(_virtio(b, t, virtio))

    if t.pcie is not None:
        b.section("PCIe host bridge")
        lines.append(_pcie(b, t))
    _prove_lines_apart(b, [x for x in lines if x is not None])

    b.section("Boot")
    bs = t.boot
    b.const(
        "KERNEL_OFFSET",
        bs.kernel_offset,
        "The kernel's 2 MiB-aligned base is searched from DRAM_START + this "
        f"({fmt_size(bs.kernel_offset)}; [boot] kernel_offset).",
    )
    b.const(
        "INITRD_OFFSET",
        bs.initrd_offset,
        "Lowest preferred initrd address, from DRAM_START "
        f"({fmt_size(bs.initrd_offset)}; [boot] initrd_offset).",
    )
    b.const(
        "FDT_MAX_SIZE",
        bs.fdt_max_size,
        f"Bytes kept for the DTB ({fmt_size(bs.fdt_max_size)}; [boot] fdt_max_size).",
    )
    b.prove(
        E.and_(E.le("FDT_MAX_SIZE", FDT_MAX_SIZE), E.eq(E.mod("FDT_MAX_SIZE", DTB_ALIGN), 0)),
        "FDT_MAX_SIZE: booting.rst wants the DTB 8-byte aligned and at most 2 MiB",
    )
    b.prove(E.lt("KERNEL_OFFSET", "DRAM_SIZE"), "KERNEL_OFFSET is past the DRAM window")
    b.prove(E.lt("INITRD_OFFSET", "DRAM_SIZE"), "INITRD_OFFSET is past the DRAM window")

    return b.module(command, _notes(t, virtio, serial))


def _prove_map(
    b: Builder,
    names: list[tuple[Region, str]],
    dram: str,
    holes: list[tuple[Region, str]],
    window: Range,
) -> None:
    """No two regions overlap; none is in DRAM but in a hole; all below the address width;
    the template's ordering rules."""
    for (ra, a), (rb, nb) in itertools.pairwise(names):
        b.prove(E.le(f"{a}_END", f"{nb}_START"), f"{ra.tag} and {rb.tag} overlap")
    for (ha, a), (hb, nb) in itertools.pairwise(holes):
        b.prove(E.le(f"{a}_END", f"{nb}_START"), f"DRAM holes {ha.tag} and {hb.tag} overlap")
    for h, n in holes:
        b.prove(
            E.and_(E.le(f"{dram}_START", f"{n}_START"), E.le(f"{n}_END", f"{dram}_END")),
            f"DRAM hole {h.tag} is outside the DRAM window",
        )
    for r, n in names:
        hole = next(((h, hn) for h, hn in holes if h.range.contains(r.range)), None)
        if hole is None:
            b.prove(
                E.or_(E.le(f"{n}_END", f"{dram}_START"), E.ge(f"{n}_START", f"{dram}_END")),
                f"{r.tag} overlaps DRAM",
            )
        else:
            b.prove(
                E.and_(E.le(f"{hole[1]}_START", f"{n}_START"), E.le(f"{n}_END", f"{hole[1]}_END")),
                f"{r.tag} leaves the DRAM hole {hole[0].tag}",
            )
    for tag, n in [(r.tag, n) for r, n in names] + [("dram", dram)]:
        b.prove(E.le(E.sub(f"{n}_END", 1), "PHYS_ADDR_MAX"), f"{tag} ends past PHYS_ADDR_BITS")
    pieces = _dram_pieces(b.t, dram, holes, window)
    ends = {r.tag: (f"{n}_START", f"{n}_END") for r, n in names} | pieces
    cut_off = {f"dram{i or ''}" for i in range(len(b.t.dram_ranges()))} - set(pieces)
    for rule in b.t.rules:
        lo, hi = ends.get(rule.lower), ends.get(rule.upper)
        if {rule.lower, rule.upper} & cut_off:
            continue  # a piece of DRAM past the address width: nothing of it to prove
        if lo is None or hi is None:
            raise LayoutError(
                f"codegen: rule {rule.kind} names {rule.lower!r}/{rule.upper!r}, not a region"
            )
        if rule.kind == "abuts":
            b.prove(E.eq(lo[1], hi[0]), f"{rule.upper} must abut {rule.lower} ([[rule]] abuts)")
        else:
            b.prove(
                E.le(lo[1], hi[0]), f"{rule.lower} must lie below {rule.upper} ([[rule]] below)"
            )


def _dram_pieces(
    t: Template, dram: str, holes: list[tuple[Region, str]], window: Range
) -> dict[str, tuple[Expr, Expr]]:
    """The DRAM window's pieces between holes (``dram``, ``dram1``...: the tags a
    ``[[rule]]`` may name) as ``(start, end)`` in terms of the window and the holes;
    a piece the address width cuts ends at the window's end, one it leaves out is
    not there."""
    out: dict[str, tuple[Expr, Expr]] = {}
    for i, whole in enumerate(t.dram_ranges()):
        if whole.base >= window.end:
            continue
        piece = Range(whole.base, min(whole.end, window.end) - whole.base)
        start: Expr | None = f"{dram}_START" if piece.base == window.base else None
        end: Expr | None = f"{dram}_END" if piece.end == window.end else None
        for h, n in holes:
            if h.range.end == piece.base:
                start = f"{n}_END"
            if h.range.base == piece.end:
                end = f"{n}_START"
        if start is not None and end is not None:
            out[f"dram{i or ''}"] = (start, end)
    return out


class _Line(NamedTuple):
    """SPIs ``first .. first + size``, named by constants (size: a name or a number)."""

    label: str
    first: str
    size: str | int
    numbers: range


def _interrupts(
    b: Builder, t: Template, names: list[tuple[Region, str]], virtio: int, serial: bool
) -> list[_Line]:
    """Every device's interrupt, the timer's and the GIC's PPIs; the SPI lines they take."""
    stem = {r.tag: n for r, n in names}
    handed = t.handed_out_spis(virtio, serial)
    lines: list[_Line] = []
    if serial:
        spi = handed.get("uart0", t.uart.spi).number
        b.irq(stem["uart0"], spi, t.uart.trigger, False, "Console UART")
        lines.append(_Line("uart0", f"{stem['uart0']}_SPI", 1, range(spi, spi + 1)))
    ppis: list[tuple[str, int]] = []
    for d in t.devices:
        if d.spi is not None:
            spi = handed.get(d.tag, d.spi).number
            b.irq(stem[d.tag], spi, d.trigger, False, f"Device `{d.tag}` ({d.kind})")
            lines.append(_Line(d.tag, f"{stem[d.tag]}_SPI", 1, range(spi, spi + 1)))
        elif d.ppi is not None:
            b.irq(stem[d.tag], d.ppi.number, d.trigger, True, f"Device `{d.tag}` ({d.kind})")
            ppis.append((f"{stem[d.tag]}_PPI", d.ppi.number))
    timer_names = t.timer_names or TIMER_NAMES  # by position, unless the template names them
    for name, ppi in zip(timer_names, t.timer_ppis, strict=False):
        timer = f"TIMER_{const_name(name)}"
        b.irq(timer, ppi.number, None, True, f"Arch timer, {name}")
        ppis.append((f"{timer}_PPI", ppi.number))
    if t.timer_ppis:
        trigger = t.timer_trigger
        b.trigger("TIMER_TRIGGER", trigger, f"Arch timer, every PPI: {trigger_doc(trigger)}.")
    g = t.gic
    if g.maintenance_ppi is not None:
        b.irq("GIC_MAINTENANCE", g.maintenance_ppi.number, None, True, "GIC maintenance")
        ppis.append(("GIC_MAINTENANCE_PPI", g.maintenance_ppi.number))
    if t.pmu is not None:
        b.irq("PMU", t.pmu.ppi.number, t.pmu.trigger, True, "PMU overflow interrupt")
        ppis.append(("PMU_PPI", t.pmu.ppi.number))
    _prove_ppis_apart(b, ppis)
    return lines


def _prove_ppis_apart(b: Builder, ppis: list[tuple[str, int]]) -> None:
    """The PPIs stay in their order, so no two are one (a chain: linear in their number)."""
    ordered = sorted(ppis, key=lambda p: (p[1], p[0]))
    for (x, xv), (y, yv) in itertools.pairwise(ordered):
        if xv != yv:
            b.prove(E.lt(x, y), f"{x} must stay below {y}: no two interrupts share a PPI")


def _prove_lines_apart(b: Builder, lines: list[_Line]) -> None:
    """No two devices share an SPI the template keeps apart.

    The lines are proved in the template's order, each ending before the next
    starts, so the proof is linear in the number of devices. Lines the
    template shares on purpose (crosvm's COM ports) form one group and must
    stay one line.
    """
    groups: list[list[_Line]] = []
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
    for before, after in itertools.pairwise(groups):
        last = max(before, key=lambda x: x.numbers.stop)
        nxt = after[0]
        b.prove(
            E.le(E.add(last.first, last.size), nxt.first),
            f"{last.label} and {nxt.label} share an SPI (or left their order)",
        )


def _gic(b: Builder, t: Template, stride: int, stride_from: str) -> None:
    g = t.gic
    b.const("GIC_VERSION", g.version, "GIC architecture version ([gic] version).", U32)
    if g.version == 2:
        b.prove(
            E.le("MAX_VCPUS", GICV2_MAX_VCPUS), f"a GICv2 targets at most {GICV2_MAX_VCPUS} vCPUs"
        )
        return
    b.const(
        "GIC_REDIST_STRIDE", stride, f"GICR bytes per vCPU ({fmt_size(stride)}; {stride_from})."
    )
    b.prove(
        E.and_(
            E.ge("GIC_REDIST_STRIDE", GICV3_REDIST_STRIDE),
            E.eq(E.mod("GIC_REDIST_STRIDE", GICV3_REDIST_FRAME), 0),
        ),
        f"GIC_REDIST_STRIDE must be a multiple of {fmt_size(GICV3_REDIST_FRAME)}, "
        f"at least {fmt_size(GICV3_REDIST_STRIDE)}",
    )
    if g.its is not None and g.its_below_redist:
        b.prove(
            E.eq("GIC_ITS_END", "GIC_REDIST_START"),
            "the ITS must end where the redistributor window starts (it sits right below the "
            "live frames, which fill the window with MAX_VCPUS vCPUs)",
        )
    windows = [const_name(r.tag) for r in t.gic_regions() if r.tag in ("gic-redist", "gic-redist2")]
    if windows:  # whole frames per window, counted by division: nothing can wrap
        frames: Expr = E.div(f"{windows[0]}_SIZE", "GIC_REDIST_STRIDE")
        for w in windows[1:]:
            frames = E.add(frames, E.div(f"{w}_SIZE", "GIC_REDIST_STRIDE"))
        b.prove(
            E.ge(frames, "MAX_VCPUS"),
            "the redistributor windows hold fewer than MAX_VCPUS frames of GIC_REDIST_STRIDE",
        )


def _virtio(b: Builder, t: Template, virtio: int) -> _Line | None:
    v = t.virtio
    ordered = "virtio" in t.irq_order
    b.const(
        "VIRTIO_STRIDE",
        v.stride,
        f"Bytes per virtio-mmio slot ({fmt_size(v.stride)}; [virtio] stride).",
    )
    b.const("VIRTIO_SLOTS", v.slots, "virtio-mmio slots in the window ([virtio] slots).", U32)
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
    b.irq("VIRTIO_FIRST", first, None, False, f"virtio-mmio ({how})")
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
    return _Line("virtio", "VIRTIO_FIRST_SPI", "VIRTIO_SPI_LINES", range(first, first + lines))


def _pcie(b: Builder, t: Template) -> _Line | None:
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
    if p.first_spi is None:
        return None
    n = len(p.intx_spis())
    style = (
        f"one INTA line for each of {n} slots" if p.intx == "per-slot" else "INTA..INTD, swizzled"
    )
    b.irq("PCIE_INTX_FIRST", p.first_spi.number, None, False, f"PCI INTx ({style})")
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
    return _Line("pcie INTx", "PCIE_INTX_FIRST_SPI", "PCIE_INTX_LINES", range(first, first + n))


def _v2m(b: Builder, t: Template) -> _Line | None:
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
    return _Line("gic-v2m", "GIC_V2M_FIRST_SPI", "GIC_V2M_SPIS", range(spis[0], spis[-1] + 1))


def _notes(t: Template, virtio: int, serial: bool) -> tuple[str, ...]:
    out = [f"Template {t.name}: {t.description}."]
    if t.source:
        out.append(f"The template's source: {t.source}.")
    if t.irq_order:
        order = ", ".join(t.irq_order)
        out.append(
            f"SPIs are handed out in attach order from SPI {t.irq_first} ({order}); "
            f"these are the numbers with {virtio} virtio transports"
            + (" and a console." if serial else " and no console.")
        )
    if t.pcie is not None and t.pcie.first_spi is not None:
        out.append(
            "PCIe INTx: "
            + (
                "one line per slot from PCIE_INTX_FIRST_SPI."
                if t.pcie.intx == "per-slot"
                else "slot s, pin p (1 = INTA) raises PCIE_INTX_FIRST_SPI + (s + p - 1) % 4."
            )
        )
    return tuple(out)
