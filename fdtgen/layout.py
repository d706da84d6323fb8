"""Address ranges, pinned regions, the load-time proofs and the resolver.

A template (``templates/*.toml``) pins every region of a machine's map. Loading
it runs :func:`check_template`, the Python form of squib's ``layout.rs`` const
assertions: no two pinned regions overlap, each is aligned, the redistributor
window holds ``max_vcpus`` frames, and the template's ordering rules hold (for
squib: PL011 abuts the GICR window, virtio sits above PL011 and below DRAM).
:func:`resolve` then applies a machine's numbers to the template, with the
runtime check of ``overlap_check``: ``vcpus x stride`` must fit the window.

Map of the squib template (``templates/squib.toml``)::

    0x0500_0000 +16 MiB   msi         HVF MSI frame (reserved, not in the DT)
    0x0800_0000 +64 KiB   gic-dist    GICv3 distributor
    0x080A_0000 ..0x0E0A_0000 gic-redist  redistributor window, 128 KiB/vCPU
    0x0E0A_0000 +4 KiB    uart0       PL011, SPI 1 (INTID 33), level-high
    0x0F00_0000 +32x4 KiB virtio      virtio-mmio slot i: SPI 16+i, edge
    0x8000_0000 ..0x100_0000_0000 dram
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import AlignmentError, ConfigError, LayoutError, RegionOverlapError
from .irq import Ppi, Spi, Trigger
from .units import KiB, U64_MAX, fmt_size, is_aligned, is_pow2

PAGE_SIZE = 4 * KiB  # the smallest arm64 translation granule
GICV3_REDIST_STRIDE = 128 * KiB  # RD_base + SGI_base frames, 64 KiB each


@dataclass(frozen=True, slots=True, order=True)
class Range:
    """Half-open guest-physical range ``[base, end)``, in bytes."""

    base: int
    size: int

    def __post_init__(self) -> None:
        if self.base < 0 or self.size <= 0:
            raise LayoutError(f"invalid range base={self.base:#x} size={self.size:#x}")

    @property
    def end(self) -> int:
        return self.base + self.size

    def overlaps(self, other: Range) -> bool:
        return self.base < other.end and other.base < self.end

    def contains(self, other: Range) -> bool:
        return self.base <= other.base and other.end <= self.end

    def __str__(self) -> str:
        return f"[{self.base:#x}, {self.end:#x})"


@dataclass(frozen=True, slots=True)
class Region:
    """A tagged range of the map (``"gic-dist"``, ``"uart0"``, ``"virtio-7"``)."""

    tag: str
    range: Range
    align: int = PAGE_SIZE


@dataclass(frozen=True, slots=True)
class Rule:
    """An ordering proof between two pinned regions.

    ``abuts``: ``lower.end == upper.base``; ``below``: ``lower.end <= upper.base``.
    """

    kind: str
    lower: str
    upper: str


@dataclass(frozen=True, slots=True)
class GicSpec:
    version: int
    dist: Range
    redist_window: Range
    redist_stride: int
    maintenance_ppi: Ppi | None


@dataclass(frozen=True, slots=True)
class UartSpec:
    base: int
    size: int
    spi: Spi
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class VirtioSpec:
    base: int
    stride: int
    slots: int
    first_spi: Spi
    trigger: Trigger
    dma_coherent: bool = True

    @property
    def window(self) -> Range:
        return Range(self.base, self.stride * self.slots)


@dataclass(frozen=True, slots=True)
class BootSpec:
    kernel_offset: int
    initrd_offset: int
    fdt_max_size: int


@dataclass(frozen=True, slots=True)
class Template:
    """A machine's pinned map and its fixed device description, loaded from data."""

    name: str
    description: str
    source: str
    model: str
    compatible: tuple[str, ...]
    max_vcpus: int
    psci_compatible: tuple[str, ...]
    psci_method: str
    timer_ppis: tuple[Ppi, ...]
    timer_trigger: Trigger
    gic: GicSpec
    uart: UartSpec
    virtio: VirtioSpec
    dram: Range
    boot: BootSpec
    reserved: tuple[Region, ...] = ()
    rules: tuple[Rule, ...] = ()
    uart_clock_hz: int = 24_000_000
    path: str = field(default="", compare=False)

    def pinned_regions(self) -> tuple[Region, ...]:
        """Every region the template pins, sorted by address."""
        regions = [
            *self.reserved,
            Region("gic-dist", self.gic.dist),
            Region("gic-redist", self.gic.redist_window),
            Region("uart0", Range(self.uart.base, self.uart.size)),
            Region("virtio", self.virtio.window, align=PAGE_SIZE),
            Region("dram", self.dram, align=PAGE_SIZE),
        ]
        return tuple(sorted(regions, key=lambda r: (r.range, r.tag)))


def check_regions(regions: Sequence[Region], context: str = "layout") -> None:
    """No two regions overlap; each base and size is aligned to its ``align``."""
    for r in regions:
        if not is_pow2(r.align):
            raise LayoutError(f"{context}: region {r.tag!r} alignment {r.align:#x} is not a power of 2")
        if not is_aligned(r.range.base, r.align):
            raise AlignmentError(r.tag, "base", r.range.base, r.align)
        if not is_aligned(r.range.size, r.align):
            raise AlignmentError(r.tag, "size", r.range.size, r.align)
    ordered = sorted(regions, key=lambda r: (r.range, r.tag))
    for a, b in itertools.pairwise(ordered):
        if a.range.overlaps(b.range):
            raise RegionOverlapError(a, b, context)


