"""``fdtgen templates``: list the built-in templates; ``templates show NAME`` draws one's map."""

from __future__ import annotations

import argparse

from fdtgen.cli.common import add_view_arguments, show_map
from fdtgen.errors import UsageError
from fdtgen.spec import DEFAULT_ADDRESS_WIDTH

HELP = "list built-in templates, or show one template's pinned map (templates show NAME)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "words",
        nargs="*",
        metavar="show NAME",
        help="template name or path to a template .toml: print its pinned map",
    )
    add_view_arguments(p, when="with show: ")


def run(args: argparse.Namespace) -> int:
    from fdtgen.template.load import builtin_names, load_template

    words = list(args.words)
    if words[:1] == ["show"]:
        words = words[1:]
    if len(words) > 1:
        raise UsageError(f"templates: give one template to show, not {len(words)}: {words}")
    if not words:
        if args.svg or args.table or args.diagram:
            raise UsageError("templates: --svg, --table and --diagram need a template to show")
        listed = [load_template(name) for name in builtin_names()]
        nw = max(len(t.name) for t in listed)
        vw = max(len(t.vmm) for t in listed)
        print(f"{'NAME':{nw}}  {'VMM':{vw}}  DESCRIPTION")
        for t in listed:
            print(f"{t.name:{nw}}  {t.vmm:{vw}}  {t.description}")
        return 0
    from fdtgen.pictures import hex_addr, template_rows

    t = load_template(words[0])
    title = f"template {t.name}" + (f" ({t.vmm})" if t.vmm else "")
    head = [title, t.description]
    if t.source:
        head.append(f"source: {t.source}")
    head.append(f"max_vcpus {t.max_vcpus}, GICv{t.gic.version}, {t.uart.kind} console")
    after = None if t.pcie is None else t.pcie.mmio64_after_ram
    if after is not None:  # not a pinned region: its place follows each machine's RAM
        width = (
            f"2^{t.address_width}"
            if t.address_width
            else f"2^address_width (default {DEFAULT_ADDRESS_WIDTH})"
        )
        top = f" - {hex_addr(after.top)}" if after.top else ""
        start = f"RAM end + {hex_addr(after.gap)}" if after.gap else "RAM end"
        if after.floor:
            start = f"max({hex_addr(after.floor)}, {start})"
        head.append(f"pcie-mmio64 follows RAM: {start} .. {width}{top}")
    path_like = "/" in words[0] or words[0].endswith(".toml")
    show_map(args, template_rows(t), title, head, [("template", words[0])] if path_like else [])
    return 0
