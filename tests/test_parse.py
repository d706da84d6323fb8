"""The strict parser against libfdt, the fdt package and dtc; hand-made malformed blobs.

The blob helpers here lay out bytes by hand (header, blocks, tokens), apart
from fdtgen's encoder, so the tests do not check the parser against the code
that wrote its input.
"""

from __future__ import annotations

import struct

import libfdt
import pytest
from hypothesis import given

from fdtgen.devicetree.machine import Machine
from fdtgen.errors import BlobError
from fdtgen.fdt.dts import to_dts
from fdtgen.fdt.parse import MAX_DEPTH, parse, parse_blob
from fdtgen.fdt.phandles import phandle_uses, with_labels
from fdtgen.fdt.tree import Ref
from fdtgen.pipeline import build

from .conftest import FIXTURES
from .strategies import squib_machines
from .treeview import ours, via_fdt_package, via_libfdt

QEMU = FIXTURES / "qemu"
MAGIC = 0xD00DFEED
BEGIN, END_NODE, PROP, NOP, END = 1, 2, 3, 4, 9


def u32(*words: int) -> bytes:
    return struct.pack(f">{len(words)}I", *words)


def begin(name: str) -> bytes:
    raw = name.encode() + b"\0"
    return u32(BEGIN) + raw + bytes(-len(raw) % 4)


def prop(nameoff: int, value: bytes) -> bytes:
    return u32(PROP, len(value), nameoff) + value + bytes(-len(value) % 4)


def raw_blob(
    struct_block: bytes,
    strings: bytes = b"",
    rsv: bytes = bytes(16),
    *,
    order: str = "msS",
    pad: int = 0,
    **override: int,
) -> bytes:
    """A blob laid out by hand: header, then the blocks in ``order`` (m = memory
    reservation map, s = structure, S = strings), ``pad`` zero bytes after each.
    ``override`` replaces header fields by name after layout."""
    body = bytearray(bytes(40))
    offsets: dict[str, int] = {}
    blocks = {"m": (rsv, 8), "s": (struct_block, 4), "S": (strings, 1)}
    for key in order:
        data, align = blocks[key]
        body.extend(bytes(-len(body) % align))
        offsets[key] = len(body)
        body.extend(data)
        body.extend(bytes(pad))
    fields = {
        "magic": MAGIC,
        "totalsize": len(body),
        "off_dt_struct": offsets["s"],
        "off_dt_strings": offsets["S"],
        "off_mem_rsvmap": offsets["m"],
        "version": 17,
        "last_comp_version": 16,
        "boot_cpuid_phys": 0,
        "size_dt_strings": len(strings),
        "size_dt_struct": len(struct_block),
    }
    fields.update(override)
    struct.pack_into(">10I", body, 0, *fields.values())
    return bytes(body)


def header(blob: bytes) -> dict[str, int]:
    names = (
        "magic",
        "totalsize",
        "off_dt_struct",
        "off_dt_strings",
        "off_mem_rsvmap",
        "version",
        "last_comp_version",
        "boot_cpuid_phys",
        "size_dt_strings",
        "size_dt_struct",
    )
    return dict(zip(names, struct.unpack_from(">10I", blob), strict=True))


def relayout(blob: bytes, order: str = "msS", pad: int = 0, **override: int) -> bytes:
    """A dtc-layout blob's blocks re-laid out in another order/padding."""
    h = header(blob)
    rsv = blob[h["off_mem_rsvmap"] : h["off_dt_struct"]]
    st = blob[h["off_dt_struct"] : h["off_dt_struct"] + h["size_dt_struct"]]
    strings = blob[h["off_dt_strings"] : h["off_dt_strings"] + h["size_dt_strings"]]
    kept = {k: h[k] for k in ("version", "last_comp_version", "boot_cpuid_phys")}
    return raw_blob(st, strings, rsv, order=order, pad=pad, **(kept | override))


def libfdt_rc(blob: bytes) -> int:
    buf = bytearray(blob)
    return int(libfdt.fdt_check_full(buf, len(buf)))


