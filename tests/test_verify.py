"""``fdtgen verify``: clean on every blob fdtgen and QEMU produce; each rule fires when broken.

Every broken blob starts from a valid one and changes one thing, so a test
shows that exactly the rule under test notices it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fdtgen.boot.image import declared_kernel
from fdtgen.checks import Finding, Options, verify
from fdtgen.checks.index import TreeIndex
from fdtgen.checks.manifest import MANIFEST_MAX_SIZE, load_manifest
from fdtgen.devicetree.machine import Machine
from fdtgen.errors import BlobError, ManifestError
from fdtgen.fdt.encode import encode
from fdtgen.fdt.tree import DeviceTree, Node, Prop
from fdtgen.manifest import from_json, manifest_for, to_json
from fdtgen.pipeline import Boot, build
from fdtgen.template.load import builtin_names, load_template
from fdtgen.units import GiB, MiB

from .conftest import FIXTURES, ROOT, run_fdtgen
from .test_parse import END_NODE, begin, header, raw_blob, u32

QEMU = FIXTURES / "qemu"
KERNEL = FIXTURES / "kernel" / "vmlinuz-6.1.0-56-cloud-arm64.head"

NodeEdit = Callable[[Node], Node | None]


def edit(tree: DeviceTree, path: str, fn: NodeEdit) -> DeviceTree:
    """``tree`` with the node at ``path`` replaced by ``fn(node)`` (``None`` removes it)."""
    parts = [p for p in path.strip("/").split("/") if p]

    def walk(node: Node, depth: int) -> Node | None:
        if depth == len(parts):
            return fn(node)
        kids = []
        for c in node.children:
            kids.append(walk(c, depth + 1) if c.name == parts[depth] else c)
        return Node(node.name, node.props, tuple(k for k in kids if k is not None), node.label)

    root = walk(tree.root, 0)
    assert root is not None
    return DeviceTree(root, tree.reserve, tree.boot_cpuid_phys)


def set_prop(*props: Prop) -> NodeEdit:
    def fn(node: Node) -> Node:
        names = {p.name for p in props}
        kept = [p for p in node.props if p.name not in names]
        return Node(node.name, (*kept, *props), node.children, node.label)

    return fn


def drop_prop(*names: str) -> NodeEdit:
    return lambda node: Node(
        node.name, tuple(p for p in node.props if p.name not in names), node.children, node.label
    )


def add_child(child: Node) -> NodeEdit:
    return lambda node: Node(node.name, node.props, (*node.children, child), node.label)


def remove(node: Node) -> None:
    return None


def keys(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(f.rule, f.path, f.prop) for f in findings}


BASE = build(Machine(vcpus=2, virtio=2))
GIC = "/interrupt-controller@8000000"
UART = "/serial@e0a0000"
VIRTIO0, VIRTIO1 = "/virtio_mmio@f000000", "/virtio_mmio@f001000"


def check(tree: DeviceTree, **options: object) -> list[Finding]:
    return verify(encode(tree), Options(**options))  # type: ignore[arg-type]


def test_the_base_blob_is_clean_with_every_checker(dtc):
    assert verify(BASE.blob, Options(dtc=dtc.exe, template=load_template("squib"))) == []


def _machines(name: str) -> list[Machine]:
    t = load_template(name)
    return [
        Machine(template=name, vcpus=1, virtio=0, serial=False),
        Machine(template=name, vcpus=min(t.max_vcpus, 5), virtio=t.virtio.slots, memory=2 * GiB),
    ]


@pytest.mark.parametrize("name", builtin_names())
def test_every_blob_fdtgen_builds_for_every_template_verifies_clean(dtc, name):
    template = load_template(name)
    for m in _machines(name):
        blob = build(m).blob
        found = verify(blob, Options(dtc=dtc.exe, template=template))
        assert found == [], f"{m}: " + "\n".join(map(str, found))


@pytest.mark.parametrize("name", builtin_names())
def test_a_placed_boot_verifies_clean_against_its_own_manifest(tmp_path, name):
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(os.urandom(300 * 1024))
    out, manifest = tmp_path / "guest.dtb", tmp_path / "boot.json"
    slots = str(load_template(name).virtio.slots)
    r = fdtgen(
        "build",
        "--template",
        name,
        "--virtio",
        slots,
        "--kernel",
        str(KERNEL),
        "--initrd",
        str(initrd),
        "-o",
        str(out),
        "--manifest",
        str(manifest),
    )
    assert r.returncode == 0, r.stderr
    r = fdtgen("verify", str(out), "--manifest", str(manifest), "--template", name)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.endswith(": clean\n")


def test_qemu_dump_verifies_clean_against_the_qemu_virt_template(dtc):
    blob = (QEMU / "virt-gicv3.dtb").read_bytes()
    assert verify(blob, Options(dtc=dtc.exe, template=load_template("qemu-virt"))) == []


def test_qemu_gicv2_dump_verifies_clean(dtc):
    assert verify((QEMU / "virt-gicv2.dtb").read_bytes(), Options(dtc=dtc.exe)) == []


def test_qemu_dump_breaks_the_squib_template_where_its_map_differs():
    found = verify((QEMU / "virt-gicv3.dtb").read_bytes(), Options(template=load_template("squib")))
    rules = {f.rule for f in found}
    assert {"template.uart0", "template.virtio", "template.dram"} <= rules


# Bindings, interrupts and regions: one broken rule per case, on BASE's tree.
T = BASE.tree


def msi_frame(kind: str, base: int, size: int) -> Node:
    """A complete GICv3 ITS (``its``) or GICv2m frame (``v2m``) node of ``size`` bytes."""
    props = [Prop.empty("msi-controller"), Prop.cells("reg", 0, base, 0, size)]
    if kind == "its":
        compatible, name = "arm,gic-v3-its", "msi-controller"
        props.insert(1, Prop.cells("#msi-cells", 1))
    else:
        compatible, name = "arm,gic-v2m-frame", "v2m"
    return Node(f"{name}@{base:x}", (Prop.strings("compatible", compatible), *props))


CASES = [
    ("root.cells", "/", "#size-cells", edit(T, "/", drop_prop("#size-cells"))),
    ("cpus.node", "/cpus", "", edit(T, "/cpus", remove)),
    (
        "cpus.cells",
        "/cpus",
        "#size-cells",
        edit(T, "/cpus", set_prop(Prop.cells("#size-cells", 1))),
    ),
    ("cpus.reg", "/cpus/cpu@1", "reg", edit(T, "/cpus/cpu@1", set_prop(Prop.cells("reg", 0)))),
    (
        "cpus.enable-method",
        "/cpus/cpu@1",
        "enable-method",
        edit(T, "/cpus/cpu@1", drop_prop("enable-method")),
    ),
    (
        "cpus.release-addr",
        "/cpus/cpu@1",
        "cpu-release-addr",
        edit(T, "/cpus/cpu@1", set_prop(Prop.strings("enable-method", "spin-table"))),
    ),
    ("psci.node", "/psci", "", edit(T, "/psci", remove)),
    ("psci.method", "/psci", "method", edit(T, "/psci", set_prop(Prop.strings("method", "svc")))),
    ("memory.node", "/memory", "", edit(T, "/memory@80000000", remove)),
    (
        "memory.reg",
        "/memory@80000000",
        "reg",
        edit(T, "/memory@80000000", set_prop(Prop.cells("reg", 0, 0x9000_0000, 0, 0x1000_0000))),
    ),
    ("gic.node", "/", "", edit(T, GIC, remove)),
    (
        "gic.interrupt-controller",
        GIC,
        "interrupt-controller",
        edit(T, GIC, drop_prop("interrupt-controller")),
    ),
    (
        "gic.interrupt-cells",
        GIC,
        "#interrupt-cells",
        edit(T, GIC, set_prop(Prop.cells("#interrupt-cells", 2))),
    ),
    ("gic.reg", GIC, "reg", edit(T, GIC, set_prop(Prop.cells("reg", 0, 0x800_0000, 0, 0x1_0000)))),
    (
        "gic.redist-size",
        GIC,
        "reg",
        edit(
            T,
            GIC,
            set_prop(Prop.cells("reg", 0, 0x800_0000, 0, 0x1_0000, 0, 0x80A_0000, 0, 0x2_0000)),
        ),
    ),
    (
        "gic.its",
        f"{GIC}/msi-controller@8080000",
        "#msi-cells",
        edit(
            T,
            GIC,
            add_child(
                Node(
                    "msi-controller@8080000",
                    (
                        Prop.strings("compatible", "arm,gic-v3-its"),
                        Prop.empty("msi-controller"),
                        Prop.cells("reg", 0, 0x808_0000, 0, 0x2_0000),
                    ),
                )
            ),
        ),
    ),
    (
        "gic.v2m",
        f"{GIC}/v2m@8080000",
        "msi-controller",
        edit(
            T,
            GIC,
            add_child(
                Node(
                    "v2m@8080000",
                    (
                        Prop.strings("compatible", "arm,gic-v2m-frame"),
                        Prop.cells("reg", 0, 0x808_0000, 0, 0x1000),
                    ),
                )
            ),
        ),
    ),
    (  # a GICv3 distributor short of GICD_PIDR2 (0xffe8), which Linux reads to probe it
        "gic.frame-size",
        GIC,
        "reg",
        edit(
            T,
            GIC,
            set_prop(Prop.cells("reg", 0, 0x800_0000, 0, 0x1000, 0, 0x80A_0000, 0, 0x4_0000)),
        ),
    ),
    (  # an ITS short of GITS_PIDR2
        "gic.frame-size",
        f"{GIC}/msi-controller@8080000",
        "reg",
        edit(T, GIC, add_child(msi_frame("its", 0x808_0000, 0x1000))),
    ),
    (  # a v2m frame short of MSI_IIDR (0xfcc)
        "gic.frame-size",
        f"{GIC}/v2m@8080000",
        "reg",
        edit(T, GIC, add_child(msi_frame("v2m", 0x808_0000, 0xFCC))),
    ),
    (
        "pl011.clocks",
        UART,
        "clocks",
        edit(T, UART, set_prop(Prop.cells("clocks", 2), Prop.strings("clock-names", "apb_pclk"))),
    ),
    ("pl011.interrupts", UART, "interrupts", edit(T, UART, drop_prop("interrupts"))),
    ("timer.node", "/timer", "", edit(T, "/timer", remove)),
    (
        "timer.interrupts",
        "/timer",
        "interrupts",
        edit(T, "/timer", set_prop(Prop.cells("interrupts", 1, 13, 4, 1, 14, 4))),
    ),
    (
        "virtio.reg",
        VIRTIO0,
        "reg",
        edit(T, VIRTIO0, set_prop(Prop.cells("reg", 0, 0xF00_0000, 0, 0x100))),
    ),
    (
        "virtio.interrupts",
        VIRTIO0,
        "interrupts",
        edit(T, VIRTIO0, set_prop(Prop.cells("interrupts", 0, 16, 1, 0, 20, 1))),
    ),
    (
        "chosen.stdout-path",
        "/chosen",
        "stdout-path",
        edit(T, "/chosen", set_prop(Prop.strings("stdout-path", "/serial@9000000"))),
    ),
    (
        "aliases.path",
        "/aliases",
        "serial0",
        edit(T, "/aliases", set_prop(Prop.strings("serial0", "/hvlite/uart"))),
    ),
    (
        "phandle.reference",
        VIRTIO0,
        "interrupt-parent",
        edit(T, VIRTIO0, set_prop(Prop.cells("interrupt-parent", 0x99))),
    ),
    ("phandle.unique", GIC, "phandle", edit(T, "/apb-pclk", set_prop(Prop.cells("phandle", 1)))),
    (
        "phandle.value",
        "/apb-pclk",
        "phandle",
        edit(T, "/apb-pclk", set_prop(Prop.cells("phandle", 0))),
    ),
    ("phandle.cells", UART, "clocks", edit(T, "/apb-pclk", drop_prop("#clock-cells"))),
    ("interrupts.parent", VIRTIO0, "interrupts", edit(T, "/", drop_prop("interrupt-parent"))),
    (
        "interrupts.cells",
        VIRTIO0,
        "interrupts",
        edit(T, VIRTIO0, set_prop(Prop.cells("interrupts", 0, 16))),
    ),
    (
        "interrupts.type",
        VIRTIO0,
        "interrupts",
        edit(T, VIRTIO0, set_prop(Prop.cells("interrupts", 5, 16, 1))),
    ),
    (
        "interrupts.range",
        VIRTIO0,
        "interrupts",
        edit(T, VIRTIO0, set_prop(Prop.cells("interrupts", 0, 988, 1))),
    ),
    (
        "interrupts.trigger",
        VIRTIO0,
        "interrupts",
        edit(T, VIRTIO0, set_prop(Prop.cells("interrupts", 0, 16, 8))),
    ),
    (
        "interrupts.shared",
        VIRTIO1,
        "interrupts",
        edit(T, VIRTIO1, set_prop(Prop.cells("interrupts", 0, 16, 1))),
    ),
    (
        "regions.overlap",
        VIRTIO1,
        "reg",
        edit(T, VIRTIO1, set_prop(Prop.cells("reg", 0, 0xF00_0800, 0, 0x1000))),
    ),
    (
        "regions.address-width",
        VIRTIO1,
        "reg",
        edit(T, VIRTIO1, set_prop(Prop.cells("reg", 0xFFFF, 0xFFFF_F000, 0, 0x2000))),
    ),
]


@pytest.mark.parametrize("rule, path, prop, tree", [pytest.param(*c, id=c[0]) for c in CASES])
def test_each_binding_interrupt_and_region_rule_fires_when_broken(rule, path, prop, tree):
    found = check(tree)
    assert (rule, path, prop) in keys(found), "\n".join(map(str, found))
    f = next(f for f in found if (f.rule, f.path, f.prop) == (rule, path, prop))
    assert f.message and str(f).startswith(f"{f.severity}: {rule}: {path}")


def test_gic_frames_as_small_as_linux_reads_are_clean():
    """A 64 KiB ITS (13 Debian DTBs) and a 0xffd-byte v2m frame (qcom ipq6018 and
    ipq8074) hold every register Linux reads; a GICv2 distributor short of
    GICD_SGIR does not."""
    its, v2m = msi_frame("its", 0x808_0000, 0x1_0000), msi_frame("v2m", 0x809_0000, 0xFFD)
    tree = edit(edit(T, GIC, add_child(its)), GIC, add_child(v2m))
    assert [f for f in check(tree) if f.rule.startswith("gic.")] == []
    v2 = build(Machine(template="qemu-virt-gicv2", vcpus=2))
    gicv2 = "/interrupt-controller@8000000"
    assert v2.tree.root.find(gicv2) is not None
    reg = v2.tree.root.find(gicv2).prop("reg").as_cells()  # type: ignore[union-attr]
    small = edit(v2.tree, gicv2, set_prop(Prop.cells("reg", *reg[:3], 0xF00, *reg[4:])))
    found = [(f.rule, f.path) for f in check(small) if f.rule.startswith("gic.")]
    assert found == [("gic.frame-size", gicv2)]
    assert [f for f in check(v2.tree) if f.rule.startswith("gic.")] == []


@pytest.mark.parametrize(
    "part, size, flagged",
    [
        ("gicd", 0xFFEC, False),  # GICD_PIDR2 at 0xffe8 is the last register read
        ("gicd", 0xFFE8, True),
        ("its", 0xFFEC, False),
        ("its", 0xFFE8, True),
        ("v2m", 0xFD0, False),  # MSI_IIDR at 0xfcc
        ("v2m", 0xFCC, True),
    ],
)
def test_gic_frame_size_bounds_are_the_last_register_read(part, size, flagged):
    if part == "gicd":
        tree = edit(
            T,
            GIC,
            set_prop(Prop.cells("reg", 0, 0x800_0000, 0, size, 0, 0x80A_0000, 0, 0x4_0000)),
        )
        path = GIC
    else:
        frame = msi_frame(part, 0x808_0000, size)
        path = f"{GIC}/{frame.name}"
        tree = edit(T, GIC, add_child(frame))
    found = [(f.rule, f.path) for f in check(tree) if f.rule == "gic.frame-size"]
    assert found == ([("gic.frame-size", path)] if flagged else [])


def test_a_spi_declared_shared_may_serve_two_devices():
    tree = edit(T, VIRTIO1, set_prop(Prop.cells("interrupts", 0, 16, 1)))
    assert [f for f in check(tree) if f.rule == "interrupts.shared"]
    assert [
        f for f in check(tree, shared_spis=frozenset({16})) if f.rule == "interrupts.shared"
    ] == []


def test_the_address_width_is_configurable():
    found = check(T, address_bits=31)
    assert ("regions.address-width", "/memory@80000000", "reg") in keys(found)
    assert check(T, address_bits=32) == []


# The tree index every rule reads.


def test_the_index_translates_reg_through_each_bus_and_stops_at_pci():
    dev = Node("dev@1000", (Prop.cells("reg", 0x1000, 0x100),))
    bus = Node(
        "soc",
        (
            Prop.cells("#address-cells", 1),
            Prop.cells("#size-cells", 1),
            Prop.cells("ranges", 0, 0, 0x1000_0000, 0x10_0000),
        ),
        (dev,),
    )
    pci = Node(
        "pcie@0",
        (Prop.strings("device_type", "pci"), Prop.empty("ranges")),
        (Node("ep@0", (Prop.cells("reg", 0, 0, 0x10),)),),
    )
    tree = DeviceTree(Node("", (), (bus, pci)))
    index = TreeIndex(tree)
    assert index.parents["/soc/dev@1000"] == "/soc"
    # The root names no cells: the DT spec's defaults, 2 address and 1 size.
    assert (index.address_cells("/"), index.size_cells("/")) == (2, 1)
    assert index.reg("/soc/dev@1000") == [(0x1000, 0x100)]
    assert index.cpu_reg("/soc/dev@1000") == [(0x1000_1000, 0x100)]
    assert index.translate("/pcie@0/ep@0", 0) is None
    assert [(r.path, r.base, r.kind) for r in index.regions()] == [
        ("/soc/dev@1000", 0x1000_1000, "device")
    ]


def test_the_index_decodes_interrupts_against_their_controller():
    index = TreeIndex(T)
    assert index.interrupt_parent(VIRTIO0) == GIC and index.gic_version(GIC) == 3
    assert index.specifiers(VIRTIO0) == [(GIC, (0, 16, 1))]
    assert index.cpus() == ["/cpus/cpu@0", "/cpus/cpu@1"]
    assert index.memory() == [("/memory@80000000", 0x8000_0000, 512 * MiB)]


# Structure rules: the blob's bytes are edited after encoding.


def _patched(blob: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and blob.count(old) == 1
    return blob.replace(old, new)


def _named_root(blob: bytes) -> bytes:
    h = header(blob)
    st = blob[h["off_dt_struct"] : h["off_dt_struct"] + h["size_dt_struct"]]
    strings = blob[h["off_dt_strings"] : h["off_dt_strings"] + h["size_dt_strings"]]
    return raw_blob(begin("root") + st[8:], strings)


def _big_blob() -> bytes:
    tree = edit(T, "/chosen", set_prop(Prop.bytes_("padding", bytes(2 * MiB))))
    return encode(tree, max_size=4 * MiB)


def _misaligned_rsvmap() -> bytes:
    body = begin("") + begin("c") + u32(END_NODE, END_NODE, 9)
    blob = raw_blob(body, order="sSm")  # rsvmap last, after 0x28 + len(body)
    h = header(blob)
    assert h["off_mem_rsvmap"] % 8 == 0
    shifted = bytearray(blob[: h["off_mem_rsvmap"]] + bytes(4) + blob[h["off_mem_rsvmap"] :])
    shifted[0x10:0x14] = u32(h["off_mem_rsvmap"] + 4)
    shifted[0x04:0x08] = u32(len(shifted))
    return bytes(shifted)


def _wrapping_reservation() -> bytes:
    blob = encode(DeviceTree(T.root, reserve=((0x1234_5000, 0x1000),)))
    return _patched(blob, u32(0, 0x1234_5000), u32(0xFFFF_FFFF, 0xFFFF_F000)).replace(
        u32(0, 0x1000, 0, 0, 0, 0), u32(0, 0x2000, 0, 0, 0, 0), 1
    )


STRUCTURE = [
    ("header.size", "/", "", _big_blob),
    ("header.trailing", "/", "", lambda: BASE.blob + bytes(8)),
    ("header.rsvmap-align", "/", "", _misaligned_rsvmap),
    ("structure.root-name", "/", "", lambda: _named_root(BASE.blob)),
    ("libfdt.check-full", "/", "", lambda: _named_root(BASE.blob)),
    (
        "structure.node-name",
        "/virtio#mmio@f000000",
        "",
        lambda: _patched(BASE.blob, b"virtio_mmio@f000000", b"virtio#mmio@f000000"),
    ),
    (
        "structure.property-name",
        VIRTIO0,
        "dma*coherent",
        lambda: _patched(BASE.blob, b"dma-coherent", b"dma*coherent"),
    ),
    (
        "memreserve.overlap",
        "/memreserve/",
        "",
        lambda: encode(DeviceTree(T.root, reserve=((0x8000_0000, 0x2000), (0x8000_1000, 0x1000)))),
    ),
    ("memreserve.range", "/memreserve/", "", _wrapping_reservation),
]


@pytest.mark.parametrize("rule, path, prop, make", [pytest.param(*c, id=c[0]) for c in STRUCTURE])
def test_each_structure_rule_fires_when_broken(rule, path, prop, make):
    found = verify(make(), Options())
    assert (rule, path, prop) in keys(found), "\n".join(map(str, found))


def test_dtc_warnings_become_findings(dtc):
    found = check(edit(T, "/cpus", set_prop(Prop.cells("#size-cells", 1))), dtc=dtc.exe)
    assert any(f.rule.startswith("dtc.") and f.path.startswith("/cpus") for f in found), found
    assert [f for f in check(T, dtc=dtc.exe) if f.rule.startswith("dtc.")] == []


def test_dtc_reads_a_blob_bigger_than_a_pipe_without_deadlock(dtc):
    big = edit(T, "/chosen", set_prop(Prop.bytes_("padding", bytes(1 << 20))))
    assert len(encode(big)) > 1 << 20
    found = check(big, dtc=dtc.exe)
    assert [f for f in found if f.rule.startswith("dtc.")] == [], found


def test_dtc_that_cannot_run_fails_or_hangs_is_one_finding(tmp_path):
    from fdtgen.checks.structure import dtc_findings

    assert [f.rule for f in dtc_findings(str(tmp_path / "no-dtc"), BASE.blob)] == ["dtc.run"]
    failing = tmp_path / "failing-dtc"
    failing.write_text("#!/bin/sh\ncat >/dev/null\necho 'FATAL ERROR: nope' >&2\nexit 1\n")
    failing.chmod(0o755)
    (only,) = dtc_findings(str(failing), BASE.blob)
    assert (only.rule, only.message) == ("dtc.error", "dtc rejects the blob: FATAL ERROR: nope")
    hanging = tmp_path / "hanging-dtc"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    (only,) = dtc_findings(str(hanging), BASE.blob, timeout=0.3)
    assert only.rule == "dtc.timeout" and "did not finish within 0.3 s" in only.message


def test_a_blob_that_does_not_parse_raises_instead_of_reporting():
    with pytest.raises(BlobError, match="totalsize"):
        verify(BASE.blob[:-1])


# Template rules.

SQUIB = load_template("squib")
TEMPLATE = [
    (
        "template.uart0",
        "/serial@e0a0000",
        "reg",
        edit(T, UART, set_prop(Prop.cells("reg", 0, 0xE0A_1000, 0, 0x1000))),
    ),
    (
        "template.spi",
        VIRTIO1,
        "interrupts",
        edit(T, VIRTIO1, set_prop(Prop.cells("interrupts", 0, 18, 1))),
    ),
    (
        "template.virtio",
        VIRTIO1,
        "reg",
        edit(T, VIRTIO1, set_prop(Prop.cells("reg", 0, 0xF00_1800, 0, 0x200))),
    ),
    (
        "template.gic-dist",
        GIC,
        "reg",
        edit(
            T,
            GIC,
            set_prop(Prop.cells("reg", 0, 0x801_0000, 0, 0x1_0000, 0, 0x80A_0000, 0, 0x4_0000)),
        ),
    ),
    (
        "template.gic-redist",
        GIC,
        "reg",
        edit(
            T,
            GIC,
            set_prop(Prop.cells("reg", 0, 0x800_0000, 0, 0x1_0000, 0, 0x80C_0000, 0, 0x4_0000)),
        ),
    ),
    (
        "template.timer",
        "/timer",
        "interrupts",
        edit(
            T, "/timer", set_prop(Prop.cells("interrupts", 1, 13, 4, 1, 14, 4, 1, 12, 4, 1, 10, 4))
        ),
    ),
    (
        "template.dram",
        "/memory@80000000",
        "reg",
        edit(T, "/memory@80000000", set_prop(Prop.cells("reg", 0, 0x7FE0_0000, 0, 0x2000_0000))),
    ),
    (
        "template.msi",
        "/rtc@4fff000",
        "reg",
        edit(
            T,
            "/",
            add_child(
                Node(
                    "rtc@4fff000",
                    (
                        Prop.strings("compatible", "arm,pl031"),
                        Prop.cells("reg", 0, 0x4FF_F000, 0, 0x2000),
                    ),
                )
            ),
        ),
    ),
]


@pytest.mark.parametrize("rule, path, prop, tree", [pytest.param(*c, id=c[0]) for c in TEMPLATE])
def test_each_template_rule_fires_when_a_pinned_region_moves(rule, path, prop, tree):
    found = check(tree, template=SQUIB)
    assert (rule, path, prop) in keys(found), "\n".join(map(str, found))
    assert not {(f.rule, f.path, f.prop) for f in check(tree)} & {(rule, path, prop)}


def test_an_spi_past_the_templates_gic_spis_is_a_template_finding():
    crosvm = load_template("crosvm")  # its GIC has SPIs 0..31 ([gic] spis = 32)
    tree = build(Machine(template="crosvm", vcpus=2)).tree
    past = edit(tree, "/serial@2e8", set_prop(Prop.cells("interrupts", 0, 32, 1)))
    (finding,) = [f for f in check(past, template=crosvm) if f.rule == "template.gic-spis"]
    assert (finding.path, finding.prop, finding.message) == (
        "/serial@2e8",
        "interrupts",
        "the GIC of template 'crosvm' implements SPIs 0..31 ([gic] spis): SPI 32 (INTID 64) "
        "never interrupts",
    )
    last = edit(tree, "/serial@2e8", set_prop(Prop.cells("interrupts", 0, 31, 1)))
    assert not [f for f in check(last, template=crosvm) if f.rule == "template.gic-spis"]
    assert not [f for f in check(past) if f.rule.startswith("template.")]


def test_an_intx_row_or_msi_frame_past_gic_spis_is_a_template_finding():
    """Past ``[gic] spis`` through a PCI ``interrupt-map`` row, and through a
    v2m frame whose ``arm,msi-base-spi`` range runs past it."""
    crosvm = load_template("crosvm")
    tree = build(Machine(template="crosvm", vcpus=2)).tree
    bridge = tree.root.find("/pci@10000")
    assert bridge is not None
    cells = list(bridge.prop("interrupt-map").as_cells())  # type: ignore[union-attr]
    assert cells[8] == 4  # the first row's parent SPI
    cells[8] = 40
    rows = edit(tree, "/pci@10000", set_prop(Prop.cells("interrupt-map", *cells)))
    found = [f for f in check(rows, template=crosvm) if f.rule == "template.gic-spis"]
    assert [(f.path, f.prop, f.message) for f in found] == [
        (
            "/pci@10000",
            "interrupt-map",
            "the GIC of template 'crosvm' implements SPIs 0..31 ([gic] spis): a row's SPI 40 "
            "(INTID 72) never interrupts",
        )
    ]
    frame = Node(
        "v2m@3ffe0000",
        (
            Prop.strings("compatible", "arm,gic-v2m-frame"),
            Prop.empty("msi-controller"),
            Prop.cells("reg", 0, 0x3FFE_0000, 0, 0x1000),
            Prop.cells("arm,msi-base-spi", 60),  # INTID 60: SPIs 28..35
            Prop.cells("arm,msi-num-spis", 8),
        ),
    )
    msi = edit(tree, "/interrupt-controller@3fff0000", add_child(frame))
    found = [f for f in check(msi, template=crosvm) if f.rule == "template.gic-spis"]
    assert [(f.path, f.prop, f.value) for f in found] == [
        ("/interrupt-controller@3fff0000/v2m@3ffe0000", "arm,msi-num-spis", "<8>")
    ]
    assert "the MSI frame's last SPI 35 (INTID 67)" in found[0].message


# Boot rules against the manifest fdtgen writes for BASE's machine with a kernel
# and an initrd, edited; the tree under test is BASE's with /chosen set.

KERNEL_AT, INITRD_AT, DTB_AT = 0x8020_0000, 0x9000_0000, 0x9FE0_0000
INITRD_SIZE = 0x40_0000
IMAGE_SIZE = 0x1AB_0000

DROP = object()  # an edit that removes the key


def edited(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` with each dotted key set (``DROP``: removed)."""
    out = json.loads(json.dumps(data))
    for key, value in changes.items():
        *parents, last = key.split(".")
        cur = out
        for p in parents:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        if value is DROP:
            del cur[last]
        elif isinstance(cur, list):
            cur[int(last)] = value
        else:
            cur[last] = value
    return out


