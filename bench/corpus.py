"""verify's cost: over the real-world corpus, and on hostile blobs.

    python3 bench/corpus.py

The targets:

* corpus: ``fdtgen.checks.verify`` over every DTB Debian's generic arm64
  kernel ships (fdtgen/debian/kit.py dtbs() fetches them), in one process, dtc's
  checks left out, <= 5x ``dtc -I dtb -O dts`` run once per blob;
* one reg: a 16 KB blob whose one node has a 1,000-entry ``reg`` of one range
  (every entry overlapping every other): <= 2 s and <= 200 MB;
* 2 MiB: blobs just under booting.rst's 2 MiB cap that are hard on each rule
  (one node with a ``reg`` of identical entries; 40,000 sibling nodes on one
  SPI with overlapping ranges; a nexus whose ``interrupt-map`` has 20,000
  rows and as many children): each <= 2 s and <= 200 MB.

Each hostile blob is verified in a fresh interpreter, so its peak memory is
that process's maximum resident set (the interpreter's own included).
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fdtgen.checks import Options, verify  # noqa: E402
from fdtgen.fdt.encode import encode  # noqa: E402
from fdtgen.fdt.tree import DeviceTree, Node, Prop  # noqa: E402
from fdtgen.spec import FDT_MAX_SIZE  # noqa: E402

TIME_LIMIT = 2.0  # seconds per hostile blob
MEMORY_LIMIT = 200 << 20  # bytes of resident set per hostile blob
CORPUS_RATIO = 5.0  # verify over the corpus <= this x dtc once per blob


def _gic() -> Node:
    return Node(
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


def _root(*children: Node) -> DeviceTree:
    return DeviceTree(
        Node(
            "",
            (
                Prop.cells("#address-cells", 2),
                Prop.cells("#size-cells", 2),
                Prop.cells("interrupt-parent", 1),
            ),
            (_gic(), *children),
        )
    )


def one_reg(entries: int) -> bytes:
    """One node whose ``reg`` repeats one range ``entries`` times."""
    cells = [0, 0x1000_0000, 0, 0x1000] * entries
    return encode(_root(Node("dev@10000000", (Prop.cells("reg", *cells),), ())))


def siblings(count: int) -> bytes:
    """``count`` sibling devices, each overlapping the next, all on SPI 5."""
    nodes = tuple(
        Node(
            f"d@{0x1000_0000 + i * 0x800:x}",
            (
                Prop.cells("reg", 0, 0x1000_0000 + i * 0x800, 0, 0x1000),
                Prop.cells("interrupts", 0, 5, 4),
            ),
            (),
        )
        for i in range(count)
    )
    return encode(_root(*nodes))


def nexus(count: int) -> bytes:
    """A bus whose ``interrupt-map`` has ``count`` rows, one per child."""
    rows: list[int] = []
    for i in range(count):
        rows += [i, 1, 1, 0, i % 900, 4]
    children = tuple(
        Node(f"c@{i:x}", (Prop.cells("reg", i), Prop.cells("interrupts", 1)), ())
        for i in range(count)
    )
    bus = Node(
        "bus@0",
        (
            Prop.cells("#address-cells", 1),
            Prop.cells("#size-cells", 0),
            Prop.cells("#interrupt-cells", 1),
            Prop.cells("interrupt-map-mask", 0xFFFF_FFFF, 0xFFFF_FFFF),
            Prop.cells("interrupt-map", *rows),
            Prop.cells("interrupt-parent", 1),
        ),
        children,
    )
    return encode(_root(bus))


def fitted(make, low: int, high: int) -> bytes:  # type: ignore[no-untyped-def]
    """``make(n)`` for the largest ``n`` in [low, high] whose blob is <= 2 MiB."""
    while low < high:
        mid = (low + high + 1) // 2
        if len(make(mid)) <= FDT_MAX_SIZE:
            low = mid
        else:
            high = mid - 1
    return make(low)  # type: ignore[no-any-return]


_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from fdtgen.checks import Options, verify
blob = open(sys.argv[1], "rb").read()
t = time.perf_counter()
found = verify(blob, Options(dtc=None))
dt = time.perf_counter() - t
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, len(found))
"""


def hostile(name: str, blob: bytes, tmp: Path) -> tuple[float, int, int]:
    path = tmp / f"{name}.dtb"
    path.write_bytes(blob)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT)), str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> int:
    checks: list[tuple[str, bool, str]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cases = [
            ("one reg, 1,000 entries", one_reg(1000)),
            ("2 MiB: one reg of identical entries", fitted(one_reg, 1000, 200_000)),
            ("2 MiB: overlapping siblings on one SPI", fitted(siblings, 1000, 100_000)),
            ("2 MiB: interrupt-map nexus", fitted(nexus, 1000, 100_000)),
        ]
        print("== hostile blobs (each in a fresh interpreter)")
        for name, blob in cases:
            dt, rss, shown = hostile(name.split(":")[0].replace(" ", "-"), blob, tmp)
            print(
                f"  {name:42} {len(blob):>9,} B  {dt:6.2f} s  {rss / 2**20:6.1f} MB  {shown} shown"
            )
            ok = dt <= TIME_LIMIT and rss <= MEMORY_LIMIT
            checks.append((f"{name} <= 2 s, 200 MB", ok, f"{dt:.2f} s, {rss / 2**20:.0f} MB"))

    sys.path.insert(0, str(ROOT))
    from fdtgen.debian import kit as debian

    paths = debian.dtbs().paths()
    blobs = [p.read_bytes() for p in paths]
    print(f"== corpus: {len(blobs)} DTBs of {debian.dtbs().kernel_package}")
    t = time.perf_counter()
    for b in blobs:
        verify(b, Options(dtc=None))
    ours = time.perf_counter() - t
    dtc = shutil.which("dtc")
    if dtc is None:
        print("dtc is required (apt-get install device-tree-compiler)", file=sys.stderr)
        return 2
    t = time.perf_counter()
    for p in paths:
        subprocess.run(
            [dtc, "-I", "dtb", "-O", "dts", "-o", "/dev/null", str(p)],
            check=False,
            stderr=subprocess.DEVNULL,
        )
    theirs = time.perf_counter() - t
    print(f"  fdtgen verify, one process      {ours:7.2f} s")
    print(f"  dtc -I dtb -O dts, once a blob  {theirs:7.2f} s")
    checks.append(
        (
            f"corpus verify <= {CORPUS_RATIO:g}x dtc per blob",
            ours <= CORPUS_RATIO * theirs,
            f"{ours / theirs:.2f}x",
        )
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process        {peak:7.1f} MB")

    print("== targets")
    for name, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:52} {value}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
