"""``fdtgen dts`` of any blob: DTS that dtc compiles back to the same bytes.

Each case is DTS text compiled by dtc (never a blob taken from elsewhere),
reproducing a pattern real trees have: reservations, a root that carries a
phandle, a header ``boot_cpuid_phys`` DTS cannot spell, references through
properties dtc's checks do not know.
"""

from __future__ import annotations

import pytest

from fdtgen.fdt.dts import header_notes, to_dts
from fdtgen.fdt.parse import parse
from fdtgen.fdt.phandles import with_labels

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
            "neither a DTB (first word 0x1f8b0800, not the magic 0xd00dfeed)",
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
