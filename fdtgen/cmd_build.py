"""``fdtgen build``: config -> guest.dtb."""

from __future__ import annotations

import argparse

from .cliutil import add_config_arguments, load_config, write_all_atomic

HELP = "build the DTB for a machine config (or the embedded default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="DTB", help="output DTB path (- for stdout)")
    p.add_argument("--dts", metavar="DTS", help="also write the DTS text here")


def run(args: argparse.Namespace) -> int:
    from .dts import to_dts
    from .pipeline import build

    result = build(load_config(args).machine())
    outputs = [(args.output, result.blob)]
    if args.dts:
        outputs.append((args.dts, to_dts(result.tree).encode()))
    write_all_atomic(outputs)
    return 0
