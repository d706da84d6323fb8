"""The load-time proofs of a template, the Python form of squib's ``layout.rs`` const assertions."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

from fdtgen.errors import (
    AlignmentError,
    LayoutError,
    RegionOverlapError,
)
from fdtgen.irq import Ppi, Spi
from fdtgen.ranges import Range, Region, by_address
from fdtgen.spec import (
    DEFAULT_ADDRESS_WIDTH,
    GICV2_CPU_MIN_SIZE,
    GICV2_DIST_MIN_SIZE,
    GICV2_MAX_VCPUS,
    GICV2M_MAX_INTID,
    GICV2M_MIN_SIZE,
    GICV3_DIST_MIN_SIZE,
    GICV3_ITS_MIN_SIZE,
    GICV3_REDIST_FRAME,
    GICV3_REDIST_STRIDE,
    MAX_ADDRESS_WIDTH,
    MIN_ADDRESS_WIDTH,
    PAGE_SIZE,
    RAM_ALIGN,
    TIMER_NAMES,
    TIMER_PPIS_UNNAMED,
    VIRTIO_MMIO_MIN_SIZE,
    Trigger,
)
from fdtgen.template.model import REDIST_ANCHORS, REDIST_REG_KINDS, GicSpec, Template
from fdtgen.template.pci import check_pcie
from fdtgen.units import is_aligned, is_pow2

# The redistributor stride rule, for the template's stride and a config's.
REDIST_STRIDE_RULE = (
    f"must be a multiple of {GICV3_REDIST_FRAME:#x} and at least {GICV3_REDIST_STRIDE:#x} "
    "(arm,gic-v3.yaml redistributor-stride; a GICv3 redistributor is two 64 KiB frames, "
    "RD_base and SGI_base)"
)


class GicFrameMinimum(NamedTuple):
    """A GIC frame a template has, and the least size that holds its registers."""

    tag: str  # the region's tag: "gic-its"
    key: str  # the template key of its size: "gic.its.size"
    size: int  # the frame's size in the template
    minimum: int  # from fdtgen.spec
    rule: str  # why, and where the number comes from


def gic_frame_minimums(g: GicSpec) -> tuple[GicFrameMinimum, ...]:
    """Each frame of ``g`` with its minimum size: a GICv3's distributor and ITS, a
    GICv2's distributor and CPU interface, and a v2m frame under either. The numbers
    are the frames KVM maps (fdtgen.spec); the proofs of a template and of the
    generated code both take them from here."""
    frames: list[tuple[str, str, Range | None, int, str]] = []
    if g.version == 3:
        frames += [
            (
                "gic-dist",
                "gic.dist_size",
                g.dist,
                GICV3_DIST_MIN_SIZE,
                "the GICv3 distributor's register frame; KVM_VGIC_V3_DIST_SIZE",
            ),
            (
                "gic-its",
                "gic.its.size",
                g.its,
                GICV3_ITS_MIN_SIZE,
                "an ITS is two 64 KiB frames, control and translation; KVM_VGIC_V3_ITS_SIZE",
            ),
        ]
    elif g.version == 2:
        frames += [
            (
                "gic-dist",
                "gic.dist_size",
                g.dist,
                GICV2_DIST_MIN_SIZE,
                "the GICv2 distributor's register map; KVM_VGIC_V2_DIST_SIZE",
            ),
            (
                "gic-cpu",
                "gic.cpu_size",
                g.cpu_if,
                GICV2_CPU_MIN_SIZE,
                "the GICv2 CPU interface is two 4 KiB pages, GICC_DIR at 0x1000; "
                "KVM_VGIC_V2_CPU_SIZE",
            ),
        ]
    frames.append(
        (
            "gic-v2m",
            "gic.v2m.size",
            None if g.v2m is None else g.v2m.range,
            GICV2M_MIN_SIZE,
            "the v2m frame's registers run to MSI_IIDR at 0xfcc; Linux irq-gic-v2m.c",
        )
    )
    return tuple(
        GicFrameMinimum(tag, key, r.size, minimum, rule)
        for tag, key, r, minimum, rule in frames
        if r is not None
    )


def check_regions(regions: Sequence[Region], context: str = "layout") -> None:
    """No two regions overlap; each base and size is aligned to its ``align``."""
    for r in regions:
        if not is_pow2(r.align):
            raise LayoutError(
                f"{context}: region {r.tag!r} alignment {r.align:#x} is not a power of 2"
            )
        if not is_aligned(r.range.base, r.align):
            raise AlignmentError(r.tag, "base", r.range.base, r.align, context)
        if not is_aligned(r.range.size, r.align):
            raise AlignmentError(r.tag, "size", r.range.size, r.align, context)
    ordered = sorted(regions, key=by_address)
    for a, b in itertools.pairwise(ordered):
        if a.range.overlaps(b.range):
            raise RegionOverlapError(a, b, context)


def _one_owner_each(wired: Sequence[tuple[Spi | Ppi, str]], where: str) -> None:
    """No interrupt is wired to two users (a shared line needs the binding to say so)."""
    owner: dict[Spi | Ppi, str] = {}
    for irq, tag in wired:
        if irq in owner:
            raise LayoutError(
                f"{where}: {irq} ({irq.intid}) is wired to both {owner[irq]!r} and {tag!r}"
            )
        owner[irq] = tag


def check_template(t: Template) -> None:
    """The load-time proofs. Raises :class:`LayoutError` naming the template's file
    (or, for a template made in code, its name), regions and ranges."""
    where = t.path or f"template {t.name!r}"
    virtio_base = t.virtio.base if t.virtio.slots else 0
    unplaced = [
        tag
        for tag, base in (("virtio", virtio_base), *((d.tag, d.base) for d in t.devices))
        if base is None
    ]
    if unplaced:
        raise LayoutError(f"{where}: region {unplaced[0]!r} has no address (place it first)")
    _check_gic_frames(t, where)  # first: a frame below a page also fails the alignment rule
    regions = t.pinned_regions()
    check_regions(regions, where)
    _check_address_width(t, where)
    by_tag = {r.tag: r for r in regions}
    tags = [r.tag for r in regions] + [h.tag for h in t.ram_holes]
    dup = next((tag for tag in tags if tags.count(tag) > 1), None)
    if dup is not None:
        raise LayoutError(f"{where}: region tag {dup!r} is used twice")
    _check_holes(t, where)
    if not is_aligned(t.dram.base, RAM_ALIGN):  # RAM starts there unless a config moves it
        raise AlignmentError("dram", "base", t.dram.base, RAM_ALIGN, where)
    if t.virtio.stride < VIRTIO_MMIO_MIN_SIZE or not is_pow2(t.virtio.stride):
        raise LayoutError(
            f"{where}: virtio stride {t.virtio.stride:#x} must be a power of 2 >= "
            f"{VIRTIO_MMIO_MIN_SIZE:#x} "
            "(virtio-mmio register block)"
        )
    if t.virtio.slots < 0:
        raise LayoutError(f"{where}: virtio slots {t.virtio.slots} is negative")
    if t.virtio.slots and not is_aligned(t.virtio.window.base, t.virtio.stride):
        raise AlignmentError("virtio", "base", t.virtio.window.base, t.virtio.stride, where)
    _check_timer(t, where)
    _check_gic(t, where)
    if t.pcie is not None:
        msi = t.gic.its is not None or t.gic.v2m is not None
        check_pcie(t.pcie, where, msi, t.virtio.slots, its=t.gic.its is not None)
        _check_window_after_ram(t, where)
    for rule in t.rules:
        lo, hi = by_tag.get(rule.lower), by_tag.get(rule.upper)
        if lo is None or hi is None:
            missing = rule.lower if lo is None else rule.upper
            raise LayoutError(f"{where}: rule {rule.kind} names unknown region {missing!r}")
        if rule.kind == "abuts" and lo.range.end != hi.range.base:
            raise LayoutError(
                f"{where}: region {hi.tag!r} {hi.range} must abut region {lo.tag!r} "
                f"{lo.range} (expected base {lo.range.end:#x})"
            )
        if rule.kind == "below" and lo.range.end > hi.range.base:
            raise LayoutError(
                f"{where}: region {lo.tag!r} {lo.range} must lie below region {hi.tag!r} {hi.range}"
            )
        if rule.kind not in ("abuts", "below"):
            raise LayoutError(f"{where}: unknown rule kind {rule.kind!r} (use abuts, below)")
    _check_interrupts(t, where)


def _check_window_after_ram(t: Template, where: str) -> None:
    """A 64-bit window that follows RAM has room after the least RAM a machine can
    have (a page at the DRAM base) below the top of the template's address width
    (64 bits when it names none): otherwise no machine could be built."""
    a = None if t.pcie is None else t.pcie.mmio64_after_ram
    if a is None:
        return
    bits = t.address_width or MAX_ADDRESS_WIDTH
    start = a.start(t.dram.base + PAGE_SIZE)  # after the least RAM a machine has
    # RAM goes in the DRAM window (holes and all) and the window follows RAM; the
    # other pinned regions lie outside the DRAM window (check_template), so one
    # that ends past the window's lowest start is above it, in the window's way.
    dram = set(t.dram_ranges())
    for r in t.pinned_regions():
        if r.range not in dram and r.range.end > start:
            raise LayoutError(
                f"{where}: region {r.tag!r} {r.range} lies where the 64-bit PCI window "
                f"after RAM goes (from {start:#x} after a page of RAM at {t.dram.base:#x}, "
                "mmio64_after_ram and mmio64_floor): move it below, or pin the window"
            )
    if start >= a.end(bits):
        raise LayoutError(
            f"{where}: pcie mmio64_after_ram {a.gap:#x}, mmio64_floor {a.floor:#x} and "
            f"mmio64_below_top {a.top:#x} leave no machine a 64-bit window: after a page "
            f"of RAM at {t.dram.base:#x} it would start at {start:#x}, past "
            f"2^{bits}" + (f" - {a.top:#x}" if a.top else "")
        )


def _check_timer(t: Template, where: str) -> None:
    """arm,arch_timer.yaml: without ``interrupt-names`` the timer PPIs are found by
    position (secure, non-secure, virtual, hypervisor[, hypervisor virtual]);
    with names, each is named once and the virtual timer a guest at EL1 runs on
    is there. ``fdtgen verify`` flags a blob that breaks either."""
    ppis = [p.number for p in t.timer_ppis]
    if not t.timer_names:
        lo, hi = TIMER_PPIS_UNNAMED
        if not lo <= len(ppis) <= hi:
            raise LayoutError(
                f"{where}: timer.ppis: {ppis}: needs {lo} or {hi} PPIs, secure, non-secure, "
                "virtual, hypervisor[, hypervisor virtual] (arm,arch_timer.yaml), or "
                "timer.names to say which ones it has"
            )
    elif (
        len(t.timer_names) != len(ppis)
        or any(n not in TIMER_NAMES for n in t.timer_names)
        or len(set(t.timer_names)) != len(t.timer_names)
        or "virt" not in t.timer_names
    ):
        raise LayoutError(
            f"{where}: timer.names: {list(t.timer_names)}: must name each of the {len(ppis)} "
            f'timer PPIs once with one of {", ".join(TIMER_NAMES)}, "virt" among them '
            "(the virtual timer a guest at EL1 runs on)"
        )


def _check_address_width(t: Template, where: str) -> None:
    """Every region the template pins ends within its address width (or, when it
    names none, the default every build and ``fdtgen verify`` assume); so does
    the start of its DRAM window."""
    width = DEFAULT_ADDRESS_WIDTH if t.address_width is None else t.address_width
    if not MIN_ADDRESS_WIDTH <= width <= MAX_ADDRESS_WIDTH:
        raise LayoutError(
            f"{where}: machine.address_width: {width}: is outside "
            f"{MIN_ADDRESS_WIDTH}..{MAX_ADDRESS_WIDTH} bits"
        )
    limit = 1 << width
    named = "machine.address_width" if t.address_width is not None else "the default"
    for r in t.pinned_regions():
        if r.tag.startswith("dram"):
            continue  # RAM is placed inside the width (resolve); the window may reach past it
        if r.range.end > limit:
            raise LayoutError(
                f"{where}: region {r.tag!r} {r.range} ends past the {width}-bit guest physical "
                f"address limit {limit:#x} ({named} address width)"
            )
    if t.dram.base >= limit:
        raise LayoutError(
            f"{where}: dram.base: {t.dram.base:#x}: is past the {width}-bit guest physical "
            f"address limit {limit:#x} ({named} address width)"
        )


def _check_holes(t: Template, where: str) -> None:
    """Holes lie inside the DRAM window and do not overlap one another."""
    for h in t.ram_holes:
        if not t.dram.contains(h.range):
            raise LayoutError(
                f"{where}: DRAM hole {h.tag!r} {h.range} is not inside the DRAM window {t.dram}"
            )
        if not is_aligned(h.range.base, PAGE_SIZE) or not is_aligned(h.range.size, PAGE_SIZE):
            raise AlignmentError(h.tag, "range", h.range.base, PAGE_SIZE, where)
    holes = sorted(t.ram_holes, key=by_address)
    for a, b in itertools.pairwise(holes):
        if a.range.overlaps(b.range):
            raise RegionOverlapError(a, b, where)
    if not t.dram_ranges():
        raise LayoutError(f"{where}: the DRAM holes cover the whole DRAM window {t.dram}")


def _check_gic_frames(t: Template, where: str) -> None:
    """Each GIC frame is at least the size of its register map."""
    for f in gic_frame_minimums(t.gic):
        if f.size < f.minimum:
            raise LayoutError(
                f"{where}: {f.key}: {f.size:#x}: must be at least {f.minimum:#x} ({f.rule})"
            )


def _check_gic(t: Template, where: str) -> None:
    g = t.gic
    if g.version == 3:
        if g.redist_window is None:
            raise LayoutError(
                f"{where}: gic version 3 needs a redistributor window (redist_base, redist_end)"
            )
        if g.cpu_if is not None:
            raise LayoutError(f"{where}: gic cpu_base (GICC) is a GICv2 region; a GICv3 has none")
        if g.redist_reg not in REDIST_REG_KINDS:
            raise LayoutError(
                f"{where}: gic redist_reg {g.redist_reg!r} is not one of "
                f"{', '.join(REDIST_REG_KINDS)}"
            )
        if g.redist_anchor not in REDIST_ANCHORS:
            raise LayoutError(
                f"{where}: gic redist_anchor {g.redist_anchor!r} is not one of "
                f"{', '.join(REDIST_ANCHORS)}"
            )
        if g.redist_anchor == "end" and g.redist2_window is not None:
            raise LayoutError(
                f"{where}: gic redist_anchor 'end' allows only one redistributor window"
            )
        if g.its_below_redist and (g.its is None or g.its.end != g.redist_window.base):
            raise LayoutError(
                f"{where}: an ITS that follows the redistributors must be pinned right below the "
                f"'gic-redist' window {g.redist_window} (its position with max_vcpus)"
            )
        for tag, frame in (
            ("gic-dist", g.dist),
            *(("gic-redist", w) for w in g.redist_windows()),
            *((("gic-its", g.its),) if g.its is not None else ()),
        ):
            if not is_aligned(frame.base, GICV3_REDIST_FRAME):
                raise AlignmentError(tag, "base", frame.base, GICV3_REDIST_FRAME, where)
        if g.redist_stride < GICV3_REDIST_STRIDE or not is_aligned(
            g.redist_stride, GICV3_REDIST_FRAME
        ):
            raise LayoutError(
                f"{where}: gic.redist_stride: {g.redist_stride:#x}: {REDIST_STRIDE_RULE}"
            )
        capacity = sum(w.size // g.redist_stride for w in g.redist_windows())
        if t.max_vcpus > capacity:
            live_max = t.max_vcpus * g.redist_stride
            windows = " + ".join(f"{w} ({w.size:#x})" for w in g.redist_windows())
            raise LayoutError(
                f"{where}: the redistributors of max_vcpus {t.max_vcpus} need {live_max:#x} bytes "
                f"({t.max_vcpus} x {g.redist_stride:#x}), more than the 'gic-redist' window "
                f"{windows} holds ({capacity} frames)"
            )
    elif g.version == 2:
        if g.cpu_if is None:
            raise LayoutError(f"{where}: gic version 2 needs a CPU interface (cpu_base, cpu_size)")
        if g.redist_windows() or g.its is not None:
            raise LayoutError(f"{where}: a GICv2 has no redistributors and no ITS")
        if t.max_vcpus > GICV2_MAX_VCPUS:
            raise LayoutError(
                f"{where}: max_vcpus {t.max_vcpus} is more than {GICV2_MAX_VCPUS}, the GICv2 limit "
                "(arm,gic.yaml: the PPI CPU mask has 8 bits)"
            )
    else:
        raise LayoutError(f"{where}: gic version {g.version} is not 2 or 3")
    if g.v2m is not None and (g.v2m.base_intid is None) != (g.v2m.num_spis is None):
        raise LayoutError(f"{where}: gic v2m needs both base_intid and num_spis, or neither")
    if g.v2m is not None and g.v2m.base_intid is not None and g.v2m.num_spis is not None:
        last = g.v2m.base_intid.value + g.v2m.num_spis - 1
        if g.v2m.base_intid.value < 32 or g.v2m.num_spis < 1 or last > GICV2M_MAX_INTID:
            raise LayoutError(
                f"{where}: gic v2m SPIs INTID {g.v2m.base_intid.value}..{last} leave the "
                f"SPI range 32..{GICV2M_MAX_INTID}"
            )


def _check_handed_out(t: Template, where: str) -> None:
    """A template whose VMM hands SPIs out in order pins the ones of its fullest machine
    (every virtio slot, a console), so a blob of that machine checks against it."""
    if not t.irq_order:
        return
    if len(set(t.irq_order)) != len(t.irq_order):
        raise LayoutError(f"{where}: irq order {list(t.irq_order)} names a tag twice")
    full = t.handed_out_spis(t.virtio.slots, True)
    pinned: list[tuple[str, Spi | None]] = [("uart0", t.uart.spi)]
    # A device with no interrupt in the DT (Firecracker's RTC) still takes its line.
    pinned += [(d.tag, d.spi) for d in t.devices if d.tag in t.irq_order and d.spi is not None]
    if "virtio" in t.irq_order and t.virtio.slots:
        pinned.append(("virtio-0", t.virtio.first_spi))
    for tag, have in pinned:
        if tag in full and have != full[tag]:
            raise LayoutError(
                f"{where}: {tag!r} is pinned to {have}, but the irq order hands it "
                f"{full[tag]} with every virtio slot and a console"
            )


def _spi_sources(t: Template) -> list[tuple[Spi, str, bool]]:
    """Every SPI the template wires, in report order, with who takes it and whether
    it rides a line another source owns (a virtio transport past the first on a
    shared line, a device with ``shared_spi``): the console, the transports, the
    devices, the v2m frame's SPIs and the PCI INTx lines."""
    v = t.virtio
    out = [(t.uart.spi, "uart0", False)]
    out += [
        (d.spi, d.tag, v.shared_spi and i > 0)
        for i, d in enumerate(v.transports)
        if d.spi is not None
    ]
    out += [(d.spi, d.tag, d.shared_spi) for d in t.devices if d.spi is not None]
    if t.gic.v2m is not None:
        out += [(s, "gic-v2m", False) for s in t.gic.v2m.spis()]
    if t.pcie is not None:
        out += [(s, "pcie-intx", False) for s in t.pcie.intx_spis()]
    return out


