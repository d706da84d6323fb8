"""``fdtgen debian-kernel DIR``: Debian's arm64 kernel and a busybox initramfs to boot."""

from __future__ import annotations

import argparse

HELP = "fetch Debian's arm64 cloud kernel with apt and write it with a busybox initramfs into DIR"

# The virtio drivers a microVM guest needs, with their dependencies pulled in
# from each module's .modinfo; PCI host support is built into Debian's kernel.
MODULES = ("virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="where vmlinuz and initrd.gz are written")
    p.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help=f"another kernel module to load at boot (default set: {', '.join(MODULES)})",
    )


def run(args: argparse.Namespace) -> int:
    import os
    import shutil
    from pathlib import Path
    from typing import BinaryIO

    from fdtgen.cli.common import write_all_atomic
    from fdtgen.debian import initramfs, kit, modinfo
    from fdtgen.errors import UsageError

    out = Path(args.dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{args.dir}: not a directory")
    found = kit.kit()
    try:
        modules = modinfo.load_order(found.modules, list(MODULES))
    except ValueError as e:  # the cached kernel's own modules: the cache is at fault
        raise kit.FetchError(f"{e}; remove {found.modules.parents[3]} to fetch again") from None
    try:
        modules = (
            modinfo.load_order(found.modules, [*MODULES, *args.module]) if args.module else modules
        )
    except ValueError as e:
        raise UsageError(f"--module: {e}") from None
    os.makedirs(out, exist_ok=True)
    kernel, initrd = out / "vmlinuz", out / "initrd.gz"
    archive = initramfs.initramfs(
        found.busybox.read_bytes(), modules, initramfs.shell_init(modules)
    )

    def copy_kernel(f: BinaryIO) -> None:  # streamed: Debian's kernel is tens of MiB
        with open(found.kernel, "rb") as src:
            shutil.copyfileobj(src, f)

    # Both files or neither.
    write_all_atomic([(str(kernel), copy_kernel), (str(initrd), archive)])
    print(f"{kernel}: {found.kernel_package} {found.kernel_version}")
    print(f"{initrd}: busybox, {', '.join(m.name for m in modules)}")
    print(
        f"boot it: fdtgen qemu --template qemu-virt --kernel {kernel} --initrd {initrd}"
        " -- -device virtio-rng-device"
    )
    return 0
