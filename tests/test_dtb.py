"""The encoder against dtc, libfdt and the fdt package."""

from __future__ import annotations

import struct

import libfdt
import pytest
from hypothesis import given

from fdtgen.devicetree.machine import Machine
from fdtgen.errors import BlobTooLargeError, EncodeError
from fdtgen.fdt.dts import to_dts
from fdtgen.fdt.encode import encode, encode_located
from fdtgen.fdt.tree import DeviceTree, Node, Prop
from fdtgen.pipeline import build
from fdtgen.spec import FDT_MAX_SIZE

from .strategies import squib_machines
from .treeview import ours, via_fdt_package, via_libfdt


def check_against_references(dtc, tree: DeviceTree, blob: bytes) -> None:
    # dtc re-encodes the blob to the same bytes.
    again, err = dtc.dtb_to_dtb(blob)
    assert again == blob
    # dtb -> dts -> dtb through dtc reproduces it.
    text, _ = dtc.dtb_to_dts(blob)
    back, _ = dtc.dts_to_dtb(text)
    assert back == blob
    # Our DTS compiles to the same bytes with zero warnings.
    compiled, warnings = dtc.dts_to_dtb(to_dts(tree))
    assert warnings == ""
    assert compiled == blob
    # libfdt's full structural check passes and it reads the same tree.
    buf = bytearray(blob)
    assert libfdt.fdt_check_full(buf, len(buf)) == 0
    assert via_libfdt(blob) == ours(tree)
    # The fdt package, a second parser, reads the same tree.
    assert via_fdt_package(blob) == ours(tree)


def test_default_machine_matches_dtc_libfdt_and_fdt(dtc):
    b = build(Machine())
    check_against_references(dtc, b.tree, b.blob)


@given(m=squib_machines())
def test_generated_machines_match_dtc_libfdt_and_fdt(dtc, m):
    b = build(m)
    check_against_references(dtc, b.tree, b.blob)


def test_minimal_tree_bytes_are_annotated_exactly():
    blob = encode(DeviceTree(Node("", (Prop.cells("a", 1),))))
    expected = (
        b"\xd0\x0d\xfe\xed"  # 0x00 magic
        b"\x00\x00\x00\x5a"  # 0x04 totalsize
        b"\x00\x00\x00\x38"  # 0x08 off_dt_struct
        b"\x00\x00\x00\x58"  # 0x0c off_dt_strings
        b"\x00\x00\x00\x28"  # 0x10 off_mem_rsvmap
        b"\x00\x00\x00\x11"  # 0x14 version 17
        b"\x00\x00\x00\x10"  # 0x18 last_comp_version 16
        b"\x00\x00\x00\x00"  # 0x1c boot_cpuid_phys
        b"\x00\x00\x00\x02"  # 0x20 size_dt_strings
        b"\x00\x00\x00\x20"  # 0x24 size_dt_struct
        + bytes(16)  # 0x28 rsvmap: the terminating empty entry
        + b"\x00\x00\x00\x01"  # 0x38 FDT_BEGIN_NODE
        b"\x00\x00\x00\x00"  # 0x3c "" (root name) + padding
        b"\x00\x00\x00\x03"  # 0x40 FDT_PROP
        b"\x00\x00\x00\x04"  # 0x44 len 4
        b"\x00\x00\x00\x00"  # 0x48 nameoff 0 ("a")
        b"\x00\x00\x00\x01"  # 0x4c value <1>
        b"\x00\x00\x00\x02"  # 0x50 FDT_END_NODE
        b"\x00\x00\x00\x09"  # 0x54 FDT_END
        b"a\x00"  # 0x58 strings block
    )
    assert blob == expected


def test_string_table_reuses_a_suffix_like_dtc(dtc):
    tree = DeviceTree(
        Node(
            "",
            (Prop.strings("enable-method", "psci"), Prop.strings("method", "hvc")),
        )
    )
    blob = encode(tree)
    off_strings, size_strings = (
        struct.unpack_from(">I", blob, 12)[0],
        struct.unpack_from(">I", blob, 32)[0],
    )
    assert blob[off_strings : off_strings + size_strings] == b"enable-method\0"
    assert dtc.dts_to_dtb(to_dts(tree))[0] == blob


def test_reservation_map_entries_round_trip(dtc):
    tree = DeviceTree(
        Node("", (Prop.cells("#address-cells", 2),)), reserve=((0x8000_0000, 0x1000),)
    )
    blob = encode(tree)
    assert dtc.dts_to_dtb(to_dts(tree))[0] == blob
    assert dtc.dtb_to_dtb(blob)[0] == blob


@pytest.mark.parametrize(
    "node, match",
    [
        pytest.param(Node("", children=(Node("bad name"),)), "node-name rule", id="space-in-node"),
        pytest.param(Node("", children=(Node("a" * 32),)), "node-name rule", id="node-too-long"),
        pytest.param(Node("", (Prop.empty("bad=prop"),)), "property-name rule", id="prop-char"),
        pytest.param(Node("", (Prop.empty("x"), Prop.empty("x"))), "appears twice", id="dup-prop"),
        pytest.param(Node("", children=(Node("a"), Node("a"))), "appears twice", id="dup-child"),
        pytest.param(Node("root"), "empty name", id="named-root"),
        pytest.param(Node("", children=(Node("a\udc80"),)), "node-name rule", id="not-utf8-node"),
        pytest.param(Node("", (Prop.empty("a\udc80"),)), "property-name rule", id="not-utf8-prop"),
        pytest.param(
            Node("", (Prop.empty("x=y"),), (Node("bad name"),)),
            r"node '/': property name 'x=y'",
            id="first-in-blob-order",
        ),
    ],
)
def test_invalid_names_are_rejected_with_the_node_path(node, match):
    with pytest.raises(EncodeError, match=match):
        encode(DeviceTree(node))


def test_blob_over_two_mib_is_rejected():
    big = DeviceTree(Node("", (Prop.bytes_("blob", bytes(FDT_MAX_SIZE)),)))
    with pytest.raises(BlobTooLargeError, match="0x200000-byte limit"):
        encode(big, max_size=FDT_MAX_SIZE)


def test_located_offsets_point_at_the_property_value():
    tree = DeviceTree(Node("", children=(Node("chosen", (Prop.bytes_("rng-seed", b"\xaa" * 8),)),)))
    blob, where = encode_located(tree, [("/chosen", "rng-seed")])
    off = where[("/chosen", "rng-seed")]
    assert blob[off : off + 8] == b"\xaa" * 8


def test_boot_cpuid_is_the_first_cpu_reg():
    b = build(Machine(vcpus=4))
    assert struct.unpack_from(">I", b.blob, 28)[0] == 0


def test_u64_and_bytes_render_to_the_same_blob(dtc):
    tree = DeviceTree(
        Node(
            "",
            (
                Prop.u64("big", 0x1_2345_6789),
                Prop.bytes_("raw", b"\x00\x01\x02"),
                Prop.strings("esc", 'quote" back\\ tab\t nl\n'),
                Prop.strings("empty", ""),
            ),
        )
    )
    compiled, warnings = dtc.dts_to_dtb(to_dts(tree))
    assert warnings == ""
    assert compiled == encode(tree)
