"""Placement against booting.rst, checked by rules written here, not by placement.py.

The checker below restates Documentation/arch/arm64/booting.rst (quoted in
REFERENCE.md §3-§4) over plain numbers: it never calls fdtgen.placement.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import libfdt
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from fdtgen.boot.image import declared_kernel, read_kernel
from fdtgen.boot.placement import place
from fdtgen.devicetree.machine import Machine
from fdtgen.errors import ConfigError, PlacementError
from fdtgen.manifest import manifest_for, to_json
from fdtgen.pipeline import Boot, build
from fdtgen.ranges import Range
from fdtgen.template.load import builtin_names, load_template
from fdtgen.template.model import BootSpec

from .conftest import FIXTURES

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
DRAM_BASE = 0x8000_0000  # squib layout.rs DRAM_BASE
KERNEL_LOAD_OFFSET = 2 * MiB  # squib layout.rs KERNEL_LOAD_OFFSET
INITRD_FALLBACK_OFFSET = 256 * MiB  # squib layout.rs INITRD_FALLBACK_OFFSET
SQUIB_BOOT = BootSpec(kernel_offset=2 * MiB, initrd_offset=256 * MiB, fdt_max_size=2 * MiB)


def down(v: int, a: int) -> int:
    return v // a * a


def up(v: int, a: int) -> int:
    return -(-v // a) * a


def check_booting_rules(
    ram: list[tuple[int, int]],
    header: tuple[int, int, int],
    file_size: int,
    man: dict,
    blob: bytes | None = None,
) -> None:
    """Every booting.rst rule, from the manifest's numbers (``ram`` as ``(base, end)``)."""
    text_offset_field, image_size, _flags = header
    k, dtb, regs, initrd = man["kernel"], man["dtb"], man["registers"], man["initrd"]

    def in_ram(base: int, end: int) -> bool:
        return any(lo <= base and end <= hi for lo, hi in ram)

    def overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    # "Where image_size is zero, text_offset can be assumed to be 0x80000."
    text_offset = 0x80000 if image_size == 0 else text_offset_field
    assert k["text_offset"] == text_offset
    # "The Image must be placed text_offset bytes from a 2MB aligned base address
    # anywhere in usable system RAM and called there."
    load = k["load_address"]
    assert (load - text_offset) % (2 * MiB) == 0
    assert k["entry"] == load == regs["pc"]
    # "At least image_size bytes from the start of the image must be free": and the
    # file itself must fit too.
    kernel = (load, load + max(image_size, file_size))
    assert k["reserved"] >= max(image_size, file_size)
    assert in_ram(*kernel)
    assert in_ram(load - text_offset, load)  # the 2 MiB base itself is RAM
    # "The dtb must be placed on an 8-byte boundary and must not exceed 2 megabytes";
    # "it must not be placed within any 2M region which must be mapped with any
    # specific attributes": here, no 2M block holding DTB bytes holds anything else.
    assert dtb["address"] % 8 == 0
    assert 0 < dtb["size"] <= 2 * MiB
    assert in_ram(dtb["address"], dtb["address"] + dtb["size"])
    dtb_blocks = (down(dtb["address"], 2 * MiB), up(dtb["address"] + dtb["size"], 2 * MiB))
    assert not overlap(dtb_blocks, kernel)
    # The whole block is RAM: nothing outside RAM (a device) shares the mapping.
    assert in_ram(*dtb_blocks)
    # x0 = dtb, x1 = x2 = x3 = 0 ("reserved for future use").
    assert regs["x0"] == dtb["address"]
    assert regs["x1"] == regs["x2"] == regs["x3"] == 0
    if initrd is not None:
        span = (initrd["address"], initrd["address"] + initrd["size"])
        assert in_ram(*span)
        assert not overlap(span, kernel)
        assert not overlap(span, dtb_blocks)
        # "it must reside entirely within a 1 GB aligned physical memory window of up
        # to 32 GB in size that fully covers the kernel Image as well."
        lo = down(min(kernel[0], span[0]), GiB)
        hi = up(max(kernel[1], span[1]), GiB)
        assert hi - lo <= 32 * GiB
    if blob is not None:
        assert len(blob) == dtb["size"]
        buf = bytearray(blob)
        assert libfdt.fdt_check_full(buf, len(buf)) == 0
        fdt = libfdt.Fdt(buf)
        chosen = fdt.path_offset("/chosen")
        props = {}
        off = fdt.first_property_offset(chosen, [libfdt.NOTFOUND])
        while off >= 0:
            p = fdt.get_property_by_offset(off)
            props[p.name] = bytes(p)
            off = fdt.next_property_offset(off, [libfdt.NOTFOUND])
        if initrd is None:
            assert "linux,initrd-start" not in props and "linux,initrd-end" not in props
        else:
            # chosen.yaml: start inclusive, end exclusive; 64-bit cells.
            assert props["linux,initrd-start"] == struct.pack(">Q", initrd["address"])
            assert props["linux,initrd-end"] == struct.pack(
                ">Q", initrd["address"] + initrd["size"]
            )


