"""Corrupted blobs never crash verify, diff or dts, and each one is parsed or cleanly rejected.

A seeded generator (reproducible: each case is ``(shard, index)``) corrupts
valid blobs: truncations, bit flips, lying header sizes and offsets, token and
length words, broken strings, deep nesting, spliced and appended bytes. 10 000
cases go through the library paths in-process; 200 go through the real command
line in subprocesses, where a crash would show as a signal or a traceback.
"""

from __future__ import annotations

import random
import re
import struct
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from fdtgen.boot.image import declared_kernel
from fdtgen.checks import Options, verify_parsed
from fdtgen.devicetree.machine import Machine
from fdtgen.diff import diff_trees
from fdtgen.errors import BlobError
from fdtgen.fdt.dts import to_dts
from fdtgen.fdt.parse import parse, parse_blob
from fdtgen.fdt.phandles import with_labels
from fdtgen.fdt.tree import DeviceTree
from fdtgen.manifest import manifest_for
from fdtgen.pipeline import Boot, build
from fdtgen.template.load import load_template

from .conftest import FIXTURES, run_fdtgen
from .test_parse import BEGIN, END_NODE, NOP, PROP, begin, header, raw_blob, relayout, u32
from .treeview import ours

SEED = 0x0D00_DFEE
SHARDS = 8
CASES_PER_SHARD = 1250  # 10 000 in all
CLI_SHARDS = 2
CLI_CASES_PER_SHARD = 100  # 200 in all
DTC_SAMPLE = 30  # parsed mutants per shard also compiled back through dtc

ERROR_RE = re.compile(r"^dtb offset 0x[0-9a-f]+: .*expected.*found")
INTERESTING = (
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    9,
    0x10,
    0x28,
    0x7F,
    0xFF,
    0x1000,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFF0,
    0xFFFF_FFFC,
    0xFFFF_FFFF,
)


def _corpus() -> list[bytes]:
    small = build(Machine(vcpus=2, virtio=2)).blob
    full = build(Machine(vcpus=3)).blob
    qemu = relayout((FIXTURES / "qemu" / "virt-gicv3.dtb").read_bytes())  # packed: same tree, 8 KiB
    h = header(small)
    st = small[h["off_dt_struct"] : h["off_dt_struct"] + h["size_dt_struct"]]
    strings = small[h["off_dt_strings"] : h["off_dt_strings"] + h["size_dt_strings"]]
    nops = raw_blob(
        st[:8] + u32(NOP) + st[8:-8] + u32(NOP, NOP) + st[-8:], strings, order="Ssm", pad=12
    )
    v16 = relayout(small, version=16, last_comp_version=16, size_dt_struct=0)
    reserved = raw_blob(st, strings, rsv=struct.pack(">4Q", 0x8000_0000, 0x1000, 0, 0))
    return [small, full, qemu, nops, v16, reserved]


CORPUS = _corpus()
BASE_TREES = [parse(b) for b in CORPUS]
SQUIB = load_template("squib")
# The manifest fdtgen writes for CORPUS[0]'s machine with a 16 MiB kernel, describing
# CORPUS[0] itself (built without one) as the DTB.
_PLACED = build(
    Machine(vcpus=2, virtio=2),
    Boot(kernel=declared_kernel(0x100_0000, text_offset=0, image_size=0x100_0000)),
)
MANIFEST = manifest_for(_PLACED)
MANIFEST["dtb"]["size"] = len(CORPUS[0])


