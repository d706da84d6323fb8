"""The interrupt controller node with its MSI frame, and PPI specifiers for the CPU-side nodes."""

from __future__ import annotations

from fdtgen.errors import ConfigError
from fdtgen.fdt.tree import Node, Prop, reg_cells, unit_name
from fdtgen.irq import Ppi, gic_cells
from fdtgen.layout import Layout
from fdtgen.spec import GICV3_REDIST_STRIDE, Trigger
from fdtgen.template.devices import GIC_REF, MSI_REF

# The GIC node's fixed properties, built once (a Prop is immutable and can be shared).
_GIC_CELLS = (
    Prop.cells("#interrupt-cells", 3),
    Prop.cells("#address-cells", 2),
    Prop.cells("#size-cells", 2),
    Prop.empty("ranges"),
    Prop.empty("interrupt-controller"),
)


def ppi_cells(layout: Layout, ppi: Ppi, trigger: Trigger) -> tuple[int, int, int]:
    """A PPI specifier; on a GICv2 the flags carry the CPU mask (arm,gic.yaml bits 15:8)."""
    mask = (1 << layout.vcpus) - 1 if layout.template.gic.version == 2 else 0
    return gic_cells(ppi, trigger, cpu_mask=mask)


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
    if v2m.base_intid is not None and v2m.num_spis is not None and v2m.describe_spis:
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
    props = [Prop.strings("compatible", compatible), *_GIC_CELLS, Prop.cells("reg", *reg)]
    if g.version == 3:
        props.append(Prop.cells("#redistributor-regions", len(layout.gic_redist)))
        if layout.redist_stride != GICV3_REDIST_STRIDE:
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
