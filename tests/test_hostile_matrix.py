"""The hardening list, case by case, through the real command line.

Every case runs ``python -m fdtgen`` in a fresh process limited to 200 MiB of
address space (a generous timeout only catches a hang) and is held to the same
rules. A rejected case: its exit status, exactly one stderr line that starts
with the file or ``command line`` it is about and holds the key, no
traceback, and every path in its directory as it was (type, inode, bytes;
nothing created). A documented success (a device, FIFO or symlink output; a
gzip kernel of 200,000 members) keeps each path's type and inode except the
files it is meant to write, and is checked for what it wrote.

The cases are numbered as the hardening list is: 1 output paths, 2 outputs
naming each other or an input, 3 inputs that are not regular files or are
too large, 4 input that used to raise, 5 gzip kernels, 6 templates verify
would flag, 7 errors naming file and key, 8 unknown keys, 9 a kernel that is
a text file, 10 ``build-many --root``, 11 size units.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from .test_hardening_io import FifoReader, char_device, fdtgen, gzip_bomb, image
from .test_hostile import NESTED_JSON, NESTED_TOML, SQUIB, squib_with

MiB = 1 << 20
GiB = 1 << 30
BIG = 16 * MiB  # files larger than this are compared by size, not read

# What a path in a case's directory is made as (besides bytes or text).
FIFO, DIR = ("fifo",), ("dir",)
NULL, FULL, ZERO = ("dev", 1, 3), ("dev", 1, 7), ("dev", 1, 5)


def cmd(text: str) -> tuple[str, ...]:
    """A command's words (no word of these cases holds a space)."""
    return tuple(text.split())


def link(target: str) -> tuple[str, str]:
    return ("link", target)


def sparse(size: int) -> tuple[str, int]:
    return ("sparse", size)


@dataclass(frozen=True)
class Case:
    """``argv`` (``{t}``: the case's directory) run with ``files`` made in ``{t}``.

    A rejected case (``rc`` 2) prints one line starting ``fdtgen: error: WHERE``
    and holding each of ``needles`` and none of ``hidden``. ``writes`` names the
    paths a success may change (same type); ``check`` looks at what it wrote.
    """

    argv: tuple[str, ...]
    files: dict[str, object] = field(default_factory=dict)
    where: str = ""
    needles: tuple[str, ...] = ()
    rc: int = 2
    hidden: tuple[str, ...] = ()
    stdin: bytes | str | None = None  # bytes, or the name of a file in {t} to read
    reader: str | None = None  # a FIFO output read while the command runs
    writes: tuple[str, ...] = ()
    check: Callable[[Path, CompletedProcess[bytes], bytes], None] | None = None


def make(t: Path, files: dict[str, object]) -> None:
    for name, what in files.items():
        if callable(what):  # large contents are made only by the case that needs them
            what = what()
        p = t / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, bytes | str):
            p.write_bytes(what.encode() if isinstance(what, str) else what)
        elif what == FIFO:
            os.mkfifo(p)
        elif what == DIR:
            p.mkdir()
        elif isinstance(what, tuple) and what[0] == "dev":
            char_device(p, int(what[1]), int(what[2]))
        elif isinstance(what, tuple) and what[0] == "file":  # bytes with a mode
            p.write_bytes(what[1])
            p.chmod(what[2])
        elif isinstance(what, tuple) and what[0] == "link":
            p.symlink_to(str(what[1]).format(t=t))
        elif isinstance(what, tuple) and what[0] == "sparse":
            with open(p, "wb") as f:
                f.truncate(int(what[1]))
        else:
            raise AssertionError(f"unknown file kind {what!r}")


