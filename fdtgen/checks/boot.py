"""``boot.*`` findings: booting.rst's rules for a blob and its placement manifest.

Loaded by :mod:`fdtgen.checks` only when a manifest is given. The manifest is
the one model, :class:`fdtgen.manifest.Manifest`, already held to it
(:mod:`fdtgen.checks.manifest` reads a file through
:func:`fdtgen.manifest.from_json`); the rules only read its fields. They are
checked from Documentation/arch/arm64/booting.rst directly, independently of
:mod:`fdtgen.boot.placement`, which chose the placement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fdtgen.checks.finding import Finding
from fdtgen.checks.index import TreeIndex, show
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
from fdtgen.units import align_down, align_up, is_aligned

if TYPE_CHECKING:
    from fdtgen.fdt.parse import Blob
    from fdtgen.manifest import Manifest


@dataclass(frozen=True, slots=True)
class Span:
    """A guest-physical range ``[base, end)``, from the manifest or the tree."""

    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size

    def __str__(self) -> str:
        return f"[{self.base:#x}, {self.end:#x})"


def boot_findings(
    index: TreeIndex, blob: Blob, m: Manifest, buf: bytes | None = None
) -> list[Finding]:
    """Documentation/arch/arm64/booting.rst, rule by rule, for the manifest's
    placement; with the blob's bytes ``buf``, first whether it is the DTB the
    manifest was written for (``dtb.sha256``)."""
    out: list[Finding] = []

    def add(rule: str, value: str, message: str, path: str = "/", prop: str = "") -> None:
        out.append(Finding(f"boot.{rule}", path, prop, value, message))

    want = m["dtb"].get("sha256")
    if buf is not None and want is not None and not _digest_matches(buf, want, m):
        import hashlib

        add(
            "dtb-sha256",
            hashlib.sha256(buf).hexdigest(),
            f"the blob's sha256 is not the manifest's dtb.sha256 {want}: this is not the DTB "
            "the manifest was written for (an older or newer build, or an interrupted write)",
        )

    k, regs = m["kernel"], m["registers"]
    load, entry, pc = k["load_address"], k["entry"], regs["pc"]
    memory = [Span(r["address"], r["size"]) for r in m["memory"]]
    dtb = Span(m["dtb"]["address"], m["dtb"]["size"])
    ird = m["initrd"]
    initrd = None if ird is None else Span(ird["address"], ird["size"])

    ram = [Span(b, s) for _, b, s in index.memory()]
    if sorted(ram, key=lambda r: r.base) != sorted(memory, key=lambda r: r.base):
        add(
            "memory",
            ", ".join(str(r) for r in memory),
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

    reserved = [Span(b, s) for b, s in index.tree.reserve]
    reserved += [Span(r.base, r.size) for r in index.regions() if r.kind == "reserved"]

    # "4. Call the kernel image"
    text_offset = DEFAULT_TEXT_OFFSET if k["image_size"] == 0 else k["text_offset"]
    needed = max(k["image_size"], k["size"], 1)
    if k["reserved"] < needed:
        add(
            "kernel-footprint",
            f"{k['reserved']:#x}",
            f"kernel.reserved is less than the Image's image_size/size {needed:#x} "
            '(booting.rst: "At least image_size bytes from the start of the image must be free")',
        )
    kernel = Span(load, max(needed, k["reserved"]))
    if load < text_offset or not is_aligned(load - text_offset, KERNEL_BASE_ALIGN):
        add(
            "kernel-align",
            f"{load:#x}",
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
    if entry != load or pc != entry:
        add(
            "entry",
            f"{pc:#x}",
            f"pc {pc:#x} and kernel.entry {entry:#x} must both be the Image's first byte "
            f'{load:#x} (booting.rst: the Image is "called there")',
        )
    x0, x1, x2, x3 = regs["x0"], regs["x1"], regs["x2"], regs["x3"]
    if x0 != dtb.base:
        add("registers", f"{x0:#x}", f"x0 must be the DTB's address {dtb.base:#x} (booting.rst)")
    if (x1, x2, x3) != (0, 0, 0):
        add(
            "registers",
            f"{x1:#x} {x2:#x} {x3:#x}",
            'x1..x3 must be 0 (booting.rst: "reserved for future use")',
        )

    # "2. Setup the device tree"
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
    for what, described in (("/memory", ram), ("the manifest's memory", memory)):
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
    if initrd is not None and initrd.base < block.end and block.base < initrd.end:
        add(
            "dtb-block-initrd",
            str(dtb),
            f"the DTB's 2 MiB block {block} shares bytes with the initrd {initrd} "
            '(booting.rst: not "within any 2M region which must be mapped with any specific '
            'attributes")',
        )
    for dev in index.regions():
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
    chosen = index.nodes.get("/chosen")
    start_p = chosen.prop("linux,initrd-start") if chosen else None
    end_p = chosen.prop("linux,initrd-end") if chosen else None
    if initrd is not None:
        if not in_ram(initrd):
            add("initrd-ram", str(initrd), "the initrd is not inside one /memory range")
        lo = align_down(min(initrd.base, kernel.base), INITRD_WINDOW_ALIGN)
        hi = align_up(max(initrd.end, kernel.end), INITRD_WINDOW_ALIGN)
        if hi - lo > INITRD_WINDOW_SIZE:
            add(
                "initrd-window",
                str(initrd),
                f"the smallest 1 GiB-aligned window covering it and the Image {kernel} is "
                f"[{lo:#x}, {hi:#x}), over 32 GiB (booting.rst; Linux drops the initrd)",
            )
        got = (_cells_value(start_p), _cells_value(end_p))
        if got != (initrd.base, initrd.end):
            shown = f"{show(start_p) or '(none)'} .. {show(end_p) or '(none)'}"
            add(
                "chosen-initrd",
                shown,
                f"/chosen linux,initrd-start/-end must be {initrd.base:#x}/{initrd.end:#x} "
                "(start inclusive, end exclusive: chosen.yaml)",
                "/chosen",
                "linux,initrd-start",
            )
    elif start_p is not None or end_p is not None:
        add(
            "chosen-initrd",
            show(start_p),
            "/chosen names an initrd but the manifest loads none",
            "/chosen",
            "linux,initrd-start",
        )
    spans = [("kernel Image", kernel), ("DTB", dtb)] + ([("initrd", initrd)] if initrd else [])
    for i, (an, a) in enumerate(spans):
        for bn, b in spans[i + 1 :]:
            if a.base < b.end and b.base < a.end:
                add("overlap", f"{a} {b}", f"the {an} {a} and the {bn} {b} overlap")
    return out


def _digest_matches(buf: bytes, want: str, m: Manifest) -> bool:
    """``buf`` hashes to ``want`` as written, or once the patch slots a loader
    fills per boot (``derived`` false) are zero again, as they were written."""
    import hashlib

    if hashlib.sha256(buf).hexdigest() == want:
        return True
    unfilled = bytearray(buf)
    slots = [s for s in m["patch_slots"] if not s["derived"]]
    for s in slots:
        end = s["offset"] + s["size"]
        if end > len(unfilled):
            return False
        unfilled[s["offset"] : end] = bytes(s["size"])
    return bool(slots) and hashlib.sha256(unfilled).hexdigest() == want


def _cells_value(p: Prop | None) -> int | None:
    """A 1- or 2-cell number (chosen.yaml ``linux,initrd-*``)."""
    if p is None or len(p.value) not in (4, 8):
        return None
    return int.from_bytes(p.value, "big")
