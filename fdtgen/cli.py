"""Command-line entry point: ``fdtgen COMMAND ...``.

Each command lives in a module ``fdtgen/cmd_<name>.py`` with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; those modules import what
they need inside ``run`` so that commands which parse no config never import
pydantic. Exit codes: 0 success, 1 a check ran and found problems (verify,
diff), 2 rejected input (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import FdtgenError


def _commands() -> list[str]:
    here = os.path.dirname(__file__)
    return sorted(
        name[4:-3] for name in os.listdir(here) if name.startswith("cmd_") and name.endswith(".py")
    )


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, sized without importing ``shutil``.

    argparse makes a formatter for every ``add_argument`` call, and the stock
    one imports ``shutil`` (and with it ``zlib``, ``bz2`` and ``lzma``) for
    the terminal width: several milliseconds of every command's start.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's (a cheaper start)."""
    p = argparse.ArgumentParser(
        prog="fdtgen",
        description="Device trees and boot placement for aarch64 Linux microVMs.",
        formatter_class=_Formatter,
    )
    p.add_argument("--version", action="version", version=f"fdtgen {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _commands():
        if only is not None and name != only:
            continue
        mod = importlib.import_module(f"fdtgen.cmd_{name}")
        # The one-line help, as a sentence (str.capitalize would lowercase "DTB").
        sentence = mod.HELP[0].upper() + mod.HELP[1:] + "."
        sp = sub.add_parser(
            name.replace("_", "-"), help=mod.HELP, description=sentence, formatter_class=_Formatter
        )
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Import only the command being run; --help and unknown commands get them all.
    first = next((a for a in argv if not a.startswith("-")), None)
    name = None if first is None else first.replace("-", "_")
    only = name if name in _commands() and argv and argv[0] == first else None
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
