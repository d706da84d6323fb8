"""docs/layout.md and docs/placement.md stay true.

The documents mark what is checked with HTML comments right before a table or
a fenced block:

* ``<!-- output-of: fdtgen ARGS [| head -N] -->``: the block is what the
  command prints (stdout, or stderr when it fails), first N lines if given;
* ``<!-- region-table: template squib -->`` / ``default machine``: every region
  with its base, end, SPI/INTID and trigger, against the template and the
  resolved default machine;
* ``<!-- ppi-table: template squib -->``: the timer and maintenance PPIs;
* ``<!-- placement-result: CONFIG [ARGS] -->``: the final addresses of a
  placement, against ``fdtgen place`` and the manifest of ``fdtgen build``;
* ``<!-- manifest-excerpt: CONFIG -->`` / ``<!-- manifest-table: CONFIG -->``:
  manifest fields as JSON and in decimal and hex.

Error lines quoted in prose tables are reproduced from broken copies of the
template and must appear verbatim.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from fdtgen.devicetree.machine import Machine, machine_layout
from fdtgen.template.load import load_template, templates_dir

from .conftest import ROOT
from .conftest import run_fdtgen as run

DOCS = ROOT / "docs"
LAYOUT_MD = DOCS / "layout.md"
PLACEMENT_MD = DOCS / "placement.md"
CODEGEN_MD = DOCS / "codegen.md"

HEX_STYLE = re.compile(r"0x[0-9A-F]{1,4}(?:_[0-9A-F]{4})*")
FOLDED_TAG = re.compile(r"(?P<name>[a-z][a-z0-9-]*)-(?P<first>\d+)\.\.(?P<last>\d+)")
IRQ_CELL = re.compile(
    r"(?P<kind>SPI|PPI) (?P<nums>[\d, .]+) \(INTID (?P<intids>[\d, .]+)\)",
)
NONE = "—"


# --- parsing the documents --------------------------------------------------------------------


def marker_positions(text: str, kind: str) -> list[tuple[str, int]]:
    """``(argument, end offset)`` of every ``<!-- kind: argument -->`` comment."""
    return [
        (m.group(1).strip(), m.end())
        for m in re.finditer(rf"<!-- {re.escape(kind)}:(.*?)-->", text)
    ]


def one_marker(text: str, kind: str, arg: str) -> int:
    found = [end for a, end in marker_positions(text, kind) if a == arg]
    assert len(found) == 1, f"expected one <!-- {kind}: {arg} --> marker, found {len(found)}"
    return found[0]


def block_after(text: str, pos: int) -> str:
    """The content of the fenced code block that starts right after ``pos``."""
    m = re.compile(r"\s*```[a-z]*\n(.*?)\n```", re.S).match(text, pos)
    assert m, f"no fenced code block right after offset {pos}"
    return m.group(1)


def table_after(text: str, pos: int) -> list[dict[str, str]]:
    """The Markdown table right after ``pos``: one dict per row, backticks stripped."""
    lines = text[pos:].lstrip("\n").splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("`", "") for c in line.strip().strip("|").split("|")])
    assert len(rows) >= 3, f"no table right after offset {pos}"
    header, sep, *body = rows
    assert all(set(c) <= set("-: ") for c in sep), f"malformed table separator {sep}"
    for row in body:
        assert len(row) == len(header), f"row {row} does not match header {header}"
    return [dict(zip(header, row, strict=True)) for row in body]


def hexnum(cell: str) -> int:
    """A hex number written the documents' way: upper case, underscores every 4 digits."""
    assert HEX_STYLE.fullmatch(cell), f"{cell!r} is not written like 0x0800_0000"
    return int(cell.replace("_", ""), 16)


