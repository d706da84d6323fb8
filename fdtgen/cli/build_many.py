"""``fdtgen build-many``: a DTB (and manifest) for each of many configs, in one process."""

from __future__ import annotations

import argparse

from fdtgen.cli.common import add_input_size_arguments

HELP = "build many machines in one process (a directory of configs, or JSON lines on stdin)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        metavar="DIR|-",
        help="directory of *.toml/*.json configs, or - for JSON lines on stdin "
        '(one config object per line, optional "name")',
    )
    p.add_argument(
        "-o", "--output-dir", required=True, metavar="DIR", help="where NAME.dtb and NAME.json go"
    )
    p.add_argument("--kernel", metavar="IMAGE", help="kernel for every config that names none")
    p.add_argument("--initrd", metavar="FILE", help="initrd for every config that names none")
    p.add_argument("--template", help="template for every config that names none")
    p.add_argument("--no-manifest", action="store_true", help="write only the DTBs")
    add_input_size_arguments(p)
    p.add_argument(
        "--root",
        metavar="DIR",
        help="every kernel, initrd and template file a config names, and every output, "
        "must resolve inside DIR",
    )


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from fdtgen.batch import (
        build_items,
        check_inside,
        item_inputs,
        items_from_dir,
        items_from_lines,
        with_defaults,
    )
    from fdtgen.cli.common import write_all_atomic
    from fdtgen.errors import OutputError

    items = list(items_from_lines(sys.stdin)) if args.source == "-" else items_from_dir(args.source)
    if args.root is not None:  # before the command line's defaults join the configs' paths
        check_inside(args.root, args.output_dir, "command line: --output-dir")
        for item in items:
            for role, path in item_inputs(item):
                if role != "config":  # the config files are the ones the command line named
                    check_inside(args.root, path, f"{item.source}: {role}")
    defaults = {"kernel": args.kernel, "initrd": args.initrd, "template": args.template}
    defaults = {k: (os.path.abspath(v) if k != "template" else v) for k, v in defaults.items() if v}
    items = with_defaults(items, defaults)  # command-line defaults fill what a config leaves out
    caps = {"max_kernel": args.max_kernel_size}
    if args.max_initrd_size is not None:
        caps["max_initrd"] = args.max_initrd_size
    outputs = build_items(items, manifests=not args.no_manifest, **caps)
    if not os.path.isdir(args.output_dir):
        try:
            os.makedirs(args.output_dir)
        except OSError as e:
            raise OutputError(
                f"{args.output_dir}: output: cannot create the directory: {e.strerror}"
            ) from None
    files = []
    for out in outputs:
        files.append((os.path.join(args.output_dir, out.name + ".dtb"), out.dtb))
        if out.manifest is not None:
            files.append((os.path.join(args.output_dir, out.name + ".json"), out.manifest))
    if args.root is not None:
        for path, _ in files:
            check_inside(args.root, path, f"{path}: output")
    inputs = [pair for item in items for pair in item_inputs(item)]
    write_all_atomic(files, inputs, sync_each=False)
    print(f"built {len(outputs)} machines into {args.output_dir}", file=sys.stderr)
    return 0