def boot_tree(
    start: int = INITRD_AT, end: int = INITRD_AT + INITRD_SIZE, memory: int = 512 * MiB
) -> DeviceTree:
    tree = build(Machine(vcpus=2, virtio=2, memory=memory)).tree
    return edit(
        tree,
        "/chosen",
        set_prop(Prop.u64("linux,initrd-start", start), Prop.u64("linux,initrd-end", end)),
    )


def boot_rules(blob: bytes, data: dict[str, Any]) -> list[Finding]:
    """The findings for ``blob`` with the manifest ``data``, read as verify reads a file."""
    return verify(blob, Options(manifest=from_json(json.dumps(data), "m.json")))


def _boot_manifest() -> dict[str, Any]:
    """The JSON ``fdtgen build --manifest`` writes for BASE's machine with a declared
    IMAGE_SIZE kernel (text_offset 0) and an INITRD_SIZE initrd."""
    kernel = declared_kernel(IMAGE_SIZE, text_offset=0, image_size=IMAGE_SIZE)
    placed = build(Machine(vcpus=2, virtio=2), Boot(kernel=kernel, initrd_size=INITRD_SIZE))
    return json.loads(to_json(manifest_for(placed)))


BOOT_MANIFEST = _boot_manifest()


def manifest(blob: bytes, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """BOOT_MANIFEST describing ``blob`` (its dtb.size), with ``changes`` (see :func:`edited`)."""
    return edited(BOOT_MANIFEST, {"dtb.size": len(blob), **(changes or {})})


def boot_check(tree: DeviceTree, changes: dict[str, Any] | None = None) -> list[Finding]:
    blob = encode(tree)
    return boot_rules(blob, manifest(blob, changes))


def test_the_boot_manifest_places_what_the_boot_cases_assume():
    m = BOOT_MANIFEST
    assert (m["kernel"]["load_address"], m["kernel"]["reserved"]) == (KERNEL_AT, IMAGE_SIZE)
    assert m["initrd"] == {"address": INITRD_AT, "size": INITRD_SIZE}
    assert (m["dtb"]["address"], m["registers"]["x0"]) == (DTB_AT, DTB_AT)
    assert m["memory"] == [{"address": 0x8000_0000, "size": 512 * MiB}]


def test_the_boot_base_case_is_clean():
    assert boot_check(boot_tree()) == []


def _load_at(address: int) -> dict[str, int]:
    return {"kernel.load_address": address, "kernel.entry": address, "registers.pc": address}


BOOT = [
    ("boot.kernel-align", boot_tree(), _load_at(0x8010_0000)),
    ("boot.kernel-ram", boot_tree(), _load_at(0x9F00_0000)),
    ("boot.kernel-reserved", DeviceTree(boot_tree().root, reserve=((0x8100_0000, 0x1000),)), {}),
    ("boot.entry", boot_tree(), {"registers.pc": KERNEL_AT + 4}),
    ("boot.registers", boot_tree(), {"registers.x1": 1}),
    ("boot.dtb-align", boot_tree(), {"dtb.address": DTB_AT + 4, "registers.x0": DTB_AT + 4}),
    ("boot.dtb-size", boot_tree(), {"dtb.size": 0x1000}),
    ("boot.dtb-ram", boot_tree(), {"dtb.address": 0xA000_0000, "registers.x0": 0xA000_0000}),
    ("boot.dtb-block", boot_tree(), {"dtb.address": 0xE10_0000, "registers.x0": 0xE10_0000}),
    ("boot.initrd-ram", boot_tree(0xA000_0000, 0xA040_0000), {"initrd.address": 0xA000_0000}),
    (
        "boot.initrd-window",
        boot_tree(0x8_8000_0000, 0x8_8040_0000, 64 * GiB),
        {"initrd.address": 0x8_8000_0000, "memory": [{"address": 0x8000_0000, "size": 64 * GiB}]},
    ),
    ("boot.chosen-initrd", boot_tree(INITRD_AT + 0x1000), {}),
    (
        "boot.overlap",
        boot_tree(KERNEL_AT + 0x10_0000, KERNEL_AT + 0x50_0000),
        {"initrd.address": KERNEL_AT + 0x10_0000},
    ),
    ("boot.memory", boot_tree(), {"memory": [{"address": 0x8000_0000, "size": 1 * GiB}]}),
]


@pytest.mark.parametrize("rule, tree, changes", [pytest.param(*c, id=c[0]) for c in BOOT])
def test_each_booting_rst_rule_fires_when_broken(rule, tree, changes):
    found = boot_check(tree, changes)
    assert rule in {f.rule for f in found}, "\n".join(map(str, found))


def test_a_dtb_over_2_mib_is_a_boot_finding_in_a_manifest_made_in_python():
    """A manifest file cannot say so (the model caps dtb.size: a manifest error);
    a manifest handed to the checks directly still meets the rule."""
    blob = encode(boot_tree())
    found = verify(blob, Options(manifest=manifest(blob, {"dtb.size": 0x30_0000})))  # type: ignore[arg-type]
    assert ("boot.dtb-size", "0x300000", "the dtb must not exceed 2 megabytes (booting.rst)") in {
        (f.rule, f.value, f.message) for f in found
    }


def test_chosen_initrd_must_be_absent_without_an_initrd():
    found = boot_check(boot_tree(), {"initrd": None})
    assert ("boot.chosen-initrd", "/chosen", "linux,initrd-start") in keys(found)


@pytest.mark.parametrize(
    "changes, key, rule",
    [
        ({"memory": DROP}, "memory", "missing"),
        ({"kernel": {}}, "kernel.load_address", "missing"),
        ({"memory.0.address": "x"}, "memory[0].address", "'x': input should be a valid integer"),
        ({"memory": "lots"}, "memory", "'lots': input should be a valid array"),
    ],
)
def test_a_malformed_manifest_is_a_manifest_error(tmp_path, changes, key, rule):
    path = tmp_path / "boot.json"
    path.write_text(json.dumps(manifest(BASE.blob, changes)))
    with pytest.raises(ManifestError) as e:
        load_manifest(str(path))
    assert (e.value.source, e.value.key, e.value.rule) == (str(path), key, rule)


# Boot rules against a manifest that fdtgen build wrote, then edited.

RAM_END = 0xA000_0000  # the default 512 MiB from 0x8000_0000


def placed_build(tmp: Path, *extra: str) -> tuple[bytes, dict[str, Any]]:
    """The DTB and manifest of ``fdtgen build --kernel KERNEL --initrd FILE`` (plus ``extra``)."""
    initrd, out, man = tmp / "initrd.img", tmp / "x.dtb", tmp / "m.json"
    initrd.write_bytes(bytes(range(256)) * 20)
    r = fdtgen(
        "build",
        "--kernel",
        str(KERNEL),
        "--initrd",
        str(initrd),
        "-o",
        str(out),
        "--manifest",
        str(man),
        *extra,
    )
    assert r.returncode == 0, r.stderr
    return out.read_bytes(), json.loads(man.read_text())


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, Any]]:
    return placed_build(tmp_path_factory.mktemp("placed"))


