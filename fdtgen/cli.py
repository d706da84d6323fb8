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
import pkgutil
import sys
from collections.abc import Sequence

from . import __version__
from .errors import FdtgenError


def _commands() -> list[str]:
    pkg = importlib.import_module("fdtgen")
    return sorted(m.name[4:] for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fdtgen",
        description="Device trees and boot placement for aarch64 Linux microVMs.",
    )
    p.add_argument("--version", action="version", version=f"fdtgen {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _commands():
        mod = importlib.import_module(f"fdtgen.cmd_{name}")
        sp = sub.add_parser(
            name.replace("_", "-"), help=mod.HELP, description=mod.HELP.capitalize() + "."
        )
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
