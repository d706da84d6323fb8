"""Semantic diff of two device trees: what a kernel would see differently.

Two blobs are the same when they hold the same tree: the same nodes, each with
the same properties and values, the same /memreserve/ entries and the same
``boot_cpuid_phys``. Everything the encoding may vary without changing the
tree is ignored: string-table order and sharing, block order, padding,
``FDT_NOP`` tokens, header version, the order of properties and of sibling
nodes, and the numbers chosen as phandles: a reference is compared by the node
it points at (shown as ``&{/path}``), and a ``phandle`` property only by its
presence.

Nodes are matched by name; siblings left over on both sides that share a unit
address (``pl011@9000000`` and ``serial@9000000``) are matched as a rename.
Values are shown as DTS: strings, cells or bytes, as dtc would print them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from fdtgen.fdt.dts import prop_value
from fdtgen.fdt.phandles import phandle_uses
from fdtgen.fdt.tree import DeviceTree, Node, Prop, child_path

VALUE_LIMIT = 200  # characters of a rendered value before it is cut
PHANDLE_PROPS = frozenset({"phandle", "linux,phandle"})


@dataclass(frozen=True, slots=True)
class Change:
    """One difference. ``kind`` is ``node-added``, ``node-removed``,
    ``node-renamed``, ``property-added``, ``property-removed``,
    ``property-changed``, ``memreserve`` or ``boot-cpuid-phys``; ``path`` is
    the node in the first tree (the second for additions); ``old``/``new``
    are DTS text."""

    kind: str
    path: str
    prop: str = ""
    old: str = ""
    new: str = ""

    def __str__(self) -> str:
        if self.kind == "node-added":
            return f"+ {self.path}{self.new}"
        if self.kind == "node-removed":
            return f"- {self.path}{self.old}"
        if self.kind == "node-renamed":
            return f"~ {self.path} renamed: {self.old} -> {self.new}"
        if self.kind == "property-added":
            return f"+ {self.path} {_assign(self.prop, self.new)}"
        if self.kind == "property-removed":
            return f"- {self.path} {_assign(self.prop, self.old)}"
        label = self.prop or self.kind
        return f"~ {self.path} {label}: {self.old or '(empty)'} -> {self.new or '(empty)'}"

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "path": self.path,
            "property": self.prop,
            "old": self.old,
            "new": self.new,
        }


def _assign(name: str, value: str) -> str:
    return f"{name} = {value}" if value else name


def _summary(node: Node) -> str:
    count = sum(1 for _ in node.walk()) - 1
    return (
        f" ({len(node.props)} properties, {count} nodes below)"
        if count
        else f" ({len(node.props)} properties)"
    )


class _Refs:
    """Which cells of which properties are phandle references, and to what node."""

    def __init__(self, root: Node) -> None:
        self.cells: dict[tuple[str, str], dict[int, str]] = {}
        broken: set[tuple[str, str]] = set()
        for u in phandle_uses(root):
            key = (u.path, u.prop)
            if u.target is None or u.problem:
                broken.add(key)
            else:
                self.cells.setdefault(key, {})[u.cell] = u.target
        for key in broken:
            self.cells.pop(key, None)

    def value(self, path: str, p: Prop, rename: dict[str, str]) -> object:
        """A comparable form of ``p``: references become the (renamed) target path."""
        if p.name in PHANDLE_PROPS:
            return "phandle"
        refs = self.cells.get((path, p.name))
        if not refs:
            return p.value
        return tuple(
            ("ref", rename.get(refs[i], refs[i])) if i in refs else c
            for i, c in enumerate(p.as_cells())
        )

    def render(self, path: str, p: Prop) -> str:
        refs = self.cells.get((path, p.name))
        if p.name in PHANDLE_PROPS or not refs:
            text = prop_value(p) or ""
        else:
            text = (
                "<"
                + " ".join(
                    f"&{{{refs[i]}}}" if i in refs else f"{c:#x}"
                    for i, c in enumerate(p.as_cells())
                )
                + ">"
            )
        return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 3] + "..."


def _match(
    a: Node, b: Node, a_path: str, b_path: str, pairs: list[tuple[str, str, Node, Node]]
) -> None:
    """Pair up nodes: by name, then leftover siblings by a shared unit address."""
    pairs.append((a_path, b_path, a, b))
    theirs = {c.name: c for c in b.children}
    left_a = [c for c in a.children if c.name not in theirs]
    mine = {c.name for c in a.children}
    left_b = [c for c in b.children if c.name not in mine]
    by_unit: dict[str, list[Node]] = {}
    for c in left_b:
        unit = c.name.partition("@")[2]
        if unit:
            by_unit.setdefault(unit, []).append(c)
    units_a = [c.name.partition("@")[2] for c in left_a]
    for c in a.children:
        other = theirs.get(c.name)
        if other is None:
            unit = c.name.partition("@")[2]
            cands = by_unit.get(unit, []) if unit else []
            if len(cands) == 1 and units_a.count(unit) == 1:
                other = cands[0]
        if other is not None:
            _match(c, other, child_path(a_path, c.name), child_path(b_path, other.name), pairs)


def diff_trees(a: DeviceTree, b: DeviceTree) -> list[Change]:
    """The changes from ``a`` to ``b``: per matched node in ``a``'s order its
    renames and property changes, then removed nodes, then added nodes."""
    out: list[Change] = []
    if a.boot_cpuid() != b.boot_cpuid():
        out.append(
            Change("boot-cpuid-phys", "/", "", f"{a.boot_cpuid():#x}", f"{b.boot_cpuid():#x}")
        )
    if sorted(a.reserve) != sorted(b.reserve):
        out.append(
            Change("memreserve", "/memreserve/", "", _reserve(a.reserve), _reserve(b.reserve))
        )
    pairs: list[tuple[str, str, Node, Node]] = []
    _match(a.root, b.root, "/", "/", pairs)
    rename = {ap: bp for ap, bp, _, _ in pairs}
    matched_b = set(rename.values())
    refs_a, refs_b = _Refs(a.root), _Refs(b.root)
    for ap, bp, an, bn in pairs:
        if an.name != bn.name and ap != "/":
            out.append(Change("node-renamed", ap, "", an.name, bn.name))
        theirs = {p.name: p for p in bn.props}
        mine = {p.name for p in an.props}
        for p in an.props:
            q = theirs.get(p.name)
            if q is None:
                out.append(Change("property-removed", ap, p.name, old=refs_a.render(ap, p)))
            elif refs_a.value(ap, p, rename) != refs_b.value(bp, q, {}):
                out.append(
                    Change(
                        "property-changed", ap, p.name, refs_a.render(ap, p), refs_b.render(bp, q)
                    )
                )
        for q in bn.props:
            if q.name not in mine:
                out.append(Change("property-added", ap, q.name, new=refs_b.render(bp, q)))
    for path, node in a.root.walk():
        parent = path.rpartition("/")[0] or "/"
        if path not in rename and (path == "/" or parent in rename):
            out.append(Change("node-removed", path, old=_summary(node)))
    for path, node in b.root.walk():
        parent = path.rpartition("/")[0] or "/"
        if path not in matched_b and parent in matched_b:
            out.append(Change("node-added", path, new=_summary(node)))
    return out


def _reserve(entries: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"{base:#x} {size:#x}" for base, size in sorted(entries)) or "(none)"


def changes_json(changes: Sequence[Change], a: str, b: str) -> str:
    return (
        json.dumps(
            {"a": a, "b": b, "same": not changes, "changes": [c.as_dict() for c in changes]},
            indent=2,
        )
        + "\n"
    )
