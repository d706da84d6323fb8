"""The CPU side of the tree: ``/cpus`` (with its ``cpu-map``), ``psci``, ``timer`` and ``pmu``."""

from __future__ import annotations

from dataclasses import dataclass

from fdtgen.devicetree.gic import ppi_cells
from fdtgen.errors import ConfigError
from fdtgen.fdt.tree import CELLS, PACK_CELLS, Node, Prop, Ref, new, unit_name
from fdtgen.layout import Layout
from fdtgen.template.devices import Phandle
from fdtgen.template.model import Template

# PSCI 0.2 function IDs (SMC64 where one exists), written when the node keeps
# the PSCI 0.1 "arm,psci" compatible, which needs cpu_on/cpu_off (arm/psci.yaml).
PSCI_0_1_FUNCTIONS = (
    ("cpu_suspend", 0xC400_0001),
    ("cpu_off", 0x8400_0002),
    ("cpu_on", 0xC400_0003),
    ("migrate", 0xC400_0005),
)

# Properties every tree has the same, built once (a Prop is immutable and can be shared).
_CPU_TYPE = Prop.strings("device_type", "cpu")
_PSCI_ENABLE = Prop.strings("enable-method", "psci")
_CPUS_CELLS = (Prop.cells("#address-cells", 1), Prop.cells("#size-cells", 0))
_ALWAYS_ON = Prop.empty("always-on")
_PACK1 = PACK_CELLS[1]


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
                raise ConfigError(
                    f"topology.{name}: {value!r} must be a positive integer", setting="topology"
                )

    @property
    def vcpus(self) -> int:
        return self.sockets * self.clusters * self.cores * self.threads


def mpidr(index: int) -> int:
    """The MPIDR affinity KVM assigns vCPU ``index`` (``reset_mpidr``; HVF matches it).

    Aff0 = index & 0xf, Aff1 = (index >> 4) & 0xff, Aff2 = (index >> 12) & 0xff:
    16 CPUs per Aff1 cluster, so the GICv3 redistributors' TYPER matches.
    QEMU's ``virt_cpu_mp_affinity`` gives the same values with a GICv3 (its
    cluster size is GICV3_TARGETLIST_BITS = 16), and with a GICv2 for the at
    most 8 vCPUs one allows.
    """
    return ((index >> 12) & 0xFF) << 16 | ((index >> 4) & 0xFF) << 8 | (index & 0xF)


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
    """``/cpus``: a node per vCPU, ``reg`` its :func:`mpidr` (inlined here, with the
    nodes and ``reg`` made as the tuples they are: a machine has up to 4096)."""
    compatible = Prop.strings("compatible", layout.template.cpu_compatible)
    cpus: list[Node] = []
    add = cpus.append
    for i in range(layout.vcpus):
        reg = ((i >> 12) & 0xFF) << 16 | ((i >> 4) & 0xFF) << 8 | (i & 0xF)
        cell = new(Prop, ("reg", _PACK1(reg), CELLS, (reg,)))
        props = (_CPU_TYPE, compatible, cell, _PSCI_ENABLE)
        if topo is None:
            add(new(Node, (f"cpu@{reg:x}", props, (), None)))
            continue
        ref = cpu_ref(i)
        phandle = Prop.cells("phandle", ref.phandle)
        add(Node(unit_name("cpu", reg), (*props, phandle), label=ref.label))
    if topo is not None:
        add(cpu_map_node(topo))
    return Node("cpus", _CPUS_CELLS, tuple(cpus))


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
    props.append(_ALWAYS_ON)
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
