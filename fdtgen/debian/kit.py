"""Debian's arm64 cloud kernel and busybox-static, and the device trees of Debian's
generic arm64 kernel, fetched with apt into a cache.

The machine's architecture list and package state stay untouched: apt runs with
``APT::Architecture=arm64`` and its own lists, archive cache and an empty status
file, all under the cache directory. Its sources are the Debian archives the
machine's apt already uses (:mod:`.sources`; mirror, proxy and keyring stay the
machine's), or deb.debian.org when it uses none. The kernel is resolved at run
time through the ``linux-image-cloud-arm64`` metapackage, because Debian drops
superseded kernel ABIs from the archive. Both packages are unpacked with
``dpkg -x``; a later run finds them in the cache and needs no network.

:func:`dtbs` fetches the generic kernel (the ``linux-image-arm64``
metapackage's dependency, ``linux-image-<abi>-arm64``) the same way and
unpacks only its ``usr/lib/linux-image-<abi>/`` tree: every DTB the
distribution ships for its boards, a corpus of real-world blobs.

Cache: ``$FDTGEN_BOOT_CACHE``, else ``/var/cache/fdtgen-apt`` when writable
(CI runs as root), else ``$XDG_CACHE_HOME/fdtgen`` (``~/.cache/fdtgen``).
``$FDTGEN_DEBIAN_MIRROR`` and ``$FDTGEN_DEBIAN_SUITE`` (default bookworm) name one
archive instead of the machine's.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from fdtgen.debian.sources import Source, debian_sources, machine_sources
from fdtgen.errors import FdtgenError

KERNEL_METAPACKAGE = "linux-image-cloud-arm64"
GENERIC_METAPACKAGE = "linux-image-arm64"
BUSYBOX_PACKAGE = "busybox-static"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
_KIT_FORMAT = 1
_DTBS_FORMAT = 1


T = TypeVar("T")


class FetchError(FdtgenError):
    """apt could not fetch or unpack the packages."""


@dataclass(frozen=True, slots=True)
class Kit:
    """The unpacked guest software.

    ``kernel`` is Debian's ``vmlinuz`` (a raw arm64 Image with an EFI stub),
    ``modules`` its ``lib/modules/<release>`` tree, ``busybox`` the static binary.
    """

    kernel: Path
    release: str
    modules: Path
    busybox: Path
    kernel_package: str
    kernel_version: str


def cache_dir() -> Path:
    env = os.environ.get("FDTGEN_BOOT_CACHE")
    if env:
        return Path(env)
    system = Path("/var/cache")
    if os.access(system, os.W_OK):
        return system / "fdtgen-apt"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "fdtgen"


def kit() -> Kit:
    """The cached kit, fetching it first if needed (one process at a time)."""
    return _cached(_load, _fetch)


def _cached(load: Callable[[Path], T | None], fetch: Callable[[Path], T]) -> T:
    """What ``load`` finds in the cache, else what ``fetch`` puts there, under the
    cache's lock so that one process at a time fetches."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = load(root)
        return found if found is not None else fetch(root)


