"""The squib template reproduces layout.rs, and the layout proofs fire."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from fdtgen.devicetree.machine import Machine
from fdtgen.errors import ConfigError, LayoutError, RegionOverlapError, TemplateError
from fdtgen.irq import Intid, Ppi, Spi, gic_cells, irq_from_cells
from fdtgen.layout import resolve
from fdtgen.pipeline import build
from fdtgen.ranges import Range, Region
from fdtgen.spec import Trigger
from fdtgen.template.load import load_template, templates_dir
from fdtgen.template.proofs import check_regions, check_template
from fdtgen.units import GiB, KiB, MiB

# squib_arch/src/layout.rs, retyped from the seed so the template is checked
# against the source, not against itself.
MSI_REGION_BASE = 0x0500_0000
GICD_BASE = 0x0800_0000
GICD_RESERVED_SIZE = 0x0001_0000
GICR_BASE = 0x080A_0000
GICR_RESERVED_END = 0x0E0A_0000
PL011_BASE = 0x0E0A_0000
PL011_SIZE = 0x1000
VIRTIO_MMIO_BASE = 0x0F00_0000
VIRTIO_MMIO_SIZE = 32 * 0x1000
DRAM_BASE = 0x8000_0000
DRAM_MAX_END = 0x00FF_8000_0000 + DRAM_BASE
KERNEL_LOAD_OFFSET = 0x0020_0000
INITRD_FALLBACK_OFFSET = 0x1000_0000
FDT_MAX_SIZE = 0x0020_0000
GICR_REDISTRIBUTOR_SIZE_PER_VCPU = 0x0002_0000


def squib():
    return load_template("squib")


def test_squib_template_equals_the_layout_rs_constants():
    t = squib()
    regions = {r.tag: r.range for r in t.pinned_regions()}
    assert regions["msi"] == Range(MSI_REGION_BASE, 16 * MiB)
    assert regions["gic-dist"] == Range(GICD_BASE, GICD_RESERVED_SIZE)
    assert regions["gic-redist"] == Range(GICR_BASE, GICR_RESERVED_END - GICR_BASE)
    assert regions["uart0"] == Range(PL011_BASE, PL011_SIZE)
    assert regions["virtio"] == Range(VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE)
    assert regions["dram"] == Range(DRAM_BASE, DRAM_MAX_END - DRAM_BASE)
    assert t.gic.redist_stride == GICR_REDISTRIBUTOR_SIZE_PER_VCPU
    assert t.max_vcpus == 32
    assert t.boot.kernel_offset == KERNEL_LOAD_OFFSET
    assert t.boot.initrd_offset == INITRD_FALLBACK_OFFSET
    assert t.boot.fdt_max_size == FDT_MAX_SIZE
    assert 96 * MiB == GICR_RESERVED_END - GICR_BASE  # d22_reserved_window_has_correct_size


def _cells(node, name):
    return node.prop(name).as_cells()


def test_default_tree_addresses_and_intids_equal_the_seed():
    b = build(Machine(vcpus=32))
    root = b.tree.root
    gic = root.find(f"/interrupt-controller@{GICD_BASE:x}")
    assert _cells(gic, "reg") == (
        0,
        GICD_BASE,
        0,
        GICD_RESERVED_SIZE,
        0,
        GICR_BASE,
        0,
        32 * 128 * KiB,
    )
    assert _cells(gic, "interrupts") == (1, 9, 4)  # maintenance PPI 9 = INTID 25
    uart = root.find(f"/serial@{PL011_BASE:x}")
    assert _cells(uart, "reg") == (0, PL011_BASE, 0, PL011_SIZE)
    kind, number, flags = _cells(uart, "interrupts")
    assert irq_from_cells(kind, number).intid == Intid(33) and flags == Trigger.LEVEL_HIGH
    for i in range(32):
        node = root.find(f"/virtio_mmio@{VIRTIO_MMIO_BASE + i * 0x1000:x}")
        kind, number, flags = _cells(node, "interrupts")
        assert irq_from_cells(kind, number).intid == Intid(48 + i)
        assert flags == Trigger.EDGE_RISING
        assert node.prop("dma-coherent") is not None
    timer = _cells(root.find("/timer"), "interrupts")
    assert timer == (1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4)
    mem = root.find(f"/memory@{DRAM_BASE:x}")
    assert _cells(mem, "reg") == (0, DRAM_BASE, 0, 512 * MiB)
    chosen = root.find("/chosen")
    assert chosen.prop("stdout-path").as_strings() == (f"/serial@{PL011_BASE:x}",)
    assert root.find(chosen.prop("stdout-path").as_strings()[0]) is uart


def test_cpu_regs_follow_kvm_mpidr_affinity():
    cpus = build(Machine(vcpus=32)).tree.root.find("/cpus")
    regs = [c.prop("reg").as_cells()[0] for c in cpus.children]
    assert regs[:16] == list(range(16))
    assert regs[16:] == [0x100 + i for i in range(16)]
    assert [c.name for c in cpus.children][16] == "cpu@100"


@pytest.mark.parametrize(
    "irq, trigger, cells",
    [
        (Spi(1), Trigger.LEVEL_HIGH, (0, 1, 4)),
        (Spi(16), Trigger.EDGE_RISING, (0, 16, 1)),
        (Ppi(13), Trigger.LEVEL_HIGH, (1, 13, 4)),
    ],
)
def test_interrupt_cells_come_from_one_conversion(irq, trigger, cells):
    assert gic_cells(irq, trigger) == cells
    assert irq_from_cells(*cells[:2]) == irq


def test_interrupt_types_reject_out_of_range_numbers():
    with pytest.raises(Exception, match="0..987"):
        Spi(988)
    with pytest.raises(Exception, match="0..15"):
        Ppi(16)
    assert Spi(0).intid == Intid(32) and Ppi(0).intid == Intid(16)
    assert Intid(79).spi() == Spi(47)


def _with(t, **changes):
    return replace(t, **changes)


def test_overlapping_regions_name_both_regions_in_hex():
    t = squib()
    bad = _with(t, uart=replace(t.uart, base=0x0E00_0000))
    with pytest.raises(RegionOverlapError) as e:
        check_template(bad)
    msg = str(e.value)
    assert "'gic-redist' [0x80a0000, 0xe0a0000)" in msg and "'uart0' [0xe000000, 0xe001000)" in msg


def test_uart_must_abut_the_redistributor_window():
    t = squib()
    bad = _with(t, uart=replace(t.uart, base=0x0E0B_0000))
    with pytest.raises(LayoutError, match=r"'uart0' .* must abut region 'gic-redist'.*0xe0a0000"):
        check_template(bad)


def test_virtio_must_stay_below_dram():
    t = squib()
    bad = _with(t, virtio=replace(t.virtio, base=0x7FFF_0000))
    with pytest.raises(LayoutError, match="overlaps|below"):
        check_template(bad)


def test_a_gicv3_frame_off_a_64kib_boundary_is_refused():
    """KVM takes the GICv3 distributor, redistributor and ITS addresses 64 KiB aligned."""
    t = squib()
    bad = _with(t, gic=replace(t.gic, dist=Range(0x0800_1000, 0x1_0000)))
    with pytest.raises(LayoutError, match=r"'gic-dist' base 0x8001000 is not aligned to 0x10000"):
        check_template(bad)


def test_an_spi_triggered_level_low_is_refused():
    """Linux's gic_set_type takes an SPI edge-rising or level-high only."""
    t = squib()
    bad = _with(t, uart=replace(t.uart, trigger=Trigger.LEVEL_LOW))
    with pytest.raises(LayoutError, match="'uart0' is an SPI triggered level-low"):
        check_template(bad)


