"""verify's rules for real-world trees: severities, profiles, caps, and the
cases board DTBs showed (children, disabled nodes, interrupts-extended,
interrupt-map abusers and nexus rows, the SBSA UART), on small edited trees."""

from __future__ import annotations

import json

from fdtgen.checks import Options, profile_of, verify
from fdtgen.checks.index import TreeIndex
from fdtgen.fdt.encode import encode
from fdtgen.fdt.tree import DeviceTree, Node, Prop

from .test_verify import GIC, UART, VIRTIO0, VIRTIO1, T, add_child, drop_prop, edit, fdtgen
from .test_verify import set_prop as with_props

_IX = TreeIndex(T)
GIC_PHANDLE = _IX.cell(GIC, "phandle") or 0
GIC_ADDR = [0] * (_IX.cell(GIC, "#address-cells") or 0)  # a map row's parent unit address


def found(tree: DeviceTree, **options: object) -> list:
    return verify(encode(tree), Options(dtc=None, **options))  # type: ignore[arg-type]


def rules(tree: DeviceTree, **options: object) -> set[tuple[str, str, str]]:
    return {(f.rule, f.path, f.severity) for f in found(tree, **options)}


def disabled(node: Node) -> Node:
    return with_props(Prop.strings("status", "disabled"))(node)


def test_a_node_never_overlaps_its_own_child():
    section = Node("section@0", (Prop.cells("reg", 0, 0x100),), ())
    tree = edit(
        T,
        VIRTIO0,
        with_props(Prop.cells("#address-cells", 1), Prop.cells("#size-cells", 1)),
    )
    tree = edit(tree, VIRTIO0, add_child(section))
    tree = edit(tree, VIRTIO0, with_props(Prop.cells("ranges", 0, 0, 0xF00_0000, 0x200)))
    assert not [f for f in found(tree) if f.rule == "regions.overlap"]


def test_a_disabled_node_overlaps_nothing_and_shares_no_spi():
    clash = with_props(
        Prop.cells("reg", 0, 0xF00_0000, 0, 0x200), Prop.cells("interrupts", 0, 16, 1)
    )
    tree = edit(T, VIRTIO1, clash)
    assert {"regions.overlap", "interrupts.shared"} <= {f.rule for f in found(tree)}
    tree = edit(tree, VIRTIO1, disabled)
    assert not {"regions.overlap", "interrupts.shared"} & {f.rule for f in found(tree)}


def test_a_disabled_nodes_findings_are_notes():
    tree = edit(T, VIRTIO1, with_props(Prop.cells("interrupts", 0, 17, 8)))
    assert ("interrupts.trigger", VIRTIO1, "error") in rules(tree)
    assert ("interrupts.trigger", VIRTIO1, "note") in rules(edit(tree, VIRTIO1, disabled))


def test_the_timer_reads_interrupts_extended():
    timer = "/timer"
    ext = Prop.cells(
        "interrupts-extended", *[c for n in (13, 14, 11, 10) for c in (GIC_PHANDLE, 1, n, 4)]
    )
    tree = edit(T, timer, lambda n: with_props(ext)(drop_prop("interrupts")(n)))
    assert not [f for f in found(tree) if f.rule.startswith(("timer.", "interrupts."))]
    assert TreeIndex(tree).specifiers(timer)[2] == (GIC, (1, 11, 4))


def _abuser(compatible: str) -> Node:
    """An extirq-like controller whose interrupt-map rows send level-low
    lines to the GIC (its driver inverts them; the GIC itself would refuse)."""
    return Node(
        "extirq@1f70000",
        (
            Prop.strings("compatible", compatible),
            Prop.empty("interrupt-controller"),
            Prop.cells("#interrupt-cells", 2),
            Prop.cells("#address-cells", 0),
            Prop.cells("interrupt-map-mask", 0xF, 0),
            Prop.cells(
                "interrupt-map",
                *[c for n in (0, 1) for c in (n, 0, GIC_PHANDLE, *GIC_ADDR, 0, 131 + n, 8)],
            ),
        ),
        (),
    )


def test_an_interrupt_map_abuser_is_not_decoded():
    abuser = edit(T, "/", add_child(_abuser("fsl,ls1088a-extirq")))
    assert not [f for f in found(abuser) if f.path == "/extirq@1f70000"]
    other = edit(T, "/", add_child(_abuser("vendor,not-an-abuser")))
    assert ("interrupts.trigger", "/extirq@1f70000", "error") in rules(other)


def _nexus(children: tuple[Node, ...]) -> DeviceTree:
    rows = [c for slot in range(4) for c in (slot, 1, GIC_PHANDLE, *GIC_ADDR, 0, 40 + slot, 4)]
    bus = Node(
        "bus@20000000",
        (
            Prop.cells("#address-cells", 1),
            Prop.cells("#size-cells", 1),
            Prop.cells("ranges", 0, 0, 0x2000_0000, 0x1_0000),
            Prop.cells("#interrupt-cells", 1),
            Prop.cells("interrupt-map-mask", 0xF, 0xFFFF_FFFF),
            Prop.cells("interrupt-map", *rows),
        ),
        children,
    )
    return edit(T, "/", add_child(bus))


