"""``fdtgen schema config|manifest``: the JSON Schemas of the config and of the manifest."""

from __future__ import annotations

import argparse

HELP = "print the JSON Schema of the machine config or of the placement manifest"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "which",
        nargs="?",
        choices=("config", "manifest"),
        default="manifest",
        help="config: what a machine config may hold; manifest (default): what "
        "fdtgen build --manifest writes",
    )
    p.add_argument(
        "-o", "--output", default="-", metavar="JSON", help="output path (default: stdout)"
    )


def run(args: argparse.Namespace) -> int:
    from fdtgen.cli.common import write_atomic

    if args.which == "config":
        from fdtgen.config import schema_json
    else:
        from fdtgen.manifest import schema_json
    write_atomic(args.output, schema_json())
    return 0
