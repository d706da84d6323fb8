"""The PCIe host bridge node (host-generic-pci.yaml, pci-bus-common.yaml).

Properties come in the binding's order: ``compatible``, ``device_type``,
``reg``, ``bus-range``, the cells, ``ranges``, the INTx ``interrupt-map`` and
its mask, the MSI reference, ``dma-coherent`` and ``linux,pci-domain``. The
windows and the swizzle are described in :mod:`fdtgen.template.pci`.
"""

from __future__ import annotations

from fdtgen.fdt.tree import Cell, Node, Prop, reg_cells, unit_name
from fdtgen.layout import Layout
from fdtgen.spec import CELL_TYPE_SPI, Trigger
from fdtgen.template.devices import GIC_REF, MSI_REF
from fdtgen.template.pci import PcieSpec

GIC_ADDRESS_CELLS = 2  # the GIC node's #address-cells: each map row's parent unit address
SLOT_SHIFT = 11  # phys.hi "dddddfff" device bits 15:11

_PCI_TYPE = Prop.strings("device_type", "pci")
_BUS_CELLS = (
    Prop.cells("#address-cells", 3),
    Prop.cells("#size-cells", 2),
)
_INTX_CELLS = Prop.cells("#interrupt-cells", 1)
_DMA_COHERENT = Prop.empty("dma-coherent")


def _ranges(layout: Layout, p: PcieSpec) -> Prop:
    """One entry per window: phys.hi, the 64-bit PCI address, the CPU address, the size."""
    cells: list[int] = []
    for _, space, cpu in layout.pcie_windows():
        pci = p.pci_address(space, cpu)
        cells += [space, pci >> 32, pci & 0xFFFF_FFFF, *reg_cells(cpu.base, cpu.size)]
    return Prop.cells("ranges", *cells)


def _interrupt_map(p: PcieSpec) -> Prop:
    """Slot s pin p -> the GIC SPI of the swizzle, level-high (a PCI INTx line is a level)."""
    cells: list[Cell] = []
    for slot, pin, spi in p.intx_rows():
        cells += [slot << SLOT_SHIFT, 0, 0, pin, GIC_REF]
        cells += [0] * GIC_ADDRESS_CELLS
        cells += [CELL_TYPE_SPI, spi.number, Trigger.LEVEL_HIGH]
    return Prop.cells("interrupt-map", *cells)


def pcie_node(layout: Layout) -> Node | None:
    """The template's host bridge, or ``None`` when it has no ``[pcie]`` table."""
    p = layout.template.pcie
    if p is None:
        return None
    props = [
        Prop.strings("compatible", p.compatible),
        _PCI_TYPE,
        Prop.cells("reg", *reg_cells(p.config.base, p.config.size)),
        Prop.cells("bus-range", p.bus_first, p.bus_last),
        *_BUS_CELLS,
        _ranges(layout, p),
    ]
    if p.first_spi is not None:
        props += [_INTX_CELLS, _interrupt_map(p), Prop.cells("interrupt-map-mask", *p.intx_mask)]
    if p.msi == "msi-map":
        rid, count = p.rids  # the bridge's requester IDs, mapped 1:1
        props.append(Prop.cells("msi-map", rid, MSI_REF, rid, count))
    elif p.msi == "msi-parent":
        props.append(Prop.cells("msi-parent", MSI_REF))
    props += [_DMA_COHERENT, Prop.cells("linux,pci-domain", p.domain)]
    return Node(unit_name(p.node_name, p.node_address), tuple(props))
