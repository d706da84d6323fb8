"""The boot tests' ``/init``: it reports what the guest sees, then powers off.

``/init`` mounts proc, sysfs and devtmpfs, loads the modules it carries,
prints ``FDTGEN key=value`` lines about what the guest sees, then
``FDTGEN-DONE`` and powers off. :mod:`.guest` parses those lines. The archive
itself is :func:`fdtgen.debian.initramfs.initramfs`.
"""

from __future__ import annotations

from collections.abc import Iterable

from fdtgen.debian import initramfs as archive
from fdtgen.debian.modinfo import Module

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
    if [ -s /blk.out ]; then say blk-data "$(tr -d '\000' < /blk.out)"
    else say blk-data TIMEOUT; fi
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
    """The gzip-compressed initramfs whose ``/init`` reports with ``marker``."""
    return archive.initramfs(busybox, modules, init_script(marker, modules))
