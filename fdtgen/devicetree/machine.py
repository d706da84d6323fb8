"""The machine description and the tree built from it, one function per node.

Root children come in a fixed, documented order: ``chosen``, ``aliases``,
``memory@...``, ``cpus``, ``psci``, ``timer``, ``pmu``, ``apb-pclk``, the
nodes devices add under the root (``gpio-keys``), then every MMIO device
(the GIC, then the layout's devices: UART, RTC, GPIO, fw-cfg, virtio-mmio,
and the PCIe host bridge) by ascending unit address. Nodes a template does not have are left out.
Properties come in the order each function writes them. Nothing depends on
hashing or the host.

The CPU-side nodes are built in :mod:`fdtgen.devicetree.cpus`, the GIC in
:mod:`fdtgen.devicetree.gic`, the PCIe host bridge in
:mod:`fdtgen.devicetree.pci`, and each device by its kind's entry in
:mod:`fdtgen.template.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from operator import itemgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fdtgen.boot.placement import Placement
    from fdtgen.boot.request import Boot

from fdtgen.devicetree.chosen import chosen_node, uart_path
from fdtgen.devicetree.cpus import Topology, cpus_node, pmu_node, psci_node, timer_node
from fdtgen.devicetree.gic import gic_node
from fdtgen.devicetree.pci import pcie_node
from fdtgen.errors import ConfigError
from fdtgen.fdt.tree import DeviceTree, Node, Prop, reg_cells, unit_name
from fdtgen.layout import Layout, resolve
from fdtgen.template.devices import CLOCK_REF, GIC_REF
from fdtgen.template.model import Template
from fdtgen.template.registry import KINDS, console_name, layout_kinds, needs_apb_clock
from fdtgen.units import MiB

__all__ = [
    "DEFAULT_CMDLINE",
    "Machine",
    "Topology",
    "default_cmdline",
    "machine_layout",
    "machine_tree",
    "with_defaults",
]

DEFAULT_CMDLINE = "console=ttyAMA0 earlycon panic=-1"  # a PL011 console's default


def default_cmdline(t: Template, serial: bool = True) -> str:
    """The command line a machine without one gets: its console UART's tty, and
    without a serial console neither ``console=`` nor ``earlycon`` (no such tty
    exists, and a VMM such as Firecracker creates its 16550 when the command
    line asks for a console, taking an interrupt line the tree does not show)."""
    if not serial:
        return "panic=-1"
    return f"console={console_name(t)} earlycon panic=-1"


# Properties every tree has the same, built once (a Prop is immutable and can be shared).
_ROOT_CELLS = (
    Prop.cells("#address-cells", 2),
    Prop.cells("#size-cells", 2),
    Prop.cells("interrupt-parent", GIC_REF),
)
_MEMORY_TYPE = Prop.strings("device_type", "memory")
_CLOCK_HEAD = (Prop.strings("compatible", "fixed-clock"), Prop.cells("#clock-cells", 0))
_CLOCK_TAIL = (
    Prop.strings("clock-output-names", "clk24mhz"),
    Prop.cells("phandle", CLOCK_REF.phandle),
)


@dataclass(frozen=True, slots=True)
class Machine:
    """One VM's numbers, validated by :func:`fdtgen.layout.resolve` against its template.

    This is the library's input; :mod:`fdtgen.config` turns user files into it.
    ``ram_base``, ``address_width`` and ``topology`` default to the template's
    (its DRAM base, no width limit, a cpu-map only if the template has one);
    ``virtio`` to its slots and ``cmdline`` to one naming its console's tty
    (:func:`with_defaults`).
    """

    template: str = "squib"
    vcpus: int = 2
    memory: int = 512 * MiB
    cmdline: str | None = None  # None: default_cmdline(template, serial)
    virtio: int | None = None  # None: every virtio slot the template has (0 on a PCI-only VMM)
    serial: bool = True
    psci_method: str | None = None  # None: the template's
    redist_stride: int | None = None  # None: the template's
    ram_base: int | None = None
    address_width: int | None = None
    topology: Topology | None = None


def with_defaults(m: Machine, t: Template) -> Machine:
    """``m`` with the numbers it leaves to its template filled in from ``t``."""
    if m.cmdline is not None and m.virtio is not None:
        return m
    return replace(
        m,
        cmdline=default_cmdline(t, m.serial) if m.cmdline is None else m.cmdline,
        virtio=t.virtio.slots if m.virtio is None else m.virtio,
    )


def cpu_topology(layout: Layout, m: Machine) -> Topology | None:
    """The machine's topology, the template's default (one cluster), or none."""
    topo = m.topology
    if topo is None and layout.template.cpu_map:
        topo = Topology(cores=layout.vcpus)
    if topo is not None and topo.vcpus != layout.vcpus:
        raise ConfigError(
            f"topology: {topo.sockets} sockets x {topo.clusters} clusters x {topo.cores} cores x "
            f"{topo.threads} threads = {topo.vcpus} vCPUs, but vcpus is {layout.vcpus}",
            setting="topology",
        )
    return topo


def aliases_node(layout: Layout) -> Node | None:
    path = uart_path(layout)
    return None if path is None else Node("aliases", (Prop.strings("serial0", path),))


def memory_nodes(layout: Layout) -> list[Node]:
    return [
        Node(
            unit_name("memory", r.base),
            (_MEMORY_TYPE, Prop.cells("reg", *reg_cells(r.base, r.size))),
        )
        for r in layout.ram
    ]


def clock_node(t: Template) -> Node | None:
    if not needs_apb_clock(t):
        return None
    frequency = Prop.cells("clock-frequency", t.uart_clock_hz)
    return Node("apb-pclk", (*_CLOCK_HEAD, frequency, *_CLOCK_TAIL), label=CLOCK_REF.label)


def mmio_nodes(layout: Layout) -> list[Node]:
    """The GIC and every device of the layout, each built by its kind, by ascending address."""
    t = layout.template
    kinds = layout_kinds(t)
    mmio = [(layout.gic_dist.base, gic_node(layout))]
    add = mmio.append
    for d in (*layout.devices, *layout.unwired):
        k = kinds[d.kind]
        add((d.range.base, k.node(k, d, t)))
    pcie = pcie_node(layout)
    if pcie is not None and t.pcie is not None:
        add((t.pcie.node_address, pcie))
    mmio.sort(key=itemgetter(0))  # addresses are distinct: no two nodes compare
    return [node for _, node in mmio]


def device_root_nodes(t: Template) -> list[Node]:
    """The nodes devices add under the root (a PL061's ``gpio-keys``).

    Such a node has a fixed name, so each kind adds at most one: the first of
    its devices that brings one.
    """
    found: dict[str, Node] = {}
    for d in t.devices:
        kind = KINDS[d.kind]
        if kind.root_node is None or kind.name in found:
            continue
        node = kind.root_node(d)
        if node is not None:
            found[kind.name] = node
    return list(found.values())


def machine_tree(
    layout: Layout, m: Machine, placement: Placement | None = None, boot: Boot | None = None
) -> DeviceTree:
    """The whole tree: fixed root children first, then MMIO devices by address.

    ``placement`` and ``boot`` add the initrd range and the entropy properties to
    ``/chosen``; nothing passed in is changed.
    """
    t = layout.template
    aliases, pmu, clock = aliases_node(layout), pmu_node(layout), clock_node(t)
    children = [
        chosen_node(
            layout,
            default_cmdline(t, m.serial) if m.cmdline is None else m.cmdline,
            placement,
            boot,
        ),
        *([aliases] if aliases else []),
        *memory_nodes(layout),
        cpus_node(layout, cpu_topology(layout, m)),
        psci_node(t, m.psci_method or t.psci_method),
        timer_node(layout),
        *([pmu] if pmu else []),
        *([clock] if clock else []),
        *device_root_nodes(t),
        *mmio_nodes(layout),
    ]
    root = Node(
        "",
        (
            Prop.strings("compatible", *t.compatible),
            Prop.strings("model", t.model),
            *_ROOT_CELLS,
        ),
        tuple(children),
    )
    return DeviceTree(root)


def machine_layout(m: Machine, template: Template) -> Layout:
    layout = resolve(
        template,
        vcpus=m.vcpus,
        memory=m.memory,
        virtio=template.virtio.slots if m.virtio is None else m.virtio,
        serial=m.serial,
        redist_stride=m.redist_stride,
        ram_base=m.ram_base,
        address_width=m.address_width,
    )
    cpu_topology(layout, m)  # a topology that does not add up is rejected here
    return layout
