"""``fdtgen verify``: will this DTB boot, and if not, why.

Any number of blobs and directories (searched for ``*.dtb``, recursively, in
sorted order) in one process. Exit 0 with no errors (warnings and notes too
unless ``--strict``), 1 when a blob has an error, 2 when a blob cannot be read
(one line on stderr for each; the others are still checked).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from fdtgen.cli.common import add_blob_size_argument, load_blob
from fdtgen.spec import DEFAULT_ADDRESS_WIDTH, MAX_ADDRESS_WIDTH

HELP = "check DTBs against the format, the bindings and booting.rst (exit 1 on errors)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "blobs",
        nargs="+",
        metavar="BLOB",
        help="a DTB to check (- for standard input), or a directory searched for *.dtb",
    )
    p.add_argument(
        "--profile",
        choices=("auto", "board", "microvm"),
        default="auto",
        help="rules for a final microVM blob or a board DTB a bootloader completes "
        "(default auto: microvm when the blob looks final)",
    )
    p.add_argument(
        "--strict", action="store_true", help="exit 1 on warnings and notes too, not only errors"
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="print every finding (default: the first 20 of each rule, and a count of the rest)",
    )
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
    from fdtgen.checks import Options, counts, findings_report, verify_parsed
    from fdtgen.checks.finding import ERROR, NOTE, WARNING
    from fdtgen.errors import BlobError, UsageError

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
    options = Options(
        manifest=manifest,
        template=template,
        dtc=None if args.no_dtc else shutil.which("dtc"),
        shared_spis=frozenset(args.shared_spi),
        address_bits=args.address_bits,
        profile=args.profile,
        cap=None if args.all else Options().cap,
    )
    paths = _blob_paths(args.blobs)
    totals = dict.fromkeys((ERROR, WARNING, NOTE), 0)
    unreadable = 0
    reports = []
    for path in paths:
        try:
            data, blob = load_blob(path, args.max_blob_size)
        except BlobError as e:
            print(f"fdtgen: error: {e}", file=sys.stderr)
            unreadable += 1
            continue
        findings = verify_parsed(blob, data, options)
        n = counts(findings)
        for k in totals:
            totals[k] += n[k]
        if args.json:
            reports.append(findings_report(findings, path))
            continue
        for f in findings:
            print(f)
        print(f"{path}: {_tally(n)}" if findings else f"{path}: clean")
    if args.json:
        import json

        doc: object = (
            reports[0]
            if len(args.blobs) == 1 and len(reports) == 1 and (not os.path.isdir(args.blobs[0]))
            else {"blobs": reports, "unreadable": unreadable, **_plural(totals)}
        )
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif len(paths) > 1 or (paths and os.path.isdir(args.blobs[0])):
        n_blobs = len(paths)
        line = f"{n_blobs} blob{'s' if n_blobs != 1 else ''}, {_tally(totals, always=True)}"
        print(line + (f", {unreadable} unreadable" if unreadable else ""))
    if unreadable:
        return 2
    if totals[ERROR] or (args.strict and (totals[WARNING] or totals[NOTE])):
        return 1
    return 0


def _blob_paths(args: list[str]) -> list[str]:
    """The blobs named: a file as given, a directory as its ``*.dtb`` files
    (recursively, sorted); a directory with none is a usage error."""
    from fdtgen.errors import UsageError

    out: list[str] = []
    for a in args:
        if a != "-" and os.path.isdir(a):
            found = sorted(
                os.path.join(d, f)
                for d, _, files in os.walk(a)
                for f in files
                if f.endswith(".dtb")
            )
            if not found:
                raise UsageError(f"{a}: a directory with no *.dtb file")
            out += found
        else:
            out.append(a)
    return out


def _plural(n: dict[str, int]) -> dict[str, int]:
    return {f"{k}s": v for k, v in n.items()}


def _tally(n: dict[str, int], always: bool = False) -> str:
    """``2 errors, 1 warning, 0 notes``: each severity with its count."""
    parts = [f"{v:,} {k}{'s' if v != 1 else ''}" for k, v in n.items() if v or always]
    return ", ".join(parts)
