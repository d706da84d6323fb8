"""``fdtgen diff``: what differs between two DTBs' trees."""

from __future__ import annotations

import argparse
import sys

from fdtgen.cli.common import add_blob_size_argument

HELP = "compare two DTBs as trees: nodes, properties, values (exit 1 if they differ)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="the first DTB")
    p.add_argument("b", metavar="B", help="the second DTB")
    p.add_argument("--json", action="store_true", help="print the changes as JSON")
    add_blob_size_argument(p)


def run(args: argparse.Namespace) -> int:
    from fdtgen.cli.common import load_blob
    from fdtgen.diff import changes_json, diff_trees

    _, a = load_blob(args.a, args.max_blob_size)
    _, b = load_blob(args.b, args.max_blob_size)
    changes = diff_trees(a.tree, b.tree)
    if args.json:
        sys.stdout.write(changes_json(changes, args.a, args.b))
    else:
        for c in changes:
            print(c)
    return 1 if changes else 0