def _load(root: Path) -> Kit | None:
    try:
        data = json.loads((root / "kit.json").read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != _KIT_FORMAT:
        return None
    k = Kit(
        kernel=root / data["kernel"],
        release=data["release"],
        modules=root / data["modules"],
        busybox=root / data["busybox"],
        kernel_package=data["kernel_package"],
        kernel_version=data["kernel_version"],
    )
    if not (k.kernel.is_file() and k.modules.is_dir() and k.busybox.is_file()):
        return None
    return k


def sources() -> list[Source]:
    """Where apt looks: the override, else the machine's Debian archives, else deb.debian.org."""
    mirror = os.environ.get("FDTGEN_DEBIAN_MIRROR")
    suite = os.environ.get("FDTGEN_DEBIAN_SUITE")
    if not (mirror or suite):
        found = debian_sources(machine_sources())
        if found:
            return found
    return [Source(mirror or DEFAULT_MIRROR, suite or DEFAULT_SUITE, ("main",), KEYRING)]


class Apt:
    """apt-get / apt-cache for arm64, with all state under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        etc = root / "etc"
        for d in (
            etc / "sources.list.d",
            root / "lists" / "partial",
            root / "cache" / "archives" / "partial",
        ):
            d.mkdir(parents=True, exist_ok=True)
        (etc / "sources.list").write_text("".join(s.line("arm64") + "\n" for s in sources()))
        # An empty dpkg status of its own: /dev/null is not always a device
        # (in some containers it is a regular file other processes write to).
        status = root / "status"
        status.write_bytes(b"")
        self.options = [
            "-oAPT::Architecture=arm64",
            "-oAPT::Architectures=arm64",
            f"-oDir::Etc::SourceList={etc / 'sources.list'}",
            f"-oDir::Etc::SourceParts={etc / 'sources.list.d'}",
            f"-oDir::State::Lists={root / 'lists'}",
            f"-oDir::Cache={root / 'cache'}",
            f"-oDir::State::status={status}",
            "-oAcquire::Languages=none",
            "-oAcquire::Retries=3",
        ]
        if os.geteuid() == 0:
            # Downloading as root into a directory _apt cannot write warns
            # "Download is performed unsandboxed"; stay root instead.
            self.options.append("-oAPT::Sandbox::User=root")

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        p = subprocess.run(
            [tool, *self.options, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"},
        )
        if p.returncode != 0:
            raise FetchError(f"{tool} {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
        return p.stdout

    def field(self, package: str, name: str) -> str:
        text = self.run("apt-cache", "show", "--no-all-versions", package)
        m = re.search(rf"^{re.escape(name)}: (.*)$", text, re.MULTILINE)
        if not m:
            raise FetchError(f"apt-cache show {package}: no {name} field")
        return m.group(1).strip()


def _updated_apt(root: Path) -> Apt:
    for tool in ("apt-get", "apt-cache", "dpkg", "dpkg-deb", "tar"):
        if shutil.which(tool) is None:
            raise FetchError(f"{tool} is required to fetch Debian's arm64 kernel")
    apt = Apt(root / "apt")
    apt.run("apt-get", "-q", "update")
    return apt


def _abi_package(apt: Apt, metapackage: str) -> str:
    """The kernel package a metapackage depends on now."""
    # "linux-image-6.1.0-50-cloud-arm64 (= 6.1.176-1)": the current ABI package.
    depends = apt.field(metapackage, "Depends")
    m = re.match(r"(linux-image-[^\s,(]+)", depends)
    if not m:
        raise FetchError(f"{metapackage}: cannot read the kernel package from {depends!r}")
    return m.group(1)


@dataclass(frozen=True, slots=True)
class Dtbs:
    """The generic kernel's device trees: ``root`` holds ``<vendor>/<board>.dtb``."""

    root: Path
    kernel_package: str
    kernel_version: str

    def paths(self) -> list[Path]:
        """Every ``*.dtb`` under ``root``, sorted."""
        return sorted(self.root.rglob("*.dtb"))


def dtbs() -> Dtbs:
    """The cached DTBs of Debian's generic arm64 kernel, fetching them first if needed."""
    return _cached(_load_dtbs, _fetch_dtbs)


def _load_dtbs(root: Path) -> Dtbs | None:
    try:
        data = json.loads((root / "dtbs.json").read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != _DTBS_FORMAT:
        return None
    d = Dtbs(root / data["root"], data["kernel_package"], data["kernel_version"])
    return d if d.root.is_dir() and d.paths() else None


def _fetch_dtbs(root: Path) -> Dtbs:
    apt = _updated_apt(root)
    package = _abi_package(apt, GENERIC_METAPACKAGE)
    version = apt.field(package, "Version")
    debs = root / "dtb-debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir()
    apt.run("apt-get", "-q", "download", package, cwd=debs)
    (deb,) = debs.glob("*.deb")
    # The package is mostly modules; only its DTB tree is unpacked.
    unpacked = root / "dtbs"
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir()
    data = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    subprocess.run(
        ["tar", "-x", "--wildcards", "./usr/lib/linux-image-*/*"],
        input=data,
        cwd=unpacked,
        check=True,
    )
    release = package.removeprefix("linux-image-")
    tree = unpacked / "usr" / "lib" / f"linux-image-{release}"
    record = {
        "format": _DTBS_FORMAT,
        "root": str(tree.relative_to(root)),
        "kernel_package": package,
        "kernel_version": version,
    }
    tmp = root / "dtbs.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(root / "dtbs.json")
    shutil.rmtree(debs, ignore_errors=True)
    found = _load_dtbs(root)
    if found is None:
        raise FetchError(f"{package} unpacked no DTBs under {tree}")
    return found


def _fetch(root: Path) -> Kit:
    apt = _updated_apt(root)
    kernel_package = _abi_package(apt, KERNEL_METAPACKAGE)
    kernel_version = apt.field(kernel_package, "Version")
    debs = root / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir()
    apt.run("apt-get", "-q", "download", kernel_package, BUSYBOX_PACKAGE, cwd=debs)
    unpacked = root / "root"
    shutil.rmtree(unpacked, ignore_errors=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True)
    release = kernel_package.removeprefix("linux-image-")
    kernel = unpacked / "boot" / f"vmlinuz-{release}"
    busybox = unpacked / "bin" / "busybox"
    modules = unpacked / "lib" / "modules" / release
    data = {
        "format": _KIT_FORMAT,
        "kernel": str(kernel.relative_to(root)),
        "release": release,
        "modules": str(modules.relative_to(root)),
        "busybox": str(busybox.relative_to(root)),
        "kernel_package": kernel_package,
        "kernel_version": kernel_version,
    }
    tmp = root / "kit.json.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(root / "kit.json")
    shutil.rmtree(debs, ignore_errors=True)
    found = _load(root)
    if found is None:
        raise FetchError(f"unpacked packages in {unpacked} lack vmlinuz, modules or busybox")
    return found