def test_the_built_placement_is_where_the_dtb_block_cases_assume(placed):
    blob, data = placed
    assert boot_rules(blob, data) == []
    assert data["kernel"]["load_address"] == KERNEL_AT
    assert data["kernel"]["reserved"] == data["kernel"]["image_size"] == 0x1AB_0000
    assert (data["initrd"]["address"], data["dtb"]["address"]) == (INITRD_AT, DTB_AT)
    assert data["memory"] == [{"address": 0x8000_0000, "size": RAM_END - 0x8000_0000}]


def _dtb_at(address: int, **more: Any) -> dict[str, Any]:
    return {"dtb.address": address, "registers.x0": address, **more}


# Each edit keeps the DTB's own bytes clear of the kernel, the initrd and the
# end of RAM, so only the 2 MiB block around it breaks the rule.
DTB_BLOCK_CASES = [
    # The kernel's image_size ends at 0x81cb0000, inside the block [0x81c00000, 0x81e00000).
    ("boot.dtb-block-kernel", _dtb_at(0x81D0_0000), {"boot.dtb-block-kernel"}),
    # kernel.reserved past image_size reaches into the block [0x81e00000, 0x82000000).
    (
        "boot.dtb-block-kernel",
        _dtb_at(0x81F0_0000, **{"kernel.reserved": 0x1C8_0000}),
        {"boot.dtb-block-kernel"},
    ),
    # With kernel.reserved short of image_size, image_size is still the range.
    (
        "boot.dtb-block-kernel",
        _dtb_at(0x81D0_0000, **{"kernel.reserved": 0x1000}),
        {"boot.dtb-block-kernel", "boot.kernel-footprint"},
    ),
    # The initrd [0x90000000, 0x90001400) is in the block [0x90000000, 0x90200000).
    ("boot.dtb-block-initrd", _dtb_at(0x9010_0000), {"boot.dtb-block-initrd"}),
    # The manifest's RAM ends 0xf0000 short of the block's end; /memory disagrees too.
    (
        "boot.dtb-block-ram",
        {"memory.0.size": RAM_END - 0x8000_0000 - 0xF_0000},
        {"boot.dtb-block-ram", "boot.memory"},
    ),
    ("boot.kernel-footprint", {"kernel.reserved": 0x1000}, {"boot.kernel-footprint"}),
]


