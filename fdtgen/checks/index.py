"""A parsed tree indexed for the verify rules, and the :class:`Finding` they return.

Every rule module reads the tree through one :class:`TreeIndex`: nodes by
path, each node's parent, phandles, ``#address-cells``/``#size-cells``
lookups with the DT spec's defaults, ``reg`` decoded and translated to CPU
addresses through the ancestors' ``ranges``, and interrupt specifiers decoded
against their controller. Nothing here judges the tree: a lookup that cannot
be decoded answers ``None`` and the rule that needed it says why.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

from fdtgen.fdt.dts import prop_value
from fdtgen.fdt.phandles import PhandleUse, node_phandle, phandle_uses
from fdtgen.fdt.tree import DeviceTree, Node, Prop, child_path

# The compatibles that put a node under a binding the rules check, whichever
# hypervisor wrote it (arm,gic-v3.yaml, arm,gic.yaml, arm/psci.yaml, arm,arch_timer.yaml).
GICV3_COMPATIBLE = frozenset({"arm,gic-v3", "qcom,msm8996-gic-v3"})
GICV2_COMPATIBLE = frozenset(
    {
        "arm,arm11mp-gic",
        "arm,arm1176jzf-devchip-gic",
        "arm,cortex-a15-gic",
        "arm,cortex-a5-gic",
        "arm,cortex-a7-gic",
        "arm,cortex-a9-gic",
        "arm,eb11mp-gic",
        "arm,gic-400",
        "arm,pl390",
        "arm,tc11mp-gic",
        "qcom,msm-8660-qgic",
        "qcom,msm-qgic2",
    }
)
PSCI_COMPATIBLE = frozenset({"arm,psci", "arm,psci-0.2", "arm,psci-1.0"})
TIMER_COMPATIBLE = frozenset({"arm,armv8-timer", "arm,armv7-timer"})


# drivers/of/irq.c of_irq_imap_abusers (torvalds/linux 77b679453d33): interrupt
# controllers whose drivers parse their own interrupt-map; the OF core ignores
# it, so it is no nexus to decode ("fsl,ls1088a-extirq" and its kin).
IMAP_ABUSERS = frozenset(
    {
        "CBEA,platform-spider-pic",
        "sti,platform-spider-pic",
        "realtek,rtl-intc",
        "fsl,ls1021a-extirq",
        "fsl,ls1043a-extirq",
        "fsl,ls1088a-extirq",
        "renesas,rza1-irqc",
        "pasemi,rootbus",
    }
)
# DT spec "status": what a node not "okay" is (absent status means okay).
ENABLED_STATUS = frozenset({"okay", "ok"})
MAX_NEXUS_HOPS = 16  # interrupt-map levels followed before giving up (a loop)

SHOW_LIMIT = 96  # characters of a property value a finding shows before cutting it


class MapRow(NamedTuple):
    """One ``interrupt-map`` entry: the child unit address and specifier it
    matches, the ``parent`` controller (path) and the specifier it becomes."""

    child_addr: tuple[int, ...]
    child_spec: tuple[int, ...]
    parent: str
    parent_addr: tuple[int, ...]
    parent_spec: tuple[int, ...]


class Region(NamedTuple):
    """Entry number ``entry`` of the ``reg`` of the node at ``path``, as the CPU address
    range ``[base, end)``. ``kind`` is ``"memory"`` (a ``device_type = "memory"``
    node), ``"reserved"`` (under ``/reserved-memory``) or ``"device"``."""

    path: str
    entry: int
    base: int
    size: int
    kind: str

    @property
    def end(self) -> int:
        return self.base + self.size

    def __str__(self) -> str:
        return f"[{self.base:#x}, {self.end:#x})"


class TreeIndex:
    """Path-keyed views of a tree, built once per verify.

    Attributes: ``tree`` and its ``root``; ``nodes`` (path to node) and
    ``order`` (every path, in tree order); ``parents`` (path to its parent's
    path; the root has none); ``by_phandle`` (phandle to the first node that
    has it); ``uses`` (every phandle reference :func:`phandle_uses` decodes)
    and ``uses_at`` (the same, by (path, property)); ``disabled`` (the paths
    of nodes whose own or an ancestor's ``status`` is not "okay": the kernel
    never probes them).
    """

    def __init__(self, tree: DeviceTree) -> None:
        self.tree = tree
        self.root = tree.root
        self.nodes: dict[str, Node] = {}
        self.parents: dict[str, str] = {}
        self.order: list[str] = []
        self.by_phandle: dict[int, str] = {}
        self.disabled: set[str] = set()
        self._compatible_paths: list[str] = []  # nodes with a compatible, in tree order
        stack = [("/", tree.root)]  # pre-order, iteratively: a walk per level costs depth
        while stack:
            path, node = stack.pop()
            self.nodes[path] = node
            self.order.append(path)
            if node.children:
                base = "" if path == "/" else path
                kids = [(f"{base}/{c.name}", c) for c in node.children]
                for kid, _ in kids:
                    self.parents[kid] = path
                stack += reversed(kids)
            if node.prop("compatible") is not None:
                self._compatible_paths.append(path)
            ph = node_phandle(node)
            if ph is not None:
                self.by_phandle.setdefault(ph, path)
            status = node.prop("status")
            if self.parents.get(path) in self.disabled or (
                status is not None and status.value.rstrip(b"\0") not in (b"okay", b"ok")
            ):
                self.disabled.add(path)
        self.uses: list[PhandleUse] = phandle_uses(tree.root)
        self.uses_at: dict[tuple[str, str], list[PhandleUse]] = {}
        for u in self.uses:
            self.uses_at.setdefault((u.path, u.prop), []).append(u)
        self._ranges: dict[str, tuple[list[int], list[tuple[int, int, int]]] | None] = {}
        self._maps: dict[str, list[MapRow] | None] = {}
        self._regions: list[Region] | None = None
        self._compatible: dict[str, tuple[str, ...]] = {}
        self._lookups: dict[str, tuple[tuple[int, ...], dict[tuple[int, ...], MapRow]] | None] = {}

    def enabled(self, path: str) -> bool:
        """The node and its ancestors are all "okay" (DT spec "status")."""
        return path not in self.disabled

    def cell(self, path: str, name: str) -> int | None:
        """The one-cell property ``name`` of the node at ``path``, or ``None``."""
        p = self.nodes[path].prop(name)
        if p is None or len(p.value) != 4:
            return None
        return int.from_bytes(p.value, "big")

    def address_cells(self, path: str) -> int:
        """``#address-cells`` for the children of ``path`` (DT spec default 2)."""
        n = self.cell(path, "#address-cells")
        return 2 if n is None else n

    def size_cells(self, path: str) -> int:
        """``#size-cells`` for the children of ``path`` (DT spec default 1)."""
        n = self.cell(path, "#size-cells")
        return 1 if n is None else n

    def compatible(self, path: str) -> tuple[str, ...]:
        found = self._compatible.get(path)
        if found is None:
            found = self._compatible[path] = strings(self.nodes[path].prop("compatible")) or ()
        return found

    def with_compatible(self, names: frozenset[str] | set[str]) -> list[str]:
        """Paths of the nodes compatible with any of ``names``, in tree order."""
        return [p for p in self._compatible_paths if any(c in names for c in self.compatible(p))]

    def reg(self, path: str) -> list[tuple[int, int]] | None:
        """The node's ``reg`` as (base, size) in its parent's address space."""
        p = self.nodes[path].prop("reg")
        parent = self.parents.get(path)
        if p is None or parent is None:
            return None
        return _entries(p.value, self.address_cells(parent), self.size_cells(parent))

    def cpu_reg(self, path: str) -> list[tuple[int, int]]:
        """The node's ``reg`` entries that translate to CPU addresses, as (base, size)."""
        out = []
        for base, size in self.reg(path) or ():
            cpu = self.translate(path, base)
            if cpu is not None:
                out.append((cpu, size))
        return out

    def translate(self, path: str, base: int) -> int | None:
        """``base`` (in the parent's space of ``path``) as a CPU address, through
        every ancestor's ``ranges``; ``None`` when a bus is not memory-mapped."""
        bus = self.parents.get(path)
        addr = base
        while bus is not None and bus != "/":
            if bus not in self._ranges:
                self._ranges[bus] = self._bus_ranges(bus)
            window = self._ranges[bus]
            if window is None:
                return None
            starts, entries = window
            if entries:  # empty: an identity mapping
                i = bisect.bisect_right(starts, addr) - 1
                if i < 0 or not addr < entries[i][0] + entries[i][2]:
                    return None
                addr = entries[i][1] + addr - entries[i][0]
            bus = self.parents.get(bus)
        return addr

    def _bus_ranges(self, bus: str) -> tuple[list[int], list[tuple[int, int, int]]] | None:
        """``bus``'s ``ranges`` sorted by child address, with the child
        addresses apart for bisection; ``None`` when it does not map to CPU
        addresses (no ``ranges``, a PCI bus, a length that does not fit)."""
        node = self.nodes[bus]
        ranges = node.prop("ranges")
        if ranges is None or string(node.prop("device_type")) == "pci":
            return None
        entries = _ranges(
            ranges.value,
            self.address_cells(bus),
            self.address_cells(self.parents[bus]),
            self.size_cells(bus),
        )
        if entries is None:
            return None
        entries.sort()
        return [c for c, _, _ in entries], entries

    def regions(self) -> list[Region]:
        """Every ``reg`` range on a memory-mapped bus, as CPU addresses, in tree order."""
        if self._regions is None:
            self._regions = self._all_regions()
        return self._regions

    def _all_regions(self) -> list[Region]:
        out = []
        for path in self.order:
            parent = self.parents.get(path)
            if parent is None or self.size_cells(parent) == 0:
                continue
            entries = self.reg(path)
            if not entries:
                continue
            if string(self.nodes[path].prop("device_type")) == "memory":
                kind = "memory"
            elif path.startswith("/reserved-memory/"):
                kind = "reserved"
            else:
                kind = "device"
            for i, (base, size) in enumerate(entries):
                cpu = self.translate(path, base)
                if cpu is not None and size:
                    out.append(Region(path, i, cpu, size, kind))
        return out

    def memory(self) -> list[tuple[str, int, int]]:
        """(path, base, size) of every ``device_type = "memory"`` range, CPU addresses."""
        out = []
        for path in self.order:
            if string(self.nodes[path].prop("device_type")) != "memory":
                continue
            for base, size in self.reg(path) or ():
                cpu = self.translate(path, base)
                if cpu is not None and size:
                    out.append((path, cpu, size))
        return out

    def cpus(self) -> list[str]:
        """Paths of the ``/cpus`` children with ``device_type = "cpu"``."""
        if "/cpus" not in self.nodes:
            return []
        return [
            child_path("/cpus", c.name)
            for c in self.nodes["/cpus"].children
            if string(c.prop("device_type")) == "cpu"
        ]

    def interrupt_parent(self, path: str) -> str | None:
        """The controller ``path``'s ``interrupts`` go to (dtc ``check_interrupts_property``)."""
        cur: str | None = path
        while cur is not None:
            node = self.nodes[cur]
            if cur != path and is_interrupt_provider(node):
                return cur
            ip = node.prop("interrupt-parent")
            if ip is not None:
                if len(ip.value) != 4:
                    return None
                return self.by_phandle.get(int.from_bytes(ip.value, "big"))
            cur = self.parents.get(cur)
        return None

    def interrupts_prop(self, path: str) -> Prop | None:
        """The node's ``interrupts-extended``, else its ``interrupts`` (Linux
        ``of_irq_parse_one`` tries the extended form first)."""
        node = self.nodes[path]
        return node.prop("interrupts-extended") or node.prop("interrupts")

    def specifiers(self, path: str) -> list[tuple[str, tuple[int, ...]]] | None:
        """``(controller, specifier)`` for each interrupt of the node, from
        ``interrupts-extended`` or ``interrupts``; ``None`` if it has neither
        or they do not decode."""
        node = self.nodes[path]
        ext = node.prop("interrupts-extended")
        if ext is not None:
            uses = self.uses_at.get((path, "interrupts-extended"), [])
            if not uses or any(u.target is None or u.problem for u in uses):
                return None
            cells = ext.as_cells()
            out = []
            for u in uses:
                assert u.target is not None
                n = self.cell(u.target, "#interrupt-cells") or 0
                out.append((u.target, tuple(cells[u.cell + 1 : u.cell + 1 + n])))
            return out
        p = node.prop("interrupts")
        ctrl = self.interrupt_parent(path)
        if p is None or ctrl is None or len(p.value) % 4:
            return None
        width = self.cell(ctrl, "#interrupt-cells")
        cells = p.as_cells()
        if not width or len(cells) % width:
            return None
        n = width
        return [(ctrl, tuple(cells[i : i + n])) for i in range(0, len(cells), n)]

    def is_nexus(self, path: str) -> bool:
        """The node translates interrupts through its ``interrupt-map``: it has
        one and is no controller that parses its own (:data:`IMAP_ABUSERS`)."""
        node = self.nodes[path]
        if node.prop("interrupt-map") is None:
            return False
        return not (
            node.prop("interrupt-controller") is not None
            and any(c in IMAP_ABUSERS for c in self.compatible(path))
        )

    def interrupt_map(self, path: str) -> list[MapRow] | None:
        """The nexus's ``interrupt-map`` rows (DT spec "interrupt-map": child
        unit address in the nexus's ``#address-cells``, child specifier, parent
        phandle, parent unit address in the *parent's* ``#address-cells``
        (0 when it has none), parent specifier); ``None`` if it does not decode."""
        if path in self._maps:
            return self._maps[path]
        rows: list[MapRow] | None = []
        uses = self.uses_at.get((path, "interrupt-map"), [])
        p = self.nodes[path].prop("interrupt-map")
        ac = self.map_address_cells(path)
        ic = self.cell(path, "#interrupt-cells")
        if p is None or not uses or ic is None or any(u.target is None or u.problem for u in uses):
            rows = None
        else:
            cells = p.as_cells()
            for u in uses:
                assert u.target is not None and rows is not None
                start = u.cell - ac - ic
                pac = self.cell(u.target, "#address-cells") or 0
                pic = self.cell(u.target, "#interrupt-cells") or 0
                at = u.cell + 1 + pac
                rows.append(
                    MapRow(
                        tuple(cells[start : start + ac]),
                        tuple(cells[start + ac : u.cell]),
                        u.target,
                        tuple(cells[u.cell + 1 : at]),
                        tuple(cells[at : at + pic]),
                    )
                )
        self._maps[path] = rows
        return rows

    def map_address_cells(self, path: str) -> int:
        """``#address-cells`` from ``path`` upwards, default 2 (Linux ``of_irq_parse_raw``)."""
        cur: str | None = path
        while cur is not None:
            n = self.cell(cur, "#address-cells")
            if n is not None:
                return n
            cur = self.parents.get(cur)
        return 2

    def resolve(
        self, path: str, ctrl: str, spec: tuple[int, ...]
    ) -> tuple[str, tuple[int, ...]] | None:
        """The controller and specifier an interrupt of the node at ``path``
        reaches through any interrupt nexus (Linux ``of_irq_parse_raw``: the
        node's unit address and specifier, masked by ``interrupt-map-mask``,
        matched against the rows whose parent is enabled; a next level matches
        on the row's parent unit address); ``None`` when no row matches."""
        reg = self.nodes[path].prop("reg")
        addr: tuple[int, ...] = (
            reg.as_cells() if reg is not None and len(reg.value) % 4 == 0 else ()
        )
        for _ in range(MAX_NEXUS_HOPS):
            if not self.is_nexus(ctrl):
                return ctrl, spec
            lookup = self._map_lookup(ctrl)
            if lookup is None:
                return None
            mask, rows = lookup
            ac = self.map_address_cells(ctrl)
            key = tuple(addr[:ac]) + (0,) * max(0, ac - len(addr)) + spec
            hit = rows.get(tuple(k & m for k, m in zip(key, mask, strict=False)))
            if hit is None:
                return None
            if hit.parent == ctrl:  # an entry to itself ends the walk
                return ctrl, hit.parent_spec
            ctrl, spec, addr = hit.parent, hit.parent_spec, hit.parent_addr
        return None

    def _map_lookup(
        self, ctrl: str
    ) -> tuple[tuple[int, ...], dict[tuple[int, ...], MapRow]] | None:
        """The nexus's mask and its rows by masked key (the first row whose
        parent is enabled wins, as in Linux's in-order scan)."""
        if ctrl in self._lookups:
            return self._lookups[ctrl]
        rows = self.interrupt_map(ctrl)
        found: tuple[tuple[int, ...], dict[tuple[int, ...], MapRow]] | None = None
        if rows is not None:
            width = self.map_address_cells(ctrl) + (self.cell(ctrl, "#interrupt-cells") or 0)
            mask_p = self.nodes[ctrl].prop("interrupt-map-mask")
            mask = mask_p.as_cells() if mask_p is not None and len(mask_p.value) % 4 == 0 else ()
            mask = (tuple(mask) + (0xFFFF_FFFF,) * width)[:width]
            table: dict[tuple[int, ...], MapRow] = {}
            for r in rows:
                if self.enabled(r.parent):
                    k = r.child_addr + r.child_spec
                    table.setdefault(tuple(c & m for c, m in zip(k, mask, strict=False)), r)
            found = (mask, table)
        self._lookups[ctrl] = found
        return found

    def gic_version(self, path: str) -> int | None:
        """3 or 2 if the node at ``path`` is a GICv3 or GICv2, else ``None``."""
        compat = set(self.compatible(path))
        if compat & GICV3_COMPATIBLE:
            return 3
        if compat & GICV2_COMPATIBLE:
            return 2
        return None