def test_a_shared_spi_triggers_as_its_line():
    t = load_template("crosvm")
    com3 = t.device("com3")
    devices = tuple(
        replace(d, trigger=Trigger.LEVEL_HIGH) if d.tag == "com3" else d for d in t.devices
    )
    assert com3.trigger != Trigger.LEVEL_HIGH
    with pytest.raises(LayoutError, match="'com3' shares SPI 0 .* triggered level-high, but"):
        check_template(_with(t, devices=devices))


def test_window_too_small_for_max_vcpus_is_a_load_time_error():
    t = squib()
    bad = _with(t, max_vcpus=1000)
    with pytest.raises(LayoutError, match="max_vcpus 1000"):
        check_template(bad)


def test_unaligned_region_is_rejected():
    with pytest.raises(LayoutError, match=r"'x' base 0x1234 is not aligned to 0x1000"):
        check_regions([Region("x", Range(0x1234, 0x1000))])


def test_virtio_slots_are_made_once_with_the_template_and_a_layout_takes_the_first_n():
    t = squib()
    assert [(d.tag, d.range, d.spi) for d in t.virtio.transports] == [
        (f"virtio-{i}", Range(VIRTIO_MMIO_BASE + i * 0x1000, 0x1000), Spi(16 + i))
        for i in range(32)
    ]
    layout = resolve(t, vcpus=1, memory=512 * MiB, virtio=5)
    assert layout.virtio == t.virtio.transports[:5]
    moved = replace(t.virtio, base=0x0F10_0000)  # a new window brings its own slots
    assert moved.transports[0].range == Range(0x0F10_0000, 0x1000)