# The smallest well-formed tree: / { a = <1>; c { }; };
STRINGS = b"a\0"
MINIMAL = begin("") + prop(0, u32(1)) + begin("c") + u32(END_NODE, END_NODE, END)


@pytest.fixture(scope="module")
def default_blob() -> bytes:
    return build(Machine()).blob


def test_parser_reads_what_libfdt_and_the_fdt_package_read(default_blob):
    tree = parse(default_blob)
    assert ours(tree) == via_libfdt(default_blob)
    assert ours(tree) == via_fdt_package(default_blob)
    assert tree.boot_cpuid_phys == 0 and tree.reserve == ()


@given(m=squib_machines())
def test_generated_machines_parse_back_to_the_tree_libfdt_reads(m):
    blob = build(m).blob
    assert ours(parse(blob)) == via_libfdt(blob)


@pytest.mark.parametrize("name", ["virt-gicv3.dtb", "virt-gicv2.dtb"])
def test_qemu_dumps_parse_like_libfdt(name):
    blob = (QEMU / name).read_bytes()
    parsed = parse_blob(blob)
    assert ours(parsed.tree) == via_libfdt(blob)
    assert parsed.header.totalsize == len(blob) == 0x100000
    assert [b.name for b in parsed.blocks] == [
        "header",
        "memory reservation map",
        "structure block",
        "strings block",
    ]


@pytest.mark.parametrize("order", ["msS", "mSs", "smS", "sSm", "Sms", "Ssm"])
@pytest.mark.parametrize("pad", [0, 13])
def test_every_block_order_and_padding_holds_the_same_tree(dtc, default_blob, order, pad):
    moved = relayout(default_blob, order, pad)
    assert libfdt_rc(moved) == 0
    assert ours(parse(moved)) == ours(parse(default_blob))
    # dtc reads the moved blob and writes the canonical layout back.
    assert dtc.dtb_to_dtb(moved)[0] == default_blob


def test_nop_tokens_are_skipped_like_libfdt_and_dtc(dtc, default_blob):
    buf = bytearray(default_blob)
    assert libfdt.fdt_nop_property(buf, libfdt.fdt_path_offset(buf, "/chosen"), "bootargs") == 0
    assert libfdt.fdt_nop_node(buf, libfdt.fdt_path_offset(buf, "/virtio_mmio@f000000")) == 0
    blob = bytes(buf)
    parsed = parse_blob(blob)
    assert parsed.nops > 0
    assert ours(parsed.tree) == via_libfdt(blob)
    assert parsed.tree.root.find("/chosen").prop("bootargs") is None
    assert dtc.dtb_to_dtb(blob)[0] == dtc.dts_to_dtb(to_dts(with_labels(parsed.tree)))[0]


def test_version_16_blobs_have_no_struct_size_and_still_parse(dtc, default_blob):
    v16, _ = dtc.run("-I", "dtb", "-O", "dtb", "-V", "16", "-", data=default_blob)
    assert header(v16)["version"] == 16
    parsed = parse_blob(v16)
    assert parsed.header.size_dt_struct is None
    assert ours(parsed.tree) == ours(parse(default_blob))


def test_a_later_version_compatible_with_17_is_read_like_libfdt(default_blob):
    later = relayout(default_blob, version=18, last_comp_version=16)
    assert libfdt_rc(later) == 0
    assert ours(parse(later)) == ours(parse(default_blob))


def test_reservations_and_boot_cpuid_come_from_the_blob(dtc):
    text = "/dts-v1/;\n/memreserve/ 0x80000000 0x1000;\n/memreserve/ 0x90000000 0x2000;\n/ { };\n"
    blob, _ = dtc.run("-I", "dts", "-O", "dtb", "-b", "5", "-", data=text.encode())
    tree = parse(blob)
    assert tree.reserve == ((0x8000_0000, 0x1000), (0x9000_0000, 0x2000))
    assert tree.boot_cpuid_phys == 5


