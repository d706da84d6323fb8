"""``fdtgen dts``: the DTS text of a machine config."""

from __future__ import annotations

import argparse
import sys

from .cliutil import add_config_arguments, load_config, write_atomic

HELP = "print the DTS of a machine config (or the embedded default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("-o", "--output", default="-", metavar="DTS", help="output path (default: stdout)")


def run(args: argparse.Namespace) -> int:
    from .dts import to_dts
    from .pipeline import build

    text = to_dts(build(load_config(args).machine()).tree)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text.encode())
    return 0
