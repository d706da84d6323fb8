"""``fdtgen build``: config (+ kernel, initrd) -> guest.dtb and the placement manifest."""

from __future__ import annotations

import argparse

from fdtgen.cli.common import (
    add_boot_arguments,
    add_config_arguments,
    config_inputs,
    input_paths,
    load_boot_config,
    readers,
    write_all_atomic,
)

HELP = "build the DTB for a machine config (or the embedded default), placing kernel and initrd"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    add_boot_arguments(p)
    p.add_argument(
        "-o", "--output", required=True, metavar="DTB", help="output DTB path (- for stdout)"
    )
    p.add_argument("--dts", metavar="DTS", help="also write the DTS text here")
    p.add_argument(
        "--manifest", metavar="JSON", help="also write the placement manifest here (needs a kernel)"
    )


def run(args: argparse.Namespace) -> int:

    cfg = load_boot_config(args)
    result = cfg.build(**readers(args))
    # The DTB first, the manifest (which records the DTB's sha256) last: a kill
    # between the renames leaves a new DTB beside an old manifest, which
    # verify --manifest reports by that digest.
    outputs = [(args.output, result.blob)]
    if args.dts:
        from fdtgen.fdt.dts import to_dts

        outputs.append((args.dts, to_dts(result.tree).encode()))
    if args.manifest:
        from fdtgen.manifest import manifest_for, to_json

        outputs.append((args.manifest, to_json(manifest_for(result, config_inputs(args)))))
    write_all_atomic(outputs, input_paths(args, cfg))
    return 0
