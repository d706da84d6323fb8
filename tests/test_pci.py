"""The PCIe host bridge: the ``[pcie]`` table, its proofs, the node and the ``pci.*`` rules.

Each broken case starts from a valid template or tree and changes one thing,
so a test shows that exactly the rule under test notices it.
"""

from __future__ import annotations

import re
from pathlib import Path

import libfdt
import pytest

from fdtgen.checks import Options, verify
from fdtgen.devicetree.machine import Machine
from fdtgen.errors import ConfigError, FdtgenError
from fdtgen.fdt.encode import encode
from fdtgen.fdt.tree import DeviceTree, Prop
from fdtgen.pictures import layout_rows
from fdtgen.pipeline import Build, build
from fdtgen.template.load import load_template, templates_dir
from fdtgen.template.pci import PcieSpec
from fdtgen.units import GiB, MiB

from .test_verify import drop_prop, edit, keys, set_prop

PCIE = "/pcie@10000000"
GIC = "/interrupt-controller@8000000"
QEMU_VIRT = build(Machine(template="qemu-virt", vcpus=2, memory=512 * MiB))


def check(tree: DeviceTree, bits: int = 48) -> list[tuple[str, str, str]]:
    return sorted(keys(verify(encode(tree), Options(address_bits=bits))))


def edited_template(tmp_path: Path, template: str, changes: dict[str, str]) -> Path:
    """A built-in template with lines edited (each ``old`` found, replaced once)."""
    text = (templates_dir() / f"{template}.toml").read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    return path


def bridge_template(tmp_path: Path, **changes: str) -> Path:
    """qemu-virt's template with its ``[pcie]`` lines edited (``old=new`` pairs)."""
    return edited_template(tmp_path, "qemu-virt", changes)


# -- the template ------------------------------------------------------------


def test_the_qemu_virt_bridge_is_loaded_as_written():
    p = load_template("qemu-virt").pcie
    assert p is not None
    assert p.compatible == "pci-host-ecam-generic" and (p.bus_first, p.bus_last) == (0, 255)
    assert [(tag, hex(space), r.base, r.size) for tag, space, r in p.windows()] == [
        ("pcie-io", "0x1000000", 0x3EFF_0000, 0x1_0000),
        ("pcie-mmio32", "0x2000000", 0x1000_0000, 0x2EFF_0000),
        ("pcie-mmio64", "0x3000000", 512 * GiB, 512 * GiB),
    ]
    assert p.node_address == 0x1000_0000 and p.msi == "msi-map" and p.virtio == "both"
    # The swizzle: slot s, pin p -> SPI 3 + (s + p - 1) % 4.
    rows = p.intx_rows()
    assert len(rows) == 16
    assert [(s, pin, spi.number) for s, pin, spi in rows[:5]] == [
        (0, 1, 3), (0, 2, 4), (0, 3, 5), (0, 4, 6), (1, 1, 4),
    ]  # fmt: skip
    assert load_template("squib").pcie is None
    assert load_template("squib").virtio_transport == "mmio"


@pytest.mark.parametrize(
    "changes, message",
    [
        pytest.param(
            {"config_end = 0x40_2000_0000": "config_end = 0x40_1800_0000"},
            r"pcie config \[0x4010000000, 0x4018000000\) is 0x8000000 bytes, but buses 0..255 "
            r"take 0x10000000",
            id="config-size",
        ),
        pytest.param(
            {"bus_range = [0, 255]": "bus_range = [3, 2]"},
            r"pcie.bus_range: \[3, 2\]: must satisfy 0 <= first <= last <= 255",
            id="bus-range",
        ),
        pytest.param(
            {"mmio32_base = 0x1000_0000 ": "mmio32_base = 0x0A00_0000 "},
            r"'virtio' \[0xa000000, 0xa004000\) overlaps .*'pcie-mmio32'|'pcie-mmio32' .* overlaps",
            id="overlap",
        ),
        pytest.param(
            {"first_spi = 3 ": "first_spi = 7 "},
            r"SPI 7 \(INTID 39\) is wired to both 'gpio' and 'pcie-intx'",
            id="intx-spi",
        ),
        pytest.param(
            {'compatible = "pci-host-ecam-generic"': 'compatible = "pci-host-magic"'},
            r"pcie.compatible: 'pci-host-magic': expected one of pci-host-ecam-generic",
            id="compatible",
        ),
        pytest.param(
            {'virtio = "both"': 'virtio = "pci"'},
            r"pcie virtio 'pci': the VMM has no virtio-mmio transports, but \[virtio\] has 32",
            id="virtio-pci-with-slots",
        ),
        pytest.param(
            {"mmio32_end = 0x3EFF_0000": "mmio32_end = 0x3EFF_0000\nmmio32_colour = 1"},
            r"pcie.mmio32_colour: unknown key",
            id="unknown-key",
        ),
    ],
)
def test_a_bridge_that_breaks_a_proof_is_refused(tmp_path, changes, message):
    with pytest.raises(FdtgenError, match=message):
        load_template(str(bridge_template(tmp_path, **changes)))