def _blocks(data: bytes) -> tuple[int, int, int, int]:
    h = header(data)
    return (
        h["off_dt_struct"],
        h["size_dt_struct"] or len(data) - h["off_dt_struct"],
        h["off_dt_strings"],
        h["size_dt_strings"],
    )


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    span = 64 if rng.random() < 0.33 else len(out)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(min(span, len(out)))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def header_field(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    field = rng.randrange(1, 10)
    old = struct.unpack_from(">I", out, 4 * field)[0]
    value = rng.choice(
        [
            *INTERESTING,
            len(data),
            len(data) + rng.randint(-9, 9),
            old + rng.choice((-8, -4, -1, 1, 4, 8)),
            rng.getrandbits(32),
            struct.unpack_from(">I", out, 4 * rng.randrange(1, 10))[0],
        ]
    )
    struct.pack_into(">I", out, 4 * field, value & 0xFFFF_FFFF)
    return bytes(out)


def struct_word(rng: random.Random, data: bytes) -> bytes:
    base, size, _, _ = _blocks(data)
    out = bytearray(data)
    if size < 4 or base + size > len(out):
        return flip_bits(rng, data)
    off = base + 4 * rng.randrange(size // 4)
    value = rng.choice([BEGIN, END_NODE, PROP, NOP, 9, 5, *INTERESTING, rng.getrandbits(32)])
    struct.pack_into(">I", out, off, value)
    return bytes(out)


def property_header(rng: random.Random, data: bytes) -> bytes:
    """A property's length or name offset lies."""
    base, size, _, strings_size = _blocks(data)
    out = bytearray(data)
    spots = [
        m.start()
        for m in re.finditer(re.escape(u32(PROP)), data[base : base + size])
        if m.start() % 4 == 0
    ]
    if not spots:
        return struct_word(rng, data)
    off = base + rng.choice(spots)
    which = rng.choice((4, 8))
    value = rng.choice([*INTERESTING, strings_size, strings_size - 1, rng.getrandbits(32)])
    struct.pack_into(">I", out, off + which, value)
    return bytes(out)


def strings_block(rng: random.Random, data: bytes) -> bytes:
    """NULs removed, names changed to characters DTS cannot spell."""
    _, _, base, size = _blocks(data)
    out = bytearray(data)
    if not size or base + size > len(out):
        return flip_bits(rng, data)
    for _ in range(rng.randint(1, 4)):
        i = base + rng.randrange(size)
        out[i] = rng.choice(b'\0A /{};="\x80\xff@#')
    return bytes(out)


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    base, size, sbase, ssize = _blocks(data)
    st, strings = data[base : base + size], data[sbase : sbase + ssize]
    depth = rng.choice((62, 63, 64, 65, 1000, 100_000))
    closed = rng.random() < 0.5
    inner = begin("n") * depth + (u32(END_NODE) * depth if closed else b"")
    return raw_blob(st[:8] + inner + st[8:], strings)


def splice(rng: random.Random, data: bytes) -> bytes:
    a, b = sorted(rng.randrange(40, len(data)) for _ in range(2))
    chunk = data[a:b]
    i = rng.randrange(40, len(data))
    if rng.random() < 0.5:
        return data[:i] + chunk + data[i:]  # header now lies about everything after i
    return data[:a] + data[b:]


def reorder(rng: random.Random, data: bytes) -> bytes:
    """A valid re-layout, then one more corruption on top."""
    h = header(data)
    if h["version"] < 17:
        return truncate(rng, data)
    moved = relayout(
        data, rng.choice(["msS", "mSs", "smS", "sSm", "Sms", "Ssm"]), rng.choice((0, 4, 13))
    )
    return rng.choice((flip_bits, header_field, struct_word))(rng, moved)


def garbage(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.5:
        return data + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
    return data[:4] + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))


MUTATORS: list[Callable[[random.Random, bytes], bytes]] = [
    truncate,
    flip_bits,
    flip_bits,
    header_field,
    header_field,
    struct_word,
    struct_word,
    property_header,
    strings_block,
    deep_nesting,
    splice,
    reorder,
    garbage,
]


def case(shard: int, index: int) -> tuple[str, bytes, int]:
    rng = random.Random(f"{SEED}/{shard}/{index}")
    source = rng.randrange(len(CORPUS))
    mutate = rng.choice(MUTATORS)
    return mutate.__name__, mutate(rng, CORPUS[source]), source


def exercise(data: bytes, base: DeviceTree) -> tuple[str, DeviceTree | None]:
    """What every command does with a blob: parse, verify, print DTS, diff."""
    try:
        blob = parse_blob(data)
    except BlobError as e:
        text = str(e)
        assert "\n" not in text and ERROR_RE.match(text), text
        return "rejected", None
    verify_parsed(blob, data, Options(template=SQUIB, manifest=MANIFEST))
    to_dts(with_labels(blob.tree))
    diff_trees(base, blob.tree)
    diff_trees(blob.tree, base)
    return "parsed", blob.tree


@pytest.mark.parametrize("shard", range(SHARDS))
def test_corrupted_blobs_are_parsed_or_rejected_never_crash(shard, dtc):
    outcomes = {"parsed": 0, "rejected": 0}
    compiled = 0
    for index in range(CASES_PER_SHARD):
        name, data, source = case(shard, index)
        try:
            outcome, tree = exercise(data, BASE_TREES[source])
        except Exception as e:  # a crash: name the case so it can be replayed
            raise AssertionError(
                f"case ({shard}, {index}) via {name}: {type(e).__name__}: {e}"
            ) from e
        outcomes[outcome] += 1
        # A sample of the mutants that parse: their DTS compiles back to the same
        # tree (forced: dtc refuses a tree with, say, a 3-byte phandle in a blob too).
        if tree is not None and compiled < DTC_SAMPLE and data != CORPUS[source]:
            blob, _ = dtc.run(
                "-f", "-I", "dts", "-O", "dtb", "-", data=to_dts(with_labels(tree)).encode()
            )
            assert ours(parse(blob)) == ours(tree), f"case ({shard}, {index}) via {name}"
            compiled += 1
    # Both paths are exercised, not just the header checks.
    assert outcomes["parsed"] >= CASES_PER_SHARD // 20, outcomes
    assert outcomes["rejected"] >= CASES_PER_SHARD // 4, outcomes
    assert compiled == DTC_SAMPLE


def _run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return run_fdtgen(*args, timeout=60)


@pytest.mark.parametrize("shard", range(CLI_SHARDS))
def test_corrupted_blobs_through_the_cli_exit_0_1_or_2_with_one_line_errors(tmp_path, shard):
    jobs = []
    reference = tmp_path / "reference.dtb"
    reference.write_bytes(CORPUS[0])
    for index in range(CLI_CASES_PER_SHARD):
        name, data, _ = case(100 + shard, index)
        path = tmp_path / f"case-{index}.dtb"
        path.write_bytes(data)
        command = (["verify", str(path)], ["dts", str(path)], ["diff", str(reference), str(path)])[
            index % 3
        ]
        jobs.append((index, name, command))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: (job, _run_cli(job[2])), jobs))
    for (index, name, command), r in results:
        where = f"case ({100 + shard}, {index}) via {name}: fdtgen {' '.join(command)}"
        assert r.returncode in (0, 1, 2), f"{where}: exit {r.returncode}\n{r.stderr}"
        assert "Traceback" not in r.stderr, f"{where}\n{r.stderr}"
        if r.returncode == 2:
            assert r.stderr.startswith("fdtgen: error: ") and r.stderr.count("\n") == 1, (
                f"{where}\n{r.stderr}"
            )
        elif command[0] == "dts":  # a header field DTS cannot carry is noted, not an error
            notes = r.stderr.splitlines()
            assert all(n.startswith("fdtgen: note: ") for n in notes), f"{where}\n{r.stderr}"
        else:
            assert r.stderr == "", f"{where}\n{r.stderr}"
