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

from dataclasses import dataclass, field, replace
import itertools
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from .errors import (
    AlignmentError,
    AllocationExhaustedError,
    ConfigError,
    LayoutError,
    RegionOverlapError,
)
from .irq import Intid, Ppi, Spi, Trigger
from .units import U64_MAX, KiB, MiB, fmt_size, is_aligned, is_pow2

if TYPE_CHECKING:
    from .allocator import Allocator

PAGE_SIZE = 4 * KiB  # the smallest arm64 translation granule
GICV3_REDIST_STRIDE = 128 * KiB  # RD_base + SGI_base frames, 64 KiB each
RAM_ALIGN = 2 * MiB  # booting.rst: the Image sits at a 2 MiB-aligned base in RAM
GICV2_MAX_VCPUS = 8  # arm,gic.yaml: the PPI CPU mask (flags bits 15:8) has 8 bits
GICV2M_MAX_INTID = 1019  # the last SPI INTID a v2m frame may signal
MIN_ADDRESS_WIDTH = 32  # ID_AA64MMFR0_EL1.PARange: 32 bits is the smallest
MAX_ADDRESS_WIDTH = 64

REDIST_REG_KINDS = ("vcpus", "window")  # GICR reg: vcpus x stride, or the whole window
REDIST_ANCHORS = ("base", "end")  # live redistributors start at the window base / end at its end
TIMER_NAMES = ("sec-phys", "phys", "virt", "hyp-phys", "hyp-virt")  # arm,arch_timer.yaml
UART_KINDS = ("pl011", "ns16550a")
DEVICE_KINDS = ("pl031", "pl061", "fw-cfg")
PLACEMENTS = ("fixed", "below-4g")  # how a template region gets its base


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


def subtract(ranges: Sequence[Range], taken: Range) -> list[Range]:
    """``ranges`` (sorted, disjoint) without ``taken``; the result stays sorted and disjoint."""
    out: list[Range] = []
    for r in ranges:
        if not r.overlaps(taken):
            out.append(r)
            continue
        if r.base < taken.base:
            out.append(Range(r.base, taken.base - r.base))
        if taken.end < r.end:
            out.append(Range(taken.end, r.end - taken.end))
    return out


# Sort keys in Range's own order (base, then size), read in C rather than
# through Range's comparison methods: maps are sorted on every build.
by_range = attrgetter("base", "size")
by_address = attrgetter("range.base", "range.size", "tag")  # Region, Device, hole


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
class MsiFrame:
    """A GICv2m MSI frame: the ``v2m@`` child of the GIC node (arm,gic.yaml).

    ``base_intid``/``num_spis`` become ``arm,msi-base-spi``/``arm,msi-num-spis``,
    which the binding applies "when the MSI_TYPER register contains an
    incorrect value"; Linux reads the base as an INTID (32..1019). Under a
    GICv3 this is how Hypervisor.framework's MSI region and MSHV are described.
    """

    range: Range
    base_intid: Intid | None = None
    num_spis: int | None = None

    def spis(self) -> tuple[Spi, ...]:
        if self.base_intid is None or self.num_spis is None:
            return ()
        return tuple(Intid(self.base_intid.value + i).spi() for i in range(self.num_spis))


@dataclass(frozen=True, slots=True)
class GicSpec:
    """The interrupt controller (arm,gic-v3.yaml; arm,gic.yaml for version 2).

    GICv3 ``reg`` order is GICD, then one range per redistributor region.
    ``redist_reg = "window"`` describes each whole window, as QEMU does: Linux
    walks the frames until ``GICR_TYPER.Last``, so a window sized from the DT's
    own CPU count crashes when the VMM creates more vCPUs. ``redist2_window`` is
    a second redistributor region (QEMU's for vCPUs past the first 123).
    ``redist_anchor = "end"``: the live frames end at the window's end, as
    Firecracker, Cloud Hypervisor, crosvm, kvmtool and libkrun put
    ``vcpus x 128 KiB`` right below the distributor; ``its_below_redist``: the
    ITS sits right below the live frames (the pinned ``its`` range is where it
    lands with ``max_vcpus``). GICv2 ``reg`` is GICD then GICC (``cpu_if``).
    """

    version: int
    dist: Range
    redist_window: Range | None
    redist_stride: int
    maintenance_ppi: Ppi | None
    redist_reg: str = "vcpus"
    redist2_window: Range | None = None
    cpu_if: Range | None = None
    its: Range | None = None
    v2m: MsiFrame | None = None
    redist_anchor: str = "base"
    its_below_redist: bool = False

    def redist_windows(self) -> tuple[Range, ...]:
        return tuple(w for w in (self.redist_window, self.redist2_window) if w is not None)


