"""What the commands share: machine options, config loading, atomic output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fdtgen.units import MiB

# A DTB read for dts, verify or diff: booting.rst caps a bootable one at 2 MiB;
# the cap only stops a runaway read (/dev/zero, a disk image given by mistake).
BLOB_MAX_SIZE = 64 * MiB
MAX_BLOB_OPTION = "--max-blob-size"

if TYPE_CHECKING:
    from fdtgen.boot.image import InputFile
    from fdtgen.config import Config
    from fdtgen.fdt.parse import Blob
    from fdtgen.files import Payload
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
    g.add_argument(
        "--address-width",
        type=int,
        metavar="BITS",
        help="guest physical address bits, 32..64 (default: the template's; 36 on Apple M1)",
    )


def load_config(args: argparse.Namespace) -> Config:
    from fdtgen.config import load

    overrides = {
        "template": args.template,
        "vcpus": args.vcpus,
        "memory": args.memory,
        "cmdline": args.cmdline,
        "virtio": args.virtio,
        "address_width": args.address_width,
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
    add_input_size_arguments(g)


def add_input_size_arguments(g: argparse._ActionsContainer) -> None:
    """``--max-kernel-size`` and ``--max-initrd-size``: the caps on the files read."""
    g.add_argument(
        "--max-kernel-size",
        metavar="SIZE",
        type=_size,
        help="refuse a kernel Image larger than SIZE, decompressed or not (default: 256MiB)",
    )
    g.add_argument(
        "--max-initrd-size",
        metavar="SIZE",
        type=_size,
        help="refuse an initrd larger than SIZE (default: 1GiB)",
    )


def readers(args: argparse.Namespace) -> dict[str, Any]:
    """The kernel and initrd readers for ``Config.build``, with the command's caps."""
    from functools import partial

    from fdtgen.boot.image import INITRD_MAX_SIZE, read_initrd, read_kernel

    initrd_cap = getattr(args, "max_initrd_size", None) or INITRD_MAX_SIZE
    return {
        "read_kernel": partial(read_kernel, limit=getattr(args, "max_kernel_size", None)),
        "read_initrd": partial(read_initrd, limit=initrd_cap),
    }


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


def write_atomic(path: str, data: bytes, inputs: Sequence[tuple[str, str]] = ()) -> None:
    """Write ``data`` to ``path`` whole or not at all (see :func:`write_all_atomic`)."""
    write_all_atomic([(path, data)], inputs)


def write_all_atomic(
    outputs: Sequence[tuple[str, Payload]],
    inputs: Sequence[tuple[str, str]] = (),
    *,
    sync_each: bool = True,
) -> None:
    """Write every output, or none, in the order given (:func:`fdtgen.files.write_outputs`).

    A regular file (or a symlink to one) is replaced by a renamed temporary
    file and keeps its permissions; a character device or FIFO is written in
    place; ``-`` is standard output. Outputs naming the same file, or one of
    the ``inputs`` (``(role, path)``), are refused before anything is written.
    """
    from fdtgen.files import write_outputs

    write_outputs(outputs, inputs, sync_each=sync_each)


def input_paths(args: argparse.Namespace, cfg: Config | None = None) -> list[tuple[str, str]]:
    """The files a command reads, as ``(role, path)``: no output may overwrite one."""
    out = [("config", args.config)] if getattr(args, "config", None) else []
    if cfg is not None:
        for role in ("kernel", "initrd"):
            value = getattr(cfg, role)
            if isinstance(value, str):
                out.append((role, value))
        if "/" in cfg.template or cfg.template.endswith(".toml"):
            out.append(("template", cfg.template))
    return out


def add_blob_size_argument(p: argparse.ArgumentParser) -> None:
    """``--max-blob-size SIZE``: the cap on a DTB read (default 64 MiB)."""
    p.add_argument(
        MAX_BLOB_OPTION,
        metavar="SIZE",
        type=_size,
        help=f"refuse a DTB file larger than SIZE (default: {BLOB_MAX_SIZE >> 20}MiB)",
    )


def _size(text: str) -> int:
    from fdtgen.units import parse_size

    try:
        size = parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be positive")
    return size


def load_blob(path: str, max_size: int | None = None) -> tuple[bytes, Blob]:
    """Read and strictly parse the DTB at ``path`` (``-``: standard input).

    The file must be a regular file of at most ``max_size`` bytes (default
    :data:`BLOB_MAX_SIZE`); standard input is read up to that many bytes.

    Any problem is one :class:`BlobError` line; when the parser rejects a blob
    that libfdt's ``fdt_check_full`` accepts, the line says so.
    """
    from fdtgen.errors import BlobError
    from fdtgen.fdt.parse import parse_blob
    from fdtgen.files import read_capped, read_regular

    limit = max_size if max_size is not None else BLOB_MAX_SIZE
    if path == "-":
        data = read_capped(sys.stdin.buffer, "standard input", limit, BlobError, MAX_BLOB_OPTION)
    else:
        data = read_regular(path, path, limit, BlobError, MAX_BLOB_OPTION)
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


def show_map(
    args: argparse.Namespace,
    rows: Sequence[Row],
    title: str,
    head: list[str],
    inputs: Sequence[tuple[str, str]] = (),
) -> None:
    """Write the SVG if asked (never over one of ``inputs``), then print
    ``head``, the table and the diagram as asked."""
    from fdtgen.pictures import diagram, svg, table

    if args.svg:
        write_atomic(args.svg, svg(rows, title).encode(), inputs)
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