@pytest.mark.parametrize(
    "rule, changes, expected",
    [pytest.param(*c, id=f"{c[0]}-{i}") for i, c in enumerate(DTB_BLOCK_CASES)],
)
def test_each_dtb_block_rule_fires_on_an_edited_built_manifest(placed, rule, changes, expected):
    blob, data = placed
    found = boot_rules(blob, edited(data, changes))
    assert {f.rule for f in found} == expected, "\n".join(map(str, found))
    assert rule in expected


def test_the_dtb_block_ignores_a_reserved_range_ending_before_it(placed):
    blob, data = placed
    assert boot_rules(blob, edited(data, _dtb_at(0x81F0_0000))) == []
    assert boot_rules(blob, edited(data, _dtb_at(0x9020_0000))) == []


def test_the_dtb_block_must_be_ram_in_memory_as_well_as_in_the_manifest(tmp_path):
    blob, data = placed_build(tmp_path, "--memory", str(512 * MiB + 64 * 1024))
    assert data["memory"] == [{"address": 0x8000_0000, "size": 512 * MiB + 64 * 1024}]
    assert boot_rules(blob, data) == []
    # The blob fits in the 64 KiB of RAM past 0xa0000000; its 2 MiB block does not.
    found = boot_rules(blob, edited(data, _dtb_at(RAM_END)))
    assert [(f.rule, f.value) for f in found] == [
        ("boot.dtb-block-ram", f"[{RAM_END:#x}, {RAM_END + len(blob):#x})")
    ] * 2, "\n".join(map(str, found))
    assert "in /memory [0x80000000, 0xa0010000)" in found[0].message
    assert "in the manifest's memory [0x80000000, 0xa0010000)" in found[1].message


