"""``template.*`` findings: a blob against the template it claims to follow.

Part of :mod:`fdtgen.verify` (whose :class:`~fdtgen.verify.Options` names the
template), loaded only when a template is given.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from fdtgen.verify.core import TIMER_COMPATIBLE, Finding, _Ctx, _show, regions

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it as true)
if TYPE_CHECKING:
    from typing import Any

    from fdtgen.template.model import Template

UART_COMPATIBLE = {"pl011": "arm,pl011", "ns16550a": "ns16550a"}
DEVICE_COMPATIBLE = {"pl031": "arm,pl031", "pl061": "arm,pl061", "fw-cfg": "qemu,fw-cfg-mmio"}


def template_findings(ctx: _Ctx, t: Template) -> list[Finding]:
    """Each node sits in the region the template pins for it (``pinned_regions``
    tags), at the pinned base, with the pinned SPI. A reserved region may hold
    nodes that describe what it reserves (QEMU's flash), but none may straddle it."""
    out: list[Finding] = []
    pinned = {r.tag: r.range for r in t.pinned_regions()}
    reserved = {r.tag: r.range for r in t.reserved}
    dram = [rng for tag, rng in pinned.items() if tag.startswith("dram")]

    def inside(
        path: str, tag: str, base: int, size: int, ranges: Sequence[Any], exact: bool = False
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

    anchor = getattr(t.gic, "redist_anchor", "base")
    its_follows = getattr(t.gic, "its_below_redist", False)
    first_gicr: int | None = None
    for path in ctx.order:
        version = ctx.gic_version(path)
        if version is None:
            continue
        entries = [(ctx.translate(path, b), s) for b, s in ctx.reg(path) or ()]
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
            nr = ctx.cell(path, "#redistributor-regions") or 1
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
        for path in ctx.with_compatible({compat}):
            for b, s in _cpu_reg(ctx, path):
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
    uart_compat = UART_COMPATIBLE.get(getattr(t.uart, "kind", "pl011"), "arm,pl011")
    for path in ctx.with_compatible({uart_compat}):
        for b, s in _cpu_reg(ctx, path):
            inside(path, "uart0", b, s, _pick(pinned, "uart0"), exact=True)
        out += _template_spi(ctx, t, path, "uart0", t.uart.spi.number)
    for d in getattr(t, "devices", ()):
        device_compat = DEVICE_COMPATIBLE.get(d.kind)
        if device_compat is None or d.tag not in pinned:
            continue
        for path in ctx.with_compatible({device_compat}):
            for b, s in _cpu_reg(ctx, path):
                inside(path, d.tag, b, s, [pinned[d.tag]], exact=True)
            if d.spi is not None:
                out += _template_spi(ctx, t, path, d.tag, d.spi.number)
    want = tuple(ppi.number for ppi in t.timer_ppis)
    for path in ctx.with_compatible(TIMER_COMPATIBLE):
        decoded = ctx.specifiers(path)
        if decoded is None:
            continue
        got = tuple(spec[1] if len(spec) > 1 and spec[0] == 1 else -1 for spec in decoded[1])
        if got != want:
            out.append(
                Finding(
                    "template.timer",
                    path,
                    "interrupts",
                    _show(ctx.nodes[path].prop("interrupts")),
                    f"template {t.name!r} wires the timers to PPIs {list(want)} "
                    f"(INTIDs {[n + 16 for n in want]})",
                )
            )
    v = t.virtio
    window = pinned.get("virtio")
    for path in ctx.with_compatible({"virtio,mmio"}):
        for b, s in _cpu_reg(ctx, path):
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
                        ctx, t, path, f"virtio slot {slot}", v.first_spi.number + slot
                    )
    for path, base, size in ctx.memory():
        inside(path, "dram", base, size, dram)
    for r in regions(ctx):
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


def _pick(pinned: dict[str, Any], *tags: str) -> list[Any]:
    return [pinned[t] for t in tags if t in pinned]


def _cpu_reg(ctx: _Ctx, path: str) -> Iterator[tuple[int, int]]:
    for b, s in ctx.reg(path) or ():
        cpu = ctx.translate(path, b)
        if cpu is not None:
            yield cpu, s


def _template_spi(ctx: _Ctx, t: Template, path: str, what: str, spi: int) -> list[Finding]:
    decoded = ctx.specifiers(path)
    if decoded is None or not decoded[1] or len(decoded[1][0]) < 2:
        return []
    spec = decoded[1][0]
    if (spec[0], spec[1]) != (0, spi):
        return [
            Finding(
                "template.spi",
                path,
                "interrupts",
                f"<{' '.join(f'{c:#x}' for c in spec)}>",
                f"template {t.name!r} wires {what} to SPI {spi} (INTID {spi + 32})",
            )
        ]
    return []