@dataclass(frozen=True, slots=True)
class UartSpec:
    """The console UART: ``pl011`` (serial/pl011.yaml) or ``ns16550a`` (serial/8250.yaml)."""

    base: int
    size: int
    spi: Spi
    trigger: Trigger
    kind: str = "pl011"


@dataclass(frozen=True, slots=True)
class VirtioSpec:
    """``slots`` virtio-mmio transports, ``stride`` bytes apart; slot i gets SPI first_spi+i.

    ``base`` is ``None`` until a ``below-4g`` window is placed at load time,
    and for a template without transports (``slots = 0``: the VMM uses
    virtio-pci, which fdtgen does not describe).
    """

    base: int | None
    stride: int
    slots: int
    first_spi: Spi
    trigger: Trigger
    dma_coherent: bool = True
    placement: str = "fixed"

    @property
    def size(self) -> int:
        return self.stride * self.slots

    @property
    def window(self) -> Range:
        if self.base is None or not self.slots:
            raise LayoutError("virtio window is not placed yet (or has no slots)")
        return Range(self.base, self.size)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A platform device of the template: ``pl031`` RTC, ``pl061`` GPIO, ``fw-cfg``.

    A ``pl061`` with ``power_key`` also gets a ``gpio-keys`` button reporting
    that Linux input code (116 = KEY_POWER) on GPIO ``power_pin``.
    """

    tag: str
    kind: str
    base: int | None
    size: int
    spi: Spi | None = None
    trigger: Trigger = Trigger.LEVEL_HIGH
    align: int = PAGE_SIZE
    placement: str = "fixed"
    power_key: int | None = None
    power_pin: int = 3

    @property
    def range(self) -> Range:
        if self.base is None:
            raise LayoutError(f"region {self.tag!r} is not placed yet")
        return Range(self.base, self.size)


@dataclass(frozen=True, slots=True)
class PmuSpec:
    """The PMU overflow interrupt (arm/pmu.yaml): a PPI, 7 (INTID 23) on every VMM that has one."""

    ppi: Ppi
    trigger: Trigger = Trigger.LEVEL_HIGH


@dataclass(frozen=True, slots=True)
class BootSpec:
    """A template's boot placement policy (see :mod:`fdtgen.placement`).

    ``kernel_offset``: the kernel's 2 MiB-aligned base is searched from DRAM
    base + this (bytes below it stay free for the VMM). ``initrd_offset``: the
    initrd's preferred lowest address is DRAM base + this. ``initrd_gap``: free
    bytes kept after the kernel's reserved end before a preferred initrd.
    ``fdt_max_size``: bytes reserved for the DTB, which sits alone in its own
    2 MiB block (booting.rst "Setup the device tree": 8-byte aligned, at most
    2 megabytes).
    """

    DEFAULT_INITRD_GAP = 16 * 1024 * KiB

    kernel_offset: int
    initrd_offset: int
    fdt_max_size: int
    initrd_gap: int = DEFAULT_INITRD_GAP

    def __post_init__(self) -> None:
        if not 0 < self.fdt_max_size <= 2 * 1024 * KiB or not is_aligned(self.fdt_max_size, 8):
            raise LayoutError(
                f"boot.fdt_max_size: {self.fdt_max_size:#x} must be a multiple of 8 in "
                "1..0x200000 (booting.rst: the dtb must not exceed 2 megabytes)"
            )
        for name in ("kernel_offset", "initrd_offset", "initrd_gap"):
            if not 0 <= getattr(self, name) <= U64_MAX:
                raise LayoutError(f"boot.{name}: {getattr(self, name):#x} is not a 64-bit size")


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
    cpu_compatible: str = "arm,armv8"
    timer_compatible: tuple[str, ...] = ("arm,armv8-timer",)
    pmu: PmuSpec | None = None
    devices: tuple[DeviceSpec, ...] = ()
    ram_holes: tuple[Region, ...] = ()
    address_width: int | None = None
    cpu_map: bool = False
    timer_names: tuple[str, ...] = ()
    vmm: str = ""

    def dram_ranges(self) -> tuple[Range, ...]:
        """The DRAM window without its holes, in address order."""
        pieces = [self.dram]
        for hole in self.ram_holes:
            pieces = subtract(pieces, hole.range)
        return tuple(pieces)

    def gic_regions(self) -> tuple[Region, ...]:
        g = self.gic
        out = [Region("gic-dist", g.dist)]
        if g.cpu_if is not None:
            out.append(Region("gic-cpu", g.cpu_if))
        if g.redist_window is not None:
            out.append(Region("gic-redist", g.redist_window))
        if g.redist2_window is not None:
            out.append(Region("gic-redist2", g.redist2_window))
        if g.its is not None:
            out.append(Region("gic-its", g.its))
        if g.v2m is not None:
            out.append(Region("gic-v2m", g.v2m.range))
        return tuple(out)

    def pinned_regions(self) -> tuple[Region, ...]:
        """Every region the template pins (or placed at load time), sorted by address."""
        regions = [
            *self.reserved,
            *self.gic_regions(),
            Region(
                "uart0", Range(self.uart.base, self.uart.size), align=min(PAGE_SIZE, self.uart.size)
            ),
            *(Region(d.tag, d.range, align=d.align) for d in self.devices if d.base is not None),
            *(
                Region(f"dram{i or ''}", r, align=PAGE_SIZE)
                for i, r in enumerate(self.dram_ranges())
            ),
        ]
        if self.virtio.base is not None and self.virtio.slots:
            regions.append(Region("virtio", self.virtio.window, align=PAGE_SIZE))
        return tuple(sorted(regions, key=by_address))


def check_regions(regions: Sequence[Region], context: str = "layout") -> None:
    """No two regions overlap; each base and size is aligned to its ``align``."""
    for r in regions:
        if not is_pow2(r.align):
            raise LayoutError(
                f"{context}: region {r.tag!r} alignment {r.align:#x} is not a power of 2"
            )
        if not is_aligned(r.range.base, r.align):
            raise AlignmentError(r.tag, "base", r.range.base, r.align)
        if not is_aligned(r.range.size, r.align):
            raise AlignmentError(r.tag, "size", r.range.size, r.align)
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
    """The load-time proofs. Raises :class:`LayoutError` naming regions and ranges."""
    where = f"template {t.name!r}"
    virtio_base = t.virtio.base if t.virtio.slots else 0
    unplaced = [
        tag
        for tag, base in (("virtio", virtio_base), *((d.tag, d.base) for d in t.devices))
        if base is None
    ]
    if unplaced:
        raise LayoutError(f"{where}: region {unplaced[0]!r} has no address (place it first)")
    regions = t.pinned_regions()
    check_regions(regions, where)
    by_tag = {r.tag: r for r in regions}
    tags = [r.tag for r in regions] + [h.tag for h in t.ram_holes]
    dup = next((tag for tag in tags if tags.count(tag) > 1), None)
    if dup is not None:
        raise LayoutError(f"{where}: region tag {dup!r} is used twice")
    _check_holes(t, where)
    if t.virtio.stride < 0x200 or not is_pow2(t.virtio.stride):
        raise LayoutError(
            f"{where}: virtio stride {t.virtio.stride:#x} must be a power of 2 >= 0x200 "
            "(virtio-mmio register block)"
        )
    if t.virtio.slots < 0:
        raise LayoutError(f"{where}: virtio slots {t.virtio.slots} is negative")
    if t.virtio.slots and not is_aligned(t.virtio.window.base, t.virtio.stride):
        raise AlignmentError("virtio", "base", t.virtio.window.base, t.virtio.stride)
    if t.timer_names and (
        len(t.timer_names) != len(t.timer_ppis) or any(n not in TIMER_NAMES for n in t.timer_names)
    ):
        raise LayoutError(
            f"{where}: timer names {list(t.timer_names)} must name each of the {len(t.timer_ppis)} "
            f"timer PPIs with one of {', '.join(TIMER_NAMES)}"
        )
    _check_gic(t, where)
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
    if (
        t.address_width is not None
        and not MIN_ADDRESS_WIDTH <= t.address_width <= MAX_ADDRESS_WIDTH
    ):
        raise LayoutError(
            f"{where}: address_width {t.address_width} is outside "
            f"{MIN_ADDRESS_WIDTH}..{MAX_ADDRESS_WIDTH} bits"
        )


def _check_holes(t: Template, where: str) -> None:
    """Holes lie inside the DRAM window and do not overlap one another."""
    for h in t.ram_holes:
        if not t.dram.contains(h.range):
            raise LayoutError(
                f"{where}: DRAM hole {h.tag!r} {h.range} is not inside the DRAM window {t.dram}"
            )
        if not is_aligned(h.range.base, PAGE_SIZE) or not is_aligned(h.range.size, PAGE_SIZE):
            raise AlignmentError(h.tag, "range", h.range.base, PAGE_SIZE)
    holes = sorted(t.ram_holes, key=by_address)
    for a, b in itertools.pairwise(holes):
        if a.range.overlaps(b.range):
            raise RegionOverlapError(a, b, where)
    if not t.dram_ranges():
        raise LayoutError(f"{where}: the DRAM holes cover the whole DRAM window {t.dram}")


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
        if g.redist_stride <= 0 or not is_aligned(g.redist_stride, 64 * KiB):
            raise LayoutError(
                f"{where}: gic redist_stride {g.redist_stride:#x} must be a multiple of 0x10000 "
                "(arm,gic-v3.yaml redistributor-stride)"
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


def _check_interrupts(t: Template, where: str) -> None:
    """No SPI and no PPI is wired to two sources."""
    Spi(t.virtio.first_spi.number + max(t.virtio.slots - 1, 0))  # last slot stays in range
    spis: list[tuple[Spi, str]] = [(t.uart.spi, "uart0")]
    spis += [(Spi(t.virtio.first_spi.number + i), f"virtio-{i}") for i in range(t.virtio.slots)]
    spis += [(d.spi, d.tag) for d in t.devices if d.spi is not None]
    if not t.virtio.slots:
        spis = [s for s in spis if not s[1].startswith("virtio-")]
    if t.gic.v2m is not None:
        spis += [(s, "gic-v2m") for s in t.gic.v2m.spis()]
    _one_owner_each(spis, where)
    ppis: list[tuple[Ppi, str]] = [(p, "timer") for p in t.timer_ppis]
    if t.gic.maintenance_ppi is not None:
        ppis.append((t.gic.maintenance_ppi, "gic maintenance"))
    if t.pmu is not None:
        ppis.append((t.pmu.ppi, "pmu"))
    _one_owner_each(ppis, where)


@dataclass(frozen=True, slots=True)
class Device:
    """A device the VMM must wire: its MMIO range and its interrupt (if any)."""

    tag: str
    kind: str
    range: Range
    spi: Spi | None
    trigger: Trigger


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

    @property
    def uart(self) -> Device | None:
        return next((d for d in self.devices if d.kind == "uart"), None)

    @property
    def virtio(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.kind == "virtio")

    def regions(self) -> tuple[Region, ...]:
        """Every live region, sorted by address (reports, manifests, the width check)."""
        g = self.template.gic
        out = [
            *self.template.reserved,
            Region("gic-dist", self.gic_dist),
            *(Region(f"gic-redist{i + 1 if i else ''}", r) for i, r in enumerate(self.gic_redist)),
            *(
                Region(d.tag, d.range, align=_natural_align(d.range))
                for d in (*self.devices, *self.unwired)
            ),
            *(Region(f"ram{i or ''}", r) for i, r in enumerate(self.ram)),
        ]
        if g.cpu_if is not None:
            out.append(Region("gic-cpu", g.cpu_if))
        if self.its is not None:
            out.append(Region("gic-its", self.its))
        if g.v2m is not None:
            out.append(Region("gic-v2m", g.v2m.range))
        return tuple(sorted(out, key=by_address))


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
            f"{live_end:#x}, past the 'gic-redist' window {window} (the next region starts "
            f"at {window.end:#x})"
        )
    if not is_aligned(stride, 64 * KiB):
        raise ConfigError(
            f"redist_stride: {stride:#x} is not a multiple of 0x10000 "
            "(arm,gic-v3.yaml redistributor-stride)"
        )
    first = min(vcpus, window.size // stride)
    rest = vcpus - first
    second = g.redist2_window
    if rest and second is not None and rest * stride > second.size:
        raise ConfigError(
            f"redist_stride: {vcpus} vCPUs x {stride:#x} need {rest} frames in the 'gic-redist2' "
            f"window {second}, which holds {second.size // stride}"
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
    (default: the template's, else 64) bounds every live range.
    """
    if not 1 <= vcpus <= t.max_vcpus:
        raise ConfigError(
            f"vcpus: {vcpus} is outside 1..{t.max_vcpus} (template {t.name!r} max_vcpus)"
        )
    stride = t.gic.redist_stride if redist_stride is None else redist_stride
    if not 0 < stride <= U64_MAX:
        raise ConfigError(f"redist_stride: {stride:#x} is not a positive 64-bit size")
    gic_redist = _redistributors(t, vcpus, stride)
    if memory <= 0 or not is_aligned(memory, PAGE_SIZE):
        raise ConfigError(f"memory: {memory:#x} is not a positive multiple of {PAGE_SIZE:#x}")
    if not 0 <= virtio <= t.virtio.slots:
        raise ConfigError(f"virtio: {virtio} is outside 0..{t.virtio.slots} (template slots)")
    base = t.dram.base if ram_base is None else ram_base
    if not t.dram.base <= base < t.dram.end:
        raise ConfigError(f"ram_base: {base:#x} is outside the template's DRAM window {t.dram}")
    if not is_aligned(base, RAM_ALIGN):
        raise ConfigError(
            f"ram_base: {base:#x} is not aligned to {RAM_ALIGN:#x} "
            "(booting.rst: the Image sits at a 2 MiB-aligned base in RAM)"
        )
    hole = next((h for h in t.ram_holes if h.range.base <= base < h.range.end), None)
    if hole is not None:
        raise ConfigError(f"ram_base: {base:#x} lies in the DRAM hole {hole.tag!r} {hole.range}")
    width = t.address_width if address_width is None else address_width
    if width is not None and (
        type(width) is not int or not MIN_ADDRESS_WIDTH <= width <= MAX_ADDRESS_WIDTH
    ):
        raise ConfigError(
            f"address_width: {width!r} is outside {MIN_ADDRESS_WIDTH}..{MAX_ADDRESS_WIDTH} bits"
        )
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
                Range(v.window.base + i * v.stride, v.stride),
                Spi(v.first_spi.number + i),
                v.trigger,
            )
        )
    devices.extend(
        Device(d.tag, d.kind, d.range, d.spi, d.trigger) for d in t.devices if d.spi is not None
    )
    unwired = tuple(
        Device(d.tag, d.kind, d.range, None, d.trigger) for d in t.devices if d.spi is None
    )
    its = t.gic.its
    if its is not None and t.gic.its_below_redist:
        its = Range(gic_redist[0].base - its.size, its.size)
    layout = Layout(
        template=t,
        vcpus=vcpus,
        ram=(),
        gic_dist=t.gic.dist,
        gic_redist=gic_redist,
        redist_stride=stride,
        devices=tuple(devices),
        address_width=width,
        its=its,
        unwired=unwired,
    )
    return replace(layout, ram=_place_ram(layout, memory, base))