BAD_MANIFESTS = [
    ({"memory.0": {"address": 0x8000_0000, "length": 1}}, "memory[0].size: missing"),
    (
        {"memory.0": {"address": 0x8000_0000, "size": 1, "x": 2}},
        "memory[0].x: 2: extra inputs are not permitted",
    ),
    ({"memory.0": 5}, "memory[0]: 5: input should be an object"),
    ({"memory": {"address": 0}}, "memory: {'address': 0}: input should be a valid array"),
    ({"kernel": [1]}, "kernel: [1]: input should be an object"),
    (
        {"kernel.load_address": -1},
        "kernel.load_address: -1: input should be greater than or equal to 0",
    ),
    ({"kernel.image_size": 1.5}, "kernel.image_size: 1.5: input should be a valid integer"),
    ({"kernel.reserved": 0}, "kernel.reserved: 0: input should be greater than 0"),
    ({"kernel.reserved": DROP}, "kernel.reserved: missing"),
    ({"kernel.entry": DROP}, "kernel.entry: missing"),
    ({"kernel.entry": None}, "kernel.entry: None: input should be a valid integer"),
    ({"registers.x1": "zero"}, "registers.x1: 'zero': input should be a valid integer"),
    ({"registers.x1": "0x0"}, "registers.x1: '0x0': input should be a valid integer"),
    ({"registers.pc": True}, "registers.pc: True: input should be a valid integer"),
    ({"initrd": "big"}, "initrd: 'big': input should be an object"),
    ({"initrd.size": DROP}, "initrd.size: missing"),
    ({"dtb.size": 0}, "dtb.size: 0: input should be greater than 0"),
    (
        {"dtb.size": 0x30_0000},
        "dtb.size: 0x300000: input should be less than or equal to 2097152",
    ),
    (
        {"dtb.address": 1 << 64},
        "dtb.address: 0x10000000000000000: input should be less than 18446744073709551616",
    ),
    (
        {"dtb.address": (1 << 64) - 8, "dtb.size": 0x1000},
        "dtb: address 0xfffffffffffffff8 + size 0x1000 ends past 2^64 (the range wraps)",
    ),
    ({"devices.0.spi": 988}, "devices[0].spi: 988: input should be less than or equal to 987"),
]