def manifest_dict(b) -> dict:
    return json.loads(to_json(manifest_for(b)))


def squib_build(memory: int, kernel, initrd_size: int | None = None):
    return build(Machine(memory=memory, vcpus=1), Boot(kernel=kernel, initrd_size=initrd_size))


def test_squib_template_boot_policy_is_squibs_constants():
    assert load_template("squib").boot == SQUIB_BOOT


def test_text_offset_0x80000_sits_above_a_2mib_aligned_base_unlike_squib():
    k = declared_kernel(20 * MiB, text_offset=0x80000, image_size=24 * MiB)
    p = place([Range(DRAM_BASE, 512 * MiB)], SQUIB_BOOT, k)
    # squib: max(DRAM + text_offset, DRAM + 2 MiB) = 0x8020_0000, base not 2 MiB aligned.
    assert p.kernel.base == DRAM_BASE + KERNEL_LOAD_OFFSET + 0x80000
    assert p.kernel_base == DRAM_BASE + KERNEL_LOAD_OFFSET


def test_text_offset_0_loads_at_dram_plus_2mib():
    k = declared_kernel(20 * MiB, text_offset=0, image_size=24 * MiB)
    p = place([Range(DRAM_BASE, 512 * MiB)], SQUIB_BOOT, k, 8 * MiB)
    assert p.kernel == Range(DRAM_BASE + 2 * MiB, 24 * MiB)
    assert p.initrd == Range(DRAM_BASE + INITRD_FALLBACK_OFFSET, 8 * MiB)
    assert p.dtb == Range(DRAM_BASE + 510 * MiB, 2 * MiB)  # the last 2 MiB of RAM
    assert p.registers.x0 == p.dtb.base and p.registers.pc == p.kernel.base


def test_reserve_is_the_larger_of_file_and_image_size():
    small_header = declared_kernel(30 * MiB, text_offset=0, image_size=10 * MiB)
    p = place([Range(DRAM_BASE, 512 * MiB)], SQUIB_BOOT, small_header)
    assert p.kernel.size == 30 * MiB


def test_initrd_follows_a_big_kernel_by_16mib_on_a_2mib_grain():
    k = declared_kernel(300 * MiB + 5, text_offset=0, image_size=0x1234_5678)
    p = place([Range(DRAM_BASE, 2 * GiB)], SQUIB_BOOT, k, 64 * MiB)
    assert p.initrd is not None
    assert p.initrd.base == up(p.kernel.end + 16 * MiB, 2 * MiB)


def test_small_ram_falls_back_to_the_lowest_legal_place():
    k = declared_kernel(20 * MiB, text_offset=0, image_size=21 * MiB)
    p = place([Range(DRAM_BASE, 64 * MiB)], SQUIB_BOOT, k, 16 * MiB)
    assert p.initrd == Range(up(p.kernel.end, 2 * MiB), 16 * MiB)


def test_fallback_keeps_the_gap_when_image_size_is_unknown():
    k = declared_kernel(20 * MiB)  # image_size 0: the BSS size is unknown
    p = place([Range(DRAM_BASE, 80 * MiB)], SQUIB_BOOT, k, 16 * MiB)
    assert p.initrd is not None
    assert p.initrd.base >= p.kernel.end + 16 * MiB


def test_initrd_goes_page_aligned_when_2mib_alignment_would_not_fit():
    k = declared_kernel(20 * MiB + 4 * KiB, text_offset=0, image_size=20 * MiB + 4 * KiB)
    # kernel [2M, 22M+4K); DTB block [62M, 64M); room for 40M - 4K bytes.
    p = place([Range(DRAM_BASE, 64 * MiB)], SQUIB_BOOT, k, 40 * MiB - 4 * KiB)
    assert p.initrd == Range(DRAM_BASE + 22 * MiB + 4 * KiB, 40 * MiB - 4 * KiB)


