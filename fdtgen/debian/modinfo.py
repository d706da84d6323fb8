"""Kernel module dependencies read from each module's ``.modinfo`` section.

Debian's kernel package ships no ``modules.dep`` (depmod runs at install
time), so the load order comes from the modules themselves: the ELF section
``.modinfo`` holds NUL-separated ``key=value`` strings, among them
``name=virtio_rng`` and ``depends=virtio,virtio_ring`` (scripts/mod/modpost.c).
Module names use ``_`` where file names may use ``-`` (``virtio-rng.ko``).
"""

from __future__ import annotations

import lzma
import struct
from dataclasses import dataclass
from pathlib import Path

_ELF_MAGIC = b"\x7fELF"
_ELFCLASS64 = 2
_ELFDATA2LSB = 1


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    path: Path
    depends: tuple[str, ...]

    def data(self) -> bytes:
        return read_module(self.path)


def read_module(path: Path) -> bytes:
    """The ELF bytes of a ``.ko`` or ``.ko.xz`` file."""
    raw = path.read_bytes()
    return lzma.decompress(raw) if path.name.endswith(".xz") else raw


def modinfo(elf: bytes) -> dict[str, list[str]]:
    """The ``.modinfo`` strings of a 64-bit little-endian ELF module, by key."""
    if elf[:4] != _ELF_MAGIC or elf[4] != _ELFCLASS64 or elf[5] != _ELFDATA2LSB:
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", elf, shoff + i * shentsize
        )
        return name, offset, size

    _, names_off, _ = section(shstrndx)
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = elf.index(b"\0", names_off + name_off)
        if elf[names_off + name_off : end] == b".modinfo":
            out: dict[str, list[str]] = {}
            for entry in elf[offset : offset + size].split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    out.setdefault(key, []).append(value)
            return out
    raise ValueError("no .modinfo section")


def index(modules_dir: Path) -> dict[str, Path]:
    """Module name -> file, for every module under ``modules_dir``."""
    found: dict[str, Path] = {}
    for path in sorted(modules_dir.rglob("*.ko*")):
        stem = path.name.split(".ko")[0]
        found.setdefault(stem.replace("-", "_"), path)
    return found


def load_order(modules_dir: Path, wanted: list[str]) -> list[Module]:
    """``wanted`` and everything they depend on, each after its dependencies."""
    files = index(modules_dir)
    order: list[Module] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in done:
            return
        if name in chain:
            raise ValueError(f"module dependency cycle: {' -> '.join((*chain, name))}")
        path = files.get(name)
        if path is None:
            raise ValueError(f"module {name!r} is not under {modules_dir}")
        try:
            info = modinfo(read_module(path))
        except (OSError, lzma.LZMAError, struct.error, IndexError, ValueError) as e:
            raise ValueError(f"{path}: not a readable kernel module ({e})") from None
        depends = tuple(d for v in info.get("depends", []) for d in v.split(",") if d)
        for dep in depends:
            visit(dep, (*chain, name))
        done.add(name)
        order.append(Module(name, path, depends))

    for name in wanted:
        visit(name, ())
    return order