def test_an_msi_reference_needs_an_msi_controller(tmp_path):
    path = bridge_template(
        tmp_path,
        **{'[gic.its]\nbase = 0x0808_0000                # VIRT_GIC_ITS\nsize = "128KiB"\n': ""},
    )
    with pytest.raises(FdtgenError, match="pcie msi 'msi-map' names the MSI controller"):
        load_template(str(path))


def test_a_32_bit_window_past_4_gib_is_refused():
    from fdtgen.errors import LayoutError
    from fdtgen.ranges import Range
    from fdtgen.template.pci import check_pcie

    p = PcieSpec("pci-host-cam-generic", Range(0, 64 * 1024 * 256), Range(0xF000_0000, 0x2000_0000))
    with pytest.raises(LayoutError, match=r"mmio32 \[0xf0000000, 0x110000000\) ends past"):
        check_pcie(p, "t", False, 0)


def test_every_window_must_fit_the_address_width():
    with pytest.raises(ConfigError, match=r"region 'pcie-mmio64' \[0x8000000000, 0x10000000000\)"):
        build(Machine(template="qemu-virt", address_width=39))


def test_the_layout_listing_shows_the_windows():
    rows = {r.tag: r for r in layout_rows(QEMU_VIRT.layout)}
    assert rows["pcie-ecam"].kind == "pci"
    assert rows["pcie-ecam"].note == "pci-host-ecam-generic, buses 0..255"
    assert rows["pcie-io"].note == "I/O at PCI 0x0"
    assert rows["pcie-mmio64"].note == "64-bit memory at PCI 0x80_0000_0000"


# -- the node ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["qemu-virt", "qemu-virt-gicv2", "qemu-virt-its-off"])
def test_every_bridge_blob_round_trips_through_dtc_and_passes_libfdt_and_verify(name, dtc):
    b = build(Machine(template=name, vcpus=2, memory=256 * MiB))
    buf = bytearray(b.blob)
    assert libfdt.fdt_check_full(buf, len(buf)) == 0
    again, warnings = dtc.dtb_to_dtb(b.blob)
    assert again == b.blob and warnings == ""
    assert verify(b.blob, Options(dtc=dtc.exe, template=load_template(name))) == []
    node = b.tree.root.find(PCIE)
    assert node is not None
    assert ("msi-map" in {p.name for p in node.props}) == (name != "qemu-virt-its-off")


def test_the_bridge_sits_among_the_mmio_nodes_by_its_unit_address():
    names = [c.name for c in QEMU_VIRT.tree.root.children]
    assert names[-1] == "pcie@10000000"  # above every virtio-mmio transport at 0xa00xxxx
    assert re.fullmatch(r"virtio_mmio@a00[0-9a-f]{4}", names[-2])


# -- the VMMs' bridges, as their own DT code writes them -------------------------

# (template, node path, virtio-mmio transports to build with)
VMM_BRIDGES = [
    ("cloud-hypervisor", "/pci@30000000", 0),
    ("crosvm", "/pci@10000", 0),
    ("firecracker-pci", "/pci@70000000", 0),
    ("kvmtool", "/pci@40000000", 2),
]
GIC_PHANDLE, MSI_PHANDLE = 1, 3
SPI, LEVEL_HIGH = 0, 4


def vmm_bridge(name: str, path: str, virtio: int) -> tuple[bytes, dict[str, tuple[int, ...]]]:
    b = build(Machine(template=name, vcpus=2, memory=512 * MiB, virtio=virtio))
    node = b.tree.root.find(path)
    assert node is not None, [c.name for c in b.tree.root.children]
    cells = {}
    for prop in node.props:
        if prop.name not in ("compatible", "device_type"):
            cells[prop.name] = prop.as_cells()
    return b.blob, {"compatible": node.prop("compatible").as_strings(), **cells}  # type: ignore[union-attr, dict-item]


@pytest.mark.parametrize("name, path, virtio", VMM_BRIDGES)
def test_each_vmm_bridge_blob_round_trips_and_passes_libfdt_and_verify(name, path, virtio, dtc):
    blob, _ = vmm_bridge(name, path, virtio)
    buf = bytearray(blob)
    assert libfdt.fdt_check_full(buf, len(buf)) == 0
    again, warnings = dtc.dtb_to_dtb(blob)
    assert again == blob and warnings == ""
    assert verify(blob, Options(dtc=dtc.exe, template=load_template(name))) == []