def test_dtb_slot_uses_the_last_whole_2mib_block_when_ram_ends_unaligned():
    k = declared_kernel(MiB, text_offset=0, image_size=MiB)
    p = place([Range(DRAM_BASE, 65 * MiB + 4 * KiB)], SQUIB_BOOT, k)
    assert p.dtb == Range(DRAM_BASE + 62 * MiB, 2 * MiB)


RAM_START_BOOT = BootSpec(
    kernel_offset=0, initrd_offset=0, fdt_max_size=2 * MiB, dtb="ram-start", initrd="top-of-ram"
)


def test_a_kernel_searched_from_ram_base_steps_over_a_dtb_block_at_ram_start():
    k = declared_kernel(MiB, text_offset=0, image_size=MiB)
    p = place([Range(DRAM_BASE, 64 * MiB)], RAM_START_BOOT, k)
    assert p.dtb == Range(DRAM_BASE, 2 * MiB)
    assert p.kernel == Range(DRAM_BASE + 2 * MiB, MiB)


def test_a_kernel_past_a_dtb_block_at_ram_start_is_short_of_ram_not_of_the_block():
    k = declared_kernel(2 * MiB, text_offset=0, image_size=2 * MiB)
    boot = BootSpec(kernel_offset=4 * MiB, initrd_offset=0, fdt_max_size=2 * MiB, dtb="ram-start")
    with pytest.raises(PlacementError) as e:
        place([Range(DRAM_BASE, 2 * MiB)], boot, k)
    assert str(e.value).endswith(
        f"in RAM [{DRAM_BASE:#x}, {DRAM_BASE + 2 * MiB:#x}), below RAM ending at "
        f"{DRAM_BASE + 2 * MiB:#x}: 0x400000 bytes short"
    )


def test_initrd_crosses_into_a_second_ram_range_inside_the_window():
    ram = [Range(DRAM_BASE, 64 * MiB), Range(DRAM_BASE + GiB, GiB)]
    k = declared_kernel(20 * MiB, text_offset=0, image_size=20 * MiB)
    p = place(ram, SQUIB_BOOT, k, 100 * MiB)
    assert p.initrd is not None
    assert p.initrd.base == DRAM_BASE + GiB  # too big for the first range
    assert p.dtb.end == DRAM_BASE + 2 * GiB


def test_flags_bit3_kernel_must_end_within_48_bits():
    ram = [Range((1 << 48) - 2 * MiB, 64 * MiB)]
    k = declared_kernel(4 * MiB, text_offset=0, image_size=4 * MiB, flags=0x8)
    with pytest.raises(PlacementError, match=r"past the 48-bit physical range 0x1000000000000"):
        place(ram, BootSpec(kernel_offset=0, initrd_offset=0, fdt_max_size=2 * MiB), k)


FAILURES = [
    pytest.param(
        32 * MiB,
        declared_kernel(40 * MiB, text_offset=0, image_size=40 * MiB),
        None,
        "placement: kernel does not fit: it needs [0x80200000, 0x82a00000) (text_offset 0x0 "
        "above a 2 MiB-aligned base at or above 0x80200000, 0x2800000 bytes reserved) in RAM "
        "[0x80000000, 0x82000000), below the DTB block at 0x81e00000: 0xc00000 bytes short",
        id="kernel-too-big",
    ),
    pytest.param(
        48 * MiB,
        declared_kernel(20 * MiB, text_offset=0, image_size=20 * MiB),
        28 * MiB,
        "placement: initrd (0x1c00000 bytes) does not fit: it must start at or above 0x81600000 "
        "(after the kernel), inside RAM and the 1 GiB-aligned 32 GiB window "
        "[0x80000000, 0x880000000) that covers the kernel, outside the DTB block "
        "[0x82e00000, 0x83000000); the largest free span is 0x1800000 bytes: 0x400000 bytes short",
        id="initrd-too-big",
    ),
    pytest.param(
        40 * GiB,
        declared_kernel(20 * MiB, text_offset=0, image_size=20 * MiB),
        33 * GiB,
        "placement: initrd (0x840000000 bytes) does not fit: it must start at or above 0x81600000 "
        "(after the kernel), inside RAM and the 1 GiB-aligned 32 GiB window "
        "[0x80000000, 0x880000000) that covers the kernel, outside the DTB block "
        "[0xa7fe00000, 0xa80000000); the largest free span is 0x7fea00000 bytes: "
        "0x41600000 bytes short",
        id="initrd-outside-the-32gib-window",
    ),
]


