"""``chosen.*``, ``aliases.*`` and ``phandle.*`` findings: every reference resolves.

A console named by ``/chosen/stdout-path`` (chosen.yaml), each ``/aliases``
path, and each phandle (DT spec "phandle") must lead to a node of the tree.
"""

from __future__ import annotations

from fdtgen.checks.finding import Finding, Findings
from fdtgen.checks.index import TreeIndex, show, string
from fdtgen.fdt.phandles import node_phandle


def reference_findings(index: TreeIndex, out: Findings | None = None) -> list[Finding]:
    """``/chosen`` and ``/aliases`` paths, then phandles, in report order,
    reported into ``out`` (a new :class:`Findings` when ``None``), which is returned."""
    if out is None:
        out = Findings()
    out.merge(_chosen_findings(index))
    _phandle_findings(index, out)
    return out


def _resolve_path(index: TreeIndex, text: str) -> str | None:
    """A ``stdout-path``-style reference (``/path[:opts]`` or ``alias[:opts]``) as a node path."""
    target = text.partition(":")[0]
    if not target.startswith("/"):
        alias = string(index.nodes["/aliases"].prop(target)) if "/aliases" in index.nodes else None
        if alias is None:
            return None
        target = alias
    target = target.rstrip("/") or "/"
    return target if target in index.nodes else None


def _chosen_findings(index: TreeIndex) -> list[Finding]:
    """chosen.yaml ``stdout-path`` and the ``/aliases`` paths must name real nodes."""
    out = []
    chosen = index.nodes.get("/chosen")
    if chosen is not None and chosen.prop("stdout-path") is not None:
        p = chosen.prop("stdout-path")
        text = string(p)
        if text is None or _resolve_path(index, text) is None:
            out.append(
                Finding(
                    "chosen.stdout-path",
                    "/chosen",
                    "stdout-path",
                    show(p),
                    "does not resolve to a node (a path, or an alias in /aliases): no console",
                )
            )
    aliases = index.nodes.get("/aliases")
    for p in aliases.props if aliases is not None else ():
        text = string(p)
        if text is None or not text.startswith("/") or (text.rstrip("/") or "/") not in index.nodes:
            out.append(
                Finding(
                    "aliases.path", "/aliases", p.name, show(p), "does not name a node in the tree"
                )
            )
    return out


def _phandle_findings(index: TreeIndex, out: Findings) -> None:
    """DT spec "phandle": unique, not 0 or 0xffffffff; every reference resolves
    (but the interrupt-map of a controller on Linux's abuser list, which its
    driver reads in a layout of its own)."""
    owner: dict[int, str] = {}
    for path in index.order:
        node = index.nodes[path]
        for name in ("phandle", "linux,phandle"):
            p = node.prop(name)
            if p is None:
                continue
            if len(p.value) != 4 or int.from_bytes(p.value, "big") in (0, 0xFFFF_FFFF):
                if not out.wants("phandle.value", path):
                    continue
                out.append(
                    Finding(
                        "phandle.value",
                        path,
                        name,
                        show(p),
                        "must be one cell, not 0 or 0xffffffff",
                    )
                )
        ph = node_phandle(node)
        if ph is not None and ph not in (0, 0xFFFF_FFFF):
            if ph in owner and out.wants("phandle.unique", path):
                out.append(
                    Finding(
                        "phandle.unique",
                        path,
                        "phandle",
                        f"{ph:#x}",
                        f"is also the phandle of {owner[ph]}",
                    )
                )
            owner.setdefault(ph, path)
    for u in index.uses:
        if u.prop == "interrupt-map" and not index.is_nexus(u.path):
            continue  # a controller parsing its own map (IMAP_ABUSERS): not the spec's layout
        if u.target is None and not u.problem:
            if not out.wants("phandle.reference", u.path):
                continue
            out.append(
                Finding(
                    "phandle.reference",
                    u.path,
                    u.prop,
                    f"{u.phandle:#x}",
                    f"cell {u.cell} refers to phandle {u.phandle:#x}, which no node has",
                )
            )
        elif u.problem and out.wants("phandle.cells", u.path):
            out.append(Finding("phandle.cells", u.path, u.prop, f"{u.phandle:#x}", u.problem))
