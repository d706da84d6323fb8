"""Where everything is: a guest-physical map as a table, an ASCII diagram and an SVG.

:func:`layout_rows` turns a resolved machine (and, when given, its boot
placement) into :class:`Row` values; :func:`template_rows` does the same for a
template's pinned map. The renderers take rows and return text:

* :func:`table`: one line per region in address order: tag, ``[base, end)``,
  size, SPI/INTID and trigger, and its *source*: ``pinned`` (the template
  fixes it), ``allocated`` (the allocator placed it: RAM, ``below-4g``
  regions), ``spare`` (the part of a pinned window this machine leaves
  unused: redistributor frames for more vCPUs, virtio slots, DRAM above RAM)
  or ``boot`` (kernel, initrd and DTB slot, inside RAM).
* :func:`diagram`: the same map drawn top address first, one box per region
  with its boundaries labelled, gaps drawn as dotted boxes, huge regions folded
  (``~``) so that 4 KiB devices stay readable next to a TiB of DRAM window, and
  runs of same-size virtio transports drawn as one box.
* :func:`svg`: the diagram as a standalone SVG picture (box height grows with
  the log of the size, folded above 1 GiB); every region's tag is in a
  ``<text>`` or, for a run drawn as one box, in its ``<title>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from fdtgen.boot.placement import Placement
from fdtgen.irq import Spi
from fdtgen.layout import Layout
from fdtgen.ranges import Range, subtract
from fdtgen.spec import PREFETCHABLE, SPACE_IO, SPACE_MEM32, Trigger
from fdtgen.template.model import Device, Template
from fdtgen.template.registry import layout_kinds
from fdtgen.units import GiB, MiB, fmt_size

PINNED = "pinned"
ALLOCATED = "allocated"
SPARE = "spare"
BOOT = "boot"


@dataclass(frozen=True, slots=True)
class Row:
    """One region of a map.

    ``kind`` groups regions for drawing (``ram``, ``gic``, ``uart``,
    ``virtio``, ``pci``, ``device``, ``reserved``, ``boot``); ``note`` is a short
    remark (``"not in the DT"``, ``"frames for vCPUs 3..32"``).
    """

    tag: str
    range: Range
    source: str
    kind: str
    spi: Spi | None = None
    trigger: Trigger | None = None
    note: str = ""

    @property
    def interrupt(self) -> str:
        if self.spi is None:
            return ""
        trig = f" {self.trigger.label}" if self.trigger is not None else ""
        return f"SPI {self.spi.number} (INTID {self.spi.intid.value}){trig}"


def hex_addr(value: int, digits: int = 0) -> str:
    """``0x8000_0000``: hex in groups of four, zero-padded to ``digits``."""
    text = f"{value:0{digits}x}"
    groups = []
    while text:
        groups.append(text[-4:])
        text = text[:-4]
    return "0x" + "_".join(reversed(groups))


def _drawn_as(t: Template, layout: Layout | None = None) -> dict[str, str]:
    """Each device region's tag -> its kind in pictures, from its kind's registry entry:
    the template's UART, virtio window and devices, and ``layout``'s devices."""
    kinds = layout_kinds(t)
    drawn = {"uart0": kinds["uart"].drawn_as, "virtio": kinds["virtio"].drawn_as}
    drawn.update((d.tag, kinds[d.kind].drawn_as) for d in t.devices)
    if layout is not None:
        drawn.update((d.tag, kinds[d.kind].drawn_as) for d in (*layout.devices, *layout.unwired))
    return drawn


def _kind(tag: str, drawn: dict[str, str]) -> str:
    """A region's kind in pictures: a device's from ``drawn``; RAM and the GIC by their tags."""
    if tag in drawn:
        return drawn[tag]
    if tag.startswith(("ram", "dram")):
        return "ram"
    if tag.startswith("gic"):
        return "gic"
    if tag.startswith("pcie-"):
        return "pci"
    return "device"


def layout_rows(layout: Layout, placement: Placement | None = None) -> list[Row]:
    """Every live region of ``layout``, the unused parts of its pinned windows and,
    with ``placement``, the kernel, initrd and DTB slot; sorted by address."""
    t = layout.template
    reserved = {r.tag for r in t.reserved}
    allocated = {d.tag for d in t.devices if d.placement != "fixed"}
    virtio_allocated = t.virtio.placement != "fixed"
    wiring = {d.tag: d for d in (*layout.devices, *layout.unwired)}
    drawn = _drawn_as(t, layout)
    rows: list[Row] = []
    for r in layout.regions():
        kind = _kind(r.tag, drawn)
        source = PINNED
        note = ""
        if r.tag in reserved:
            kind, note = "reserved", "reserved: not in the DT"
        elif (
            kind == "ram"
            or r.tag in allocated
            or (kind == "virtio" and virtio_allocated)
            or (layout.pcie_mmio64 is not None and r.tag == "pcie-mmio64")
        ):
            source = ALLOCATED
        d = wiring.get(r.tag)
        rows.append(
            Row(
                r.tag,
                r.range,
                source,
                kind,
                None if d is None else d.spi,
                None if d is None or d.spi is None else d.trigger,
                note or _live_note(layout, r.tag, r.range, d, kind),
            )
        )
    live = [r.range for r in rows]
    for window in t.pinned_regions():
        if window.tag.startswith("gic-redist2") and len(layout.gic_redist) < 2:
            continue  # a second redistributor window only vCPUs past the first use
        if not window.tag.startswith("dram") and not any(window.range.overlaps(x) for x in live):
            continue  # a window this machine does not use at all is not "spare"
        pieces = [window.range]
        for x in live:
            pieces = subtract(pieces, x)
        for piece in pieces:
            rows.append(
                Row(
                    window.tag,
                    piece,
                    SPARE,
                    _kind(window.tag, drawn),
                    note=_spare_note(layout, window.tag, piece),
                )
            )
    if placement is not None:
        rows.append(
            Row("kernel", placement.kernel, BOOT, "boot", note=f"entry {hex_addr(placement.entry)}")
        )
        if placement.initrd is not None:
            rows.append(Row("initrd", placement.initrd, BOOT, "boot"))
        rows.append(Row("dtb", placement.dtb, BOOT, "boot", note="x0; slot for the blob"))
    return sorted(rows, key=lambda r: (r.range.base, r.source == BOOT, r.range.end, r.tag))


def pcie_note(t: Template, tag: str, after_ram: Range | None = None) -> str:
    """What a PCIe region is: the configuration space's buses, a window's PCI space
    (``after_ram``: the 64-bit window a layout placed after RAM)."""
    p = t.pcie
    if p is None:
        return ""
    if tag in ("pcie-ecam", "pcie-cam"):
        return f"{p.compatible}, buses {p.bus_first}..{p.bus_last}"
    for window, space, cpu in p.windows(after_ram):
        if window == tag:
            what = {SPACE_IO: "I/O", SPACE_MEM32: "32-bit memory"}.get(space, "64-bit memory")
            pref = ", prefetchable" if space & PREFETCHABLE else ""
            follows = ", follows RAM" if after_ram is not None and cpu == after_ram else ""
            return f"{what}{pref} at PCI {hex_addr(p.pci_address(space, cpu))}{follows}"
    return ""


def _live_note(layout: Layout, tag: str, range_: Range, d: Device | None, kind: str) -> str:
    if kind == "pci":
        return pcie_note(layout.template, tag, layout.pcie_mmio64)
    if tag.startswith("gic-redist") and layout.redist_stride:
        frames = range_.size // layout.redist_stride
        return f"{frames} frames of {fmt_size(layout.redist_stride, 2)}"
    if d is not None and kind == "device":
        return d.kind
    return ""


def _spare_note(layout: Layout, tag: str, piece: Range) -> str:
    if tag.startswith("gic-redist") and layout.redist_stride:
        frames = piece.size // layout.redist_stride
        return f"{frames} unused frames of {fmt_size(layout.redist_stride, 2)}"
    if tag == "virtio":
        stride = layout.template.virtio.stride
        return f"{piece.size // stride} unused virtio slots"
    if tag.startswith("dram"):
        ram_end = max((r.end for r in layout.ram), default=0)
        return f"DRAM window {'above' if piece.base >= ram_end else 'below'} RAM, unused"
    return "unused"


def template_rows(t: Template) -> list[Row]:
    """A template's pinned map: its windows as the template states them."""
    reserved = {r.tag for r in t.reserved}
    devices = {d.tag: d for d in t.devices}
    drawn = _drawn_as(t)
    rows = []
    for r in t.pinned_regions():
        kind, source, spi, trigger, note = _kind(r.tag, drawn), PINNED, None, None, ""
        if r.tag in reserved:
            kind, note = "reserved", "reserved: not in the DT"
        elif r.tag == "uart0":
            spi, trigger, note = t.uart.spi, t.uart.trigger, t.uart.kind
        elif r.tag == "virtio":
            v = t.virtio
            last = v.first_spi.number + v.slots - 1
            note = (
                f"{v.slots} x {fmt_size(v.stride, 2)}, SPI {v.first_spi.number}..{last} "
                f"(INTID {v.first_spi.intid.value}..{last + 32}) {v.trigger.label}"
            )
            source = ALLOCATED if v.placement != "fixed" else PINNED
        elif r.tag in devices:
            d = devices[r.tag]
            spi, trigger, note = d.spi, d.trigger if d.spi else None, d.kind
            source = ALLOCATED if d.placement != "fixed" else PINNED
        elif r.tag.startswith("gic-redist"):
            stride = t.gic.redist_stride
            note = f"{r.range.size // stride} frames of {fmt_size(stride, 2)}"
        elif kind == "pci":
            note = pcie_note(t, r.tag)
        rows.append(Row(r.tag, r.range, source, kind, spi, trigger, note))
    for h in t.ram_holes:
        rows.append(Row(h.tag, h.range, PINNED, "hole", note="DRAM hole: RAM is split around it"))
    return sorted(rows, key=lambda r: (r.range.base, r.kind == "hole", r.range.end, r.tag))


