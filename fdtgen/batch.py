"""Many machines in one process: the fleet path behind ``fdtgen build-many``.

Each item is a config mapping with a name (and, when it came from a file,
that file as a manifest input, as ``fdtgen build CONFIG`` records it).
Everything is validated and built in memory first, so a bad item means
nothing is written; kernel and initrd files shared by many items are read
once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fdtgen.boot.image import (
    INITRD_MAX_SIZE,
    InputFile,
    KernelImage,
    input_file,
    read_initrd,
    read_kernel,
)
from fdtgen.config import anchor_paths, parse_file, parse_json, read_bytes, validate
from fdtgen.errors import ConfigError, FdtgenError, located
from fdtgen.manifest import manifest_for, to_json
from fdtgen.pipeline import build

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class BatchItemError(FdtgenError):
    """One item of a batch failed; ``cause`` is the original error."""

    def __init__(self, item: Item, cause: FdtgenError) -> None:
        super().__init__(f"{item.source}: {cause}")
        self.item, self.cause = item, cause
        cause.setting = None  # the line now says where


@dataclass(frozen=True, slots=True)
class Item:
    name: str
    data: dict[str, Any]
    source: str  # where errors say the item came from
    inputs: tuple[InputFile, ...] = ()  # files besides kernel and initrd, for the manifest
    from_cli: frozenset[str] = frozenset()  # keys an option filled in (errors: "command line")


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    dtb: bytes
    manifest: bytes | None


def items_from_dir(path: str) -> list[Item]:
    """Every ``*.toml`` and ``*.json`` config in ``path``, by file name."""
    import os

    try:
        names = sorted(os.listdir(path))
    except OSError as e:
        raise ConfigError(f"{path}: cannot list configs: {e.strerror}") from None
    out = []
    for name in names:
        stem, dot, ext = name.rpartition(".")
        if dot and ext.lower() in ("toml", "json"):
            full = os.path.join(path, name)
            raw = read_bytes(full)
            data = anchor_paths(parse_file(raw, full), full)
            out.append(Item(stem, data, full, (input_file("config", full, raw),)))
    if not out:
        raise ConfigError(f"{path}: no *.toml or *.json configs")
    return out


def with_defaults(items: Iterable[Item], defaults: Mapping[str, Any]) -> list[Item]:
    """Each item with ``defaults`` (command-line options) filling the keys it
    leaves out; an error about a key filled so starts with ``command line``."""
    out = []
    for item in items:
        filled = {k: v for k, v in defaults.items() if v is not None and k not in item.data}
        out.append(replace(item, data={**item.data, **filled}, from_cli=frozenset(filled)))
    return out


def item_inputs(item: Item) -> list[tuple[str, str]]:
    """The files ``item`` reads, as ``(role, path)``: its config file, and the
    kernel, initrd and template files it names."""
    out = [(f.role, f.path) for f in item.inputs]
    for role in ("kernel", "initrd", "template"):
        value = item.data.get(role)
        if not isinstance(value, str) or not value:
            continue
        if role != "template" or "/" in value or value.endswith(".toml"):
            out.append((role, value))
    return out


def check_inside(root: str, path: str, what: str) -> None:
    """Refuse ``path`` unless it resolves (symlinks followed) inside directory ``root``;
    the error line starts with ``what`` (where the path came from)."""
    import os

    top = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([top, real]) != top:
        raise ConfigError(f"{what}: {path!r} resolves to {real!r}, outside --root {root!r}")


def items_from_lines(lines: Iterable[str], source: str = "stdin") -> Iterator[Item]:
    """JSON lines: one config object per line; an optional ``"name"`` key names its outputs."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        data = parse_json(line, where)
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: each line must be a JSON object")
        name = data.pop("name", f"vm-{number:06d}")
        yield Item(name, data, where)


def build_items(
    items: Iterable[Item],
    overrides: dict[str, Any] | None = None,
    manifests: bool = True,
    *,
    max_kernel: int | None = None,
    max_initrd: int = INITRD_MAX_SIZE,
) -> list[Output]:
    """Build every item (with ``overrides`` applied); raises on the first bad one.

    An error about a key an option set (:attr:`Item.from_cli`) starts with
    ``command line``, as does a kernel or initrd file an option named (the
    file's own line); any other starts with the item's source.
    """
    kernels: dict[str, KernelImage] = {}
    initrds: dict[str, InputFile] = {}
    failed: list[str] = []  # the file a reader could not read

    def kernel(path: str) -> KernelImage:
        k = kernels.get(path)
        if k is None:
            failed[:] = [path]
            k = kernels[path] = read_kernel(path, max_kernel)
            failed.clear()
        return k

    def initrd(path: str) -> InputFile:
        i = initrds.get(path)
        if i is None:
            failed[:] = [path]
            i = initrds[path] = read_initrd(path, max_initrd)
            failed.clear()
        return i

    extra = {k: v for k, v in (overrides or {}).items() if v is not None}
    seen: set[str] = set()
    out = []
    for item in items:
        if not isinstance(item.name, str) or not NAME_RE.fullmatch(item.name):
            raise ConfigError(
                f"{item.source}: name {item.name!r} must be 1-128 of [A-Za-z0-9._-], "
                "starting with a letter or digit"
            )
        if item.name in seen:
            raise ConfigError(f"{item.source}: name {item.name!r} is used twice")
        seen.add(item.name)
        from_cli = item.from_cli | extra.keys()
        settings = validate({**item.data, **extra}, item.source, from_cli)
        try:
            boot = settings.boot(kernel, initrd)
            b = build(settings.machine(), boot)
        except FdtgenError as e:
            if e.setting is not None and settings.source_of(e.setting) == "command line":
                raise located(e, "command line") from None
            options = {item.data.get(k) for k in ("kernel", "initrd") if k in from_cli}
            if failed and failed[0] in options:
                raise  # the file an option named: its own line, as fdtgen build gives it
            raise BatchItemError(item, e) from None
        manifest = None
        if manifests and b.placement is not None:
            manifest = to_json(manifest_for(b, item.inputs), compact=True)
        out.append(Output(item.name, b.blob, manifest))
    return out
