"""Command-line entry point: ``fdtgen COMMAND ...``.

Each command lives in a module of this package with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; those modules import what
they need inside ``run`` so that commands which parse no config never import
pydantic. Exit codes: 0 success, 1 a check ran and found problems (verify,
diff), 2 rejected input (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fdtgen.errors import FdtgenError
from fdtgen.version import __version__

# Each command is a module of this package with HELP, add_arguments(parser) and
# run(args) -> int; only the one being run is imported.
COMMANDS = (
    "build",
    "build_many",
    "debian_kernel",
    "diff",
    "dts",
    "layout",
    "place",
    "qemu",
    "schema",
    "templates",
    "verify",
)


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's (a cheaper start)."""
    p = argparse.ArgumentParser(
        prog="fdtgen",
        description="Device trees and boot placement for aarch64 Linux microVMs.",
    )
    p.add_argument("--version", action="version", version=f"fdtgen {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        mod = importlib.import_module(f"fdtgen.cli.{name}")
        # The one-line help, as a sentence (str.capitalize would lowercase "DTB").
        sentence = mod.HELP[0].upper() + mod.HELP[1:] + "."
        sp = sub.add_parser(name.replace("_", "-"), help=mod.HELP, description=sentence)
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Import only the command being run; --help and unknown commands get them all.
    first = next((a for a in argv if not a.startswith("-")), None)
    name = None if first is None else first.replace("-", "_")
    only = name if name in COMMANDS and argv and argv[0] == first else None
    args = parser(only).parse_args(argv)
    try:
        rc: int = args._run(args)
    except FdtgenError as e:
        print(f"fdtgen: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
