"""The benchmark runs end to end and reports every target (its verdicts are timing, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT

TARGETS = [
    "build <= pylibfdt FdtSw",
    "encoder >= 1.25x pylibfdt FdtSw",
    "build-many >= 2000 DTBs/s with manifests",
    "fdtgen build CONFIG <= import pydantic + 40 ms",
    "fdtgen dts BLOB <= bare + 40 ms",
    "fdtgen verify BLOB <= bare + 40 ms",
    "allocator 1000 requests <= 50 ms",
    "kernel read, 200000 empty members <= 2 s",
    "kernel read, 10 GiB gzip bomb <= 2 s",
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
    for section, names in (
        ("build_s", ("fdtgen build", "pylibfdt FdtSw")),
        ("encode_s", ("fdtgen encode", "pylibfdt FdtSw")),
    ):
        assert all(figures[section][name] > 0 for name in names)
    assert figures["build_many_per_s"] > 0
    assert figures["allocator_s"] > 0
    assert set(figures["kernel_read_s"]) == {"200000 empty members", "10 GiB gzip bomb"}
    assert set(figures["cold_start_s"]) == {
        "bare interpreter",
        "import pydantic",
        "pydantic + one model",
        "fdtgen build CONFIG",
        "fdtgen dts BLOB",
        "fdtgen verify BLOB",
    }
