"""A template's PCIe host bridge: its windows, its INTx and MSI wiring, and their proofs.

The node follows Linux ``Documentation/devicetree/bindings/pci/host-generic-pci.yaml``
(torvalds/linux 0cfa80d3): ``compatible`` is ``pci-host-ecam-generic`` or
``pci-host-cam-generic``, ``reg`` is the configuration space whose base is the
first bus of ``bus-range``, and ``ranges`` "must provide at least a definition
of non-prefetchable memory". The bus-level rules are dt-schema's
``pci/pci-bus-common.yaml`` (devicetree-org/dt-schema 06498e6f): three address
cells, two size cells, one interrupt cell, a ``bus-range`` of two cells up to 255.

A window's CPU address is its PCI address for memory (a 1:1 mapping, as QEMU,
kvmtool and Cloud Hypervisor describe theirs); I/O space starts at PCI
address 0. The legacy INTx lines use the swizzle QEMU's ``create_pcie_irq_map``
writes (qemu/qemu 19bd6aaf hw/arm/virt.c): slot s, pin p (1 = INTA) raises SPI
``first_spi + (s + p - 1) % 4``, four slots by four pins under the mask
``<0x1800 0 0 7>``. A VMM that gives each device its own line instead (crosvm's
``generate_pci_root``: device i at slot ``first_slot + i``, function 0, INTA,
the next free SPI) has a ``per-slot`` map: one row per slot, under the mask
``<0xf800 0 0 7>`` that keeps all five device bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fdtgen.errors import LayoutError
from fdtgen.irq import Spi
from fdtgen.ranges import Range, Region
from fdtgen.spec import (
    BUS_CONFIG_SIZE,
    BUS_MAX,
    ECAM,
    INTX_PINS,
    MEM32_LIMIT,
    NODE_NAMES,
    PAGE_SIZE,
    PCI_IO_LIMIT,
    PCIE_COMPATIBLES,
    PREFETCHABLE,
    SLOTS,
    SPACE_IO,
    SPACE_MEM32,
    SPACE_MEM64,
)

MSI_STYLES = ("msi-map", "msi-parent", "none")  # how the bridge names its MSI controller
VIRTIO_TRANSPORTS = ("mmio", "pci", "both")  # which transports the VMM's virtio devices use

INTX_SLOTS = 4  # interrupt-map rows cover slots 0..3 (the mask keeps slot bits 11-12)
INTX_MAP_MASK = (0x1800, 0, 0, 7)  # create_pcie_irq_map: "devfn (PCI_SLOT(3))", "PCI irq"
INTX_STYLES = ("swizzle", "per-slot")  # 4 x 4 rows, or one INTA row per slot
PER_SLOT_MASK = (0xF800, 0, 0, 7)  # every device bit (phys.hi 15:11) and the pin


@dataclass(frozen=True, slots=True)
class AfterRam:
    """A 64-bit window that follows RAM, as Cloud Hypervisor's and crosvm's do.

    It starts ``gap`` bytes past the end of RAM, never below ``floor``, and
    runs to ``top`` bytes below the top of the guest physical address space.
    """

    gap: int = 0
    floor: int = 0
    top: int = 0

    def start(self, ram_end: int) -> int:
        """Where the window starts after RAM ending at ``ram_end``."""
        return max(self.floor, ram_end + self.gap)

    def end(self, bits: int) -> int:
        """Where the window ends, exclusive, in a ``bits``-wide space (at most 0 when
        ``top`` takes the whole space)."""
        return (1 << bits) - self.top

    def window(self, ram_end: int, bits: int) -> Range | None:
        """The window above RAM ending at ``ram_end`` in a ``bits``-wide space; ``None``
        when no byte is left for it."""
        base, end = self.start(ram_end), self.end(bits)
        return Range(base, end - base) if base < end else None


@dataclass(frozen=True, slots=True)
class PcieSpec:
    """The ``[pcie]`` table: one generic host bridge.

    ``config`` is the configuration space (``reg``), holding buses
    ``bus_first..bus_last``. ``io``, ``mmio32`` and ``mmio64`` are the windows' CPU
    ranges (``None``: none); ``mmio64_after_ram``, instead of ``mmio64``, is a 64-bit
    window that moves with RAM (:class:`AfterRam`; the layout resolves it);
    ``prefetchable64`` marks the 64-bit window prefetchable. ``first_spi`` is INTA of
    slot 0 (``None``: no ``interrupt-map``). ``msi`` is how the node names the
    template's MSI controller (``msi-map``, ``msi-parent`` or ``none``). ``domain`` is
    ``linux,pci-domain``. ``unit_address`` names the node (``None``: the configuration
    space base; QEMU names its bridge after the 32-bit window). ``virtio`` is the
    transport the VMM's virtio devices use: ``mmio``, ``pci`` or ``both``. INTx lines
    are level-sensitive (PCI Local Bus "INTx# ... level sensitive"), so every row is
    level-high; the node is always ``dma-coherent``, as every VMM's virtual bridge is.
    ``intx`` is the ``interrupt-map`` style: ``swizzle`` (four slots by four pins) or
    ``per-slot`` (``intx_slots`` rows from ``intx_first_slot``, INTA of each on its own
    SPI). ``node_name`` is ``pcie`` or ``pci``. The ``msi-map`` covers the requester IDs
    of the buses in ``bus-range``, 256 per bus, 1:1.
    """

    compatible: str
    config: Range
    mmio32: Range | None
    bus_first: int = 0
    bus_last: int = BUS_MAX
    io: Range | None = None
    mmio64: Range | None = None
    prefetchable64: bool = False
    first_spi: Spi | None = None
    msi: str = "none"
    domain: int = 0
    unit_address: int | None = None
    virtio: str = "mmio"
    intx: str = "swizzle"
    intx_first_slot: int = 0
    intx_slots: int = INTX_SLOTS
    node_name: str = "pcie"
    mmio64_after_ram: AfterRam | None = None

    @property
    def buses(self) -> int:
        return self.bus_last - self.bus_first + 1

    @property
    def node_address(self) -> int:
        return self.config.base if self.unit_address is None else self.unit_address

    def windows(self, after_ram: Range | None = None) -> tuple[tuple[str, int, Range], ...]:
        """``(tag, phys.hi, CPU range)`` of each window, in ``ranges`` order: I/O, 32, 64.

        The pinned windows, and ``after_ram``: the 64-bit window a layout
        resolved from ``mmio64_after_ram``.
        """
        out = []
        if self.io is not None:
            out.append(("pcie-io", SPACE_IO, self.io))
        if self.mmio32 is not None:
            out.append(("pcie-mmio32", SPACE_MEM32, self.mmio32))
        mmio64 = self.mmio64 if after_ram is None else after_ram
        if mmio64 is not None:
            hi = SPACE_MEM64 | (PREFETCHABLE if self.prefetchable64 else 0)
            out.append(("pcie-mmio64", hi, mmio64))
        return tuple(out)

    def pci_address(self, space: int, cpu: Range) -> int:
        """The PCI bus address a window starts at: 0 for I/O, the CPU address for memory."""
        return 0 if space == SPACE_IO else cpu.base

    def regions(self) -> tuple[Region, ...]:
        """The configuration space and every window, as the template's pinned regions."""
        return (
            Region("pcie-ecam" if self.compatible == ECAM else "pcie-cam", self.config),
            *(Region(tag, r) for tag, _, r in self.windows()),
        )

    @property
    def intx_mask(self) -> tuple[int, int, int, int]:
        return PER_SLOT_MASK if self.intx == "per-slot" else INTX_MAP_MASK

    @property
    def rids(self) -> tuple[int, int]:
        """``(first, count)``: the requester IDs of the bridge's buses (bus << 8 | devfn)."""
        return self.bus_first << 8, self.buses << 8

    def intx_spis(self) -> tuple[Spi, ...]:
        if self.first_spi is None:
            return ()
        lines = self.intx_slots if self.intx == "per-slot" else INTX_PINS
        return tuple(Spi(self.first_spi.number + i) for i in range(lines))

    def intx_rows(self) -> tuple[tuple[int, int, Spi], ...]:
        """``(slot, pin, SPI)`` of every interrupt-map row, slot-major (QEMU's order)."""
        if self.first_spi is None:
            return ()
        first = self.first_spi.number
        if self.intx == "per-slot":
            return tuple(
                (self.intx_first_slot + i, 1, Spi(first + i)) for i in range(self.intx_slots)
            )
        return tuple(
            (slot, pin, Spi(first + (slot + pin - 1) % INTX_PINS))
            for slot in range(INTX_SLOTS)
            for pin in range(1, INTX_PINS + 1)
        )