def is_interrupt_provider(node: Node) -> bool:
    return node.prop("interrupt-controller") is not None or node.prop("interrupt-map") is not None


def strings(p: Prop | None) -> tuple[str, ...] | None:
    """A string-list property's strings; ``None`` if absent or not NUL-terminated."""
    if p is None or not p.value.endswith(b"\0"):
        return None
    return p.as_strings()


def string(p: Prop | None) -> str | None:
    """A property holding exactly one string; ``None`` otherwise."""
    s = strings(p)
    return s[0] if s and len(s) == 1 else None


def number(cells: Sequence[int]) -> int:
    """Big-endian cells as one number (a 2-cell address is ``hi << 32 | lo``)."""
    v = 0
    for c in cells:
        v = v << 32 | c
    return v


def show(p: Prop | None, limit: int = SHOW_LIMIT) -> str:
    """A property's value as DTS text for a finding, cut at ``limit`` characters."""
    if p is None:
        return ""
    text = prop_value(p) or "(empty)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_specifier(spec: Sequence[int]) -> str:
    """An interrupt specifier as DTS cells: ``<0x0 0x10 0x1>``."""
    return f"<{' '.join(f'{c:#x}' for c in spec)}>"


def _entries(value: bytes, ac: int, sc: int) -> list[tuple[int, int]] | None:
    """``reg``-style (address, size) pairs; ``None`` if the length does not fit."""
    n = ac + sc
    if ac == 0 or n == 0 or len(value) % (4 * n):
        return None
    cells = _cells(value)
    return [
        (number(cells[i : i + ac]), number(cells[i + ac : i + n])) for i in range(0, len(cells), n)
    ]


def _ranges(value: bytes, cac: int, pac: int, sc: int) -> list[tuple[int, int, int]] | None:
    """``ranges`` (child address, parent address, size) triples; ``None`` if
    the length does not fit."""
    n = cac + pac + sc
    if n == 0 or len(value) % (4 * n):
        return None
    cells = _cells(value)
    return [
        (
            number(cells[i : i + cac]),
            number(cells[i + cac : i + cac + pac]),
            number(cells[i + cac + pac : i + n]),
        )
        for i in range(0, len(cells), n)
    ]


def _cells(value: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value), 4))
