"""``fdtgen templates``: list the built-in templates; ``templates show NAME`` draws one's map."""

from __future__ import annotations

import argparse

from .errors import ConfigError

HELP = "list built-in templates, or show one template's pinned map (templates show NAME)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "words",
        nargs="*",
        metavar="show NAME",
        help="template name or path to a template .toml: print its pinned map",
    )
    show = p.add_mutually_exclusive_group()
    show.add_argument("--table", action="store_true", help="with show: only the table")
    show.add_argument("--diagram", action="store_true", help="with show: only the diagram")
    p.add_argument("--svg", metavar="FILE", help="with show: also write the map as SVG")


def run(args: argparse.Namespace) -> int:
    from .templates import builtin_names, load_template

    words = list(args.words)
    if words[:1] == ["show"]:
        words = words[1:]
    if len(words) > 1:
        raise ConfigError(f"templates: give one template to show, not {len(words)}: {words}")
    if not words:
        if args.svg or args.table or args.diagram:
            raise ConfigError("templates: --svg, --table and --diagram need a template to show")
        listed = [load_template(name) for name in builtin_names()]
        nw = max(len(t.name) for t in listed)
        vw = max(len(t.vmm) for t in listed)
        print(f"{'NAME':{nw}}  {'VMM':{vw}}  DESCRIPTION")
        for t in listed:
            print(f"{t.name:{nw}}  {t.vmm:{vw}}  {t.description}")
        return 0
    from .cliutil import write_atomic
    from .mapview import diagram, svg, table, template_rows

    t = load_template(words[0])
    rows = template_rows(t)
    title = f"template {t.name}" + (f" ({t.vmm})" if t.vmm else "")
    if args.svg:
        write_atomic(args.svg, svg(rows, title).encode())
        if args.svg == "-":
            return 0
    head = [title, t.description]
    if t.source:
        head.append(f"source: {t.source}")
    head.append(f"max_vcpus {t.max_vcpus}, GICv{t.gic.version}, {t.uart.kind} console")
    parts = ["\n".join(head)]
    if not args.diagram:
        parts.append("\n".join(table(rows)))
    if not args.table:
        parts.append("\n".join(diagram(rows)))
    print("\n\n".join(parts))
    return 0
