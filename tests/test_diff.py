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


# One board in DTS, with the references real trees make outside dtc's own
# checks: pin lists, supplies, graph endpoints, CPU links, clock assignments,
# a vendor pin list and a thermal trip. EXTRA puts a referenced node first, so
# dtc numbers every phandle after it one higher.
BOARD = """/dts-v1/;
/ {
	#address-cells = <1>;
	#size-cells = <1>;
	%(extra)s
	cpus {
		#address-cells = <1>;
		#size-cells = <0>;
		cpu0: cpu@0 { device_type = "cpu"; reg = <0>; cpu-idle-states = <&idle>;
			operating-points-v2 = <&opp>; };
		cpu1: cpu@1 { device_type = "cpu"; reg = <1>; cpu-idle-states = <&idle>; };
		idle-states { idle: idle { compatible = "arm,idle-state"; }; };
	};
	opp: opp-table { compatible = "operating-points-v2"; };
	pmu { compatible = "arm,armv8-pmuv3"; interrupt-affinity = <&cpu0 &cpu1>; };
	etm@1000 { reg = <0x1000 0x100>; cpu = <&cpu1>; };
	vreg: regulator { compatible = "regulator-fixed"; };
	clk: clock-controller@2000 { reg = <0x2000 0x100>; #clock-cells = <1>; };
	gpio: gpio@3000 { reg = <0x3000 0x100>; gpio-controller; #gpio-cells = <2>; };
	pinctrl {
		pcfg: pcfg-pull-none { bias-disable; };
		uart_pins: uart { vendor,pins = <1 2 3 &pcfg>, <1 3 3 &pcfg>; };
	};
	thermal-zones { soc { trips { hot: hot { temperature = <90000>; }; };
		cooling-maps { map0 { trip = <&hot>; }; }; }; };
	reserved-memory { #address-cells = <1>; #size-cells = <1>; ranges;
		rsv: buffer@8000000 { reg = <0x8000000 0x100000>; }; };
	serial@4000 {
		reg = <0x4000 0x100>;
		pinctrl-names = "default";
		pinctrl-0 = <&uart_pins>;
		vcc-supply = <&vreg>;
		assigned-clocks = <&clk 3>;
		reset-gpios = <&gpio 5 0>;
		memory-region = <&rsv>;
	};
	display { port { disp_out: endpoint { remote-endpoint = <&panel_in>; }; }; };
	panel { port { panel_in: endpoint { remote-endpoint = <&disp_out>; }; }; };
	%(tail)s
};
"""


def board(dtc, extra: str = "", tail: str = "", **subs: str) -> DeviceTree:
    text = BOARD % {"extra": extra, "tail": tail}
    for old, new in subs.items():
        text = text.replace(old.replace("_", "-"), new)
    return parse(dtc.dts_to_dtb(text)[0])


EARLY = "early { vdd-supply = <&early_reg>; }; early_reg: early-regulator { };"


def test_renumbered_references_compare_by_the_node_they_name(dtc):
    a, b = board(dtc), board(dtc, extra=EARLY)
    phandles = [
        (t.root.find("/cpus/cpu@0").prop("phandle"), t.root.find("/pinctrl/pcfg-pull-none"))
        for t in (a, b)
    ]
    assert phandles[0][0].value != phandles[1][0].value  # dtc did renumber
    assert diff_trees(a, b) == [
        Change("node-added", "/early", new=" (1 properties)"),
        Change("node-added", "/early-regulator", new=" (1 properties)"),
    ]


@pytest.mark.parametrize(
    "old, new, prop, path, before, after",
    [
        pytest.param(
            "vcc-supply = <&vreg>",
            "vcc-supply = <&clk>",
            "vcc-supply",
            "/serial@4000",
            "<&{/regulator}>",
            "<&{/clock-controller@2000}>",
            id="supply",
        ),
        pytest.param(
            "cpu = <&cpu1>",
            "cpu = <&cpu0>",
            "cpu",
            "/etm@1000",
            "<&{/cpus/cpu@1}>",
            "<&{/cpus/cpu@0}>",
            id="cpu",
        ),
        pytest.param(
            "assigned-clocks = <&clk 3>",
            "assigned-clocks = <&clk 4>",
            "assigned-clocks",
            "/serial@4000",
            "<&{/clock-controller@2000} 0x3>",
            "<&{/clock-controller@2000} 0x4>",
            id="specifier-argument",
        ),
    ],
)
def test_a_reference_to_another_node_is_a_change_despite_renumbering(
    dtc, old, new, prop, path, before, after
):
    a = board(dtc)
    b = parse(dtc.dts_to_dtb((BOARD % {"extra": EARLY, "tail": ""}).replace(old, new))[0])
    changes = [c for c in diff_trees(a, b) if c.kind == "property-changed"]
    assert changes == [Change("property-changed", path, prop, before, after)]


def test_a_vendor_list_changes_only_where_a_number_changes(dtc):
    a = board(dtc)
    b = parse(
        dtc.dts_to_dtb(
            (BOARD % {"extra": EARLY, "tail": ""}).replace("<1 3 3 &pcfg>", "<1 4 3 &pcfg>")
        )[0]
    )
    changes = [c for c in diff_trees(a, b) if c.kind != "node-added"]
    assert [(c.path, c.prop) for c in changes] == [("/pinctrl/uart", "vendor,pins")]


