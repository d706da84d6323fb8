"""Phandle references in a parsed tree: dtc's checks (checks.c, for verify)
and the wider set bindings define (for diff and readable DTS)."""

from __future__ import annotations

import re
from typing import NamedTuple

from fdtgen.fdt.tree import DeviceTree, Kind, Node, Prop, Ref, child_path

# Consumer property -> the provider's cells property (dtc checks.c,
# dgibson/dtc 061c89ea064ecfbf760357980a77d204fb7fae7d,
# WARNING_PROPERTY_PHANDLE_CELLS); msi-parent's #msi-cells is optional.
PROVIDER_CELLS = {
    "clocks": "#clock-cells",
    "cooling-device": "#cooling-cells",
    "dmas": "#dma-cells",
    "hwlocks": "#hwlock-cells",
    "interrupts-extended": "#interrupt-cells",
    "io-channels": "#io-channel-cells",
    "iommus": "#iommu-cells",
    "mboxes": "#mbox-cells",
    "msi-parent": "#msi-cells",
    "mux-controls": "#mux-control-cells",
    "phys": "#phy-cells",
    "power-domains": "#power-domain-cells",
    "pwms": "#pwm-cells",
    "resets": "#reset-cells",
    "sound-dai": "#sound-dai-cells",
    "thermal-sensors": "#thermal-sensor-cells",
}
OPTIONAL_CELLS = frozenset({"msi-parent"})
SINGLE_PHANDLE = frozenset({"interrupt-parent", "next-level-cache"})
NO_PHANDLE = (0, 0xFFFF_FFFF)  # dtc: "a cell value 0 or -1 to skip over optional entries"


class PhandleUse(NamedTuple):
    """One phandle cell in a property: ``cell`` indexes the property's cells.

    ``target`` is the path of the node carrying that phandle, ``None`` if none
    does; ``problem`` says why the rest of the property could not be decoded.
    """

    path: str
    prop: str
    cell: int
    phandle: int
    target: str | None
    problem: str = ""


class _Index:
    """Nodes by path, each path's parent, and the path each phandle names."""

    __slots__ = ("nodes", "parents", "by_phandle")

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.parents: dict[str, str] = {}
        self.by_phandle: dict[int, str] = {}


def node_phandle(node: Node) -> int | None:
    """The node's ``phandle`` (or legacy ``linux,phandle``) when it is one cell."""
    for name in ("phandle", "linux,phandle"):
        p = node.prop(name)
        if p is not None and len(p.value) == 4:
            return int.from_bytes(p.value, "big")
    return None


def _index(root: Node) -> _Index:
    ix = _Index()
    for path, node in root.walk():
        ix.nodes[path] = node
        for c in node.children:
            ix.parents[child_path(path, c.name)] = path
        ph = node_phandle(node)
        if ph is not None and ph not in NO_PHANDLE:
            ix.by_phandle.setdefault(ph, path)
    return ix


def _cells_of(node: Node, name: str) -> int | None:
    p = node.prop(name)
    if p is None or len(p.value) != 4:
        return None
    return int.from_bytes(p.value, "big")


def _is_gpio_prop(name: str) -> bool:
    """dtc ``prop_is_gpio``: ``gpios``, ``gpio``, ``*-gpios``, ``*-gpio``, not ``nr-gpio*``."""
    if "nr-gpio" in name:
        return False
    return name.rsplit("-", 1)[-1] in ("gpios", "gpio")


def _address_cells_for_map(ix: _Index, path: str) -> int:
    """``#address-cells`` from ``path`` upwards (Linux ``of_irq_parse_raw``), default 2."""
    cur: str | None = path
    while cur is not None:
        n = _cells_of(ix.nodes[cur], "#address-cells")
        if n is not None:
            return n
        cur = ix.parents.get(cur)
    return 2