def test_the_cloud_hypervisor_bridge_is_segment_0_of_create_pci_nodes():
    _, p = vmm_bridge(*VMM_BRIDGES[0])
    assert p["compatible"] == ("pci-host-ecam-generic",)
    assert p["reg"] == (0, 0x3000_0000, 0, 1 * MiB)  # one segment's ECAM: bus 0
    assert p["bus-range"] == (0, 0)
    # The device area, from PCI_HIGH_BASE (RAM ends below it) to 2^46 - 64 KiB - 1 MiB.
    top = (1 << 46) - 0x1_0000 - 0x10_0000
    assert p["ranges"] == (
        0x0100_0000, 0, 0, 0, 0x0905_0000, 0, 0x1_0000,  # MEM_PCI_IO_START at I/O 0
        0x0200_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0x2000_0000,  # MEM_32BIT_DEVICES
        0x0300_0000, 2, 0, 2, 0, (top - 8 * GiB) >> 32, (top - 8 * GiB) & 0xFFFF_FFFF,
    )  # fmt: skip
    assert p["msi-map"] == (0, MSI_PHANDLE, 0, 0x100)  # bus 0's requester IDs
    assert "interrupt-map" not in p and "msi-parent" not in p
    assert p["linux,pci-domain"] == (0,)


def test_the_crosvm_bridge_is_cam_with_a_row_per_device_slot():
    _, p = vmm_bridge(*VMM_BRIDGES[1])
    assert p["compatible"] == ("pci-host-cam-generic",)
    assert p["reg"] == (0, 0x1_0000, 0, 16 * MiB) and p["bus-range"] == (0, 0)
    # The high MMIO pool: past RAM (0x8000_0000 + 512 MiB) and 1 GiB of platform
    # MMIO, to the top of the default 48-bit space; prefetchable.
    high = 0x8000_0000 + 512 * MiB + 1 * GiB
    size = (1 << 48) - high
    assert p["ranges"] == (
        0x0200_0000, 0, 0x0200_0000, 0, 0x0200_0000, 0, 32 * MiB,
        0x4300_0000, 0, high, 0, high, size >> 32, size & 0xFFFF_FFFF,
    )  # fmt: skip
    assert p["interrupt-map-mask"] == (0xF800, 0, 0, 7)
    rows = p["interrupt-map"]
    assert len(rows) == 28 * 10  # 3 child cells, pin, GIC phandle, 2 address cells, 3 cells
    # Device i at 00:(i+1).0 raises INTA on SPI 4 + i, level-high (generate_pci_root).
    assert [rows[i : i + 10] for i in range(0, len(rows), 10)] == [
        ((slot << 11), 0, 0, 1, GIC_PHANDLE, 0, 0, SPI, 3 + slot, LEVEL_HIGH)
        for slot in range(1, 29)
    ]
    assert "msi-map" not in p and "msi-parent" not in p  # no ITS without --gic-its


def test_the_firecracker_pci_bridge_is_segment_0_with_both_device_windows():
    _, p = vmm_bridge(*VMM_BRIDGES[2])
    assert p["compatible"] == ("pci-host-ecam-generic",)
    assert p["reg"] == (0, 0x7000_0000, 0, 1 * MiB) and p["bus-range"] == (0, 0)
    assert p["ranges"] == (
        0x0200_0000, 0, 0x4000_3000, 0, 0x4000_3000, 0, 0x2FFF_D000,  # MEM_32BIT_DEVICES
        0x0300_0000, 0x40, 0, 0x40, 0, 0x40, 0,  # MEM_64BIT_DEVICES: 256 GiB at 256 GiB
    )  # fmt: skip
    assert p["msi-map"] == (0, MSI_PHANDLE, 0, 0x100)
    assert "interrupt-map" not in p and "msi-parent" not in p


def test_firecracker_pci_has_virtio_pci_only_and_the_serial_on_the_first_line():
    t = load_template("firecracker-pci")
    assert t.virtio_transport == "pci" and t.virtio.slots == 0
    assert load_template("firecracker").virtio_transport == "mmio"
    b = build(Machine(template="firecracker-pci", vcpus=2, memory=512 * MiB))
    assert b.layout.uart is not None and b.layout.uart.spi.number == 0
    # The 64-bit window is the DRAM hole: RAM past 254 GiB resumes at 512 GiB.
    big = build(Machine(template="firecracker-pci", vcpus=1, memory=300 * GiB))
    assert [(r.base, r.end) for r in big.layout.ram] == [
        (0x8020_0000, 256 * GiB),
        (512 * GiB, 512 * GiB + 300 * GiB - (256 * GiB - 0x8020_0000)),
    ]


def test_the_kvmtool_bridge_decodes_256_buses_for_bus_0_and_io_at_address_0():
    _, p = vmm_bridge(*VMM_BRIDGES[3])
    assert p["reg"] == (0, 0x4000_0000, 0, 256 * MiB) and p["bus-range"] == (0, 0)
    assert p["ranges"] == (
        0x0100_0000, 0, 0, 0, 0, 0, 0x1_0000,  # KVM_IOPORT_AREA
        0x0200_0000, 0, 0x5000_0000, 0, 0x5000_0000, 0, 0x3000_0000,  # up to ARM_MEMORY_AREA
    )  # fmt: skip
    assert p["msi-map"] == (0, MSI_PHANDLE, 0, 0x100)
    assert "interrupt-map" not in p  # virtio-mmio: no PCI device has a pin


