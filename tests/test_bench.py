"""The benchmark runs end to end and reports every target (its verdicts are timing, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT

TARGETS = [
    "in-process build <= 100 us",
    "pylibfdt FdtSw / fdtgen >= 3",
    "dtc process / fdtgen >= 15",
    "batch >= 5000 DTBs/s",
    "fdtgen build <= import pydantic + 30 ms",
    "fdtgen build CONFIG <= import pydantic + 30 ms",
    "fdtgen dts BLOB <= bare + 40 ms",
    "fdtgen verify BLOB <= bare + 40 ms",
    "allocator 10x requests <= 12x time (BARs (size = alignment))",
    "allocator 10x requests <= 12x time (mixed sizes and alignments)",
]


def test_quick_benchmark_measures_every_contender_and_prints_every_target(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    # 1 means a target was missed, which a smoke run on a busy machine may;
    # anything else (a crash, a contender writing other bytes) is a failure.
    assert run.returncode in (0, 1), run.stderr
    verdicts = [line for line in run.stdout.splitlines() if line.startswith(("  PASS ", "  FAIL "))]
    assert len(verdicts) == len(TARGETS)
    for line, name in zip(verdicts, TARGETS, strict=True):
        assert line[8:].startswith(name + " ")
    figures = json.loads(out.read_text())
    in_process = figures["in_process_s"]
    for name in ("fdtgen", "pylibfdt FdtSw", "fdt package", "dtc process"):
        assert in_process[name] > 0
    assert figures["batch_per_s"] > 0
    assert set(figures["allocator_s"]) == {"BARs (size = alignment)", "mixed sizes and alignments"}
    for times in figures["allocator_s"].values():
        assert list(times) == ["10", "100", "1000", "10000"]