def test_a_file_longer_than_totalsize_parses_the_blob_inside():
    blob = raw_blob(MINIMAL, STRINGS)
    parsed = parse_blob(blob + b"\xff" * 7)
    assert parsed.file_size == parsed.header.totalsize + 7
    assert [p.name for p in parsed.tree.root.props] == ["a"]


def test_nesting_up_to_the_linux_depth_limit_is_accepted():
    deepest = MAX_DEPTH - 1  # the root is depth 0
    body = begin("") + begin("n") * deepest + u32(END_NODE) * (deepest + 1) + u32(END)
    tree = parse(raw_blob(body))
    assert max(path.count("/") for path, _ in tree.root.walk()) == deepest


def _rejects() -> list[object]:
    ok = raw_blob(MINIMAL, STRINGS)
    h = header(ok)
    struct_at = h["off_dt_struct"]
    return [
        pytest.param(b"", 0, "expected at least 4 bytes", True, id="empty"),
        pytest.param(ok[:3], 0, "expected at least 4 bytes", True, id="three-bytes"),
        pytest.param(
            b"\xd0\x0d\xfe\xee" + ok[4:],
            0,
            "magic: expected 0xd00dfeed, found other bytes (not a DTB)",
            True,
            id="bad-magic",
        ),
        pytest.param(
            ok[:30], 0, "header: expected at least 36 bytes, found 30", True, id="short-header"
        ),
        pytest.param(
            relayout(ok, version=15, last_comp_version=15),
            0x14,
            "version: expected 16 or later, found 15",
            False,
            id="version-15",
        ),
        pytest.param(
            relayout(ok, last_comp_version=18),
            0x18,
            "last_comp_version: expected at most 17",
            True,
            id="last-comp-18",
        ),
        pytest.param(
            relayout(ok, version=16, last_comp_version=17),
            0x18,
            "expected at most 16 (version 16), found 17",
            True,
            id="last-comp-above-version",
        ),
        pytest.param(
            ok[:-1],
            0x04,
            f"totalsize: expected at most the {len(ok) - 1:#x} bytes present, found {len(ok):#x}",
            True,
            id="truncated",
        ),
        pytest.param(
            relayout(ok, totalsize=0x20),
            0x04,
            "totalsize: expected at least the 40-byte header, found 0x20",
            True,
            id="totalsize-below-header",
        ),
        pytest.param(
            relayout(ok, totalsize=0xFFFF_FFFF), 0x04, "found 0xffffffff", True, id="totalsize-huge"
        ),
        pytest.param(
            relayout(ok, off_dt_struct=0xFFFF_0000),
            0x08,
            "structure block offset: expected 0x28..",
            True,
            id="struct-offset-out",
        ),
        pytest.param(
            relayout(ok, off_dt_struct=struct_at + 2),
            0x08,
            "expected a multiple of 4, found",
            True,
            id="struct-misaligned",
        ),
        pytest.param(
            relayout(ok, size_dt_struct=0x7FFF_FFFF),
            0x08,
            "structure block: expected [",
            True,
            id="struct-size-lies",
        ),
        pytest.param(
            relayout(ok, pad=8, size_dt_struct=h["size_dt_struct"] + 4),
            0x24,
            "size_dt_struct: expected 0x",
            False,
            id="struct-size-past-end",
        ),
        pytest.param(
            relayout(ok, off_dt_strings=0xFFFF_FF00),
            0x0C,
            "strings block offset: expected",
            True,
            id="strings-offset-out",
        ),
        pytest.param(
            relayout(ok, size_dt_strings=0x1000),
            0x0C,
            "strings block: expected [",
            True,
            id="strings-size-lies",
        ),
        pytest.param(
            relayout(ok, off_mem_rsvmap=0x7000_0000),
            0x10,
            "memory reservation map offset: expected",
            True,
            id="rsvmap-offset-out",
        ),
        pytest.param(
            raw_blob(MINIMAL, STRINGS, rsv=u32(0, 1, 0, 1) * 2),
            None,
            "expected a terminating zero-size entry",
            True,
            id="rsvmap-unterminated",
        ),
        pytest.param(
            relayout(ok, off_dt_strings=struct_at + 4, size_dt_strings=2),
            None,
            "expected to start at or after the end of the structure block",
            False,
            id="blocks-overlap",
        ),
        pytest.param(
            raw_blob(u32(7) + MINIMAL, STRINGS),
            struct_at,
            "expected a token (FDT_BEGIN_NODE 1, FDT_END_NODE 2, FDT_PROP 3, FDT_NOP 4, "
            "FDT_END 9), found 0x7",
            True,
            id="unknown-token",
        ),
        pytest.param(
            raw_blob(MINIMAL[:-4], STRINGS),
            None,
            "expected FDT_END, found the end of the block",
            True,
            id="no-fdt-end",
        ),
        pytest.param(
            raw_blob(begin("") + u32(END_NODE, END_NODE, END)),
            None,
            "expected FDT_BEGIN_NODE or FDT_END, found FDT_END_NODE",
            True,
            id="extra-end-node",
        ),
        pytest.param(
            raw_blob(begin("") + begin("c") + u32(END_NODE, END)),
            None,
            "expected FDT_END_NODE, found FDT_END with 1 node(s) open",
            True,
            id="unbalanced",
        ),
        pytest.param(
            raw_blob(prop(0, u32(1)) + u32(END), STRINGS),
            struct_at,
            "found FDT_PROP outside any node",
            False,
            id="prop-outside-node",
        ),
        pytest.param(
            raw_blob(begin("") + u32(PROP, 0xFFFF_FFF0, 0) + u32(END_NODE, END), STRINGS),
            struct_at + 12,
            "property length: expected at most",
            True,
            id="huge-prop-length",
        ),
        pytest.param(
            raw_blob(begin("") + prop(0x40, u32(1)) + u32(END_NODE, END), STRINGS),
            struct_at + 16,
            "nameoff: expected less than the strings block size 0x2, found 0x40",
            True,
            id="nameoff-out",
        ),
        pytest.param(
            raw_blob(MINIMAL, b"ab"),
            None,
            "expected a NUL inside the strings block, found none",
            True,
            id="name-unterminated",
        ),
        pytest.param(
            raw_blob(u32(BEGIN) + b"abcd", b""),
            struct_at + 4,
            "expected a NUL-terminated name inside the structure block",
            True,
            id="node-name-unterminated",
        ),
        pytest.param(
            raw_blob(begin("") + begin("a b") + u32(END_NODE, END_NODE, END)),
            struct_at + 12,
            "found 'a b'",
            False,
            id="node-name-space",
        ),
        pytest.param(
            raw_blob(begin("") + begin("") + u32(END_NODE, END_NODE, END)),
            struct_at + 12,
            "found ''",
            False,
            id="empty-child-name",
        ),
        pytest.param(
            raw_blob(begin("") + prop(0, b"") + prop(0, b"") + u32(END_NODE, END), STRINGS),
            None,
            "found 'a' twice",
            False,
            id="duplicate-property",
        ),
        pytest.param(
            raw_blob(
                begin("") + begin("c") + u32(END_NODE) + begin("c") + u32(END_NODE, END_NODE, END)
            ),
            None,
            "found 'c' twice",
            False,
            id="duplicate-child",
        ),
        pytest.param(
            raw_blob(
                begin("") + begin("c") + u32(END_NODE) + prop(0, b"") + u32(END_NODE, END), STRINGS
            ),
            None,
            "expected properties before subnodes (DT spec), found property 'a' after a subnode",
            False,
            id="property-after-subnode",
        ),
        pytest.param(
            raw_blob(MINIMAL[:-4] + begin("") + u32(END_NODE, END), STRINGS),
            None,
            "expected FDT_END after the root node, found FDT_BEGIN_NODE",
            True,
            id="second-root",
        ),
        pytest.param(
            raw_blob(
                begin("") + begin("n") * MAX_DEPTH + u32(END_NODE) * (MAX_DEPTH + 1) + u32(END)
            ),
            None,
            f"expected nesting of at most {MAX_DEPTH} levels",
            False,
            id="too-deep",
        ),
        pytest.param(
            raw_blob(begin("") + begin("n") * 100_000 + u32(END)),
            None,
            "expected nesting of at most",
            True,
            id="deep-unbalanced",
        ),
    ]