def check_template(t: Template) -> None:
    """The load-time proofs. Raises :class:`LayoutError` naming regions and ranges."""
    where = f"template {t.name!r}"
    regions = t.pinned_regions()
    check_regions(regions, where)
    by_tag = {r.tag: r for r in regions}
    if t.virtio.stride < 0x200 or not is_pow2(t.virtio.stride):
        raise LayoutError(
            f"{where}: virtio stride {t.virtio.stride:#x} must be a power of 2 >= 0x200 "
            "(virtio-mmio register block)"
        )
    if not is_aligned(t.virtio.base, t.virtio.stride):
        raise AlignmentError("virtio", "base", t.virtio.base, t.virtio.stride)
    if t.gic.redist_stride <= 0 or not is_aligned(t.gic.redist_stride, 64 * KiB):
        raise LayoutError(
            f"{where}: gic redist_stride {t.gic.redist_stride:#x} must be a multiple of 0x10000 "
            "(arm,gic-v3.yaml redistributor-stride)"
        )
    live_max = t.max_vcpus * t.gic.redist_stride
    if live_max > t.gic.redist_window.size:
        raise LayoutError(
            f"{where}: the redistributors of max_vcpus {t.max_vcpus} need {live_max:#x} bytes "
            f"({t.max_vcpus} x {t.gic.redist_stride:#x}), more than the 'gic-redist' window "
            f"{t.gic.redist_window} ({t.gic.redist_window.size:#x})"
        )
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
    spis = [t.uart.spi.number] + [
        t.virtio.first_spi.number + i for i in range(t.virtio.slots)
    ]
    if len(set(spis)) != len(spis):
        raise LayoutError(f"{where}: the uart SPI {t.uart.spi.number} collides with a virtio slot SPI")
    Spi(t.virtio.first_spi.number + t.virtio.slots - 1)  # last slot stays in range


@dataclass(frozen=True, slots=True)
class Device:
    """A device the VMM must wire: its MMIO range and its interrupt."""

    tag: str
    kind: str
    range: Range
    spi: Spi
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class Layout:
    """A template with one machine's numbers applied."""

    template: Template
    vcpus: int
    ram: tuple[Range, ...]
    gic_dist: Range
    gic_redist: tuple[Range, ...]
    redist_stride: int
    devices: tuple[Device, ...]

    @property
    def uart(self) -> Device | None:
        return next((d for d in self.devices if d.kind == "uart"), None)

    @property
    def virtio(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.kind == "virtio")

    def regions(self) -> tuple[Region, ...]:
        """Every live region, sorted by address (reports and manifests)."""
        out = [
            *self.template.reserved,
            Region("gic-dist", self.gic_dist),
            *(Region(f"gic-redist{i or ''}", r) for i, r in enumerate(self.gic_redist)),
            *(Region(d.tag, d.range, align=min(PAGE_SIZE, d.range.size)) for d in self.devices),
            *(Region(f"ram{i or ''}", r) for i, r in enumerate(self.ram)),
        ]
        return tuple(sorted(out, key=lambda r: (r.range, r.tag)))


def resolve(
    t: Template,
    *,
    vcpus: int,
    memory: int,
    virtio: int,
    serial: bool = True,
    redist_stride: int | None = None,
) -> Layout:
    """Apply a machine's numbers to a template; every violation is a clear error."""
    if not 1 <= vcpus <= t.max_vcpus:
        raise ConfigError(
            f"vcpus: {vcpus} is outside 1..{t.max_vcpus} (template {t.name!r} max_vcpus)"
        )
    stride = t.gic.redist_stride if redist_stride is None else redist_stride
    if not 0 < stride <= U64_MAX:
        raise ConfigError(f"redist_stride: {stride:#x} is not a positive 64-bit size")
    window = t.gic.redist_window
    # squib overlap_check: GICR_BASE.saturating_add(vcpus.saturating_mul(stride)).
    live_end = min(window.base + min(vcpus * stride, U64_MAX), U64_MAX)
    if live_end > window.end:
        raise ConfigError(
            f"redist_stride: {vcpus} vCPUs x {stride:#x} ends the redistributors at "
            f"{live_end:#x}, past the 'gic-redist' window {window} (the next region starts "
            f"at {window.end:#x})"
        )
    if not is_aligned(stride, 64 * KiB):
        raise ConfigError(
            f"redist_stride: {stride:#x} is not a multiple of 0x10000 "
            "(arm,gic-v3.yaml redistributor-stride)"
        )
    if memory <= 0 or not is_aligned(memory, PAGE_SIZE):
        raise ConfigError(f"memory: {memory:#x} is not a positive multiple of {PAGE_SIZE:#x}")
    if memory > t.dram.size:
        raise ConfigError(
            f"memory: {fmt_size(memory)} ({memory:#x}) at {t.dram.base:#x} ends at "
            f"{t.dram.base + memory:#x}, past the template's DRAM max end {t.dram.end:#x}"
        )
    if not 0 <= virtio <= t.virtio.slots:
        raise ConfigError(f"virtio: {virtio} is outside 0..{t.virtio.slots} (template slots)")
    devices: list[Device] = []
    if serial:
        u = t.uart
        devices.append(Device("uart0", "uart", Range(u.base, u.size), u.spi, u.trigger))
    v = t.virtio
    for i in range(virtio):
        devices.append(
            Device(
                f"virtio-{i}",
                "virtio",
                Range(v.base + i * v.stride, v.stride),
                Spi(v.first_spi.number + i),
                v.trigger,
            )
        )
    return Layout(
        template=t,
        vcpus=vcpus,
        ram=(Range(t.dram.base, memory),),
        gic_dist=t.gic.dist,
        gic_redist=(Range(window.base, vcpus * stride),),
        redist_stride=stride,
        devices=tuple(devices),
    )