def phandle_uses(root: Node) -> list[PhandleUse]:
    """Every phandle reference dtc's checks decode, in tree order."""
    ix = _index(root)
    out: list[PhandleUse] = []
    for path, node in root.walk():
        for p in node.props:
            if len(p.value) % 4 or not p.value:
                continue
            cells = p.as_cells()
            if p.name in SINGLE_PHANDLE or (p.name == "cpu" and "/cpu-map" in path):
                if len(cells) == 1:
                    out.append(PhandleUse(path, p.name, 0, cells[0], ix.by_phandle.get(cells[0])))
            elif p.name in PROVIDER_CELLS:
                out.extend(
                    _specifier_list(
                        ix, path, p.name, cells, PROVIDER_CELLS[p.name], p.name in OPTIONAL_CELLS
                    )
                )
            elif _is_gpio_prop(p.name) and node.prop("gpio-hog") is None:
                out.extend(_specifier_list(ix, path, p.name, cells, "#gpio-cells", False))
            elif p.name == "interrupt-map":
                out.extend(_interrupt_map(ix, path, node, cells))
            elif p.name in ("msi-map", "iommu-map"):
                for i in range(1, len(cells), 4):
                    out.append(PhandleUse(path, p.name, i, cells[i], ix.by_phandle.get(cells[i])))
    return out


def _specifier_list(
    ix: _Index, path: str, prop: str, cells: tuple[int, ...], cells_name: str, optional: bool
) -> list[PhandleUse]:
    """``<&provider args... &provider args...>`` (dtc ``check_property_phandle_args``)."""
    out: list[PhandleUse] = []
    i = 0
    while i < len(cells):
        ph = cells[i]
        if ph in NO_PHANDLE:
            i += 1
            continue
        target = ix.by_phandle.get(ph)
        if target is None:
            out.append(PhandleUse(path, prop, i, ph, None))
            break
        n = _cells_of(ix.nodes[target], cells_name)
        if n is None and not optional:
            out.append(
                PhandleUse(path, prop, i, ph, target, f"provider {target} has no {cells_name}")
            )
            break
        n = n or 0
        if i + 1 + n > len(cells):
            out.append(
                PhandleUse(
                    path,
                    prop,
                    i,
                    ph,
                    target,
                    f"{len(cells)} cells are too few for {target}'s {cells_name} = {n}",
                )
            )
            break
        out.append(PhandleUse(path, prop, i, ph, target))
        i += 1 + n
    return out


def _interrupt_map(ix: _Index, path: str, node: Node, cells: tuple[int, ...]) -> list[PhandleUse]:
    """DT spec "interrupt-map": child unit address, child specifier, parent
    phandle, parent unit address, parent specifier."""
    out: list[PhandleUse] = []
    child_ints = _cells_of(node, "#interrupt-cells")
    if child_ints is None:
        return [PhandleUse(path, "interrupt-map", 0, 0, None, f"{path} has no #interrupt-cells")]
    i = 0
    while i < len(cells):
        j = i + _address_cells_for_map(ix, path) + child_ints
        if j >= len(cells):
            out.append(
                PhandleUse(
                    path, "interrupt-map", i, 0, None, "entry ends before its parent phandle"
                )
            )
            break
        ph = cells[j]
        target = ix.by_phandle.get(ph)
        if target is None:
            out.append(PhandleUse(path, "interrupt-map", j, ph, None))
            break
        parent = ix.nodes[target]
        parent_ints = _cells_of(parent, "#interrupt-cells")
        if parent_ints is None:
            out.append(
                PhandleUse(
                    path, "interrupt-map", j, ph, target, f"{target} has no #interrupt-cells"
                )
            )
            break
        nxt = j + 1 + (_cells_of(parent, "#address-cells") or 0) + parent_ints
        if nxt > len(cells):
            out.append(
                PhandleUse(path, "interrupt-map", j, ph, target, "the last entry is truncated")
            )
            break
        out.append(PhandleUse(path, "interrupt-map", j, ph, target))
        i = nxt
    return out