def _child(slot: int) -> Node:
    return Node(
        f"dev@{slot}",
        (
            Prop.cells("reg", slot, 0x10),
            Prop.cells("interrupts", 1),
            Prop.cells("interrupt-parent", 0x99),
        ),
        (),
    )


def _with_phandle(tree: DeviceTree) -> DeviceTree:
    return edit(tree, "/bus@20000000", with_props(Prop.cells("phandle", 0x99)))


def test_sharing_counts_only_the_map_rows_an_enabled_child_uses():
    # Row 2 maps to SPI 42; a device wired straight to SPI 42 shares with nobody
    # until a child of the nexus selects that row.
    direct = with_props(Prop.cells("interrupts", 0, 42, 4))
    lone = _with_phandle(edit(_nexus((_child(0),)), VIRTIO1, direct))
    assert not [f for f in found(lone) if f.rule == "interrupts.shared"]
    used = _with_phandle(edit(_nexus((_child(0), _child(2))), VIRTIO1, direct))
    shared = [f for f in found(used) if f.rule == "interrupts.shared"]
    assert len(shared) == 1 and "SPI 42" in shared[0].message
    off = _with_phandle(edit(_nexus((_child(0), disabled(_child(2)))), VIRTIO1, direct))
    assert not [f for f in found(off) if f.rule == "interrupts.shared"]


def test_an_sbsa_uart_is_not_held_to_the_pl011_clocks():
    sbsa = with_props(
        Prop.strings("compatible", "arm,sbsa-uart", "arm,pl011"), Prop.cells("clocks", 2)
    )
    assert not [f for f in found(edit(T, UART, sbsa)) if f.rule.startswith("pl011.")]
    no_clocks = drop_prop("clocks", "clock-names")
    assert not [f for f in found(edit(T, UART, no_clocks)) if f.rule.startswith("pl011.")]


def test_a_board_blob_is_judged_by_board_rules():
    # No virtio, no dummy-virt, no bootargs: what a kernel package's DTB looks like.
    board = edit(T, VIRTIO0, lambda n: None)
    board = edit(board, VIRTIO1, lambda n: None)
    board = edit(board, "/", with_props(Prop.strings("compatible", "vendor,board")))
    board = edit(board, "/chosen", drop_prop("bootargs"))
    board = edit(board, "/memory@80000000", lambda n: None)
    assert profile_of(TreeIndex(board)) == "board"
    assert ("memory.node", "/memory", "note") in rules(board)
    assert ("memory.node", "/memory", "error") in rules(board, profile="microvm")
    assert profile_of(TreeIndex(T)) == "microvm"


def test_each_rule_is_capped_and_the_rest_counted():
    cells = [0, 0x1000_0000, 0, 0x1000] * 1000
    tree = edit(T, VIRTIO0, with_props(Prop.cells("reg", *cells)))
    out = [f for f in found(tree) if f.rule == "regions.overlap"]
    assert len(out) == 21 and out[-1].omitted == 999 - 20
    assert str(out[-1]) == "warning: … and 979 more regions.overlap findings"
    assert len([f for f in found(tree, cap=None) if f.rule == "regions.overlap"]) == 999


def test_the_cli_checks_many_blobs_and_a_directory_with_one_summary(tmp_path):
    good = tmp_path / "a" / "good.dtb"
    good.parent.mkdir()
    good.write_bytes(encode(T))
    bad = tmp_path / "a" / "b" / "bad.dtb"
    bad.parent.mkdir()
    bad.write_bytes(encode(edit(T, VIRTIO0, with_props(Prop.cells("interrupts", 0, 16, 8)))))
    note = tmp_path / "note.dtb"
    note.write_bytes(encode(edit(T, UART, with_props(Prop.cells("clocks", 2)))))
    r = fdtgen("verify", "--no-dtc", str(tmp_path / "a"), str(note))
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "3 blobs, 1 error, 0 warnings, 1 note"
    assert f"{good}: clean" in lines and f"{note}: 1 note" in lines
    r = fdtgen("verify", "--no-dtc", str(good), str(note))
    assert (
        r.returncode == 0 and r.stdout.splitlines()[-1] == "2 blobs, 0 errors, 0 warnings, 1 note"
    )
    assert fdtgen("verify", "--no-dtc", "--strict", str(note)).returncode == 1
    r = fdtgen("verify", "--no-dtc", "--json", str(good), str(bad))
    doc = json.loads(r.stdout)
    assert (doc["errors"], len(doc["blobs"]), r.returncode) == (1, 2, 1)
    assert doc["blobs"][1]["findings"][0]["severity"] == "error"
