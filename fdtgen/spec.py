"""The numbers fdtgen takes from specifications, each defined once.

Sources are named by document and section title (section numbers move
between versions): Linux ``Documentation/arch/arm64/booting.rst``, the
Devicetree Specification, and the dt-schema / Linux bindings of the nodes
fdtgen writes.
"""

from __future__ import annotations

import enum

from fdtgen.errors import IrqError
from fdtgen.units import GiB, KiB, MiB

# -- booting.rst, "Setup the device tree" ------------------------------------------------
FDT_MAX_SIZE = 2 * MiB  # "must not exceed 2 megabytes in size"
DTB_ALIGN = 8  # "placed on an 8-byte boundary"
DTB_BLOCK = 2 * MiB  # mapped "using blocks of up to 2 megabytes"

# -- booting.rst, "Call the kernel image" ------------------------------------------------
KERNEL_BASE_ALIGN = 2 * MiB  # "a 2MB aligned base address"
DEFAULT_TEXT_OFFSET = (
    0x80000  # "Where image_size is zero, text_offset can be assumed to be 0x80000"
)
TEXT_OFFSET_LIMIT = 2 * MiB  # the Image sits text_offset bytes above a 2 MiB-aligned base
INITRD_WINDOW_ALIGN = 1 * GiB  # "a 1 GB aligned physical memory window"
INITRD_WINDOW_SIZE = 32 * GiB  # "of up to 32 GB in size"
PA_48BIT_END = 1 << 48  # Image flags bit 3: "within the 48-bit addressable range"

# -- arm64 architecture ------------------------------------------------------------------
PAGE_SIZE = 4 * KiB  # the smallest arm64 translation granule
RAM_ALIGN = 2 * MiB  # RAM pieces keep the Image's 2 MiB-aligned base possible
MIN_ADDRESS_WIDTH = 32  # ID_AA64MMFR0_EL1.PARange: 32 bits is the smallest
MAX_ADDRESS_WIDTH = 64
# The guest physical address width of a machine whose template and config name
# none: builds keep every range below 1 << 48 and verify checks a blob against
# the same (ARMv8.0's largest PARange; booting.rst's flags bit 3 "48-bit
# addressable range").
DEFAULT_ADDRESS_WIDTH = 48

# -- arm,gic-v3.yaml / arm,gic.yaml ------------------------------------------------------
PPI_INTID_BASE = 16  # INTIDs 16..31 are PPIs, 32..1019 SPIs
SPI_INTID_BASE = 32
SPI_MAX = 987  # arm,gic-v3.yaml: "SPI interrupts are in the range [0-987]"
PPI_MAX = 15

CELL_TYPE_SPI = 0
CELL_TYPE_PPI = 1


class Trigger(enum.IntEnum):
    """The flags cell (bits 3:0), per the GIC bindings."""

    EDGE_RISING = 1
    EDGE_FALLING = 2
    LEVEL_HIGH = 4
    LEVEL_LOW = 8

    @property
    def label(self) -> str:
        """How templates and reports spell it: ``edge-rising``, ``level-high``, ..."""
        return _TRIGGER_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Trigger:
        try:
            return cls[text.upper().replace("-", "_")]
        except KeyError:
            names = ", ".join(t.label for t in cls)
            raise IrqError(f"trigger {text!r} is not one of {names}") from None


_TRIGGER_LABELS = {t: t.name.lower().replace("_", "-") for t in Trigger}  # spelled once

GICV3_REDIST_FRAME = 64 * KiB  # arm,gic-v3.yaml redistributor-stride: a multiple of 64 KiB
GICV3_REDIST_STRIDE = 2 * GICV3_REDIST_FRAME  # RD_base + SGI_base (a GICv4 adds VLPI + reserved)
GICV2_MAX_VCPUS = 8  # arm,gic.yaml: the PPI CPU mask (flags bits 15:8) has 8 bits
GICV2M_MAX_INTID = 1019  # the last SPI INTID a v2m frame may signal

