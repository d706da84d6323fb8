"""``fdtgen templates``: list the built-in templates and their pinned maps."""

from __future__ import annotations

import argparse

HELP = "list built-in templates, or show one template's pinned map"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="template name or path: show its regions")


def run(args: argparse.Namespace) -> int:
    from .templates import builtin_names, load_template

    if args.name is None:
        for name in builtin_names():
            t = load_template(name)
            print(f"{name:18} {t.description}")
        return 0
    t = load_template(args.name)
    print(f"template {t.name}: {t.description}")
    if t.source:
        print(f"source: {t.source}")
    for r in t.pinned_regions():
        print(f"  {r.tag:12} {r.range}  {r.range.size:#x}")
    for h in t.ram_holes:
        print(f"  {h.tag:12} {h.range}  {h.range.size:#x}  (DRAM hole: RAM is split around it)")
    return 0