def test_the_last_transport_a_machine_has_must_fit_the_address_width():
    t = squib()
    high = replace(t, virtio=replace(t.virtio, base=4 * 1024 * MiB - 2 * 0x1000))
    layout = resolve(high, vcpus=1, memory=512 * MiB, virtio=2, address_width=32)
    assert layout.virtio[-1].range.end == 1 << 32
    with pytest.raises(ConfigError, match=r"region 'virtio-2' \[0x100000000, 0x100001000\) ends"):
        resolve(high, vcpus=1, memory=512 * MiB, virtio=3, address_width=32)


def test_a_dram_hole_past_the_address_width_is_out_of_rams_way():
    t = load_template("firecracker")  # its mmio64 hole spans [256 GiB, 512 GiB)
    layout = resolve(t, vcpus=1, memory=GiB, virtio=1, address_width=36)
    assert layout.ram == (Range(0x8020_0000, GiB),)
    with pytest.raises(ConfigError) as e:
        resolve(t, vcpus=1, memory=62 * GiB, virtio=1, address_width=36)
    assert e.value.setting == "memory"
    assert "past the 36-bit guest physical address limit 0x1000000000" in str(e.value)


def test_33_vcpus_is_rejected():
    with pytest.raises(ConfigError, match=r"vcpus: 33 is outside 1..32"):
        resolve(squib(), vcpus=33, memory=512 * MiB, virtio=32)


@pytest.mark.parametrize("stride", [4 * MiB, 2**64 - 1, 2**40])
def test_redistributor_stride_overflowing_the_window_is_rejected(stride):
    with pytest.raises(ConfigError, match=r"past the 'gic-redist' window \[0x80a0000, 0xe0a0000\)"):
        resolve(squib(), vcpus=32, memory=512 * MiB, virtio=32, redist_stride=stride)


def test_redistributor_stride_at_the_limit_fits():
    # 32 x 3 MiB = 96 MiB: exactly the window (overlap_check passes at the boundary).
    layout = resolve(squib(), vcpus=32, memory=512 * MiB, virtio=32, redist_stride=3 * MiB)
    assert layout.gic_redist[0].end == GICR_RESERVED_END


def test_ram_past_dram_max_end_is_rejected():
    too_big = DRAM_MAX_END - DRAM_BASE + 4 * KiB
    with pytest.raises(
        ConfigError, match=r"past the DRAM max end 0x10000000000 of template 'squib'"
    ):
        resolve(squib(), vcpus=1, memory=too_big, virtio=0)


def test_ram_up_to_dram_max_end_is_accepted():
    layout = resolve(squib(), vcpus=1, memory=DRAM_MAX_END - DRAM_BASE, virtio=0)
    assert layout.ram[0].end == DRAM_MAX_END


def test_template_files_with_bad_keys_are_rejected(tmp_path: Path):
    text = (templates_dir() / "squib.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[dram]", "[dram]\nbogus = 1"))
    with pytest.raises(TemplateError, match=r"dram\.bogus: unknown key"):
        load_template(str(bad))


@pytest.mark.parametrize("align", ["0x3000", "0x800"])
def test_a_ram_piece_alignment_that_is_no_alignment_is_refused_at_load(tmp_path: Path, align: str):
    text = (templates_dir() / "squib.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[dram]", f"[dram]\npiece_align = {align}"))
    with pytest.raises(TemplateError, match=r"dram\.piece_align: .*must be a power of 2 >= 0x1000"):
        load_template(str(bad))


def test_user_template_gets_the_same_proofs(tmp_path: Path):
    text = (templates_dir() / "squib.toml").read_text()
    bad = tmp_path / "overlap.toml"
    bad.write_text(re.sub(r"base = 0x0F00_0000", "base = 0x0E0A_0000", text))
    with pytest.raises(TemplateError, match=f"^{re.escape(str(bad))}: .*'uart0'.*'virtio'"):
        load_template(str(bad))


def test_transports_of_a_template_whose_window_was_never_placed_are_refused():
    t = load_template("squib")
    unplaced = replace(t, virtio=replace(t.virtio, base=None))
    with pytest.raises(
        LayoutError, match="virtio: 2 transports, but the template's window is unplaced"
    ):
        resolve(unplaced, vcpus=1, memory=256 * MiB, virtio=2, serial=True)
    assert resolve(unplaced, vcpus=1, memory=256 * MiB, virtio=0, serial=True).virtio == ()