# The smallest frame of each GIC part: its register map, as KVM maps it at the
# address a VMM gives (arch/arm64/include/uapi/asm/kvm.h, torvalds/linux
# 38c26bdb3cc5). The bindings state no minimum; the examples in arm,gic-v3.yaml
# (torvalds/linux 0b2333183ade) and arm,gic.yaml's GICv2 ones (1226c72a32a8) use
# these sizes (its GICv1 example has a 0x100-byte CPU interface).
GICV3_DIST_MIN_SIZE = 64 * KiB  # KVM_VGIC_V3_DIST_SIZE (SZ_64K)
GICV3_ITS_MIN_SIZE = 128 * KiB  # KVM_VGIC_V3_ITS_SIZE (2 * SZ_64K): control + translation
GICV2_DIST_MIN_SIZE = 4 * KiB  # KVM_VGIC_V2_DIST_SIZE (0x1000)
GICV2_CPU_MIN_SIZE = 8 * KiB  # KVM_VGIC_V2_CPU_SIZE (0x2000): GICC_DIR is at 0x1000
# drivers/irqchip/irq-gic-v2m.c (torvalds/linux 037dd1308c6d) reads MSI_IIDR at
# 0xFCC and maps an ACPI-described frame as SZ_4K.
GICV2M_MIN_SIZE = 4 * KiB
# The last register Linux touches in each GIC part a blob describes, as
# (register, offset, where): fdtgen verify wants each part's reg to reach past
# it. Offsets from include/linux/irqchip/arm-gic-v3.h (torvalds/linux
# 05909cd9a0c8) and the drivers named; its_probe_one (torvalds/linux
# c441bfb5f286) maps 64 KiB of the ITS whatever its reg says. Shipped DTBs give
# a v2m frame 0xFFD bytes (qcom ipq6018, ipq8074): enough.
GIC_REGISTER_BYTES = 4
LINUX_LAST_REGISTER = {
    "GICv3 distributor": ("GICD_PIDR2", 0xFFE8, "irq-gic-v3.c gic_validate_dist_version"),
    "ITS": ("GITS_PIDR2", 0xFFE8, "irq-gic-v3-its.c its_probe_one, which maps 64 KiB"),
    "GICv2 distributor": ("GICD_SGIR", 0xF00, "irq-gic.c, which raises IPIs there"),
    "v2m frame": ("MSI_IIDR", 0xFCC, "irq-gic-v2m.c gicv2m_init_one"),
}

# -- pci/host-generic-pci.yaml, pci-bus-common.yaml, IEEE 1275 PCI binding --------------
ECAM = "pci-host-ecam-generic"
CAM = "pci-host-cam-generic"
PCIE_COMPATIBLES = (ECAM, CAM)
# Configuration space per bus: ECAM "bus << 20", CAM "bus << 16" (host-generic-pci.yaml).
BUS_CONFIG_SIZE = {ECAM: 1 * MiB, CAM: 64 * KiB}
BUS_MAX = 255  # pci-bus-common.yaml bus-range "maximum: 255"
NODE_NAMES = ("pcie", "pci")  # pci-bus-common.yaml $nodename: "^pcie?@"
PCI_IO_LIMIT = 16 * MiB  # arm64 asm/memory.h PCI_IO_SIZE: the I/O space Linux maps
MEM32_LIMIT = 4 * GiB  # a 32-bit memory window (space code 10) ends below 4 GiB
RID_SPACE = 0x1_0000  # requester IDs: bus << 8 | devfn, 16 bits (pci-msi.txt msi-map)
# phys.hi of a ranges entry (IEEE 1275 PCI binding, "npt000ss bbbbbbbb dddddfff rrrrrrrr").
SPACE_IO = 0x0100_0000  # ss = 01
SPACE_MEM32 = 0x0200_0000  # ss = 10
SPACE_MEM64 = 0x0300_0000  # ss = 11
PREFETCHABLE = 0x4000_0000  # p
INTX_PINS = 4  # INTA..INTD
SLOTS = 32  # device numbers 0..31 on a bus (phys.hi "ddddd")

# -- virtio spec, "MMIO Device Register Layout" -----------------------------------------
VIRTIO_MMIO_MIN_SIZE = 0x200  # registers up to 0x0fc, device-specific config from 0x100

# -- arm,arch_timer.yaml -----------------------------------------------------------------
TIMER_NAMES = ("sec-phys", "phys", "virt", "hyp-phys", "hyp-virt")  # interrupt-names, in order
# Without interrupt-names the PPIs are found by position: secure, non-secure,
# virtual, hypervisor, and (newer) hypervisor virtual.
TIMER_PPIS_UNNAMED = (4, 5)

# -- arch/arm64/include/uapi/asm/setup.h -------------------------------------------------
# The kernel keeps this many bytes of /chosen/bootargs, its NUL included, and
# silently drops the rest.
COMMAND_LINE_SIZE = 2048

# -- chosen.yaml -------------------------------------------------------------------------
RNG_SEED_MAX = 1024  # bytes fdtgen reserves at most; QEMU writes 32, Firecracker 64, crosvm 256
KASLR_SEED_SIZE = 8  # kaslr-seed is a uint64
