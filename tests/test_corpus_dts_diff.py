"""dts and diff over real-world device trees: every DTB Debian's generic arm64 kernel ships.

Each blob's DTS (fdtgen's strict parser, labels for its phandles) compiles
with dtc to exactly the bytes dtc itself writes for the blob
(``dtc -I dtb -O dtb``), and when the header holds a ``boot_cpuid_phys``
DTS cannot carry, fdtgen says so and ``dtc -b`` restores it. Every blob
diffs clean against itself, and two revisions of one board differ by their
real changes, not by renumbered phandles.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fdtgen.diff import diff_trees
from fdtgen.fdt.dts import header_notes, to_dts
from fdtgen.fdt.parse import parse_blob
from fdtgen.fdt.phandles import with_labels

from .corpus import by_name

pytestmark = pytest.mark.corpus

DTC = shutil.which("dtc")


def _dtc(args: list[str], data: bytes) -> bytes:
    assert DTC is not None
    p = subprocess.run([DTC, "-q", *args], input=data, capture_output=True, check=False)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout


def _round_trip(path: Path) -> tuple[str, bytes, bytes, list[str]]:
    """(name, dtc's own dtb -> dtb bytes, dtc's bytes from fdtgen's DTS, header notes)."""
    raw = path.read_bytes()
    tree = parse_blob(raw).tree
    notes = header_notes(tree)
    text = to_dts(with_labels(tree))
    extra = ["-b", str(tree.boot_cpuid_phys)] if notes else []
    theirs = _dtc(["-I", "dtb", "-O", "dtb"], raw)
    ours = _dtc(["-I", "dts", "-O", "dtb", *extra], text.encode())
    return path.name, theirs, ours, notes


@pytest.mark.skipif(DTC is None, reason="needs dtc")
def test_every_dts_compiles_to_the_bytes_dtc_writes(corpus_dtbs):
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_round_trip, corpus_dtbs))
    differ = [name for name, theirs, ours, _ in results if theirs != ours]
    assert differ == []
    noted = sorted(name for name, _, _, notes in results if notes)
    # qcs404's header names CPU 0x100 where /cpus starts with 0x0.
    assert noted and all(name.startswith("qcs404") for name in noted), noted


def test_every_blob_diffs_clean_against_itself(corpus_dtbs):
    for path in corpus_dtbs:
        tree = parse_blob(path.read_bytes()).tree
        assert diff_trees(tree, tree) == [], path.name


@pytest.mark.parametrize(
    ("a", "b", "most"),
    [
        # Two revisions of one board: phandles renumbered throughout; the
        # real changes are a handful of nodes and properties.
        ("rk3399-rock-pi-4a.dtb", "rk3399-rock-pi-4b.dtb", 15),
        ("juno.dtb", "juno-r1.dtb", 25),
    ],
)
def test_renumbered_phandles_are_not_changes(corpus_dtbs, a, b, most):
    by = by_name(corpus_dtbs)
    ta = parse_blob(by[a].read_bytes()).tree
    tb = parse_blob(by[b].read_bytes()).tree
    changes = diff_trees(ta, tb)
    assert 0 < len(changes) <= most, [str(c) for c in changes]
    # A node newly referenced gains a phandle; none is reported as renumbered.
    assert not [c for c in changes if c.kind == "property-changed" and c.prop == "phandle"]
