"""``fdtgen layout``: the resolved guest-physical map as a table, a diagram and an SVG."""

from __future__ import annotations

import argparse

from fdtgen.cli.common import add_config_arguments, add_view_arguments, show_map

HELP = "show a machine's guest-physical map: table, address-map diagram, SVG picture"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fdtgen.cli.common import add_boot_arguments

    add_config_arguments(p)
    add_boot_arguments(p)
    add_view_arguments(p)


def run(args: argparse.Namespace) -> int:
    from fdtgen.cli.common import input_paths, load_boot_config, readers
    from fdtgen.pictures import layout_rows
    from fdtgen.units import fmt_size

    cfg = load_boot_config(args)
    b = cfg.build(**readers(args))
    lay = b.layout
    title = (
        f"{lay.template.name}: {lay.vcpus} vCPUs, {fmt_size(sum(r.size for r in lay.ram), 2)} RAM"
    )
    if b.placement is not None:
        title += ", kernel placed"
    show_map(args, layout_rows(lay, b.placement), title, [title], input_paths(args, cfg))
    return 0
