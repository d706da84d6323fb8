"""``python3 -m tests.bootkit DIR``: Debian's arm64 kernel and a busybox initramfs in DIR.

Writes ``DIR/vmlinuz`` (a copy of the cached kernel) and ``DIR/initrd.gz``
(the boot tests' initramfs: it prints what the guest sees, then powers off),
for trying ``fdtgen qemu`` by hand.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from . import debian, initramfs, modinfo


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m tests.bootkit DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    kit = debian.kit()
    wanted = ["virtio_mmio", "virtio_pci", "virtio_blk", "virtio_rng"]
    modules = modinfo.load_order(kit.modules, wanted)
    shutil.copyfile(kit.kernel, out / "vmlinuz")
    (out / "initrd.gz").write_bytes(initramfs.initramfs(kit.busybox.read_bytes(), modules, "hello"))
    print(f"{out / 'vmlinuz'}: {kit.kernel_package} {kit.kernel_version}")
    print(f"{out / 'initrd.gz'}: busybox, {', '.join(m.name for m in modules)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