# Beyond dtc's checks. dtc's list is what phandle_uses decodes; real trees
# reference nodes through many more properties, and a tool that compares two
# trees or prints one as source must know them. reference_cells adds, by name:
# * the suppliers Linux's ``drivers/of/property.c`` links (torvalds/linux
#   02ac5f9d6caec96071103f7c62b5117526e47b64, ``of_supplier_bindings``): the
#   specifier lists ``interconnects``/``#interconnect-cells``,
#   ``io-backends``, ``nvmem-cells``, ``access-controllers``, ``pses``; and the
#   plain phandle lists ``extcon``, ``wakeup-parent``, ``pinctrl-N`` (it lists 0
#   to 8; the pinctrl states go on), ``leds``,
#   ``backlight``, ``panel``, ``post-init-providers``, ``power-supplies``,
#   ``remote-endpoint`` (one phandle, as dtc's checks.c ``get_remote_endpoint``
#   reads it) and every ``*-supply``;
# * ``assigned-clocks`` and ``assigned-clock-parents`` with the provider's
#   ``#clock-cells`` (``drivers/clk/clk-conf.c``, torvalds/linux
#   03844599e65c44a70c932e3e314ee89e23cb6dd3, ``of_parse_phandle_with_args``);
# * the phandle lists of the CPU bindings: ``cpu``, ``cpus``,
#   ``cpu-idle-states`` (``Documentation/devicetree/bindings/arm/cpus.yaml``,
#   torvalds/linux 0791faebfe750292a8a842b64795a390ca4a3b51: "List of phandles
#   to idle state nodes"), ``operating-points-v2``, ``interrupt-affinity``,
#   ``memory-region``.
#
# A plain list counts only when every cell names a node of the same tree;
# otherwise the property is left as numbers. Properties no binding names
# (vendor pin lists such as ``rockchip,pins``) are left to the caller's
# comparison, which can test a cell against :func:`phandle_paths`.

# Specifier lists: the provider's cells property, and whether a provider may
# omit it (then the entry has no argument cells).
LINUX_PROVIDER_CELLS: dict[str, tuple[str, bool]] = {
    "interconnects": ("#interconnect-cells", False),
    "io-backends": ("#io-backend-cells", False),
    "nvmem-cells": ("#nvmem-cell-cells", True),
    "access-controllers": ("#access-controller-cells", False),
    "pses": ("#pse-cells", False),
    "assigned-clocks": ("#clock-cells", False),
    "assigned-clock-parents": ("#clock-cells", False),
}
PHANDLE_LISTS = frozenset(
    {
        "extcon",
        "wakeup-parent",
        "leds",
        "backlight",
        "panel",
        "post-init-providers",
        "power-supplies",
        "remote-endpoint",
        "cpu",
        "cpus",
        "cpu-idle-states",
        "operating-points-v2",
        "interrupt-affinity",
        "memory-region",
    }
)
_PINCTRL = re.compile(r"pinctrl-[0-9]+")

Cells = dict[tuple[str, str], dict[int, str]]


def phandle_targets(root: Node) -> dict[int, tuple[str, Node]]:
    """Each phandle in the tree and the (first) node carrying it, with its path."""
    out: dict[int, tuple[str, Node]] = {}
    for path, node in root.walk():
        ph = node_phandle(node)
        if ph is not None and ph not in NO_PHANDLE:
            out.setdefault(ph, (path, node))
    return out


def phandle_paths(root: Node) -> dict[int, str]:
    """Each phandle in the tree and the path of the (first) node carrying it."""
    return {ph: path for ph, (path, _) in phandle_targets(root).items()}


def is_phandle_list(name: str) -> bool:
    """Whether bindings define ``name`` as a list of bare phandles."""
    return name in PHANDLE_LISTS or name.endswith("-supply") or bool(_PINCTRL.fullmatch(name))


def reference_cells(root: Node) -> Cells:
    """``(node path, property) -> {cell index: target path}`` for every property
    whose references decode whole; a property with any cell that does not is
    left out (it is compared as numbers)."""
    targets = phandle_targets(root)
    out: Cells = {}
    broken: set[tuple[str, str]] = set()
    for u in phandle_uses(root):
        key = (u.path, u.prop)
        if u.target is None or u.problem:
            broken.add(key)
        else:
            out.setdefault(key, {})[u.cell] = u.target
    for key in broken:
        out.pop(key, None)
    for path, node in root.walk():
        for p in node.props:
            if (path, p.name) in out or not p.value or len(p.value) % 4:
                continue
            if p.name in LINUX_PROVIDER_CELLS:
                cells_name, optional = LINUX_PROVIDER_CELLS[p.name]
                found = _specifiers(targets, p.as_cells(), cells_name, optional)
            elif is_phandle_list(p.name):
                found = _plain(targets, p.as_cells())
            else:
                continue
            if found:
                out[(path, p.name)] = found
    return out