@pytest.mark.parametrize(
    "changes, message", [pytest.param(*c, id=c[1].split(":")[0]) for c in BAD_MANIFESTS]
)
def test_a_malformed_manifest_field_is_one_error_line_exit_2(placed, tmp_path, changes, message):
    blob, data = placed
    (tmp_path / "x.dtb").write_bytes(blob)
    (tmp_path / "m.json").write_text(json.dumps(edited(data, changes)))
    r = fdtgen("verify", str(tmp_path / "x.dtb"), "--manifest", str(tmp_path / "m.json"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith(f"fdtgen: error: {tmp_path / 'm.json'}: ")
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "[1, 2]: input should be an object"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON: recursion limit exceeded at line 1"),
        (
            '{"memory": [{"address": ' + "9" * 5000 + ', "size": 1}]}',
            "not valid JSON: number out of range at line 1",
        ),
        ('{"kernel": 1}', "fdtgen_version: missing"),
        ("", "not valid JSON: EOF while parsing a value at line 1 column 0"),
    ],
    ids=["list", "deep", "long-number", "no-version", "empty"],
)
def test_a_malformed_manifest_document_is_one_error_line_exit_2(placed, tmp_path, text, message):
    (tmp_path / "x.dtb").write_bytes(placed[0])
    (tmp_path / "m.json").write_text(text)
    r = fdtgen("verify", str(tmp_path / "x.dtb"), "--manifest", str(tmp_path / "m.json"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith(f"fdtgen: error: {tmp_path / 'm.json'}: {message}")
    assert r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize(
    "changes",
    [{"registers.x1": "zero"}, {"dtb.address": (1 << 64) - 8, "dtb.size": 0x1000}],
    ids=["type", "wraps"],
)
def test_verify_md_quotes_what_verify_prints_for_a_bad_manifest(placed, tmp_path, changes):
    (tmp_path / "x.dtb").write_bytes(placed[0])
    (tmp_path / "boot.json").write_text(json.dumps(edited(placed[1], changes)))
    r = run_fdtgen(
        "verify", "x.dtb", "--manifest", "boot.json", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)}
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"\n{r.stderr}" in (ROOT / "docs" / "verify.md").read_text(encoding="utf-8")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _sparse(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(MANIFEST_MAX_SIZE + 1)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            Path.mkdir,
            "not a regular file (a directory; a manifest is a JSON file: fdtgen build --manifest)",
        ),
        (_fifo, "not a regular file (a FIFO; a manifest is a JSON file: fdtgen build --manifest)"),
        (_sparse, f"{MANIFEST_MAX_SIZE + 1} bytes is over the 16 MiB a manifest may be"),
        (lambda path: None, "cannot read manifest: No such file or directory"),
    ],
    ids=["directory", "fifo", "over-16-mib", "missing"],
)
def test_a_manifest_path_that_is_no_manifest_file_is_refused_before_reading(
    placed, tmp_path, make, message
):
    """A FIFO would block a plain read and a huge file exhaust memory: refused on stat."""
    (tmp_path / "x.dtb").write_bytes(placed[0])
    make(tmp_path / "m.json")
    r = fdtgen("verify", str(tmp_path / "x.dtb"), "--manifest", str(tmp_path / "m.json"))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"fdtgen: error: {tmp_path / 'm.json'}: {message}\n"


