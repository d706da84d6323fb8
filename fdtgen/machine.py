"""The machine description and the tree built from it, one function per node.

Root children come in a fixed, documented order: ``chosen``, ``aliases``,
``memory@...``, ``cpus``, ``psci``, ``timer``, ``apb-pclk``, then every MMIO
device (GIC, UART, virtio-mmio) by ascending unit address. Properties come in
the order each function writes them. Nothing depends on hashing or the host.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .irq import Trigger, gic_cells
from .layout import Layout, Template, resolve
from .tree import DeviceTree, Node, Prop, Ref, reg_cells, unit_name
from .units import MiB

DEFAULT_CMDLINE = "console=ttyAMA0 earlycon panic=-1"


class Phandle(enum.IntEnum):
    GIC = 1
    CLOCK = 2


GIC_REF = Ref("gic", Phandle.GIC)
CLOCK_REF = Ref("apb_pclk", Phandle.CLOCK)


@dataclass(frozen=True, slots=True)
class Machine:
    """One VM's numbers, validated by :func:`fdtgen.layout.resolve` against its template.

    This is the library's input; :mod:`fdtgen.config` turns user files into it.
    """

    template: str = "squib"
    vcpus: int = 2
    memory: int = 512 * MiB
    cmdline: str = DEFAULT_CMDLINE
    virtio: int = 32
    serial: bool = True
    psci_method: str | None = None  # None: the template's
    redist_stride: int | None = None  # None: the template's
    chosen_extra: tuple[Prop, ...] = field(default=())


def mpidr(index: int) -> int:
    """The MPIDR affinity KVM assigns vCPU ``index`` (``reset_mpidr``; HVF matches it).

    Aff0 = index & 0xf, Aff1 = (index >> 4) & 0xff, Aff2 = (index >> 12) & 0xff:
    16 CPUs per Aff1 cluster, so the GICv3 redistributors' TYPER matches.
    """
    return ((index >> 12) & 0xFF) << 16 | ((index >> 4) & 0xFF) << 8 | (index & 0xF)


def uart_path(layout: Layout) -> str | None:
    uart = layout.uart
    return None if uart is None else "/" + unit_name("serial", uart.range.base)


def chosen_node(layout: Layout, m: Machine) -> Node:
    props = [Prop.strings("bootargs", m.cmdline)]
    path = uart_path(layout)
    if path:
        props.append(Prop.strings("stdout-path", path))
    props.extend(m.chosen_extra)
    return Node("chosen", tuple(props))


def aliases_node(layout: Layout) -> Node | None:
    path = uart_path(layout)
    return None if path is None else Node("aliases", (Prop.strings("serial0", path),))


def memory_nodes(layout: Layout) -> list[Node]:
    return [
        Node(
            unit_name("memory", r.base),
            (Prop.strings("device_type", "memory"), Prop.cells("reg", *reg_cells(r.base, r.size))),
        )
        for r in layout.ram
    ]


def cpus_node(layout: Layout) -> Node:
    cpus = []
    for i in range(layout.vcpus):
        reg = mpidr(i)
        cpus.append(
            Node(
                unit_name("cpu", reg),
                (
                    Prop.strings("device_type", "cpu"),
                    Prop.strings("compatible", "arm,armv8"),
                    Prop.cells("reg", reg),
                    Prop.strings("enable-method", "psci"),
                ),
            )
        )
    return Node(
        "cpus",
        (Prop.cells("#address-cells", 1), Prop.cells("#size-cells", 0)),
        tuple(cpus),
    )


def psci_node(t: Template, method: str) -> Node:
    return Node(
        "psci",
        (Prop.strings("compatible", *t.psci_compatible), Prop.strings("method", method)),
    )


def timer_node(t: Template) -> Node:
    cells: list[int] = []
    for ppi in t.timer_ppis:
        cells.extend(gic_cells(ppi, t.timer_trigger))
    return Node(
        "timer",
        (
            Prop.strings("compatible", "arm,armv8-timer"),
            Prop.cells("interrupts", *cells),
            Prop.empty("always-on"),
        ),
    )


def clock_node(t: Template) -> Node:
    return Node(
        "apb-pclk",
        (
            Prop.strings("compatible", "fixed-clock"),
            Prop.cells("#clock-cells", 0),
            Prop.cells("clock-frequency", t.uart_clock_hz),
            Prop.strings("clock-output-names", "clk24mhz"),
            Prop.cells("phandle", CLOCK_REF.phandle),
        ),
        label=CLOCK_REF.label,
    )


def gic_node(layout: Layout) -> Node:
    t = layout.template
    reg: list[int] = [*reg_cells(layout.gic_dist.base, layout.gic_dist.size)]
    for r in layout.gic_redist:
        reg.extend(reg_cells(r.base, r.size))
    props = [
        Prop.strings("compatible", "arm,gic-v3"),
        Prop.cells("#interrupt-cells", 3),
        Prop.cells("#address-cells", 2),
        Prop.cells("#size-cells", 2),
        Prop.empty("ranges"),
        Prop.empty("interrupt-controller"),
        Prop.cells("reg", *reg),
        Prop.cells("#redistributor-regions", len(layout.gic_redist)),
    ]
    if layout.redist_stride != 128 * 1024:
        props.append(Prop.u64("redistributor-stride", layout.redist_stride))
    if t.gic.maintenance_ppi is not None:
        props.append(Prop.cells("interrupts", *gic_cells(t.gic.maintenance_ppi, Trigger.LEVEL_HIGH)))
    props.append(Prop.cells("phandle", GIC_REF.phandle))
    return Node(unit_name("interrupt-controller", layout.gic_dist.base), tuple(props), label=GIC_REF.label)


def uart_node(layout: Layout) -> Node | None:
    uart = layout.uart
    if uart is None:
        return None
    return Node(
        unit_name("serial", uart.range.base),
        (
            Prop.strings("compatible", "arm,pl011", "arm,primecell"),
            Prop.cells("reg", *reg_cells(uart.range.base, uart.range.size)),
            Prop.cells("interrupts", *gic_cells(uart.spi, uart.trigger)),
            Prop.cells("clocks", CLOCK_REF, CLOCK_REF),
            Prop.strings("clock-names", "uartclk", "apb_pclk"),
        ),
    )


def virtio_nodes(layout: Layout) -> list[Node]:
    coherent = layout.template.virtio.dma_coherent
    nodes = []
    for d in layout.virtio:
        props = [
            Prop.strings("compatible", "virtio,mmio"),
            Prop.cells("reg", *reg_cells(d.range.base, d.range.size)),
            Prop.cells("interrupts", *gic_cells(d.spi, d.trigger)),
        ]
        if coherent:
            props.append(Prop.empty("dma-coherent"))
        nodes.append(Node(unit_name("virtio_mmio", d.range.base), tuple(props)))
    return nodes


def machine_tree(layout: Layout, m: Machine) -> DeviceTree:
    t = layout.template
    mmio: list[tuple[int, Node]] = [(layout.gic_dist.base, gic_node(layout))]
    uart = uart_node(layout)
    if uart is not None and layout.uart is not None:
        mmio.append((layout.uart.range.base, uart))
    mmio.extend((d.range.base, n) for d, n in zip(layout.virtio, virtio_nodes(layout), strict=True))
    mmio.sort(key=lambda item: item[0])
    aliases = aliases_node(layout)
    children = [
        chosen_node(layout, m),
        *([aliases] if aliases else []),
        *memory_nodes(layout),
        cpus_node(layout),
        psci_node(t, m.psci_method or t.psci_method),
        timer_node(t),
        clock_node(t),
        *(n for _, n in mmio),
    ]
    root = Node(
        "",
        (
            Prop.strings("compatible", *t.compatible),
            Prop.strings("model", t.model),
            Prop.cells("#address-cells", 2),
            Prop.cells("#size-cells", 2),
            Prop.cells("interrupt-parent", GIC_REF),
        ),
        tuple(children),
    )
    return DeviceTree(root)


def machine_layout(m: Machine, template: Template) -> Layout:
    return resolve(
        template,
        vcpus=m.vcpus,
        memory=m.memory,
        virtio=m.virtio,
        serial=m.serial,
        redist_stride=m.redist_stride,
    )
