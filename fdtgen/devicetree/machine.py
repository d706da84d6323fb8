"""The machine description and the tree built from it, one function per node.

Root children come in a fixed, documented order: ``chosen``, ``aliases``,
``memory@...``, ``cpus``, ``psci``, ``timer``, ``pmu``, ``apb-pclk``, the
nodes devices add under the root (``gpio-keys``), then every MMIO device
(the GIC, then the layout's devices: UART, RTC, GPIO, fw-cfg, virtio-mmio)
by ascending unit address. Nodes a template does not have are left out.
Properties come in the order each function writes them. Nothing depends on
hashing or the host. Each device's node is built by its kind's entry in
:mod:`fdtgen.template.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fdtgen.boot.placement import Placement
    from fdtgen.boot.request import Boot

from fdtgen.devicetree.chosen import chosen_node, uart_path
from fdtgen.errors import ConfigError
from fdtgen.fdt.tree import DeviceTree, Node, Prop, Ref, reg_cells, unit_name
from fdtgen.irq import Ppi, Trigger, gic_cells
from fdtgen.layout import Layout, resolve
from fdtgen.template.devices import CLOCK_REF, GIC_REF, MSI_REF, Phandle
from fdtgen.template.model import Template
from fdtgen.template.registry import KINDS, layout_kinds, needs_apb_clock
from fdtgen.units import MiB

DEFAULT_CMDLINE = "console=ttyAMA0 earlycon panic=-1"

# PSCI 0.2 function IDs (SMC64 where one exists), written when the node keeps
# the PSCI 0.1 "arm,psci" compatible, which needs cpu_on/cpu_off (arm/psci.yaml).
PSCI_0_1_FUNCTIONS = (
    ("cpu_suspend", 0xC400_0001),
    ("cpu_off", 0x8400_0002),
    ("cpu_on", 0xC400_0003),
    ("migrate", 0xC400_0005),
)


def cpu_ref(index: int) -> Ref:
    return Ref(f"cpu{index}", Phandle.CPU0 + index)


@dataclass(frozen=True, slots=True)
class Topology:
    """``sockets x clusters x cores x threads`` vCPUs, described by ``/cpus/cpu-map``.

    cpu-map.yaml: ``socketN`` / ``clusterN`` / ``coreN`` [/ ``threadN``] nodes
    whose leaves point at the cpu nodes; arm64 Linux learns SMT only from here.
    """

    sockets: int = 1
    clusters: int = 1
    cores: int = 1
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("sockets", "clusters", "cores", "threads"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"topology.{name}: {value!r} must be a positive integer")

    @property
    def vcpus(self) -> int:
        return self.sockets * self.clusters * self.cores * self.threads


@dataclass(frozen=True, slots=True)
class Machine:
    """One VM's numbers, validated by :func:`fdtgen.layout.resolve` against its template.

    This is the library's input; :mod:`fdtgen.config` turns user files into it.
    ``ram_base``, ``address_width`` and ``topology`` default to the template's
    (its DRAM base, no width limit, a cpu-map only if the template has one).
    """

    template: str = "squib"
    vcpus: int = 2
    memory: int = 512 * MiB
    cmdline: str = DEFAULT_CMDLINE
    virtio: int = 32
    serial: bool = True
    psci_method: str | None = None  # None: the template's
    redist_stride: int | None = None  # None: the template's
    ram_base: int | None = None
    address_width: int | None = None
    topology: Topology | None = None


def mpidr(index: int) -> int:
    """The MPIDR affinity KVM assigns vCPU ``index`` (``reset_mpidr``; HVF matches it).

    Aff0 = index & 0xf, Aff1 = (index >> 4) & 0xff, Aff2 = (index >> 12) & 0xff:
    16 CPUs per Aff1 cluster, so the GICv3 redistributors' TYPER matches.
    QEMU's ``virt_cpu_mp_affinity`` gives the same values with a GICv3 (its
    cluster size is GICV3_TARGETLIST_BITS = 16), and with a GICv2 for the at
    most 8 vCPUs one allows.
    """
    return ((index >> 12) & 0xFF) << 16 | ((index >> 4) & 0xFF) << 8 | (index & 0xF)


def cpu_topology(layout: Layout, m: Machine) -> Topology | None:
    """The machine's topology, the template's default (one cluster), or none."""
    topo = m.topology
    if topo is None and layout.template.cpu_map:
        topo = Topology(cores=layout.vcpus)
    if topo is not None and topo.vcpus != layout.vcpus:
        raise ConfigError(
            f"topology: {topo.sockets} sockets x {topo.clusters} clusters x {topo.cores} cores x "
            f"{topo.threads} threads = {topo.vcpus} vCPUs, but vcpus is {layout.vcpus}"
        )
    return topo


def ppi_cells(layout: Layout, ppi: Ppi, trigger: Trigger) -> tuple[int, int, int]:
    """A PPI specifier; on a GICv2 the flags carry the CPU mask (arm,gic.yaml bits 15:8)."""
    mask = (1 << layout.vcpus) - 1 if layout.template.gic.version == 2 else 0
    return gic_cells(ppi, trigger, cpu_mask=mask)


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


def cpu_map_node(topo: Topology) -> Node:
    """``cpu-map`` (cpu-map.yaml), leaves in cpu order.

    cpu index = ((socket x clusters + cluster) x cores + core) x threads + thread.
    """
    index = 0

    def leaf(name: str) -> Node:
        nonlocal index
        node = Node(name, (Prop.cells("cpu", cpu_ref(index)),))
        index += 1
        return node

    def core(k: int) -> Node:
        if topo.threads == 1:
            return leaf(f"core{k}")
        return Node(f"core{k}", children=tuple(leaf(f"thread{t}") for t in range(topo.threads)))

    sockets = []
    for s in range(topo.sockets):
        clusters = []
        for c in range(topo.clusters):
            clusters.append(Node(f"cluster{c}", children=tuple(core(k) for k in range(topo.cores))))
        sockets.append(Node(f"socket{s}", children=tuple(clusters)))
    return Node("cpu-map", children=tuple(sockets))


def cpus_node(layout: Layout, topo: Topology | None = None) -> Node:
    t = layout.template
    cpus = []
    for i in range(layout.vcpus):
        reg = mpidr(i)
        props = [
            Prop.strings("device_type", "cpu"),
            Prop.strings("compatible", t.cpu_compatible),
            Prop.cells("reg", reg),
            Prop.strings("enable-method", "psci"),
        ]
        label = None
        if topo is not None:
            ref = cpu_ref(i)
            props.append(Prop.cells("phandle", ref.phandle))
            label = ref.label
        cpus.append(Node(unit_name("cpu", reg), tuple(props), label=label))
    if topo is not None:
        cpus.append(cpu_map_node(topo))
    return Node(
        "cpus",
        (Prop.cells("#address-cells", 1), Prop.cells("#size-cells", 0)),
        tuple(cpus),
    )


def psci_node(t: Template, method: str) -> Node:
    props = [Prop.strings("compatible", *t.psci_compatible), Prop.strings("method", method)]
    if "arm,psci" in t.psci_compatible:
        props.extend(Prop.cells(name, fid) for name, fid in PSCI_0_1_FUNCTIONS)
    return Node("psci", tuple(props))


def timer_node(layout: Layout) -> Node:
    t = layout.template
    cells: list[int] = []
    for ppi in t.timer_ppis:
        cells.extend(ppi_cells(layout, ppi, t.timer_trigger))
    props = [Prop.strings("compatible", *t.timer_compatible), Prop.cells("interrupts", *cells)]
    if t.timer_names:
        props.append(Prop.strings("interrupt-names", *t.timer_names))
    props.append(Prop.empty("always-on"))
    return Node("timer", tuple(props))


def pmu_node(layout: Layout) -> Node | None:
    pmu = layout.template.pmu
    if pmu is None:
        return None
    return Node(
        "pmu",
        (
            Prop.strings("compatible", "arm,armv8-pmuv3"),
            Prop.cells("interrupts", *ppi_cells(layout, pmu.ppi, pmu.trigger)),
        ),
    )


def clock_node(t: Template) -> Node | None:
    if not needs_apb_clock(t):
        return None
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


def its_node(layout: Layout) -> Node | None:
    """The GICv3 ITS (arm,gic-v3-its.yaml): ``msi-controller``, ``#msi-cells = <1>`` required."""
    its = layout.its
    if its is None:
        return None
    return Node(
        unit_name("msi-controller", its.base),
        (
            Prop.strings("compatible", "arm,gic-v3-its"),
            Prop.empty("msi-controller"),
            Prop.cells("#msi-cells", 1),
            Prop.cells("reg", *reg_cells(its.base, its.size)),
            Prop.cells("phandle", MSI_REF.phandle),
        ),
        label=MSI_REF.label,
    )