# The command line.


def fdtgen(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fdtgen", *args],
        cwd=ROOT,
        capture_output=True,
        text=stdin is None,
        input=stdin,
        check=False,
    )


def test_cli_exit_codes_are_0_clean_1_findings_2_unreadable(tmp_path):
    good, bad, broken = tmp_path / "good.dtb", tmp_path / "bad.dtb", tmp_path / "broken.dtb"
    good.write_bytes(BASE.blob)
    bad.write_bytes(encode(edit(T, "/cpus/cpu@1", drop_prop("enable-method"))))
    broken.write_bytes(BASE.blob[:100])
    r = fdtgen("verify", str(good))
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{good}: clean\n", "")
    r = fdtgen("verify", str(bad))
    assert r.returncode == 1
    assert r.stdout.splitlines()[0].startswith(
        "error: cpus.enable-method: /cpus/cpu@1 enable-method: "
    )
    assert r.stdout.splitlines()[-1] == f"{bad}: 1 error"
    for path in (broken, tmp_path / "missing.dtb"):
        r = fdtgen("verify", str(path))
        assert r.returncode == 2
        assert r.stderr.startswith(f"fdtgen: error: {path}: ") and r.stderr.count("\n") == 1
        assert r.stdout == ""


def test_cli_json_lists_each_finding_with_rule_path_property_value_message(tmp_path):
    bad = tmp_path / "bad.dtb"
    bad.write_bytes(encode(edit(T, VIRTIO0, set_prop(Prop.cells("interrupts", 0, 16, 8)))))
    r = fdtgen("verify", "--json", str(bad))
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["clean"] is False
    assert (data["errors"], data["warnings"], data["notes"]) == (1, 0, 0)
    assert data["findings"] == [
        {
            "severity": "error",
            "rule": "interrupts.trigger",
            "path": VIRTIO0,
            "property": "interrupts",
            "value": "<0x0 0x10 0x8>",
            "message": "SPI trigger 8 is not 1 (edge-rising) or 4 (level-high); the GIC rejects it "
            "(gic_set_type -EINVAL) and the driver fails to probe",
        }
    ]