def numbers(text: str) -> list[int]:
    """``1`` / ``16..47`` / ``13, 14, 11, 10`` as a list of integers."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.strip().partition("..")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def irqs(cell: str) -> tuple[str, list[int]] | None:
    """``SPI 16..47 (INTID 48..79)`` as ``("SPI", [16, .., 47])``; INTIDs checked."""
    if cell == NONE:
        return None
    m = IRQ_CELL.search(cell)
    assert m, f"{cell!r} is not 'SPI n (INTID m)' or 'PPI ...'"
    nums, intids = numbers(m.group("nums")), numbers(m.group("intids"))
    base = 32 if m.group("kind") == "SPI" else 16
    assert intids == [n + base for n in nums], f"{cell!r}: INTIDs do not match the numbers"
    return m.group("kind"), nums


def layout_doc() -> str:
    return LAYOUT_MD.read_text(encoding="utf-8")


def placement_doc() -> str:
    return PLACEMENT_MD.read_text(encoding="utf-8")


def output_markers() -> list[tuple[str, str]]:
    return [
        (path.name, arg)
        for path in (LAYOUT_MD, PLACEMENT_MD, CODEGEN_MD)
        for arg, _ in marker_positions(path.read_text(encoding="utf-8"), "output-of")
    ]


# --- quoted command output --------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "command"), output_markers())
def test_quoted_output_is_what_the_command_prints(doc: str, command: str) -> None:
    text = (DOCS / doc).read_text(encoding="utf-8")
    quoted = block_after(text, one_marker(text, "output-of", command))
    cmd, _, head = command.partition("|")
    args = shlex.split(cmd)
    assert args[0] == "fdtgen", f"marker {command!r} does not run fdtgen"
    p = run(*args[1:])
    actual = (p.stdout if p.returncode == 0 else p.stderr).rstrip("\n")
    if head:
        n = int(re.fullmatch(r"\s*head -(\d+)\s*", head).group(1))
        actual = "\n".join(actual.splitlines()[:n])
    assert quoted == actual, f"{doc}: the output of `{command}` changed; update the block"


def test_layout_quotes_the_default_diagram() -> None:
    text = layout_doc()
    diagram = block_after(text, one_marker(text, "output-of", "fdtgen layout --diagram"))
    assert diagram == run("layout", "--diagram").stdout.rstrip("\n")


# --- the region tables of docs/layout.md ------------------------------------------------------


def expand(rows: list[dict[str, str]]) -> list[tuple[str, int, int, dict[str, str]]]:
    """``(tag, base, end, row)`` per region; a folded ``virtio-0..31`` row is split evenly."""
    out = []
    for row in rows:
        base, end = hexnum(row["base"]), hexnum(row["end (excl.)"])
        m = FOLDED_TAG.fullmatch(row["tag"])
        if m is None:
            out.append((row["tag"], base, end, row))
            continue
        first, last = int(m.group("first")), int(m.group("last"))
        count = last - first + 1
        assert (end - base) % count == 0, f"{row['tag']}: the range does not split evenly"
        step = (end - base) // count
        for i in range(count):
            out.append(
                (f"{m.group('name')}-{first + i}", base + i * step, base + (i + 1) * step, row)
            )
    return out


def spis_of(rows: list[tuple[str, int, int, dict[str, str]]]) -> dict[str, tuple[int, str]]:
    """tag -> (SPI, trigger) from expanded rows; a folded row's SPIs go to its slots in order."""
    out: dict[str, tuple[int, str]] = {}
    seen: dict[int, int] = {}
    for tag, _, _, row in rows:
        parsed = irqs(row["SPI (INTID)"])
        if parsed is None:
            assert row["trigger"] == NONE, f"{tag}: a trigger without an interrupt"
            continue
        kind, nums = parsed
        assert kind == "SPI", f"{tag}: region interrupts are SPIs"
        i = seen.get(id(row), 0)
        seen[id(row)] = i + 1
        out[tag] = (nums[i], row["trigger"])
    return out


def test_template_table_is_the_pinned_map() -> None:
    t = load_template("squib")
    text = layout_doc()
    rows = expand(table_after(text, one_marker(text, "region-table", "template squib")))
    documented = [(tag, base, end) for tag, base, end, _ in rows]
    pinned = [(r.tag, r.range.base, r.range.end) for r in t.pinned_regions()]
    assert documented == pinned
    wired = spis_of(rows)
    uart = (t.uart.spi.number, t.uart.trigger.label)
    assert wired.pop("uart0") == uart
    (virtio_spi, virtio_trigger) = wired.pop("virtio")
    assert virtio_spi == t.virtio.first_spi.number
    assert virtio_trigger == t.virtio.trigger.label
    assert wired == {}
    virtio_row = next(row for tag, *_, row in rows if tag == "virtio")
    assert irqs(virtio_row["SPI (INTID)"]) == (
        "SPI",
        [t.virtio.first_spi.number + i for i in range(t.virtio.slots)],
    )


def test_default_machine_table_is_the_resolved_layout() -> None:
    layout = machine_layout(Machine(), load_template("squib"))
    text = layout_doc()
    rows = expand(table_after(text, one_marker(text, "region-table", "default machine")))
    documented = [(tag, base, end) for tag, base, end, _ in rows]
    resolved = [(r.tag, r.range.base, r.range.end) for r in layout.regions()]
    assert documented == resolved
    devices = {d.tag: (d.spi.number, d.trigger.label) for d in layout.devices if d.spi}
    assert spis_of(rows) == devices