def _digits(rows: Sequence[Row]) -> int:
    top = max((r.range.end for r in rows), default=0)
    return max(8, -(-len(f"{top:x}") // 4) * 4)


def table(rows: Sequence[Row]) -> list[str]:
    """The map as aligned text lines, lowest address first."""
    digits = _digits(rows)
    width = 2 + digits + (digits // 4 - 1)
    tagw = max([len("tag")] + [len(r.tag) for r in rows])
    head = (
        f"{'tag':{tagw}}  {'base':>{width}}  {'end (excl.)':>{width}}  {'size':>10}  "
        f"{'source':9}  interrupt / notes"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        extra = "; ".join(x for x in (r.interrupt, r.note) if x)
        lines.append(
            f"{r.tag:{tagw}}  {hex_addr(r.range.base, digits):>{width}}  "
            f"{hex_addr(r.range.end, digits):>{width}}  {fmt_size(r.range.size, 2):>10}  "
            f"{r.source:9}  {extra}".rstrip()
        )
    return lines


@dataclass(frozen=True, slots=True)
class _Box:
    """One drawn box: a region, a run of regions drawn as one, or a gap (``rows`` empty)."""

    label: str
    range: Range
    rows: tuple[Row, ...]
    detail: str

    @property
    def kind(self) -> str:
        return self.rows[0].kind if self.rows else "gap"

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(r.tag for r in self.rows)


def _flatten(rows: Sequence[Row]) -> list[Row]:
    """Rows without overlaps: boot rows cut out of the RAM row that holds them, and
    DRAM holes that other regions sit in left out (they show as the gap they are)."""
    boot = [r for r in rows if r.source == BOOT]
    flat = [r for r in rows if r.source != BOOT and r.kind != "hole"]
    flat += [
        r for r in rows if r.kind == "hole" and not any(r.range.overlaps(x.range) for x in flat)
    ]
    for b in boot:
        host = next((r for r in flat if r.range.contains(b.range)), None)
        if host is None:
            flat.append(b)
            continue
        flat.remove(host)
        for piece in subtract([host.range], b.range):
            flat.append(
                Row(host.tag, piece, host.source, host.kind, host.spi, host.trigger, host.note)
            )
        flat.append(
            Row(
                b.tag,
                b.range,
                b.source,
                b.kind,
                note=f"in {host.tag}" + (f"; {b.note}" if b.note else ""),
            )
        )
    return sorted(flat, key=lambda r: (r.range.base, r.range.end, r.tag))


def _runs(rows: Sequence[Row]) -> list[_Box]:
    """Boxes bottom-up: contiguous virtio transports of one size with consecutive SPIs
    become one box; free space between rows becomes a gap box."""
    boxes: list[_Box] = []
    i = 0
    rows = list(rows)
    while i < len(rows):
        r = rows[i]
        j = i + 1
        if r.kind == "virtio" and r.source != SPARE and r.spi is not None:
            while (
                j < len(rows)
                and rows[j].kind == "virtio"
                and rows[j].source == r.source
                and rows[j].spi is not None
                and rows[j].range.base == rows[j - 1].range.end
                and rows[j].range.size == r.range.size
                and rows[j].spi.number == rows[j - 1].spi.number + 1  # type: ignore[union-attr]
                and rows[j].trigger == r.trigger
            ):
                j += 1
        group = tuple(rows[i:j])
        below = boxes[-1].range.end if boxes else 0
        if below < r.range.base:
            boxes.append(_Box("gap", Range(below, r.range.base - below), (), ""))
        boxes.append(_box(group))
        i = j
    return boxes


def _box(group: tuple[Row, ...]) -> _Box:
    first, last = group[0], group[-1]
    whole = Range(first.range.base, last.range.end - first.range.base)
    if len(group) == 1:
        label = first.tag if first.source != SPARE else f"{first.tag} (spare)"
        detail = "; ".join(x for x in (first.source, first.interrupt, first.note) if x)
        return _Box(label, whole, group, detail)
    prefix = first.tag.rsplit("-", 1)[0]
    label = (
        f"{first.tag}..{last.tag.rsplit('-', 1)[1]}"
        if last.tag.startswith(prefix + "-")
        else f"{first.tag}..{last.tag}"
    )
    a, b = first.spi, last.spi
    assert a is not None and b is not None
    trig = f" {first.trigger.label}" if first.trigger is not None else ""
    detail = (
        f"{first.source}; {len(group)} x {fmt_size(first.range.size, 2)}; "
        f"SPI {a.number}..{b.number} (INTID {a.intid.value}..{b.intid.value}){trig}"
    )
    return _Box(label, whole, group, detail)


FOLD = 1 * GiB  # boxes this big or bigger are drawn folded


def diagram(rows: Sequence[Row], title: str = "") -> list[str]:
    """The map drawn top address first, in the style of a kernel memory-map comment."""
    boxes = _runs(_flatten(rows))
    digits = _digits(rows)
    inner = max([30] + [len(b.label) + len(fmt_size(b.range.size, 2)) + 4 for b in boxes])
    edge = "+" + "-" * inner + "+"
    lines = [title] if title else []
    for n, b in enumerate(reversed(boxes)):
        if n == 0:
            lines.append(f"{edge} <- {hex_addr(b.range.end, digits)}")
        side = ":" if b.kind == "gap" else "|"
        size = fmt_size(b.range.size, 2)
        label = f" {b.label}"
        body = [f"{side}{label}{size:>{inner - len(label) - 1}} {side}"]
        if b.range.size >= MiB:
            body.append(f"{side}{' ' * inner}{side}")
        if b.range.size >= FOLD:
            body.insert(1, "~" * (inner + 2))
        body[0] += f"  {b.detail}" if b.detail else ""
        lines.extend(body)
        lines.append(f"{edge} <- {hex_addr(b.range.base, digits)}")
    return lines


# --- SVG --------------------------------------------------------------------------

_FILL = {
    "ram": "#d9f2d9",
    "gic": "#e3d9f2",
    "uart": "#fde3c8",
    "virtio": "#d6e6fa",
    "pci": "#d4efee",
    "device": "#fbf3c4",
    "reserved": "#e6e6e6",
    "boot": "#f8cccc",
    "hole": "#eeeeee",
    "gap": "#ffffff",
}


def _height(b: _Box) -> int:
    bits = max(0, b.range.size.bit_length() - 13)  # 4 KiB -> 0
    return min(26 + 5 * bits, 110)


def svg(rows: Sequence[Row], title: str = "") -> str:
    """A standalone SVG picture of :func:`diagram`'s map."""
    boxes = list(reversed(_runs(_flatten(rows))))
    digits = _digits(rows)
    left, box_w, pad = 190, 300, 14
    top = 44 if title else 16
    height = top + sum(_height(b) for b in boxes) + 24
    detail_w = max([0] + [len(b.detail) for b in boxes]) * 7
    width = left + box_w + 20 + detail_w + pad
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, monospace" '
        'font-size="12">',
        f"<title>{escape(title or 'guest-physical map')}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    if title:
        out.append(
            f'<text x="{pad}" y="24" font-size="14" font-weight="bold">{escape(title)}</text>'
        )
    y = top
    for n, b in enumerate(boxes):
        h = _height(b)
        if n == 0:
            out.append(_addr(left, y, b.range.end, digits))
        spare = b.rows and b.rows[0].source == SPARE
        dash = ' stroke-dasharray="4 3"' if b.kind == "gap" or spare else ""
        dash += ' fill-opacity="0.4"' if spare else ""
        tip = escape(", ".join(b.tags) if b.tags else "gap")
        out.append("<g>")
        out.append(f"<title>{tip}</title>")
        out.append(
            f'<rect x="{left}" y="{y}" width="{box_w}" height="{h}" '
            f'fill="{_FILL.get(b.kind, "#ffffff")}" stroke="#333333"{dash}/>'
        )
        mid = y + h // 2 + 4
        out.append(f'<text x="{left + 8}" y="{mid}">{escape(b.label)}</text>')
        size = escape(fmt_size(b.range.size, 2))
        out.append(f'<text x="{left + box_w - 8}" y="{mid}" text-anchor="end">{size}</text>')
        if b.detail:
            out.append(
                f'<text x="{left + box_w + 12}" y="{mid}" fill="#444444">{escape(b.detail)}</text>'
            )
        if b.range.size >= FOLD:
            out.append(_fold(left, y + h - 12, box_w))
        out.append("</g>")
        y += h
        out.append(_addr(left, y, b.range.base, digits))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _addr(left: int, y: int, value: int, digits: int) -> str:
    return f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{hex_addr(value, digits)}</text>'


def _fold(left: int, y: int, width: int) -> str:
    """A zigzag across the box: the region is drawn shorter than its size."""
    points = " ".join(
        f"{left + x},{y + (4 if (x // 10) % 2 else -4)}" for x in range(0, width + 1, 10)
    )
    return f'<polyline points="{points}" fill="none" stroke="#888888"/>'