@pytest.mark.parametrize("memory, kernel, initrd, message", FAILURES)
def test_what_does_not_fit_is_named_with_where_and_by_how_much(memory, kernel, initrd, message):
    with pytest.raises(PlacementError) as e:
        squib_build(memory, kernel, initrd)
    assert str(e.value) == message


@pytest.mark.parametrize("memory", [128 * MiB, 6 * GiB], ids=["128MiB", "6GiB"])
@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_template_places_a_real_kernel_by_the_rules(name, memory):
    kernel = read_kernel(str(FIXTURES / "kernel" / "vmlinuz-6.1.0-56-cloud-arm64.head"))
    b = build(
        Machine(template=name, memory=memory, vcpus=1, virtio=0),
        Boot(kernel=kernel, initrd_size=16 * MiB + 123),
    )
    man = manifest_dict(b)
    ram = [(m["address"], m["address"] + m["size"]) for m in man["memory"]]
    assert sum(hi - lo for lo, hi in ram) == memory
    check_booting_rules(ram, (0, 0x1AB_0000, 0xA), 4096, man, b.blob)
    # The template's policy: nothing below RAM base + kernel_offset.
    boot = load_template(name).boot
    assert man["kernel"]["load_address"] >= ram[0][0] + boot.kernel_offset
    assert man["dtb"]["reserved"] == boot.fdt_max_size


def test_initrd_without_a_kernel_is_rejected():
    from fdtgen.errors import ConfigError

    with pytest.raises(ConfigError, match="initrd: 0x1000 bytes given without a kernel"):
        Boot(initrd_size=4096)


def test_dtb_over_its_slot_is_a_placement_error(tmp_path):
    text = load_template("squib").path
    src = Path(text).read_text().replace('fdt_max_size = "2MiB"', 'fdt_max_size = "1KiB"')
    t = tmp_path / "tiny-fdt.toml"
    t.write_text(src)
    k = declared_kernel(MiB, text_offset=0, image_size=MiB)
    with pytest.raises(
        PlacementError, match=r"dtb is 0x[0-9a-f]+ bytes, over its 0x400-byte slot at 0x9fe00000"
    ):
        build(Machine(template=str(t)), Boot(kernel=k))


# -- Hypothesis: whatever fits obeys every rule; whatever fails says why ---------------

MEMORY = st.one_of(
    st.integers(4, 2048).map(lambda n: n * MiB),
    st.integers(1, 16384).map(lambda n: n * 4 * KiB + 8 * MiB),  # RAM ends not 2 MiB aligned
    st.sampled_from([33 * GiB, 40 * GiB, 64 * GiB]),
)
TEXT_OFFSET = st.one_of(
    st.sampled_from([0, 0x80000]), st.integers(0, 511).map(lambda n: n * 4 * KiB)
)
INITRD = st.one_of(
    st.none(),
    st.integers(1, 96 * MiB),
    st.integers(1, 36 * GiB),
)


@st.composite
def kernels(draw: st.DrawFn):
    size = draw(st.integers(64, 96 * MiB))
    image_size = draw(
        st.one_of(st.just(0), st.integers(size, size + 64 * MiB), st.integers(64, size))
    )
    flags = draw(st.sampled_from([0x0, 0x2, 0xA, 0x8, 0x6]))
    return size, draw(TEXT_OFFSET), image_size, flags


def no_room_is_justified(
    memory: int, size: int, text_offset: int, image_size: int, initrd: int | None
) -> bool:
    """The squib policy's arithmetic (kernel lowest, DTB in the top 2 MiB block, initrd
    between them and inside the kernel's 32 GiB window) leaves no room."""
    to = 0x80000 if image_size == 0 else text_offset
    load = up(DRAM_BASE + KERNEL_LOAD_OFFSET, 2 * MiB) + to
    kernel_end = load + max(size, image_size)
    dtb_block = down(DRAM_BASE + memory - 2 * MiB, 2 * MiB)
    if kernel_end > dtb_block:
        return True
    if initrd is None:
        return False
    lowest = up(kernel_end + (16 * MiB if image_size == 0 else 0), 4 * KiB)
    top = min(dtb_block, down(load, GiB) + 32 * GiB)
    return lowest + initrd > top


