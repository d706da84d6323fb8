"""A template as values: pinned regions, the GIC, UART, virtio and device specs, boot policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from fdtgen.errors import LayoutError
from fdtgen.irq import Intid, Ppi, Spi
from fdtgen.ranges import Range, Region, by_address, subtract
from fdtgen.spec import DTB_ALIGN, DTB_BLOCK, FDT_MAX_SIZE, PAGE_SIZE, Trigger
from fdtgen.template.pci import PcieSpec
from fdtgen.units import U64_MAX, KiB, is_aligned, parse_size

REDIST_REG_KINDS = ("vcpus", "window")  # GICR reg: vcpus x stride, or the whole window
REDIST_ANCHORS = ("base", "end")  # live redistributors start at the window base / end at its end
PLACEMENTS = ("fixed", "below-4g")  # how a template region gets its base
# Where a VMM puts the DTB, the initrd and the kernel ([boot] dtb / initrd / kernel).
DTB_POLICIES = (
    "top-of-ram",
    "end-of-ram",
    "end-of-first-ram",
    "ram-start",
    "after-kernel",
    "below:<offset>",
)
INITRD_POLICIES = (
    "preferred",
    "below-dtb",
    "top-of-ram",
    "after-kernel-align:<size>",
    "ram+<offset>",
)
KERNEL_POLICIES = ("ram-offset", "after-initrd")


def is_policy(word: str, choices: tuple[str, ...]) -> str:
    """``word`` if it is one of ``choices``; ``name:<x>`` / ``name+<x>`` take a byte count.

    A ``<size>`` is an alignment: a power of two of at least a page. ``below:``
    takes at least one whole 2 MiB block, which the DTB's slot starts.
    """
    for c in choices:
        head = c.split("<")[0]
        if c.endswith(">") and word.startswith(head):
            n = parse_size(word[len(head) :])
            if c.endswith("<size>") and (n < PAGE_SIZE or n & (n - 1)):
                raise ValueError(f"{n:#x} is not a power of two of at least {PAGE_SIZE:#x}")
            if head == "below:" and n < DTB_BLOCK:
                raise ValueError(f"{n:#x} leaves no whole {DTB_BLOCK:#x}-byte block for the DTB")
            return word
        if word == c:
            return word
    raise ValueError(f"expected one of {', '.join(choices)}")


class Device(NamedTuple):
    """A device the VMM must wire: its MMIO range and its interrupt (if any).

    A named tuple, not a dataclass: a layout holds one per device, and a
    template one per virtio slot.
    """

    tag: str
    kind: str
    range: Range
    spi: Spi | None
    trigger: Trigger


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

    ``base_intid``/``num_spis`` are the SPIs the frame signals. They become
    ``arm,msi-base-spi``/``arm,msi-num-spis``, which the binding applies "when
    the MSI_TYPER register contains an incorrect value" (Linux reads the base as
    an INTID, 32..1019), unless ``describe_spis`` is false: a VMM whose frame's
    MSI_TYPER is right and whose DT leaves the range to it (QEMU's virt) still
    keeps every other interrupt out of it. Under a GICv3 this is how
    Hypervisor.framework's MSI region and MSHV are described.
    """

    range: Range
    base_intid: Intid | None = None
    num_spis: int | None = None
    describe_spis: bool = True

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
    ``spis``: how many SPIs the VMM's GIC implements (SPIs ``0..spis-1``; a KVM
    VMM's ``KVM_DEV_ARM_VGIC_GRP_NR_IRQS`` less the 32 SGIs and PPIs), or
    ``None`` when the template does not say: then only the binding's 0..987 apply.
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
    spis: int | None = None

    def redist_windows(self) -> tuple[Range, ...]:
        return tuple(w for w in (self.redist_window, self.redist2_window) if w is not None)


@dataclass(frozen=True, slots=True)
class UartSpec:
    """The console UART; ``kind`` names its entry in :mod:`fdtgen.template.registry`
    (``pl011``, ``ns16550a``)."""

    base: int
    size: int
    spi: Spi
    trigger: Trigger
    kind: str = "pl011"


