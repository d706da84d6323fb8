"""fdtgen's benchmark: the same machine built by fdtgen, pylibfdt, the fdt package and dtc.

    python3 bench/run.py            # about a minute on 2 cores
    python3 bench/run.py --quick    # fewer rounds, for a smoke run

Every figure is measured in this run, interleaved (each round times every
contender once, so drift in machine load hits them alike), and reported as a
median; ratios are against fdtgen. The targets are checked at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compare import dtc_process, fdt_package_writer, pylibfdt_writer  # noqa: E402

CMDLINE = "console=ttyAMA0 earlycon root=/dev/vda rw quiet panic=-1"
MACHINE = {
    "template": "squib",
    "vcpus": 32,
    "virtio": 32,
    "memory": "2GiB",
    "cmdline": CMDLINE,
    "kernel": {"size": "30MiB", "image_size": "40MiB"},
    "initrd": {"size": "16MiB"},
}


def per_call(fn: Callable[[], object], number: int) -> float:
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def interleaved(
    contenders: dict[str, tuple[Callable[[], object], int]], rounds: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (fn, number) in contenders.items():
            samples[name].append(per_call(fn, number))
    return {name: statistics.median(s) for name, s in samples.items()}


def in_process(rounds: int) -> dict[str, float]:
    from fdtgen.config import validate
    from fdtgen.fdt.dts import to_dts
    from fdtgen.pipeline import build

    settings = validate(dict(MACHINE))
    machine, boot = settings.machine(), settings.boot()
    reference = build(machine, boot)
    blob, tree = reference.blob, reference.tree
    writers = {
        "pylibfdt FdtSw": pylibfdt_writer(tree),
        "fdt package": fdt_package_writer(tree),
        "dtc process": dtc_process(to_dts(tree)),
    }
    for name, w in writers.items():
        out = w()
        if name == "pylibfdt FdtSw":  # FdtSw writes its string table in reverse order
            assert len(out) == len(blob), name
        else:
            assert out == blob, f"{name} wrote different bytes"
    return interleaved(
        {
            "fdtgen": (lambda: build(machine, boot), 200),
            "pylibfdt FdtSw": (writers["pylibfdt FdtSw"], 200),
            "fdt package": (writers["fdt package"], 50),
            "dtc process": (writers["dtc process"], 10),
        },
        rounds,
    )


def batch(count: int, rounds: int) -> float:
    """DTBs (with manifests) per second, built in one process from distinct configs.

    A fleet: 18 instance types (vCPUs x virtio transports) with five RAM sizes,
    and per-VM command lines and initrd sizes, so no two configs are equal.
    """
    from fdtgen.batch import Item, build_items

    rnd = random.Random(7)
    configs = [
        {
            **MACHINE,
            "vcpus": rnd.choice([1, 2, 4, 8, 16, 32]),
            "virtio": rnd.choice([4, 8, 32]),
            "memory": f"{rnd.choice([256, 512, 1024, 2048, 4096])}MiB",
            "cmdline": f"{CMDLINE} fdtgen.id={i}",
            "initrd": {"size": rnd.randint(1, 64) << 20},
        }
        for i in range(count)
    ]
    rates = []
    for _ in range(rounds):
        items = [Item(f"vm{i}", dict(c), f"item {i}") for i, c in enumerate(configs)]
        t = time.perf_counter()
        build_items(items)
        rates.append(count / (time.perf_counter() - t))
    return statistics.median(rates)


# What the `fdtgen` script pip installs runs (its entry point, less a
# sys.argv[0] tidy-up); `python -m fdtgen` would add runpy's own imports.
FDTGEN = "import sys; from fdtgen.cli import main; sys.exit(main())"


def cold_start(runs: int) -> dict[str, float]:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "fdtgen")], check=True)
    tmp = tempfile.mkdtemp(prefix="fdtgen-bench-")
    blob = os.path.join(tmp, "g.dtb")
    py = sys.executable
    fdtgen = (py, "-c", FDTGEN)
    subprocess.run([py, "-m", "fdtgen", "build", "-o", blob], check=True, cwd=ROOT)
    commands = {
        "bare interpreter": [py, "-c", "pass"],
        "import pydantic": [py, "-c", "import pydantic"],
        "fdtgen build": [*fdtgen, "build", "-o", os.path.join(tmp, "o.dtb")],
        "fdtgen build CONFIG": [
            *(*fdtgen, "build", str(ROOT / "fixtures" / "configs" / "default.toml")),
            *("-o", os.path.join(tmp, "c.dtb")),
        ],
        "fdtgen dts BLOB": [*fdtgen, "dts", blob],
        "fdtgen verify BLOB": [*fdtgen, "verify", blob],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    samples: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            samples[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in samples.items()}


def allocator_scaling(rounds: int) -> dict[str, dict[int, tuple[float, float | None]]]:
    """Per request count: the median time per ``allocate()``, and the median over
    rounds of its ratio to the next smaller count *within the round*.

    A ratio needs both sides timed at the same machine speed, and on a shared
    machine the speed can change by half from one second to the next. Each
    round times every count once, about 0.1 s each, one after the other, so
    the two sides of a ratio are timed a fraction of a second apart.
    """
    from fdtgen.allocator import Allocator, Placement
    from fdtgen.units import GiB, KiB, MiB

    def workload(n: int, kind: str) -> Callable[[], object]:
        rnd = random.Random(n)
        reqs = []
        for i in range(n):
            where = (Placement.BELOW_4G, Placement.ABOVE_4G, Placement.AFTER_RAM)[i % 3]
            if kind == "BARs (size = alignment)":
                size = rnd.choice([4, 8, 16, 64, 256]) * KiB
                align = size
            else:
                size = rnd.choice([4, 8, 12, 64]) * KiB
                align = rnd.choice([4, 16, 64]) * KiB
            reqs.append((f"r{i}", size, align, where))

        def run() -> object:
            a = Allocator(address_width=48)
            a.ram("ram", 4 * GiB, 2 * MiB)
            for r in reqs:
                a.request(*r)
            return a.allocate()

        return run

    out: dict[str, dict[int, tuple[float, float | None]]] = {}
    for kind in ("BARs (size = alignment)", "mixed sizes and alignments"):
        fns = {n: workload(n, kind) for n in (10, 100, 1000, 10000)}
        samples: dict[int, list[float]] = {n: [] for n in fns}
        for _ in range(rounds):
            for n, fn in fns.items():
                samples[n].append(per_call(fn, max(1, 10000 // n)))
        out[kind] = {
            n: (
                statistics.median(s),
                None
                if n // 10 not in samples
                else statistics.median(a / b for a, b in zip(s, samples[n // 10], strict=True)),
            )
            for n, s in samples.items()
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    rounds = 3 if args.quick else 9
    results: dict[str, object] = {}
    checks: list[tuple[str, bool, str]] = []

    print("== in-process build: squib, 32 vCPUs, 32 virtio, cmdline, kernel + initrd placed")
    t = in_process(rounds)
    results["in_process_s"] = t
    base = t["fdtgen"]
    for name, v in t.items():
        print(f"  {name:24} {v * 1e6:9.1f} us   x{v / base:6.1f}")
    checks.append(("in-process build <= 100 us", base <= 100e-6, f"{base * 1e6:.1f} us"))
    checks.append(
        (
            "pylibfdt FdtSw / fdtgen >= 3",
            t["pylibfdt FdtSw"] / base >= 3,
            f"x{t['pylibfdt FdtSw'] / base:.1f}",
        )
    )
    checks.append(
        (
            "dtc process / fdtgen >= 15",
            t["dtc process"] / base >= 15,
            f"x{t['dtc process'] / base:.1f}",
        )
    )

    print("== batch: distinct configs in one process, DTB + manifest each")
    rate = batch(500 if args.quick else 5000, rounds=3)
    results["batch_per_s"] = rate
    print(f"  {rate:9.0f} DTBs/s")
    checks.append(("batch >= 5000 DTBs/s", rate >= 5000, f"{rate:.0f}/s"))

    print(
        "== cold start (median of interleaved runs; byte-compiled and run as the installed "
        "`fdtgen` script runs)"
    )
    c = cold_start(7 if args.quick else 21)
    results["cold_start_s"] = c
    for name, v in c.items():
        print(f"  {name:24} {v * 1e3:7.1f} ms")
    bare, pyd = c["bare interpreter"], c["import pydantic"]
    for cmd in ("fdtgen build", "fdtgen build CONFIG"):
        checks.append(
            (
                f"{cmd} <= import pydantic + 30 ms",
                c[cmd] <= pyd + 0.030,
                f"{(c[cmd] - pyd) * 1e3:+.1f} ms",
            )
        )
    for cmd in ("fdtgen dts BLOB", "fdtgen verify BLOB"):
        checks.append(
            (f"{cmd} <= bare + 40 ms", c[cmd] <= bare + 0.040, f"{(c[cmd] - bare) * 1e3:+.1f} ms")
        )

    print("== allocator: dynamic requests, 3 phases (below 4G, above 4G, after RAM)")
    print("   (ratio to 10x fewer requests: the median of ratios timed in the same round)")
    a = allocator_scaling(5 if args.quick else 15)
    results["allocator_s"] = {k: {str(n): v[0] for n, v in d.items()} for k, d in a.items()}
    for kind, d in a.items():
        worst = 0.0
        for n, (per, ratio) in d.items():
            if ratio is not None:
                worst = max(worst, ratio)
            shown = "" if ratio is None else f"x{ratio:5.1f}"
            print(f"  {kind:28} {n:6} {per * 1e3:9.3f} ms  {shown}")
        checks.append(
            (f"allocator 10x requests <= 12x time ({kind})", worst <= 12, f"worst x{worst:.1f}")
        )

    print(
        "== targets"
        + (" (--quick: few rounds and a 500-config batch; not a verdict)" if args.quick else "")
    )
    for name, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:52} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