def test_ppi_table_is_the_template() -> None:
    t = load_template("squib")
    text = layout_doc()
    rows = table_after(text, one_marker(text, "ppi-table", "template squib"))
    by_user = {row["user"].split(":")[0]: row for row in rows}
    assert set(by_user) == {"timer", "GIC maintenance interrupt"}
    timer = by_user["timer"]
    assert irqs(timer["PPI (INTID)"]) == ("PPI", [p.number for p in t.timer_ppis])
    assert timer["trigger"] == t.timer_trigger.label
    maintenance = by_user["GIC maintenance interrupt"]
    assert t.gic.maintenance_ppi is not None
    assert irqs(maintenance["PPI (INTID)"]) == ("PPI", [t.gic.maintenance_ppi.number])
    # the DT writes the maintenance interrupt level-high
    assert "0x1 0x9 0x4" in run("dts").stdout
    assert maintenance["trigger"] == "level-high"


# --- error lines quoted in docs/layout.md -----------------------------------------------------


def edited_template(tmp_path: Path, section: str, key: str, value: str) -> Path:
    """A copy of templates/squib.toml with ``key`` in ``[section]`` set to ``value``."""
    lines = (templates_dir() / "squib.toml").read_text(encoding="utf-8").splitlines()
    current, done = "", False
    for i, line in enumerate(lines):
        if line.startswith("["):
            current = line.split("#")[0].strip().strip("[]")
        elif current == section and re.match(rf"{key}\s*=", line) and not done:
            lines[i], done = f"{key} = {value}", True
    assert done, f"no {key} in [{section}] of squib.toml"
    path = tmp_path / "squib.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TEMPLATE_EDITS = [
    ("uart", "base", "0x0E0B_0000"),
    ("virtio", "base", "0x0700_0000"),
    ("virtio", "base", "0x0E0A_0000"),
    ("machine", "max_vcpus", "1000"),
    ("virtio", "first_spi", "1"),
]


@pytest.mark.parametrize(("section", "key", "value"), TEMPLATE_EDITS)
def test_quoted_template_errors(tmp_path: Path, section: str, key: str, value: str) -> None:
    path = edited_template(tmp_path, section, key, value)
    p = run("layout", "--template", str(path))
    assert p.returncode == 2
    assert p.stderr.startswith(f"fdtgen: error: {path}: ")
    line = p.stderr.strip().replace(f"{tmp_path}/", "")  # the docs show the file's name
    assert f"`{line}`" in layout_doc(), f"layout.md does not quote: {line}"


@pytest.mark.parametrize(
    "config",
    [
        None,
        'template = "squib"\nvcpus = 32\nredist_stride = "4MiB"\n',
    ],
)
def test_quoted_machine_errors(tmp_path: Path, config: str | None) -> None:
    if config is None:
        cases = [("--vcpus", "33"), ("--memory", "1023GiB")]
    else:
        path = tmp_path / "vm.toml"
        path.write_text(config, encoding="utf-8")
        cases = [(str(path),)]
    for args in cases:
        p = run("layout", *args)
        assert p.returncode == 2
        line = p.stderr.strip().replace(f"{tmp_path}/", "")  # the docs show the file's name
        assert f"`{line}`" in layout_doc(), f"layout.md does not quote: {line}"


def test_quoted_verify_finding(tmp_path: Path) -> None:
    blob = tmp_path / "guest.dtb"
    assert run("build", "-o", str(blob)).returncode == 0
    template = edited_template(tmp_path, "uart", "spi", "2")
    p = run("verify", str(blob), "--template", str(template))
    assert p.returncode == 1
    finding = p.stdout.splitlines()[0]
    assert finding.startswith("error: template.spi: ")
    assert f"\n{finding}\n" in layout_doc(), f"layout.md does not quote: {finding}"


# --- the worked example of docs/placement.md --------------------------------------------------


def build_manifest(tmp_path: Path, args: list[str]) -> dict:
    dtb, manifest = tmp_path / "g.dtb", tmp_path / "m.json"
    p = run("build", *args, "-o", str(dtb), "--manifest", str(manifest))
    assert p.returncode == 0, p.stderr
    return json.loads(manifest.read_text(encoding="utf-8"))


def place_values(args: list[str]) -> dict[str, int]:
    """The addresses ``fdtgen place`` prints: file rows and the entry line."""
    p = run("place", *args)
    assert p.returncode == 0, p.stderr
    out: dict[str, int] = {}
    for line in p.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] in ("kernel", "initrd", "dtb") and fields[1].startswith("0x"):
            out[f"{fields[0]} address"] = int(fields[1], 16)
            out[f"{fields[0]} end"] = int(fields[2], 16)
        if line.startswith("entry:"):
            for reg in fields[1:]:
                name, _, value = reg.partition("=")
                out[name] = int(value, 16)
    return out


