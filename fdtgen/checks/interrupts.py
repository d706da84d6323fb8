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

from fdtgen.checks.finding import Finding, Findings
from fdtgen.checks.index import TreeIndex, is_interrupt_provider, show, show_specifier
from fdtgen.fdt.tree import Prop
from fdtgen.spec import PPI_INTID_BASE, PPI_MAX, SPI_INTID_BASE, SPI_MAX, Trigger

# arm,gic-v3.yaml, GICv3.1 extended ranges (specifier types 2 and 3).
ESPI_MAX = 1023  # extended SPIs 0..1023
ESPI_INTID_BASE = 4096  # INTID 4096..5119
EPPI_MAX = 63  # extended PPIs 0..63
EPPI_INTID_BASE = 1056  # INTID 1056..1119

# Specifier type cell -> (name, largest number, first INTID), per GIC version.
_GICV2_LIMITS = {0: ("SPI", SPI_MAX, SPI_INTID_BASE), 1: ("PPI", PPI_MAX, PPI_INTID_BASE)}
_GICV3_LIMITS = _GICV2_LIMITS | {
    2: ("extended SPI", ESPI_MAX, ESPI_INTID_BASE),
    3: ("extended PPI", EPPI_MAX, EPPI_INTID_BASE),
}


def interrupt_findings(
    index: TreeIndex, shared: frozenset[int] = frozenset(), out: Findings | None = None
) -> list[Finding]:
    """Every ``interrupts`` decodes against its controller; GIC specifiers use a
    valid type, a number in the binding's range and (for SPIs) a trigger the GIC
    accepts (Linux ``gic_set_type``: level-high or edge-rising); no SPI that an
    enabled node uses, directly or through an interrupt nexus, is wired to a
    second enabled node unless listed in ``shared``. Reported into ``out`` (a
    new :class:`Findings` when ``None``), which is returned."""
    if out is None:
        out = Findings()
    owners: dict[tuple[str, int], list[str]] = {}
    for path in index.order:
        p = index.interrupts_prop(path)
        if p is None:
            continue
        if p.name == "interrupts" and _interrupts_problem(index, path, p, out):
            continue
        # interrupts-extended that does not decode is a phandle.* finding.
        for ctrl, spec in index.specifiers(path) or ():
            _gic_specifier(index, path, p, ctrl, spec, out)
            final = index.resolve(path, ctrl, spec) if index.is_nexus(ctrl) else (ctrl, spec)
            if final is None or not index.enabled(path):
                continue
            if final[0] != ctrl:
                _gic_specifier(index, path, p, final[0], final[1], out)
            if index.gic_version(final[0]) and len(final[1]) >= 3 and final[1][0] == 0:
                owners.setdefault((final[0], final[1][1]), []).append(path)
    for path in index.order:
        if not index.is_nexus(path):
            continue
        imap = index.nodes[path].prop("interrupt-map")
        assert imap is not None
        for row in index.interrupt_map(path) or ():
            _gic_specifier(index, path, imap, row.parent, row.parent_spec, out)
    for (ctrl, spi), paths in owners.items():
        unique = list(dict.fromkeys(paths))
        if len(unique) > 1 and spi not in shared and not _all_share(index, unique):
            for other in unique[1:]:
                if not out.wants("interrupts.shared", other):
                    continue
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


def _interrupts_problem(index: TreeIndex, path: str, p: Prop, out: Findings) -> bool:
    """Whether the node's ``interrupts`` cannot be decoded against its parent;
    if so, why is reported into ``out``."""
    ctrl = index.interrupt_parent(path)
    n = 0
    if ctrl is None:
        rule = "interrupts.parent"
        why = "no interrupt parent (no interrupt-parent here or above, or it does not resolve)"
    elif not is_interrupt_provider(index.nodes[ctrl]):
        rule = "interrupts.parent"
        why = f"the interrupt parent {ctrl} has no interrupt-controller or interrupt-map"
    elif not (n := index.cell(ctrl, "#interrupt-cells") or 0):
        rule = "interrupts.cells"
        why = f"the interrupt parent {ctrl} has no usable #interrupt-cells"
    elif len(p.value) % (4 * n):
        rule = "interrupts.cells"
        why = (
            f"is {len(p.value)} bytes, not a whole number of {ctrl}'s "
            f"#interrupt-cells = {n} specifiers"
        )
    else:
        return False
    if out.wants(rule, path):
        out.append(Finding(rule, path, "interrupts", show(p), why))
    return True


def _gic_specifier(
    index: TreeIndex,
    path: str,
    p: Prop,
    ctrl: str,
    spec: Sequence[int],
    out: Findings,
) -> None:
    version = index.gic_version(ctrl)
    if version is None or len(spec) < 3:
        return
    kind, number, flags = spec[0], spec[1], spec[2]
    limits = _GICV3_LIMITS if version == 3 else _GICV2_LIMITS
    if kind not in limits:
        if out.wants("interrupts.type", path):
            out.append(
                Finding(
                    "interrupts.type",
                    path,
                    p.name,
                    show_specifier(spec),
                    f"type cell {kind} is not one of {sorted(limits)} for a GICv{version}",
                )
            )
        return
    name, top, base = limits[kind]
    if number > top:
        if out.wants("interrupts.range", path):
            out.append(
                Finding(
                    "interrupts.range",
                    path,
                    p.name,
                    show_specifier(spec),
                    f"{name} {number} is outside the binding's range 0..{top} "
                    f"(INTID {base}..{base + top})",
                )
            )
        return
    trigger = flags & 0xF
    if (
        kind in (0, 2)
        and trigger not in (Trigger.EDGE_RISING, Trigger.LEVEL_HIGH)
        and out.wants("interrupts.trigger", path)
    ):
        out.append(
            Finding(
                "interrupts.trigger",
                path,
                p.name,
                show_specifier(spec),
                f"{name} trigger {trigger} is not 1 (edge-rising) or 4 (level-high); "
                "the GIC rejects it (gic_set_type -EINVAL) and the driver fails to probe",
            )
        )


def _all_share(index: TreeIndex, paths: list[str]) -> bool:
    """Every node on the line is of a kind whose Linux driver asks for a shared IRQ
    (8250_of.c UPF_SHARE_IRQ), so one line serves them all."""
    from fdtgen.template.registry import SHARING_COMPATIBLES

    return all(any(c in SHARING_COMPATIBLES for c in index.compatible(p)) for p in paths)
