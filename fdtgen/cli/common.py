"""What the commands share: machine options, config loading, atomic output."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fdtgen.errors import OutputError

if TYPE_CHECKING:
    from fdtgen.boot.image import InputFile
    from fdtgen.config import Config
    from fdtgen.fdt.parse import Blob
    from fdtgen.pictures import Row


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """``[CONFIG]`` plus the overrides every machine-building command takes."""
    p.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="TOML or JSON machine config (default: the embedded squib machine)",
    )
    g = p.add_argument_group("machine overrides (take precedence over CONFIG)")
    g.add_argument("--template", help="built-in template name or path to a template .toml")
    g.add_argument("--vcpus", type=int, help="number of vCPUs")
    g.add_argument("--memory", help="RAM size, e.g. 512MiB, 2GiB, or bytes")
    g.add_argument("--cmdline", help="kernel command line (/chosen/bootargs)")
    g.add_argument("--virtio", type=int, help="number of virtio-mmio transports (0..32)")


def load_config(args: argparse.Namespace) -> Config:
    from fdtgen.config import load

    overrides = {
        "template": args.template,
        "vcpus": args.vcpus,
        "memory": args.memory,
        "cmdline": args.cmdline,
        "virtio": args.virtio,
    }
    return load(args.config, overrides)


def add_boot_arguments(p: argparse.ArgumentParser) -> None:
    """Kernel, initrd and entropy options (they override the config's keys)."""
    g = p.add_argument_group("boot (take precedence over CONFIG)")
    g.add_argument(
        "--kernel",
        metavar="IMAGE",
        help="arm64 Image, Image.gz or EFI zboot (gzip) kernel to place",
    )
    g.add_argument("--initrd", metavar="FILE", help="initrd/initramfs to place (needs a kernel)")
    g.add_argument(
        "--rng-seed", type=int, metavar="N", help="add an N-byte /chosen/rng-seed (0: none)"
    )
    g.add_argument("--kaslr-seed", action="store_true", default=None, help="add /chosen/kaslr-seed")
    g.add_argument(
        "--entropy-seed",
        metavar="TEXT",
        help="derive rng-seed/kaslr-seed from TEXT "
        "(default: zero bytes a loader overwrites per boot)",
    )


def load_boot_config(args: argparse.Namespace) -> Config:
    """The config with the machine overrides and then the boot overrides applied."""
    from fdtgen.config import override

    cfg = load_config(args)
    boot = {
        "kernel": args.kernel,
        "initrd": args.initrd,
        "rng_seed": args.rng_seed,
        "kaslr_seed": args.kaslr_seed,
        "entropy_seed": args.entropy_seed,
    }
    return override(cfg, boot, args.config or "command line")


def config_inputs(args: argparse.Namespace) -> list[InputFile]:
    """The config file as a manifest input, if one was given."""
    from fdtgen.boot.image import input_file
    from fdtgen.config import read_bytes

    if not args.config:
        return []
    return [input_file("config", args.config, read_bytes(args.config))]


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (temp file + rename).

    ``-`` writes to standard output.
    """
    write_all_atomic([(path, data)])


def write_all_atomic(outputs: list[tuple[str, bytes]], *, sync_each: bool = True) -> None:
    """Write every output, or none: all temp files are written and synced first,
    then renamed into place; on any failure the temp files are removed.

    An output replacing an existing file keeps that file's permissions. ``-``
    writes to standard output, last. With ``sync_each`` false (thousands of
    files, as build-many writes), no temp file is synced on its own: one
    ``os.sync()`` flushes them all before the renames, where a journal commit
    per file would cost milliseconds each.
    """
    staged: list[tuple[str, str]] = []
    to_stdout = [data for path, data in outputs if path == "-"]
    try:
        for path, data in outputs:
            if path != "-":
                staged.append((_stage(path, data, sync_each), path))
        if staged and not sync_each:
            os.sync()
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException as e:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError):
            raise OutputError(f"output: cannot write {e.filename!r}: {e.strerror}") from None
        raise
    for data in to_stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _stage(path: str, data: bytes, sync: bool = True) -> str:
    """``data`` in a new temp file next to ``path`` (synced, unless not ``sync``);
    returns its name."""
    if os.path.isdir(path):
        raise OutputError(f"output: {path!r} is a directory")
    parent, name = os.path.split(path)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = 0o644  # new files: rw-r--r-- less the umask
    for attempt in range(100):
        tmp = os.path.join(parent, f".{name}.{os.getpid()}.{attempt}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError(f"output: cannot write {path!r}: {e.strerror}") from None
    else:
        raise OutputError(f"output: cannot create a temporary file next to {path!r}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"output: cannot write {path!r}: {e.strerror}") from None
    return tmp


def load_blob(path: str) -> tuple[bytes, Blob]:
    """Read and strictly parse the DTB at ``path`` (``-``: standard input).

    Any problem is one :class:`BlobError` line; when the parser rejects a blob
    that libfdt's ``fdt_check_full`` accepts, the line says so.
    """
    from fdtgen.errors import BlobError
    from fdtgen.fdt.parse import parse_blob

    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as e:
        raise BlobError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return data, parse_blob(data)
    except BlobError as e:
        opinion = ""
        try:
            import libfdt  # type: ignore[import-untyped]
        except ImportError:
            pass
        else:
            buf = bytearray(data)
            if len(buf) >= 4 and libfdt.fdt_check_full(buf, len(buf)) == 0:
                opinion = " (libfdt's fdt_check_full accepts it)"
        raise BlobError(f"{path}: {e}{opinion}") from None


def add_view_arguments(p: argparse.ArgumentParser, when: str = "") -> None:
    """``--table | --diagram`` and ``--svg FILE`` (shared with ``templates show``)."""
    show = p.add_mutually_exclusive_group()
    show.add_argument("--table", action="store_true", help=f"{when}print only the table")
    show.add_argument("--diagram", action="store_true", help=f"{when}print only the diagram")
    p.add_argument(
        "--svg", metavar="FILE", help=f"{when}also write the map as an SVG picture (- for stdout)"
    )


def show_map(args: argparse.Namespace, rows: Sequence[Row], title: str, head: list[str]) -> None:
    """Write the SVG if asked, then print ``head``, the table and the diagram as asked."""
    from fdtgen.pictures import diagram, svg, table

    if args.svg:
        write_atomic(args.svg, svg(rows, title).encode())
        if args.svg == "-":
            return
    if args.diagram:  # the heading sits right on top of the picture
        print("\n".join([*head, *diagram(rows)]))
        return
    parts = ["\n".join(head)] if head else []
    parts.append("\n".join(table(rows)))
    if not args.table:
        parts.append("\n".join(diagram(rows)))
    print("\n\n".join(parts))
