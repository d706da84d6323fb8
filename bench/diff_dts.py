"""``fdtgen dts`` start-up against dtc, and ``fdtgen diff`` on very wide trees.

    python3 bench/diff_dts.py                 # about a minute on 2 shared cores
    python3 bench/diff_dts.py --quick         # fewer rounds, for a smoke run
    python3 bench/diff_dts.py --blob x.dtb    # also time dts of your own blob

What it prints:

* dts start-up: median wall time of a bare interpreter, ``fdtgen dts BLOB``
  and ``dtc -I dtb -O dts BLOB``, run interleaved (each round runs all three,
  so drift in machine load hits them alike), as the installed ``fdtgen``
  script runs (byte-compiled first). BLOB is fdtgen's default machine, a
  generated tree of about 300 nodes with phandle references (the size of a
  board's DTB), and any ``--blob`` given.
* diff: two trees of N siblings, every one renamed (``dev@i`` ->
  ``device@i``, same compatible), through :func:`fdtgen.diff.diff_trees`,
  for N = 15,000 and 60,000 (3,000 and 12,000 with ``--quick``); the ratio
  of the two shows the growth (4 is linear, 16 quadratic).

Targets: ``fdtgen dts`` of the board-sized blob <= a bare interpreter + 40 ms
(as bench/run.py's cold-start target); diff of 60,000 renamed siblings <= 5 s
and growing at most x6 from 15,000.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fdtgen.devicetree.machine import Machine  # noqa: E402
from fdtgen.diff import diff_trees  # noqa: E402
from fdtgen.fdt.encode import encode  # noqa: E402
from fdtgen.fdt.tree import DeviceTree, Node, Prop  # noqa: E402
from fdtgen.pipeline import build  # noqa: E402

FDTGEN = "import sys; from fdtgen.cli import main; sys.exit(main())"


def board_like(clusters: int = 12) -> bytes:
    """A tree of about 25 nodes per cluster: controllers with phandles, and
    devices that reference them through clocks, pinctrl-0, *-supply and
    remote-endpoint."""
    kids: list[Node] = []
    phandle = 1
    for c in range(clusters):
        clk, pins, vreg, ep_a, ep_b = range(phandle, phandle + 5)
        phandle += 5
        clock = (Prop.cells("reg", c << 12, 0x100), Prop.cells("#clock-cells", 1))
        kids.append(Node(f"clock-controller@{c:x}000", (*clock, Prop.cells("phandle", clk))))
        kids.append(Node(f"regulator-{c}", (Prop.cells("phandle", vreg),)))
        pin = Node("pins", (Prop.cells("vendor,pins", 1, 2, 3, clk), Prop.cells("phandle", pins)))
        kids.append(Node(f"pinctrl-{c}", (), (pin,)))
        for d in range(18):
            kids.append(
                Node(
                    f"serial@{c:x}{d:02x}00",
                    (
                        Prop.strings("compatible", "ns16550a"),
                        Prop.cells("reg", (c << 16) | (d << 8), 0x100),
                        Prop.cells("clocks", clk, d),
                        Prop.cells("pinctrl-0", pins),
                        Prop.cells("vcc-supply", vreg),
                        Prop.strings("status", "okay"),
                    ),
                )
            )
        port = Node("port", (), (Node("endpoint", (Prop.cells("phandle", ep_a),)),))
        kids.append(Node(f"display-{c}", (), (port,)))
        link = Node("endpoint", (Prop.cells("remote-endpoint", ep_a), Prop.cells("phandle", ep_b)))
        kids.append(Node(f"panel-{c}", (), (Node("port", (), (link,)),)))
    root = Node("", (Prop.cells("#address-cells", 1), Prop.cells("#size-cells", 1)), tuple(kids))
    return encode(DeviceTree(root))


def siblings(n: int, prefix: str) -> DeviceTree:
    compat = Prop.strings("compatible", "vendor,dev")
    kids = tuple(Node(f"{prefix}@{i:x}", (compat, Prop.cells("reg", i))) for i in range(n))
    return DeviceTree(Node("", (Prop.cells("#address-cells", 1),), kids))


def startup(blobs: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "fdtgen")], check=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    dtc = shutil.which("dtc")
    out: dict[str, dict[str, float]] = {}
    for name, path in blobs.items():
        commands = {
            "bare interpreter": [sys.executable, "-c", "pass"],
            "fdtgen dts": [sys.executable, "-c", FDTGEN, "dts", path],
        }
        if dtc:
            commands["dtc -I dtb -O dts"] = [dtc, "-q", "-I", "dtb", "-O", "dts", path]
        samples: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(rounds):
            for label, cmd in commands.items():
                t = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True, env=env)
                samples[label].append(time.perf_counter() - t)
        out[name] = {k: statistics.median(v) for k, v in samples.items()}
    return out


def diff_time(n: int, rounds: int) -> float:
    a, b = siblings(n, "dev"), siblings(n, "device")
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        changes = diff_trees(a, b)
        times.append(time.perf_counter() - t)
    if len(changes) != n:
        raise RuntimeError(f"diff of {n} renamed siblings gave {len(changes)} changes")
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    ap.add_argument("--blob", action="append", default=[], help="also time dts of this DTB")
    args = ap.parse_args()
    rounds = 5 if args.quick else 21
    tmp = tempfile.mkdtemp(prefix="fdtgen-bench-")
    try:
        blobs = {"default machine": os.path.join(tmp, "default.dtb")}
        Path(blobs["default machine"]).write_bytes(build(Machine()).blob)
        blobs["board-sized"] = os.path.join(tmp, "board.dtb")
        Path(blobs["board-sized"]).write_bytes(board_like())
        for path in args.blob:
            blobs[os.path.basename(path)] = path
        print("== dts start-up (median of interleaved runs)")
        s = startup(blobs, rounds)
    finally:
        shutil.rmtree(tmp)
    for name, figures in s.items():
        print(f"  {name}")
        for label, v in figures.items():
            print(f"    {label:24} {v * 1e3:8.1f} ms")
    checks = []
    board = s["board-sized"]
    over = board["fdtgen dts"] - board["bare interpreter"]
    checks.append(
        ("dts of a board-sized blob <= bare + 40 ms", over <= 0.040, f"{over * 1e3:+.1f} ms")
    )

    print("== diff: N siblings, every one renamed (same compatible)")
    small, big = (3_000, 12_000) if args.quick else (15_000, 60_000)
    t_small = diff_time(small, 1 if args.quick else 3)
    t_big = diff_time(big, 1 if args.quick else 3)
    print(f"  {small:>6} siblings {t_small:8.2f} s")
    print(f"  {big:>6} siblings {t_big:8.2f} s   (x{t_big / t_small:.1f} for x4 the siblings)")
    checks.append((f"diff of {big:,} renamed siblings <= 5 s", t_big <= 5.0, f"{t_big:.2f} s"))
    growth = t_big / t_small
    checks.append((f"diff grows at most x6 from {small:,}", growth <= 6.0, f"x{growth:.1f}"))

    print("== targets" + (" (--quick: few rounds; not a verdict)" if args.quick else ""))
    for name, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:46} {value}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
