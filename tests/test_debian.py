"""Debian's arm64 kernel for users: the machine's apt sources, and ``fdtgen debian-kernel``."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import pytest

from fdtgen.debian import kit, sources
from fdtgen.debian.sources import Source

from .conftest import run_fdtgen as fdtgen

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

DEB822 = f"""\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: {KEYRING}

Types: deb deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: trixie
Components: main
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF...
 -----END PGP PUBLIC KEY BLOCK-----
"""

ONE_LINE = f"""\
# the main archive
deb [arch=amd64 signed-by={KEYRING}] http://ftp.de.debian.org/debian/ bookworm main non-free
deb-src http://ftp.de.debian.org/debian/ bookworm main
deb http://security.debian.org/debian-security bookworm-security main  # security
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main
deb http://ftp.de.debian.org/debian bookworm-backports contrib
"""


def test_deb822_stanzas_give_one_source_per_uri_and_suite():
    got = sources.parse_deb822(DEB822)
    assert got == [
        Source("http://deb.debian.org/debian", "bookworm", ("main", "contrib"), KEYRING),
        Source("http://deb.debian.org/debian", "bookworm-updates", ("main", "contrib"), KEYRING),
        Source("http://deb.debian.org/debian-security", "bookworm-security", ("main",)),
        # an inline key block is not a path a one-line entry can name
        Source("https://deb.nodesource.com/node_20.x", "nodistro", ("main",)),
    ]


def test_one_line_entries_keep_options_and_drop_comments_and_deb_src():
    got = sources.parse_one_line(ONE_LINE)
    assert got[0] == Source(
        "http://ftp.de.debian.org/debian/", "bookworm", ("main", "non-free"), KEYRING
    )
    assert got[1] == Source(
        "http://security.debian.org/debian-security", "bookworm-security", ("main",)
    )
    assert [s.uri for s in got[2:]] == [
        "https://packages.cloud.google.com/apt",
        "http://ftp.de.debian.org/debian",
    ]


def test_only_debian_archives_with_main_are_used():
    got = sources.debian_sources(sources.parse_one_line(ONE_LINE) + sources.parse_deb822(DEB822))
    assert [(s.uri, s.suite, s.components) for s in got] == [
        ("http://ftp.de.debian.org/debian/", "bookworm", ("main",)),
        ("http://security.debian.org/debian-security", "bookworm-security", ("main",)),
        ("http://deb.debian.org/debian", "bookworm", ("main",)),
        ("http://deb.debian.org/debian", "bookworm-updates", ("main",)),
        ("http://deb.debian.org/debian-security", "bookworm-security", ("main",)),
    ]
    assert got[0].line("arm64") == (
        f"deb [arch=arm64 signed-by={KEYRING}] http://ftp.de.debian.org/debian/ bookworm main"
    )
    assert got[1].line("arm64") == (
        "deb [arch=arm64] http://security.debian.org/debian-security bookworm-security main"
    )


def test_machine_sources_reads_apt_files_in_apt_order(tmp_path):
    (tmp_path / "sources.list").write_text(ONE_LINE)
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(DEB822)
    (parts / "b.list").write_text("deb http://b.example/debian sid main\n")
    (parts / "old.list.disabled").write_text("deb http://off.example/debian sid main\n")
    got = sources.machine_sources(tmp_path)
    uris = [s.uri for s in got]
    assert uris[:4] == [s.uri for s in sources.parse_one_line(ONE_LINE)]
    assert uris[4] == "http://b.example/debian"  # b.list sorts before debian.sources
    assert uris[5] == "http://deb.debian.org/debian"
    assert "http://off.example/debian" not in uris


def test_the_kit_uses_the_override_then_the_machine_then_deb_debian_org(monkeypatch):
    machine = [Source("http://mirror.example/debian", "bookworm", ("main",), None)]
    monkeypatch.setattr(kit, "machine_sources", lambda: machine)
    monkeypatch.delenv("FDTGEN_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("FDTGEN_DEBIAN_SUITE", raising=False)
    assert kit.sources() == machine
    monkeypatch.setenv("FDTGEN_DEBIAN_SUITE", "trixie")
    assert kit.sources() == [Source(kit.DEFAULT_MIRROR, "trixie", ("main",), kit.KEYRING)]
    monkeypatch.delenv("FDTGEN_DEBIAN_SUITE")
    monkeypatch.setattr(kit, "machine_sources", list)
    assert kit.sources() == [Source(kit.DEFAULT_MIRROR, kit.DEFAULT_SUITE, ("main",), kit.KEYRING)]


def test_debian_kernel_refuses_a_file_as_its_directory(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    r = fdtgen("debian-kernel", str(f))
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"fdtgen: error: command line: {f}: not a directory"]
    assert f.read_text() == "x"


def _cpio(archive: bytes, *args: str) -> bytes:
    """cpio, the independent reader, run on an uncompressed newc archive."""
    return subprocess.run(
        ["cpio", "--quiet", "-i", *args], input=archive, capture_output=True, check=True
    ).stdout


@pytest.mark.boot
@pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("cpio") is None, reason="needs apt and cpio"
)
def test_debian_kernel_writes_a_bootable_kernel_and_a_shell_initramfs(tmp_path):
    r = fdtgen("debian-kernel", str(tmp_path / "guest"), timeout=900)
    assert r.returncode == 0, r.stderr
    kernel = (tmp_path / "guest" / "vmlinuz").read_bytes()
    assert kernel[0x38:0x3C] == b"ARM\x64"
    archive = gzip.decompress((tmp_path / "guest" / "initrd.gz").read_bytes())
    members = _cpio(archive, "-t").decode().split()
    init = _cpio(archive, "--to-stdout", "init").decode()
    assert "bin/busybox" in members and "dev/console" in members
    for m in ("virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net", "virtio_rng"):
        assert f"lib/modules/{m}.ko" in members
        assert m in init
    assert "cttyhack sh" in init
    assert f"fdtgen qemu --template qemu-virt --kernel {tmp_path}/guest/vmlinuz" in r.stdout
    bad = fdtgen("debian-kernel", str(tmp_path / "guest"), "--module", "no_such_module")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "fdtgen: error: command line: --module: module 'no_such_module' is not under "
        f"{kit.kit().modules}"
    ]


def test_a_corrupt_module_is_a_clear_error_not_a_traceback(tmp_path):
    from fdtgen.debian import modinfo

    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "virtio_rng.ko.xz").write_bytes(b"\xfd7zXZ\x00 not really xz")
    (tmp_path / "kernel" / "virtio.ko").write_bytes(b"\x7fELF" + bytes(8))
    for name in ("virtio_rng", "virtio"):
        with pytest.raises(ValueError, match="not a readable kernel module"):
            modinfo.load_order(tmp_path, [name])
