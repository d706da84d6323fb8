"""``fdtgen build``: config (+ kernel, initrd) -> guest.dtb and the placement manifest."""

from __future__ import annotations

import argparse

from fdtgen.cli.common import add_config_arguments, load_config, write_all_atomic

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it as true)
if TYPE_CHECKING:
    from fdtgen.boot.image import InputFile
    from fdtgen.config import Config

HELP = "build the DTB for a machine config (or the embedded default), placing kernel and initrd"


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

    if not args.config:
        return []
    with open(args.config, "rb") as f:
        return [input_file("config", args.config, f.read())]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    add_boot_arguments(p)
    p.add_argument(
        "-o", "--output", required=True, metavar="DTB", help="output DTB path (- for stdout)"
    )
    p.add_argument("--dts", metavar="DTS", help="also write the DTS text here")
    p.add_argument(
        "--manifest", metavar="JSON", help="also write the placement manifest here (needs a kernel)"
    )


def run(args: argparse.Namespace) -> int:
    from fdtgen.pipeline import build

    cfg = load_boot_config(args)
    result = build(cfg.machine(), cfg.boot())
    outputs = [(args.output, result.blob)]
    if args.dts:
        from fdtgen.fdt.dts import to_dts

        outputs.append((args.dts, to_dts(result.tree).encode()))
    if args.manifest:
        from fdtgen.manifest import manifest_for, to_json

        outputs.append((args.manifest, to_json(manifest_for(result, config_inputs(args)))))
    write_all_atomic(outputs)
    return 0
