"""Address ranges, pinned regions, the load-time proofs and the resolver.

A template (``templates/*.toml``) pins every region of a machine's map. Loading
it runs :func:`check_template`, the Python form of squib's ``layout.rs`` const
assertions: no two pinned regions overlap, each is aligned, the redistributor
windows hold ``max_vcpus`` frames, no SPI or PPI is wired twice, and the
template's ordering rules hold (for squib: PL011 abuts the GICR window, virtio
sits above PL011 and below DRAM). :func:`resolve` then applies a machine's
numbers to the template: ``vcpus x stride`` must fit the redistributor windows
(squib's ``overlap_check``), RAM is placed by :mod:`fdtgen.allocator` from the
RAM base up, split around the template's DRAM holes, and every live range
must fit the guest physical address width.

Map of the squib template (``templates/squib.toml``)::

    0x0500_0000 +16 MiB   msi         HVF MSI frame (reserved, not in the DT)
    0x0800_0000 +64 KiB   gic-dist    GICv3 distributor
    0x080A_0000 ..0x0E0A_0000 gic-redist  redistributor window, 128 KiB/vCPU
    0x0E0A_0000 +4 KiB    uart0       PL011, SPI 1 (INTID 33), level-high
    0x0F00_0000 +32x4 KiB virtio      virtio-mmio slot i: SPI 16+i, edge
    0x8000_0000 ..0x100_0000_0000 dram

The other built-in templates and their sources are described in
``docs/templates.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fdtgen.allocator import ram_around
from fdtgen.errors import ConfigError, LayoutError
from fdtgen.ranges import Range, Region
from fdtgen.spec import (
    DEFAULT_ADDRESS_WIDTH,
    GICV3_REDIST_FRAME,
    GICV3_REDIST_STRIDE,
    MAX_ADDRESS_WIDTH,
    MIN_ADDRESS_WIDTH,
    PAGE_SIZE,
    RAM_ALIGN,
)
from fdtgen.template.model import Device, Template
from fdtgen.template.proofs import REDIST_STRIDE_RULE
from fdtgen.units import U64_MAX, fmt_size, is_aligned


def _natural_align(r: Range) -> int:
    """The largest power of two, at most a page, that divides the base and the size."""
    low = (r.base | r.size | PAGE_SIZE) & -(r.base | r.size | PAGE_SIZE)
    return min(low, PAGE_SIZE)


@dataclass(frozen=True, slots=True)
class Layout:
    """A template with one machine's numbers applied.

    ``devices`` are the devices with an interrupt (``spi`` is set);
    ``unwired`` the MMIO devices without one (fw-cfg, Firecracker's RTC).
    """

    template: Template
    vcpus: int
    ram: tuple[Range, ...]
    gic_dist: Range
    gic_redist: tuple[Range, ...]
    redist_stride: int
    devices: tuple[Device, ...]
    address_width: int | None = None
    its: Range | None = None
    unwired: tuple[Device, ...] = ()
    pcie_mmio64: Range | None = None  # the PCI 64-bit window that follows RAM, if any

    @property
    def uart(self) -> Device | None:
        return next((d for d in self.devices if d.kind == "uart"), None)

    def pcie_windows(self) -> tuple[tuple[str, int, Range], ...]:
        """The host bridge's windows, the one after RAM included (:meth:`PcieSpec.windows`)."""
        p = self.template.pcie
        return () if p is None else p.windows(self.pcie_mmio64)

    @property
    def virtio(self) -> tuple[Device, ...]:
        return tuple([d for d in self.devices if d.kind == "virtio"])

    def spans(self) -> list[tuple[int, int, str]]:
        """Every live range as ``(base, size, tag)``, sorted by address (then size, tag)."""
        g = self.template.gic
        out = [(r.range.base, r.range.size, r.tag) for r in self.template.reserved]
        out.append((self.gic_dist.base, self.gic_dist.size, "gic-dist"))
        out += [
            (r.base, r.size, f"gic-redist{i + 1 if i else ''}")
            for i, r in enumerate(self.gic_redist)
        ]
        out += [(d.range.base, d.range.size, d.tag) for d in (*self.devices, *self.unwired)]
        out += [(r.base, r.size, f"ram{i or ''}") for i, r in enumerate(self.ram)]
        if g.cpu_if is not None:
            out.append((g.cpu_if.base, g.cpu_if.size, "gic-cpu"))
        if self.its is not None:
            out.append((self.its.base, self.its.size, "gic-its"))
        if g.v2m is not None:
            out.append((g.v2m.range.base, g.v2m.range.size, "gic-v2m"))
        if self.template.pcie is not None:
            out += [(r.range.base, r.range.size, r.tag) for r in self.template.pcie.regions()]
        if self.pcie_mmio64 is not None:
            out.append((self.pcie_mmio64.base, self.pcie_mmio64.size, "pcie-mmio64"))
        out.sort()
        return out

    def regions(self) -> tuple[Region, ...]:
        """:meth:`spans` as regions: the template's reserved ones as it has them, each
        device aligned as its range allows (reports, pictures)."""
        reserved = {r.tag: r for r in self.template.reserved}
        devices = {d.tag for d in (*self.devices, *self.unwired)}
        out = []
        for base, size, tag in self.spans():
            r = Range(base, size)
            if tag in reserved:
                out.append(reserved[tag])
            elif tag in devices:
                out.append(Region(tag, r, align=_natural_align(r)))
            else:
                out.append(Region(tag, r))
        return tuple(out)


def _redistributors(t: Template, vcpus: int, stride: int) -> tuple[Range, ...]:
    """The live GICR ranges: ``vcpus x stride`` bytes, first window first.

    squib ``overlap_check``: the frames must end inside the window, computed
    without wrapping (``saturating_add``/``saturating_mul`` in Rust).
    """
    g = t.gic
    window = g.redist_window
    if window is None:
        return ()
    live_end = min(window.base + min(vcpus * stride, U64_MAX), U64_MAX)
    if live_end > window.end and g.redist2_window is None:
        raise ConfigError(
            f"redist_stride: {vcpus} vCPUs x {stride:#x} ends the redistributors at "
            f"{live_end:#x}, past the 'gic-redist' window {window} of template {t.name!r} "
            f"(the next region starts at {window.end:#x})",
            setting="redist_stride",
        )
    if stride < GICV3_REDIST_STRIDE or not is_aligned(stride, GICV3_REDIST_FRAME):
        raise ConfigError(
            f"redist_stride: {stride:#x}: {REDIST_STRIDE_RULE}", setting="redist_stride"
        )
    first = min(vcpus, window.size // stride)
    rest = vcpus - first
    second = g.redist2_window
    if rest and second is not None and rest * stride > second.size:
        raise ConfigError(
            f"redist_stride: {vcpus} vCPUs x {stride:#x} need {rest} frames in the 'gic-redist2' "
            f"window {second} of template {t.name!r}, which holds {second.size // stride}",
            setting="redist_stride",
        )
    if g.redist_reg == "window":
        return (window,) if not rest or second is None else (window, second)
    if g.redist_anchor == "end":
        return (Range(window.end - vcpus * stride, vcpus * stride),)
    ranges = [Range(window.base, first * stride)] if first else []
    if rest and second is not None:
        ranges.append(Range(second.base, rest * stride))
    return tuple(ranges)


def resolve(
    t: Template,
    *,
    vcpus: int,
    memory: int,
    virtio: int,
    serial: bool = True,
    redist_stride: int | None = None,
    ram_base: int | None = None,
    address_width: int | None = None,
) -> Layout:
    """Apply a machine's numbers to a template; every violation is a clear error.

    RAM starts at ``ram_base`` (default: the template's DRAM base; 2 MiB
    aligned, booting.rst "Call the kernel image") and is split around the
    template's DRAM holes into several ``/memory`` ranges. ``address_width``
    (default: the template's, else ``DEFAULT_ADDRESS_WIDTH``, the width
    ``fdtgen verify`` assumes) bounds every live range. An error names the
    setting it is about (``vcpus``, ``memory``...) in ``setting``.
    """
    if not 1 <= vcpus <= t.max_vcpus:
        raise ConfigError(
            f"vcpus: {vcpus} is outside 1..{t.max_vcpus} (template {t.name!r} max_vcpus)",
            setting="vcpus",
        )
    stride = t.gic.redist_stride if redist_stride is None else redist_stride
    if not 0 < stride <= U64_MAX:
        raise ConfigError(
            f"redist_stride: {stride:#x} is not a positive 64-bit size", "redist_stride"
        )
    gic_redist = _redistributors(t, vcpus, stride)
    if memory <= 0 or not is_aligned(memory, PAGE_SIZE):
        raise ConfigError(
            f"memory: {memory:#x} is not a positive multiple of {PAGE_SIZE:#x}", "memory"
        )
    if not 0 <= virtio <= t.virtio.slots:
        raise ConfigError(
            f"virtio: {virtio} is outside 0..{t.virtio.slots} "
            f"(template {t.name!r} has {t.virtio.slots} virtio slots)",
            setting="virtio",
        )
    base = ram_start(t, ram_base)
    width = t.address_width if address_width is None else address_width
    if width is not None and (
        type(width) is not int or not MIN_ADDRESS_WIDTH <= width <= MAX_ADDRESS_WIDTH
    ):
        raise ConfigError(
            f"address_width: {width!r} is outside {MIN_ADDRESS_WIDTH}..{MAX_ADDRESS_WIDTH} bits",
            setting="address_width",
        )
    u = t.uart
    handed = t.handed_out_spis(virtio, serial)
    uart_spi = handed.get("uart0", u.spi)
    console = (
        (Device("uart0", "uart", Range(u.base, u.size), uart_spi, u.trigger),) if serial else ()
    )
    transports = t.virtio.transports[:virtio]
    if len(transports) < virtio:  # a hand-made template whose window was never placed
        raise LayoutError(f"virtio: {virtio} transports, but the template's window is unplaced")
    if "virtio" in t.irq_order:
        transports = tuple(d._replace(spi=handed[d.tag]) for d in transports)
    wired, unwired = [], []
    for d in t.devices:
        if d.spi is None:
            unwired.append(Device(d.tag, d.kind, d.range, None, d.trigger))
        else:
            wired.append(Device(d.tag, d.kind, d.range, handed.get(d.tag, d.spi), d.trigger))
    its = t.gic.its
    if its is not None and t.gic.its_below_redist:
        its = Range(gic_redist[0].base - its.size, its.size)
    devices, unwired_ = (*console, *transports, *wired), tuple(unwired)

    def layout(ram: tuple[Range, ...], mmio64: Range | None = None) -> Layout:
        return Layout(
            t, vcpus, ram, t.gic.dist, gic_redist, stride, devices, width, its, unwired_, mmio64
        )

    bits = DEFAULT_ADDRESS_WIDTH if width is None else width
    ends = [t.gic.dist.end, *(r.end for r in gic_redist)]
    # The transports follow one another up their window, so the last one ends last.
    ends += [d.range.end for d in (*console, *transports[-1:], *wired, *unwired_)]
    ends += [r.range.end for r in t.reserved]
    v2m = None if t.gic.v2m is None else t.gic.v2m.range
    ends += [r.end for r in (its, t.gic.cpu_if, v2m) if r is not None]
    if t.pcie is not None:  # the configuration space and every window the bridge decodes
        ends += [r.range.end for r in t.pcie.regions()]
    if max(ends) > 1 << bits:
        raise _past_width(layout(()), bits, width is None)
    ram = _place_ram(t, memory, base, bits)
    return layout(ram, _window_after_ram(t, ram[-1].end, bits, width is None))


def _window_after_ram(t: Template, ram_end: int, bits: int, default: bool) -> Range | None:
    """The template's 64-bit PCI window after RAM ending at ``ram_end``
    (:class:`fdtgen.template.pci.AfterRam`), ``None`` if it pins its windows; no
    room for it is an error. Nothing pinned is in its way: the template proofs
    keep every pinned region below where the window can start."""
    rule = None if t.pcie is None else t.pcie.mmio64_after_ram
    if rule is None:
        return None
    window = rule.window(ram_end, bits)
    if window is None:
        start, end = rule.start(ram_end), rule.end(bits)
        limit = f"the {'default ' if default else ''}{bits}-bit guest physical address limit"
        rule_text = f"{rule.gap:#x} past RAM's end {ram_end:#x}" + (
            f", at least {rule.floor:#x}" if rule.floor else ""
        )
        if end <= 0:
            ends = f"mmio64_below_top {rule.top:#x} leaves nothing below {limit} {1 << bits:#x}"
        else:
            below = f"{rule.top:#x} below {limit}" if rule.top else limit
            ends = f"it would end at {end:#x} ({below})"
        setting = "address_width" if rule.floor >= end else "memory"
        raise ConfigError(
            f"{setting}: the 64-bit PCI window after RAM of template {t.name!r} would start at "
            f"{start:#x} ({rule_text}), and {ends}: no room for it",
            setting=setting,
        )
    return window


def ram_start(t: Template, ram_base: int | None) -> int:
    """Where RAM starts: ``ram_base``, held to the template's DRAM window, 2 MiB
    alignment and holes, or the window's base."""
    base = t.dram.base if ram_base is None else ram_base
    if not t.dram.base <= base < t.dram.end:
        raise ConfigError(
            f"ram_base: {base:#x} is outside the DRAM window {t.dram} of template {t.name!r}",
            setting="ram_base",
        )
    if not is_aligned(base, RAM_ALIGN):
        raise ConfigError(
            f"ram_base: {base:#x} is not aligned to {RAM_ALIGN:#x} "
            "(booting.rst: the Image sits at a 2 MiB-aligned base in RAM)",
            setting="ram_base",
        )
    hole = next((h for h in t.ram_holes if h.range.base <= base < h.range.end), None)
    if hole is not None:
        raise ConfigError(
            f"ram_base: {base:#x} lies in the DRAM hole {hole.tag!r} {hole.range} "
            f"of template {t.name!r}",
            setting="ram_base",
        )
    return base


def _past_width(layout: Layout, bits: int, default: bool) -> ConfigError:
    """The first live region (by address) that ends past the address width."""
    limit = 1 << bits
    r = next(r for r in layout.regions() if r.range.end > limit)
    return ConfigError(
        f"address_width: region {r.tag!r} {r.range} ends past the {bits}-bit guest "
        f"physical address limit {limit:#x}" + (" (the default width)" if default else ""),
        setting="address_width",
    )


def _holes(t: Template, limit: int) -> list[Range]:
    """The template's DRAM holes, each cut at ``limit``: RAM cannot reach past the
    address width, so only the part of a hole below it is in RAM's way.

    Nothing else can be: the template proofs keep every pinned region (and so
    every live one, which lies inside its pinned window) out of the DRAM
    window's ranges (``check_template``).
    """
    return [
        Range(h.range.base, min(h.range.end, limit) - h.range.base)
        for h in t.ram_holes
        if h.range.base < limit
    ]


def _place_ram(t: Template, memory: int, base: int, bits: int) -> tuple[Range, ...]:
    """RAM from ``base`` up to the DRAM max end, around holes; sorted by address.

    ``memory`` is a positive multiple of a page (:func:`resolve` checked) and
    the template's piece alignment a power of two of at least one (checked at
    load), so the allocator's RAM split is all it takes.
    """
    limit = 1 << bits
    ceiling = min(t.dram.end, limit)
    pieces = ram_around(_holes(t, limit), limit, memory, t.ram_align(memory), base, ceiling)
    if pieces is None:
        raise ConfigError(_ram_overflow(t, memory, base, bits), setting="memory")
    return tuple(pieces)


def _ram_overflow(t: Template, memory: int, base: int, bits: int) -> str:
    """The message for RAM that does not fit: where it would end, and which limit it crosses."""
    limit = 1 << MAX_ADDRESS_WIDTH
    pieces = ram_around(_holes(t, limit), limit, memory, PAGE_SIZE, base, limit)
    if pieces is not None:
        end = pieces[-1].end
        ends = f"ends at {end:#x}"
    else:
        end, ends = limit, "does not fit below 2^64"
    what = f"memory: {fmt_size(memory)} ({memory:#x}) at {base:#x} {ends}"
    if t.ram_holes:
        what += (
            " (around the DRAM holes "
            + ", ".join(f"{h.tag!r} {h.range}" for h in t.ram_holes)
            + ")"
        )
    if end > t.dram.end:
        return f"{what}, past the DRAM max end {t.dram.end:#x} of template {t.name!r}"
    return (
        f"{what}, past the {bits}-bit guest physical address limit {1 << bits:#x} (address_width)"
    )
