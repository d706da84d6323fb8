"""``fdtgen diff``: what differs between two DTBs' trees."""

from __future__ import annotations

import argparse
import sys

from fdtgen.cli.common import add_blob_size_argument

HELP = "compare two DTBs as trees: nodes, properties, values (exit 1 if they differ)"
MAX_CHANGES = 1000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="the first DTB")
    p.add_argument("b", metavar="B", help="the second DTB")
    p.add_argument("--json", action="store_true", help="print the changes as JSON")
    p.add_argument(
        "--max-changes",
        type=int,
        default=MAX_CHANGES,
        metavar="N",
        help=f"print at most N changes and a count of the rest (default {MAX_CHANGES}; 0: all)",
    )
    add_blob_size_argument(p)


def run(args: argparse.Namespace) -> int:
    from fdtgen.cli.common import load_blob
    from fdtgen.diff import changes_json, diff_trees
    from fdtgen.errors import UsageError

    if args.max_changes < 0:
        raise UsageError(f"--max-changes: expected 0 (all) or more, found {args.max_changes}")
    _, a = load_blob(args.a, args.max_blob_size)
    _, b = load_blob(args.b, args.max_blob_size)
    changes = diff_trees(a.tree, b.tree)
    limit = args.max_changes or len(changes)
    if args.json:
        sys.stdout.write(changes_json(changes, args.a, args.b, limit))
    else:
        lines = [str(c) for c in changes[:limit]]
        if len(changes) > limit:
            lines.append(
                f"... {len(changes) - limit} more changes not shown ({len(changes)} in all; "
                "--max-changes 0 shows every one)"
            )
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
    return 1 if changes else 0
