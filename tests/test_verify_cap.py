"""The per-rule cap: rules stop building findings past it and only count them.

The capped report must be exactly what capping the full report would give:
the first ``cap`` findings of each rule in report order, each capped rule
closed after its last kept finding by one line with the exact number left out.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen.checks import Finding, Options, counts, verify
from fdtgen.checks.finding import NOTE, SEVERITIES, Findings
from fdtgen.checks.index import Region, TreeIndex
from fdtgen.checks.pci import _region_spans, _window_overlaps
from fdtgen.fdt.encode import encode
from fdtgen.fdt.parse import parse_blob
from fdtgen.fdt.tree import DeviceTree, Node, Prop

from .test_verify import fdtgen

# Names the encoder refuses are patched into the blob byte for byte.
NODE, BAD_NODE = b"devqq", b"dev##"  # '#' breaks the DT spec node-name rule
PROP, BAD_PROP = b"vendorqq", b"vendor**"  # '*' breaks the property-name rule


def _many(n: int) -> DeviceTree:
    """A tree that breaks many rules ``n`` times or so each: overlapping ranges
    past the address width, a shared SPI, bad triggers and SPI numbers, names
    only dtc accepts, dangling phandles, interrupts with no parent, some nodes disabled."""
    gic = Node(
        "intc@8000000",
        (
            Prop.strings("compatible", "arm,gic-v3"),
            Prop.empty("interrupt-controller"),
            Prop.cells("#interrupt-cells", 3),
            Prop.cells("phandle", 1),
            Prop.cells("reg", 0, 0x800_0000, 0, 0x1_0000, 0, 0x80A_0000, 0, 0xF6_0000),
        ),
        (),
    )
    kids = []
    for i in range(n):
        props = [
            Prop.cells("reg", 0x1_0000, 0x1000_0000 + i * 0x10, 0, 0x100),
            Prop.cells("interrupts", 0, 5 if i % 3 else 2000, 8 if i % 2 else 4),
            Prop.cells("clocks", 0x100 + i),
            Prop.empty(PROP.decode()),
        ]
        if i % 7 == 0:
            props.append(Prop.strings("status", "disabled"))
        kids.append(Node(f"{NODE.decode()}@{0x1_0000_1000_0000 + i * 0x10:x}", tuple(props), ()))
    orphans = tuple(
        Node(
            f"orphan@{i:x}",
            (Prop.cells("interrupt-parent", 0x7000 + i), Prop.cells("interrupts", 1, 2, 3)),
            (),
        )
        for i in range(n // 2)
    )
    root = Node(
        "",
        (
            Prop.cells("#address-cells", 2),
            Prop.cells("#size-cells", 2),
            Prop.cells("interrupt-parent", 1),
        ),
        (gic, *kids, *orphans),
    )
    return DeviceTree(root)


def _capped_reference(full: list[Finding], cap: int, disabled: set[str]) -> list[Finding]:
    """The cap applied to the full report, as its documentation states it: a
    closing line at the rule's severity in the profile (the most severe of the
    rule's findings on enabled nodes) counting the left-out findings on enabled
    nodes, and a note counting those on disabled nodes (notes, as every
    finding on a disabled node is)."""
    total: dict[str, int] = {}
    severity: dict[str, str] = {}
    for f in full:
        total[f.rule] = total.get(f.rule, 0) + 1
        if f.path in disabled:
            continue
        if SEVERITIES.index(f.severity) < SEVERITIES.index(severity.get(f.rule, NOTE)):
            severity[f.rule] = f.severity
        severity.setdefault(f.rule, f.severity)
    seen: dict[str, int] = {}
    left_on: dict[str, int] = {}
    left_off: dict[str, int] = {}
    for f in full:
        n = seen[f.rule] = seen.get(f.rule, 0) + 1
        if n > cap:
            left = left_off if f.path in disabled else left_on
            left[f.rule] = left.get(f.rule, 0) + 1
    seen = {}
    out: list[Finding] = []
    for f in full:
        n = seen[f.rule] = seen.get(f.rule, 0) + 1
        if n <= cap:
            out.append(f)
        if n == min(cap, total[f.rule]) and total[f.rule] > cap:
            on, off = left_on.get(f.rule, 0), left_off.get(f.rule, 0)
            if on:
                out.append(Finding(f.rule, "/", "", "", f"{on} more", severity[f.rule], omitted=on))
            if off:
                what = f"{off} more on disabled nodes"
                out.append(Finding(f.rule, "/", "", "", what, NOTE, omitted=off))
    return out


BLOB = encode(_many(300)).replace(NODE, BAD_NODE).replace(PROP, BAD_PROP)


@pytest.mark.parametrize("profile", ["microvm", "board"])
@pytest.mark.parametrize("cap", [1, 7, 20])
def test_the_capped_report_is_the_full_report_capped(cap, profile):
    full = verify(BLOB, Options(dtc=None, cap=None, profile=profile))
    rules = {f.rule for f in full}
    assert {
        "regions.overlap",
        "regions.address-width",
        "interrupts.shared",
        "interrupts.trigger",
        "interrupts.range",
        "interrupts.parent",
        "structure.node-name",
        "structure.property-name",
        "phandle.reference",
    } <= rules
    capped = verify(BLOB, Options(dtc=None, cap=cap, profile=profile))
    disabled = set(TreeIndex(parse_blob(BLOB).tree).disabled)
    assert disabled
    reference = _capped_reference(full, cap, disabled)
    assert [f.as_dict() for f in capped] == [f.as_dict() for f in reference]
    # Left-out findings count at their own severity: a disabled node's as a note.
    assert counts(capped) == counts(full)


def test_the_closing_line_counts_exactly_what_was_left_out():
    full = verify(BLOB, Options(dtc=None, cap=None))
    capped = verify(BLOB, Options(dtc=None))
    n = sum(f.rule == "regions.overlap" for f in full)
    assert n > 100
    (closing,) = [f for f in capped if f.rule == "regions.overlap" and f.omitted]
    assert closing.omitted == n - 20
    assert str(closing) == f"warning: … and {n - 20:,} more regions.overlap findings"


def test_the_closing_line_has_the_rules_severity_in_the_profile():
    board = verify(BLOB, Options(dtc=None, profile="board"))
    shared = [f for f in board if f.rule == "interrupts.shared"]
    assert len(shared) == 21 and shared[-1].omitted
    assert {f.severity for f in shared} == {NOTE}
    microvm = verify(BLOB, Options(dtc=None, profile="microvm"))
    (closing,) = [f for f in microvm if f.rule == "interrupts.shared" and f.omitted]
    assert closing.severity == "warning"


def test_rules_build_no_finding_past_the_cap(monkeypatch):
    built: dict[str, int] = {}
    new = Finding.__new__

    def counting(cls: type[Finding], rule: str, *args: object, **kwargs: object) -> Finding:
        built[rule] = built.get(rule, 0) + 1
        return new(cls, rule, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Finding, "__new__", counting)
    verify(BLOB, Options(dtc=None, cap=3))
    # Kept, then (for a capped rule) its closing line; a judged severity
    # (a disabled node's note) rebuilds a kept finding once more.
    assert built and all(n <= 3 * 2 + 1 for n in built.values()), built
    built.clear()
    verify(BLOB, Options(dtc=None, cap=None))
    assert built["regions.overlap"] > 100


def test_findings_count_every_finding_and_keep_the_first_cap():
    out = Findings(2)
    for i in range(5):
        if out.wants("a"):
            out.append(Finding("a", f"/n{i}", "", "", "m"))
    out.add(Finding("b", "/", "", "", "m"))
    out.merge([Finding("a", "/x", "", "", "m"), Finding("b", "/y", "", "", "m")])
    assert out.counted == {"a": 6, "b": 2}
    assert [f.path for f in out] == ["/n0", "/n1", "/", "/y"]
    unlimited = Findings()
    for _ in range(1000):
        unlimited.add(Finding("a", "/", "", "", "m"))
    assert len(unlimited) == 1000 and unlimited.counted == {"a": 1000}


def test_the_cli_prints_the_count_and_all_prints_every_finding(tmp_path):
    path = tmp_path / "many.dtb"
    path.write_bytes(BLOB)
    full = verify(BLOB, Options(dtc=None, cap=None))
    n = sum(f.rule == "interrupts.shared" for f in full)
    r = fdtgen("verify", "--no-dtc", str(path))
    assert r.returncode == 1, r.stderr
    # A board blob (auto profile): shared SPIs are notes, the closing line too.
    assert f"note: … and {n - 20:,} more interrupts.shared findings" in r.stdout.splitlines()
    r = fdtgen("verify", "--no-dtc", "--profile", "microvm", str(path))
    assert f"warning: … and {n - 20:,} more interrupts.shared findings" in r.stdout.splitlines()
    r = fdtgen("verify", "--no-dtc", "--all", str(path))
    assert sum(": interrupts.shared: " in line for line in r.stdout.splitlines()) == n
    assert "more interrupts.shared" not in r.stdout


def _sweep(path: str, windows, regions) -> list[Finding]:  # type: ignore[no-untyped-def]
    """The host-window overlap sweep as it was: every range, every host, one pass."""
    spans = [(b, e, f"{path} ranges entry {n}") for b, e, n in windows]
    spans += [(r.base, r.end, f"{r.path} reg entry {r.entry}") for r in regions]
    spans.sort()
    out = []
    reach, reach_what = -1, ""
    mine = f"{path} ranges"
    for base, end, what in spans:
        if base < reach and (what.startswith(mine) or reach_what.startswith(mine)):
            value = f"[{base:#x}, {end:#x})"
            out.append(
                Finding("pci.window", path, "ranges", value, f"{what} overlaps {reach_what}")
            )
        if end > reach:
            reach, reach_what = end, what
    return out


class _Regions:
    def __init__(self, regions: list[Region]) -> None:
        self._regions = regions

    def regions(self) -> list[Region]:
        return self._regions

    def enabled(self, path: str) -> bool:
        return True


@given(st.data())
def test_window_overlaps_are_the_full_sweeps_counted_past_the_cap(data):
    def span():  # type: ignore[no-untyped-def]
        base = data.draw(st.integers(0, 40)) * 0x100
        return base, base + data.draw(st.integers(1, 12)) * 0x100

    regions = []
    for i in range(data.draw(st.integers(0, 25))):
        base, end = span()
        regions.append(Region(f"/d{i % 7}", i, base, end - base, "device"))
    windows = [(*span(), n) for n in range(data.draw(st.integers(0, 5)))]
    full = _sweep("/pcie@0", windows, regions)
    spans = _region_spans(_Regions(regions))  # type: ignore[arg-type]
    for cap in (None, 0, 1, 3):
        out = Findings(cap)
        _window_overlaps("/pcie@0", windows, spans, out)
        assert list(out) == full[: len(out)] and len(out) == min(len(full), out.cap)
        assert out.counted.get("pci.window", 0) == len(full)
