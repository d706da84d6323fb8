"""verify's cost bounds: hostile 2 MiB blobs through the command, and the corpus.

    python3 bench/verify_bounds.py              # every case, then the corpus
    python3 bench/verify_bounds.py --quick      # small blobs, no corpus: a smoke run
    python3 bench/verify_bounds.py --dtc        # also time dtc's checks on each blob

The targets:

* hostile: every blob below, each at most booting.rst's 2 MiB, checked by
  ``fdtgen verify BLOB`` (dtc's checks included when dtc is installed, run beside
  fdtgen's rules and cut off after 1 s) in a fresh interpreter: <= 2 s from start
  to exit and <= 200 MB peak resident set (the interpreter's own included,
  read with ``resource.getrusage`` in the child);
* corpus: ``fdtgen.checks.verify`` over every DTB of Debian's generic arm64
  kernel (:func:`fdtgen.debian.kit.dtbs`), one process, dtc's checks left out,
  <= 5x ``dtc -I dtb -O dts`` run once per blob.

The hostile blobs are made here with fdtgen's encoder, each the largest of its
shape that fits in 2 MiB: one ``reg`` of identical entries; siblings that
overlap each other, all on one SPI; an ``interrupt-map`` nexus with a row and a
child per SPI; 100,000 nodes; one ``interrupts-extended`` of 250,000 cells;
chains of buses nested to the parser's depth cap, each with a ``reg``;
siblings sharing one unit address and range; one ``interrupt-map`` of bad rows
and no children; PCI host bridges whose windows overlap each other and many
devices. ``--dtc`` also times ``dtc -I dtb -O dtb`` (what verify runs for its
``dtc.*`` findings when dtc is installed) on each: dtc's own cost, no target.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fdtgen.fdt.encode import encode  # noqa: E402
from fdtgen.fdt.tree import DeviceTree, Node, Prop  # noqa: E402
from fdtgen.spec import FDT_MAX_SIZE  # noqa: E402

# The blobs are made in a child process and this one stays small: Linux keeps
# a process's peak RSS across fork and exec, so a child's getrusage reports at
# least the peak of the process that started it.

TIME_LIMIT = 2.0  # seconds per hostile blob, interpreter start included
MEMORY_LIMIT = 200 << 20  # bytes of peak resident set per hostile blob
CORPUS_RATIO = 5.0  # verify over the corpus <= this x dtc once per blob
DEPTH = 63  # nodes below the root: the parser's cap (MAX_DEPTH 64) counts the root


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


def _root(*children: Node) -> bytes:
    root = Node(
        "",
        (
            Prop.cells("#address-cells", 2),
            Prop.cells("#size-cells", 2),
            Prop.cells("interrupt-parent", 1),
        ),
        (_gic(), *children),
    )
    return encode(DeviceTree(root))


def one_reg(n: int) -> bytes:
    """One node whose ``reg`` repeats one range ``n`` times."""
    return _root(Node("dev@10000000", (Prop.cells("reg", *[0, 0x1000_0000, 0, 0x1000] * n),), ()))


def siblings(n: int) -> bytes:
    """``n`` sibling devices, each overlapping the next, all on SPI 5."""
    return _root(
        *(
            Node(
                f"d@{0x1000_0000 + i * 0x800:x}",
                (
                    Prop.cells("reg", 0, 0x1000_0000 + i * 0x800, 0, 0x1000),
                    Prop.cells("interrupts", 0, 5, 4),
                ),
                (),
            )
            for i in range(n)
        )
    )


def _nexus_bus(rows: list[int], children: tuple[Node, ...]) -> Node:
    return Node(
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


def nexus(n: int) -> bytes:
    """A bus whose ``interrupt-map`` has ``n`` rows, one per child."""
    rows = [c for i in range(n) for c in (i, 1, 1, 0, i % 900, 4)]
    children = tuple(
        Node(f"c@{i:x}", (Prop.cells("reg", i), Prop.cells("interrupts", 1)), ()) for i in range(n)
    )
    return _root(_nexus_bus(rows, children))


def nodes(n: int) -> bytes:
    """``n`` property-less nodes, a thousand to a bus."""
    buses = tuple(
        Node(f"b{j}", (), tuple(Node(f"n@{i:x}", (), ()) for i in range(min(1000, n - j * 1000))))
        for j in range((n + 999) // 1000)
    )
    return _root(*buses)


def long_property(cells: int) -> bytes:
    """One node whose ``interrupts-extended`` holds ``cells`` cells (GIC specifiers)."""
    specs = [c for i in range(cells // 4) for c in (1, 0, i % 988, 4)]
    return _root(Node("dev@0", (Prop.cells("interrupts-extended", *specs),), ()))


def deep(chains: int) -> bytes:
    """``chains`` chains of buses nested ``DEPTH`` deep, every level with a ``reg``."""

    def level(c: int, d: int) -> Node:
        props = (
            Prop.cells("#address-cells", 1),
            Prop.cells("#size-cells", 1),
            Prop.empty("ranges"),
            Prop.cells("reg", 0x1000 * d, 0x10),
        )
        return Node(f"b@{0x1000 * d:x}", props, (level(c, d + 1),) if d < DEPTH - 1 else ())

    top = tuple(
        Node(
            f"chain@{c:x}",
            (
                Prop.cells("#address-cells", 1),
                Prop.cells("#size-cells", 1),
                Prop.cells("ranges", 0, 0, c << 20, 1 << 20),
                Prop.cells("reg", 0, c << 20, 0, 1 << 20),
            ),
            (level(c, 1),),
        )
        for c in range(chains)
    )
    return _root(*top)


def same_unit(n: int) -> bytes:
    """``n`` siblings on one bus, every one at unit address 1000 with the same range."""
    kids = tuple(Node(f"d{i}@1000", (Prop.cells("reg", 0x1000, 0x100),), ()) for i in range(n))
    bus = Node(
        "bus@0",
        (
            Prop.cells("#address-cells", 1),
            Prop.cells("#size-cells", 1),
            Prop.cells("ranges", 0, 0, 0x4000_0000, 0x1000_0000),
        ),
        kids,
    )
    return _root(bus)


def long_map(rows: int) -> bytes:
    """A nexus with no children and ``rows`` rows, every one with a trigger the GIC refuses."""
    return _root(_nexus_bus([c for i in range(rows) for c in (i, 1, 1, 0, i % 900, 8)], ()))


def pci_hosts(n: int) -> bytes:
    """``n`` PCI host bridges whose memory windows overlap each other and
    ``10 n`` devices, each host with an ``interrupt-map`` row per device."""
    hosts = []
    for h in range(n):
        ecam = 0x40_0000_0000 + h * 0x10_0000
        rows = [c for d in range(4) for c in (d << 11, 0, 0, 1, 1, 0, 32 + d, 4)]
        hosts.append(
            Node(
                f"pcie@{ecam:x}",
                (
                    Prop.strings("compatible", "pci-host-ecam-generic"),
                    Prop.strings("device_type", "pci"),
                    Prop.cells("#address-cells", 3),
                    Prop.cells("#size-cells", 2),
                    Prop.cells("#interrupt-cells", 1),
                    Prop.cells("bus-range", 0, 0),
                    Prop.cells("reg", ecam >> 32, ecam & 0xFFFF_FFFF, 0, 0x10_0000),
                    Prop.cells(
                        "ranges", 0x0200_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0x1000_0000
                    ),
                    Prop.cells("interrupt-map-mask", 0x1800, 0, 0, 7),
                    Prop.cells("interrupt-map", *rows),
                ),
                (),
            )
        )
    devices = tuple(
        Node(
            f"d@{0x1000_0000 + i * 0x1000:x}",
            (Prop.cells("reg", 0, 0x1000_0000 + i * 0x1000, 0, 0x1000),),
            (),
        )
        for i in range(10 * n)
    )
    return _root(*hosts, *devices)


def fitted(make: Callable[[int], bytes], low: int, high: int, cap: int = FDT_MAX_SIZE) -> bytes:
    """``make(n)`` for the largest ``n`` in [low, high] whose blob is <= ``cap`` bytes."""
    while low < high:
        mid = (low + high + 1) // 2
        if len(make(mid)) <= cap:
            low = mid
        else:
            high = mid - 1
    return make(low)


CASES: list[tuple[str, Callable[[int], bytes], int, int]] = [
    ("one reg of identical entries", one_reg, 1000, 200_000),
    ("overlapping siblings on one SPI", siblings, 1000, 100_000),
    ("interrupt-map nexus, a child per row", nexus, 1000, 100_000),
    ("100,000 nodes", nodes, 1000, 100_000),
    ("one property of 250,000 cells", long_property, 1000, 250_000),
    ("buses nested to the depth cap", deep, 10, 5000),
    ("siblings at one unit address", same_unit, 1000, 60_000),
    ("interrupt-map of bad rows, no children", long_map, 1000, 200_000),
    ("PCI hosts overlapping many devices", pci_hosts, 10, 20_000),
]

_CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from fdtgen.cli import main
try:
    code = main(["verify", sys.argv[1]])
finally:
    sys.stdout.flush()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, file=sys.stderr)
"""


