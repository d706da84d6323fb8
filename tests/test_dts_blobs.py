"""``fdtgen dts`` of any blob: DTS that dtc compiles back to the same bytes.

Each case is DTS text compiled by dtc (never a blob taken from elsewhere),
reproducing a pattern real trees have: reservations, a root that carries a
phandle, a header ``boot_cpuid_phys`` DTS cannot spell, references through
properties dtc's checks do not know.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen.fdt.dts import header_notes, to_dts
from fdtgen.fdt.encode import encode
from fdtgen.fdt.parse import parse
from fdtgen.fdt.phandles import with_labels
from fdtgen.fdt.tree import DeviceTree, Node, Prop

from .conftest import run_fdtgen as fdtgen
from .test_diff import BOARD

CASES = {
    "memreserves": """/dts-v1/;
/memreserve/ 0x80000000 0x1000;
/memreserve/ 0x0 0x10;
/ { model = "m"; };
""",
    "root-phandle": """/dts-v1/;
/ {
	phandle = <0x7>;
	interrupt-controller;
	#interrupt-cells = <1>;
	dev { interrupt-parent = <&{/}>; interrupts = <5>; };
	other { vendor,root = <&{/}>; };
};
""",
    "board-references": BOARD % {"extra": "", "tail": ""},
    "cpus-not-first-reg": """/dts-v1/;
