"""Every built-in template: its map against the VMM's documented values, its
output against dtc/libfdt/fdt and a golden file, and the RAM, GIC and device
options the templates need.

The expected values below are retyped from each VMM's source (named in the
template file and in docs/templates.md), so a template is checked against its
source, not against itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fdtgen.devicetree.machine import Machine, Topology
from fdtgen.errors import ConfigError, FdtgenError, TemplateError
from fdtgen.fdt.dts import to_dts
from fdtgen.fdt.tree import unit_name
from fdtgen.irq import Intid, Ppi, Spi
from fdtgen.pipeline import build
from fdtgen.ranges import Range
from fdtgen.spec import Trigger
from fdtgen.template.devices import CLOCK_REF
from fdtgen.template.load import builtin_names, load_template, templates_dir
from fdtgen.template.model import DeviceSpec
from fdtgen.template.registry import (
    DEVICE_KINDS,
    FW_CFG,
    KINDS,
    PL061,
    UART_KINDS,
    VIRTIO_MMIO,
    check_registry,
    layout_kinds,
    needs_apb_clock,
)
from fdtgen.units import GiB, KiB, MiB

from .conftest import ROOT
from .test_dtb import check_against_references

BUILTIN = [
    "cloud-hypervisor",
    "crosvm",
    "firecracker",
    "firecracker-pci",
    "kvmtool",
    "libkrun",
    "openvmm",
    "qemu-virt",
    "qemu-virt-gicv2",
    "qemu-virt-its-off",
    "squib",
]

# (tag -> (base, size)) for the pinned regions, and the wiring, per VMM.
DOCUMENTED = {
    "qemu-virt": {  # hw/arm/virt.c base_memmap / a15irqmap
        "regions": {
            "flash": (0, 0x0800_0000),
            "gic-dist": (0x0800_0000, 0x1_0000),
            "gic-its": (0x0808_0000, 0x2_0000),
            "gic-redist": (0x080A_0000, 0xF6_0000),
            "uart0": (0x0900_0000, 0x1000),
            "rtc": (0x0901_0000, 0x1000),
            "fw-cfg": (0x0902_0000, 0x18),
            "gpio": (0x0903_0000, 0x1000),
            "virtio": (0x0A00_0000, 32 * 0x200),
            "platform-bus": (0x0C00_0000, 0x0200_0000),
            "dram": (0x4000_0000, 255 * GiB),
            "gic-redist2": (256 * GiB, 64 * MiB),
            # VIRT_PCIE_MMIO, VIRT_PCIE_PIO, VIRT_HIGH_PCIE_ECAM, VIRT_HIGH_PCIE_MMIO
            "pcie-mmio32": (0x1000_0000, 0x2EFF_0000),
            "pcie-io": (0x3EFF_0000, 0x1_0000),
            "pcie-ecam": (256 * GiB + 256 * MiB, 256 * MiB),
            "pcie-mmio64": (512 * GiB, 512 * GiB),
        },
        "spis": {"uart0": 1, "rtc": 2, "gpio": 7, "virtio-0": 16, "virtio-31": 47},
        "max_vcpus": 512,
        "gic_spis": 256,  # virt.c NUM_IRQS (num-irq = NUM_IRQS + 32)
    },
    "qemu-virt-its-off": {  # -M virt,its=off: the same map without an ITS
        "regions": {
            "gic-dist": (0x0800_0000, 0x1_0000),
            "gic-redist": (0x080A_0000, 0xF6_0000),
            "uart0": (0x0900_0000, 0x1000),
            "pcie-mmio32": (0x1000_0000, 0x2EFF_0000),
            "pcie-ecam": (256 * GiB + 256 * MiB, 256 * MiB),
            "pcie-mmio64": (512 * GiB, 512 * GiB),
        },
        "spis": {"uart0": 1, "rtc": 2, "gpio": 7, "virtio-0": 16},
        "max_vcpus": 512,
        "gic_spis": 256,
    },
    "qemu-virt-gicv2": {
        "regions": {
            "gic-dist": (0x0800_0000, 0x1_0000),
            "gic-cpu": (0x0801_0000, 0x1_0000),
            "gic-v2m": (0x0802_0000, 0x1000),
            "uart0": (0x0900_0000, 0x1000),
            "virtio": (0x0A00_0000, 32 * 0x200),
            "dram": (0x4000_0000, 255 * GiB),
        },
        "spis": {"uart0": 1, "rtc": 2, "gpio": 7, "virtio-0": 16},
        "max_vcpus": 8,
        "gic_spis": 256,
    },
    "firecracker": {  # layout.rs, gic/gicv3/mod.rs
        "regions": {
            "gic-dist": (0x4000_0000 - 0x1_0000, 0x1_0000),  # MMIO32_MEM_START - DIST_SIZE
            "boot-timer": (0x4000_0000, 0x1000),
            "rtc": (0x4000_1000, 0x1000),
            "uart0": (0x4000_2000, 0x1000),
            "virtio": (0x4000_3000, 32 * 0x1000),
            "pci-ecam": (0x8000_0000 - 256 * MiB, 256 * MiB),
            "vmclock": (0x801F_E000, 0x1000),  # vmclock.rs: LastMatch, 4 KiB aligned
            "vmgenid": (0x801F_FFF0, 16),  # vmgenid.rs: LastMatch, 8-byte aligned
            "dram": (0x8020_0000, 256 * GiB - 0x8020_0000),
            "dram1": (512 * GiB, 768 * GiB),
        },
        # builder.rs: virtio first (GSI i), then serial, RTC, vmgenid, vmclock
        "spis": {"virtio-0": 0, "uart0": 32, "vmgenid": 34, "vmclock": 35},
        "max_vcpus": 32,
        "gic_spis": 96,  # nr_irqs = GSI_LEGACY_NUM (SPI_END 127 - SPI_START 32 + 1) + 32
        "redist_below_dist": True,
    },
    "firecracker-pci": {  # --enable-pci: layout.rs, fdt.rs create_pci_nodes, pci_segment.rs
        "regions": {
            "gic-dist": (0x4000_0000 - 0x1_0000, 0x1_0000),
            "boot-timer": (0x4000_0000, 0x1000),
            "rtc": (0x4000_1000, 0x1000),
            "uart0": (0x4000_2000, 0x1000),
            "pcie-mmio32": (0x4000_3000, 0x7000_0000 - 0x4000_3000),  # MEM_32BIT_DEVICES
            "pcie-ecam": (0x7000_0000, 1 * MiB),  # segment 0 of PCI_MMCONFIG_START
            "pci-ecam": (0x7010_0000, 255 * MiB),
            "vmclock": (0x801F_E000, 0x1000),
            "vmgenid": (0x801F_FFF0, 16),
            "dram": (0x8020_0000, 256 * GiB - 0x8020_0000),
            "pcie-mmio64": (256 * GiB, 256 * GiB),  # MEM_64BIT_DEVICES
            "dram1": (512 * GiB, 768 * GiB),
        },
        "holes": {"mmio64": (256 * GiB, 256 * GiB)},
        # virtio-pci takes no legacy GSI: serial, RTC, vmgenid, vmclock from 0
        "spis": {"uart0": 0, "vmgenid": 2, "vmclock": 3},
        "max_vcpus": 32,
        "gic_spis": 96,
        "redist_below_dist": True,
    },
    "cloud-hypervisor": {  # arch/src/aarch64/layout.rs
        "regions": {
            "uefi-flash": (0, 0x40_0000),
            "gic-dist": (0x0900_0000 - 0x1_0000, 0x1_0000),
            "uart0": (0x0900_0000, 0x1000),
            "rtc": (0x0901_0000, 0x1000),
            "gpio": (0x0902_0000, 0x1000),
            "pcie-io": (0x0905_0000, 0x1_0000),  # MEM_PCI_IO_START
            "pcie-mmio32": (0x1000_0000, 0x2000_0000),  # MEM_32BIT_DEVICES_START
            "pcie-ecam": (0x3000_0000, 1 * MiB),  # segment 0 of PCI_MMCONFIG_START
            "pci-ecam": (0x3010_0000, 255 * MiB),
            "dram": (0x4000_0000, 0xFC00_0000 - 0x4000_0000),
        },
        "holes": {"mem32-reserved": (0xFC00_0000, 0x0400_0000)},
        "spis": {"rtc": 0, "gpio": 1, "uart0": 3},  # RTC, GPIO, GED, serial
        "max_vcpus": 254,
        "gic_spis": 224,  # nr_irqs = IRQ_NUM 256
        "redist_below_dist": True,
    },
    "crosvm": {  # aarch64/src/lib.rs
        "regions": {
            "uart0": (0x3F8, 8),
            "rtc": (0x2000, 0x1000),
            "pcie-cam": (0x1_0000, 16 * MiB),  # AARCH64_PCI_CAM_BASE_DEFAULT
            "pcie-mmio32": (0x0200_0000, 32 * MiB),  # AARCH64_PCI_MEM_BASE_DEFAULT
            "gic-dist": (0x4000_0000 - 0x1_0000, 0x1_0000),
            "vmwdt": (0x3000, 0x1000),
            "pvtime": (0x01FF_0000, 0x1_0000),
            "com2": (0x2F8, 8),
            "dram": (0x8000_0000, 0x100_0000_0000 - 0x8000_0000),
        },
        "spis": {"uart0": 0, "rtc": 1, "com2": 2, "com3": 0, "com4": 2},
        "max_vcpus": 64,
        "gic_spis": 32,  # devices/src/irqchip/kvm/aarch64.rs AARCH64_GIC_NR_SPIS
        "redist_below_dist": True,
    },
    "kvmtool": {  # arm/include/arm-common/kvm-arch.h
        "regions": {
            "uart0": (0x0100_0000, 8),
            "serial3": (0x0100_3000, 8),
            "rtc": (0x0101_0000, 2),
            "flash": (0x0200_0000, 16 * MiB),
            "virtio": (0x0300_0000, 32 * 0x200),
            "gic-dist": (0x4000_0000 - 0x1_0000, 0x1_0000),
            "pcie-ecam": (0x4000_0000, 256 * MiB),  # KVM_PCI_CFG_AREA
            "pcie-io": (0, 64 * KiB),  # KVM_IOPORT_AREA
            "pcie-mmio32": (0x5000_0000, 0x3000_0000),  # KVM_PCI_MMIO_AREA
            "dram": (0x8000_0000, 0x100_0000_0000 - 0x8000_0000),
        },
        "spis": {"uart0": 0, "serial1": 1, "serial3": 3, "virtio-0": 4},
        "max_vcpus": 255,
        "gic_spis": 64,  # ALIGN(4 16550s + 32 virtio lines, 32)
        "redist_below_dist": True,
    },
    "libkrun": {  # src/arch/src/aarch64/layout.rs
        "regions": {
            "gic-dist": (0x0A00_0000 - 0x1_0000, 0x1_0000),
            "uart0": (0x0A00_1000, 0x1000),  # MMIO_START + 4 KiB
            "rtc": (0x0A00_2000, 0x1000),
            "virtio": (0x0A00_3000, 32 * 0x1000),
            "dram": (0x8000_0000, 0xFF_8000_0000 - 0x8000_0000),
        },
        "spis": {"uart0": 32, "rtc": 33, "virtio-0": 34},
        "max_vcpus": 32,
        "gic_spis": 96,  # nr_irqs = IRQ_MAX 159 - IRQ_BASE 32 + 1 = 128
        "redist_below_dist": True,
    },
    "openvmm": {  # memory_layout.rs, loader/src/linux.rs
        "regions": {
            "iommufd-msi": (128 * MiB, 1 * MiB),
            "dram": (1 * GiB, 0xE000_0000 - 128 * KiB - 1 * GiB),
            # Mmio32, top-down below the 512 MiB chipset low MMIO window
            "virtio": (0xE000_0000 - 128 * KiB, 128 * KiB),
            "gic-its": (0xEFFC_0000, 0x2_0000),
            "uart0": (0xEFFE_C000, 0x1000),
            "uart1": (0xEFFE_B000, 0x1000),
            "gic-redist": (0xEFFF_0000, 0x1000_0000),
            "gic-dist": (0xFFFF_0000, 0x1_0000),
            "dram1": (4 * GiB, 0x100_0000_0000 - 4 * GiB),
        },
        "holes": {"chipset-low-mmio": (0xE000_0000, 512 * MiB)},
        "spis": {"uart0": 1, "uart1": 2},
        "max_vcpus": 2048,
        "gic_spis": 960,  # openvmm_defs DEFAULT_GIC_NR_IRQS 992
    },
    "squib": {  # squib_arch/src/layout.rs (also tests/test_layout.py)
        "regions": {
            "msi": (0x0500_0000, 16 * MiB),
            "gic-dist": (0x0800_0000, 0x1_0000),
            "gic-redist": (0x080A_0000, 96 * MiB),
            "uart0": (0x0E0A_0000, 0x1000),
            "virtio": (0x0F00_0000, 32 * 0x1000),
            "dram": (0x8000_0000, 0x00FF_8000_0000),
        },
        "spis": {"uart0": 1, "virtio-0": 16},
        "max_vcpus": 32,
    },
}


def golden_machine(name: str) -> Machine:
    """A machine that uses every slot the template has, with RAM crossing 4 GiB."""
    t = load_template(name)
    return Machine(template=name, vcpus=min(4, t.max_vcpus), memory=4 * GiB, virtio=t.virtio.slots)


def spi_of(name: str, tag: str) -> Spi:
    t = load_template(name)
    if tag == "uart0":
        return t.uart.spi
    if tag.startswith("virtio-"):
        return Spi(t.virtio.first_spi.number + int(tag.split("-")[1]))
    return next(d.spi for d in t.devices if d.tag == tag)


def test_every_builtin_template_is_covered_here():
    assert builtin_names() == BUILTIN == sorted(DOCUMENTED)


@pytest.mark.parametrize("name", BUILTIN)
def test_pinned_map_matches_the_vmms_documented_values(name):
    t = load_template(name)
    doc = DOCUMENTED[name]
    regions = {r.tag: (r.range.base, r.range.size) for r in t.pinned_regions()}
    for tag, expected in doc["regions"].items():
        assert regions.get(tag) == expected, f"{name}: {tag} {regions.get(tag)} != {expected}"
    holes = {h.tag: (h.range.base, h.range.size) for h in t.ram_holes}
    for tag, expected in doc.get("holes", {}).items():
        assert holes[tag] == expected
    for tag, spi in doc["spis"].items():
        assert spi_of(name, tag) == Spi(spi), f"{name}: {tag}"
    assert t.max_vcpus == doc["max_vcpus"]
    # squib's count is Hypervisor.framework's, read at run time: the template gives none.
    assert t.gic.spis == doc.get("gic_spis"), f"{name}: gic.spis"
    if doc.get("redist_below_dist"):
        # "GICR below GICD, vcpus x 128 KiB": the live frames end at the distributor.
        for vcpus in (1, t.max_vcpus):
            layout = build(Machine(template=name, vcpus=vcpus, virtio=0)).layout
            assert layout.gic_redist == (
                Range(t.gic.dist.base - vcpus * 128 * KiB, vcpus * 128 * KiB),
            )
            if t.gic.its_below_redist:
                assert layout.its == Range(layout.gic_redist[0].base - 128 * KiB, 128 * KiB)


@pytest.mark.parametrize("name", BUILTIN)
def test_template_output_matches_dtc_libfdt_fdt_and_its_golden_files(name, golden, dtc):
    b = build(golden_machine(name))
    check_against_references(dtc, b.tree, b.blob)
    golden(f"{name}.dtb", b.blob)
    golden(f"{name}.dts", to_dts(b.tree).encode())


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("vcpus", [1, 8])
def test_templates_pass_the_references_at_other_sizes(name, vcpus, dtc):
    t = load_template(name)
    b = build(
        Machine(
            template=name,
            vcpus=min(vcpus, t.max_vcpus),
            memory=256 * MiB,
            virtio=min(3, t.virtio.slots),
        )
    )
    check_against_references(dtc, b.tree, b.blob)


def test_template_output_is_identical_under_any_hash_seed():
    code = (
        "import sys; from fdtgen.devicetree.machine import Machine; "
        "from fdtgen.pipeline import build; "
        "sys.stdout.buffer.write(b''.join("
        "build(Machine(template=n, memory=4 << 30, virtio=0)).blob "
        "for n in ('qemu-virt', 'openvmm', 'cloud-hypervisor')))"
    )
    blobs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("0", "1", "4242")
    }
    assert len(blobs) == 1


# -- nodes that break a binding in the VMM's own DT come out correct ---------


def _node(tree, pattern):
    return next(n for path, n in tree.root.walk() if re.fullmatch(pattern, path))


@pytest.mark.parametrize(
    "name", ["qemu-virt", "firecracker", "cloud-hypervisor", "kvmtool", "openvmm"]
)
def test_its_nodes_are_msi_controllers_with_one_msi_cell(name):
    its = _node(
        build(Machine(template=name, virtio=0)).tree,
        r"/interrupt-controller@[0-9a-f]+/msi-controller@[0-9a-f]+",
    )
    assert its.prop("compatible").as_strings() == ("arm,gic-v3-its",)
    assert its.prop("msi-controller") is not None
    assert its.prop("#msi-cells").as_cells() == (1,)


@pytest.mark.parametrize("name", ["cloud-hypervisor", "libkrun", "openvmm", "qemu-virt"])
def test_pl011_nodes_list_both_clocks(name):
    uart = _node(build(Machine(template=name, virtio=0)).tree, r"/serial@[0-9a-f]+")
    assert uart.prop("clock-names").as_strings() == ("uartclk", "apb_pclk")
    assert len(uart.prop("clocks").as_cells()) == 2


def test_libkrun_timer_uses_the_hypervisor_timer_ppi_10_not_12():
    timer = build(Machine(template="libkrun", virtio=0)).tree.root.find("/timer")
    assert timer.prop("interrupts").as_cells()[9:] == (1, 10, 4)


@pytest.mark.parametrize("name", ["firecracker", "crosvm", "kvmtool"])
def test_16550_maps_describe_an_ns16550a_with_its_clock(name):
    t = load_template(name)
    uart = build(Machine(template=name, virtio=0)).tree.root.find(f"/serial@{t.uart.base:x}")
    assert uart.prop("compatible").as_strings() == ("ns16550a",)
    assert uart.prop("clock-frequency").as_cells() == (1_843_200,)
    assert uart.prop("reg").as_cells() == (0, t.uart.base, 0, t.uart.size)


# -- RAM placement options ---------------------------------------------------


def _memory(b):
    return [
        n.prop("reg").as_cells() for path, n in b.tree.root.walk() if path.startswith("/memory@")
    ]


def test_ram_is_split_around_cloud_hypervisors_hole_into_two_memory_nodes():
    b = build(Machine(template="cloud-hypervisor", memory=4 * GiB, virtio=0))
    low = 0xFC00_0000 - 0x4000_0000
    assert b.layout.ram == (Range(0x4000_0000, low), Range(4 * GiB, 4 * GiB - low))
    assert _memory(b) == [(0, 0x4000_0000, 0, low), (1, 0, 0, 4 * GiB - low)]


def test_small_ram_below_the_hole_is_one_range():
    b = build(Machine(template="cloud-hypervisor", memory=1 * GiB, virtio=0))
    assert b.layout.ram == (Range(0x4000_0000, 1 * GiB),)


def test_openvmm_ram_goes_around_the_virtio_block_the_allocator_placed():
    t = load_template("openvmm")
    b = build(Machine(template="openvmm", memory=4 * GiB, virtio=32))
    assert b.layout.ram[0] == Range(1 * GiB, t.virtio.window.base - 1 * GiB)
    assert b.layout.ram[1].base == 4 * GiB
    assert sum(r.size for r in b.layout.ram) == 4 * GiB


def test_ram_base_override_moves_ram_up():
    b = build(Machine(template="qemu-virt", ram_base=2 * GiB, memory=1 * GiB, virtio=0))
    assert b.layout.ram == (Range(2 * GiB, 1 * GiB),)
    assert _memory(b) == [(0, 2 * GiB, 0, 1 * GiB)]


@pytest.mark.parametrize(
    "ram_base, match",
    [
        pytest.param(
            0x100_0000,
            r"ram_base: 0x1000000 is outside the DRAM window \[0x40000000, .*\) of template "
            r"'qemu-virt'",
            id="below-dram",
        ),
        pytest.param(
            0x4010_0000, r"ram_base: 0x40100000 is not aligned to 0x200000", id="unaligned"
        ),
    ],
)
def test_bad_ram_base_is_rejected_with_its_value_in_hex(ram_base, match):
    with pytest.raises(ConfigError, match=match):
        build(Machine(template="qemu-virt", ram_base=ram_base))


def test_ram_base_inside_a_hole_is_rejected():
    with pytest.raises(
        ConfigError, match=r"ram_base: 0xfc000000 lies in the DRAM hole 'mem32-reserved'"
    ):
        build(Machine(template="cloud-hypervisor", ram_base=0xFC00_0000, virtio=0))


def test_address_width_bounds_every_live_range(tmp_path):
    # 36 bits (Apple M1 HVF): QEMU's second redistributor region at 256 GiB does not fit...
    with pytest.raises(
        ConfigError,
        match=r"address_width: region 'gic-redist2' \[0x4000000000, 0x4004000000\) ends past "
        r"the 36-bit",
    ):
        build(Machine(template="qemu-virt", vcpus=124, address_width=36))
    # ...nor does its PCIe configuration space above it (40 bits hold every window)...
    with pytest.raises(
        ConfigError,
        match=r"address_width: region 'pcie-ecam' \[0x4010000000, 0x4020000000\) ends past "
        r"the 36-bit",
    ):
        build(Machine(template="qemu-virt", address_width=36))
    assert build(Machine(template="qemu-virt", address_width=40)).layout.address_width == 40
    # ...and, on the board without its PCIe bridge, neither does RAM past 64 GiB...
    text = (templates_dir() / "qemu-virt.toml").read_text()
    start = text.index("[pcie]")
    no_pcie = tmp_path / "no-pcie.toml"
    no_pcie.write_text(text[:start] + text[text.index("[[rule]]", start) :])
    with pytest.raises(
        ConfigError,
        match=r"memory: 64 GiB .* ends at 0x1040000000, past the 36-bit guest physical address "
        r"limit 0x1000000000",
    ):
        build(Machine(template=str(no_pcie), memory=64 * GiB, address_width=36))
    # ...but 123 vCPUs and 63 GiB do.
    b = build(Machine(template=str(no_pcie), vcpus=123, memory=63 * GiB, address_width=36))
    assert max(r.range.end for r in b.layout.regions()) == 64 * GiB


def test_ram_past_the_dram_max_end_names_where_it_would_end():
    with pytest.raises(
        ConfigError,
        match=r"memory: .* ends at 0x10044000000 \(around the DRAM holes 'mem32-reserved'.*"
        r"past the DRAM max end 0x10000000000 of template 'cloud-hypervisor'",
    ):
        build(Machine(template="cloud-hypervisor", memory=0x100_0000_0000, virtio=0))


# -- GIC variants ------------------------------------------------------------


def test_two_redistributor_regions_past_123_vcpus():
    gic = build(Machine(template="qemu-virt", vcpus=200, virtio=0)).tree.root.find(
        "/interrupt-controller@8000000"
    )
    assert gic.prop("reg").as_cells() == (
        0,
        0x0800_0000,
        0,
        0x1_0000,
        0,
        0x080A_0000,
        0,
        0xF6_0000,
        0x40,
        0,
        0,
        0x400_0000,
    )
    assert gic.prop("#redistributor-regions").as_cells() == (2,)


def test_the_qemu_gicr_reg_covers_the_whole_window_whatever_the_vcpu_count():
    for vcpus in (1, 2, 123):
        layout = build(Machine(template="qemu-virt", vcpus=vcpus, virtio=0)).layout
        assert layout.gic_redist == (Range(0x080A_0000, 0xF6_0000),)


def _squib_variant(tmp_path: Path, old: str, new: str) -> str:
    text = (templates_dir() / "squib.toml").read_text()
    assert old in text
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new))
    return str(path)


def test_a_gicv2m_frame_under_gicv3_describes_an_hvf_msi_region(tmp_path, dtc):
    # squib's HVF MSI frame, described: the v2m registers are where GICM_* are.
    path = _squib_variant(
        tmp_path,
        "maintenance_ppi = 9               # INTID 25\n",
        "maintenance_ppi = 9               # INTID 25\n\n"
        '[gic.v2m]\nbase = 0x0500_0000\nsize = "64KiB"\n'
        "base_intid = 128\nnum_spis = 64\n",
    )
    text = (
        Path(path)
        .read_text()
        .replace('[[reserved]]\ntag = "msi"', '[[reserved]]\ntag = "msi-headroom"')
    )
    text = text.replace(
        'base = 0x0500_0000\nsize = "16MiB"\nalign', 'base = 0x0501_0000\nsize = "0xFF0000"\nalign'
    )
    text = text.replace('align = "16MiB"', 'align = "64KiB"')
    Path(path).write_text(text)
    b = build(Machine(template=path))
    check_against_references(dtc, b.tree, b.blob)
    v2m = b.tree.root.find("/interrupt-controller@8000000/v2m@5000000")
    assert v2m.prop("compatible").as_strings() == ("arm,gic-v2m-frame",)
    assert v2m.prop("arm,msi-base-spi").as_cells() == (128,)
    assert v2m.prop("arm,msi-num-spis").as_cells() == (64,)
    assert b.tree.root.find("/interrupt-controller@8000000").prop("compatible").as_strings() == (
        "arm,gic-v3",
    )


def test_v2m_spis_that_collide_with_a_device_are_rejected(tmp_path):
    path = _squib_variant(
        tmp_path,
        "maintenance_ppi = 9               # INTID 25\n",
        "maintenance_ppi = 9               # INTID 25\n\n"
        '[gic.v2m]\nbase = 0x0400_0000\nsize = "4KiB"\n'
        "base_intid = 64\nnum_spis = 64\n",
    )
    with pytest.raises(
        TemplateError, match=r"SPI 32 \(INTID 64\) is wired to both 'virtio-16' and 'gic-v2m'"
    ):
        load_template(path)


def test_qemus_gicv2m_range_is_kept_clear_but_left_out_of_the_dt(tmp_path):
    """QEMU's v2m frame signals SPIs 48..111 and its DT leaves them to MSI_TYPER:
    the blob has no arm,msi-base-spi, and a device moved into the range is refused."""
    t = load_template("qemu-virt-gicv2")
    assert t.gic.v2m is not None and [s.number for s in t.gic.v2m.spis()] == list(range(48, 112))
    root = build(Machine(template="qemu-virt-gicv2")).tree.root
    v2m = root.find("/interrupt-controller@8000000/v2m@8020000")
    assert v2m is not None
    assert v2m.prop("arm,msi-base-spi") is None and v2m.prop("arm,msi-num-spis") is None
    text = (ROOT / "templates" / "qemu-virt-gicv2.toml").read_text()
    old = "spi = 7                           # a15irqmap[VIRT_GPIO]"
    assert old in text
    (tmp_path / "mine.toml").write_text(text.replace(old, "spi = 50"))
    with pytest.raises(TemplateError, match=r"SPI 50 \(INTID 82\) is wired to both"):
        load_template(tmp_path / "mine.toml")


def test_gicv2_puts_the_cpu_mask_in_ppi_flags_and_lists_gicc():
    root = build(Machine(template="qemu-virt-gicv2", vcpus=3, virtio=0)).tree.root
    gic = root.find("/interrupt-controller@8000000")
    assert gic.prop("compatible").as_strings() == ("arm,cortex-a15-gic",)
    assert gic.prop("reg").as_cells() == (0, 0x0800_0000, 0, 0x1_0000, 0, 0x0801_0000, 0, 0x1_0000)
    assert gic.prop("#redistributor-regions") is None
    assert root.find("/timer").prop("interrupts").as_cells()[:3] == (1, 13, 0x704)
    assert root.find("/pmu").prop("interrupts").as_cells() == (1, 7, 0x704)


def test_gicv2_allows_at_most_8_vcpus():
    with pytest.raises(ConfigError, match=r"vcpus: 9 is outside 1..8"):
        build(Machine(template="qemu-virt-gicv2", vcpus=9))


def test_a_gicv2_template_with_more_than_8_vcpus_is_rejected_at_load(tmp_path):
    text = (
        (templates_dir() / "qemu-virt-gicv2.toml")
        .read_text()
        .replace("max_vcpus = 8 ", "max_vcpus = 9 ")
    )
    (tmp_path / "v2.toml").write_text(text)
    with pytest.raises(TemplateError, match=r"max_vcpus 9 is more than 8, the GICv2 limit"):
        load_template(str(tmp_path / "v2.toml"))


GIC_MINIMUMS = [
    pytest.param(
        "qemu-virt",
        'dist_size = "64KiB"',
        'dist_size = "32KiB"',
        "gic.dist_size: 0x8000: must be at least 0x10000 (the GICv3 distributor's register "
        "frame; KVM_VGIC_V3_DIST_SIZE)",
        id="gicv3-dist",
    ),
    pytest.param(
        "qemu-virt",
        '[gic.its]\nbase = 0x0808_0000                # VIRT_GIC_ITS\nsize = "128KiB"',
        '[gic.its]\nbase = 0x0808_0000\nsize = "64KiB"',
        "gic.its.size: 0x10000: must be at least 0x20000 (an ITS is two 64 KiB frames, "
        "control and translation; KVM_VGIC_V3_ITS_SIZE)",
        id="gicv3-its",
    ),
    pytest.param(
        "qemu-virt-gicv2",
        'dist_size = "64KiB"',
        'dist_size = "2KiB"',
        "gic.dist_size: 0x800: must be at least 0x1000 (the GICv2 distributor's register map; "
        "KVM_VGIC_V2_DIST_SIZE)",
        id="gicv2-dist",
    ),
    pytest.param(
        "qemu-virt-gicv2",
        'cpu_size = "64KiB"',
        'cpu_size = "4KiB"',
        "gic.cpu_size: 0x1000: must be at least 0x2000 (the GICv2 CPU interface is two 4 KiB "
        "pages, GICC_DIR at 0x1000; KVM_VGIC_V2_CPU_SIZE)",
        id="gicv2-cpu",
    ),
    pytest.param(
        "qemu-virt-gicv2",
        'base = 0x0802_0000                # VIRT_GIC_V2M\nsize = "4KiB"',
        'base = 0x0802_0000                # VIRT_GIC_V2M\nsize = "2KiB"',
        "gic.v2m.size: 0x800: must be at least 0x1000 (the v2m frame's registers run to "
        "MSI_IIDR at 0xfcc; Linux irq-gic-v2m.c)",
        id="v2m",
    ),
]


# [gic] spis: the SPIs the VMM's GIC implements. A bad value, and an SPI the
# template hands out past the last one, are refused with one line.
SQUIB_SPIS = "maintenance_ppi = 9               # INTID 25\n"
GIC_SPIS = [
    pytest.param(
        "crosvm",
        "spis = 32 ",
        "spis = 0 ",
        "gic.spis: 0: must be in 1..988 (SPIs 0..spis-1 exist; the binding's last is 987)",
        id="zero",
    ),
    pytest.param(
        "crosvm",
        "spis = 32 ",
        "spis = 989 ",
        "gic.spis: 989: must be in 1..988 (SPIs 0..spis-1 exist; the binding's last is 987)",
        id="past-the-binding",
    ),
    pytest.param(
        "crosvm",
        "spis = 32 ",
        "spis = 32.0 ",
        "gic.spis: 32.0: expected an integer",
        id="not-an-integer",
    ),
    pytest.param(
        "qemu-virt",
        "spis = 256 ",
        "spis = 7 ",
        "'gpio' is wired to SPI 7 (INTID 39), past the GIC's last SPI 6 "
        "(gic.spis = 7: the VMM's GIC implements SPIs 0..6)",
        id="pinned-device",
    ),
    pytest.param(
        "squib",
        SQUIB_SPIS,
        SQUIB_SPIS + "spis = 40\n",
        "'virtio-24' is wired to SPI 40 (INTID 72), past the GIC's last SPI 39 "
        "(gic.spis = 40: the VMM's GIC implements SPIs 0..39)",
        id="virtio-slot",
    ),
    pytest.param(
        "crosvm",
        "spis = 32 ",
        "spis = 31 ",
        "'pcie-intx' is wired to SPI 31 (INTID 63), past the GIC's last SPI 30 "
        "(gic.spis = 31: the VMM's GIC implements SPIs 0..30)",
        id="pcie-intx",
    ),
    pytest.param(
        "firecracker",
        "spis = 96 ",
        "spis = 33 ",
        "'rtc' is wired to SPI 33 (INTID 65) with every virtio slot and a console "
        "([irq] order), past the GIC's last SPI 32 "
        "(gic.spis = 33: the VMM's GIC implements SPIs 0..32)",
        id="attach-order",
    ),
    pytest.param(
        "qemu-virt-gicv2",
        "base_intid = 80                   # SPI 48\nnum_spis = 64\n",
        "",
        "gic.v2m.describe_spis: says how base_intid and num_spis are written; give them",
        id="describe-spis-without-them",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "message"), GIC_MINIMUMS + GIC_SPIS)
def test_a_gic_the_vmm_cannot_have_is_refused_at_load(tmp_path, name, old, new, message):
    """A GIC frame below its register map, a bad [gic] spis or an SPI past it, a
    v2m range whose description is asked about but not given."""
    text = (templates_dir() / f"{name}.toml").read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "mine.toml"
    path.write_text(text.replace(old, new))
    with pytest.raises(TemplateError) as err:
        load_template(str(path))
    assert str(err.value) == f"{path}: {message}"


def test_the_gics_last_spi_is_usable_and_988_spis_are_allowed(tmp_path):
    crosvm = load_template("crosvm")  # PCI INTx runs up to SPI 31, the last of its 32
    assert crosvm.pcie.intx_spis()[-1].number == crosvm.gic.spis - 1
    text = (templates_dir() / "crosvm.toml").read_text()
    (tmp_path / "mine.toml").write_text(text.replace("spis = 32 ", "spis = 988 "))
    assert load_template(str(tmp_path / "mine.toml")).gic.spis == 988


def test_gic_frames_of_exactly_their_minimum_size_load(tmp_path):
    text = (templates_dir() / "qemu-virt-gicv2.toml").read_text()
    for old, new in (
        ('dist_size = "64KiB"', 'dist_size = "4KiB"'),
        ('cpu_size = "64KiB"', 'cpu_size = "8KiB"'),
    ):
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "v2.toml").write_text(text)
    g = load_template(str(tmp_path / "v2.toml")).gic
    assert (g.dist.size, g.cpu_if.size, g.v2m.range.size) == (4 * KiB, 8 * KiB, 4 * KiB)


@pytest.mark.parametrize(
    ("line", "value", "match"),
    [
        ('dtb = "below:256MiB"', "below:0", r"boot\.dtb: 'below:0': 0x0 leaves no whole 0x200000"),
        ('dtb = "below:256MiB"', "below:1MiB", r"boot\.dtb: 'below:1MiB': 0x100000 leaves no"),
        ('initrd = "below-dtb"', "after-kernel-align:0", r"boot\.initrd: .*: 0x0 is not a power"),
        ('initrd = "below-dtb"', "after-kernel-align:3KiB", r"0xc00 is not a power of two"),
    ],
)
def test_a_boot_policy_without_room_or_with_a_bad_alignment_is_rejected_at_load(
    tmp_path, line, value, match
):
    text = (templates_dir() / "kvmtool.toml").read_text()
    assert line in text
    (tmp_path / "k.toml").write_text(text.replace(line, f"{line.split('=')[0]}= {value!r}"))
    with pytest.raises(TemplateError, match=match) as e:
        load_template(str(tmp_path / "k.toml"))
    assert str(e.value).startswith(str(tmp_path / "k.toml"))


# -- devices -----------------------------------------------------------------


def test_qemu_virt_devices_rtc_gpio_power_key_pmu_and_fw_cfg():
    root = build(Machine(template="qemu-virt", virtio=0)).tree.root
    rtc = root.find("/rtc@9010000")
    assert rtc.prop("compatible").as_strings() == ("arm,pl031", "arm,primecell")
    assert rtc.prop("interrupts").as_cells() == (0, 2, Trigger.LEVEL_HIGH)
    gpio = root.find("/gpio@9030000")
    assert gpio.prop("#gpio-cells").as_cells() == (2,) and gpio.prop("gpio-controller") is not None
    button = root.find("/gpio-keys/power-button")
    assert button.prop("linux,code").as_cells() == (116,)
    assert button.prop("gpios").as_cells() == (gpio.prop("phandle").as_cells()[0], 3, 0)
    assert root.find("/pmu").prop("interrupts").as_cells() == (1, Ppi(7).number, 4)
    assert Ppi(7).intid == Intid(23)
    assert root.find("/fw-cfg@9020000").prop("reg").as_cells() == (0, 0x0902_0000, 0, 0x18)


def test_firecrackers_rtc_has_no_interrupt():
    rtc = build(Machine(template="firecracker", virtio=0)).tree.root.find("/rtc@40001000")
    assert rtc.prop("interrupts") is None and rtc.prop("clocks") is not None


# -- the device registry -------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN)
def test_every_device_a_template_names_has_a_registry_entry_for_its_table(name):
    t = load_template(name)
    assert KINDS[t.uart.kind].table == "uart"
    assert all(KINDS[d.kind].table in ("device", "uart") for d in t.devices)
    layout = build(Machine(template=name, virtio=t.virtio.slots)).layout
    kinds = layout_kinds(t)
    assert {d.kind for d in (*layout.devices, *layout.unwired)} <= set(kinds)
    assert kinds["uart"] is KINDS[t.uart.kind] and kinds["virtio"] is VIRTIO_MMIO


def test_the_template_vocabulary_is_the_registrys():
    assert UART_KINDS == ("pl011", "ns16550a")
    assert (
        "pl031",
        "pl030",
        "mc146818",
        "pl061",
        "fw-cfg",
        "vmgenid",
        "vmclock",
        "vcpu-stall-detector",
        *UART_KINDS,
    ) == DEVICE_KINDS
    assert set(KINDS) == {*UART_KINDS, *DEVICE_KINDS, VIRTIO_MMIO.name}


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
@pytest.mark.parametrize("spi", [Spi(5), None], ids=["wired", "unwired"])
def test_each_kinds_node_carries_its_name_compatibles_clock_and_interrupt(kind, spi):
    t = load_template("qemu-virt")
    d = DeviceSpec("dev", kind.name, 0x1234_5000, 0x1000, spi, Trigger.EDGE_RISING)
    node = kind.build(d, t)
    assert node.name == f"{kind.node_name}@12345000"
    assert node.prop("compatible").as_strings() == kind.compatible
    assert kind.recognised_by == kind.compatible[0]
    assert node.prop("reg").as_cells() == (0, 0x1234_5000, 0, 0x1000)
    clocks = node.prop("clocks")
    assert (clocks is not None) == kind.apb_clock
    if clocks is not None:
        assert set(clocks.as_cells()) == {CLOCK_REF.phandle}
    if spi is None or kind is FW_CFG or kind.name == "vcpu-stall-detector":  # no SPI
        assert node.prop("interrupts") is None
    else:
        assert node.prop("interrupts").as_cells() == (0, 5, Trigger.EDGE_RISING)


@pytest.mark.parametrize("name", BUILTIN)
def test_each_device_node_is_found_by_its_kinds_compatible(name):
    t = load_template(name)
    b = build(Machine(template=name, virtio=t.virtio.slots))
    kinds = layout_kinds(t)
    for d in (*b.layout.devices, *b.layout.unwired):
        kind = kinds[d.kind]
        node = b.tree.root.find("/" + unit_name(kind.node_name, d.range.base))
        assert node is not None, d.tag
        assert node.prop("compatible").as_strings()[0] == kind.recognised_by
    assert (b.tree.root.find("/apb-pclk") is not None) == needs_apb_clock(t)


def test_the_docs_list_every_device_kind_as_the_registry_describes_it():
    text = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    lines = text[text.index("<!-- device-kinds -->") :].splitlines()[3:]
    rows = {}
    for line in lines:
        if not line.startswith("|"):
            break
        kind, table, node, compatible, clock, qemu = (
            c.strip().replace("`", "") for c in line.strip("|").split("|")
        )
        rows[kind] = (table.strip("[]"), node.split("@")[0], compatible.split(", "), clock, qemu)
    assert list(rows) == list(KINDS)
    for name, (table, node, compatible, clock, qemu) in rows.items():
        k = KINDS[name]
        assert (table, node, tuple(compatible)) == (k.table, k.node_name, k.compatible), name
        assert clock == ("yes" if k.apb_clock else "no"), name
        if k.qemu is not None:
            base = int(re.search(r"0x[0-9A-F_]+", qemu).group().replace("_", ""), 16)
            assert qemu.startswith(k.qemu.name + " at ") and base == k.qemu.range.base, name
            spi = "no interrupt" if k.qemu.spi is None else f"SPI {k.qemu.spi.number}"
            assert qemu.endswith(spi), name
        else:
            assert " at 0x" not in qemu, name


def test_a_pl061_with_a_power_key_is_the_only_kind_that_adds_a_root_node():
    assert [k.name for k in KINDS.values() if k.root_node is not None] == [PL061.name]
    t = load_template("qemu-virt")
    gpio = next(d for d in t.devices if d.kind == PL061.name)
    assert PL061.root_node(gpio).name == "gpio-keys"
    assert PL061.root_node(replace(gpio, power_key=None)) is None


def test_an_inconsistent_registry_is_refused():
    bad = replace(VIRTIO_MMIO, name="virtio-pci", table="pci")
    with pytest.raises(ValueError, match="table 'pci' is not one of"):
        check_registry({**KINDS, "virtio-pci": bad})
    with pytest.raises(
        ValueError, match="exactly one device kind describes the \\[virtio\\] table"
    ):
        check_registry({**KINDS, "virtio-pci": replace(VIRTIO_MMIO, name="virtio-pci")})


@pytest.mark.parametrize(
    "topo",
    [
        Topology(cores=4),
        Topology(sockets=2, cores=2),
        Topology(clusters=2, cores=1, threads=2),
        Topology(sockets=2, clusters=2, cores=2, threads=2),
    ],
)
def test_cpu_map_leaves_name_each_cpu_once_in_topology_order(topo, dtc):
    b = build(Machine(template="squib", vcpus=topo.vcpus, topology=topo, virtio=0))
    check_against_references(dtc, b.tree, b.blob)
    cpus = b.tree.root.find("/cpus")
    phandle_to_index = {
        c.prop("phandle").as_cells()[0]: i
        for i, c in enumerate(cpus.children)
        if c.name.startswith("cpu@")
    }
    leaves = [(p, n) for p, n in cpus.walk("/cpus") if n.prop("cpu") is not None]
    assert [phandle_to_index[n.prop("cpu").as_cells()[0]] for _, n in leaves] == list(
        range(topo.vcpus)
    )
    last = leaves[-1][0]
    assert f"socket{topo.sockets - 1}/cluster{topo.clusters - 1}/core{topo.cores - 1}" in last
    assert last.endswith(f"thread{topo.threads - 1}") == (topo.threads > 1)


def test_a_topology_that_does_not_add_up_is_rejected():
    with pytest.raises(
        ConfigError,
        match=r"topology: 2 sockets x 1 clusters x 2 cores x 1 threads = 4 vCPUs, but vcpus is 3",
    ):
        build(Machine(vcpus=3, topology=Topology(sockets=2, cores=2)))


# -- user templates get the same proofs ---------------------------------------


@pytest.mark.parametrize(
    "old, new, error, match",
    [
        pytest.param(
            'kind = "pl031"',
            'kind = "pl032"',
            TemplateError,
            r"device\[0\]\.kind: 'pl032': expected one of pl031, pl030, mc146818",
            id="unknown-device-kind",
        ),
        pytest.param(
            "spi = 2 ",
            "spi = 1 ",
            TemplateError,
            r"SPI 1 \(INTID 33\) is wired to both 'uart0' and 'rtc'",
            id="spi-collision",
        ),
        pytest.param(
            "base = 0x0901_0000",
            "base = 0x0900_0000",
            TemplateError,
            r"region 'rtc' \[0x9000000, 0x9001000\) overlaps region 'uart0'",
            id="device-overlap",
        ),
        pytest.param(
            "[pmu]\nppi = 7",
            "[pmu]\nppi = 13",
            TemplateError,
            r"PPI 13 \(INTID 29\) is wired to both 'timer' and 'pmu'",
            id="ppi-collision",
        ),
        pytest.param(
            'redist_reg = "window"',
            'redist_reg = "all"',
            TemplateError,
            r"gic\.redist_reg: 'all': expected one of vcpus, window",
            id="bad-redist-reg",
        ),
        pytest.param(
            'size = "4KiB"\nspi = 7',
            'size = "4KiB"\nspi = 7\nbogus = 1',
            TemplateError,
            r"device\[2\]\.bogus: unknown key; valid keys: align, base, clock_hz, kind, "
            r"placement, power_key, power_pin, ppi, shared_spi, size, spi, tag, timeout_sec, "
            r"trigger$",
            id="unknown-key",
        ),
        pytest.param(
            'size = "4KiB"\nspi = 7',
            'size = "4KiB"\nspi = 7\ntriger = "edge-rising"',
            TemplateError,
            r"device\[2\]\.triger: unknown key; did you mean 'trigger'\?$",
            id="misspelt-optional-key",
        ),
        pytest.param(
            "max_vcpus = ",
            "max_vcpu = ",
            TemplateError,
            r"machine\.max_vcpus: missing \(is 'max_vcpu' a typo of it\?\)$",
            id="misspelt-required-key",
        ),
    ],
)
def test_user_templates_get_the_load_time_proofs(tmp_path, old, new, error, match):
    text = (templates_dir() / "qemu-virt.toml").read_text()
    assert old in text
    (tmp_path / "mine.toml").write_text(text.replace(old, new, 1))
    with pytest.raises(error, match=match):
        load_template(str(tmp_path / "mine.toml"))


def test_a_below_4g_region_that_finds_no_room_is_a_load_time_error(tmp_path):
    text = (templates_dir() / "openvmm.toml").read_text().replace("slots = 32", "slots = 900")
    (tmp_path / "big.toml").write_text(text.replace("first_spi = 16", "first_spi = 40"))
    text = (tmp_path / "big.toml").read_text().replace('stride = "4KiB"', 'stride = "8MiB"')
    (tmp_path / "big.toml").write_text(text)
    with pytest.raises(
        FdtgenError,
        match=r"no room for 'virtio' \(size 0x1c2000000, alignment 0x800000\) in phase below-4g",
    ):
        load_template(str(tmp_path / "big.toml"))


def test_templates_without_virtio_mmio_reject_transports():
    with pytest.raises(
        ConfigError, match=r"virtio: 1 is outside 0..0 \(template '.*' has 0 virtio slots\)"
    ):
        build(Machine(template="cloud-hypervisor", virtio=1))


def test_the_docs_describe_every_builtin_template_and_its_source():
    text = (ROOT / "docs" / "templates.md").read_text()
    for name in BUILTIN:
        t = load_template(name)
        assert f"`{name}`" in text, name
        assert t.source.split()[0] in text, name


# -- template values that reach the device tree are checked at load, by key ---------


@pytest.mark.parametrize(
    "name, old, new, message",
    [
        pytest.param(
            "squib",
            'dist_size = "64KiB"',
            "dist_size = 0",
            "gic.dist_size: 0x0: must be > 0 (a region holds at least one byte)",
            id="dist-size-zero",
        ),
        pytest.param(
            "squib",
            "max_end = 0x0100_0000_0000",
            "max_end = 0x4000_0000",
            "dram.max_end: 0x40000000: must be > base 0x80000000 (the end is exclusive)",
            id="max-end-below-base",
        ),
        pytest.param(
            "squib",
            "redist_end = 0x0E0A_0000",
            "redist_end = 0x080A_0000",
            "gic.redist_end: 0x80a0000: must be > redist_base 0x80a0000 (the end is exclusive)",
            id="empty-redist-window",
        ),
        pytest.param(
            "squib",
            "spi = 1 ",
            "spi = 1000 ",
            "uart.spi: 1000: SPI 1000 is outside the binding range 0..987",
            id="uart-spi",
        ),
        pytest.param(
            "squib",
            "ppis = [13, 14, 11, 10]",
            "ppis = [13, 14, 11, 16]",
            "timer.ppis: [13, 14, 11, 16]: PPI 16 is outside the binding range 0..15",
            id="timer-ppi",
        ),
        pytest.param(
            "squib",
            "maintenance_ppi = 9",
            "maintenance_ppi = -1",
            "gic.maintenance_ppi: -1: PPI -1 is outside the binding range 0..15",
            id="maintenance-ppi",
        ),
        pytest.param(
            "squib",
            "first_spi = 16",
            "first_spi = 960",
            "virtio.slots: 32: slot 31 would get SPI 991, past the binding's last SPI 987 "
            "(first_spi 960 + slots - 1 must be <= 987)",
            id="virtio-spis-past-987",
        ),
        pytest.param(
            "squib",
            'model = "squib,microvm"',
            'model = "squib\\u0000microvm"',
            "machine.model: 'squib\\x00microvm': contains a NUL byte at offset 5 "
            "(a device-tree string ends at its first NUL)",
            id="nul-in-model",
        ),
        pytest.param(
            "squib",
            '"linux,dummy-virt"]',
            '"linux,dummy\\u0000virt"]',
            "machine.compatible: ['linux,squib-microvm', 'linux,dummy\\x00virt']: string 1 "
            "contains a NUL byte at offset 11",
            id="nul-in-compatible",
        ),
        pytest.param(
            "squib",
            '"arm,psci-0.2"]',
            '"arm,psci\\u0000"]',
            "machine.psci_compatible: ['arm,psci-1.0', 'arm,psci\\x00']: string 1 contains a NUL",
            id="nul-in-psci-compatible",
        ),
        pytest.param(
            "qemu-virt",
            'cpu_compatible = "arm,cortex-a57"',
            'cpu_compatible = "\\u0000"',
            "machine.cpu_compatible: '\\x00': contains a NUL byte at offset 0",
            id="nul-in-cpu-compatible",
        ),
        pytest.param(
            "qemu-virt",
            '"arm,armv7-timer"]',
            '"arm,armv7-timer\\u0000"]',
            "timer.compatible: ['arm,armv8-timer', 'arm,armv7-timer\\x00']: string 1 contains "
            "a NUL",
            id="nul-in-timer-compatible",
        ),
        pytest.param(
            "squib",
            'trigger = "level-high"\n\n[virtio]',
            'trigger = "level-high"\nclock_hz = 0x1_0000_0000\n\n[virtio]',
            "uart.clock_hz: 0x100000000: must be in 0x1..0xffffffff "
            "(clock-frequency is one 32-bit cell)",
            id="uart-clock-past-u32",
        ),
        pytest.param(
            "squib",
            'trigger = "level-high"\n\n[virtio]',
            'trigger = "level-high"\nclock_hz = 0\n\n[virtio]',
            "uart.clock_hz: 0: must be in 0x1..0xffffffff (clock-frequency is one 32-bit cell)",
            id="uart-clock-zero",
        ),
        pytest.param(
            "qemu-virt",
            "power_key = 116",
            "power_key = 0x1_0000_0000",
            "device[2].power_key: 0x100000000: must be in 0x0..0xffffffff "
            "(it becomes one 32-bit device-tree cell)",
            id="power-key-past-u32",
        ),
        pytest.param(
            "qemu-virt",
            "power_pin = 3",
            "power_pin = -1",
            "device[2].power_pin: -1: must be in 0x0..0xffffffff "
            "(it becomes one 32-bit device-tree cell)",
            id="negative-power-pin",
        ),
        pytest.param(
            "qemu-virt",
            "spi = 7 ",
            "spi = 988 ",
            "device[2].spi: 988: SPI 988 is outside the binding range 0..987",
            id="device-spi",
        ),
        pytest.param(
            "qemu-virt",
            "size = 0x18",
            "size = 0",
            "device[1].size: 0x0: must be > 0",
            id="device-size-zero",
        ),
        pytest.param(
            "qemu-virt",
            'size = "128KiB"',
            'size = "0KiB"',
            "gic.its.size: '0KiB': must be > 0",
            id="its-size-zero",
        ),
        pytest.param(
            "qemu-virt",
            'size = "16MiB"',
            "size = 0",
            "reserved[4].size: 0x0: must be > 0",
            id="reserved-size-zero",
        ),
        pytest.param(
            "qemu-virt",
            "cpu_map = true",
            "cpu_map = true\naddress_width = 65",
            "machine.address_width: 65: must be in 32..64 (guest physical address bits)",
            id="address-width",
        ),
        pytest.param(
            "qemu-virt-gicv2",
            'size = "4KiB"',
            "size = 0",
            "gic.v2m.size: 0x0: must be > 0",
            id="v2m-size-zero",
        ),
        pytest.param(
            "qemu-virt-gicv2",
            "ppi = 7",
            "ppi = 99",
            "pmu.ppi: 99: PPI 99 is outside the binding range 0..15",
            id="pmu-ppi",
        ),
    ],
)
def test_bad_template_values_name_the_key_value_and_rule(tmp_path, name, old, new, message):
    text = (templates_dir() / f"{name}.toml").read_text()
    assert text.count(old) >= 1, old
    path = tmp_path / "mine.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(TemplateError) as err:
        build(Machine(template=str(path)))
    assert str(err.value).startswith(f"{path}: {message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_cli_rejects_a_template_value_past_u32_in_one_line_exit_2_and_no_file(tmp_path):
    fixture = ROOT / "fixtures" / "templates" / "uart-clock-fail.toml"
    for args in (
        ["build", "-o", str(tmp_path / "guest.dtb")],
        ["dts"],
        ["templates", str(fixture)],
    ):
        if args[0] != "templates":
            args += ["--template", str(fixture)]
        r = subprocess.run(
            [sys.executable, "-m", "fdtgen", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr == (
            f"fdtgen: error: {fixture}: uart.clock_hz: 0x100000000: must be in "
            "0x1..0xffffffff (clock-frequency is one 32-bit cell)\n"
        )
        assert r.stdout == ""
    assert list(tmp_path.iterdir()) == []