@given(memory=MEMORY, kernel=kernels(), initrd=INITRD)
def test_placement_obeys_booting_rst_or_says_what_does_not_fit(memory, kernel, initrd):
    size, text_offset, image_size, flags = kernel
    k = declared_kernel(size, text_offset, image_size, flags)
    try:
        b = squib_build(memory, k, initrd)
    except PlacementError as e:
        msg = str(e)
        note(msg)
        assert re.fullmatch(
            r"placement: (kernel|initrd) .*does not fit: .* 0x[0-9a-f]+ bytes short", msg
        )
        short = int(msg.rsplit(" bytes short", 1)[0].rsplit(" ", 1)[1], 16)
        assert short > 0
        assert no_room_is_justified(memory, size, text_offset, image_size, initrd)
        return
    man = manifest_dict(b)
    note(json.dumps({k: man[k] for k in ("kernel", "initrd", "dtb")}))
    assert man["memory"] == [{"address": DRAM_BASE, "size": memory}]
    check_booting_rules(
        [(DRAM_BASE, DRAM_BASE + memory)], (text_offset, image_size, flags), size, man, b.blob
    )
    # The policy: nothing below DRAM + 2 MiB; the DTB in the last whole 2 MiB block.
    assert (
        man["kernel"]["load_address"] - man["kernel"]["text_offset"]
        >= DRAM_BASE + KERNEL_LOAD_OFFSET
    )
    assert man["dtb"]["address"] == down(DRAM_BASE + memory - 2 * MiB, 2 * MiB)
    assert (initrd is None) == (man["initrd"] is None)


@given(
    first=st.integers(4, 512).map(lambda n: n * MiB),
    gap=st.integers(0, 40).map(lambda n: n * 256 * MiB),
    second=st.integers(4, 4096).map(lambda n: n * MiB),
    kernel=kernels(),
    initrd=INITRD,
)
def test_placement_over_two_ram_ranges_obeys_booting_rst(first, gap, second, kernel, initrd):
    size, text_offset, image_size, flags = kernel
    ram = [Range(DRAM_BASE, first), Range(DRAM_BASE + first + gap, second)]
    k = declared_kernel(size, text_offset, image_size, flags)
    try:
        p = place(ram, SQUIB_BOOT, k, initrd)
    except PlacementError as e:
        assert re.fullmatch(r"placement: (kernel|initrd|dtb) .*0x[0-9a-f]+ bytes short", str(e))
        return
    man = {
        "kernel": {
            "load_address": p.kernel.base,
            "entry": p.entry,
            "text_offset": p.text_offset,
            "reserved": p.kernel.size,
        },
        "initrd": None if p.initrd is None else {"address": p.initrd.base, "size": p.initrd.size},
        "dtb": {"address": p.dtb.base, "size": p.dtb.size},
        "registers": {
            "x0": p.registers.x0,
            "x1": p.registers.x1,
            "x2": p.registers.x2,
            "x3": p.registers.x3,
            "pc": p.registers.pc,
        },
    }
    check_booting_rules([(r.base, r.end) for r in ram], (text_offset, image_size, flags), size, man)


@given(
    template=st.sampled_from(builtin_names()),
    pages=st.integers(64 * 256, 4 * 1024 * 256),  # 64 MiB .. 4 GiB in 4 KiB pages
    kernel=kernels(),
    initrd=INITRD,
)
def test_every_template_places_per_booting_rst_for_odd_ram_sizes(template, pages, kernel, initrd):
    size, text_offset, image_size, flags = kernel
    t = load_template(template)
    machine = Machine(
        template=template, vcpus=1, memory=pages * 4096, virtio=min(2, t.virtio.slots)
    )
    try:
        b = build(
            machine,
            Boot(kernel=declared_kernel(size, text_offset, image_size, flags), initrd_size=initrd),
        )
    except PlacementError as e:
        assert re.fullmatch(r"placement: (kernel|initrd|dtb) .*0x[0-9a-f]+ bytes short", str(e)), (
            str(e)
        )
        return
    except ConfigError as e:  # RAM the template cannot hold (e.g. past a hole's limit)
        assert str(e).startswith("memory:"), str(e)
        return
    man = manifest_dict(b)
    ram = [(r["address"], r["address"] + r["size"]) for r in man["memory"]]
    check_booting_rules(ram, (text_offset, image_size, flags), size, man, b.blob)


