"""``fdtgen layout``: the resolved guest-physical map as a table, a diagram and an SVG."""

from __future__ import annotations

import argparse

from .cliutil import add_config_arguments

HELP = "show a machine's guest-physical map: table, address-map diagram, SVG picture"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .cmd_build import add_boot_arguments

    add_config_arguments(p)
    add_boot_arguments(p)
    show = p.add_mutually_exclusive_group()
    show.add_argument("--table", action="store_true", help="print only the table")
    show.add_argument("--diagram", action="store_true", help="print only the diagram")
    p.add_argument(
        "--svg", metavar="FILE", help="also write the diagram as an SVG picture (- for stdout)"
    )


def run(args: argparse.Namespace) -> int:
    from .cliutil import write_atomic
    from .cmd_build import load_boot_config
    from .mapview import diagram, layout_rows, svg, table
    from .pipeline import build

    cfg = load_boot_config(args)
    b = build(cfg.machine(), cfg.boot())
    rows = layout_rows(b.layout, b.placement)
    lay = b.layout
    ram = sum(r.size for r in lay.ram)
    from .mapview import human_size

    title = f"{lay.template.name}: {lay.vcpus} vCPUs, {human_size(ram)} RAM"
    if b.placement is not None:
        title += ", kernel placed"
    if args.svg:
        write_atomic(args.svg, svg(rows, title).encode())
        if args.svg == "-":
            return 0
    parts = []
    if not args.diagram:
        parts.append("\n".join([title, "", *table(rows)]))
    if not args.table:
        parts.append("\n".join(diagram(rows, "" if parts else title)))
    print("\n\n".join(parts))
    return 0