def test_cloud_hypervisor_and_crosvm_have_virtio_pci_only():
    for name in ("cloud-hypervisor", "crosvm", "firecracker-pci"):
        t = load_template(name)
        assert t.virtio_transport == "pci" and t.virtio.slots == 0
    assert load_template("kvmtool").virtio_transport == "mmio"


@pytest.mark.parametrize(
    "template, changes, message",
    [
        pytest.param(
            "kvmtool",
            {'msi = "msi-map"': 'msi = "msi-parent"'},
            r"pcie msi 'msi-parent' names the ITS, whose #msi-cells = <1> wants a DeviceID",
            id="msi-parent-to-its",
        ),
        pytest.param(
            "crosvm",
            {"intx_slots = 28": "intx_slots = 32"},
            r"intx_first_slot 1 \+ intx_slots 32: a per-slot map names 1 or more of the bus's "
            r"device numbers 0..31",
            id="per-slot-past-slot-31",
        ),
        pytest.param(
            "crosvm",
            {"first_spi = 4 ": "first_spi = 2 "},
            r"SPI 2 \(INTID 34\) is wired to both",
            id="per-slot-spi-taken",
        ),
        pytest.param(
            "kvmtool",
            {"config_end = 0x5000_0000": "config_end = 0x4008_0000"},
            r"pcie config \[0x40000000, 0x40080000\) is 0x80000 bytes, but buses 0..0 take "
            r"0x100000 .* in whole buses",
            id="config-short-of-a-bus",
        ),
        pytest.param(
            "kvmtool",
            {'node_name = "pci"': 'node_name = "host"'},
            r"pcie.node_name: 'host': expected one of pcie, pci",
            id="node-name",
        ),
    ],
)
def test_a_vmm_bridge_that_breaks_a_proof_is_refused(tmp_path, template, changes, message):
    with pytest.raises(FdtgenError, match=message):
        load_template(str(edited_template(tmp_path, template, changes)))


# -- the 64-bit window that follows RAM ------------------------------------------

M32 = 0xFFFF_FFFF
# Cloud Hypervisor ae44c2971c83, written from its source: RAM_START 1 GiB with the
# 64 MiB hole at MEM_32BIT_RESERVED_START 0xFC00_0000 (RAM resumes at 4 GiB); the
# device area from RAM's end to 2^phys_bits - 64 KiB - PLATFORM_DEVICE_AREA_SIZE
# 1 MiB (vmm/src/memory_manager.rs:93, :447, :1679-1681); the DT starts it at
# PCI_HIGH_BASE 8 GiB at the lowest (arch/src/aarch64/fdt.rs:785-801).
CH_BELOW_TOP = 0x1_0000 + 0x10_0000
CH_LOW_RAM = 0xFC00_0000 - 0x4000_0000
# crosvm f1e797a68dad: RAM at 2 GiB; high MMIO from RAM's end + the 1 GiB
# platform MMIO region to 1 << guest_phys_addr_bits (aarch64/src/lib.rs:115, :508-527).
CROSVM_RAM, CROSVM_PLATFORM = 0x8000_0000, 1 * GiB


def last_range(b: Build) -> tuple[int, ...]:
    """The host bridge's last ``ranges`` entry (its 64-bit window) as cells."""
    bridge = next(n for n in b.tree.root.children if n.name.startswith(("pci@", "pcie@")))
    return bridge.prop("ranges").as_cells()[-7:]  # type: ignore[union-attr]


def window_entry(hi: int, base: int, end: int) -> tuple[int, ...]:
    size = end - base
    return (hi, base >> 32, base & M32, base >> 32, base & M32, size >> 32, size & M32)


@pytest.mark.parametrize(
    "memory, bits, base",
    [
        pytest.param(512 * MiB, 46, 8 * GiB, id="ram-below-4g-floor"),
        pytest.param(CH_LOW_RAM, 46, 8 * GiB, id="ram-up-to-the-hole"),
        pytest.param(6 * GiB, 40, 8 * GiB, id="ram-past-4g-below-floor"),
        pytest.param(16 * GiB, 46, 4 * GiB + 16 * GiB - CH_LOW_RAM, id="ram-past-the-floor"),
        pytest.param(64 * GiB, 40, 4 * GiB + 64 * GiB - CH_LOW_RAM, id="narrow-width"),
    ],
)
def test_the_cloud_hypervisor_window_is_the_device_area_after_ram(memory, bits, base, dtc):
    b = build(Machine(template="cloud-hypervisor", vcpus=1, memory=memory, address_width=bits))
    end = (1 << bits) - CH_BELOW_TOP
    assert b.layout.ram[-1].end <= base
    assert b.layout.pcie_mmio64 is not None
    assert (b.layout.pcie_mmio64.base, b.layout.pcie_mmio64.end) == (base, end)
    assert last_range(b) == window_entry(0x0300_0000, base, end)
    buf = bytearray(b.blob)
    assert libfdt.fdt_check_full(buf, len(buf)) == 0
    t = load_template("cloud-hypervisor")
    assert verify(b.blob, Options(dtc=dtc.exe, address_bits=bits, template=t)) == []