def run_verify(path: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes and the last stdout line of
    ``fdtgen verify PATH`` in a fresh interpreter."""
    start = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT)), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if r.returncode not in (0, 1):
        raise SystemExit(f"fdtgen verify {path} exited {r.returncode}: {r.stderr.strip()}")
    lines = r.stdout.splitlines()
    return wall, int(r.stderr.split()[-1]), lines[-1] if lines else ""


def make_blobs(out: Path, quick: bool) -> None:
    """Write every hostile blob to ``out`` as ``case<N>.dtb``."""
    cap = 64 << 10 if quick else FDT_MAX_SIZE
    for i, (_, make, low, high) in enumerate(CASES):
        (out / f"case{i}.dtb").write_bytes(fitted(make, 1 if quick else low, high, cap))


def hostile(tmp: Path, quick: bool, dtc: str | None) -> list[tuple[str, bool, str]]:
    checks = []
    argv = [sys.executable, __file__, "--make", str(tmp)] + (["--quick"] if quick else [])
    subprocess.run(argv, check=True)
    print("== hostile blobs, each through fdtgen verify in a fresh interpreter")
    for i, (name, *_) in enumerate(CASES):
        path = tmp / f"case{i}.dtb"
        size = path.stat().st_size
        wall, rss, tally = run_verify(path)
        extra = ""
        if dtc is not None:
            t = time.perf_counter()
            subprocess.run(
                [dtc, "-I", "dtb", "-O", "dtb", "-o", "/dev/null", str(path)],
                capture_output=True,
                check=False,
            )
            extra = f"  dtc {time.perf_counter() - t:6.2f} s"
        print(
            f"  {name:40} {size:>9,} B {wall:6.2f} s {rss / 2**20:6.1f} MB{extra}"
            f"  {tally.partition(': ')[2]}"
        )
        ok = wall <= TIME_LIMIT and rss <= MEMORY_LIMIT
        checks.append((f"{name} <= 2 s, 200 MB", ok, f"{wall:.2f} s, {rss / 2**20:.0f} MB"))
    return checks


def corpus(dtc: str) -> list[tuple[str, bool, str]]:
    from fdtgen.checks import Options, verify
    from fdtgen.debian import kit

    dtbs = kit.dtbs()
    paths = dtbs.paths()
    blobs = [p.read_bytes() for p in paths]
    print(f"== corpus: {len(blobs)} DTBs of {dtbs.kernel_package}")
    t = time.perf_counter()
    for b in blobs:
        verify(b, Options(dtc=None))
    ours = time.perf_counter() - t
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
    name = f"corpus verify <= {CORPUS_RATIO:g}x dtc per blob"
    return [(name, ours <= CORPUS_RATIO * theirs, f"{ours / theirs:.2f}x")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 KiB blobs and no corpus")
    ap.add_argument("--dtc", action="store_true", help="also time dtc's checks on each blob")
    ap.add_argument("--make", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        make_blobs(Path(args.make), args.quick)
        return 0
    dtc = shutil.which("dtc")
    if dtc is None and (args.dtc or not args.quick):
        print("dtc is required (apt-get install device-tree-compiler)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        checks = hostile(Path(d), args.quick, dtc if args.dtc else None)
    if not args.quick:
        assert dtc is not None
        checks += corpus(dtc)
    print("== targets")
    for name, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:52} {value}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