def manifest_values(m: dict) -> dict[str, int]:
    k, initrd, dtb, regs = m["kernel"], m["initrd"], m["dtb"], m["registers"]
    return {
        "kernel load address": k["load_address"],
        "kernel end (reserved)": k["load_address"] + k["reserved"],
        "initrd address": initrd["address"],
        "initrd end": initrd["address"] + initrd["size"],
        "DTB address": dtb["address"],
        "pc": regs["pc"],
        "x0": regs["x0"],
    }


PLACE_KEYS = {
    "kernel load address": "kernel address",
    "kernel end (reserved)": "kernel end",
    "initrd address": "initrd address",
    "initrd end": "initrd end",
    "DTB address": "dtb address",
    "pc": "pc",
    "x0": "x0",
}


@pytest.mark.parametrize(
    "arg", [a for a, _ in marker_positions(placement_doc(), "placement-result")]
)
def test_placement_result_tables(tmp_path: Path, arg: str) -> None:
    text = placement_doc()
    rows = table_after(text, one_marker(text, "placement-result", arg))
    documented = {row["value"]: hexnum(row["address"]) for row in rows}
    args = shlex.split(arg)
    from_manifest = manifest_values(build_manifest(tmp_path, args))
    from_place = place_values(args)
    assert set(documented) <= set(from_manifest), "a result row fdtgen does not report"
    for label, value in documented.items():
        assert value == from_manifest[label], f"{arg}: {label} is {from_manifest[label]:#x}"
        assert value == from_place[PLACE_KEYS[label]], f"{arg}: fdtgen place disagrees on {label}"


def test_worked_example_is_marked() -> None:
    """The worked example's final values are all in its checked table."""
    text = placement_doc()
    rows = table_after(text, one_marker(text, "placement-result", "examples/placed.toml"))
    assert {row["value"] for row in rows} == set(PLACE_KEYS)


def test_manifest_excerpt(tmp_path: Path) -> None:
    text = placement_doc()
    excerpt = json.loads(
        block_after(text, one_marker(text, "manifest-excerpt", "examples/placed.toml"))
    )
    manifest = build_manifest(tmp_path, ["examples/placed.toml"])
    assert excerpt == {key: manifest[key] for key in excerpt}
    assert {"kernel", "initrd", "dtb", "registers"} <= set(excerpt)


def lookup(manifest: dict, path: str) -> list[int]:
    """``kernel.load_address`` -> [value]; ``memory[0]`` -> [address, size]."""
    node = manifest
    for part in re.findall(r"[a-z_0-9]+|\[\d+\]", path):
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    return [node["address"], node["size"]] if isinstance(node, dict) else [node]


def test_manifest_field_table(tmp_path: Path) -> None:
    text = placement_doc()
    rows = table_after(text, one_marker(text, "manifest-table", "examples/placed.toml"))
    manifest = build_manifest(tmp_path, ["examples/placed.toml"])
    for row in rows:
        decimal = [int(v) for v in row["decimal"].split(",")]
        hexes = [hexnum(v.strip()) for v in row["hex"].split(",")]
        assert decimal == hexes, f"{row['manifest field']}: decimal and hex differ"
        for field in row["manifest field"].split(","):
            assert lookup(manifest, field.strip()) == decimal, f"{field.strip()} changed"


# --- every template key and [boot] policy has its documentation ------------------------------


def template_keys() -> set[str]:
    """The keys the template loader reads: the first argument of every Reader call."""
    import ast

    keys = set()
    for name in ("load.py", "pci.py"):
        tree = ast.parse((ROOT / "fdtgen" / "template" / name).read_text())
        for n in ast.walk(tree):
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in ("get", "table", "optional_table", "tables")
                and n.args
                and isinstance(n.args[0], ast.Constant)
                and isinstance(n.args[0].value, str)
            ):
                keys.add(n.args[0].value)
    return keys


def test_every_template_key_is_documented():
    text = (DOCS / "templates.md").read_text() + PLACEMENT_MD.read_text()
    keys = template_keys()
    assert {"order", "piece_align", "timeout_sec", "dtb"} <= keys  # the scan finds the reads
    missing = sorted(
        k for k in keys if not re.search(rf"(^|[`\[.]){re.escape(k)}([`\]]| ?=)", text, re.M)
    )
    assert missing == []


def test_every_boot_policy_is_documented_in_placement_md():
    from fdtgen.template.model import DTB_POLICIES, INITRD_POLICIES, KERNEL_POLICIES

    text = PLACEMENT_MD.read_text()
    for p in (*DTB_POLICIES, *INITRD_POLICIES, *KERNEL_POLICIES):
        assert f"`{p}`" in text, p
