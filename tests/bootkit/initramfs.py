"""A gzip-compressed cpio ``newc`` initramfs with busybox, modules and ``/init``.

Format: Documentation/driver-api/early-userspace/buffer-format.rst. Each entry
is the magic ``070701``, thirteen 8-digit hex fields (ino, mode, uid, gid,
nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize,
check), the NUL-terminated name padded to 4 bytes, then the data padded to 4
bytes; the archive ends with an entry named ``TRAILER!!!``. Times and owners
are zero, so the same inputs give the same bytes.

``/init`` mounts proc, sysfs and devtmpfs, loads the modules it carries,
prints ``FDTGEN key=value`` lines about what the guest sees, then
``FDTGEN-DONE`` and powers off. :mod:`.guest` parses those lines.
"""

from __future__ import annotations

import gzip
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from .modinfo import Module

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


INIT_TEMPLATE = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "FDTGEN $1=$2"; }
say initrd "@MARKER@"
# In the background too: virtio_blk's probe reads the partition table, which
# never completes when the disk's interrupt is miswired.
(
    for m in @MODULES@; do
        insmod "/lib/modules/$m.ko" || say insmod-failed "$m"
    done
    touch /modules.done
) &
n=0
while [ ! -e /modules.done ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -e /modules.done ] || say modules TIMEOUT
say nproc "$(grep -c ^processor /proc/cpuinfo)"
say cpus-online "$(cat /sys/devices/system/cpu/online)"
say memtotal-kib "$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo)"
grep 'System RAM$' /proc/iomem | while read -r line; do say iomem-ram "$line"; done
say cmdline "$(cat /proc/cmdline)"
say dt-model "$(tr -d '\000' < /proc/device-tree/model)"
say dt-compatible "$(tr '\000' ' ' < /proc/device-tree/compatible)"
say dt-nodes "$(ls /proc/device-tree | tr '\n' ' ')"
say dt-initrd-start "$(od -An -tx1 /proc/device-tree/chosen/linux,initrd-start | tr -d ' \n')"
say dt-initrd-end "$(od -An -tx1 /proc/device-tree/chosen/linux,initrd-end | tr -d ' \n')"
# Wait for the disk, bounded, then read the sector at 512 KiB (a request of its
# own, not the partition scan's): it completes only if the transport's
# interrupt reaches the driver.
n=0
while [ ! -e /sys/block/vda ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
for d in /sys/bus/virtio/devices/*; do
    [ -e "$d" ] || continue
    driver=$(basename "$(readlink "$d/driver")")
    say virtio "$(basename "$d") device=$(cat "$d/device") driver=$driver path=$(readlink -f "$d")"
done
if [ -e /dev/vda ]; then
    say blk-path "$(readlink -f /sys/block/vda)"
    # In the background: a read whose completion interrupt never arrives
    # blocks uninterruptibly, and the report must still go on.
    dd if=/dev/vda of=/blk.out bs=512 skip=1024 count=1 2>/dev/null &
    n=0
    while [ ! -s /blk.out ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    if [ -s /blk.out ]; then say blk-data "$(tr -d '\000' < /blk.out)"; else say blk-data TIMEOUT; fi
else
    say blk-data NO-DEVICE
fi
if [ -e /dev/hwrng ]; then
    say rng-current "$(cat /sys/class/misc/hw_random/rng_current)"
    say rng-bytes "$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
fi
grep -i virtio /proc/interrupts | while read -r line; do say irq "$line"; done
for h in /sys/bus/platform/drivers/pci-host-generic/*.pcie; do
    [ -e "$h" ] && say pci-host "$(basename "$h")"
done
for d in /sys/bus/pci/devices/*; do
    [ -e "$d" ] || continue
    driver=$(basename "$(readlink "$d/driver")")
    id="vendor=$(cat "$d/vendor") device=$(cat "$d/device")"
    say pci "$(basename "$d") $id driver=$driver"
done
echo FDTGEN-DONE
poweroff -f
"""


def init_script(marker: str, modules: Iterable[Module]) -> bytes:
    names = " ".join(m.name for m in modules)
    if any(c in marker for c in '"$`\\\n'):
        raise ValueError(f"marker {marker!r} must not need shell quoting")
    return INIT_TEMPLATE.replace("@MARKER@", marker).replace("@MODULES@", names).encode()


def initramfs(busybox: bytes, modules: list[Module], marker: str) -> bytes:
    """The gzip-compressed initramfs: busybox as ``/bin/busybox``, the modules
    as ``/lib/modules/<name>.ko`` (loaded in list order), ``/dev/console``."""
    entries = [
        *(directory(d) for d in ("bin", "dev", "lib", "lib/modules", "proc", "sys")),
        chardev("dev/console", 5, 1),
        file("bin/busybox", busybox, 0o755),
        *(file(f"lib/modules/{m.name}.ko", m.data()) for m in modules),
        file("init", init_script(marker, modules), 0o755),
    ]
    return gzip.compress(newc(entries), compresslevel=6, mtime=0)
