"""``fdtgen schema``: the JSON Schema of the manifest ``fdtgen build --manifest`` writes."""

from __future__ import annotations

import argparse

HELP = "print the JSON Schema of the placement manifest"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", default="-", metavar="JSON", help="output path (default: stdout)"
    )


def run(args: argparse.Namespace) -> int:
    from .cliutil import write_atomic
    from .manifest import schema_json

    write_atomic(args.output, schema_json())
    return 0
