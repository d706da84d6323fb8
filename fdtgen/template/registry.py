"""Every kind of device fdtgen describes, one entry each.

An entry (:class:`~fdtgen.template.devices.DeviceKind`) is the one place that
says, for its kind: the word a template uses for it and the template table
it sits in, the device-tree node it becomes (node name, compatible strings,
the function that builds it), whether it takes the APB clock, what QEMU's
``virt`` board has for it, and the node it may add under the root. The
template loader takes its kind names from here, the device-tree builder its
nodes, the QEMU command the fixed devices it compares a layout with, and the
layout pictures how to draw each device.

Adding a device kind is one entry here plus its node function in
:mod:`fdtgen.template.devices`; docs/templates.md ("Device kinds") shows an
example.
"""

from __future__ import annotations

from fdtgen.fdt.tree import Prop
from fdtgen.irq import Spi
from fdtgen.ranges import Range
from fdtgen.template.devices import (
    DeviceKind,
    QemuDevice,
    fw_cfg_node,
    gpio_keys_node,
    mc146818_node,
    ns16550_node,
    pl011_node,
    pl031_node,
    pl061_node,
    stall_detector_node,
    virtio_mmio_node,
    wired_node,
)
from fdtgen.template.model import Template
from fdtgen.units import KiB

TABLES = ("uart", "device", "virtio")  # the template tables that hold devices

PL011 = DeviceKind(
    name="pl011",
    table="uart",
    node_name="serial",
    compatible=("arm,pl011", "arm,primecell"),
    node=pl011_node,
    apb_clock=True,
    qemu=QemuDevice("PL011", Range(0x0900_0000, 4 * KiB), Spi(1)),
    console="ttyAMA",  # drivers/tty/serial/amba-pl011.c: dev_name "ttyAMA"
)
NS16550A = DeviceKind(
    name="ns16550a",
    table="uart",
    node_name="serial",
    compatible=("ns16550a",),
    node=ns16550_node,
    console="ttyS",  # drivers/tty/serial/8250/8250_core.c: dev_name "ttyS"
    irq_shared=True,  # drivers/tty/serial/8250/8250_of.c: port->flags = UPF_SHARE_IRQ | ...
)
PL031 = DeviceKind(
    name="pl031",
    table="device",
    node_name="rtc",
    compatible=("arm,pl031", "arm,primecell"),
    node=pl031_node,
    apb_clock=True,
    qemu=QemuDevice("PL031 RTC", Range(0x0901_0000, 4 * KiB), Spi(2)),
)
PL061 = DeviceKind(
    name="pl061",
    table="device",
    node_name="gpio",
    compatible=("arm,pl061", "arm,primecell"),
    node=pl061_node,
    apb_clock=True,
    qemu=QemuDevice("PL061 GPIO", Range(0x0903_0000, 4 * KiB), Spi(7)),
    root_node=gpio_keys_node,
)
PL030 = DeviceKind(  # arm/primecell.yaml: no binding of its own, matched by its periphid
    name="pl030",
    table="device",
    node_name="rtc",
    compatible=("arm,primecell",),
    node=pl031_node,
    apb_clock=True,
    extra=(Prop.cells("arm,primecell-periphid", 0x0004_1030),),  # crosvm PL030_AMBA_ID
)
MC146818 = DeviceKind(
    name="mc146818",
    table="device",
    node_name="rtc",
    compatible=("motorola,mc146818",),
    node=mc146818_node,
)
VMGENID = DeviceKind(
    name="vmgenid",
    table="device",
    node_name="rng",  # the binding's example node name
    compatible=("microsoft,vmgenid",),
    node=wired_node,
)
VMCLOCK = DeviceKind(
    name="vmclock",
    table="device",
    node_name="ptp",
    compatible=("amazon,vmclock",),
    node=wired_node,
)
STALL_DETECTOR = DeviceKind(
    name="vcpu-stall-detector",
    table="device",
    node_name="vmwdt",  # the binding's example node name
    compatible=("qemu,vcpu-stall-detector",),
    node=stall_detector_node,
)
FW_CFG = DeviceKind(
    name="fw-cfg",
    table="device",
    node_name="fw-cfg",
    compatible=("qemu,fw-cfg-mmio",),
    node=fw_cfg_node,
    qemu=QemuDevice("fw-cfg", Range(0x0902_0000, 0x18), None),
)
VIRTIO_MMIO = DeviceKind(
    name="virtio-mmio",
    table="virtio",
    node_name="virtio_mmio",
    compatible=("virtio,mmio",),
    node=virtio_mmio_node,
)

KINDS: dict[str, DeviceKind] = {
    k.name: k
    for k in (
        PL011,
        NS16550A,
        PL031,
        PL030,
        MC146818,
        PL061,
        FW_CFG,
        VMGENID,
        VMCLOCK,
        STALL_DETECTOR,
        VIRTIO_MMIO,
    )
}

SHARING_COMPATIBLES = frozenset(k.recognised_by for k in KINDS.values() if k.irq_shared)
UART_KINDS = tuple(k.name for k in KINDS.values() if k.table == "uart")  # [uart] kind
# [[device]] kind: the device kinds, and the UART kinds for a VMM's further UARTs
DEVICE_KINDS = tuple(k.name for k in KINDS.values() if k.table == "device") + UART_KINDS


def template_kinds(t: Template) -> tuple[DeviceKind, ...]:
    """The kinds of ``t``'s console UART, its virtio transports and its devices, in that order."""
    return (KINDS[t.uart.kind], VIRTIO_MMIO, *(KINDS[d.kind] for d in t.devices))


def layout_kinds(t: Template) -> dict[str, DeviceKind]:
    """The entry for each ``Device.kind`` a layout of ``t`` can hold.

    A layout calls its console ``uart`` and its transports ``virtio`` whatever
    their kind; the template's ``[uart] kind`` says which UART it is. A
    ``[[device]]`` keeps its kind's name (a further UART is ``ns16550a``).
    """
    kinds = {k.layout_kind: k for k in template_kinds(t)}
    kinds.update((d.kind, KINDS[d.kind]) for d in t.devices)
    return kinds


def console_name(t: Template) -> str:
    """The tty the console UART becomes in Linux: ``ttyAMA0``, ``ttyS0``."""
    return f"{KINDS[t.uart.kind].console}0"


def needs_apb_clock(t: Template) -> bool:
    """The template has an AMBA primecell (PL011, PL031, PL061), which takes ``apb_pclk``."""
    return any(k.apb_clock for k in template_kinds(t))


def check_registry(kinds: dict[str, DeviceKind]) -> None:
    """Fail fast if the table itself is inconsistent (runs at import)."""
    for name, k in kinds.items():
        if name != k.name:
            raise ValueError(f"device kind {k.name!r} is listed as {name!r}")
        if k.table not in TABLES:
            raise ValueError(f"device kind {name!r}: table {k.table!r} is not one of {TABLES}")
        if not k.compatible:
            raise ValueError(f"device kind {name!r} has no compatible string")
        if (k.table == "uart") != bool(k.console):
            raise ValueError(f"device kind {name!r}: a UART kind, and only one, names its tty")
    virtio = [k.name for k in kinds.values() if k.table == "virtio"]
    if len(virtio) != 1:
        raise ValueError(f"exactly one device kind describes the [virtio] table, not {virtio}")


check_registry(KINDS)
