"""What a device kind is, and the device-tree node of each kind, one function per kind.

A :class:`DeviceKind` holds everything fdtgen knows about one kind of device;
:mod:`fdtgen.template.registry` lists them. Each node function takes the kind
(its node name and compatible strings), where the device sits and how it
interrupts (a :class:`Wired`: a layout's ``Device`` or a template's
``DeviceSpec``) and the template, and returns the node with its properties in
the order the binding lists them. Properties every node of a kind shares are
built once per kind, not once per node.

The phandles the tree uses are numbered here too, in one enum, because the
device nodes point at the clock and the GPIO controller.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from fdtgen.fdt.tree import CELLS, PACK_CELLS, Node, Prop, Ref, new, reg_cells, unit_name
from fdtgen.irq import Spi, gic_cells
from fdtgen.ranges import Range
from fdtgen.spec import CELL_TYPE_SPI, Trigger
from fdtgen.template.model import DeviceSpec, Template
from fdtgen.units import U32_MAX

NS16550_CLOCK_HZ = 1_843_200  # the 1.8432 MHz UART crystal kvmtool and crosvm describe
KEY_POWER = 116  # linux/input-event-codes.h
GPIO_ACTIVE_HIGH = 0  # dt-bindings/gpio/gpio.h


class Phandle(enum.IntEnum):
    GIC = 1
    CLOCK = 2
    MSI = 3
    GPIO = 4
    CPU0 = 0x100  # cpu i is CPU0 + i (only when a cpu-map refers to it)


GIC_REF = Ref("gic", Phandle.GIC)
CLOCK_REF = Ref("apb_pclk", Phandle.CLOCK)
MSI_REF = Ref("msi", Phandle.MSI)
GPIO_REF = Ref("gpio", Phandle.GPIO)


class Wired(Protocol):
    """Where a device sits and how it interrupts (``spi`` ``None``: it does not).

    ``tag`` names the template's device (``uart0`` for the console), so a node
    function can read the kind's extra settings from its :class:`DeviceSpec`.
    """

    @property
    def tag(self) -> str: ...

    @property
    def range(self) -> Range: ...

    @property
    def spi(self) -> Spi | None: ...

    @property
    def trigger(self) -> Trigger: ...


@dataclass(frozen=True, slots=True)
class QemuDevice:
    """The device QEMU's ``virt`` board has at a fixed address (``hw/arm/virt.c``
    ``base_memmap`` and ``a15irqmap``); ``spi`` ``None``: it has no interrupt."""

    name: str
    range: Range
    spi: Spi | None


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """One kind of device, described once.

    ``name`` is the word a template uses for it (``[uart] kind``, ``[[device]]
    kind``; ``virtio-mmio`` for the ``[virtio]`` transports). ``table`` is the
    template table that holds it (``uart``, ``device`` or ``virtio``).
    ``node_name`` comes before the ``@`` of its node's name. ``compatible``
    lists the node's compatible strings, most specific first; the first is the
    one a check of a blob finds the node by. ``node`` builds the node.
    ``apb_clock``: an AMBA primecell, clocked by the tree's fixed ``apb_pclk``.
    ``qemu``: the device QEMU's ``virt`` board has for it at a fixed address,
    if any (virtio-mmio transports are checked slot by slot instead).
    ``root_node``: a node a device of this kind adds under the root beside its
    own (the PL061's ``gpio-keys`` power button), or ``None`` when it has none.
    ``console``: the Linux tty a UART of this kind becomes (``ttyAMA`` for a
    PL011, ``ttyS`` for an 8250), which the default command line names.
    ``irq_shared``: its Linux driver requests its IRQ shared, so several
    nodes of such kinds may sit on one SPI. ``extra``: properties every node
    of the kind carries after its
    ``compatible`` (the PL030's ``arm,primecell-periphid``).
    ``compatible_prop`` is ``compatible`` as a property, built once.
    """

    name: str
    table: str
    node_name: str
    compatible: tuple[str, ...]
    node: Callable[[DeviceKind, Wired, Template], Node]
    apb_clock: bool = False
    qemu: QemuDevice | None = None
    root_node: Callable[[DeviceSpec], Node | None] | None = None
    console: str = ""
    extra: tuple[Prop, ...] = ()
    irq_shared: bool = False
    compatible_prop: Prop = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compatible_prop", Prop.strings("compatible", *self.compatible))

    @property
    def layout_kind(self) -> str:
        """``Device.kind`` in a layout and a manifest: ``uart``, ``virtio`` or the name."""
        return self.name if self.table == "device" else self.table

    @property
    def drawn_as(self) -> str:
        """Its kind in layout pictures (colour, grouping): ``uart``, ``device`` or ``virtio``."""
        return self.table

    @property
    def recognised_by(self) -> str:
        """The compatible string a blob's node of this kind is found by."""
        return self.compatible[0]

    def build(self, d: Wired, t: Template) -> Node:
        return self.node(self, d, t)


def reg_prop(d: Wired) -> Prop:
    return Prop.cells("reg", *reg_cells(d.range.base, d.range.size))


def interrupts(d: Wired) -> tuple[Prop, ...]:
    """``interrupts`` for a wired device; nothing for one without an interrupt."""
    if d.spi is None:
        return ()
    return (Prop.cells("interrupts", *gic_cells(d.spi, d.trigger)),)


_PL011_CLOCKS = (
    Prop.cells("clocks", CLOCK_REF, CLOCK_REF),
    Prop.strings("clock-names", "uartclk", "apb_pclk"),
)
_APB_CLOCK = (Prop.cells("clocks", CLOCK_REF), Prop.strings("clock-names", "apb_pclk"))
_NS16550_CLOCK = Prop.cells("clock-frequency", NS16550_CLOCK_HZ)
_DMA_COHERENT = Prop.empty("dma-coherent")
_PACK3, _PACK4 = PACK_CELLS[3], PACK_CELLS[4]


def pl011_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """PL011 with ``uartclk`` and ``apb_pclk`` (serial/pl011.yaml: one clock is deprecated)."""
    props = (k.compatible_prop, reg_prop(d), *interrupts(d), *_PL011_CLOCKS)
    return Node(unit_name(k.node_name, d.range.base), props)


def ns16550_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """A 16550 with its ``clock-frequency`` (serial/8250.yaml)."""
    props = (k.compatible_prop, reg_prop(d), *interrupts(d), _NS16550_CLOCK)
    return Node(unit_name(k.node_name, d.range.base), props)


def pl031_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """PL031 real-time clock (rtc/arm,pl031.yaml), an AMBA primecell.

    Also the PL030 (``k.extra``: its ``arm,primecell-periphid``), which has no
    binding of its own: arm/primecell.yaml describes it by ``arm,primecell``
    and the peripheral ID the AMBA bus matches its driver by.
    """
    props = (k.compatible_prop, *k.extra, reg_prop(d), *interrupts(d), *_APB_CLOCK)
    return Node(unit_name(k.node_name, d.range.base), props)


def mc146818_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """Motorola MC146818 RTC (rtc/motorola,mc146818.yaml): compatible and reg required."""
    props = (k.compatible_prop, reg_prop(d), *interrupts(d))
    return Node(unit_name(k.node_name, d.range.base), props)


def wired_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """A node of ``compatible``, ``reg`` and ``interrupts`` only: rng/microsoft,vmgenid.yaml
    and ptp/amazon,vmclock.yaml (``additionalProperties: false`` in both)."""
    props = (k.compatible_prop, reg_prop(d), *interrupts(d))
    return Node(unit_name(k.node_name, d.range.base), props)


def stall_detector_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """The vCPU stall detector (misc/qemu,vcpu-stall-detector.yaml): a PPI, its clock
    rate and timeout. Templates with one have a GICv3, whose PPI flags carry no CPU
    mask (arm,gic-v3.yaml); the template proofs refuse it on a GICv2."""
    spec = d if isinstance(d, DeviceSpec) else t.device(d.tag)
    props = [k.compatible_prop, reg_prop(d)]
    if spec.clock_hz is not None:
        props.append(Prop.cells("clock-frequency", spec.clock_hz))
    if spec.timeout_sec is not None:
        props.append(Prop.cells("timeout-sec", spec.timeout_sec))
    if spec.ppi is not None:
        props.append(Prop.cells("interrupts", *gic_cells(spec.ppi, spec.trigger)))
    return Node(unit_name(k.node_name, d.range.base), tuple(props))


_PL061_GPIO = (Prop.empty("gpio-controller"), Prop.cells("#gpio-cells", 2))


def pl061_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """PL061 GPIO controller (gpio/pl061-gpio.yaml), an AMBA primecell."""
    return Node(
        unit_name(k.node_name, d.range.base),
        (
            k.compatible_prop,
            reg_prop(d),
            *interrupts(d),
            *_PL061_GPIO,
            *_APB_CLOCK,
            Prop.cells("phandle", GPIO_REF.phandle),
        ),
        label=GPIO_REF.label,
    )


def gpio_keys_node(d: DeviceSpec) -> Node | None:
    """A ``gpio-keys`` power button on a PL061 with a ``power_key`` (input/gpio-keys.yaml)."""
    if d.power_key is None:
        return None
    label = "GPIO Key Poweroff" if d.power_key == KEY_POWER else f"GPIO Key {d.power_key}"
    button = Node(
        "power-button",
        (
            Prop.strings("label", label),
            Prop.cells("linux,code", d.power_key),
            Prop.cells("gpios", GPIO_REF, d.power_pin, GPIO_ACTIVE_HIGH),
        ),
    )
    return Node("gpio-keys", (Prop.strings("compatible", "gpio-keys"),), (button,))


def fw_cfg_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """QEMU's firmware configuration interface (firmware/qemu,fw-cfg-mmio.yaml)."""
    props = (k.compatible_prop, reg_prop(d), _DMA_COHERENT)
    return Node(unit_name(k.node_name, d.range.base), props)


def virtio_mmio_node(k: DeviceKind, d: Wired, t: Template) -> Node:
    """One virtio-mmio transport (virtio/mmio.yaml); ``dma-coherent`` if the template says so.

    A machine has up to 32 of these, more nodes than of any other kind, so
    ``reg`` (2 + 2 cells), ``interrupts`` and the node are made as the tuples
    they are (:data:`fdtgen.fdt.tree.new`), each value in one pack. A
    template's ranges fit 64 bits and its SPIs and triggers a cell each.
    """
    r, spi = d.range, d.spi
    base, size = r.base, r.size
    reg = (base >> 32, base & U32_MAX, size >> 32, size & U32_MAX)
    props: tuple[Prop, ...]
    if spi is None:
        props = (k.compatible_prop, new(Prop, ("reg", _PACK4(*reg), CELLS, reg)))
    else:
        irq = (CELL_TYPE_SPI, spi.number, d.trigger)
        props = (
            k.compatible_prop,
            new(Prop, ("reg", _PACK4(*reg), CELLS, reg)),
            new(Prop, ("interrupts", _PACK3(*irq), CELLS, irq)),
        )
    if t.virtio.dma_coherent:
        props += (_DMA_COHERENT,)
    return new(Node, (f"{k.node_name}@{base:x}", props, (), None))
