"""Fresh hostile input through the command line: mutated blobs and bad configs, seeded.

    python3 bench/hostile.py                  # 20,000 blobs, 5,000 configs, 400 in processes
    python3 bench/hostile.py --blobs 300 --configs 100 --processes 20   # a smoke run

Blobs: fdtgen-built DTBs (every built-in template) and the QEMU fixture blobs,
each mutated at random (byte flips, a header field set to an edge value,
truncation, a splice of another blob's bytes, bytes inserted or deleted), go
through ``dts``, ``verify --no-dtc`` and ``diff`` in this process, by
:func:`fdtgen.cli.main` with its output captured. Configs: valid configs
mutated at random (wrong types, out-of-range and huge numbers, unknown keys
holding secrets, nesting 50 to 1,200 deep, 4,301-digit integers, decimal and
malformed units, lone surrogates, byte damage to the TOML text) go through
``build``. A share of both runs in fresh ``python -m fdtgen`` processes under
a 200 MiB address-space limit.

Every case must end with status 0, 1 or 2; status 2 with exactly one stderr
line ``fdtgen: error: ...``; no traceback (an exception escaping ``main`` is
one) and no secret from an unknown key in the output. The report gives those
counts, the slowest case and the peak RSS, and a PASS or FAIL line for each
target; the exit status is 1 when any target fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fdtgen.cli import main  # noqa: E402

MiB = 1 << 20
MAX_SECONDS = 2.0
MAX_RSS = 200 * MiB
SECRET = "s3cret-token-never-printed"


@dataclass
class Tally:
    """What the cases of one kind did."""

    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    tracebacks: int = 0
    bad_status: int = 0
    multi_line: int = 0
    leaked: int = 0
    failed: int = 0  # hardening-list cases whose own checks failed
    max_seconds: float = 0.0
    slowest: str = ""
    examples: list[str] = field(default_factory=list)

    def record_checked(self, label: str, rc: int, seconds: float, failed: str) -> None:
        """A case whose own checks ran (status, one line, nothing touched)."""
        self.cases += 1
        self.by_status[rc] = self.by_status.get(rc, 0) + 1
        if seconds > self.max_seconds:
            self.max_seconds, self.slowest = seconds, label
        if failed:
            self.failed += 1
            if len(self.examples) < 5:
                self.examples.append(f"{label}: {failed}")

    def record(
        self, label: str, rc: int | None, err: str, out: str, seconds: float, crashed: str = ""
    ) -> None:
        self.cases += 1
        if rc is not None:
            self.by_status[rc] = self.by_status.get(rc, 0) + 1
        if seconds > self.max_seconds:
            self.max_seconds, self.slowest = seconds, label
        problems = []
        if crashed or "Traceback" in err:
            self.tracebacks += 1
            problems.append(f"traceback {crashed}")
        if rc not in (0, 1, 2):
            self.bad_status += 1
            problems.append(f"status {rc}")
        if rc == 2 and not (err.startswith("fdtgen: error: ") and err.count("\n") == 1):
            self.multi_line += 1
            problems.append("not one error line")
        if SECRET in err or SECRET in out:
            self.leaked += 1
            problems.append("secret printed")
        if problems and len(self.examples) < 5:
            self.examples.append(f"{label}: {', '.join(problems)}: {err[-300:]!r}")


def in_process(argv: list[str]) -> tuple[int | None, str, str, str]:
    """``fdtgen ARGV`` by :func:`fdtgen.cli.main`: status, stderr, stdout, escaped exception."""
    err, out = io.StringIO(), io.StringIO()
    crashed = ""
    rc: int | None = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's --help; not expected here
            rc = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # noqa: BLE001 - any escape is the finding
            crashed = type(e).__name__
    return rc, err.getvalue(), out.getvalue(), crashed


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MAX_RSS, MAX_RSS))


def in_subprocess(argv: list[str]) -> tuple[int | None, str, str, str]:
    r = subprocess.run(
        [sys.executable, "-m", "fdtgen", *argv],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        preexec_fn=_limit,
        check=False,
    )
    return r.returncode, r.stderr.decode(errors="replace"), r.stdout.decode(errors="replace"), ""


# Blobs ------------------------------------------------------------------------------------


def seed_blobs() -> list[bytes]:
    """The DTB of every built-in template (with a placed kernel) and QEMU's own blobs."""
    from fdtgen.config import load
    from fdtgen.template.load import builtin_names

    blobs = []
    for name in builtin_names():
        cfg = load(None, {"template": name, "kernel": {"size": "20MiB"}, "rng_seed": 32})
        blobs.append(cfg.build().blob)
    for p in sorted((ROOT / "fixtures" / "qemu").glob("*.dtb")):
        blobs.append(p.read_bytes())
    return blobs


