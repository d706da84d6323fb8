"""Semantic diff of two device trees: what a kernel would see differently.

Two blobs are the same when they hold the same tree: the same nodes, each with
the same properties and values, the same /memreserve/ entries and the same
``boot_cpuid_phys``. Everything the encoding may vary without changing the
tree is ignored: string-table order and sharing, block order, padding,
``FDT_NOP`` tokens, header version, the order of properties and of sibling
nodes, and the numbers chosen as phandles: a reference is compared by the node
it points at (shown as ``&{/path}``), and a ``phandle`` property only by its
presence. References are the cells
:func:`fdtgen.fdt.phandles.reference_cells` decodes (dtc's checks, Linux's
supplier bindings, the CPU bindings); in any other property a cell that names
the same node through another number is no change (:func:`_renumbered`).

Nodes are matched by name; siblings left over on both sides are paired as a
rename when they are of the same kind and share the unit address or the name
before it (:func:`_renames`). Everything is linear in the trees' sizes.
Values are shown as DTS: strings, cells or bytes, as dtc would print them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from fdtgen.fdt.dts import prop_value
from fdtgen.fdt.phandles import NO_PHANDLE, phandle_paths, reference_cells
from fdtgen.fdt.tree import DeviceTree, Kind, Node, Prop, child_path

VALUE_LIMIT = 200  # characters of a rendered value before it is cut
PHANDLE_PROPS = frozenset({"phandle", "linux,phandle"})


class Change(NamedTuple):
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


# Properties whose numbers are never phandles, whatever they happen to equal.
NUMERIC_PROPS = frozenset({"reg", "ranges", "dma-ranges", "interrupts"})


class _Refs:
    """One tree's phandle references: the cells bindings name
    (:func:`fdtgen.fdt.phandles.reference_cells`) and every phandle's node."""

    def __init__(self, root: Node) -> None:
        self.cells = reference_cells(root)
        self.paths = phandle_paths(root)

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


def _changed(
    ap: str, p: Prop, bp: str, q: Prop, refs_a: _Refs, refs_b: _Refs, rename: dict[str, str]
) -> bool:
    """Whether ``p`` (at ``ap`` in ``a``) and ``q`` (at ``bp`` in ``b``) differ
    for a kernel: known references by the node they name, anything else by
    value, less cells that only renumber a reference (:func:`_renumbered`)."""
    if (ap, p.name) in refs_a.cells or (bp, q.name) in refs_b.cells:
        return refs_a.value(ap, p, rename) != refs_b.value(bp, q, {})
    if p.name in PHANDLE_PROPS:
        return False
    return p.value != q.value and not _renumbered(p, q, refs_a, refs_b, rename)


GROUP_LIMIT = 16  # cells in the largest tuple a vendor list repeats, for _renumbered


def _renumbered(p: Prop, q: Prop, refs_a: _Refs, refs_b: _Refs, rename: dict[str, str]) -> bool:
    """Whether ``p`` and ``q``, of a property no binding lists (a vendor pin
    list, ``trip``, ``pm_qos``), differ only by renumbered references.

    The value is read as tuples of ``size`` cells (``size`` dividing the
    length, at most :data:`GROUP_LIMIT`) with a reference at one offset: every
    differing cell must sit at that offset, and every cell at that offset, on
    both sides, must name the same node (through ``rename``). So in
    ``<1 2 3 &pcfg>, <1 3 3 &pcfg>`` a renumbered ``&pcfg`` passes, while an
    edited pin number fails even when it happens to equal the new phandle of
    the node the old number named: the untouched cells at its offset name
    different nodes on the two sides."""
    if (
        len(p.value) != len(q.value)
        or len(p.value) % 4
        or p.name.startswith("#")
        or p.name in NUMERIC_PROPS
        or p.kind is Kind.STRINGS
    ):
        return False
    xs, ys = p.as_cells(), q.as_cells()
    differ = [i for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if x != y]
    n = len(xs)
    for size in range(1, min(n, GROUP_LIMIT) + 1):
        offset = differ[0] % size
        if n % size or any(i % size != offset for i in differ):
            continue
        if all(_same_target(xs[i], ys[i], refs_a, refs_b, rename) for i in range(offset, n, size)):
            return True
    return False


def _same_target(x: int, y: int, refs_a: _Refs, refs_b: _Refs, rename: dict[str, str]) -> bool:
    ta, tb = refs_a.paths.get(x), refs_b.paths.get(y)
    if ta is None or tb is None:
        return x == y and x in NO_PHANDLE
    return rename.get(ta, ta) == tb


def _unit(name: str) -> str:
    return name.partition("@")[2]


def _base(name: str) -> str:
    return name.partition("@")[0]