@dataclass(frozen=True, slots=True)
class VirtioSpec:
    """``slots`` virtio-mmio transports, ``stride`` bytes apart; slot i gets SPI first_spi+i,
    or every slot SPI first_spi with ``shared_spi`` (openvmm's one level-triggered
    line; virtio_mmio.c requests its IRQ with IRQF_SHARED).

    ``base`` is ``None`` until a ``below-4g`` window is placed at load time,
    and for a template without transports (``slots = 0``: the VMM uses
    virtio-pci, which fdtgen does not describe).

    ``transports`` holds every slot's device, ``virtio-0`` first. Slot i is
    the same in every machine built from the template, so the slots are made
    once, with the spec, and a layout with n transports takes the first n.
    An unplaced window has none yet, and so does one whose stride the
    template proofs reject.
    """

    base: int | None
    stride: int
    slots: int
    first_spi: Spi
    trigger: Trigger
    dma_coherent: bool = True
    placement: str = "fixed"
    shared_spi: bool = False
    transports: tuple[Device, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        base, stride, first = self.base, self.stride, self.first_spi.number
        transports: tuple[Device, ...] = ()
        if base is not None and stride > 0:
            transports = tuple(
                Device(
                    f"virtio-{i}",
                    "virtio",
                    Range(base + i * stride, stride),
                    Spi(first if self.shared_spi else first + i),
                    self.trigger,
                )
                for i in range(self.slots)
            )
        object.__setattr__(self, "transports", transports)

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
    """A platform device of the template; ``kind`` names its entry in
    :mod:`fdtgen.template.registry` (``pl031`` RTC, ``pl061`` GPIO, ``fw-cfg``).

    A ``pl061`` with ``power_key`` also gets a ``gpio-keys`` button reporting
    that Linux input code (116 = KEY_POWER) on GPIO ``power_pin``. A device
    that interrupts through a PPI (the vCPU stall detector) gives ``ppi``
    instead of ``spi``; ``clock_hz`` and ``timeout_sec`` are its
    ``clock-frequency`` and ``timeout-sec``. ``shared_spi``: the device shares
    its SPI with another one (crosvm's COM1/COM3 and COM2/COM4), as a
    VMM that wires two 8250s to one line does; each driver asks for a shared
    IRQ.
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
    ppi: Ppi | None = None
    clock_hz: int | None = None
    timeout_sec: int | None = None
    shared_spi: bool = False

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
    """A template's boot placement policy (see :mod:`fdtgen.boot.placement`).

    ``kernel_offset``: the kernel's 2 MiB-aligned base is searched from DRAM
    base + this (bytes below it stay free for the VMM). ``initrd_offset``: the
    initrd's preferred lowest address is DRAM base + this. ``initrd_gap``: free
    bytes kept after the kernel's reserved end before a preferred initrd.
    ``fdt_max_size``: bytes reserved for the DTB, which sits alone in its own
    2 MiB block (booting.rst "Setup the device tree": 8-byte aligned, at most
    2 megabytes).

    ``dtb``, ``initrd`` and ``kernel`` name the VMM's own placement policy,
    one of :data:`DTB_POLICIES`, :data:`INITRD_POLICIES` and
    :data:`KERNEL_POLICIES` (``below:<offset>``: under RAM base + offset;
    ``after-kernel-align:<size>``: the kernel's end rounded up to ``size``).
    """

    DEFAULT_INITRD_GAP = 16 * 1024 * KiB

    kernel_offset: int
    initrd_offset: int
    fdt_max_size: int
    initrd_gap: int = DEFAULT_INITRD_GAP
    dtb: str = "top-of-ram"
    initrd: str = "preferred"
    kernel: str = "ram-offset"

    def __post_init__(self) -> None:
        if not 0 < self.fdt_max_size <= FDT_MAX_SIZE or not is_aligned(
            self.fdt_max_size, DTB_ALIGN
        ):
            raise LayoutError(
                f"boot.fdt_max_size: {self.fdt_max_size:#x} must be a multiple of {DTB_ALIGN} "
                f"in 1..{FDT_MAX_SIZE:#x} (booting.rst: the dtb must not exceed 2 megabytes)"
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
    irq_order: tuple[str, ...] = ()
    irq_first: int = 0
    ram_piece_align: int | None = None
    pcie: PcieSpec | None = None

    @property
    def virtio_transport(self) -> str:
        """``mmio``, ``pci`` or ``both``: the ``[pcie]`` table's ``virtio``, else ``mmio``."""
        return "mmio" if self.pcie is None else self.pcie.virtio

    def ram_align(self, memory: int) -> int:
        """The alignment of each piece of RAM: ``piece_align`` when the RAM is at
        least that big, else 2 MiB (openvmm: "GB alignment so holes do not create
        sub-GB RAM chunks"); a page without ``piece_align``."""
        a = self.ram_piece_align
        if a is None:
            return PAGE_SIZE
        return a if memory >= a else 2 * 1024 * KiB

    def handed_out_spis(self, virtio: int, serial: bool) -> dict[str, Spi]:
        """The SPIs a VMM that hands lines out in attach order gives a machine.

        ``irq_order`` lists who asks, in order, from SPI ``irq_first`` on:
        ``virtio`` takes one line per transport the machine has, ``uart0``
        one when it has a console, any other tag one (a device of the
        template, or a line the VMM takes for something fdtgen does not
        describe, such as Cloud Hypervisor's GED). Empty without an order:
        the template's SPIs are fixed.
        """
        out: dict[str, Spi] = {}
        n = self.irq_first
        for tag in self.irq_order:
            if tag == "virtio":
                out.update((f"virtio-{i}", Spi(n + i)) for i in range(virtio))
                n += virtio
            elif tag != "uart0" or serial:
                out[tag] = Spi(n)
                n += 1
        return out

    def device(self, tag: str) -> DeviceSpec:
        """The device tagged ``tag``."""
        for d in self.devices:
            if d.tag == tag:
                return d
        raise LayoutError(f"template {self.name!r} has no device {tag!r}")

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
        if self.pcie is not None:
            regions.extend(self.pcie.regions())
        return tuple(sorted(regions, key=by_address))
