"""``fdtgen verify``: will this DTB boot, and if not, why."""

from __future__ import annotations

import argparse
import shutil
import sys

from fdtgen.cli.common import add_blob_size_argument, load_blob
from fdtgen.spec import DEFAULT_ADDRESS_WIDTH, MAX_ADDRESS_WIDTH

HELP = "check any DTB against the format, the bindings and booting.rst (exit 1 on findings)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("blob", metavar="BLOB", help="the DTB to check (- for standard input)")
    p.add_argument(
        "--manifest",
        metavar="JSON",
        help="placement manifest (fdtgen build --manifest): check booting.rst placement",
    )
    p.add_argument(
        "--template", help="built-in template name or .toml path: check its pinned regions and SPIs"
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument(
        "--no-dtc", action="store_true", help="skip dtc's checks even when dtc is installed"
    )
    p.add_argument(
        "--address-bits",
        type=int,
        default=DEFAULT_ADDRESS_WIDTH,
        metavar="N",
        help=f"guest physical address width every reg must fit (default: {DEFAULT_ADDRESS_WIDTH})",
    )
    p.add_argument(
        "--shared-spi",
        type=int,
        action="append",
        default=[],
        metavar="SPI",
        help="an SPI number several nodes may share (repeatable)",
    )
    add_blob_size_argument(p)


def run(args: argparse.Namespace) -> int:
    from fdtgen.checks import Options, findings_json, verify_parsed
    from fdtgen.errors import UsageError

    if not 1 <= args.address_bits <= MAX_ADDRESS_WIDTH:
        raise UsageError(f"--address-bits: {args.address_bits} is outside 1..{MAX_ADDRESS_WIDTH}")
    for spi in args.shared_spi:
        if spi < 0:
            raise UsageError(f"--shared-spi: {spi} is not an SPI number")
    template = None
    if args.template:
        from fdtgen.template.load import load_template

        template = load_template(args.template)
    manifest = None
    if args.manifest:
        from fdtgen.checks.manifest import load_manifest

        manifest = load_manifest(args.manifest)
    data, blob = load_blob(args.blob, args.max_blob_size)
    options = Options(
        manifest=manifest,
        template=template,
        dtc=None if args.no_dtc else shutil.which("dtc"),
        shared_spis=frozenset(args.shared_spi),
        address_bits=args.address_bits,
    )
    findings = verify_parsed(blob, data, options)
    if args.json:
        sys.stdout.write(findings_json(findings, args.blob))
    else:
        for f in findings:
            print(f)
        n = len(findings)
        print(f"{args.blob}: {n} finding{'s' if n != 1 else ''}" if n else f"{args.blob}: clean")
    return 1 if findings else 0