def _kind(node: Node) -> bytes | None:
    """What a node is, for matching renames: its compatible, else its device_type."""
    for name in ("compatible", "device_type"):
        p = node.prop(name)
        if p is not None and p.value:
            return p.value
    return None


def _renames(left_a: list[Node], left_b: list[Node]) -> dict[str, Node]:
    """Leftover siblings paired as renames, by ``a``'s name.

    A pair must be of the same kind (compatible, else device_type) and share
    the unit address (``pl011@9000000`` -> ``serial@9000000``) or, failing
    that, the name before the ``@`` (``memory@40000000`` -> ``memory@80000000``);
    a key held by more than one leftover on either side pairs nothing. Nodes
    of no kind are never paired: ``ethernet@1`` and ``usb-port@1`` share only
    a number. Linear in the number of siblings."""
    out: dict[str, Node] = {}
    kinds_a = {c.name: _kind(c) for c in left_a}
    kinds_b = {c.name: _kind(c) for c in left_b}
    for part in (_unit, _base):
        keys_a: dict[tuple[str, bytes], list[Node]] = {}
        keys_b: dict[tuple[str, bytes], list[Node]] = {}
        for side, kinds, keys in ((left_a, kinds_a, keys_a), (left_b, kinds_b, keys_b)):
            for c in side:
                kind, at = kinds[c.name], part(c.name)
                if kind is not None and at:
                    keys.setdefault((at, kind), []).append(c)
        for key, mine in keys_a.items():
            theirs = keys_b.get(key)
            if theirs is not None and len(mine) == 1 and len(theirs) == 1:
                out[mine[0].name] = theirs[0]
        taken = {c.name for c in out.values()}
        left_a = [c for c in left_a if c.name not in out]
        left_b = [c for c in left_b if c.name not in taken]
    return out


def _match(a: Node, b: Node) -> list[tuple[str, str, Node, Node]]:
    """Matched node pairs with their paths, ``a``'s pre-order: by name, then
    leftover siblings as renames (:func:`_renames`)."""
    pairs: list[tuple[str, str, Node, Node]] = []
    stack = [("/", "/", a, b)]
    while stack:
        ap, bp, an, bn = stack.pop()
        pairs.append((ap, bp, an, bn))
        theirs = {c.name: c for c in bn.children}
        mine = {c.name for c in an.children}
        left_a = [c for c in an.children if c.name not in theirs]
        renamed = _renames(left_a, [c for c in bn.children if c.name not in mine]) if left_a else {}
        below = []
        for c in an.children:
            other = theirs.get(c.name)
            if other is None:
                other = renamed.get(c.name)
            if other is not None:
                below.append((child_path(ap, c.name), child_path(bp, other.name), c, other))
        stack.extend(reversed(below))
    return pairs


def diff_trees(a: DeviceTree, b: DeviceTree) -> list[Change]:
    """The changes from ``a`` to ``b``: per matched node in ``a``'s order its
    renames and property changes, then removed nodes, then added nodes.

    Time and memory are linear in the two trees' sizes."""
    out: list[Change] = []
    if a.boot_cpuid() != b.boot_cpuid():
        out.append(
            Change("boot-cpuid-phys", "/", "", f"{a.boot_cpuid():#x}", f"{b.boot_cpuid():#x}")
        )
    if sorted(a.reserve) != sorted(b.reserve):
        out.append(
            Change("memreserve", "/memreserve/", "", _reserve(a.reserve), _reserve(b.reserve))
        )
    pairs = _match(a.root, b.root)
    rename = {ap: bp for ap, bp, _, _ in pairs}
    matched_b = set(rename.values())
    refs_a, refs_b = _Refs(a.root), _Refs(b.root)
    for ap, bp, an, bn in pairs:
        if an.name != bn.name and ap != "/":
            out.append(Change("node-renamed", ap, "", an.name, bn.name))
        theirs = {q.name: q for q in bn.props}
        mine = {p.name for p in an.props}
        for p in an.props:
            q = theirs.get(p.name)
            if q is None:
                out.append(Change("property-removed", ap, p.name, old=refs_a.render(ap, p)))
            elif _changed(ap, p, bp, q, refs_a, refs_b, rename):
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


def changes_json(changes: Sequence[Change], a: str, b: str, limit: int | None = None) -> str:
    """The changes as JSON: the first ``limit`` (all if ``None``), their total
    ``count`` and how many were ``omitted``."""
    import json  # only --json needs it

    shown = changes if limit is None else changes[:limit]
    doc = {
        "a": a,
        "b": b,
        "same": not changes,
        "count": len(changes),
        "omitted": len(changes) - len(shown),
        "changes": [c.as_dict() for c in shown],
    }
    return json.dumps(doc, indent=2) + "\n"
