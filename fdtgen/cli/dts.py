"""``fdtgen dts``: the DTS text of a machine config, or of any DTB."""

from __future__ import annotations

import argparse
import sys

from fdtgen.cli.common import add_blob_size_argument, add_config_arguments, write_atomic
from fdtgen.errors import UsageError

HELP = "print the DTS of a machine config (or the embedded default), or of any DTB file"

_OVERRIDES = ("template", "vcpus", "memory", "cmdline", "virtio", "address_width")
_BOOT = (
    "kernel",
    "initrd",
    "rng_seed",
    "kaslr_seed",
    "entropy_seed",
    "max_kernel_size",
    "max_initrd_size",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fdtgen.cli.common import add_boot_arguments

    add_config_arguments(p)
    add_boot_arguments(p)
    p.add_argument(
        "-o", "--output", default="-", metavar="DTS", help="output path (default: stdout)"
    )
    add_blob_size_argument(p)


_SNIFF = 4096  # bytes read to tell a DTB from a config


def _is_blob_file(path: str | None) -> bool:
    """Whether ``path`` is a DTB (it starts with the FDT magic ``0xd00dfeed``).

    A file that is neither a DTB nor possibly a config (empty, blank, or
    binary and not named ``.toml``/``.json``) is refused here, rather than
    read as an empty config that builds the default machine.
    """
    from fdtgen.fdt.parse import is_blob

    if path is None:
        return False
    import os
    import stat

    from fdtgen.errors import ConfigError

    try:  # only a regular file is opened: a FIFO or a device is the config path's to report
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            head = os.read(fd, _SNIFF)
        finally:
            os.close(fd)
    except OSError:
        return False  # the config path reports the error
    if is_blob(head):
        return True
    if not head.strip():
        raise ConfigError(
            f"{path}: {'empty' if not head else 'blank'} file: expected a DTB (magic 0xd00dfeed) "
            "or a TOML/JSON machine config"
        )
    if not path.lower().endswith((".toml", ".json")) and _binary(head):
        raise ConfigError(
            f"{path}: neither a DTB (no magic 0xd00dfeed) nor a TOML/JSON machine config "
            "(binary content)"
        )
    return False


def _binary(head: bytes) -> bool:
    """Whether ``head`` cannot be the start of a text file: a NUL, or not UTF-8
    (a multi-byte character cut at the end of ``head`` is allowed)."""
    if b"\0" in head:
        return True
    try:
        head.decode()
    except UnicodeDecodeError as e:
        return e.start < len(head) - 3
    return False


def run(args: argparse.Namespace) -> int:
    from fdtgen.fdt.dts import to_dts

    if _is_blob_file(args.config):
        from fdtgen.cli.common import load_blob
        from fdtgen.fdt.phandles import with_labels

        given = [name for name in (*_OVERRIDES, *_BOOT) if getattr(args, name) is not None]
        if given:
            option = given[0].replace("_", "-")
            raise UsageError(f"--{option}: machine options do not apply to a DTB ({args.config})")
        from fdtgen.fdt.dts import header_notes

        _, blob = load_blob(args.config, args.max_blob_size)
        for note in header_notes(blob.tree):
            print(f"fdtgen: note: {args.config}: {note}", file=sys.stderr)
        text = to_dts(with_labels(blob.tree))
        inputs = [("blob", args.config)]
    else:
        from fdtgen.cli.common import input_paths, load_boot_config, readers

        # The tree fdtgen build writes: with the config's kernel, initrd and seeds.
        cfg = load_boot_config(args)
        tree = cfg.build(**readers(args)).tree
        if tree is None:
            raise RuntimeError("dts: the build kept no tree")  # build() always keeps it
        text = to_dts(tree)
        inputs = input_paths(args, cfg)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text.encode(), inputs)
    return 0