EDGE_U32 = (0, 1, 3, 4, 0x28, 0x38, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF)


def mutate_blob(rng: random.Random, blob: bytes, others: list[bytes]) -> tuple[str, bytes]:
    b = bytearray(blob)
    how = rng.choice(("flip", "header", "truncate", "splice", "insert", "delete", "tokens"))
    if how == "flip":
        for _ in range(rng.randint(1, 16)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif how == "header":  # one of the ten header words set to an edge value or a random one
        word = rng.randrange(10)
        value = rng.choice((*EDGE_U32, rng.getrandbits(32), len(b) + rng.randint(-64, 64)))
        struct.pack_into(">I", b, 4 * word, value & 0xFFFFFFFF)
    elif how == "truncate":
        del b[rng.randrange(len(b)) :]
    elif how == "splice":
        other = rng.choice(others)
        at, src = rng.randrange(len(b)), rng.randrange(len(other))
        n = rng.randint(1, 512)
        b[at : at + n] = other[src : src + n]
    elif how == "insert":
        at = rng.randrange(len(b))
        b[at:at] = bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 3, 4, 8, 64))))
    elif how == "delete":
        at = rng.randrange(len(b))
        del b[at : at + rng.choice((1, 3, 4, 8, 64))]
    else:  # a structure token word rewritten: BEGIN_NODE/END_NODE/PROP/NOP/END or garbage
        off_struct = struct.unpack_from(">I", b, 8)[0]
        if off_struct + 8 < len(b):
            at = off_struct + 4 * rng.randrange((len(b) - off_struct) // 4)
            token = rng.choice((1, 2, 3, 4, 9, 0, 0xFFFFFFFF))
            struct.pack_into(">I", b, min(at, len(b) - 4), token)
    return how, bytes(b)


def run_blobs(
    n: int, processes: int, rng: random.Random, work: Path
) -> tuple[Tally, Tally, dict[str, int]]:
    seeds = seed_blobs()
    good = work / "good.dtb"
    good.write_bytes(seeds[0])
    inproc, sub = Tally(), Tally()
    kinds: dict[str, int] = {}
    commands: list[Callable[[str], list[str]]] = [
        lambda p: ["dts", p],
        lambda p: ["verify", "--no-dtc", p],
        lambda p: ["diff", str(good), p],
    ]
    sub_every = max(1, n // processes) if processes else 0
    for i in range(n):
        how, blob = mutate_blob(rng, rng.choice(seeds), seeds)
        kinds[how] = kinds.get(how, 0) + 1
        path = work / f"blob-{i % 64}.dtb"
        path.write_bytes(blob)
        argv = commands[i % 3](str(path))
        label = f"blob {i} ({how}, {argv[0]})"
        if sub_every and i % sub_every == 0 and sub.cases < processes:
            t = time.perf_counter()
            rc, err, out, crashed = in_subprocess(argv)
            sub.record(label, rc, err, out, time.perf_counter() - t, crashed)
        t = time.perf_counter()
        rc, err, out, crashed = in_process(argv)
        inproc.record(label, rc, err, out, time.perf_counter() - t, crashed)
    return inproc, sub, kinds


# Configs ----------------------------------------------------------------------------------


def raw_image(size: int = 64 * 1024) -> bytes:
    """A raw arm64 Image: the booting.rst header (magic ARM\\x64 at 0x38), then zeros."""
    header = struct.pack(
        "<IIQQQQQQ4sI", 0x91005A4D, 0x14000000, 0, 0x1AB_0000, 0xA, 0, 0, 0, b"ARM\x64", 0
    )
    return header + bytes(size - len(header))


BASES = [
    {"template": "squib", "vcpus": 2, "memory": "512MiB", "virtio": 4},
    {"template": "qemu-virt", "vcpus": 8, "memory": "2GiB", "cmdline": "console=ttyAMA0"},
    {"template": "firecracker", "vcpus": 1, "memory": "256MiB", "kernel": {"size": "20MiB"}},
    {
        "template": "squib",
        "vcpus": 4,
        "memory": "1GiB",
        "kernel": {"size": "30MiB", "image_size": "40MiB"},
        "initrd": {"size": "8MiB"},
        "rng_seed": 32,
        "kaslr_seed": True,
        "entropy_seed": "fleet-7",
        "topology": {"sockets": 1, "clusters": 1, "cores": 4, "threads": 1},
    },
    {"template": "kvmtool", "vcpus": 2, "serial": True, "psci_method": "hvc"},
]
KEYS = [
    "template", "vcpus", "memory", "cmdline", "virtio", "serial", "psci_method",
    "redist_stride", "ram_base", "address_width", "topology", "kernel", "initrd",
    "rng_seed", "kaslr_seed", "entropy_seed",
]  # fmt: skip
BAD_SIZES = [
    "3GB", "3000MB", "4kB", "2tb", "1.5GiB", "-1MiB", "0x", "12XB", "GiB", "", " ",
    "9" * 40 + "GiB", "1e9", "0b101", "1 GiB", "1GiBGiB", "\u0661GiB",
]  # fmt: skip


def nested(depth: int) -> str:
    """A placeholder for ``depth`` nested arrays, spelled out in the text (json.dumps
    itself recurses too deeply for them)."""
    return f"@@deep-{depth}@@"


def spell(text: str) -> str:
    """The text with every nesting placeholder (quoted) written out."""
    import re

    return re.sub(r'"@@deep-(\d+)@@"', lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text)


def bad_value(rng: random.Random, work: Path) -> object:
    return rng.choice(
        [
            lambda: rng.choice((-1, 0, 2**31, 2**32, 2**64, 2**64 + 1, -(2**63), 10**30)),
            lambda: rng.choice(BAD_SIZES),
            lambda: rng.choice((True, False, None, 1.5, float("1e308"), [], {}, "")),
            lambda: nested(rng.choice((50, 200, 999, 1200))),
            lambda: {"size": rng.choice(BAD_SIZES + [0, -5, 2**70])},
            lambda: "x" * rng.choice((61, 2048, 5000)),
            lambda: "\ud800" if rng.random() < 0.5 else "a\u0000b",
            lambda: rng.choice(
                (str(work / "Image"), str(work / "nope"), str(work), "/etc/passwd", "")
            ),
            lambda: {"api_key": SECRET, "size": "1MiB"},  # a table's unknown key
            lambda: rng.randint(-(10**6), 10**6),
        ]
    )()


def mutate_config(rng: random.Random, work: Path) -> tuple[str, str, str]:
    """A mutated config: ``(how, file name, text)``."""
    cfg = json.loads(json.dumps(rng.choice(BASES)))
    how = rng.choice(("value", "value", "unknown", "deep", "digits", "toml-bytes", "many"))
    if how in ("value", "many"):
        for _ in range(1 if how == "value" else rng.randint(2, 6)):
            cfg[rng.choice(KEYS)] = bad_value(rng, work)
    elif how == "unknown":
        cfg[rng.choice(("api_token", "vcpu", "Memory", "x" * 80, "kernel_path"))] = SECRET
    elif how == "deep":
        cfg[rng.choice(KEYS)] = nested(rng.choice((500, 1000, 1200)))
    if how == "digits":  # past Python's int-to-str limit, written as text
        key = rng.choice(("vcpus", "memory", "rng_seed", "virtio"))
        cfg[key] = 0
        text = json.dumps(cfg).replace(f'"{key}": 0', f'"{key}": {"9" * 4301}')
        return how, "vm.json", text
    text = spell(json.dumps(cfg))
    if how == "toml-bytes":  # a TOML config with its text damaged
        lines = [f"{k} = {spell(json.dumps(v))}" for k, v in cfg.items() if not isinstance(v, dict)]
        raw = bytearray("\n".join(lines).encode())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.choice(b"\x00\xff[]{}=\"'\n#\\")
        return how, "vm.toml", raw.decode("latin-1")
    return how, "vm.json", text


def run_configs(
    n: int, processes: int, rng: random.Random, work: Path
) -> tuple[Tally, Tally, dict[str, int]]:
    (work / "Image").write_bytes(raw_image())
    inproc, sub = Tally(), Tally()
    kinds: dict[str, int] = {}
    sub_every = max(1, n // processes) if processes else 0
    for i in range(n):
        how, name, text = mutate_config(rng, work)
        kinds[how] = kinds.get(how, 0) + 1
        path = work / f"{i % 64}-{name}"
        path.write_bytes(text.encode("utf-8", "surrogatepass") if name.endswith("json") else
                         text.encode("latin-1"))  # fmt: skip
        argv = ["build", str(path), "-o", os.devnull]
        label = f"config {i} ({how})"
        if sub_every and i % sub_every == 0 and sub.cases < processes:
            t = time.perf_counter()
            rc, err, out, crashed = in_subprocess(argv)
            sub.record(label, rc, err, out, time.perf_counter() - t, crashed)
        t = time.perf_counter()
        rc, err, out, crashed = in_process(argv)
        inproc.record(label, rc, err, out, time.perf_counter() - t, crashed)
    return inproc, sub, kinds


# The hardening list ------------------------------------------------------------------------


def run_matrix(work: Path) -> tuple[Tally, dict[str, float]]:
    """Every case of tests/test_hostile_matrix.py, checked as the test checks it, timed."""
    sys.path.insert(0, str(ROOT))
    from tests.test_hostile_matrix import CASES, default_dtb, in_dir, run_case

    dtb = default_dtb()
    tally, times = Tally(), {}
    for name, case in CASES.items():
        t = work / f"matrix-{len(times)}"
        t.mkdir()
        crashed, seconds = "", 0.0
        try:
            seconds = run_case(t, in_dir(t, case, dtb))
        except AssertionError as e:
            crashed = f"check failed: {str(e)[:200]}"
        times[name] = seconds
        tally.record_checked(f"matrix {name}", case.rc, seconds, crashed)
    return tally, times


# Report -----------------------------------------------------------------------------------


def peak_rss() -> tuple[int, int]:
    """Peak resident bytes of this process and of the largest child (Linux: KiB units)."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return me, child


def main_bench(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blobs", type=int, default=20_000)
    ap.add_argument("--configs", type=int, default=5_000)
    ap.add_argument("--processes", type=int, default=400, help="cases run in fresh processes")
    ap.add_argument("--seed", type=int, default=20_240_601)
    ap.add_argument("--json", metavar="FILE", help="also write the figures here")
    ap.add_argument("--no-matrix", action="store_true", help="skip the hardening list's own cases")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fdtgen-hostile-") as tmp:
        work = Path(tmp)
        share = args.processes * args.blobs // max(1, args.blobs + args.configs)
        blobs = run_blobs(args.blobs, share, rng, work)
        configs = run_configs(args.configs, args.processes - share, rng, work)
        me = peak_rss()[0]  # before the matrix, whose setup makes large files in this process
        matrix = (Tally(), {}) if args.no_matrix else run_matrix(work)
    child = peak_rss()[1]
    tallies = {
        "blobs in process": blobs[0],
        "blobs in processes": blobs[1],
        "configs in process": configs[0],
        "configs in processes": configs[1],
        "hardening list": matrix[0],
    }
    print(f"fdtgen hostile input, seed {args.seed}, {time.perf_counter() - started:.0f} s")
    for name, t in tallies.items():
        status = ", ".join(f"{k}: {v}" for k, v in sorted(t.by_status.items()))
        print(
            f"  {name:22} {t.cases:6} cases (status {status}); tracebacks {t.tracebacks}, "
            f"other status {t.bad_status}, multi-line errors {t.multi_line}, "
            f"secrets shown {t.leaked}, failed checks {t.failed}; "
            f"slowest {t.max_seconds:.3f} s ({t.slowest})"
        )
        for example in t.examples:
            print(f"    {example}")
    print(f"  mutations: blobs {blobs[2]}; configs {configs[2]}")
    if matrix[1]:
        slow = sorted(matrix[1].items(), key=lambda kv: -kv[1])[:3]
        print("  hardening list, slowest: " + ", ".join(f"{k} {v:.2f} s" for k, v in slow))
    total = list(tallies.values())
    slowest = max(total, key=lambda t: t.max_seconds)
    checks = [
        ("tracebacks == 0", sum(t.tracebacks for t in total) == 0,
         str(sum(t.tracebacks for t in total))),
        ("exit status other than 0/1/2 == 0", sum(t.bad_status for t in total) == 0,
         str(sum(t.bad_status for t in total))),
        ("multi-line errors == 0", sum(t.multi_line for t in total) == 0,
         str(sum(t.multi_line for t in total))),
        ("unknown keys' values shown == 0", sum(t.leaked for t in total) == 0,
         str(sum(t.leaked for t in total))),
        ("hardening-list cases not as documented == 0", sum(t.failed for t in total) == 0,
         str(sum(t.failed for t in total))),
        (f"slowest case <= {MAX_SECONDS:g} s", slowest.max_seconds <= MAX_SECONDS,
         f"{slowest.max_seconds:.3f} s"),
        ("peak RSS <= 200 MiB", max(me, child) <= MAX_RSS,
         f"{me / MiB:.0f} MiB in process, {child / MiB:.0f} MiB largest child"),
    ]  # fmt: skip
    for name, ok, shown in checks:
        print(f"  {'PASS' if ok else 'FAIL'} {name} ({shown})")
    if args.json:
        figures = {
            "seed": args.seed,
            "tallies": {k: {**v.__dict__, "examples": v.examples} for k, v in tallies.items()},
            "peak_rss_bytes": {"process": me, "largest_child": child},
            "hardening_list_s": matrix[1],
        }
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main_bench())
