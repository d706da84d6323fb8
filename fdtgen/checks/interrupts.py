"""``interrupts.*`` findings: every specifier decodes and the GIC accepts it.

Each ``interrupts`` or ``interrupts-extended`` (and each ``interrupt-map``
entry of a nexus) decodes against its controller's ``#interrupt-cells``; a GIC
specifier uses a type the GIC has, a number in the binding's range and, for
SPIs, a trigger the GIC accepts; no SPI is wired to two enabled nodes unless
declared shared. A controller on Linux's list of interrupt-map abusers
(:data:`~fdtgen.checks.index.IMAP_ABUSERS`) parses its own map and is skipped.
Sharing is found with a dict keyed by (controller, SPI): linear in the tree.
"""

from __future__ import annotations

from collections.abc import Sequence

from fdtgen.checks.finding import Finding
from fdtgen.checks.index import TreeIndex, is_interrupt_provider, show, show_specifier
from fdtgen.fdt.tree import Prop
from fdtgen.irq import PPI_INTID_BASE, PPI_MAX, SPI_INTID_BASE, SPI_MAX, Trigger

# arm,gic-v3.yaml, GICv3.1 extended ranges (specifier types 2 and 3).
ESPI_MAX = 1023  # extended SPIs 0..1023
ESPI_INTID_BASE = 4096  # INTID 4096..5119
EPPI_MAX = 63  # extended PPIs 0..63
EPPI_INTID_BASE = 1056  # INTID 1056..1119


def interrupt_findings(index: TreeIndex, shared: frozenset[int] = frozenset()) -> list[Finding]:
    """Every ``interrupts`` decodes against its controller; GIC specifiers use a
    valid type, a number in the binding's range and (for SPIs) a trigger the GIC
    accepts (Linux ``gic_set_type``: level-high or edge-rising); no SPI that an
    enabled node uses, directly or through an interrupt nexus, is wired to a
    second enabled node unless listed in ``shared``."""
    out: list[Finding] = []
    owners: dict[tuple[str, int], list[str]] = {}
    for path in index.order:
        p = index.interrupts_prop(path)
        if p is None:
            continue
        if p.name == "interrupts":
            problem = _interrupts_problem(index, path, p)
            if problem is not None:
                out.append(problem)
                continue
        # interrupts-extended that does not decode is a phandle.* finding.
        for ctrl, spec in index.specifiers(path) or ():
            out += _gic_specifier(index, path, p, ctrl, spec)
            final = index.resolve(path, ctrl, spec) if index.is_nexus(ctrl) else (ctrl, spec)
            if final is None or not index.enabled(path):
                continue
            if final[0] != ctrl:
                out += _gic_specifier(index, path, p, final[0], final[1])
            if index.gic_version(final[0]) and len(final[1]) >= 3 and final[1][0] == 0:
                owners.setdefault((final[0], final[1][1]), []).append(path)
    for path in index.order:
        if not index.is_nexus(path):
            continue
        imap = index.nodes[path].prop("interrupt-map")
        assert imap is not None
        for row in index.interrupt_map(path) or ():
            out += _gic_specifier(index, path, imap, row.parent, row.parent_spec)
    for (ctrl, spi), paths in owners.items():
        unique = list(dict.fromkeys(paths))
        if len(unique) > 1 and spi not in shared and not _all_share(index, unique):
            for other in unique[1:]:
                out.append(
                    Finding(
                        "interrupts.shared",
                        other,
                        "interrupts",
                        f"<0x0 {spi:#x} ...>",
                        f"SPI {spi} (INTID {spi + SPI_INTID_BASE}) on {ctrl} is also wired "
                        f"to {unique[0]}; not declared shared",
                    )
                )
    return out


def _interrupts_problem(index: TreeIndex, path: str, p: Prop) -> Finding | None:
    """Why a node's ``interrupts`` cannot be decoded against its parent, if it cannot."""
    ctrl = index.interrupt_parent(path)
    if ctrl is None:
        return Finding(
            "interrupts.parent",
            path,
            "interrupts",
            show(p),
            "no interrupt parent (no interrupt-parent here or above, or it does not resolve)",
        )
    if not is_interrupt_provider(index.nodes[ctrl]):
        return Finding(
            "interrupts.parent",
            path,
            "interrupts",
            show(p),
            f"the interrupt parent {ctrl} has no interrupt-controller or interrupt-map",
        )
    n = index.cell(ctrl, "#interrupt-cells")
    if not n:
        return Finding(
            "interrupts.cells",
            path,
            "interrupts",
            show(p),
            f"the interrupt parent {ctrl} has no usable #interrupt-cells",
        )
    if len(p.value) % (4 * n):
        return Finding(
            "interrupts.cells",
            path,
            "interrupts",
            show(p),
            f"is {len(p.value)} bytes, not a whole number of {ctrl}'s "
            f"#interrupt-cells = {n} specifiers",
        )
    return None


def _gic_specifier(
    index: TreeIndex,
    path: str,
    p: Prop,
    ctrl: str,
    spec: Sequence[int],
) -> list[Finding]:
    version = index.gic_version(ctrl)
    if version is None or len(spec) < 3:
        return []
    kind, number, flags = spec[0], spec[1], spec[2]
    shown = show_specifier(spec)
    limits = {0: ("SPI", SPI_MAX, SPI_INTID_BASE), 1: ("PPI", PPI_MAX, PPI_INTID_BASE)}
    if version == 3:
        limits |= {
            2: ("extended SPI", ESPI_MAX, ESPI_INTID_BASE),
            3: ("extended PPI", EPPI_MAX, EPPI_INTID_BASE),
        }
    if kind not in limits:
        return [
            Finding(
                "interrupts.type",
                path,
                p.name,
                shown,
                f"type cell {kind} is not one of {sorted(limits)} for a GICv{version}",
            )
        ]
    name, top, base = limits[kind]
    if number > top:
        return [
            Finding(
                "interrupts.range",
                path,
                p.name,
                shown,
                f"{name} {number} is outside the binding's range 0..{top} "
                f"(INTID {base}..{base + top})",
            )
        ]
    out = []
    trigger = flags & 0xF
    if kind in (0, 2) and trigger not in (Trigger.EDGE_RISING, Trigger.LEVEL_HIGH):
        out.append(
            Finding(
                "interrupts.trigger",
                path,
                p.name,
                shown,
                f"{name} trigger {trigger} is not 1 (edge-rising) or 4 (level-high); "
                "the GIC rejects it (gic_set_type -EINVAL) and the driver fails to probe",
            )
        )
    return out


def _all_share(index: TreeIndex, paths: list[str]) -> bool:
    """Every node on the line is of a kind whose Linux driver asks for a shared IRQ
    (8250_of.c UPF_SHARE_IRQ), so one line serves them all."""
    from fdtgen.template.registry import SHARING_COMPATIBLES

    return all(any(c in SHARING_COMPATIBLES for c in index.compatible(p)) for p in paths)
