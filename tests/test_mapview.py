"""``fdtgen layout`` and ``fdtgen templates``: the map as a table, a diagram and an SVG.

Every check is against the resolved layout itself (``machine_layout``), not
against text written down here: each region present, its addresses right, the
order right.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fdtgen.devicetree.machine import Machine
from fdtgen.devicetree.machine import machine_layout as _machine_layout
from fdtgen.pictures import BOOT, SPARE, diagram, layout_rows, svg, table, template_rows
from fdtgen.template.load import builtin_names, load_template
from fdtgen.units import fmt_size

from .conftest import ROOT
from .conftest import run_fdtgen as run

SVG_NS = "{http://www.w3.org/2000/svg}"
ROW = re.compile(
    r"^(?P<tag>\S+)\s+(?P<base>0x[0-9a-f_]+)\s+(?P<end>0x[0-9a-f_]+)\s+(?P<size>[\d.]+ \w+)\s+"
    r"(?P<source>pinned|allocated|spare|boot)\b(?P<rest>.*)$"
)
EDGE = re.compile(r"^\+-+\+ <- (0x[0-9a-f_]+)$")


def machine_layout(m: Machine):
    return _machine_layout(m, load_template(m.template))


def addr(text: str) -> int:
    return int(text.replace("_", ""), 16)


def table_rows(text: str) -> list[re.Match[str]]:
    return [m for m in map(ROW.match, text.splitlines()) if m]


@pytest.mark.parametrize(
    ("size", "decimals", "trim", "shown"),
    [
        pytest.param(1536 * 1024, None, True, "1536 KiB", id="exact-for-messages"),
        pytest.param(4097, None, True, "4097 B", id="exact-falls-back-to-bytes"),
        pytest.param(3 << 30, None, True, "3 GiB", id="exact-whole-unit"),
        pytest.param(7 << 28, 2, True, "1.75 GiB", id="rounded-for-tables"),
        pytest.param(4096, 2, True, "4 KiB", id="rounded-trims-zeros"),
        pytest.param(0x98D, 1, False, "2.4 KiB", id="place-keeps-one-decimal"),
        pytest.param(1 << 30, 1, False, "1.0 GiB", id="place-whole-unit"),
        pytest.param(5 << 40, 1, False, "5.0 TiB", id="place-uses-tib"),
    ],
)
def test_one_size_formatter_for_messages_tables_and_place(size, decimals, trim, shown):
    assert fmt_size(size, decimals, trim=trim) == shown


def test_the_default_table_lists_every_live_region_in_address_order():
    out = run("layout", "--table")
    assert out.returncode == 0, out.stderr
    rows = table_rows(out.stdout)
    layout = machine_layout(Machine())
    live = [(m["tag"], addr(m["base"]), addr(m["end"])) for m in rows if m["source"] != "spare"]
    assert live == [(r.tag, r.range.base, r.range.end) for r in layout.regions()]
    bases = [addr(m["base"]) for m in rows]
    assert bases == sorted(bases)
    for m in rows:
        assert m["size"] == fmt_size(addr(m["end"]) - addr(m["base"]), 2)
    uart = next(m for m in rows if m["tag"] == "uart0")
    assert "SPI 1 (INTID 33) level-high" in uart["rest"]
    for i, v in enumerate(layout.virtio):
        m = next(m for m in rows if m["tag"] == f"virtio-{i}")
        assert f"SPI {v.spi.number} (INTID {v.spi.number + 32}) edge-rising" in m["rest"]
    ram = next(m for m in rows if m["tag"] == "ram")
    assert ram["source"] == "allocated"
    assert next(m for m in rows if m["tag"] == "msi")["rest"].strip() == "reserved: not in the DT"


def test_devices_are_drawn_by_their_kind_not_by_their_tag(tmp_path: Path):
    text = (ROOT / "templates" / "qemu-virt.toml").read_text(encoding="utf-8")
    assert text.count('tag = "rtc"') == 1
    path = tmp_path / "renamed.toml"
    path.write_text(text.replace('tag = "rtc"', 'tag = "virtio-rtc"'), encoding="utf-8")
    t = load_template(str(path))
    rtc = next(
        r for r in layout_rows(machine_layout(Machine(template=str(path)))) if r.tag == "virtio-rtc"
    )
    assert (rtc.kind, rtc.note) == ("device", "pl031")
    assert next(r for r in template_rows(t) if r.tag == "virtio-rtc").kind == "device"
    assert next(r for r in template_rows(t) if r.tag == "uart0").kind == "uart"


def test_spare_rows_are_exactly_the_unused_parts_of_the_pinned_windows():
    layout = machine_layout(Machine(vcpus=3, virtio=5))
    rows = layout_rows(layout)
    t = layout.template
    for window in t.pinned_regions():
        inside = [r for r in rows if window.range.contains(r.range) and r.source != BOOT]
        if window.tag.startswith("dram") or any(r.source != SPARE for r in inside):
            # live pieces and spare pieces tile the window exactly
            covered = sorted((r.range.base, r.range.end) for r in inside)
            assert covered[0][0] == window.range.base and covered[-1][1] == window.range.end
            assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))
    spare = {r.tag: r for r in rows if r.source == SPARE}
    assert spare["virtio"].note == "27 unused virtio slots"
    assert (
        spare["gic-redist"].note
        == f"{(0x600_0000 - 3 * 0x2_0000) // 0x2_0000} unused frames of 128 KiB"
    )


def boxes(lines: list[str]) -> list[tuple[int, int, str]]:
    """(base, end, first text line) for each box of a diagram, top first."""
    out = []
    top = None
    label = ""
    for line in lines:
        m = EDGE.match(line)
        if m:
            if top is not None:
                out.append((addr(m[1]), top, label))
            top, label = addr(m[1]), ""
        elif not label and line[:1] in "|:":
            label = line
    return out


def test_the_default_diagram_draws_every_region_top_first_with_its_boundaries():
    out = run("layout", "--diagram")
    assert out.returncode == 0, out.stderr
    drawn = boxes(out.stdout.splitlines())
    edges = [d[1] for d in drawn]
    assert edges == sorted(edges, reverse=True), "top address first"
    assert all(lo < hi for lo, hi, _ in drawn)
    assert all(a[0] == b[1] for a, b in zip(drawn, drawn[1:], strict=False)), "boxes stack"
    assert drawn[-1][0] == 0, "the diagram reaches address 0 (gaps included)"
    layout = machine_layout(Machine())
    by_range = {(lo, hi): label for lo, hi, label in drawn}
    for r in layout.regions():
        if r.tag.startswith("virtio-"):
            continue
        label = by_range[(r.range.base, r.range.end)]
        assert label.split()[1] == r.tag
        assert label.split("|")[1].strip().endswith(fmt_size(r.range.size, 2))
    v = layout.virtio
    run_label = by_range[(v[0].range.base, v[-1].range.end)]
    assert "virtio-0..31" in run_label and "32 x 4 KiB; SPI 16..47 (INTID 48..79)" in run_label
    gaps = [(lo, hi) for lo, hi, label in drawn if label.startswith(": gap")]
    assert (layout.virtio[-1].range.end, layout.ram[0].base) in gaps
    # folded: a 1 GiB-or-larger box gets a fold line, small ones never do
    text = out.stdout.splitlines()
    for i, line in enumerate(text):
        if line.startswith("~"):
            above = next(x for x in reversed(text[:i]) if x[:1] in "|:")
            assert "GiB" in above or "TiB" in above


def test_placement_appears_in_table_diagram_and_svg(tmp_path: Path):
    pic = tmp_path / "map.svg"
    out = run("layout", "examples/placed.toml", "--svg", str(pic))
    assert out.returncode == 0, out.stderr
    rows = {m["tag"]: m for m in table_rows(out.stdout)}
    manifest = tmp_path / "boot.json"
    assert (
        run(
            "build",
            "examples/placed.toml",
            "-o",
            str(tmp_path / "g.dtb"),
            "--manifest",
            str(manifest),
        ).returncode
        == 0
    )
    import json

    m = json.loads(manifest.read_text())
    assert addr(rows["kernel"]["base"]) == m["kernel"]["load_address"]
    assert addr(rows["kernel"]["end"]) - addr(rows["kernel"]["base"]) == m["kernel"]["reserved"]
    assert addr(rows["initrd"]["base"]) == m["initrd"]["address"]
    assert addr(rows["dtb"]["base"]) == m["dtb"]["address"]
    drawn = boxes(out.stdout.splitlines())
    for name in ("kernel", "initrd", "dtb"):
        lo, hi = addr(rows[name]["base"]), addr(rows[name]["end"])
        assert any(b[:2] == (lo, hi) and b[2].split()[1] == name for b in drawn)
    texts = svg_texts(pic.read_text())
    assert {"kernel", "initrd", "dtb"} <= texts


def svg_texts(doc: str) -> set[str]:
    root = ET.fromstring(doc)
    assert root.tag == f"{SVG_NS}svg"
    words = set()
    for el in root.iter():
        if el.tag in (f"{SVG_NS}text", f"{SVG_NS}title") and el.text:
            words.add(el.text)
            words.update(w.strip() for w in el.text.split(","))
    return words


@pytest.mark.parametrize("name", builtin_names())
def test_the_svg_is_well_formed_and_names_every_region(name: str):
    layout = machine_layout(
        Machine(template=name, virtio=0 if not load_template(name).virtio.slots else 32)
    )
    rows = layout_rows(layout)
    words = svg_texts(svg(rows, f"{name}"))
    for r in rows:
        assert r.tag in words or f"{r.tag} (spare)" in words, r.tag


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_svg_renders_to_a_png_picture(tmp_path: Path):
    converter = shutil.which("rsvg-convert")
    if converter is None:
        pytest.fail("rsvg-convert is required (apt-get install librsvg2-bin)")
    pic = tmp_path / "map.svg"
    assert run("layout", "--svg", str(pic)).returncode == 0
    root = ET.fromstring(pic.read_text())
    png = tmp_path / "map.png"
    p = subprocess.run(
        [converter, str(pic), "-o", str(png)], capture_output=True, text=True, check=False
    )
    assert p.returncode == 0, p.stderr
    assert png_size(png.read_bytes()) == (int(root.get("width")), int(root.get("height")))


def test_the_readme_picture_is_current(golden):
    out = run("layout", "examples/placed.toml", "--svg", "-")
    assert out.returncode == 0, out.stderr
    golden("docs/layout-example.svg", out.stdout.encode())
    assert "docs/layout-example.svg" in (ROOT / "README.md").read_text()


def test_a_bad_config_writes_no_picture(tmp_path: Path):
    pic = tmp_path / "map.svg"
    out = run("layout", "--vcpus", "99", "--svg", str(pic))
    assert out.returncode == 2
    assert out.stderr.startswith("fdtgen: error: ") and "vcpus" in out.stderr
    assert "Traceback" not in out.stderr
    assert not pic.exists() and list(tmp_path.iterdir()) == []


def test_in_process_table_and_diagram_match_the_cli():
    rows = layout_rows(machine_layout(Machine()))
    out = run("layout").stdout
    assert "\n".join(table(rows)) in out
    assert "\n".join(diagram(rows)) in out


# --- fdtgen templates ---------------------------------------------------------------


def test_templates_lists_every_builtin_with_its_vmm_and_description():
    out = run("templates")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VMM", "DESCRIPTION"]
    listed = {line.split()[0]: line for line in lines[1:]}
    assert sorted(listed) == builtin_names()
    for name, line in listed.items():
        t = load_template(name)
        assert t.vmm and t.description
        assert re.match(
            rf"^{re.escape(name)}\s+{re.escape(t.vmm)}\s+{re.escape(t.description)}$", line
        )


@pytest.mark.parametrize("name", builtin_names())
def test_templates_show_prints_every_pinned_region(name: str):
    out = run("templates", "show", name)
    assert out.returncode == 0, out.stderr
    assert out.stdout == run("templates", name).stdout
    t = load_template(name)
    rows = {(m["tag"], addr(m["base"]), addr(m["end"])) for m in table_rows(out.stdout)}
    for r in t.pinned_regions():
        assert (r.tag, r.range.base, r.range.end) in rows
    for h in t.ram_holes:
        assert (h.tag, h.range.base, h.range.end) in rows
    assert t.source in out.stdout


def test_templates_show_an_unknown_name_is_one_error_line():
    out = run("templates", "show", "qemu-vrit")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "qemu-vrit" in out.stderr