def _check_gic_spis(t: Template, where: str) -> None:
    """With ``[gic] spis``, every SPI the template wires, and where the VMM hands
    lines out in attach order each line of its fullest machine, is one the VMM's
    GIC implements: past its last the GIC has no such interrupt, and the device
    never interrupts."""
    spis = t.gic.spis
    if spis is None:
        return
    full = t.handed_out_spis(t.virtio.slots, True) if t.irq_order else {}
    wired = [(s, tag) for s, tag, _ in _spi_sources(t)] + [(s, tag) for tag, s in full.items()]
    past = [(s, tag) for s, tag in wired if s.number >= spis]
    if not past:
        return
    s, tag = min(past, key=lambda p: p[0].number)  # the first line past the GIC's last
    fullest = " with every virtio slot and a console ([irq] order)" if tag in full else ""
    raise LayoutError(
        f"{where}: {tag!r} is wired to {s} ({s.intid}){fullest}, past the GIC's last SPI "
        f"{spis - 1} (gic.spis = {spis}: the VMM's GIC implements SPIs 0..{spis - 1})"
    )


def _check_interrupts(t: Template, where: str) -> None:
    """No SPI and no PPI is wired to two sources; each is one the GIC implements."""
    _check_handed_out(t, where)
    _check_gic_spis(t, where)
    Spi(t.virtio.first_spi.number + max(t.virtio.slots - 1, 0))  # last slot stays in range
    spis = [(s, tag) for s, tag, rides in _spi_sources(t) if not rides]
    _one_owner_each(spis, where)
    # Linux's GIC drivers (gic_set_type) refuse an SPI neither edge-rising nor level-high.
    triggers = [("uart0", t.uart.trigger), ("virtio", t.virtio.trigger)]
    triggers += [(d.tag, d.trigger) for d in t.devices if d.spi is not None]
    for tag, trigger in triggers:
        if tag == "virtio" and not t.virtio.slots:
            continue
        if trigger not in (Trigger.EDGE_RISING, Trigger.LEVEL_HIGH):
            raise LayoutError(
                f"{where}: {tag!r} is an SPI triggered {trigger.label}; the GIC takes an SPI "
                "edge-rising or level-high only (Linux gic_set_type refuses the others)"
            )
    ppis: list[tuple[Ppi, str]] = [(p, "timer") for p in t.timer_ppis]
    if t.gic.maintenance_ppi is not None:
        ppis.append((t.gic.maintenance_ppi, "gic maintenance"))
    if t.pmu is not None:
        ppis.append((t.pmu.ppi, "pmu"))
    ppis += [(d.ppi, d.tag) for d in t.devices if d.ppi is not None]
    _one_owner_each(ppis, where)
    owners = {s for s, _ in spis}
    # A shared line has one trigger: Linux refuses a second handler whose type differs.
    line_trigger = {t.uart.spi: t.uart.trigger}
    line_trigger |= {d.spi: t.virtio.trigger for d in t.virtio.transports if d.spi is not None}
    line_trigger |= {d.spi: d.trigger for d in t.devices if d.spi is not None and not d.shared_spi}
    for d in t.devices:
        if d.shared_spi and d.spi is not None and d.spi not in owners:
            raise LayoutError(
                f"{where}: device {d.tag!r} shares {d.spi} ({d.spi.intid}), which no other "
                "device is wired to"
            )
        if d.shared_spi and d.spi is not None and line_trigger.get(d.spi, d.trigger) != d.trigger:
            raise LayoutError(
                f"{where}: device {d.tag!r} shares {d.spi} ({d.spi.intid}) triggered "
                f"{d.trigger.label}, but the line is {line_trigger[d.spi].label}"
            )
        if d.ppi is not None and t.gic.version != 3:
            raise LayoutError(
                f"{where}: device {d.tag!r} interrupts through {d.ppi}; fdtgen describes a "
                "device PPI only on a GICv3 (a GICv2 PPI needs a CPU mask per machine)"
            )