@pytest.mark.parametrize("blob, offset, message, libfdt_rejects", _rejects())
def test_malformed_blobs_are_rejected_naming_offset_expected_and_found(
    blob, offset, message, libfdt_rejects
):
    with pytest.raises(BlobError) as err:
        parse_blob(blob)
    text = str(err.value)
    assert message in text
    assert "expected" in text and "found" in text
    assert text.startswith("dtb offset 0x")
    if offset is not None:
        assert err.value.offset == offset
    # libfdt, an independent parser, agrees wherever its checks reach.
    if libfdt_rejects and len(blob) >= 4:
        assert libfdt_rc(blob) < 0


def test_parsed_properties_render_as_dts_dtc_compiles_to_the_same_blob(dtc, default_blob):
    text = to_dts(with_labels(parse(default_blob)))
    compiled, warnings = dtc.dts_to_dtb(text)
    assert warnings == ""
    assert compiled == default_blob


@pytest.mark.parametrize("name", ["virt-gicv3.dtb", "virt-gicv2.dtb"])
def test_qemu_dump_dts_compiles_without_warnings_to_what_dtc_reads(dtc, name):
    blob = (QEMU / name).read_bytes()
    compiled, warnings = dtc.dts_to_dtb(to_dts(with_labels(parse(blob))))
    assert warnings == ""
    assert compiled == dtc.dtb_to_dtb(blob)[0]