def bus_range(v: Any) -> tuple[int, int]:
    """``[first, last]``: two bus numbers, first <= last <= 255 (pci-bus-common.yaml)."""
    if not isinstance(v, list) or len(v) != 2 or not all(type(n) is int for n in v):
        raise TypeError("expected [first, last]: two integers")
    first, last = v
    if not 0 <= first <= last <= BUS_MAX:
        raise ValueError(f"must satisfy 0 <= first <= last <= {BUS_MAX} (pci-bus-common.yaml)")
    return first, last


def check_pcie(
    p: PcieSpec, where: str, msi_controller: bool, virtio_slots: int, its: bool = False
) -> None:
    """The PCIe proofs beyond the pinned-region ones (no overlap, alignment).

    ``its``: the MSI controller the bridge names is a GICv3 ITS (``#msi-cells = <1>``).

    Raises :class:`LayoutError` naming the key, its value and the rule.
    """
    w = f"{where}: pcie"
    if p.compatible not in PCIE_COMPATIBLES:
        raise LayoutError(f"{w} compatible {p.compatible!r} is not one of {PCIE_COMPATIBLES}")
    per_bus = BUS_CONFIG_SIZE[p.compatible]
    need = p.buses * per_bus
    # host-generic-pci.yaml ties reg's base to the first bus and sets no upper size:
    # crosvm and kvmtool decode 256 buses' space and say bus-range <0 0>.
    if p.config.size < need or p.config.size % per_bus:
        raise LayoutError(
            f"{w} config {p.config} is {p.config.size:#x} bytes, but buses "
            f"{p.bus_first}..{p.bus_last} take {need:#x} ({p.buses} x "
            f"{per_bus:#x}, host-generic-pci.yaml), in whole buses"
        )
    if p.mmio32 is None:
        raise LayoutError(
            f"{w} has no mmio32 window (host-generic-pci.yaml: ranges must provide "
            "at least a definition of non-prefetchable memory)"
        )
    if p.mmio32.end > MEM32_LIMIT:
        raise LayoutError(
            f"{w} mmio32 {p.mmio32} ends past {MEM32_LIMIT:#x}: a 32-bit window maps "
            "1:1 to PCI addresses below 4 GiB"
        )
    if p.io is not None and p.io.size > PCI_IO_LIMIT:
        raise LayoutError(
            f"{w} io {p.io} is {p.io.size:#x} bytes, more than the {PCI_IO_LIMIT:#x} of I/O "
            "space arm64 Linux maps (PCI_IO_SIZE)"
        )
    if p.intx not in INTX_STYLES:
        raise LayoutError(f"{w} intx {p.intx!r} is not one of {', '.join(INTX_STYLES)}")
    last_slot = p.intx_first_slot + p.intx_slots - 1
    slots_ok = p.intx_slots >= 1 and 0 <= p.intx_first_slot <= last_slot < SLOTS
    if p.intx == "per-slot" and not slots_ok:
        raise LayoutError(
            f"{w} intx_first_slot {p.intx_first_slot} + intx_slots {p.intx_slots}: a per-slot "
            f"map names 1 or more of the bus's device numbers 0..{SLOTS - 1}"
        )
    if p.node_name not in NODE_NAMES:
        raise LayoutError(f"{w} node_name {p.node_name!r} is not one of {', '.join(NODE_NAMES)}")
    if p.msi not in MSI_STYLES:
        raise LayoutError(f"{w} msi {p.msi!r} is not one of {', '.join(MSI_STYLES)}")
    if p.msi != "none" and not msi_controller:
        raise LayoutError(
            f"{w} msi {p.msi!r} names the MSI controller, but the gic has no its or v2m"
        )
    if p.msi == "msi-parent" and its:
        raise LayoutError(
            f"{w} msi 'msi-parent' names the ITS, whose #msi-cells = <1> wants a DeviceID "
            "cell no bridge-wide msi-parent can give; use 'msi-map' (pci-msi.txt: a "
            "requester ID becomes the msi-specifier)"
        )
    if p.virtio not in VIRTIO_TRANSPORTS:
        raise LayoutError(f"{w} virtio {p.virtio!r} is not one of {', '.join(VIRTIO_TRANSPORTS)}")
    if p.virtio == "pci" and virtio_slots:
        raise LayoutError(
            f"{w} virtio 'pci': the VMM has no virtio-mmio transports, but [virtio] has "
            f"{virtio_slots} slots (use 'both')"
        )
    if not 0 <= p.domain <= 0xFFFF_FFFF:
        raise LayoutError(f"{w} domain {p.domain} is not one 32-bit cell")
    a = p.mmio64_after_ram
    if a is not None:
        if p.mmio64 is not None:
            raise LayoutError(
                f"{w} has a pinned mmio64 window {p.mmio64} and one after RAM: a bridge "
                "decodes one 64-bit memory window"
            )
        keys = (("after_ram", a.gap), ("floor", a.floor), ("below_top", a.top))
        for key, value in keys:
            if value % PAGE_SIZE:
                raise LayoutError(
                    f"{w} mmio64_{key} {value:#x} is not a multiple of the {PAGE_SIZE:#x}-byte page"
                )
