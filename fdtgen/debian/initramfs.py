"""A gzip-compressed cpio ``newc`` initramfs with busybox, modules and ``/init``.

Format: Documentation/driver-api/early-userspace/buffer-format.rst. Each entry
is the magic ``070701``, thirteen 8-digit hex fields (ino, mode, uid, gid,
nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize,
check), the NUL-terminated name padded to 4 bytes, then the data padded to 4
bytes; the archive ends with an entry named ``TRAILER!!!``. Times and owners
are zero, so the same inputs give the same bytes.

:data:`SHELL_INIT` is the ``/init`` of ``fdtgen debian-kernel``: it mounts
proc, sysfs and devtmpfs, loads the modules it carries and starts a busybox
shell on the console; ``exit`` powers the guest off.
"""

from __future__ import annotations

import gzip
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from fdtgen.debian.modinfo import Module

NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive member: a directory, a regular file or a character device."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(name: str) -> Entry:
    return Entry(name, stat.S_IFDIR | 0o755)


def file(name: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(name, stat.S_IFREG | perm, data)


def chardev(name: str, major: int, minor: int) -> Entry:
    return Entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def newc(entries: Iterable[Entry]) -> bytes:
    """The uncompressed cpio newc archive of ``entries`` plus the trailer."""
    out = bytearray()
    all_entries = [*entries, Entry(TRAILER, 0)]
    for ino, e in enumerate(all_entries, start=1):
        name = e.name.encode() + b"\0"
        fields = (
            0 if e.name == TRAILER else ino,
            e.mode,
            0,  # uid
            0,  # gid
            2 if stat.S_ISDIR(e.mode) else 1,  # nlink
            0,  # mtime
            len(e.data),
            0,  # devmajor
            0,  # devminor
            e.rdev[0],
            e.rdev[1],
            len(name),
            0,  # check (only for the 070702 "crc" format)
        )
        header = NEWC_MAGIC + b"".join(b"%08X" % f for f in fields)
        out += header + name + _pad4(len(header) + len(name))
        out += e.data + _pad4(len(e.data))
    return bytes(out)


SHELL_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in @MODULES@; do insmod "/lib/modules/$m.ko" || echo "insmod $m failed"; done
model=$(tr -d '\000' < /proc/device-tree/model)
echo "fdtgen guest: $(grep -c ^processor /proc/cpuinfo) CPUs, $model; exit powers off"
setsid cttyhack sh
poweroff -f
"""


def shell_init(modules: Iterable[Module]) -> bytes:
    """:data:`SHELL_INIT` loading ``modules`` in order."""
    return SHELL_INIT.replace("@MODULES@", " ".join(m.name for m in modules)).encode()


def initramfs(busybox: bytes, modules: list[Module], init: bytes) -> bytes:
    """The gzip-compressed initramfs: busybox as ``/bin/busybox``, the modules
    as ``/lib/modules/<name>.ko``, ``/dev/console`` and ``init`` as ``/init``."""
    entries = [
        *(directory(d) for d in ("bin", "dev", "lib", "lib/modules", "proc", "sys")),
        chardev("dev/console", 5, 1),
        file("bin/busybox", busybox, 0o755),
        *(file(f"lib/modules/{m.name}.ko", m.data()) for m in modules),
        file("init", init, 0o755),
    ]
    return gzip.compress(newc(entries), compresslevel=6, mtime=0)