def v2m_node(layout: Layout) -> Node | None:
    """A GICv2m frame (arm,gic.yaml ``v2m@``), also valid under a GICv3 without LPIs."""
    v2m = layout.template.gic.v2m
    if v2m is None:
        return None
    props = [
        Prop.strings("compatible", "arm,gic-v2m-frame"),
        Prop.empty("msi-controller"),
        Prop.cells("reg", *reg_cells(v2m.range.base, v2m.range.size)),
    ]
    if v2m.base_intid is not None and v2m.num_spis is not None:
        props.append(Prop.cells("arm,msi-base-spi", v2m.base_intid.value))
        props.append(Prop.cells("arm,msi-num-spis", v2m.num_spis))
    props.append(Prop.cells("phandle", MSI_REF.phandle))
    return Node(unit_name("v2m", v2m.range.base), tuple(props), label=MSI_REF.label)


def gic_node(layout: Layout) -> Node:
    """GICv3 (arm,gic-v3.yaml) or GICv2 (arm,gic.yaml, ``arm,cortex-a15-gic``)."""
    t = layout.template
    g = t.gic
    reg: list[int] = [*reg_cells(layout.gic_dist.base, layout.gic_dist.size)]
    if g.version == 3:
        for r in layout.gic_redist:
            reg.extend(reg_cells(r.base, r.size))
        compatible = "arm,gic-v3"
    else:
        if g.cpu_if is None:
            raise ConfigError(f"template {t.name!r}: a GICv2 needs a CPU interface")
        reg.extend(reg_cells(g.cpu_if.base, g.cpu_if.size))
        compatible = "arm,cortex-a15-gic"
    props = [
        Prop.strings("compatible", compatible),
        Prop.cells("#interrupt-cells", 3),
        Prop.cells("#address-cells", 2),
        Prop.cells("#size-cells", 2),
        Prop.empty("ranges"),
        Prop.empty("interrupt-controller"),
        Prop.cells("reg", *reg),
    ]
    if g.version == 3:
        props.append(Prop.cells("#redistributor-regions", len(layout.gic_redist)))
        if layout.redist_stride != 128 * 1024:
            props.append(Prop.u64("redistributor-stride", layout.redist_stride))
    if g.maintenance_ppi is not None:
        props.append(
            Prop.cells("interrupts", *ppi_cells(layout, g.maintenance_ppi, Trigger.LEVEL_HIGH))
        )
    props.append(Prop.cells("phandle", GIC_REF.phandle))
    children = [n for n in (its_node(layout), v2m_node(layout)) if n is not None]
    return Node(
        unit_name("interrupt-controller", layout.gic_dist.base),
        tuple(props),
        tuple(children),
        label=GIC_REF.label,
    )


def mmio_nodes(layout: Layout) -> list[Node]:
    """The GIC and every device of the layout, each built by its kind, by ascending address."""
    t = layout.template
    kinds = layout_kinds(t)
    mmio = [(layout.gic_dist.base, gic_node(layout))]
    mmio.extend(
        (d.range.base, kinds[d.kind].build(d, t)) for d in (*layout.devices, *layout.unwired)
    )
    mmio.sort(key=lambda item: item[0])
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
        chosen_node(layout, m.cmdline, placement, boot),
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
            Prop.cells("#address-cells", 2),
            Prop.cells("#size-cells", 2),
            Prop.cells("interrupt-parent", GIC_REF),
        ),
        tuple(children),
    )
    return DeviceTree(root)


def machine_layout(m: Machine, template: Template) -> Layout:
    layout = resolve(
        template,
        vcpus=m.vcpus,
        memory=m.memory,
        virtio=m.virtio,
        serial=m.serial,
        redist_stride=m.redist_stride,
        ram_base=m.ram_base,
        address_width=m.address_width,
    )
    cpu_topology(layout, m)  # a topology that does not add up is rejected here
    return layout