def test_hand_made_values_of_every_kind_round_trip_through_dtc(dtc):
    strings = b"s\0u\0e\0b\0odd#name?\0q\0"
    body = (
        begin("")
        + prop(0, b"one\0two\0")  # strings
        + prop(2, u32(0xDEADBEEF, 7))  # cells
        + prop(4, b"")  # empty
        + prop(6, b"\x01\x02\x03")  # bytes
        + prop(8, b'tab\there "quoted" \\\0')  # escapes
        + prop(18, b"\0")  # an empty string
        + begin("node,with+odd_chars.x-y@1f")
        + u32(END_NODE, END_NODE, END)
    )
    blob = raw_blob(body, strings)
    assert libfdt_rc(blob) == 0
    compiled, warnings = dtc.dts_to_dtb(to_dts(with_labels(parse(blob))))
    assert compiled == dtc.dtb_to_dtb(blob)[0]
    assert ours(parse(compiled)) == ours(parse(blob)) == via_libfdt(blob)


def test_phandle_references_become_labels_like_dtc_source():
    tree = with_labels(parse((QEMU / "virt-gicv3.dtb").read_bytes()))
    gic = tree.root.find("/intc@8000000")
    assert gic.label == "intc_8000000"
    pl011 = tree.root.find("/pl011@9000000")
    assert pl011.prop("clocks").items == (Ref("apb_pclk", 0x8000), Ref("apb_pclk", 0x8000))
    assert tree.root.prop("interrupt-parent").items == (Ref("intc_8000000", 0x8003),)
    pcie = tree.root.find("/pcie@10000000")
    assert pcie.prop("msi-map").items == (0, Ref("its_8080000", 0x8004), 0, 0x10000)
    imap = pcie.prop("interrupt-map").items
    assert sum(isinstance(c, Ref) for c in imap) == 16  # 4 slots x 4 INTx pins


def test_references_to_missing_phandles_are_reported_not_labelled():
    strings = b"interrupt-parent\0phandle\0"
    body = (
        begin("")
        + prop(0, u32(0x99))
        + begin("gic")
        + prop(17, u32(1))
        + u32(END_NODE, END_NODE, END)
    )
    tree = parse(raw_blob(body, strings))
    uses = phandle_uses(tree.root)
    assert [(u.path, u.prop, u.phandle, u.target) for u in uses] == [
        ("/", "interrupt-parent", 0x99, None)
    ]
    assert with_labels(tree).root.prop("interrupt-parent").items == ()