/ {
	#address-cells = <1>;
	#size-cells = <0>;
	cpus { #address-cells = <1>; #size-cells = <0>;
		cpu@100 { device_type = "cpu"; reg = <0x100>; };
		cpu@0 { device_type = "cpu"; reg = <0x0>; }; };
};
""",
}


def _dts_of(tmp_path, blob: bytes) -> tuple[str, str]:
    path = tmp_path / "in.dtb"
    path.write_bytes(blob)
    r = fdtgen("dts", str(path))
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_dts_compiles_back_to_the_same_bytes(tmp_path, dtc, name):
    blob, _ = dtc.dts_to_dtb(CASES[name])
    text, notes = _dts_of(tmp_path, blob)
    assert notes == ""
    assert dtc.dts_to_dtb(text)[0] == blob


def test_a_root_with_a_phandle_has_no_label_and_is_referenced_by_path(dtc):
    blob, _ = dtc.dts_to_dtb(CASES["root-phandle"])
    text = to_dts(with_labels(parse(blob)))
    assert "\n/ {\n\tphandle = <0x7>;" in text
    assert "interrupt-parent = <&{/}>;" in text


@pytest.mark.parametrize("boot_cpu", [0x100, 0x0])
def test_a_boot_cpu_dts_cannot_carry_is_noted_and_kept_with_dtc_b(tmp_path, dtc, boot_cpu):
    # dtc derives 0x100 from the first cpu; "-b 0" writes what qcs404 boards carry.
    source = CASES["cpus-not-first-reg"]
    blob, _ = dtc.run("-I", "dts", "-O", "dtb", "-b", str(boot_cpu), "-", data=source.encode())
    text, notes = _dts_of(tmp_path, blob)
    if boot_cpu == 0x100:
        assert notes == "" and header_notes(parse(blob)) == []
        assert dtc.dts_to_dtb(text)[0] == blob
        return
    note = (
        "boot_cpuid_phys is 0x0 in the header, which DTS cannot carry; dtc derives 0x100 "
        "from /cpus, so compile with dtc -b 0x0 to keep it"
    )
    assert notes == f"fdtgen: note: {tmp_path / 'in.dtb'}: {note}\n"
    assert text.startswith(f"/dts-v1/;\n\n// {note}\n\n/ {{\n")
    assert dtc.run("-I", "dts", "-O", "dtb", "-b", "0", "-", data=text.encode())[0] == blob
    plain = dtc.dts_to_dtb(text)[0]
    assert plain[:0x1C] == blob[:0x1C] and plain[0x20:] == blob[0x20:]  # only the field


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(b"", "empty file: expected a DTB (magic 0xd00dfeed)", id="empty"),
        pytest.param(b" \n\t\n", "blank file: expected a DTB (magic 0xd00dfeed)", id="blank"),
        pytest.param(
            b"\x1f\x8b\x08\x00" + bytes(60),
            "neither a DTB (no magic 0xd00dfeed)",
            id="gzip",
        ),
    ],
)
def test_a_file_that_is_neither_dtb_nor_config_is_one_error(tmp_path, data, message):
    path = tmp_path / "input.dtb"
    path.write_bytes(data)
    out = tmp_path / "out.dts"
    r = fdtgen("dts", str(path), "-o", str(out))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith(f"fdtgen: error: {path}: {message}")
    assert r.stderr.count("\n") == 1
    assert not out.exists()


def test_a_config_of_comments_only_is_still_a_config(tmp_path):
    path = tmp_path / "machine.toml"
    path.write_text("# every default\n")
    r = fdtgen("dts", str(path))
    assert r.returncode == 0 and r.stdout.startswith("/dts-v1/;")


# Reference-carrying properties a generated tree draws from: name -> how many
# argument cells follow each phandle (clocks' provider has #clock-cells = <1>).
# remote-endpoint stays in BOARD, inside the port nodes dtc's graph checks need.
REFERENCES = {"clocks": 1, "pinctrl-0": 0, "vdd-supply": 0, "cpu-idle-states": 0, "cpu": 0}


@st.composite
def referencing_trees(draw: st.DrawFn) -> DeviceTree:
    """Trees whose nodes carry explicit phandles and reference each other (the
    root included) through dtc's and Linux's reference properties and a vendor
    list, with reservations and a boot CPU the source may not imply."""
    count = draw(st.integers(1, 12))
    phandles = draw(
        st.lists(st.integers(1, 0xFFFF_FFFE), min_size=count + 1, max_size=count + 1, unique=True)
    )
    root_has_phandle = draw(st.booleans())
    targets = phandles[: count + 1] if root_has_phandle else phandles[1 : count + 1]
    kids = []
    for i in range(count):
        props = [
            Prop.cells("reg", i),
            Prop.cells("phandle", phandles[i + 1]),
            Prop.cells("#clock-cells", 1),
        ]
        for name in draw(st.lists(st.sampled_from(sorted(REFERENCES)), unique=True, max_size=3)):
            refs = draw(st.lists(st.sampled_from(targets), min_size=1, max_size=3))
            cells: list[int] = []
            for ph in refs if name in ("clocks", "pinctrl-0") else refs[:1]:
                cells += [ph] + [draw(st.integers(0, 9))] * REFERENCES[name]
            props.append(Prop.cells(name, *cells))
        if draw(st.booleans()):
            props.append(Prop.cells("vendor,pins", 1, 2, draw(st.sampled_from(targets))))
        kids.append(Node(f"n{i}@{i:x}", tuple(props)))
    root_props = [Prop.cells("#address-cells", 1), Prop.cells("#size-cells", 0)]  # reg = <i>
    if root_has_phandle:
        root_props.append(Prop.cells("phandle", phandles[0]))
    cpus = Node(
        "cpus",
        (Prop.cells("#address-cells", 1), Prop.cells("#size-cells", 0)),
        (Node("cpu@100", (Prop.strings("device_type", "cpu"), Prop.cells("reg", 0x100))),),
    )
    bases = draw(st.lists(st.integers(0, 2**64 - 2), max_size=3))
    reserve = [(base, draw(st.integers(1, 2**64 - base - 1))) for base in bases]
    return DeviceTree(
        Node("", tuple(root_props), (cpus, *kids)),
        reserve=tuple(reserve),
        boot_cpuid_phys=draw(st.sampled_from([None, 0, 0x100, 0x7FFF_FFFF])),
    )


@given(tree=referencing_trees())
def test_generated_trees_print_dts_that_dtc_compiles_to_the_same_bytes(dtc, tree):
    blob = encode(tree)
    parsed = parse(blob)
    text = to_dts(with_labels(parsed))
    boot = struct.unpack_from(">I", blob, 0x1C)[0]
    compiled, _ = dtc.run("-I", "dts", "-O", "dtb", "-b", str(boot), "-", data=text.encode())
    assert compiled == blob
    assert ("// boot_cpuid_phys" in text) == (boot != 0x100)
    if parsed.root.prop("phandle") is not None:
        assert "\n/ {\n" in text and ": / {" not in text