def _siblings(*nodes: Node) -> DeviceTree:
    return DeviceTree(Node("", (Prop.cells("#address-cells", 1),), nodes))


def _node(name: str, *props: Prop) -> Node:
    return Node(name, props)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        pytest.param(
            [_node("ethernet@1", Prop.cells("reg", 1))],
            [_node("usb-port@1", Prop.cells("reg", 1))],
            [
                Change("node-removed", "/ethernet@1", old=" (1 properties)"),
                Change("node-added", "/usb-port@1", new=" (1 properties)"),
            ],
            id="a-shared-number-alone-is-no-rename",
        ),
        pytest.param(
            [_node("ethernet@1", Prop.strings("compatible", "usb0bda,8153"))],
            [_node("usb-port@1", Prop.strings("compatible", "usb-a-connector"))],
            [
                Change("node-removed", "/ethernet@1", old=" (1 properties)"),
                Change("node-added", "/usb-port@1", new=" (1 properties)"),
            ],
            id="different-compatibles-are-no-rename",
        ),
        pytest.param(
            [_node("pl011@9000000", Prop.strings("compatible", "arm,pl011"))],
            [_node("serial@9000000", Prop.strings("compatible", "arm,pl011"))],
            [Change("node-renamed", "/pl011@9000000", "", "pl011@9000000", "serial@9000000")],
            id="same-unit-same-compatible",
        ),
        pytest.param(
            [_node("memory@40000000", Prop.strings("device_type", "memory"))],
            [_node("memory@80000000", Prop.strings("device_type", "memory"))],
            [Change("node-renamed", "/memory@40000000", "", "memory@40000000", "memory@80000000")],
            id="same-base-same-device-type",
        ),
        pytest.param(
            [
                _node("uart@1", Prop.strings("compatible", "ns16550a")),
                _node("uart@2", Prop.strings("compatible", "ns16550a")),
            ],
            [_node("serial@3", Prop.strings("compatible", "ns16550a"))],
            [
                Change("node-removed", "/uart@1", old=" (1 properties)"),
                Change("node-removed", "/uart@2", old=" (1 properties)"),
                Change("node-added", "/serial@3", new=" (1 properties)"),
            ],
            id="ambiguous-candidates-pair-nothing",
        ),
    ],
)
def test_renames_need_more_than_a_unit_address(a, b, expected):
    assert diff_trees(_siblings(*a), _siblings(*b)) == expected


def test_thousands_of_renamed_siblings_pair_one_to_one():
    n = 5000
    compat = Prop.strings("compatible", "vendor,dev")
    a = _siblings(*(_node(f"dev@{i:x}", compat) for i in range(n)))
    b = _siblings(*(_node(f"device@{i:x}", compat) for i in range(n)))
    changes = diff_trees(a, b)
    assert len(changes) == n
    assert {(c.kind, c.old, c.new) for c in changes[:3]} == {
        ("node-renamed", f"dev@{i:x}", f"device@{i:x}") for i in range(3)
    }


def test_cli_caps_its_output_and_counts_the_rest(tmp_path):
    many = encode(_siblings(*(_node(f"n@{i:x}", Prop.cells("reg", i)) for i in range(30))))
    empty = encode(_siblings())
    (tmp_path / "a.dtb").write_bytes(empty)
    (tmp_path / "b.dtb").write_bytes(many)
    a, b = str(tmp_path / "a.dtb"), str(tmp_path / "b.dtb")
    r = fdtgen("diff", "--max-changes", "5", a, b)
    lines = r.stdout.splitlines()
    assert r.returncode == 1 and len(lines) == 6
    assert lines[-1] == "... 25 more changes not shown (30 in all; --max-changes 0 shows every one)"
    r = fdtgen("diff", "--json", "--max-changes", "5", a, b)
    doc = json.loads(r.stdout)
    assert (doc["count"], doc["omitted"], len(doc["changes"])) == (30, 25, 5)
    assert len(fdtgen("diff", "--max-changes", "0", a, b).stdout.splitlines()) == 30
    assert fdtgen("diff", a, b).stdout.count("\n") == 30  # under the default cap
    r = fdtgen("diff", "--max-changes", "-1", a, b)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        "fdtgen: error: command line: --max-changes: expected 0 (all) or more, found -1\n"
    )


@pytest.mark.parametrize(
    "data, rule",
    [
        pytest.param(
            b"", "header: expected at least 4 bytes for the magic 0xd00dfeed, found 0", id="empty"
        ),
        pytest.param(b"hello world\n", "magic: expected 0xd00dfeed, found other bytes", id="text"),
    ],
)
def test_cli_refuses_what_is_not_a_dtb_in_one_line(tmp_path, data, rule):
    (tmp_path / "a.dtb").write_bytes(BASE.blob)
    (tmp_path / "x").write_bytes(data)
    r = fdtgen("diff", str(tmp_path / "a.dtb"), str(tmp_path / "x"))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"fdtgen: error: {tmp_path / 'x'}: dtb offset 0x0: {rule} (not a DTB)\n"