def test_a_build_changes_none_of_its_inputs_and_puts_the_initrd_and_seeds_in_chosen():
    m = Machine(vcpus=2, memory=512 * MiB)
    boot = Boot(kernel=declared_kernel(20 * MiB), initrd_size=4 * MiB, rng_seed=32, kaslr_seed=True)
    before = (repr(m), repr(boot))
    b = build(m, boot)
    assert (repr(m), repr(boot)) == before
    assert b.machine is m and b.boot is boot
    fdt = libfdt.Fdt(b.blob)
    chosen = fdt.path_offset("/chosen")
    start = int.from_bytes(fdt.getprop(chosen, "linux,initrd-start"), "big")
    assert b.placement is not None and b.placement.initrd is not None
    assert start == b.placement.initrd.base
    assert len(fdt.getprop(chosen, "rng-seed")) == 32
    assert len(fdt.getprop(chosen, "kaslr-seed")) == 8
    # the same machine built again without boot inputs has none of them
    plain = libfdt.Fdt(build(m).blob)
    names = [plain.get_property_by_offset(o).name for o in _props(plain, "/chosen")]
    assert names == ["bootargs", "stdout-path"]


def _props(fdt, path):
    off = fdt.first_property_offset(fdt.path_offset(path), quiet=[libfdt.NOTFOUND])
    while off >= 0:
        yield off
        off = fdt.next_property_offset(off, quiet=[libfdt.NOTFOUND])


@pytest.mark.parametrize(
    ("template", "ram", "vmm", "fdtgen"),
    [
        # libkrun: fdt_addr = ram_last_addr - FDT_MAX_SIZE (2 MiB), RAM from 2 GiB.
        ("libkrun", [Range(0x8000_0000, 1025 * MiB)], 0xBFF0_0000, 0xBFE0_0000),
        # Firecracker: the same at the end of the first DRAM range, below the hole.
        (
            "firecracker",
            [Range(0x8000_0000, 1025 * MiB), Range(0x80_0000_0000, GiB)],
            0xBFF0_0000,
            0xBFE0_0000,
        ),
    ],
)
def test_an_end_of_ram_dtb_moved_to_a_whole_block_is_noted(template, ram, vmm, fdtgen):
    boot = load_template(template).boot
    k = declared_kernel(8 * MiB, text_offset=0, image_size=8 * MiB)
    p = place(ram, boot, k)
    assert p.dtb.base == fdtgen
    (note,) = p.notes
    assert f"at the end of RAM, {vmm:#x}" in note and f"fdtgen puts it at {fdtgen:#x}" in note
    aligned = [Range(r.base, r.size - MiB) if r is ram[0] else r for r in ram]
    assert place(aligned, boot, k).notes == ()  # RAM ending on a 2 MiB boundary: the VMM's place


def test_a_kvmtool_dtb_moved_to_a_whole_block_is_noted():
    """kvmtool (arm/kvm.c): ALIGN(limit - FDT_MAX_SIZE - 2 MiB, 2 MiB), limit the last
    byte below RAM base + min(RAM, 256 MiB). With 101 MiB of RAM that is 100 MiB in,
    a block RAM ends inside; fdtgen takes the whole block below it."""
    boot = load_template("kvmtool").boot
    k = declared_kernel(8 * MiB, text_offset=0, image_size=8 * MiB)
    p = place([Range(0x8000_0000, 101 * MiB)], boot, k)
    assert p.dtb.base == 0x8000_0000 + 98 * MiB
    (note,) = p.notes
    assert f"at {0x8000_0000 + 100 * MiB:#x}, the start of a 2 MiB block RAM ends inside" in note
    # 1 GiB of RAM: both put it 254 MiB in, and there is no note.
    p = place([Range(0x8000_0000, GiB)], boot, k)
    assert p.dtb.base == 0x8000_0000 + 254 * MiB
    assert p.notes == ()
