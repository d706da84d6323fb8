"""Command-line entry point: ``fdtgen COMMAND ...``.

Each command lives in a module of this package with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; those modules import what
they need inside ``run`` so that commands which parse no config never import
pydantic. Exit codes: 0 success, 1 a check ran and found problems (verify,
diff), 2 rejected input (one line on stderr, nothing written). A command line
argparse rejects is one such line too (``fdtgen: error: command line: ...``,
no usage block); options are never abbreviated (``--vcpu`` is not ``--vcpus``).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from fdtgen.errors import SHOWN_CHARS, FdtgenError, located
from fdtgen.version import __version__

# Each command is a module of this package with HELP, add_arguments(parser) and
# run(args) -> int; only the one being run is imported.
COMMANDS = (
    "build",
    "build_many",
    "codegen",
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


class CommandLineError(Exception):
    """argparse rejected the command line (raised instead of its usage-and-exit)."""


# A quoted value in an argparse message (``invalid int value: '999...'``).
_QUOTED = re.compile(rf"'([^'\n]{{{SHOWN_CHARS + 1},}})'")


class _Parser(argparse.ArgumentParser):
    """argparse with a rejected command line as one line, its long values cut short."""

    def error(self, message: str) -> NoReturn:
        message = _QUOTED.sub(lambda m: f"{m[1][:SHOWN_CHARS]!r}... ({len(m[1])} chars)", message)
        raise CommandLineError(f"{message} (see {self.prog} --help)")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's (a cheaper start)."""
    p = _Parser(
        prog="fdtgen",
        description="Device trees and boot placement for aarch64 Linux microVMs.",
        allow_abbrev=False,
    )
    p.add_argument("--version", action="version", version=f"fdtgen {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        mod = importlib.import_module(f"fdtgen.cli.{name}")
        # The one-line help, as a sentence (str.capitalize would lowercase "DTB").
        sentence = mod.HELP[0].upper() + mod.HELP[1:] + "."
        sp = sub.add_parser(
            name.replace("_", "-"), help=mod.HELP, description=sentence, allow_abbrev=False
        )
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Import only the command being run; --help and unknown commands get them all.
    first = next((a for a in argv if not a.startswith("-")), None)
    name = None if first is None else first.replace("-", "_")
    only = name if name in COMMANDS and argv and argv[0] == first else None
    if not argv:  # no command: the list of commands, as a usage error
        parser().print_help(sys.stderr)
        return 2
    try:
        args = parser(only).parse_args(argv)
    except CommandLineError as e:
        print(f"fdtgen: error: command line: {e}", file=sys.stderr)
        return 2
    try:
        rc: int = args._run(args)
    except FdtgenError as e:
        if e.setting is not None:  # a setting no config file gave: an option's
            e = located(e, "command line")
        print(f"fdtgen: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