def state(t: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``t``: type, inode, and the bytes of a file (or a link's target)."""
    out: dict[str, tuple[object, ...]] = {}
    for p in sorted(t.rglob("*")):
        st = p.lstat()
        kind = stat.S_IFMT(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            body: object = os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            body = st.st_size if st.st_size > BIG else p.read_bytes()
        else:
            body = None
        out[str(p.relative_to(t))] = (kind, st.st_ino, st.st_mode & 0o7777, body)
    return out


def run_case(t: Path, case: Case) -> float:
    """Run ``case`` in directory ``t``, check it, and return the command's wall time
    (bench/hostile.py reports it; no test asserts a time)."""
    make(t, case.files)
    before = state(t)
    argv = [a.format(t=t) for a in case.argv]
    reader = FifoReader(t / case.reader) if case.reader else None
    started = time.perf_counter()
    if isinstance(case.stdin, str):
        with open(t / case.stdin, "rb") as f:
            r = fdtgen(*argv, stdin=f.fileno())
    else:
        r = fdtgen(*argv, stdin=case.stdin)
    elapsed = time.perf_counter() - started
    data = reader.finish() if reader else b""
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err and "MemoryError" not in err, err
    assert r.returncode == case.rc, (r.returncode, err)
    after = state(t)
    if case.rc == 2:
        assert err.count("\n") == 1, err
        assert err.startswith("fdtgen: error: " + case.where.format(t=t)), err
        for needle in case.needles:
            assert needle.format(t=t) in err, err
        assert after == before, "a rejected command changed its directory"
    else:
        for name, was in before.items():
            now = after.get(name)
            assert now is not None, f"{name} is gone"
            if name in case.writes:
                assert now[0] == was[0], f"{name} changed type"
            else:
                assert now == was, f"{name} changed"
    for secret in case.hidden:
        assert secret not in err, err
    if case.check is not None:
        case.check(t, r, data)
    return elapsed


# 1. Output paths -------------------------------------------------------------------------


def _dtb_written(name: str) -> Callable[[Path, CompletedProcess[bytes], bytes], None]:
    def check(t: Path, r: CompletedProcess[bytes], data: bytes) -> None:
        got = data if name == "" else (t / name).read_bytes()
        assert got[:4] == bytes.fromhex("d00dfeed") and len(got) > 1000

    return check


def _new_target(t: Path, r: CompletedProcess[bytes], data: bytes) -> None:
    assert os.readlink(t / "g.dtb") == str(t / "real" / "new.dtb")
    assert (t / "real" / "new.dtb").read_bytes()[:4] == bytes.fromhex("d00dfeed")
    assert sorted(p.name for p in (t / "real").iterdir()) == ["new.dtb"]


def _replaced_target(t: Path, r: CompletedProcess[bytes], data: bytes) -> None:
    _dtb_written("real/g.dtb")(t, r, data)
    assert (t / "real" / "g.dtb").stat().st_mode & 0o777 == 0o600  # permissions kept
    assert sorted(p.name for p in (t / "real").iterdir()) == ["g.dtb"]


CASES: dict[str, Case] = {
    "1.1-output-device-node": Case(
        ("build", "-o", "{t}/null", "--dts", "{t}/null"), {"null": NULL}, rc=0
    ),
    "1.2-output-full-device": Case(
        ("build", "-o", "{t}/full"),
        {"full": FULL},
        "{t}/full: output: cannot write",
        ("No space left on device",),
    ),
    "1.3-output-fifo": Case(
        ("build", "-o", "{t}/out.fifo"),
        {"out.fifo": FIFO},
        rc=0,
        reader="out.fifo",
        check=_dtb_written(""),
    ),
    "1.4-output-symlink-to-file": Case(
        ("build", "-o", "{t}/g.dtb"),
        {"real/g.dtb": ("file", b"old", 0o600), "g.dtb": link("{t}/real/g.dtb")},
        rc=0,
        writes=("real/g.dtb",),
        check=_replaced_target,
    ),
    "1.5-output-symlink-to-missing-target": Case(
        ("build", "-o", "{t}/g.dtb"),
        {"real": DIR, "g.dtb": link("{t}/real/new.dtb")},
        rc=0,
        check=_new_target,
    ),
    "1.6-output-directory": Case(
        ("build", "-o", "{t}/d"), {"d": DIR}, "{t}/d: output: is a directory"
    ),
    # 2. Outputs naming each other or an input ----------------------------------------------
    "2.1-output-and-manifest-the-same": Case(
        ("build", "--kernel", "{t}/Image", "-o", "{t}/x", "--manifest", "{t}/x"),
        {"Image": image(), "x": b"keep me"},
        "{t}/x: output: the same file as output '{t}/x'",
    ),
    "2.2-output-and-dts-the-same": Case(
        ("build", "-o", "{t}/x", "--dts", "{t}/link"),
        {"x": b"keep me", "link": link("{t}/x")},
        "{t}/link: output: the same file as output '{t}/x'",
    ),
    "2.3-output-is-the-kernel": Case(
        ("build", "--kernel", "{t}/Image", "-o", "{t}/Image"),
        {"Image": image()},
        "{t}/Image: output: is the kernel input",
    ),
    "2.4-output-is-the-config": Case(
        ("build", "{t}/vm.toml", "-o", "{t}/vm.toml"),
        {"vm.toml": "vcpus = 2\n"},
        "{t}/vm.toml: output: is the config input",
    ),
}

# 3. Inputs: /dev/zero (a character device) and a FIFO in every input role -----------------

_ROLES = {
    "config": (("build", "{t}/bad", "-o", "{t}/o.dtb"), "{t}/bad: "),
    # a template path names a setting: the line starts where it was set, then the path
    "template": (
        ("build", "--template", "{t}/bad.toml", "-o", "{t}/o.dtb"),
        "command line: template: '",
    ),
    "kernel": (("build", "--kernel", "{t}/bad", "-o", "{t}/o.dtb"), "{t}/bad: kernel: "),
    "initrd": (
        ("build", "--kernel", "{t}/Image", "--initrd", "{t}/bad", "-o", "{t}/o.dtb"),
        "{t}/bad: initrd: ",
    ),
    "dts-blob": (("dts", "{t}/bad", "-o", "{t}/o.dts"), "{t}/bad: "),
    "verify-blob": (("verify", "{t}/bad"), "{t}/bad: "),
    "diff-blob": (("diff", "{t}/g.dtb", "{t}/bad"), "{t}/bad: "),
    "manifest": (("verify", "{t}/g.dtb", "--manifest", "{t}/bad"), "{t}/bad: "),
    "codegen-check": (("codegen", "--check", "{t}/bad"), "{t}/bad: "),
}
for _role, (_argv, _where) in _ROLES.items():
    for _kind, _node, _rule in (("zero", ZERO, "a character device"), ("fifo", FIFO, "a FIFO")):
        _name = "bad.toml" if _role == "template" else "bad"
        CASES[f"3-{_kind}-as-{_role}"] = Case(
            _argv,
            {"Image": image(), "g.dtb": "<built>", _name: _node},
            _where if _role == "template" else _where + "not a regular file",
            ("not a regular file", _rule),
        )
CASES |= {
    "3-endless-standard-input": Case(
        ("verify", "-"),
        {"zero": ZERO},
        "standard input: too large: more than the 64 MiB cap",
        ("--max-blob-size",),
        stdin="zero",
    ),
    "3-sparse-3gib-initrd": Case(
        ("build", "--kernel", "{t}/Image", "--initrd", "{t}/initrd", "-o", "{t}/g.dtb"),
        {"Image": image(), "initrd": sparse(3 * GiB)},
        "{t}/initrd: initrd: too large: 0xc0000000 bytes, over the 1 GiB cap",
        ("--max-initrd-size",),
    ),
    "3-sparse-3gib-generated-file": Case(
        ("codegen", "--check", "{t}/layout.rs"),
        {"layout.rs": sparse(3 * GiB)},
        "{t}/layout.rs: too large: 0xc0000000 bytes, over the 16 MiB cap",
    ),
    "3-codegen-output-fifo": Case(
        ("codegen", "--lang", "c", "-o", "{t}/out.fifo"),
        {"out.fifo": FIFO},
        rc=0,
        reader="out.fifo",
    ),
    "3-initrd-over-a-lowered-cap": Case(
        cmd("build --kernel {t}/Image --initrd {t}/initrd -o {t}/g.dtb --max-initrd-size 1KiB"),
        {"Image": image(), "initrd": b"070701" + bytes(2000)},
        "{t}/initrd: initrd: too large: 0x7d6 bytes, over the 1 KiB cap",
    ),
}

# 4. Input that used to raise -------------------------------------------------------------

_NOT_UTF8 = SQUIB.encode() + b"\n# \xff\n"
_UTF8_RULE = f"{{t}}/mine.toml: not UTF-8 text: invalid start byte at byte {len(SQUIB) + 3}"
CASES |= {
    "4-toml-config-500-deep": Case(
        ("build", "{t}/vm.toml", "-o", "{t}/g.dtb"),
        {"vm.toml": "vcpus = 2\n" + NESTED_TOML},
        "{t}/vm.toml: not valid TOML: arrays or tables nested too deeply",
    ),
    "4-toml-template-500-deep": Case(
        ("build", "--template", "{t}/mine.toml", "-o", "{t}/g.dtb"),
        {"mine.toml": SQUIB + NESTED_TOML},
        "{t}/mine.toml: not valid TOML: arrays or tables nested too deeply",
    ),
    "4-json-config-1000-deep": Case(
        ("build", "{t}/vm.json", "-o", "{t}/g.dtb"),
        {"vm.json": NESTED_JSON},
        "{t}/vm.json: not valid JSON: arrays or tables nested too deeply",
    ),
    "4-json-build-many-stdin-1000-deep": Case(
        ("build-many", "-", "-o", "{t}/out"),
        stdin=(NESTED_JSON + "\n").encode(),
        where="stdin:1: not valid JSON: arrays or tables nested too deeply",
    ),
    "4-vcpus-4301-digits": Case(
        ("build", "{t}/vm.toml", "-o", "{t}/g.dtb"),
        {"vm.toml": "vcpus = " + "9" * 4301 + "\n"},
        "{t}/vm.toml: not valid TOML: an integer has more than 4300 digits",
    ),
    "4-non-utf8-template-build": Case(
        ("build", "--template", "{t}/mine.toml", "-o", "{t}/g.dtb"),
        {"mine.toml": _NOT_UTF8},
        _UTF8_RULE,
    ),
    "4-non-utf8-template-verify": Case(
        ("verify", "{t}/g.dtb", "--template", "{t}/mine.toml"),
        {"mine.toml": _NOT_UTF8, "g.dtb": "<built>"},
        _UTF8_RULE,
    ),
    "4-non-utf8-template-templates-show": Case(
        ("templates", "show", "{t}/mine.toml", "--svg", "{t}/m.svg"),
        {"mine.toml": _NOT_UTF8},
        _UTF8_RULE,
    ),
    "4-non-utf8-template-layout": Case(
        ("layout", "--template", "{t}/mine.toml", "--svg", "{t}/m.svg"),
        {"mine.toml": _NOT_UTF8},
        _UTF8_RULE,
    ),
    "4-surrogate-entropy-seed": Case(
        ("build", "{t}/vm.json", "-o", "{t}/g.dtb"),
        {"vm.json": '{"entropy_seed": "\\udc80"}'},
        "{t}/vm.json: entropy_seed: '\\udc80': is not valid UTF-8 text (it holds a lone surrogate)",
    ),
    "4-surrogate-kernel": Case(
        ("build", "{t}/vm.json", "-o", "{t}/g.dtb"),
        {"vm.json": '{"kernel": "\\udc80"}'},
        "{t}/vm.json: kernel: '",
        ("is not valid UTF-8 text (it holds a lone surrogate)",),
    ),
    "4-surrogate-initrd": Case(
        ("place", "{t}/vm.json"),
        {"vm.json": '{"kernel": {"size": 4096}, "initrd": "\\udc80"}'},
        "{t}/vm.json: initrd: '",
        ("is not valid UTF-8 text (it holds a lone surrogate)",),
    ),
    "4-template-name-300-chars": Case(
        ("build", "--template", "{t}/" + "t" * 300 + ".toml", "-o", "{t}/g.dtb"),
        where="command line: template: '",
        needles=(" chars): cannot read: File name too long",),
    ),
}

# 5. Gzip kernels -------------------------------------------------------------------------


def _members_read(t: Path, r: CompletedProcess[bytes], data: bytes) -> None:
    m = json.loads((t / "boot.json").read_text())
    assert (m["kernel"]["format"], m["kernel"]["size"]) == ("gzip", 4 * MiB)
    (entry,) = m["inputs"]
    assert entry["sha256"] == hashlib.sha256((t / "Image.gz").read_bytes()).hexdigest()


def _image_inflated(t: Path, r: CompletedProcess[bytes], data: bytes) -> None:
    work = t / "work"
    assert sorted(p.name for p in work.iterdir()) == [
        "Image", "guest.dtb", "manifest.json", "trampoline.bin"
    ]  # fmt: skip
    digest = hashlib.sha256()
    with open(work / "Image", "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(image(160 * MiB)).hexdigest()
    assert f"file={work / 'Image'},addr=" in r.stdout.decode()


CASES |= {
    "5-gzip-image-and-200000-empty-members": Case(
        ("build", "--kernel", "{t}/Image.gz", "-o", "{t}/g.dtb", "--manifest", "{t}/boot.json"),
        {"Image.gz": lambda: gzip.compress(image(4 * MiB)) + gzip.compress(b"") * 200_000},
        rc=0,
        check=_members_read,
    ),
    "5-gzip-bomb-10mb": Case(
        ("build", "--kernel", "{t}/Image.gz", "-o", "{t}/g.dtb"),
        {"Image.gz": lambda: gzip_bomb(10 * GiB)},
        "{t}/Image.gz: kernel: too large: the gzip data inflates past the 256 MiB cap",
        ("--max-kernel-size",),
    ),
    "5-gzip-over-a-lowered-cap": Case(
        ("build", "--kernel", "{t}/Image.gz", "-o", "{t}/g.dtb", "--max-kernel-size", "1MiB"),
        {"Image.gz": lambda: gzip.compress(image(2 * MiB))},
        "{t}/Image.gz: kernel: too large: the gzip data inflates past the 1 MiB cap",
    ),
    "5-qemu-inflates-a-160mib-image-as-a-stream": Case(
        cmd(
            "qemu --template qemu-virt --memory 1GiB --kernel {t}/Image.gz --workdir {t}/work "
            "--print"
        ),
        {"Image.gz": lambda: gzip.compress(image(160 * MiB), compresslevel=1)},
        rc=0,
        check=_image_inflated,
    ),
    "5-qemu-bomb": Case(
        cmd("qemu --template qemu-virt --kernel {t}/Image.gz --workdir {t}/w --print"),
        {"Image.gz": lambda: gzip_bomb(10 * GiB)},
        "{t}/Image.gz: kernel: too large: the gzip data inflates past the 256 MiB cap",
    ),
}

# 6. Templates verify would flag; 7. errors naming file and key ----------------------------


def _template(text: str, key: str) -> Case:
    return Case(
        ("build", "--template", "{t}/mine.toml", "-o", "{t}/g.dtb"),
        {"mine.toml": text},
        "{t}/mine.toml: " + key,
    )


_UART_WIDE = SQUIB.replace("[uart]\nbase = 0x0E0A_0000", "[uart]\nbase = 0x1_0000_0000_0000")
assert _UART_WIDE != SQUIB and "address_width" not in SQUIB
CASES |= {
    "6-timer-no-ppis": _template(squib_with("ppis = [13, 14, 11, 10]", "ppis = []"), "timer.ppis"),
    "6-timer-one-ppi": _template(
        squib_with("ppis = [13, 14, 11, 10]", "ppis = [13]"), "timer.ppis: [13]: needs 4"
    ),
    "6-uart-past-the-default-address-width": _template(
        _UART_WIDE,
        "region 'uart0' [0x1000000000000, 0x1000000001000) ends past the 48-bit guest physical "
        "address limit 0x1000000000000 (the default address width)",
    ),
    "6-gicv3-redist-stride-64kib": _template(
        squib_with('redist_stride = "128KiB"', 'redist_stride = "64KiB"'),
        "gic.redist_stride: 0x10000: must be a multiple of 0x10000 and at least 0x20000",
    ),
    "7-virtio-stride-0": _template(
        squib_with('stride = "4KiB"', "stride = 0"),
        "virtio.stride: 0x0: must be a power of 2 >= 0x200",
    ),
    "7-vcpus-over-the-template-limit": Case(
        ("build", "{t}/vm.toml", "-o", "{t}/g.dtb"),
        {"vm.toml": "vcpus = 124\n"},
        "{t}/vm.toml: vcpus: 124 is outside 1..32 (template 'squib' max_vcpus)",
    ),
    "7-build-many-option-is-the-command-line": Case(
        ("build-many", "{t}/configs", "-o", "{t}/out", "--template", "nope"),
        {"configs/vm.toml": "vcpus = 2\n"},
        "command line: template: 'nope' is not a built-in template",
    ),
    "7-build-many-kernel-option-is-the-file": Case(
        ("build-many", "{t}/configs", "-o", "{t}/out", "--kernel", "{t}/vm.toml"),
        {"configs/vm.toml": "vcpus = 2\n", "vm.toml": "vcpus = 2\n"},
        "{t}/vm.toml: kernel: truncated: 10 bytes, shorter than the 64-byte arm64 Image header",
    ),
    # 8. Unknown keys; 9. a text file as the kernel -------------------------------------------
    "8-unknown-key-value-not-echoed": Case(
        ("build", "{t}/vm.toml", "-o", "{t}/g.dtb"),
        {"vm.toml": 'api_token = "hunter2-secret"\n'},
        "{t}/vm.toml: api_token: unknown key; valid keys: template, vcpus,",
        hidden=("hunter2",),
    ),
    "9-kernel-etc-passwd": Case(
        ("build", "{t}/vm.toml", "-o", "{t}/g.dtb"),
        {"vm.toml": 'kernel = "/etc/passwd"\n'},
        "/etc/passwd: kernel: ",
        ("no ARM\\x64 magic at 0x38",),
        hidden=("root:", "daemon", "/bin/", "726f6f74"),
    ),
}

# 10. build-many --root -------------------------------------------------------------------

_FLEET = {
    "root/Image": image(),
    "root/configs/vm.toml": 'kernel = "../Image"\n',
    "outside/Image": image(),
    "outside/initrd": b"070701" + bytes(100),
    "outside/t.toml": SQUIB,
}
_BUILD_MANY = ("build-many", "{t}/root/configs", "--root", "{t}/root", "-o", "{t}/root/out")


def _fleet(config: str, **extra: object) -> dict[str, object]:
    return {**_FLEET, "root/configs/vm.toml": config, **extra}


CASES |= {
    "10-root-kernel-outside": Case(
        _BUILD_MANY,
        _fleet('kernel = "{t}/outside/Image"\n'.replace("{t}", "../../outside/..")),
        "{t}/root/configs/vm.toml: kernel: ",
        ("outside --root",),
    ),
    "10-root-kernel-symlink-out": Case(
        _BUILD_MANY,
        _fleet('kernel = "../escape"\n', **{"root/escape": link("{t}/outside/Image")}),
        "{t}/root/configs/vm.toml: kernel: '",
        ("outside --root",),
    ),
    "10-root-initrd-outside": Case(
        _BUILD_MANY,
        _fleet('kernel = "../Image"\ninitrd = "../../outside/initrd"\n'),
        "{t}/root/configs/vm.toml: initrd: ",
        ("outside --root",),
    ),
    "10-root-template-outside": Case(
        _BUILD_MANY,
        _fleet('kernel = "../Image"\ntemplate = "../../outside/t.toml"\n'),
        "{t}/root/configs/vm.toml: template: ",
        ("outside --root",),
    ),
    "10-root-output-dir-outside": Case(
        (*_BUILD_MANY[:-1], "{t}/out"),
        _FLEET,
        "command line: --output-dir: '{t}/out' resolves",
        ("outside --root",),
    ),
    "10-root-output-symlinked-out": Case(
        _BUILD_MANY,
        {**_FLEET, "root/out/vm.dtb": link("{t}/elsewhere.dtb")},
        "{t}/root/out/vm.dtb: output: ",
        ("outside --root",),
    ),
    # 11. Units --------------------------------------------------------------------------------
    "11-3GB-in-a-config": Case(
        ("build", "{t}/vm.toml", "-o", "{t}/g.dtb"),
        {"vm.toml": 'memory = "3GB"\n'},
        "{t}/vm.toml: memory: '3GB': decimal units are not accepted; write 3GiB (binary)",
    ),
    "11-3000MB-in-a-config": Case(
        ("build", "{t}/vm.toml", "-o", "{t}/g.dtb"),
        {"vm.toml": 'memory = "3000MB"\n'},
        "{t}/vm.toml: memory: '3000MB': decimal units are not accepted; write 3000MiB (binary)",
    ),
    "11-3GB-as-an-option": Case(
        ("build", "--memory", "3GB", "-o", "{t}/g.dtb"),
        where="command line: memory: '3GB': decimal units are not accepted; write 3GiB (binary)",
    ),
}


def default_dtb() -> bytes:
    r = fdtgen("build", "-o", "-")
    assert r.returncode == 0, r.stderr
    return r.stdout


def in_dir(t: Path, case: Case, dtb: bytes) -> Case:
    """``case`` with its files' ``{t}`` filled in and ``<built>`` as ``dtb``."""
    files = {k: (dtb if v == "<built>" else v) for k, v in case.files.items()}
    files = {k: (v.replace("{t}", str(t)) if isinstance(v, str) else v)
             for k, v in files.items()}  # fmt: skip
    return Case(**{**case.__dict__, "files": files})


@pytest.fixture(scope="module")
def built_dtb() -> bytes:
    return default_dtb()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_case(tmp_path: Path, built_dtb: bytes, case: Case) -> None:
    run_case(tmp_path, in_dir(tmp_path, case, built_dtb))


def test_every_numbered_case_of_the_list_is_here():
    numbers = {name.split("-")[0].split(".")[0] for name in CASES}
    assert numbers == {str(n) for n in range(1, 12)}
