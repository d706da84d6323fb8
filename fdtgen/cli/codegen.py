"""``fdtgen codegen``: a template's map as Rust or C constants with compile-time proofs."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, NoReturn

from fdtgen.errors import UsageError

if TYPE_CHECKING:
    from fdtgen.codegen.model import Module

HELP = "write a template's map as Rust or C constants with compile-time proofs (--check FILE)"
GENERATED_MAX_SIZE = 16 * 1024 * 1024  # a built-in template's file is tens of KiB


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="TOML or JSON machine config naming the template (default: the squib machine)",
    )
    p.add_argument("--template", help="built-in template name or path to a template .toml")
    p.add_argument("--lang", choices=("rust", "c"), help="the language to write")
    p.add_argument(
        "--virtio",
        type=int,
        help="virtio-mmio transports, where the VMM hands SPIs out in attach order "
        "(default: the template's slots)",
    )
    p.add_argument(
        "--address-width",
        type=int,
        metavar="BITS",
        help="guest physical address bits every range must fit (default: the template's, or 48)",
    )
    p.add_argument(
        "--prefix", help="C: the prefix of every name (default: the template's name, as SQUIB_)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write FILE atomically (default: stdout)")
    p.add_argument(
        "--check",
        metavar="FILE",
        help="report, one line each, where FILE and the template now disagree (exit 1); the "
        "inputs not given here are read from FILE's 'Regenerate:' line",
    )


class _HeaderParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


INPUTS = ("config", "template", "lang", "virtio", "address_width", "prefix")


def _command(args: argparse.Namespace) -> str:
    """The command line that regenerates the file, inputs only."""
    words = ["fdtgen", "codegen", "--lang", args.lang]
    if args.config:
        words.append(args.config)
    for key in INPUTS[1:]:
        value = getattr(args, key)
        if key != "lang" and value is not None and not (key == "prefix" and args.lang == "rust"):
            words += [f"--{key.replace('_', '-')}", str(value)]
    from fdtgen.codegen.render import unsafe_in_comments

    command = shlex.join(words)
    if unsafe_in_comments(command):
        raise UsageError(
            f"codegen: {command!r} cannot be written as the file's Regenerate: line (control "
            "characters, '/*', '*/' or '??' in a path or option); rename the input"
        )
    return command


def module(args: argparse.Namespace) -> Module:
    from fdtgen.codegen.items import build_module
    from fdtgen.config import load
    from fdtgen.errors import ConfigError, FdtgenError, located
    from fdtgen.template.load import load_template

    overrides = {
        "template": args.template,
        "virtio": args.virtio,
        "address_width": args.address_width,
    }
    config = load(args.config, overrides)
    m = config.machine()
    try:
        t = load_template(m.template)
        virtio = t.virtio.slots if m.virtio is None else m.virtio
        if not 0 <= virtio <= t.virtio.slots:
            raise ConfigError(
                f"virtio: {virtio} is outside 0..{t.virtio.slots} "
                f"(template {t.name!r} has {t.virtio.slots} virtio slots)",
                setting="virtio",
            )
        return build_module(
            t,
            virtio=virtio,
            serial=m.serial,
            address_width=m.address_width,
            redist_stride=m.redist_stride,
            ram_base=m.ram_base,
            command=_command(args),
        )
    except FdtgenError as e:  # a setting's error starts with where the setting came from
        if e.setting is None:
            raise
        raise located(e, config.source_of(e.setting)) from None


def run(args: argparse.Namespace) -> int:
    from fdtgen.codegen.render import render

    if args.check is not None:
        return _check(args)
    if args.lang is None:
        raise UsageError("codegen: give --lang rust or --lang c (or --check FILE)")
    _check_prefix(args)
    text = render(module(args), args.lang, args.prefix)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    from fdtgen.cli.common import write_atomic

    inputs = [("config", args.config)] if args.config else []
    if args.template and ("/" in args.template or args.template.endswith(".toml")):
        inputs.append(("template", args.template))
    write_atomic(args.output, text.encode(), inputs)
    return 0


def _check_prefix(args: argparse.Namespace) -> None:
    from fdtgen.codegen.render import PREFIX_RE

    if args.prefix is None:
        return
    if args.lang != "c":
        raise UsageError("codegen: --prefix names C macros; Rust constants live in a module")
    if not PREFIX_RE.fullmatch(args.prefix):
        raise UsageError(
            f"codegen: --prefix {args.prefix!r} must be a C identifier starting with a letter "
            "(letters, digits, _)"
        )


def _check(args: argparse.Namespace) -> int:
    from fdtgen.codegen.check import drift, regenerate_words
    from fdtgen.codegen.render import render
    from fdtgen.errors import FdtgenError, GeneratedFileError
    from fdtgen.files import read_regular

    if args.output is not None:
        raise UsageError("codegen: --check reads FILE and writes nothing; drop -o")
    path = args.check
    raw = read_regular(path, path, GENERATED_MAX_SIZE, GeneratedFileError)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise GeneratedFileError(
            f"{path}: not UTF-8 text, so not a file fdtgen codegen wrote"
        ) from None
    text = text.replace("\r\n", "\n")  # a checkout with CRLF line ends
    try:
        words = regenerate_words(text)
    except ValueError as e:
        raise GeneratedFileError(f"{path}: its Regenerate: line does not parse: {e}") from None
    if words is not None:
        header = _HeaderParser(prog="Regenerate:", add_help=False)
        add_arguments(header)
        try:
            recorded = header.parse_args(words)
        except UsageError as e:
            raise GeneratedFileError(f"{path}: its Regenerate: line does not parse: {e}") from None
        for key in INPUTS:
            if getattr(args, key) is None:
                setattr(args, key, getattr(recorded, key))
    if args.lang is None:
        raise GeneratedFileError(
            f"{path}: no 'Regenerate: fdtgen codegen' line in its first lines; "
            "give --lang and the inputs it was generated from"
        )
    _check_prefix(args)
    try:
        fresh = render(module(args), args.lang, args.prefix)
    except FdtgenError as e:
        if words is None:
            raise
        raise GeneratedFileError(f"{path}: regenerating it: {e}") from None
    findings = drift(path, text, fresh)
    for line in findings:
        print(line)
    if not findings:
        print(f"{path}: up to date with {_command(args)}")
    return 1 if findings else 0
