"""bench/diff_dts.py runs end to end and prints every target (its verdicts are timing,
not tested)."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT

TARGETS = [
    "dts of a board-sized blob <= bare + 40 ms",
    "diff of 12,000 renamed siblings <= 5 s",
    "diff grows at most x6 from 3,000",
]


def test_quick_dts_and_diff_benchmark_prints_every_figure_and_target(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "diff_dts.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    # 1 means a target was missed, which a smoke run on a busy machine may.
    assert run.returncode in (0, 1), run.stderr
    out = run.stdout
    for figure in ("bare interpreter", "fdtgen dts", "dtc -I dtb -O dts", "12000 siblings"):
        assert figure in out, out
    verdicts = [line for line in out.splitlines() if line.startswith(("  PASS ", "  FAIL "))]
    assert [line[8:].split("  ")[0].rstrip() for line in verdicts] == TARGETS
