"""``fdtgen diff``: encodings that keep the tree compare equal; every real change is named."""

from __future__ import annotations

import json
import re

import libfdt
import pytest

from fdtgen.devicetree.machine import Machine
from fdtgen.diff import Change, diff_trees
from fdtgen.fdt.dts import to_dts
from fdtgen.fdt.encode import encode
from fdtgen.fdt.parse import parse
from fdtgen.fdt.phandles import with_labels
from fdtgen.fdt.tree import DeviceTree, Node, Prop
from fdtgen.pipeline import build

from .conftest import FIXTURES
from .conftest import run_fdtgen as fdtgen
from .test_parse import NOP, header, raw_blob, relayout, u32
from .test_verify import add_child, drop_prop, edit, remove, set_prop

QEMU = FIXTURES / "qemu"
BASE = build(Machine(vcpus=2, virtio=2))
T = BASE.tree


def same(a: bytes, b: bytes) -> list[Change]:
    return diff_trees(parse(a), parse(b))


def _with_nops(blob: bytes) -> bytes:
    """NOP tokens right after the root's FDT_BEGIN_NODE and before its FDT_END_NODE."""
    h = header(blob)
    st = blob[h["off_dt_struct"] : h["off_dt_struct"] + h["size_dt_struct"]]
    strings = blob[h["off_dt_strings"] : h["off_dt_strings"] + h["size_dt_strings"]]
    return raw_blob(st[:8] + u32(NOP, NOP) + st[8:-8] + u32(NOP) + st[-8:], strings)


def _via_fdtsw(tree: DeviceTree) -> bytes:
    """The same tree written by libfdt's sequential writer (its string table is reversed)."""
    sw = libfdt.FdtSw()
    sw.finish_reservemap()

    def emit(node: Node) -> None:
        with sw.add_node(node.name):
            for p in node.props:
                sw.property(p.name, p.value)
            for c in node.children:
                emit(c)

    emit(tree.root)
    return bytes(sw.as_fdt().as_bytearray())


def test_encodings_that_keep_the_tree_compare_equal(dtc):
    blob = BASE.blob
    variants = {
        "block order": relayout(blob, "Ssm", 24),
        "nop tokens": _with_nops(blob),
        "version 16": dtc.run("-I", "dtb", "-O", "dtb", "-V", "16", "-", data=blob)[0],
        "padding": dtc.run("-I", "dtb", "-O", "dtb", "-p", "4096", "-", data=blob)[0],
        "string table": _via_fdtsw(T),
    }
    for name, other in variants.items():
        buf = bytearray(other)
        assert libfdt.fdt_check_full(buf, len(buf)) == 0, name
        assert other != blob, name
        assert same(blob, other) == [], name


def test_phandle_numbers_and_property_order_do_not_matter(dtc):
    blob = (QEMU / "virt-gicv3.dtb").read_bytes()
    text = to_dts(with_labels(parse(blob)))
    renumbered, _ = dtc.dts_to_dtb(re.sub(r"\n\t*phandle = <0x[0-9a-f]+>;", "", text))
    tree = parse(renumbered)
    assert tree.root.find("/intc@8000000").prop("phandle").value != u32(
        0x8003
    )  # dtc chose new numbers
    assert diff_trees(parse(blob), tree) == []


def _case(kind: str) -> tuple[DeviceTree, list[Change]]:
    chosen, virtio = "/chosen", "/virtio_mmio@f001000"
    cases = {
        "property-changed": (
            edit(T, chosen, set_prop(Prop.strings("bootargs", "console=hvc0"))),
            [
                Change(
                    "property-changed",
                    chosen,
                    "bootargs",
                    '"console=ttyAMA0 earlycon panic=-1"',
                    '"console=hvc0"',
                )
            ],
        ),
        "property-added": (
            edit(T, chosen, set_prop(Prop.u64("kaslr-seed", 0x1234))),
            [Change("property-added", chosen, "kaslr-seed", new="<0x0 0x1234>")],
        ),
        "property-removed": (
            edit(T, virtio, drop_prop("dma-coherent")),
            [Change("property-removed", virtio, "dma-coherent")],
        ),
        "node-removed": (
            edit(T, virtio, remove),
            [Change("node-removed", virtio, old=" (4 properties)")],
        ),
        "node-added": (
            edit(
                T, "/", add_child(Node("rtc@9010000", (Prop.strings("compatible", "arm,pl031"),)))
            ),
            [Change("node-added", "/rtc@9010000", new=" (1 properties)")],
        ),
        "node-renamed": (
            edit(T, virtio, lambda n: Node("virtio@f001000", n.props, n.children)),
            [Change("node-renamed", virtio, "", "virtio_mmio@f001000", "virtio@f001000")],
        ),
        "reference-target": (
            edit(
                edit(T, "/serial@e0a0000", set_prop(Prop.cells("clocks", 2, 3))),
                "/",
                add_child(
                    Node(
                        "uartclk",
                        (
                            Prop.strings("compatible", "fixed-clock"),
                            Prop.cells("#clock-cells", 0),
                            Prop.cells("phandle", 3),
                        ),
                    )
                ),
            ),
            [
                Change(
                    "property-changed",
                    "/serial@e0a0000",
                    "clocks",
                    "<&{/apb-pclk} &{/apb-pclk}>",
                    "<&{/apb-pclk} &{/uartclk}>",
                ),
                Change("node-added", "/uartclk", new=" (3 properties)"),
            ],
        ),
        "memreserve": (
            DeviceTree(T.root, reserve=((0x8000_0000, 0x1000),)),
            [Change("memreserve", "/memreserve/", "", "(none)", "0x80000000 0x1000")],
        ),
        "boot-cpuid-phys": (
            DeviceTree(T.root, boot_cpuid_phys=1),
            [Change("boot-cpuid-phys", "/", "", "0x0", "0x1")],
        ),
    }
    return cases[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "property-changed",
        "property-added",
        "property-removed",
        "node-removed",
        "node-added",
        "node-renamed",
        "reference-target",
        "memreserve",
        "boot-cpuid-phys",
    ],
)
def test_each_kind_of_change_is_reported_once(kind):
    tree, expected = _case(kind)
    assert same(BASE.blob, encode(tree)) == expected


