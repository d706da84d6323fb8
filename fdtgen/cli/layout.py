"""``fdtgen layout``: the resolved guest-physical map as a table, a diagram and an SVG."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fdtgen.cli.common import add_config_arguments

if TYPE_CHECKING:
    from fdtgen.pictures import Row

HELP = "show a machine's guest-physical map: table, address-map diagram, SVG picture"


def add_view_arguments(p: argparse.ArgumentParser, when: str = "") -> None:
    """``--table | --diagram`` and ``--svg FILE`` (shared with ``templates show``)."""
    show = p.add_mutually_exclusive_group()
    show.add_argument("--table", action="store_true", help=f"{when}print only the table")
    show.add_argument("--diagram", action="store_true", help=f"{when}print only the diagram")
    p.add_argument(
        "--svg", metavar="FILE", help=f"{when}also write the map as an SVG picture (- for stdout)"
    )


def show_map(args: argparse.Namespace, rows: Sequence[Row], title: str, head: list[str]) -> None:
    """Write the SVG if asked, then print ``head``, the table and the diagram as asked."""
    from fdtgen.cli.common import write_atomic
    from fdtgen.pictures import diagram, svg, table

    if args.svg:
        write_atomic(args.svg, svg(rows, title).encode())
        if args.svg == "-":
            return
    if args.diagram:  # the heading sits right on top of the picture
        print("\n".join([*head, *diagram(rows)]))
        return
    parts = ["\n".join(head)] if head else []
    parts.append("\n".join(table(rows)))
    if not args.table:
        parts.append("\n".join(diagram(rows)))
    print("\n\n".join(parts))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fdtgen.cli.build import add_boot_arguments

    add_config_arguments(p)
    add_boot_arguments(p)
    add_view_arguments(p)


def run(args: argparse.Namespace) -> int:
    from fdtgen.cli.build import load_boot_config
    from fdtgen.pictures import layout_rows
    from fdtgen.pipeline import build
    from fdtgen.units import fmt_size

    cfg = load_boot_config(args)
    b = build(cfg.machine(), cfg.boot())
    lay = b.layout
    title = (
        f"{lay.template.name}: {lay.vcpus} vCPUs, {fmt_size(sum(r.size for r in lay.ram), 2)} RAM"
    )
    if b.placement is not None:
        title += ", kernel placed"
    show_map(args, layout_rows(lay, b.placement), title, [title])
    return 0