def test_cli_reads_standard_input_and_a_manifest_file(tmp_path):
    blob = encode(boot_tree())
    m = tmp_path / "boot.json"
    m.write_text(json.dumps(manifest(blob, {"registers.x2": 5})))
    r = subprocess.run(
        [sys.executable, "-m", "fdtgen", "verify", "-", "--manifest", str(m)],
        cwd=ROOT,
        input=blob,
        capture_output=True,
        check=False,
    )
    assert r.returncode == 1
    assert b"boot.registers: / = 0x0 0x5 0x0: x1..x3 must be 0" in r.stdout


def test_cli_rejects_a_bad_template_or_manifest_with_one_line(tmp_path):
    good = tmp_path / "good.dtb"
    good.write_bytes(BASE.blob)
    r = fdtgen("verify", str(good), "--template", "nope")
    assert r.returncode == 2 and "template: 'nope' is not a built-in template" in r.stderr
    (tmp_path / "m.json").write_text("{")
    r = fdtgen("verify", str(good), "--manifest", str(tmp_path / "m.json"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not valid JSON" in r.stderr


@pytest.mark.parametrize(
    "extra, imported",
    [(["--template", "squib"], False), (["--template", "squib", "--manifest", "M"], True)],
    ids=["template", "manifest"],
)
def test_verify_imports_pydantic_only_to_read_a_manifest(tmp_path, extra, imported):
    """The manifest is read through its one model, which is pydantic's; nothing else is."""
    blob = encode(boot_tree())
    (tmp_path / "g.dtb").write_bytes(blob)
    (tmp_path / "m.json").write_text(json.dumps(manifest(blob)))
    argv = [
        "verify",
        str(tmp_path / "g.dtb"),
        *(str(tmp_path / "m.json") if a == "M" else a for a in extra),
    ]
    code = (
        "import sys\n"
        "from fdtgen.cli import main\n"
        f"rc = main({argv!r})\n"
        "print('RC', rc, 'pydantic' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert r.stdout.splitlines()[-1] == f"RC 0 {imported}", r.stdout + r.stderr


def test_dtc_is_optional(tmp_path):
    good = tmp_path / "good.dtb"
    good.write_bytes(BASE.blob)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    assert shutil.which("dtc", path=env["PATH"]) is None
    r = subprocess.run(
        [sys.executable, "-m", "fdtgen", "verify", str(good)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (r.returncode, r.stderr) == (0, "")


@pytest.mark.skipif(shutil.which("dtc") is None, reason="needs dtc")
def test_a_rule_that_fails_leaves_no_dtc_copy_of_the_blob(tmp_path, monkeypatch):
    import tempfile

    import fdtgen.checks.regions as regions

    def broken(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(regions, "region_findings", broken)
    blob = encode(DeviceTree(Node("", (Prop.cells("#address-cells", 2),), ())))
    with pytest.raises(KeyboardInterrupt):
        verify(blob, Options(dtc=shutil.which("dtc")))
    assert list(tmp_path.iterdir()) == []
