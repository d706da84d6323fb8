"""File input and output under hostile paths, run through the CLI as a user runs it.

Every case runs ``python -m fdtgen`` in a fresh process limited to 200 MiB of
address space (``RLIMIT_AS``) and a generous timeout that only catches a
hang. A rejected case must give exit status 2, exactly one stderr line
(``fdtgen: error: ...``), no traceback, and leave every file as it was.
Device nodes are made in the test's own directory (``mknod``, as root), never
written at their real ``/dev`` paths. The cases of the hardening list itself
(device, FIFO, symlink and directory outputs; /dev/zero and FIFO inputs; gzip
bombs; ``build-many --root``) run in :mod:`tests.test_hostile_matrix`, with
these helpers; this file holds the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

from .conftest import ROOT

MEMORY_LIMIT = 200 << 20  # bytes of address space per fdtgen process
HANG = 60  # seconds: only a hang takes this long
MiB = 1 << 20
GiB = 1 << 30
SECRET = b"root:x:0:0:TOPSECRET-CONTENT-NEVER-PRINTED:/root:/bin/bash\n" * 4


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def fdtgen(
    *args: str | Path, stdin: int | bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``fdtgen ARGS`` in a fresh, memory-limited process (bytes out)."""
    kw: dict[str, object] = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
    return subprocess.run(
        [sys.executable, "-m", "fdtgen", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        timeout=HANG,
        preexec_fn=_limit_memory,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def rejected(r: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    """The one error line of a rejected run (status 2, no traceback), holding ``needles``."""
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, (r.returncode, err)
    assert err.startswith("fdtgen: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "MemoryError" not in err
    for needle in needles:
        assert needle in err, err
    return err


def snapshot(d: Path) -> dict[str, tuple[str, bytes]]:
    """Every entry under ``d``: its kind and, for a regular file or a link, its content."""
    out = {}
    for p in sorted(d.rglob("*")):
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[str(p)] = ("link", os.readlink(p).encode())
        elif stat.S_ISREG(st.st_mode):
            out[str(p)] = ("file", p.read_bytes())
        else:
            out[str(p)] = (oct(stat.S_IFMT(st.st_mode)), b"")
    return out


def image(size: int = 64 * 1024, image_size: int = 0x1AB_0000) -> bytes:
    """A raw arm64 Image: the booting.rst header, then filler up to ``size``."""
    header = struct.pack(
        "<IIQQQQQQ4sI", 0x91005A4D, 0x14000000, 0, image_size, 0xA, 0, 0, 0, b"ARM\x64", 0
    )
    return header + bytes(size - len(header))


def char_device(path: Path, major: int, minor: int) -> Path:
    """A character device node at ``path`` (skips where nodes cannot be made)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        with open(path, "rb", buffering=0):
            pass
    except OSError as e:
        pytest.skip(f"cannot make a device node here: {e.strerror}")
    return path


class FifoReader:
    """Reads a FIFO in a thread; ``finish()`` unblocks it if no writer ever came."""

    def __init__(self, path: Path, on_open=None) -> None:  # type: ignore[no-untyped-def]
        self.path, self.data, self.seen = path, b"", None
        self.on_open = on_open
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as f:
            if self.on_open is not None:
                self.seen = self.on_open()
            self.data = f.read()

    def finish(self) -> bytes:
        if self.thread.is_alive():
            # a reader waiting in open(): give it a writer that closes at once
            with contextlib.suppress(OSError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        self.thread.join(HANG)
        assert not self.thread.is_alive()
        return self.data


@pytest.fixture
def kernel(tmp_path: Path) -> Path:
    p = tmp_path / "Image"
    p.write_bytes(image())
    return p


# 1. Output paths ---------------------------------------------------------------------------


def test_dash_and_a_dev_stdout_link_write_standard_output(tmp_path):
    stdout = tmp_path / "stdout"  # what /dev/stdout is, without risking the real one
    stdout.symlink_to("/proc/self/fd/1")
    for path in ("-", stdout):
        r = fdtgen("build", "-o", path)
        assert r.returncode == 0, r.stderr
        assert r.stdout[:4] == bytes.fromhex("d00dfeed")
        assert stdout.is_symlink() and os.readlink(stdout) == "/proc/self/fd/1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout"]


@pytest.mark.parametrize("role", ["config", "kernel", "initrd", "template"])
def test_an_output_naming_an_input_is_refused(tmp_path, kernel, role):
    config = tmp_path / "vm.toml"
    config.write_text("vcpus = 2\n")
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"070701" + bytes(100))
    template = tmp_path / "t.toml"
    template.write_text((ROOT / "templates" / "squib.toml").read_text())
    inputs = {"config": config, "kernel": kernel, "initrd": initrd, "template": template}
    before = snapshot(tmp_path)
    r = fdtgen(
        "build", config, "--kernel", kernel, "--initrd", initrd, "--template", template,
        "-o", tmp_path / "g.dtb", "--manifest", inputs[role],
    )  # fmt: skip
    rejected(r, f"the {role} input")
    assert snapshot(tmp_path) == before


def test_an_svg_over_the_config_is_refused(tmp_path):
    config = tmp_path / "vm.toml"
    config.write_text("vcpus = 2\n")
    before = snapshot(tmp_path)
    rejected(fdtgen("layout", config, "--svg", config), "the config input")
    assert snapshot(tmp_path) == before


def test_build_many_never_writes_a_manifest_over_its_config(tmp_path, kernel):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "vm.json").write_text(json.dumps({"kernel": str(kernel)}))
    before = snapshot(tmp_path)
    rejected(fdtgen("build-many", configs, "-o", configs), "the config input")
    assert snapshot(tmp_path) == before


def test_a_replaced_file_keeps_its_permissions_whatever_the_umask(tmp_path):
    out = tmp_path / "guest.dtb"
    out.write_bytes(b"old")
    out.chmod(0o664)
    code = (
        "import os, sys; os.umask(0o077); from fdtgen.files import write_outputs; "
        "write_outputs([(sys.argv[1], b'new')])"
    )
    r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o664


def test_an_output_name_of_many_multibyte_characters_is_written(tmp_path):
    from fdtgen.files import write_outputs

    out = tmp_path / ("é" * 127)  # 254 bytes: a name the file system allows
    write_outputs([(str(out), b"new")])
    assert out.read_bytes() == b"new"
    assert os.listdir(tmp_path) == [out.name]


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f".g.dtb.fdtgen-{gone.pid}-0.tmp"
    # A writer in another PID namespace looks dead here; its file is seconds old.
    fresh = tmp_path / f".g.dtb.fdtgen-{gone.pid}-1.tmp"
    live = tmp_path / f".g.dtb.fdtgen-{os.getpid()}-0.tmp"  # this test's process runs
    other = tmp_path / ".g.dtb.12345.0.tmp"  # not named as fdtgen names its files
    for p in (stale, fresh, live, other):
        p.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    for p in (stale, live, other):
        os.utime(p, (an_hour_ago, an_hour_ago))
    r = fdtgen("build", "-o", tmp_path / "g.dtb")
    assert r.returncode == 0, r.stderr
    assert not stale.exists()
    assert fresh.exists() and live.exists() and other.exists()


# 2. The DTB and the manifest ---------------------------------------------------------------


def test_the_manifest_records_the_dtbs_sha256_and_verify_finds_a_stray_dtb(tmp_path, kernel):
    dtb, manifest = tmp_path / "g.dtb", tmp_path / "boot.json"
    r = fdtgen("build", "--kernel", kernel, "--rng-seed", "32", "-o", dtb, "--manifest", manifest)
    assert r.returncode == 0, r.stderr
    m = json.loads(manifest.read_text())
    assert m["dtb"]["sha256"] == hashlib.sha256(dtb.read_bytes()).hexdigest()
    r = fdtgen("verify", dtb, "--manifest", manifest, "--no-dtc")
    assert r.returncode == 0, r.stdout
    # A loader fills the patch slots per boot: still the same DTB.
    patched = bytearray(dtb.read_bytes())
    for s in m["patch_slots"]:
        patched[s["offset"] : s["offset"] + s["size"]] = b"\xa5" * s["size"]
    filled = tmp_path / "filled.dtb"
    filled.write_bytes(patched)
    r = fdtgen("verify", filled, "--manifest", manifest, "--no-dtc")
    assert r.returncode == 0, r.stdout
    # A build killed between the renames: a new DTB beside the old manifest.
    old = dtb.read_bytes()
    r = fdtgen("build", "--kernel", kernel, "--rng-seed", "32", "--cmdline", "quiet", "-o", dtb)
    assert r.returncode == 0, r.stderr
    assert dtb.read_bytes() != old
    r = fdtgen("verify", dtb, "--manifest", manifest, "--no-dtc")
    assert r.returncode == 1
    assert b"boot.dtb-sha256" in r.stdout and m["dtb"]["sha256"].encode() in r.stdout


def test_the_dtb_is_in_place_before_the_manifest_is_written(tmp_path, kernel):
    dtb, manifest = tmp_path / "g.dtb", tmp_path / "boot.fifo"
    dtb.write_bytes(b"old")
    os.mkfifo(manifest)
    reader = FifoReader(manifest, on_open=lambda: dtb.read_bytes()[:4])
    r = fdtgen("build", "--kernel", kernel, "-o", dtb, "--manifest", manifest)
    data = reader.finish()
    assert r.returncode == 0, r.stderr
    assert reader.seen == bytes.fromhex("d00dfeed")  # already the new DTB
    assert json.loads(data)["dtb"]["sha256"] == hashlib.sha256(dtb.read_bytes()).hexdigest()


# 3. Inputs ---------------------------------------------------------------------------------


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    p = tmp_path / "g.dtb"
    assert fdtgen("build", "-o", p).returncode == 0
    return p


def test_the_blob_cap_is_an_option(blob):
    rejected(fdtgen("verify", blob, "--max-blob-size", "1KiB", "--no-dtc"), "too large", "1 KiB")
    rejected(fdtgen("verify", "-", "--max-blob-size", "1KiB", stdin=blob.read_bytes()), "too large")
    assert fdtgen("verify", blob, "--no-dtc").returncode == 0


def test_a_config_over_one_mib_is_refused_unread(tmp_path):
    config = tmp_path / "vm.toml"
    config.write_bytes(b"vcpus = 2\n" + b"#" * MiB)
    rejected(fdtgen("build", config, "-o", tmp_path / "g.dtb"), "too large", "1 MiB")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm.toml"]


def test_a_large_initrd_is_hashed_in_bounded_memory(tmp_path, kernel):
    initrd = tmp_path / "initrd"
    with open(initrd, "wb") as f:  # sparse, larger than what the process may map
        f.write(b"070701")
        f.truncate(256 * MiB)
    dtb, manifest = tmp_path / "g.dtb", tmp_path / "boot.json"
    r = fdtgen("build", "--kernel", kernel, "--initrd", initrd, "-o", dtb, "--manifest", manifest)
    assert r.returncode == 0, r.stderr
    digest = hashlib.sha256()
    with open(initrd, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            digest.update(chunk)
    (entry,) = [i for i in json.loads(manifest.read_text())["inputs"] if i["role"] == "initrd"]
    assert entry["size"] == 256 * MiB and entry["sha256"] == digest.hexdigest()


# 4. Gzip kernels ---------------------------------------------------------------------------


def gzip_bomb(inflated: int) -> bytes:
    """A gzip stream of an Image header and ``inflated`` zero bytes, about 1/1000 the size.

    One MiB of zeros compressed after a sync flush refers only to the zeros
    before it, so the same block bytes repeated inflate to a MiB each. The
    trailer is never reached: the reader must stop at its cap first.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    start = c.compress(image(MiB)) + c.flush(zlib.Z_SYNC_FLUSH)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_SYNC_FLUSH)
    return start + block * (inflated // MiB) + c.flush()


# 5. build-many --root ----------------------------------------------------------------------


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "configs").mkdir(parents=True)
    (root / "Image").write_bytes(image())
    (root / "configs" / "vm.toml").write_text('kernel = "../Image"\n')
    return root


def test_build_many_root_accepts_paths_inside_it(fleet):
    r = fdtgen("build-many", fleet / "configs", "--root", fleet, "-o", fleet / "out")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (fleet / "out").iterdir()) == ["vm.dtb", "vm.json"]


# 6. Errors name what is wrong, never the input's bytes --------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        pytest.param(["build", "--kernel", "{secret}", "-o", "{out}"], "no ARM\\x64 magic at 0x38",
                     id="kernel"),
        pytest.param(["verify", "{secret}"], "found other bytes", id="verify"),
        pytest.param(["diff", "{secret}", "{secret}"], "found other bytes", id="diff"),
        pytest.param(["build", "{secret}", "-o", "{out}"], "not valid TOML", id="config"),
        pytest.param(["build", "--template", "{secret}.toml", "-o", "{out}"], "not valid TOML",
                     id="template"),
        pytest.param(["verify", "{blob}", "--manifest", "{secret}"], "not valid JSON",
                     id="manifest"),
    ],
)  # fmt: skip
def test_errors_never_print_the_bytes_of_an_input(tmp_path, blob, args, needle):
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    (tmp_path / "secret.toml").write_bytes(SECRET)
    argv = [a.format(secret=secret, out=tmp_path / "o.dtb", blob=blob) for a in args]
    err = rejected(fdtgen(*argv), needle)
    for shown in (
        b"TOPSECRET",
        b"root:x",
        SECRET[:4].hex().encode(),
        SECRET[0x38:0x3C].hex().encode(),
    ):
        assert shown.decode() not in err, err
    assert SECRET[:4].hex(" ") not in err and hex(int.from_bytes(SECRET[:4], "big")) not in err