@pytest.mark.parametrize(
    "memory, bits",
    [(512 * MiB, 48), (1 * GiB, 40), (6 * GiB, 36), (200 * GiB, 48)],
)
def test_the_crosvm_window_is_the_high_mmio_pool_past_ram_and_platform_mmio(memory, bits):
    b = build(Machine(template="crosvm", vcpus=1, memory=memory, address_width=bits))
    base = CROSVM_RAM + memory + CROSVM_PLATFORM
    assert last_range(b) == window_entry(0x4300_0000, base, 1 << bits)  # prefetchable
    assert verify(b.blob, Options(address_bits=bits, template=load_template("crosvm"))) == []


def test_the_window_moves_with_ram_and_is_drawn_as_allocated():
    small = build(Machine(template="crosvm", vcpus=1, memory=1 * GiB))
    big = build(Machine(template="crosvm", vcpus=1, memory=2 * GiB))
    assert big.layout.pcie_mmio64.base - small.layout.pcie_mmio64.base == 1 * GiB  # type: ignore[union-attr]
    row = next(r for r in layout_rows(small.layout) if r.tag == "pcie-mmio64")
    assert row.source == "allocated" and row.range == small.layout.pcie_mmio64
    assert row.note == "64-bit memory, prefetchable at PCI 0x1_0000_0000, follows RAM"
    assert "pcie-mmio64" not in {r.tag for r in load_template("crosvm").pinned_regions()}


def test_templates_show_states_the_window_rule(capsys):
    from fdtgen.cli import main

    for name, rule in (
        ("cloud-hypervisor", "max(0x2_0000_0000, RAM end) .. 2^46 - 0x11_0000"),
        ("crosvm", "RAM end + 0x4000_0000 .. 2^address_width (default 48)"),
    ):
        assert main(["templates", "show", name, "--table"]) == 0
        assert f"pcie-mmio64 follows RAM: {rule}\n" in capsys.readouterr().out
    assert main(["templates", "show", "qemu-virt", "--table"]) == 0
    assert "follows RAM" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "template, memory, bits, setting, message",
    [
        pytest.param(
            "cloud-hypervisor",
            512 * MiB,
            33,
            "address_width",
            r"address_width: the 64-bit PCI window after RAM of template 'cloud-hypervisor' "
            r"would start at 0x200000000 \(0x0 past RAM's end 0x60000000, at least "
            r"0x200000000\), and it would end at 0x1ffef0000 \(0x110000 below the 33-bit "
            r"guest physical address limit\): no room for it",
            id="floor-past-the-top",
        ),
        pytest.param(
            "crosvm",
            5 * GiB,
            33,
            "memory",
            r"memory: the 64-bit PCI window after RAM of template 'crosvm' would start at "
            r"0x200000000 \(0x40000000 past RAM's end 0x1c0000000\), and it would end at "
            r"0x200000000 \(the 33-bit guest physical address limit\): no room for it",
            id="ram-leaves-no-room",
        ),
    ],
)
def test_a_machine_that_leaves_the_window_no_room_is_refused(
    template, memory, bits, setting, message
):
    with pytest.raises(ConfigError, match=message) as e:
        build(Machine(template=template, vcpus=1, memory=memory, address_width=bits))
    assert e.value.setting == setting


def test_a_below_top_past_the_whole_width_is_named(tmp_path):
    old = 'mmio64_after_ram = "1GiB"'
    path = edited_template(
        tmp_path, "crosvm", {old: f"{old}\nmmio64_below_top = 0x4_0000_0000_0000"}
    )
    message = (
        r"and mmio64_below_top 0x4000000000000 leaves nothing below the 40-bit guest "
        r"physical address limit 0x10000000000: no room for it"
    )
    with pytest.raises(ConfigError, match=message) as e:
        build(Machine(template=str(path), vcpus=1, memory=1 * GiB, address_width=40))
    assert e.value.setting == "address_width"


