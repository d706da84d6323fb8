"""QEMU virt's GIC variants and PCIe host bridge, and the virtio-pci devices a command may add.

The board options follow the template's interrupt controller: a GICv2 is
``gic-version=2`` (GICC at ``0x0801_0000``, the v2m frame at ``0x0802_0000``,
at most 8 vCPUs), a GICv3 without an ITS is ``gic-version=3,its=off``.
``hw/arm/virt.c`` ``create_gic()`` makes the ITS only "if (type == 3 &&
vms->its)" and the v2m frame only for a GICv2 (qemu/qemu 19bd6aaf).

QEMU 7.2's bridge, as its ``dumpdtb`` writes it (``create_pcie``):
``pci-host-ecam-generic``, ECAM at ``VIRT_HIGH_PCIE_ECAM`` (256 MiB at
``0x40_1000_0000``, buses 0..255), I/O ``0x3EFF_0000 + 64 KiB`` at PCI 0,
32-bit memory ``0x1000_0000 + 0x2EFF_0000`` and 64-bit memory 512 GiB at
512 GiB (not prefetchable), INTx on SPI 3..6 (``a15irqmap[VIRT_PCIE]``), and
``msi-map`` to the ITS or v2m frame when the board has one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fdtgen.errors import ConfigError
from fdtgen.irq import Spi
from fdtgen.ranges import Range
from fdtgen.spec import ECAM
from fdtgen.template.model import Template
from fdtgen.template.pci import PcieSpec
from fdtgen.units import GiB, KiB, MiB

GICC = Range(0x0801_0000, 64 * KiB)  # VIRT_GIC_CPU
V2M = Range(0x0802_0000, 4 * KiB)  # VIRT_GIC_V2M
GICV2_MAX_VCPUS = 8  # GIC_NCPU

PCIE = PcieSpec(
    compatible=ECAM,
    config=Range(0x40_1000_0000, 256 * MiB),  # VIRT_HIGH_PCIE_ECAM
    mmio32=Range(0x1000_0000, 0x2EFF_0000),  # VIRT_PCIE_MMIO
    io=Range(0x3EFF_0000, 64 * KiB),  # VIRT_PCIE_PIO
    mmio64=Range(512 * GiB, 512 * GiB),  # VIRT_HIGH_PCIE_MMIO
    first_spi=Spi(3),  # a15irqmap[VIRT_PCIE]
)
_COMPARED = ("compatible", "config", "bus_first", "bus_last", "io", "mmio32", "mmio64",
             "prefetchable64", "first_spi", "intx")  # fmt: skip


def qemu_machine(t: Template) -> str:
    """The ``-M`` value for ``t``'s interrupt controller."""
    if t.gic.version == 2:
        return "virt,gic-version=2"
    return "virt,gic-version=3" if t.gic.its is not None else "virt,gic-version=3,its=off"


def check_gicv2(t: Template, vcpus: int, refuse: Callable[[str], ConfigError]) -> None:
    """A GICv2 template's CPU interface, MSI frame and vCPU count are QEMU's."""
    g = t.gic
    if g.cpu_if != GICC:
        raise refuse(f"'gic-cpu' {g.cpu_if} is not QEMU's GICv2 CPU interface {GICC}")
    if g.v2m is not None and g.v2m.range != V2M:
        raise refuse(f"'gic-v2m' {g.v2m.range} is not QEMU's v2m frame {V2M}")
    if vcpus > GICV2_MAX_VCPUS:
        raise refuse(f"vcpus {vcpus} is over QEMU virt's {GICV2_MAX_VCPUS} with a GICv2")


def check_pcie(t: Template, refuse: Callable[[str], ConfigError]) -> None:
    """A template's bridge, if it has one, is QEMU's, naming the board's MSI controller."""
    p = t.pcie
    if p is None:
        return
    for name in _COMPARED:
        ours, theirs = getattr(p, name), getattr(PCIE, name)
        if ours != theirs:
            raise refuse(f"pcie {name} {_shown(ours)} is not QEMU's {_shown(theirs)}")
    has_msi = t.gic.its is not None or t.gic.v2m is not None
    if (p.msi != "none") != has_msi:
        want = "msi-map or msi-parent" if has_msi else "none"
        raise refuse(f"pcie msi {p.msi!r} does not match QEMU's MSI controller (want {want})")


def _shown(v: object) -> str:
    return f"{v:#x}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def check_virtio_pci(t: Template, drivers: Sequence[str]) -> None:
    """``virtio-*-pci`` devices need a bridge in the DTB; ``virtio-*-device`` ones a
    template whose VMM has virtio-mmio transports."""
    transport = t.virtio_transport
    for driver in drivers:
        if driver.endswith("-pci") and transport == "mmio":
            why = "has no [pcie] bridge" if t.pcie is None else "says virtio = 'mmio'"
            raise ConfigError(
                f"qemu args: -device {driver} is a virtio-pci device, but template "
                f"{t.name!r} {why}; use virtio-*-device or a template with PCIe"
            )
        if driver.endswith("-device") and transport == "pci":
            raise ConfigError(
                f"qemu args: -device {driver} is a virtio-mmio device, but template "
                f"{t.name!r} has virtio = 'pci'; use the -pci variant"
            )
