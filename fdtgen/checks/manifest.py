"""Read the boot fields of a placement manifest, strictly, with the stdlib only.

A manifest is what ``fdtgen build --manifest`` writes (:mod:`fdtgen.manifest`
writes it; this reads it back for ``fdtgen verify --manifest``, with no
pydantic). :func:`load_manifest` reads a file and :func:`manifest_from` a
decoded mapping; any problem with either is one :class:`ConfigError` line
naming the field, its value and the rule.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from fdtgen.errors import ConfigError
from fdtgen.units import U64_MAX


@dataclass(frozen=True, slots=True)
class Span:
    """A guest-physical range ``[base, end)`` from the manifest."""

    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size

    def __str__(self) -> str:
        return f"[{self.base:#x}, {self.end:#x})"


@dataclass(frozen=True, slots=True)
class BootManifest:
    """The fields of a placement manifest the boot rules read (``fdtgen build --manifest``)."""

    kernel_load: int
    kernel_entry: int
    text_offset: int
    image_size: int
    kernel_size: int
    kernel_reserved: int | None
    initrd: Span | None
    dtb: Span
    registers: tuple[int, int, int, int]
    pc: int
    memory: tuple[Span, ...]


def load_manifest(path: str) -> BootManifest:
    """Read the boot fields of a placement manifest (JSON) with the stdlib only.

    Any problem with the file, its JSON or a field the boot rules read is one
    :class:`ConfigError` line."""
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read manifest: {e.strerror or e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON: nested too deeply to read") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    except ValueError:
        raise ConfigError(
            f"{path}: not valid JSON for a manifest: a number has more than "
            f"{sys.get_int_max_str_digits()} digits"
        ) from None
    return manifest_from(data, path)


_MANIFEST_HINT = "(a placement manifest from fdtgen build --manifest)"
_SPAN_KEYS = ("address", "size")
_ABSENT = object()


def _brief(v: Any, limit: int = 60) -> str:
    """A manifest value for an error line: integers in hex, anything else as repr, cut short."""
    text = f"{v:#x}" if type(v) is int else repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _u64(v: Any, where: str) -> int:
    """A manifest number: a JSON integer or an integer string ("0x8000_0000") in 0..2^64-1."""
    if isinstance(v, str):
        try:
            v = int(v, 0)
        except ValueError:
            raise ConfigError(f"{where}: {_brief(v)} is not an integer") from None
    if type(v) is not int or not 0 <= v <= U64_MAX:
        raise ConfigError(
            f"{where}: {_brief(v)} is not a 64-bit unsigned integer (0..{U64_MAX:#x})"
        )
    return v


def _range(base: int, size: int, where: str) -> Span:
    """A manifest range: at least one byte, ending at or below 2^64."""
    if size == 0:
        raise ConfigError(f"{where}.size: 0x0 is empty; a range needs at least one byte")
    if base + size > U64_MAX + 1:
        raise ConfigError(
            f"{where}: address {base:#x} + size {size:#x} ends past 2^64 (the range wraps)"
        )
    return Span(base, size)


def manifest_from(data: Any, source: str = "manifest") -> BootManifest:
    """The boot fields of a manifest mapping; a missing or wrong-typed field is a
    :class:`ConfigError` naming it, its value and the rule."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {_brief(data)} is not a JSON object {_MANIFEST_HINT}")

    def get(key: str, optional: bool = False) -> Any:
        cur: Any = data
        walked: list[str] = []
        for part in key.split("."):
            if not isinstance(cur, dict):
                raise ConfigError(
                    f"{source}: {'.'.join(walked)}: {_brief(cur)} is not an object {_MANIFEST_HINT}"
                )
            walked.append(part)
            if part not in cur:
                if optional:
                    return _ABSENT
                raise ConfigError(f"{source}: {key}: missing {_MANIFEST_HINT}")
            cur = cur[part]
        return cur

    def need(key: str) -> int:
        return _u64(get(key), f"{source}: {key}")

    def num(key: str) -> int | None:
        v = get(key, optional=True)
        return None if v is _ABSENT else _u64(v, f"{source}: {key}")

    def span(key: str) -> Span:
        return _range(need(f"{key}.address"), need(f"{key}.size"), f"{source}: {key}")

    memory = get("memory")
    if not isinstance(memory, list):
        raise ConfigError(
            f"{source}: memory: {_brief(memory)} is not a list of {{address, size}} objects"
        )
    spans = tuple(manifest_from_span(m, f"{source}: memory[{i}]") for i, m in enumerate(memory))
    initrd = get("initrd", optional=True)
    if initrd is not None and initrd is not _ABSENT:
        if not isinstance(initrd, dict):
            raise ConfigError(
                f"{source}: initrd: {_brief(initrd)} is not an {{address, size}} object or null"
            )
        initrd_span: Span | None = span("initrd")
    else:
        initrd_span = None
    kernel_load = need("kernel.load_address")
    image_size = need("kernel.image_size")
    kernel_size = num("kernel.size")
    kernel_reserved = num("kernel.reserved")
    if kernel_reserved == 0:
        raise ConfigError(f"{source}: kernel.reserved: 0x0 is empty; it must cover the Image")
    footprint = max(image_size, kernel_size or 0, kernel_reserved or 0, 1)
    _range(kernel_load, footprint, f"{source}: kernel")
    return BootManifest(
        kernel_load=kernel_load,
        kernel_entry=need("kernel.entry"),
        text_offset=need("kernel.text_offset"),
        image_size=image_size,
        kernel_size=kernel_size or 0,
        kernel_reserved=kernel_reserved,
        initrd=initrd_span,
        dtb=span("dtb"),
        registers=(
            need("registers.x0"),
            need("registers.x1"),
            need("registers.x2"),
            need("registers.x3"),
        ),
        pc=need("registers.pc"),
        memory=spans,
    )


def manifest_from_span(m: Any, where: str) -> Span:
    """One ``{address, size}`` entry of the manifest's ``memory`` list (exactly those keys)."""
    if not isinstance(m, dict):
        raise ConfigError(f"{where}: {_brief(m)} is not an {{address, size}} object")
    for key in _SPAN_KEYS:
        if key not in m:
            raise ConfigError(f"{where}.{key}: missing (an {{address, size}} object)")
    for key in m:
        if key not in _SPAN_KEYS:
            raise ConfigError(
                f"{where}: unknown key {_brief(key)} (an {{address, size}} object has no other)"
            )
    values = []
    for key in _SPAN_KEYS:
        v = m[key]
        if type(v) is not int or not 0 <= v <= U64_MAX:
            raise ConfigError(
                f"{where}.{key}: {_brief(v)} is not a 64-bit unsigned integer (0..{U64_MAX:#x})"
            )
        values.append(v)
    return _range(values[0], values[1], where)
