"""``fdtgen qemu``: boot a kernel under QEMU virt from fdtgen's DTB and placement.

Builds the DTB and the manifest, writes them and the boot trampoline to a work
directory, and runs ``qemu-system-aarch64`` with generic loaders at the
manifest's addresses and no ``-kernel``/``-initrd``/``-dtb`` (see
:mod:`fdtgen.qemu`). Arguments after ``--`` go to QEMU unchanged. The exit
status is QEMU's (2 when fdtgen rejects the input before starting it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdtgen.cli.common import (
    add_config_arguments,
    add_input_size_arguments,
    input_paths,
    load_config,
    readers,
    write_all_atomic,
)

if TYPE_CHECKING:
    from fdtgen.files import Payload

HELP = "boot a kernel under qemu with fdtgen's own device tree and placement"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    g = p.add_argument_group("boot")
    g.add_argument(
        "--kernel",
        metavar="IMAGE",
        help="arm64 Image (raw, gzip or EFI zboot); default: the config's kernel",
    )
    g.add_argument(
        "--initrd", metavar="FILE", help="initrd/initramfs to load; default: the config's initrd"
    )
    add_input_size_arguments(g)
    g.add_argument(
        "--qemu-memory",
        metavar="SIZE",
        help="QEMU's RAM (-m); may exceed the DTB's memory, which the guest then uses alone "
        "(default: the DTB's memory)",
    )
    g.add_argument(
        "--workdir",
        metavar="DIR",
        help="write DTB, manifest and trampoline here "
        "(default: a temporary directory, removed when QEMU exits; kept with --print)",
    )
    g.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the QEMU command instead of running it",
    )
    g.add_argument(
        "--qemu",
        default="qemu-system-aarch64",
        metavar="BINARY",
        help="the QEMU binary (default: %(default)s)",
    )
    p.set_defaults(qemu_args=[])
    p.usage = "fdtgen qemu [CONFIG] [options] [-- QEMU_ARGS ...]"
    # argparse would hand the first word after "--" to the optional CONFIG
    # positional; split the QEMU arguments off before it parses anything.
    parse = p.parse_known_args

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        extra: list[str] = []
        if "--" in argv:
            i = argv.index("--")
            argv, extra = argv[:i], argv[i + 1 :]
        ns, rest = parse(argv, namespace)
        ns.qemu_args = extra
        return ns, rest

    p.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]


def run(args: argparse.Namespace) -> int:
    from fdtgen.config import override
    from fdtgen.errors import ConfigError, FdtgenError, PlacementError, UsageError
    from fdtgen.manifest import manifest_for, to_json
    from fdtgen.qemu import command as qemu
    from fdtgen.qemu.trampoline import TRAMPOLINE_SIZE, trampoline
    from fdtgen.ranges import Range
    from fdtgen.units import parse_size

    cfg = load_config(args)
    cfg = override(
        cfg,
        {
            "kernel": None if args.kernel is None else os.path.abspath(args.kernel),
            "initrd": None if args.initrd is None else os.path.abspath(args.initrd),
        },
    )
    for key in ("kernel", "initrd"):
        value = getattr(cfg, key)
        if key == "kernel" and value is None:
            raise ConfigError("kernel: fdtgen qemu needs a kernel file (--kernel IMAGE)")
        if value is not None and not isinstance(value, str):
            raise ConfigError(
                f"{key}: fdtgen qemu loads files; a declared {key} (a size) cannot boot"
            )
    if not args.print_only and shutil.which(args.qemu) is None:
        raise FdtgenError(
            f"qemu: {args.qemu!r} not found (Debian: apt-get install qemu-system-arm)"
        )
    qemu_memory = None
    if args.qemu_memory is not None:
        try:
            qemu_memory = parse_size(args.qemu_memory)
        except ValueError as e:
            raise UsageError(f"--qemu-memory: {args.qemu_memory!r}: {e}") from None

    b = cfg.build(**readers(args))
    machine = b.machine
    layout = b.layout
    qemu.check_machine(layout, machine.psci_method or layout.template.psci_method)
    ram_size = qemu.qemu_ram(layout, qemu_memory)
    qemu.check_extra_args(args.qemu_args, layout)
    m = manifest_for(b)
    regs = m["registers"]
    if (regs["x1"], regs["x2"], regs["x3"]) != (0, 0, 0):
        raise PlacementError(
            f"registers: x1..x3 = {regs['x1']:#x}, {regs['x2']:#x}, {regs['x3']:#x}; "
            "booting.rst requires 0"
        )

    kernel_path = os.path.abspath(str(cfg.kernel))
    kernel, dtb, initrd = m["kernel"], m["dtb"], m["initrd"]
    # QEMU's loader copies files as they are: a gzip or zboot kernel is
    # inflated into the work directory as a stream, when the outputs are written.
    image = None
    if kernel["format"] != "raw":
        image = qemu.image_writer(kernel_path, kernel["size"], args.max_kernel_size)
    taken = [
        Range(kernel["load_address"], kernel["reserved"]),
        Range(dtb["address"], dtb["reserved"]),
    ]
    if initrd is not None:
        taken.append(Range(initrd["address"], initrd["size"]))
    stub_base = qemu.trampoline_base(layout.ram, taken, TRAMPOLINE_SIZE)
    stub = trampoline(regs["x0"], regs["pc"])

    def loads(work: Path) -> list[qemu.Load]:
        out = [
            qemu.Load("kernel", str(work / "Image") if image is not None else kernel_path,
                      kernel["load_address"], kernel["size"]),
            qemu.Load("dtb", str(work / "guest.dtb"), dtb["address"], dtb["size"]),
            qemu.Load("trampoline", str(work / "trampoline.bin"), stub_base, TRAMPOLINE_SIZE),
        ]  # fmt: skip
        if initrd is not None:
            initrd_path = os.path.abspath(str(cfg.initrd))
            out.append(qemu.Load("initrd", initrd_path, initrd["address"], initrd["size"]))
        return out

    qemu.check_loads(loads(Path("work")), ram_size)

    # Everything is checked: write the work directory, then run or print.
    keep = args.print_only or args.workdir is not None
    if args.workdir is None:
        workdir, created = tempfile.mkdtemp(prefix="fdtgen-qemu-"), True
    else:
        workdir, created = args.workdir, not os.path.isdir(args.workdir)
        try:
            os.makedirs(workdir, exist_ok=True)
        except OSError as e:
            raise FdtgenError(f"{workdir}: workdir: cannot create: {e.strerror}") from None
    work = Path(workdir).resolve()
    ok = False
    try:
        outputs: list[tuple[str, Payload]] = [
            (str(work / "guest.dtb"), fill_patch_slots(b.blob, m["patch_slots"])),
            (str(work / "manifest.json"), to_json(m)),
            (str(work / "trampoline.bin"), stub),
        ]
        if image is not None:
            outputs.append((str(work / "Image"), image))
        write_all_atomic(outputs, input_paths(args, cfg))
        argv = qemu.command(layout, loads(work), stub_base, ram_size, args.qemu_args, args.qemu)
        ok = True
        if args.print_only:
            print(qemu.shell_command(argv))
            return 0
        sys.stdout.flush()
        return subprocess.run(argv, check=False).returncode
    finally:
        if created and not (ok and keep):
            shutil.rmtree(work, ignore_errors=True)


def fill_patch_slots(blob: bytes, slots: Sequence[Any]) -> bytes:
    """The blob with each non-derived entropy slot filled with fresh random bytes,
    as a loader does per boot."""
    out = bytearray(blob)
    for s in slots:
        if not s["derived"]:
            out[s["offset"] : s["offset"] + s["size"]] = os.urandom(s["size"])
    return bytes(out)
