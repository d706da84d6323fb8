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

from fdtgen.codegen.lines import (
    Line,
    interrupts,
    pcie_lines,
    prove_attach_order,
    prove_below_gic_spis,
    prove_lines_apart,
    v2m_lines,
    virtio_lines,
)
from fdtgen.codegen.model import (
    U32,
    AllOnes,
    Builder,
    E,
    Expr,
    Module,
    const_name,
)
from fdtgen.errors import ConfigError, LayoutError
from fdtgen.layout import ram_start
from fdtgen.ranges import Range, Region
from fdtgen.spec import (
    DEFAULT_ADDRESS_WIDTH,
    DTB_ALIGN,
    ECAM,
    FDT_MAX_SIZE,
    GICV2_MAX_VCPUS,
    GICV3_REDIST_FRAME,
    GICV3_REDIST_STRIDE,
    MAX_ADDRESS_WIDTH,
    MIN_ADDRESS_WIDTH,
    RAM_ALIGN,
    SPI_MAX,
)
from fdtgen.template.model import Template
from fdtgen.template.proofs import gic_frame_minimums
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
    ram_base: int | None = None,
    command: str,
) -> Module:
    """The constants and proofs of template ``t`` for a machine with ``virtio`` transports.

    ``virtio`` and ``serial`` matter only where the VMM hands SPIs out in attach
    order (``[irq] order``); ``address_width``, ``redist_stride`` and
    ``ram_base`` (where RAM starts, which the boot offsets count from) default
    to the template's.
    """
    settings = ", ".join(
        text
        for text, value in (
            (f"address_width {address_width}", address_width),
            (f"redist_stride {redist_stride or 0:#x}", redist_stride),
            (f"ram_base {ram_base or 0:#x}", ram_base),
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
    max_vcpus, why = t.max_vcpus, "[machine] max_vcpus"
    if t.gic.version == 3 and redist_stride is not None:
        frames = sum(w.size // stride for w in t.gic.redist_windows())
        if frames < max_vcpus:  # the config's larger frames leave room for fewer vCPUs
            max_vcpus, why = frames, "the redistributor frames of the config's redist_stride"
    if max_vcpus < 1:
        raise LayoutError(
            f"codegen: template {t.name!r}: no redistributor frame of {stride:#x} bytes fits"
        )
    b.const("MAX_VCPUS", max_vcpus, f"Most vCPUs a machine may have ({why}).", U32)
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
    gic_frames = ("gic-dist", "gic-redist", "gic-redist2", "gic-its")
    for r in regions:
        what, where = origin.get(r.tag, (f"Region `{r.tag}`", "the template"))
        align = r.align
        if t.gic.version == 3 and r.tag in gic_frames:  # KVM's vgic-v3 addresses: 64 KiB
            align = max(align, GICV3_REDIST_FRAME)
        names.append((r, b.region(r.tag, r.range, what, where, align)))
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
    lines: list[Line | None] = [*interrupts(b, t, names, virtio, serial)]

    b.section("GIC")
    _gic(
        b,
        t,
        stride,
        "[gic] redist_stride" if redist_stride is None else "the config's redist_stride",
    )
    g = t.gic
    if g.version == 3 and g.redist_reg != "window" and g.redist_anchor == "end":
        b.function(
            "gic_redist_base",
            "vcpus",
            "MAX_VCPUS",
            E.sub("GIC_REDIST_END", E.mul("vcpus", "GIC_REDIST_STRIDE")),
            "Base of the live redistributor frames, given the vCPU count: the VMM stacks "
            'them down from GIC_REDIST_END ([gic] redist_anchor = "end").',
        )
    lines.append(v2m_lines(b, t))

    if t.virtio.slots and t.virtio.base is not None:
        b.section("virtio-mmio transports")
        lines.append(virtio_lines(b, t, virtio))

    if t.pcie is not None:
        b.section("PCIe host bridge")
        lines.append(pcie_lines(b, t))
    wired = [x for x in lines if x is not None]
    prove_lines_apart(b, wired)
    if t.gic.spis is not None:
        prove_below_gic_spis(b, wired)
    if t.irq_order:
        prove_attach_order(b, t, wired, serial)

    b.section("Boot")
    bs = t.boot
    ram = ram_start(t, ram_base)
    if ram >= dram_window.end:  # the DRAM window was cut at the address width
        raise ConfigError(
            f"ram_base: {ram:#x} is past the {bits}-bit guest physical address space "
            f"({limit:#x}; address_width)",
            setting="ram_base",
        )
    b.const(
        "RAM_START",
        ram,
        "Where RAM starts: the boot offsets count from here ("
        + ("[dram] base" if ram_base is None else "the config's ram_base")
        + ").",
    )
    b.prove(
        E.and_(E.le(f"{dram}_START", "RAM_START"), E.lt("RAM_START", f"{dram}_END")),
        "RAM_START is outside the DRAM window",
    )
    b.prove(
        E.eq(E.mod("RAM_START", RAM_ALIGN), 0),
        f"RAM_START is not {fmt_size(RAM_ALIGN)} aligned (booting.rst: the Image's base)",
    )
    for h, n in holes:
        b.prove(
            E.or_(E.lt("RAM_START", f"{n}_START"), E.ge("RAM_START", f"{n}_END")),
            f"RAM_START lies in the DRAM hole {h.tag}",
        )
    b.const(
        "KERNEL_OFFSET",
        bs.kernel_offset,
        "The kernel's 2 MiB-aligned base is searched from RAM_START + this "
        f"({fmt_size(bs.kernel_offset)}; [boot] kernel_offset).",
    )
    b.const(
        "INITRD_OFFSET",
        bs.initrd_offset,
        "Lowest preferred initrd address, from RAM_START "
        f"({fmt_size(bs.initrd_offset)}; [boot] initrd_offset).",
    )
    b.const(
        "FDT_MAX_SIZE",
        bs.fdt_max_size,
        f"Bytes kept for the DTB ({fmt_size(bs.fdt_max_size)}; [boot] fdt_max_size).",
    )
    b.prove(
        E.and_(
            E.and_(E.ne("FDT_MAX_SIZE", 0), E.le("FDT_MAX_SIZE", FDT_MAX_SIZE)),
            E.eq(E.mod("FDT_MAX_SIZE", DTB_ALIGN), 0),
        ),
        "FDT_MAX_SIZE: booting.rst wants the DTB 8-byte aligned and at most 2 MiB",
    )
    room = E.sub(f"{dram}_END", "RAM_START")
    b.prove(E.lt("KERNEL_OFFSET", room), "KERNEL_OFFSET is past the DRAM window")
    b.prove(E.lt("INITRD_OFFSET", room), "INITRD_OFFSET is past the DRAM window")

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


def _gic(b: Builder, t: Template, stride: int, stride_from: str) -> None:
    g = t.gic
    b.const("GIC_VERSION", g.version, "GIC architecture version ([gic] version).", U32)
    b.prove(E.eq("GIC_VERSION", g.version), f"this map is a GICv{g.version}'s")
    if g.spis is not None:
        b.const(
            "GIC_SPIS",
            g.spis,
            "Number of SPIs the VMM's GIC implements for the template's fullest machine "
            "(SPIs 0 to GIC_SPIS - 1; a VMM that sizes its GIC from the lines it hands "
            "out may give a smaller machine fewer); a device wired past the last never "
            "interrupts ([gic] spis).",
            U32,
        )
        b.prove(
            E.and_(E.ge("GIC_SPIS", 1), E.le("GIC_SPIS", SPI_MAX + 1)),
            f"GIC_SPIS is outside 1..{SPI_MAX + 1} (the binding's SPIs are 0..{SPI_MAX})",
        )
    for f in gic_frame_minimums(g):  # each frame holds its registers
        n = const_name(f.tag)
        b.prove(
            E.ge(f"{n}_SIZE", f.minimum),
            f"{n}_SIZE must be at least {fmt_size(f.minimum)} ({f.rule})",
        )
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
