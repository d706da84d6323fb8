"""fdtgen's benchmark: the single build path against its targets, in one run.

    python3 bench/run.py            # a few minutes on 2 shared cores
    python3 bench/run.py --quick    # fewer rounds and configs, for a smoke run

The targets:

* build: a config object (machine + boot inputs) to a blob, for at least 300
  distinct squib machines near 32 vCPUs and 32 virtio transports with kernel
  and initrd placed: median <= pylibfdt's FdtSw serialising the same tree;
* encoder: tree to dtc-canonical bytes, >= 1.25x the speed of FdtSw on the
  same tree;
* build-many: 1,000 configs, every vCPU x virtio shape different, through the
  command itself: >= 2,000 DTBs/s with manifests, file writes included;
* cold start: ``fdtgen build CONFIG`` <= ``python -c "import pydantic"`` +
  40 ms; ``fdtgen dts``/``verify`` of a blob <= a bare interpreter + 40 ms;
* allocator: 1,000 dynamic requests <= 50 ms;
* kernel reads: an Image.gz followed by 200,000 empty gzip members, and a
  10 MiB gzip bomb that would inflate to 10 GiB (stopped at the Image cap),
  each read (or refused) in <= 2 s.

Every contender is timed interleaved with what it is compared to (each round,
or each config, times both, so drift in machine load hits them alike); figures
are medians and every ratio is taken within this run. Nothing is remembered
between builds but the loaded templates, so distinct configs measure what a
fleet of distinct machines costs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
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

from compare import pylibfdt_writer  # noqa: E402

CMDLINE = "console=ttyAMA0 earlycon root=/dev/vda rw quiet panic=-1"
KERNEL = {"size": "30MiB", "image_size": "40MiB"}
RAM_MIB = (512, 1024, 2048, 4096, 8192)
Check = tuple[str, bool, str]


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def per_call(fn: Callable[[], object], number: int) -> float:
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


def fleet(count: int, shapes: list[tuple[int, int]], seed: int) -> list[dict[str, object]]:
    """``count`` squib configs with kernel and initrd, cycling through ``shapes``
    (vCPUs, virtio); RAM, initrd size and an id in the command line vary too."""
    rnd = random.Random(seed)
    return [
        {
            "template": "squib",
            "vcpus": vcpus,
            "virtio": virtio,
            "memory": f"{rnd.choice(RAM_MIB)}MiB",
            "cmdline": f"{CMDLINE} fdtgen.id={i}",
            "kernel": KERNEL,
            "initrd": {"size": rnd.randint(1, 64) << 20},
        }
        for i, (vcpus, virtio) in enumerate(shapes * (count // len(shapes) + 1))
        if i < count
    ]


def build_vs_fdtsw(count: int, rounds: int) -> dict[str, float]:
    """Median seconds per config: fdtgen from config object to blob, and FdtSw
    writing the tree fdtgen built for that config (flattened beforehand, so
    only its writing is timed). Each config is timed with both, back to back."""
    from fdtgen.config import validate
    from fdtgen.pipeline import build

    shapes = [(v, n) for v in range(25, 33) for n in range(25, 33)]
    random.Random(1).shuffle(shapes)
    configs = fleet(count, shapes, seed=2)
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == count
    cases = []
    for c in configs:
        settings = validate(dict(c))
        machine, boot = settings.machine(), settings.boot()
        b = build(machine, boot)
        sw = pylibfdt_writer(b.tree)
        assert len(sw()) == len(b.blob)  # FdtSw writes its string table in reverse order
        cases.append((lambda m=machine, bt=boot: build(m, bt).blob, sw))
    samples: dict[str, list[float]] = {"fdtgen build": [], "pylibfdt FdtSw": []}
    for _ in range(rounds):
        for ours, theirs in cases:
            samples["fdtgen build"].append(timed(ours))
            samples["pylibfdt FdtSw"].append(timed(theirs))
    return {k: statistics.median(v) for k, v in samples.items()}


def encoder_vs_fdtsw(rounds: int) -> dict[str, float]:
    """Median seconds per blob for the encoder and for FdtSw on one 32 x 32 tree."""
    from fdtgen.config import validate
    from fdtgen.fdt.encode import encode
    from fdtgen.pipeline import build

    settings = validate(fleet(1, [(32, 32)], seed=3)[0])
    b = build(settings.machine(), settings.boot())
    tree = b.tree
    assert encode(tree) == b.blob
    sw = pylibfdt_writer(tree)
    samples: dict[str, list[float]] = {"fdtgen encode": [], "pylibfdt FdtSw": []}
    for _ in range(rounds):
        samples["fdtgen encode"].append(per_call(lambda: encode(tree), 100))
        samples["pylibfdt FdtSw"].append(per_call(sw, 100))
    return {k: statistics.median(v) for k, v in samples.items()}


def build_many(count: int, rounds: int, where: str | None) -> tuple[float, float]:
    """DTBs per second from ``fdtgen build-many - -o DIR``, run in this process on
    ``count`` JSON lines: reading, validating, building, manifests and writes; and,
    for reference, the seconds this filesystem takes to create, write and rename
    one 8 KiB file, timed in the same rounds."""
    from fdtgen.cli import main

    shapes = [(v, n) for v in range(1, 33) for n in range(33)]
    random.Random(4).shuffle(shapes)
    assert count <= len(shapes)
    lines = "".join(
        json.dumps({"name": f"vm{i:04d}", **c}) + "\n"
        for i, c in enumerate(fleet(count, shapes[:count], seed=5))
    )
    rates, files = [], []
    for _ in range(rounds):
        out = tempfile.mkdtemp(prefix="fdtgen-bench-", dir=where)
        files.append(file_cost(out, 2 * count))
        stdin, sys.stdin = sys.stdin, io.StringIO(lines)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                t = time.perf_counter()
                rc = main(["build-many", "-", "-o", os.path.join(out, "vms")])
                elapsed = time.perf_counter() - t
        finally:
            sys.stdin = stdin
        written = os.listdir(os.path.join(out, "vms"))
        shutil.rmtree(out)
        assert rc == 0 and len(written) == 2 * count, (rc, len(written))
        rates.append(count / elapsed)
    return statistics.median(rates), statistics.median(files)


def file_cost(where: str, count: int) -> float:
    """Seconds per file to create, write (8 KiB) and rename ``count`` files in a new
    directory under ``where``, as build-many's atomic writes do."""
    d = os.path.join(where, "files")
    os.mkdir(d)
    data = bytes(8192)
    t = time.perf_counter()
    for i in range(count):
        tmp = os.path.join(d, f".{i}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
        os.replace(tmp, os.path.join(d, str(i)))
    elapsed = time.perf_counter() - t
    shutil.rmtree(d)
    return elapsed / count


# What the `fdtgen` script pip installs runs (its entry point, less a
# sys.argv[0] tidy-up); `python -m fdtgen` would add runpy's own imports.
FDTGEN = "import sys; from fdtgen.cli import main; sys.exit(main())"


def cold_start(runs: int) -> dict[str, float]:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "fdtgen")], check=True)
    tmp = tempfile.mkdtemp(prefix="fdtgen-bench-")
    blob = os.path.join(tmp, "g.dtb")
    py = sys.executable
    fdtgen = (py, "-c", FDTGEN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([*fdtgen, "build", "-o", blob], check=True, env=env)
    commands = {
        "bare interpreter": [py, "-c", "pass"],
        "import pydantic": [py, "-c", "import pydantic"],
        # Not a target: pydantic 2.13's import is lazy, and its model machinery
        # loads with the first model any config validator must define.
        "pydantic + one model": [
            *(py, "-c", "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int = 0\nM()")
        ],
        "fdtgen build CONFIG": [
            *(*fdtgen, "build", str(ROOT / "fixtures" / "configs" / "default.toml")),
            *("-o", os.path.join(tmp, "c.dtb")),
        ],
        "fdtgen dts BLOB": [*fdtgen, "dts", blob],
        "fdtgen verify BLOB": [*fdtgen, "verify", blob],
    }
    samples: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            samples[name].append(time.perf_counter() - t)
    shutil.rmtree(tmp)
    return {k: statistics.median(v) for k, v in samples.items()}


def allocator(requests: int, rounds: int) -> float:
    """Median seconds for one allocator to take ``requests`` dynamic requests of
    mixed sizes and alignments, in all three placements, around 4 GiB of RAM."""
    from fdtgen.allocator import Allocator, Placement
    from fdtgen.units import GiB, KiB, MiB

    rnd = random.Random(requests)
    wheres = (Placement.BELOW_4G, Placement.ABOVE_4G, Placement.AFTER_RAM)
    reqs = [
        (
            f"r{i}",
            rnd.choice([4, 8, 12, 64, 256]) * KiB,
            rnd.choice([4, 16, 64]) * KiB,
            wheres[i % 3],
        )
        for i in range(requests)
    ]

    def run() -> object:
        a = Allocator(address_width=48)
        a.ram("ram", 4 * GiB, 2 * MiB)
        for r in reqs:
            a.request(*r)
        return a.allocate()

    return statistics.median(timed(run) for _ in range(rounds))


def kernel_reads(rounds: int) -> dict[str, float]:
    """Median seconds for ``read_kernel`` on the two hostile gzip kernels."""
    import gzip
    import struct
    import zlib

    from fdtgen.boot.image import read_kernel
    from fdtgen.errors import ImageError

    mib = 1 << 20
    header = struct.pack("<IIQQQQQQ4sI", 0, 0, 0, 0x1AB_0000, 0xA, 0, 0, 0, b"ARM\x64", 0)
    raw = header + bytes(4 * mib - len(header))
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    start = c.compress(raw) + c.flush(zlib.Z_SYNC_FLUSH)
    block = c.compress(bytes(mib)) + c.flush(zlib.Z_SYNC_FLUSH)  # refers only to zeros
    with tempfile.TemporaryDirectory() as tmp:
        members, bomb = Path(tmp) / "members.gz", Path(tmp) / "bomb.gz"
        members.write_bytes(gzip.compress(raw) + gzip.compress(b"") * 200_000)
        bomb.write_bytes(start + block * 10 * 1024 + c.flush())

        def refused() -> None:
            with contextlib.suppress(ImageError):
                read_kernel(str(bomb))

        return {
            "200000 empty members": statistics.median(
                timed(lambda: read_kernel(str(members))) for _ in range(rounds)
            ),
            "10 GiB gzip bomb": statistics.median(timed(refused) for _ in range(rounds)),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and configs (a smoke run)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument(
        "--out-dir",
        metavar="DIR",
        help="where build-many writes (default: the temporary directory); its "
        "filesystem's cost per file is printed alongside",
    )
    args = ap.parse_args()
    quick = args.quick
    results: dict[str, object] = {}
    checks: list[Check] = []

    configs = 60 if quick else 300
    print(
        f"== build: config object -> blob, {configs} distinct squib machines "
        "(25..32 vCPUs x 25..32 virtio, RAM, cmdline, initrd varied; kernel + initrd placed)"
    )
    t = build_vs_fdtsw(configs, rounds=2 if quick else 5)
    results["build_s"] = t
    ours, theirs = t["fdtgen build"], t["pylibfdt FdtSw"]
    print(f"  {'fdtgen build':26} {ours * 1e6:8.1f} us")
    print(f"  {'pylibfdt FdtSw':26} {theirs * 1e6:8.1f} us   (writing the same tree)")
    checks.append(("build <= pylibfdt FdtSw", ours <= theirs, f"x{ours / theirs:.2f} of FdtSw"))

    print("== encoder: tree -> dtc-canonical bytes (squib, 32 vCPUs, 32 virtio, placed)")
    e = encoder_vs_fdtsw(rounds=5 if quick else 15)
    results["encode_s"] = e
    ours, theirs = e["fdtgen encode"], e["pylibfdt FdtSw"]
    print(f"  {'fdtgen encode':26} {ours * 1e6:8.1f} us")
    print(f"  {'pylibfdt FdtSw':26} {theirs * 1e6:8.1f} us")
    checks.append(
        ("encoder >= 1.25x pylibfdt FdtSw", theirs / ours >= 1.25, f"x{theirs / ours:.2f}")
    )

    where = args.out_dir or tempfile.gettempdir()
    print("== build-many: 1000 configs, every vCPU x virtio shape different, manifests, writes")
    rate, per_file = build_many(1000, rounds=1 if quick else 3, where=where)
    results["build_many_per_s"] = rate
    results["file_write_s"] = per_file
    print(f"  {rate:9.0f} DTBs/s   (2 files each, into {where})")
    print(f"  {per_file * 1e6:9.1f} us to create, write and rename one file there")
    checks.append(("build-many >= 2000 DTBs/s with manifests", rate >= 2000, f"{rate:.0f}/s"))

    print("== cold start (median of interleaved runs, as the installed `fdtgen` script runs)")
    c = cold_start(5 if quick else 21)
    results["cold_start_s"] = c
    for name, v in c.items():
        print(f"  {name:26} {v * 1e3:8.1f} ms")
    bare, pyd = c["bare interpreter"], c["import pydantic"]
    cmd = "fdtgen build CONFIG"
    checks.append(
        (
            f"{cmd} <= import pydantic + 40 ms",
            c[cmd] <= pyd + 0.040,
            f"{(c[cmd] - pyd) * 1e3:+.1f} ms",
        )
    )
    for cmd in ("fdtgen dts BLOB", "fdtgen verify BLOB"):
        checks.append(
            (f"{cmd} <= bare + 40 ms", c[cmd] <= bare + 0.040, f"{(c[cmd] - bare) * 1e3:+.1f} ms")
        )

    print("== allocator: 1000 dynamic requests (below 4G, above 4G, after RAM)")
    a = allocator(1000, rounds=5 if quick else 15)
    results["allocator_s"] = a
    print(f"  {a * 1e3:9.2f} ms")
    checks.append(("allocator 1000 requests <= 50 ms", a <= 0.050, f"{a * 1e3:.1f} ms"))

    print("== kernel reads: hostile gzip kernels")
    k = kernel_reads(rounds=1 if quick else 5)
    results["kernel_read_s"] = k
    for name, v in k.items():
        print(f"  {name:26} {v * 1e3:8.1f} ms")
        checks.append((f"kernel read, {name} <= 2 s", v <= 2.0, f"{v * 1e3:.0f} ms"))

    print("== targets" + (" (--quick: few rounds and configs; not a verdict)" if quick else ""))
    for name, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:46} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