def _plain(targets: dict[int, tuple[str, Node]], cells: tuple[int, ...]) -> dict[int, str] | None:
    found = {}
    for i, c in enumerate(cells):
        target = targets.get(c)
        if target is None:
            return None
        found[i] = target[0]
    return found


def _specifiers(
    targets: dict[int, tuple[str, Node]], cells: tuple[int, ...], cells_name: str, optional: bool
) -> dict[int, str] | None:
    """``<&provider args...>...``; ``None`` unless every entry decodes."""
    found: dict[int, str] = {}
    i = 0
    while i < len(cells):
        if cells[i] in NO_PHANDLE:  # an empty entry (clk-conf.c: "skip empty (null) phandles")
            i += 1
            continue
        target = targets.get(cells[i])
        if target is None:
            return None
        path, node = target
        n_prop = node.prop(cells_name)
        if n_prop is None and not optional:
            return None
        n = int.from_bytes(n_prop.value, "big") if n_prop and len(n_prop.value) == 4 else 0
        if i + 1 + n > len(cells):
            return None
        found[i] = path
        i += 1 + n
    return found


_LABEL_BAD = re.compile(r"[^A-Za-z0-9_]")


def with_labels(tree: DeviceTree) -> DeviceTree:
    """``tree`` with a label on every node that has a unique ``phandle`` and each
    decodable reference to it written as :class:`fdtgen.fdt.tree.Ref`.

    Only nodes with an explicit 4-byte ``phandle`` get labels: dtc would add a
    ``phandle`` property to a node referenced by label that lacks one, which
    would change the blob. A tree whose phandles dtc rejects (checks.c
    ``explicit_phandles``: wrong length, 0 or 0xffffffff, used twice, or
    ``linux,phandle`` disagreeing) is returned as it is: dtc resolves no
    reference in such a tree.
    """
    root = tree.root
    counts: dict[int, int] = {}
    for _, node in root.walk():
        values = set()
        for name in ("phandle", "linux,phandle"):
            p = node.prop(name)
            if p is None:
                continue
            if len(p.value) != 4 or int.from_bytes(p.value, "big") in NO_PHANDLE:
                return tree
            values.add(int.from_bytes(p.value, "big"))
        if len(values) > 1:
            return tree
        for v in values:
            counts[v] = counts.get(v, 0) + 1
    if any(n > 1 for n in counts.values()):
        return tree
    labels: dict[str, str] = {}
    used: set[str] = set()
    next_n: dict[str, int] = {}  # per base, the first suffix not yet tried
    for path, node in root.walk():
        p = node.prop("phandle")
        if p is None or len(p.value) != 4:
            continue
        if path == "/":  # dtc takes no label on the root: refer to it by path
            labels[path] = "{/}"
            continue
        base = _LABEL_BAD.sub("_", node.name)
        if base[0].isdigit():
            base = "n" + base
        n = next_n.get(base, 1)
        label = base if n == 1 else f"{base}_{n}"
        while label in used:
            n += 1
            label = f"{base}_{n}"
        next_n[base] = n + 1
        used.add(label)
        labels[path] = label
    refs: dict[tuple[str, str], dict[int, str]] = {
        key: cells
        for key, cells in reference_cells(root).items()
        if all(target in labels for target in cells.values())
    }

    def rebuild(node: Node, path: str) -> Node:
        props = []
        for p in node.props:
            cells = refs.get((path, p.name))
            if cells:
                items = tuple(
                    Ref(labels[cells[i]], c) if i in cells else c
                    for i, c in enumerate(p.as_cells())
                )
                p = Prop(p.name, p.value, Kind.CELLS, items)
            props.append(p)
        kids = tuple(rebuild(c, child_path(path, c.name)) for c in node.children)
        label = labels.get(path)
        return Node(node.name, tuple(props), kids, None if path == "/" else label)

    return DeviceTree(rebuild(root, "/"), tree.reserve, tree.boot_cpuid_phys)
