"""``boot.*`` findings: booting.rst's rules for a blob and its placement manifest.

Part of :mod:`fdtgen.verify` (whose :class:`~fdtgen.verify.Options` carries the
manifest), loaded only when a manifest is given. :func:`load_manifest` and
:func:`manifest_from` read a manifest (``fdtgen build --manifest``) strictly.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from fdtgen.errors import ConfigError
from fdtgen.fdt.tree import Prop
from fdtgen.spec import (
    DEFAULT_TEXT_OFFSET,
    DTB_ALIGN,
    DTB_BLOCK,
    FDT_MAX_SIZE,
    INITRD_WINDOW_ALIGN,
    INITRD_WINDOW_SIZE,
    KERNEL_BASE_ALIGN,
)
from fdtgen.units import U64_MAX, align_down, align_up, is_aligned
from fdtgen.verify.core import Finding, _Ctx, _show, regions

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it as true)
if TYPE_CHECKING:
    from typing import Any

    from fdtgen.fdt.parse import Blob


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
    import json  # only --manifest needs it

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


def boot_findings(ctx: _Ctx, blob: Blob, m: BootManifest) -> list[Finding]:
    """Documentation/arch/arm64/booting.rst, rule by rule, for the manifest's placement."""
    out: list[Finding] = []

    def add(rule: str, value: str, message: str, path: str = "/", prop: str = "") -> None:
        out.append(Finding(f"boot.{rule}", path, prop, value, message))

    ram = [Span(b, s) for _, b, s in ctx.memory()]
    if sorted(ram, key=lambda r: r.base) != sorted(m.memory, key=lambda r: r.base):
        add(
            "memory",
            ", ".join(str(r) for r in m.memory),
            "the manifest's memory differs from the DT's /memory "
            + (", ".join(str(r) for r in ram) or "(none)"),
            "/memory",
        )

    def in_ram(s: Span) -> bool:
        return any(r.base <= s.base and s.end <= r.end for r in ram)

    def covered(s: Span, spans: Sequence[Span]) -> bool:
        """Every byte of ``s`` lies in one of ``spans`` (adjacent ranges join)."""
        at = s.base
        for r in sorted(spans, key=lambda r: r.base):
            if r.base <= at < r.end:
                at = r.end
        return at >= s.end

    reserved = [Span(b, s) for b, s in ctx.tree.reserve]
    reserved += [Span(r.base, r.size) for r in regions(ctx) if r.kind == "reserved"]

    # "4. Call the kernel image"
    text_offset = DEFAULT_TEXT_OFFSET if m.image_size == 0 else m.text_offset
    needed = max(m.image_size, m.kernel_size, 1)
    if m.kernel_reserved is not None and m.kernel_reserved < needed:
        add(
            "kernel-footprint",
            f"{m.kernel_reserved:#x}",
            f"kernel.reserved is less than the Image's image_size/size {needed:#x} "
            '(booting.rst: "At least image_size bytes from the start of the image must be free")',
        )
    kernel = Span(m.kernel_load, max(needed, m.kernel_reserved or 0))
    if m.kernel_load < text_offset or not is_aligned(
        m.kernel_load - text_offset, KERNEL_BASE_ALIGN
    ):
        add(
            "kernel-align",
            f"{m.kernel_load:#x}",
            f"kernel.load_address minus text_offset {text_offset:#x} is not 2 MiB aligned "
            '(booting.rst: "text_offset bytes from a 2MB aligned base address")',
        )
    if not in_ram(kernel):
        add(
            "kernel-ram",
            str(kernel),
            "the Image's reserved range (image_size, size or kernel.reserved bytes) is not "
            "inside one /memory range "
            '(booting.rst: "anywhere in usable system RAM", "At least image_size bytes ... free")',
        )
    for r in reserved:
        if kernel.base < r.end and r.base < kernel.end:
            add("kernel-reserved", str(kernel), f"the Image overlaps the reserved range {r}")
    if m.kernel_entry != m.kernel_load or m.pc != m.kernel_entry:
        add(
            "entry",
            f"{m.pc:#x}",
            f"pc {m.pc:#x} and kernel.entry {m.kernel_entry:#x} must both be the Image's "
            "first byte "
            f'{m.kernel_load:#x} (booting.rst: the Image is "called there")',
        )
    x0, x1, x2, x3 = m.registers
    if x0 != m.dtb.base:
        add("registers", f"{x0:#x}", f"x0 must be the DTB's address {m.dtb.base:#x} (booting.rst)")
    if (x1, x2, x3) != (0, 0, 0):
        add(
            "registers",
            f"{x1:#x} {x2:#x} {x3:#x}",
            'x1..x3 must be 0 (booting.rst: "reserved for future use")',
        )

    # "2. Setup the device tree"
    dtb = m.dtb
    if not is_aligned(dtb.base, DTB_ALIGN):
        add(
            "dtb-align",
            f"{dtb.base:#x}",
            "the DTB must be placed on an 8-byte boundary (booting.rst)",
        )
    if dtb.size != blob.header.totalsize:
        add(
            "dtb-size",
            f"{dtb.size:#x}",
            f"dtb.size is not this blob's totalsize {blob.header.totalsize:#x}",
        )
    if dtb.size > FDT_MAX_SIZE:
        add("dtb-size", f"{dtb.size:#x}", "the dtb must not exceed 2 megabytes (booting.rst)")
    if not in_ram(dtb):
        add("dtb-ram", str(dtb), 'x0 must point at the DTB "in system RAM" (booting.rst)')
    block = Span(
        align_down(dtb.base, DTB_BLOCK),
        align_up(dtb.end, DTB_BLOCK) - align_down(dtb.base, DTB_BLOCK),
    )
    for what, described in (("/memory", ram), ("the manifest's memory", m.memory)):
        if not covered(block, described):
            add(
                "dtb-block-ram",
                str(dtb),
                f"the DTB's 2 MiB block {block} is not wholly RAM in {what} "
                f"{', '.join(str(r) for r in described) or '(none)'} (booting.rst: the dtb is "
                '"mapped cacheable using blocks of up to 2 megabytes")',
            )
    if kernel.base < block.end and block.base < kernel.end:
        add(
            "dtb-block-kernel",
            str(dtb),
            f"the DTB's 2 MiB block {block} shares bytes with the kernel's reserved range "
            f'{kernel} (booting.rst: not "within any 2M region which must be mapped with any '
            'specific attributes")',
        )
    if m.initrd is not None and m.initrd.base < block.end and block.base < m.initrd.end:
        add(
            "dtb-block-initrd",
            str(dtb),
            f"the DTB's 2 MiB block {block} shares bytes with the initrd {m.initrd} "
            '(booting.rst: not "within any 2M region which must be mapped with any specific '
            'attributes")',
        )
    for dev in regions(ctx):
        if dev.kind == "device" and dev.base < block.end and block.base < dev.end:
            add(
                "dtb-block",
                str(dtb),
                f"the DTB's 2 MiB block {block} holds {dev.path} {dev}, which needs device "
                'attributes (booting.rst: not "within any 2M region which must be mapped with '
                'any specific attributes")',
            )

    # initrd: "within a 1 GB aligned physical memory window of up to 32 GB in size that
    # fully covers the kernel Image as well"
    chosen = ctx.nodes.get("/chosen")
    start_p = chosen.prop("linux,initrd-start") if chosen else None
    end_p = chosen.prop("linux,initrd-end") if chosen else None
    if m.initrd is not None:
        ird = m.initrd
        if not in_ram(ird):
            add("initrd-ram", str(ird), "the initrd is not inside one /memory range")
        lo = align_down(min(ird.base, kernel.base), INITRD_WINDOW_ALIGN)
        hi = align_up(max(ird.end, kernel.end), INITRD_WINDOW_ALIGN)
        if hi - lo > INITRD_WINDOW_SIZE:
            add(
                "initrd-window",
                str(ird),
                f"the smallest 1 GiB-aligned window covering it and the Image {kernel} is "
                f"[{lo:#x}, {hi:#x}), over 32 GiB (booting.rst; Linux drops the initrd)",
            )
        got = (_cells_value(start_p), _cells_value(end_p))
        if got != (ird.base, ird.end):
            shown = f"{_show(start_p) or '(none)'} .. {_show(end_p) or '(none)'}"
            add(
                "chosen-initrd",
                shown,
                f"/chosen linux,initrd-start/-end must be {ird.base:#x}/{ird.end:#x} "
                "(start inclusive, end exclusive: chosen.yaml)",
                "/chosen",
                "linux,initrd-start",
            )
    elif start_p is not None or end_p is not None:
        add(
            "chosen-initrd",
            _show(start_p),
            "/chosen names an initrd but the manifest loads none",
            "/chosen",
            "linux,initrd-start",
        )
    spans = [("kernel Image", kernel), ("DTB", dtb)] + ([("initrd", m.initrd)] if m.initrd else [])
    for i, (an, a) in enumerate(spans):
        for bn, b in spans[i + 1 :]:
            if a.base < b.end and b.base < a.end:
                add("overlap", f"{a} {b}", f"the {an} {a} and the {bn} {b} overlap")
    return out


def _cells_value(p: Prop | None) -> int | None:
    """A 1- or 2-cell number (chosen.yaml ``linux,initrd-*``)."""
    if p is None or len(p.value) not in (4, 8):
        return None
    return int.from_bytes(p.value, "big")