def _place_ram(layout: Layout, memory: int, base: int) -> tuple[Range, ...]:
    """RAM from ``base`` up to the DRAM max end, around holes; sorted by address."""
    from .allocator import Allocator

    t = layout.template
    bits = MAX_ADDRESS_WIDTH if layout.address_width is None else layout.address_width
    limit = 1 << bits
    regions = layout.regions()
    for r in regions:
        if r.range.end > limit:
            raise ConfigError(
                f"address_width: region {r.tag!r} {r.range} ends past the {bits}-bit guest "
                f"physical address limit {limit:#x}"
            )

    def allocator(width: int) -> Allocator:
        alloc = Allocator(width)
        for h in t.ram_holes:
            alloc.reserve(f"hole:{h.tag}", h.range)
        for r in regions:
            alloc.fixed(r.tag, r.range)
        return alloc

    alloc = allocator(bits)
    alloc.ram("ram", memory, PAGE_SIZE, min_base=base, max_end=t.dram.end)
    try:
        placed = alloc.allocate()
    except AllocationExhaustedError as e:
        if e.tag != "ram":
            raise
        raise ConfigError(_ram_overflow(layout, memory, base, bits, allocator)) from None
    return tuple(p.range for p in placed if p.kind == "ram")


def _ram_overflow(
    layout: Layout, memory: int, base: int, bits: int, allocator: Callable[[int], Allocator]
) -> str:
    """The message for RAM that does not fit: where it would end, and which limit it crosses."""
    t = layout.template
    alloc = allocator(MAX_ADDRESS_WIDTH)
    alloc.ram("ram", memory, PAGE_SIZE, min_base=base)
    try:
        end = max(p.range.end for p in alloc.allocate() if p.kind == "ram")
        ends = f"ends at {end:#x}"
    except AllocationExhaustedError:
        end, ends = 1 << MAX_ADDRESS_WIDTH, "does not fit below 2^64"
    what = f"memory: {fmt_size(memory)} ({memory:#x}) at {base:#x} {ends}"
    if t.ram_holes:
        what += (
            " (around the DRAM holes "
            + ", ".join(f"{h.tag!r} {h.range}" for h in t.ram_holes)
            + ")"
        )
    if end > t.dram.end:
        return f"{what}, past the template's DRAM max end {t.dram.end:#x}"
    return (
        f"{what}, past the {bits}-bit guest physical address limit {1 << bits:#x} (address_width)"
    )
