"""``template.*`` findings: a blob against the template it claims to follow.

Loaded by :mod:`fdtgen.checks` only when a template is given: every node sits
in the region the template pins for it, at the pinned base, with the pinned
SPI, and the timers use the template's PPIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fdtgen.checks.finding import Finding
from fdtgen.checks.index import TIMER_COMPATIBLE, TreeIndex, show, show_specifier
from fdtgen.checks.pci import SPACE_MASK, host_bridges, windows_of
from fdtgen.spec import (
    DEFAULT_ADDRESS_WIDTH,
    PPI_INTID_BASE,
    PREFETCHABLE,
    SPACE_IO,
    SPACE_MEM32,
    SPACE_MEM64,
    SPI_INTID_BASE,
)
from fdtgen.template.registry import KINDS, VIRTIO_MMIO

if TYPE_CHECKING:
    from fdtgen.ranges import Range
    from fdtgen.template.model import Template


def template_findings(
    index: TreeIndex, t: Template, address_bits: int = DEFAULT_ADDRESS_WIDTH
) -> list[Finding]:
    """Each node sits in the region the template pins for it (``pinned_regions``
    tags), at the pinned base, with the pinned SPI. A reserved region may hold
    nodes that describe what it reserves (QEMU's flash), but none may straddle it."""
    out: list[Finding] = []
    pinned = {r.tag: r.range for r in t.pinned_regions()}
    reserved = {r.tag: r.range for r in t.reserved}
    dram = [rng for tag, rng in pinned.items() if tag.startswith("dram")]

    def inside(
        path: str, tag: str, base: int, size: int, ranges: Sequence[Range], exact: bool = False
    ) -> None:
        if not ranges:
            return
        ok = any(r.base <= base and base + size <= r.end for r in ranges)
        if ok and exact and base != ranges[0].base:
            ok = False
        if not ok:
            where = " or ".join(str(r) for r in ranges)
            rule = "at the base of" if exact else "inside"
            out.append(
                Finding(
                    f"template.{tag}",
                    path,
                    "reg",
                    f"[{base:#x}, {base + size:#x})",
                    f"template {t.name!r} pins {tag!r} {rule} {where}",
                )
            )

    anchor = t.gic.redist_anchor
    its_follows = t.gic.its_below_redist
    first_gicr: int | None = None
    for path in index.order:
        version = index.gic_version(path)
        if version is None:
            continue
        entries = [(index.translate(path, b), s) for b, s in index.reg(path) or ()]
        if entries and entries[0][0] is not None:
            inside(
                path,
                "gic-dist",
                entries[0][0],
                entries[0][1],
                _pick(pinned, "gic-dist"),
                exact=True,
            )
        rest = [(b, s) for b, s in entries[1:] if b is not None]
        if version == 3:
            nr = index.cell(path, "#redistributor-regions") or 1
            windows = _pick(pinned, "gic-redist", "gic-redist2")
            gicr = rest[:nr]
            for b, s in gicr:
                inside(path, "gic-redist", b, s, windows)
            if gicr and windows:
                first_gicr = gicr[0][0]
                # The live frames start at the window's base, or end at its end
                # when the template anchors them there (below the distributor).
                b, s = gicr[0] if anchor != "end" else gicr[-1]
                edge = windows[0].base if anchor != "end" else windows[0].end
                if (b if anchor != "end" else b + s) != edge:
                    out.append(
                        Finding(
                            "template.gic-redist",
                            path,
                            "reg",
                            f"[{b:#x}, {b + s:#x})",
                            f"template {t.name!r} anchors the redistributors at the {anchor} "
                            f"of the 'gic-redist' window {windows[0]} ({edge:#x})",
                        )
                    )
        elif rest:
            inside(path, "gic-cpu", rest[0][0], rest[0][1], _pick(pinned, "gic-cpu"), exact=True)
    for tag, compat in (("gic-its", "arm,gic-v3-its"), ("gic-v2m", "arm,gic-v2m-frame")):
        for path in index.with_compatible({compat}):
            for b, s in index.cpu_reg(path):
                if tag == "gic-its" and its_follows and first_gicr is not None:
                    if b + s != first_gicr:
                        out.append(
                            Finding(
                                "template.gic-its",
                                path,
                                "reg",
                                f"[{b:#x}, {b + s:#x})",
                                f"template {t.name!r} puts the ITS right below the "
                                f"redistributors (ending at {first_gicr:#x})",
                            )
                        )
                else:
                    inside(path, tag, b, s, _pick(pinned, tag))
    # The node a pinned region or SPI belongs to is found by its kind's compatible,
    # and among several nodes of one kind (crosvm's four 16550s) by its base.
    by_compat: dict[str, list[tuple[str, Range, int | None]]] = {}
    uart = (KINDS[t.uart.kind].recognised_by, "uart0", t.uart.spi.number)
    owners = [uart] + [
        (KINDS[d.kind].recognised_by, d.tag, None if d.spi is None else d.spi.number)
        for d in t.devices
    ]
    for compat, tag, spi in owners:
        if tag in pinned:
            by_compat.setdefault(compat, []).append((tag, pinned[tag], spi))
    for compat, wanted in by_compat.items():
        for path in index.with_compatible({compat}):
            regs = index.cpu_reg(path)
            base = regs[0][0] if regs else None
            match = next((w for w in wanted if w[1].base == base), wanted[0])
            tag, _, spi = match
            for b, s in regs:
                inside(path, tag, b, s, [match[1]], exact=True)
            # A VMM that hands lines out in order moves them with the machine's
            # virtio count; the blob's own numbering is checked by bindings.
            if spi is not None and tag not in t.irq_order:
                out += _template_spi(index, t, path, tag, spi)
    want = tuple(ppi.number for ppi in t.timer_ppis)
    for path in index.with_compatible(TIMER_COMPATIBLE):
        decoded = index.specifiers(path)
        if decoded is None:
            continue
        got = tuple(spec[1] if len(spec) > 1 and spec[0] == 1 else -1 for _, spec in decoded)
        if got != want:
            out.append(
                Finding(
                    "template.timer",
                    path,
                    "interrupts",
                    show(index.interrupts_prop(path)),
                    f"template {t.name!r} wires the timers to PPIs {list(want)} "
                    f"(INTIDs {[n + PPI_INTID_BASE for n in want]})",
                )
            )
    v = t.virtio
    window = pinned.get("virtio")
    for path in index.with_compatible({VIRTIO_MMIO.recognised_by}):
        for b, s in index.cpu_reg(path):
            inside(path, "virtio", b, s, [window] if window else [])
            if window is not None and window.base <= b < window.end:
                slot, off = divmod(b - window.base, v.stride)
                if off or s > v.stride:
                    out.append(
                        Finding(
                            "template.virtio",
                            path,
                            "reg",
                            f"[{b:#x}, {b + s:#x})",
                            f"is not one {v.stride:#x}-byte slot of the virtio window {window}",
                        )
                    )
                else:
                    out += _template_spi(
                        index,
                        t,
                        path,
                        f"virtio slot {slot}",
                        v.first_spi.number + (0 if v.shared_spi else slot),
                    )
    if t.gic.spis is not None:
        out += _past_gic_spis(index, t, t.gic.spis)
    out += _bridge_windows(index, t, address_bits)
    for path, base, size in index.memory():
        inside(path, "dram", base, size, dram)
    for r in index.regions():
        if r.kind == "reserved":
            continue
        for tag, rng in reserved.items():
            if (
                r.base < rng.end
                and rng.base < r.end
                and not (rng.base <= r.base and r.end <= rng.end)
            ):
                out.append(
                    Finding(
                        f"template.{tag}",
                        r.path,
                        "reg",
                        f"{r}",
                        f"straddles the edge of the template's reserved region {tag!r} {rng}",
                    )
                )
    return out


_WINDOW_TAGS = {SPACE_IO: "pcie-io", SPACE_MEM32: "pcie-mmio32", SPACE_MEM64: "pcie-mmio64"}


def _bridge_windows(index: TreeIndex, t: Template, address_bits: int) -> list[Finding]:
    """The template's host bridge (the one whose ``reg`` starts at the template's
    configuration space) decodes only the windows the template gives it: one
    window per space, each inside the template's window of that space, the
    64-bit one prefetchable as the template says. A window that follows RAM
    starts where the template's rule puts it after the blob's RAM and ends by
    ``2^width - mmio64_below_top``, the width being the template's
    ``address_width``, else ``address_bits``."""
    p = t.pcie
    if p is None:
        return []
    pinned = {tag: r for tag, _, r in p.windows()}
    after = p.mmio64_after_ram
    ram_end = max((b + s for _, b, s in index.memory()), default=None)
    bits = address_bits if t.address_width is None else t.address_width
    out: list[Finding] = []
    for path in host_bridges(index):
        if not any(index.translate(path, b) == p.config.base for b, _ in index.reg(path) or ()):
            continue
        seen: set[str] = set()
        for w in windows_of(index, path) or ():
            tag = _WINDOW_TAGS.get(w.hi & SPACE_MASK)
            if tag is None:
                continue
            what = tag.removeprefix("pcie-")
            end = w.cpu + w.size
            rules = []
            if tag in seen:
                rules.append(f"gives the bridge one {what} window")
            seen.add(tag)
            if tag == "pcie-mmio64" and bool(w.hi & PREFETCHABLE) != p.prefetchable64:
                rules.append(
                    "marks the 64-bit window "
                    + ("prefetchable" if p.prefetchable64 else "not prefetchable")
                )
            if tag == "pcie-mmio64" and after is not None:
                top = after.end(bits)
                if ram_end is not None and w.cpu != (start := after.start(ram_end)):
                    floor = f", never below {after.floor:#x}" if after.floor else ""
                    rules.append(
                        f"starts the 64-bit window {after.gap:#x} past the end of RAM "
                        f"({ram_end:#x}){floor}: at {start:#x}"
                    )
                if end > top:
                    below = f"{after.top:#x} below " if after.top else ""
                    rules.append(f"ends the 64-bit window by {top:#x} ({below}2^{bits})")
            elif tag not in pinned:
                rules.append(f"gives the bridge no {what} window")
            elif not (pinned[tag].base <= w.cpu and end <= pinned[tag].end):
                rules.append(f"pins {tag!r} at {pinned[tag]}")
            out += [
                Finding(
                    f"template.{tag}",
                    path,
                    "ranges",
                    f"entry {w.entry} [{w.cpu:#x}, {end:#x})",
                    f"template {t.name!r} {rule}",
                )
                for rule in rules
            ]
    return out


def _pick(pinned: dict[str, Range], *tags: str) -> list[Range]:
    return [pinned[t] for t in tags if t in pinned]


def _past_gic_spis(index: TreeIndex, t: Template, spis: int) -> list[Finding]:
    """Each SPI the blob wires at the GIC is one the template's GIC implements
    (``[gic] spis``): past the last, the interrupt never arrives. A node's own
    interrupts, a nexus's ``interrupt-map`` rows (PCI INTx) and a v2m frame's
    ``arm,msi-base-spi`` range are looked at; one finding per property."""
    out: list[Finding] = []

    def past(path: str, prop: str, shown: str, spi: int, what: str) -> bool:
        if spi < spis:
            return False
        out.append(
            Finding(
                "template.gic-spis",
                path,
                prop,
                shown,
                f"the GIC of template {t.name!r} implements SPIs 0..{spis - 1} "
                f"([gic] spis): {what}SPI {spi} (INTID {spi + SPI_INTID_BASE}) never "
                "interrupts",
            )
        )
        return True

    def at_gic(controller: str, spec: tuple[int, ...]) -> bool:
        return index.gic_version(controller) is not None and len(spec) >= 2 and spec[0] == 0

    for path in index.order:
        node = index.nodes[path]
        prop = (
            "interrupts-extended" if node.prop("interrupts-extended") is not None else "interrupts"
        )
        for controller, spec in index.specifiers(path) or ():
            if at_gic(controller, spec) and past(path, prop, show_specifier(spec), spec[1], ""):
                break
        if node.prop("interrupt-map") is not None:
            for row in index.interrupt_map(path) or ():
                spec = row.parent_spec
                if at_gic(row.parent, spec) and past(
                    path, "interrupt-map", show_specifier(spec), spec[1], "a row's "
                ):
                    break
        base, count = node.prop("arm,msi-base-spi"), node.prop("arm,msi-num-spis")
        if base is not None and count is not None and len(base.value) == len(count.value) == 4:
            first, n = base.as_cells()[0], count.as_cells()[0]
            if n and first >= SPI_INTID_BASE:
                last = first - SPI_INTID_BASE + n - 1
                past(path, "arm,msi-num-spis", f"<{n}>", last, "the MSI frame's last ")
    return out


def _template_spi(index: TreeIndex, t: Template, path: str, what: str, spi: int) -> list[Finding]:
    decoded = index.specifiers(path)
    if not decoded or len(decoded[0][1]) < 2:
        return []
    spec = decoded[0][1]
    if (spec[0], spec[1]) != (0, spi):
        return [
            Finding(
                "template.spi",
                path,
                "interrupts",
                show_specifier(spec),
                f"template {t.name!r} wires {what} to SPI {spi} (INTID {spi + SPI_INTID_BASE})",
            )
        ]
    return []