def test_qemu_dump_and_fdtgen_qemu_virt_differ_only_where_expected():
    ours = build(Machine(template="qemu-virt", vcpus=2, memory=512 * 1024 * 1024)).blob
    changes = diff_trees(parse((QEMU / "virt-gicv3.dtb").read_bytes()), parse(ours))
    renames = {(c.path, c.new) for c in changes if c.kind == "node-renamed"}
    assert ("/intc@8000000", "interrupt-controller@8000000") in renames
    assert ("/pl011@9000000", "serial@9000000") in renames
    # QEMU's dump carries per-run seeds; fdtgen adds none by default.
    assert {
        ("property-removed", "/chosen", "rng-seed"),
        ("property-removed", "/chosen", "kaslr-seed"),
    } <= {(c.kind, c.path, c.prop) for c in changes}
    # Everything the template models matches QEMU property for property,
    # phandle references included (QEMU numbers them from 0x8000).
    modelled = (
        "/virtio_mmio@",
        "/cpus",
        "/memory@",
        "/timer",
        "/psci",
        "/pmu",
        "/apb-pclk",
        "/intc@8000000",
        "/pl011@",
        "/pl031@",
        "/pl061@",
        "/fw-cfg@",
    )
    for c in changes:
        if c.path.startswith(modelled):
            assert c.kind == "node-renamed", c


def test_cli_exit_codes_are_0_same_1_different_2_unreadable(tmp_path):
    a, b, c = tmp_path / "a.dtb", tmp_path / "b.dtb", tmp_path / "c.dtb"
    a.write_bytes(BASE.blob)
    b.write_bytes(relayout(BASE.blob, "sSm", 8))
    c.write_bytes(encode(_case("property-changed")[0]))
    r = fdtgen("diff", str(a), str(b))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = fdtgen("diff", str(a), str(c))
    assert r.returncode == 1
    assert r.stdout == '~ /chosen bootargs: "console=ttyAMA0 earlycon panic=-1" -> "console=hvc0"\n'
    r = fdtgen("diff", "--json", str(a), str(c))
    assert r.returncode == 1
    assert json.loads(r.stdout)["changes"] == [
        {
            "kind": "property-changed",
            "path": "/chosen",
            "property": "bootargs",
            "old": '"console=ttyAMA0 earlycon panic=-1"',
            "new": '"console=hvc0"',
        }
    ]
    (tmp_path / "bad.dtb").write_bytes(BASE.blob[:64])
    r = fdtgen("diff", str(a), str(tmp_path / "bad.dtb"))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"fdtgen: error: {tmp_path / 'bad.dtb'}: dtb offset 0x4: totalsize")
    assert r.stderr.count("\n") == 1


def test_dts_of_any_blob_prints_through_the_cli_and_rejects_machine_overrides(tmp_path, dtc):
    blob = (QEMU / "virt-gicv2.dtb").read_bytes()
    (tmp_path / "q.dtb").write_bytes(blob)
    r = fdtgen("dts", str(tmp_path / "q.dtb"))
    assert r.returncode == 0, r.stderr
    assert dtc.dts_to_dtb(r.stdout) == (dtc.dtb_to_dtb(blob)[0], "")
    out = tmp_path / "q.dts"
    assert fdtgen("dts", str(tmp_path / "q.dtb"), "-o", str(out)).stdout == ""
    assert out.read_text() == r.stdout
    r = fdtgen("dts", str(tmp_path / "q.dtb"), "--vcpus", "4")
    assert r.returncode == 2
    expected = "fdtgen: error: command line: --vcpus: machine options do not apply to a DTB"
    assert r.stderr == f"{expected} ({tmp_path / 'q.dtb'})\n"