def test_the_window_refusal_reaches_the_command_line_as_one_line(tmp_path, capsys):
    from fdtgen.cli import main

    config = tmp_path / "vm.toml"
    config.write_text('template = "crosvm"\nmemory = "5GiB"\naddress_width = 33\n')
    out = tmp_path / "guest.dtb"
    assert main(["build", str(config), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "memory" in err and "no room for it" in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == [config]


@pytest.mark.parametrize(
    "template, changes, message",
    [
        pytest.param(
            "crosvm",
            {
                "mmio32_end = 0x0400_0000": "mmio32_end = 0x0400_0000"
                "\nmmio64_base = 0x200_0000_0000\nmmio64_end = 0x300_0000_0000"
            },
            r"pcie has a pinned mmio64 window \[0x20000000000, 0x30000000000\) and one after "
            r"RAM: a bridge decodes one 64-bit memory window",
            id="pinned-and-after-ram",
        ),
        pytest.param(
            "crosvm",
            {'mmio64_after_ram = "1GiB"': "mmio64_after_ram = 0x4000_0800"},
            r"pcie mmio64_after_ram 0x40000800 is not a multiple of the 0x1000-byte page",
            id="gap-not-a-page",
        ),
        pytest.param(
            "cloud-hypervisor",
            {"mmio64_below_top = 0x11_0000": "mmio64_below_top = 0x11_0800"},
            r"pcie mmio64_below_top 0x110800 is not a multiple of the 0x1000-byte page",
            id="below-top-not-a-page",
        ),
        pytest.param(
            "qemu-virt",
            {"mmio64_end = 0x100_0000_0000": "mmio64_end = 0x100_0000_0000\nmmio64_floor = 0"},
            r"pcie.mmio64_floor: .*applies to a window after RAM only \(give mmio64_after_ram\)",
            id="floor-without-after-ram",
        ),
        pytest.param(
            "crosvm",
            {'mmio64_after_ram = "1GiB"': "mmio64_after_ram = 0xFFFF_FFFF_8000_0000"},
            r"pcie mmio64_after_ram 0xffffffff80000000, mmio64_floor 0x0 and mmio64_below_top "
            r"0x0 leave no machine a 64-bit window: after a page of RAM at 0x80000000 it "
            r"would start at 0x10000000000001000, past 2\^64$",
            id="no-machine-has-room",
        ),
    ],
)
def test_a_window_after_ram_that_breaks_a_rule_is_refused(tmp_path, template, changes, message):
    with pytest.raises(FdtgenError, match=message):
        load_template(str(edited_template(tmp_path, template, changes)))


def test_a_pinned_region_in_the_windows_way_is_refused(tmp_path):
    text = (templates_dir() / "crosvm.toml").read_text()
    text += '\n[[reserved]]\ntag = "high"\nbase = 0x200_0000_0000\nsize = "4KiB"\n'
    path = tmp_path / "high.toml"
    path.write_text(text)
    with pytest.raises(
        FdtgenError,
        match=r"region 'high' \[0x20000000000, 0x20000001000\) lies where the 64-bit PCI "
        r"window after RAM goes \(from 0xc0001000 after a page of RAM at 0x80000000, "
        r"mmio64_after_ram and mmio64_floor\): move it below, or pin the window",
    ):
        load_template(str(path))


def bridge_with_ranges(b: Build, *entries: tuple[int, int, int]) -> bytes:
    """``b``'s blob with its bridge's ``ranges`` replaced by ``(phys.hi, CPU base, size)``
    entries, memory mapped 1:1 and I/O at PCI address 0."""
    path = "/" + next(n.name for n in b.tree.root.children if n.name.startswith(("pci@", "pcie@")))
    cells: list[int] = []
    for hi, base, size in entries:
        pci = 0 if hi == 0x0100_0000 else base
        cells += [hi, pci >> 32, pci & M32, base >> 32, base & M32, size >> 32, size & M32]
    return encode(edit(b.tree, path, set_prop(Prop.cells("ranges", *cells))))


def window_findings(blob: bytes, template: str) -> list[tuple[str, str, str]]:
    found = verify(blob, Options(template=load_template(template)))
    return [(f.rule, f.value, f.message) for f in found if f.rule.startswith("template.")]


def test_verify_holds_a_window_after_ram_to_the_templates_rule():
    b = build(Machine(template="crosvm", vcpus=1, memory=1 * GiB))
    mmio32 = (0x0200_0000, 0x0200_0000, 32 * MiB)
    start = 0x8000_0000 + 1 * GiB + 1 * GiB
    assert (
        window_findings(bridge_with_ranges(b, mmio32, (0x4300_0000, start, 1 << 40)), "crosvm")
        == []
    )
    # The window a 2 GiB machine would have, in a 1 GiB machine's blob.
    late = bridge_with_ranges(b, mmio32, (0x4300_0000, start + 1 * GiB, 1 << 40))
    assert window_findings(late, "crosvm") == [
        (
            "template.pcie-mmio64",
            f"entry 1 [{start + GiB:#x}, {start + GiB + (1 << 40):#x})",
            "template 'crosvm' starts the 64-bit window 0x40000000 past the end of RAM "
            f"(0xc0000000): at {start:#x}",
        )
    ]
    ch = build(Machine(template="cloud-hypervisor", vcpus=1, memory=1 * GiB))
    io, low = (0x0100_0000, 0x0905_0000, 0x1_0000), (0x0200_0000, 0x1000_0000, 0x2000_0000)
    early = bridge_with_ranges(ch, io, low, (0x0300_0000, 0x8000_0000, 1 << 40))
    assert window_findings(early, "cloud-hypervisor") == [
        (
            "template.pcie-mmio64",
            "entry 2 [0x80000000, 0x10080000000)",
            "template 'cloud-hypervisor' starts the 64-bit window 0x0 past the end of RAM "
            "(0x80000000), never below 0x200000000: at 0x200000000",
        )
    ]


def test_verify_holds_a_window_after_ram_to_its_end_flags_and_count():
    ch = build(Machine(template="cloud-hypervisor", vcpus=1, memory=1 * GiB))
    io, low = (0x0100_0000, 0x0905_0000, 0x1_0000), (0x0200_0000, 0x1000_0000, 0x2000_0000)
    top = (1 << 46) - 0x11_0000  # the template's width, less the platform device area
    fits = (0x0300_0000, 8 * GiB, top - 8 * GiB)
    assert window_findings(bridge_with_ranges(ch, io, low, fits), "cloud-hypervisor") == []
    into_platform = (0x0300_0000, 8 * GiB, (1 << 46) - 8 * GiB)
    assert window_findings(bridge_with_ranges(ch, io, low, into_platform), "cloud-hypervisor") == [
        (
            "template.pcie-mmio64",
            f"entry 2 [0x200000000, {1 << 46:#x})",
            f"template 'cloud-hypervisor' ends the 64-bit window by {top:#x} (0x110000 below 2^46)",
        )
    ]
    prefetchable = (0x4300_0000, 8 * GiB, top - 8 * GiB)
    found = window_findings(bridge_with_ranges(ch, io, low, prefetchable), "cloud-hypervisor")
    assert [m for _, _, m in found] == [
        "template 'cloud-hypervisor' marks the 64-bit window not prefetchable"
    ]
    twice = bridge_with_ranges(ch, io, low, fits, fits)
    assert [(v, m) for _, v, m in window_findings(twice, "cloud-hypervisor")] == [
        (
            f"entry 3 [0x200000000, {top:#x})",
            "template 'cloud-hypervisor' gives the bridge one mmio64 window",
        ),
    ]
    crosvm = build(Machine(template="crosvm", vcpus=1, memory=1 * GiB))
    plain = (0x0300_0000, 0x1_0000_0000, (1 << 48) - 0x1_0000_0000)
    found = window_findings(
        bridge_with_ranges(crosvm, (0x0200_0000, 0x0200_0000, 32 * MiB), plain), "crosvm"
    )
    assert [m for _, _, m in found] == ["template 'crosvm' marks the 64-bit window prefetchable"]


def test_verify_holds_pinned_windows_inside_the_templates():
    io, low = (0x0100_0000, 0x3EFF_0000, 0x1_0000), (0x0200_0000, 0x1000_0000, 0x2EFF_0000)
    high = (0x0300_0000, 512 * GiB, 512 * GiB)
    assert window_findings(bridge_with_ranges(QEMU_VIRT, io, low, high), "qemu-virt") == []
    smaller = (0x0200_0000, 0x1000_0000, 0x1000_0000)  # a part of the window is fine
    assert window_findings(bridge_with_ranges(QEMU_VIRT, io, smaller, high), "qemu-virt") == []
    moved = (0x0200_0000, 0x2000_0000, 0x2000_0000)  # runs past the window's end
    assert window_findings(bridge_with_ranges(QEMU_VIRT, io, moved, high), "qemu-virt") == [
        (
            "template.pcie-mmio32",
            "entry 1 [0x20000000, 0x40000000)",
            "template 'qemu-virt' pins 'pcie-mmio32' at [0x10000000, 0x3eff0000)",
        )
    ]
    b = build(Machine(template="crosvm", vcpus=1, memory=1 * GiB))
    extra_io = bridge_with_ranges(
        b, (0x0100_0000, 0x0, 0x1_0000), (0x0200_0000, 0x0200_0000, 32 * MiB)
    )
    assert [f[0::2] for f in window_findings(extra_io, "crosvm")] == [
        ("template.pcie-io", "template 'crosvm' gives the bridge no io window")
    ]


# -- pci.* ---------------------------------------------------------------------

T = QEMU_VIRT.tree


def test_the_qemu_virt_tree_is_clean():
    assert check(T) == []


@pytest.mark.parametrize(
    "prop, rule",
    [
        (Prop.strings("device_type", "pcie"), "pci.device-type"),
        (Prop.cells("#address-cells", 2), "pci.cells"),
        (Prop.cells("bus-range", 0, 256), "pci.bus-range"),
        (Prop.cells("bus-range", 0, 0x1FF), "pci.bus-range"),
        (Prop.cells("reg", 0x40, 0x1000_0000, 0, 0x80_0000), "pci.reg"),
        (Prop.cells("interrupt-map-mask", 0x1800, 0, 7), "pci.interrupt-map"),
        (Prop.cells("#interrupt-cells", 2), "pci.interrupt-map"),
        (Prop.cells("msi-map", 0, 1, 0, 0x10000), "pci.msi-map"),  # the GIC: not an MSI controller
        (Prop.cells("msi-map", 0, 3, 0, 0x10001), "pci.msi-map"),  # past the 16-bit RID space
        (Prop.cells("msi-map", 0, 0x99, 0, 0x10000), "pci.msi-map"),
        (Prop.cells("msi-parent", 0x99), "pci.msi-parent"),
        (Prop.cells("linux,pci-domain", 0, 0), "pci.domain"),
    ],
)
def test_each_broken_bridge_property_is_found(prop, rule):
    found = check(edit(T, PCIE, set_prop(prop)))
    assert (rule, PCIE, prop.name) in found
    assert {f[0] for f in found if f[0].startswith("pci.")} == {rule}


def _ranges(*entries: tuple[int, int, int, int]) -> Prop:
    cells: list[int] = []
    for hi, pci, cpu, size in entries:
        for value in (pci, cpu, size):
            cells += [value >> 32, value & 0xFFFF_FFFF]
        cells.insert(len(cells) - 6, hi)
    return Prop.cells("ranges", *cells)


MEM32 = (0x0200_0000, 0x1000_0000, 0x1000_0000, 0x2EFF_0000)


@pytest.mark.parametrize(
    "ranges, needle",
    [
        pytest.param(
            _ranges(MEM32, (0x0000_0000, 0, 0x3EFF_0000, 0x1_0000)), "space code", id="config-space"
        ),
        pytest.param(
            _ranges(MEM32, (0x0200_0800, 0, 0x3EFF_0000, 0x1_0000)), "space code", id="devfn-bits"
        ),
        pytest.param(
            _ranges((0x0200_0000, 0x1_0000_0000, 0x80_0000_0000, 1 * GiB)),
            "ends past 4 GiB",
            id="32-bit-high",
        ),
        pytest.param(
            _ranges((0x4300_0000, 0x80_0000_0000, 0x80_0000_0000, 1 * GiB)),
            "non-prefetchable",
            id="only-prefetchable",
        ),
        pytest.param(_ranges(MEM32, (0x0300_0000, 0, 0x3EFF_0000, 0)), "size 0", id="empty-window"),
        pytest.param(Prop.cells("ranges", *range(6)), "not whole entries", id="length"),
    ],
)
def test_each_malformed_ranges_entry_is_found(ranges, needle):
    found = verify(encode(edit(T, PCIE, set_prop(ranges))))
    pci = [f for f in found if f.rule.startswith("pci.")]
    assert [f.rule.removesuffix("-width") for f in pci] == ["pci.ranges"], pci
    assert needle in pci[0].message


def test_a_window_over_ram_or_past_the_address_width_is_found():
    over_ram = _ranges(MEM32, (0x0300_0000, 0x4000_0000, 0x4000_0000, 1 * GiB))
    found = [f for f in verify(encode(edit(T, PCIE, set_prop(over_ram)))) if f.rule == "pci.window"]
    assert len(found) == 1 and "/memory@40000000 reg entry 0" in found[0].message
    assert ("pci.window", PCIE, "ranges") in check(T, bits=39)  # mmio64 ends at 2^40
    assert check(T, bits=40) == []


def test_interrupt_map_rows_must_resolve():
    imap = T.root.find(PCIE).prop("interrupt-map")  # type: ignore[union-attr]
    cells = list(imap.as_cells())
    bad_pin = cells.copy()
    bad_pin[3] = 5
    found = verify(encode(edit(T, PCIE, set_prop(Prop.cells("interrupt-map", *bad_pin)))))
    assert [f.message for f in found if f.rule == "pci.interrupt-map"] == [
        "pin 5 is not INTA..INTD (1..4)"
    ]
    function = cells.copy()
    function[0] = 0x100  # function 1 of slot 0: bits the mask <0x1800 0 0 7> clears
    found = verify(encode(edit(T, PCIE, set_prop(Prop.cells("interrupt-map", *function)))))
    assert [f.message for f in found if f.rule == "pci.interrupt-map"] == [
        "sets bits the interrupt-map-mask clears: no device matches it"
    ]
    truncated = Prop.cells("interrupt-map", *cells[:-1])
    found = verify(encode(edit(T, PCIE, set_prop(truncated))))
    assert any("is truncated" in f.message for f in found if f.rule == "pci.interrupt-map")
    to_uart = cells.copy()
    to_uart[4] = 2  # the clock's phandle: no interrupt controller
    found = verify(encode(edit(T, PCIE, set_prop(Prop.cells("interrupt-map", *to_uart)))))
    assert any(
        "is not an interrupt controller" in f.message
        for f in found
        if f.rule == "pci.interrupt-map"
    )


def test_a_bridge_without_its_required_properties_is_found():
    found = check(edit(T, PCIE, drop_prop("device_type", "ranges", "reg")))
    assert {("pci.device-type", PCIE, "device_type"), ("pci.ranges", PCIE, "ranges"),
            ("pci.reg", PCIE, "reg")} <= set(found)  # fmt: skip


def test_two_bridges_need_distinct_domains():
    node = T.root.find(PCIE)
    assert node is not None
    from fdtgen.fdt.tree import Node

    twin = Node("pcie@20000000", node.props, node.children)
    tree = DeviceTree(
        Node("", T.root.props, (*T.root.children, twin)), T.reserve, T.boot_cpuid_phys
    )
    found = verify(encode(tree))
    domains = [f for f in found if f.rule == "pci.domain"]
    assert len(domains) == 1 and "also /pcie@10000000's" in domains[0].message
