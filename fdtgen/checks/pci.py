"""``pci.*`` findings: PCI host bridges against their bindings.

A host bridge is a node with ``device_type = "pci"`` whose parent is not one,
or one compatible with ``pci-host-ecam-generic``/``pci-host-cam-generic``.
The rules come from dt-schema ``pci/pci-bus-common.yaml`` (three address
cells, two size cells, one interrupt cell, ``bus-range``, the ``ranges``
space codes, ``interrupt-map-mask``), Linux ``host-generic-pci.yaml`` (one
``reg``: the configuration space of the buses in ``bus-range``; at least one
non-prefetchable memory window), the DT spec's "interrupt-map" (each row: child
unit address, child specifier, parent phandle, parent unit address, parent
specifier) and Linux ``pci-msi.txt``/``of_map_id`` (``msi-map`` rows of four
cells: requester-ID base, MSI controller, MSI base, length). Every window's
CPU range must fit the address width and share no byte with another window
or any ``reg``. Each loop is bounded by the property's length.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

from fdtgen.checks.finding import Finding, Findings
from fdtgen.checks.index import TreeIndex, number, show, string
from fdtgen.spec import (
    BUS_CONFIG_SIZE,
    BUS_MAX,
    INTX_PINS,
    MEM32_LIMIT,
    PREFETCHABLE,
    RID_SPACE,
    SPACE_IO,
    SPACE_MEM32,
    SPACE_MEM64,
)

# pci-bus-common.yaml ranges: the phys.hi values a window may start with.
RANGES_SPACES = frozenset(
    {
        0x0100_0000,
        0x0200_0000,
        0x0300_0000,
        0x4200_0000,
        0x4300_0000,
        0x8100_0000,
        0x8200_0000,
        0x8300_0000,
        0xC200_0000,
        0xC300_0000,
    }
)
SPACE_MASK = 0x0300_0000  # phys.hi "ss"
PCI_ADDRESS_CELLS = 3
PCI_SIZE_CELLS = 2
MAP_CHILD_CELLS = PCI_ADDRESS_CELLS + 1  # the child unit address and the INTx pin
MSI_MAP_CELLS = 4  # of_map_id: (id-base, phandle, out-base, length)


def host_bridges(index: TreeIndex) -> list[str]:
    """The host bridges, in tree order."""
    out = []
    for path in index.order:
        generic = any(c in BUS_CONFIG_SIZE for c in index.compatible(path))
        pci = string(index.nodes[path].prop("device_type")) == "pci"
        parent = index.parents.get(path)
        parent_pci = parent is not None and string(index.nodes[parent].prop("device_type")) == "pci"
        if generic or (pci and not parent_pci):
            out.append(path)
    return out


def pci_findings(index: TreeIndex, address_bits: int, out: Findings | None = None) -> list[Finding]:
    """Every host bridge's rule findings, bridge by bridge, then the domains,
    reported into ``out`` (a new :class:`Findings` when ``None``), which is returned."""
    if out is None:
        out = Findings()
    hosts = host_bridges(index)
    spans = _region_spans(index) if hosts else None
    for path in hosts:
        out.merge(_node_findings(index, path))
        found, windows = _ranges_findings(index, path, address_bits)
        out.merge(found)
        assert spans is not None
        _window_overlaps(path, windows, spans, out)
        out.merge(_interrupt_map_findings(index, path))
        out.merge(_msi_findings(index, path))
    out.merge(_domain_findings(index, hosts))
    return out


def _node_findings(index: TreeIndex, path: str) -> list[Finding]:
    node = index.nodes[path]
    out = []
    if string(node.prop("device_type")) != "pci":
        out.append(
            Finding(
                "pci.device-type",
                path,
                "device_type",
                show(node.prop("device_type")),
                'must be "pci" (pci-bus-common.yaml)',
            )
        )
    for name, want in (("#address-cells", PCI_ADDRESS_CELLS), ("#size-cells", PCI_SIZE_CELLS)):
        if index.cell(path, name) != want:
            p = node.prop(name)
            out.append(
                Finding(
                    "pci.cells",
                    path,
                    name,
                    show(p),
                    f"{'missing' if p is None else 'wrong'}: a PCI bus has {want}",
                )
            )
    bus = _bus_range(index, path)
    if bus is None:
        out.append(
            Finding(
                "pci.bus-range",
                path,
                "bus-range",
                show(node.prop("bus-range")),
                f"must be two cells <first last>, first <= last <= {BUS_MAX}",
            )
        )
        bus = (0, BUS_MAX)
    compatible = next((c for c in index.compatible(path) if c in BUS_CONFIG_SIZE), None)
    entries = index.reg(path)
    if compatible is None:  # a vendor bridge's reg is its own binding's
        return out
    if entries is None or len(entries) != 1:
        out.append(
            Finding(
                "pci.reg",
                path,
                "reg",
                show(node.prop("reg")),
                "must be one (base, size) entry: the configuration space",
            )
        )
    else:
        per_bus = BUS_CONFIG_SIZE[compatible]
        buses = bus[1] - bus[0] + 1
        size = entries[0][1]
        if size % per_bus or size < buses * per_bus:
            out.append(
                Finding(
                    "pci.reg",
                    path,
                    "reg",
                    show(node.prop("reg")),
                    f"{size:#x} bytes of {compatible} configuration space do not hold "
                    f"buses {bus[0]}..{bus[1]} ({buses} x {per_bus:#x})",
                )
            )
    return out


def _bus_range(index: TreeIndex, path: str) -> tuple[int, int] | None:
    p = index.nodes[path].prop("bus-range")
    if p is None:
        return (0, BUS_MAX)  # host-generic-pci.yaml: "this will be bus 0 (the default)"
    if len(p.value) != 8:
        return None
    first, last = p.as_cells()
    return (first, last) if first <= last <= BUS_MAX else None


class Window(NamedTuple):
    """One ``ranges`` entry of a host bridge: phys.hi, the PCI and CPU addresses, the size."""

    entry: int
    hi: int
    pci: int
    cpu: int
    size: int


def windows_of(index: TreeIndex, path: str) -> list[Window] | None:
    """The host bridge's ``ranges`` entries; ``None`` when the property is missing,
    empty or not whole entries (three PCI address cells, the parent's address
    cells, two size cells)."""
    p = index.nodes[path].prop("ranges")
    pac = index.address_cells(index.parents.get(path, "/"))
    width = PCI_ADDRESS_CELLS + pac + PCI_SIZE_CELLS
    if p is None or not p.value or len(p.value) % (4 * width):
        return None
    cells = p.as_cells()
    return [
        Window(
            i // width,
            cells[i],
            number(cells[i + 1 : i + 3]),
            number(cells[i + 3 : i + 3 + pac]),
            number(cells[i + 3 + pac : i + width]),
        )
        for i in range(0, len(cells), width)
    ]


def _ranges_findings(
    index: TreeIndex, path: str, address_bits: int
) -> tuple[list[Finding], list[tuple[int, int, int]]]:
    """The findings of the host's ``ranges`` and its windows as (CPU base, end, entry)."""
    p = index.nodes[path].prop("ranges")
    entries = windows_of(index, path)
    if p is None or entries is None:
        pac = index.address_cells(index.parents.get(path, "/"))
        width = PCI_ADDRESS_CELLS + pac + PCI_SIZE_CELLS
        what = "missing" if p is None else "empty" if not p.value else "not whole entries"
        return [
            Finding(
                "pci.ranges",
                path,
                "ranges",
                show(p),
                f"{what}: each window is {width} cells (PCI address 3, CPU address "
                f"{pac}, size 2); host-generic-pci.yaml requires the windows",
            )
        ], []
    out: list[Finding] = []
    windows: list[tuple[int, int, int]] = []  # (CPU base, end, entry)
    plain_memory = False
    for entry, hi, pci, cpu, size in entries:
        space = hi & SPACE_MASK
        shown = f"entry {entry} <{hi:#x} ...>"
        if hi not in RANGES_SPACES:
            out.append(
                Finding(
                    "pci.ranges",
                    path,
                    "ranges",
                    shown,
                    f"phys.hi {hi:#010x} is not an I/O or memory space code of "
                    "pci-bus-common.yaml (bus, device, function and register are 0)",
                )
            )
            continue
        if size == 0:
            out.append(Finding("pci.ranges", path, "ranges", shown, "has size 0"))
            continue
        if space in (SPACE_IO, SPACE_MEM32) and pci + size > MEM32_LIMIT:
            kind = "I/O" if space == SPACE_IO else "32-bit memory (ss = 10)"
            out.append(
                Finding(
                    "pci.ranges-width",
                    path,
                    "ranges",
                    shown,
                    f"{kind} window [{pci:#x}, {pci + size:#x}) ends past 4 GiB in PCI "
                    "space; a window above 4 GiB is 64-bit memory (ss = 11)",
                )
            )
        if space in (SPACE_MEM32, SPACE_MEM64) and not hi & PREFETCHABLE:
            plain_memory = True
        end = cpu + size
        if end > 1 << address_bits:
            out.append(
                Finding(
                    "pci.window",
                    path,
                    "ranges",
                    f"[{cpu:#x}, {end:#x})",
                    f"entry {entry} ends past the {address_bits}-bit physical address "
                    f"space ({1 << address_bits:#x})",
                )
            )
        windows.append((cpu, end, entry))
    if windows and not plain_memory:
        out.append(
            Finding(
                "pci.ranges",
                path,
                "ranges",
                show(p),
                "no non-prefetchable memory window (host-generic-pci.yaml: ranges must "
                "provide at least a definition of non-prefetchable memory)",
            )
        )
    return out, windows


class _Spans(NamedTuple):
    """Every enabled ``reg`` range as (base, end, what), sorted, with the sweep's
    running reach over them: ``reach[i]`` is the furthest end among
    ``keys[: i + 1]`` and ``owner[i]`` the first of them to reach it."""

    keys: list[tuple[int, int, str]]
    bases: list[int]
    reach: list[int]
    owner: list[int]


def _region_spans(index: TreeIndex) -> _Spans:
    keys = sorted(
        (r.base, r.end, f"{r.path} reg entry {r.entry}")
        for r in index.regions()
        if index.enabled(r.path)  # a disabled node (an endpoint-mode twin) decodes nothing
    )
    reach, owner = [], []
    best, who = -1, -1
    for i, (_, end, _) in enumerate(keys):
        if end > best:
            best, who = end, i
        reach.append(best)
        owner.append(who)
    return _Spans(keys, [k[0] for k in keys], reach, owner)


def _window_overlaps(
    path: str, windows: list[tuple[int, int, int]], spans: _Spans, out: Findings
) -> None:
    """No two windows, and no window and ``reg`` range, share a byte: one sweep
    by base over the windows and every range, reporting a span that starts
    before the furthest end so far when either is one of this host's windows.

    The ranges between two windows are taken in one step from ``spans`` (a
    bisection for how far the window reaching furthest keeps reaching, one for
    which of them start before its end), so each host costs its windows times
    ``log`` of the ranges, plus the findings under the cap."""
    keys = spans.keys
    reach, reach_what, reach_mine = -1, "", False
    a = 0  # the next range of the sweep
    mine = sorted((b, e, f"{path} ranges entry {n}") for b, e, n in windows)
    for w in [*mine, None]:
        b = len(keys) if w is None else bisect.bisect_left(keys, w)
        if a < b:
            if reach_mine:  # the ranges under this window's reach overlap it
                t = bisect.bisect_right(spans.reach, reach, a, b)  # the first reaching further
                stop = bisect.bisect_left(spans.bases, reach, a, min(t, b - 1) + 1)
                for base, end, what in keys[a : a + out.wanted("pci.window", stop - a, path)]:
                    out.append(_overlap(path, base, end, what, reach_what))
            if spans.reach[b - 1] > reach:
                reach, reach_mine = spans.reach[b - 1], False
                reach_what = keys[spans.owner[b - 1]][2]
            a = b
        if w is None:
            break
        base, end, what = w
        if base < reach and out.wants("pci.window", path):
            out.append(_overlap(path, base, end, what, reach_what))
        if end > reach:
            reach, reach_what, reach_mine = end, what, True


def _overlap(path: str, base: int, end: int, what: str, other: str) -> Finding:
    return Finding(
        "pci.window", path, "ranges", f"[{base:#x}, {end:#x})", f"{what} overlaps {other}"
    )


def _interrupt_map_findings(index: TreeIndex, path: str) -> list[Finding]:
    node = index.nodes[path]
    imap = node.prop("interrupt-map")
    if imap is None:
        return []
    out = []
    if index.cell(path, "#interrupt-cells") != 1:
        out.append(
            Finding(
                "pci.interrupt-map",
                path,
                "#interrupt-cells",
                show(node.prop("#interrupt-cells")),
                "must be 1 (the INTx pin) with an interrupt-map",
            )
        )
    mask_p = node.prop("interrupt-map-mask")
    mask = mask_p.as_cells() if mask_p is not None and len(mask_p.value) == 16 else None
    if mask is None:
        out.append(
            Finding(
                "pci.interrupt-map",
                path,
                "interrupt-map-mask",
                show(mask_p),
                "must be 4 cells: PCI address (3) and pin",
            )
        )
    if len(imap.value) % 4:
        return [
            *out,
            Finding(
                "pci.interrupt-map",
                path,
                "interrupt-map",
                show(imap),
                "is not a whole number of cells",
            ),
        ]
    cells = imap.as_cells()
    i, row = 0, 0
    while i < len(cells):
        shown = f"row {row}"
        if i + MAP_CHILD_CELLS >= len(cells):
            out.append(
                Finding(
                    "pci.interrupt-map",
                    path,
                    "interrupt-map",
                    shown,
                    "ends before its parent phandle",
                )
            )
            break
        child, pin, ph = cells[i : i + 3], cells[i + 3], cells[i + MAP_CHILD_CELLS]
        target = index.by_phandle.get(ph)
        if target is None:
            out.append(
                Finding(
                    "pci.interrupt-map",
                    path,
                    "interrupt-map",
                    shown,
                    f"parent phandle {ph:#x} names no node",
                )
            )
            break
        pac = index.cell(target, "#address-cells") or 0
        pic = index.cell(target, "#interrupt-cells")
        if not pic or index.nodes[target].prop("interrupt-controller") is None:
            out.append(
                Finding(
                    "pci.interrupt-map",
                    path,
                    "interrupt-map",
                    shown,
                    f"parent {target} is not an interrupt controller with #interrupt-cells",
                )
            )
            break
        nxt = i + MAP_CHILD_CELLS + 1 + pac + pic
        if nxt > len(cells):
            out.append(
                Finding(
                    "pci.interrupt-map",
                    path,
                    "interrupt-map",
                    shown,
                    f"is truncated: {target} takes {pac} address and {pic} specifier cells",
                )
            )
            break
        # A mask that clears the pin maps every pin alike; such a row holds pin 0.
        if (mask is None or mask[3]) and not 1 <= pin <= INTX_PINS:
            out.append(
                Finding(
                    "pci.interrupt-map",
                    path,
                    "interrupt-map",
                    shown,
                    f"pin {pin} is not INTA..INTD (1..4)",
                )
            )
        if mask is not None and any(c & ~m for c, m in zip((*child, pin), mask, strict=True)):
            out.append(
                Finding(
                    "pci.interrupt-map",
                    path,
                    "interrupt-map",
                    shown,
                    "sets bits the interrupt-map-mask clears: no device matches it",
                )
            )
        i, row = nxt, row + 1
    return out


def _msi_findings(index: TreeIndex, path: str) -> list[Finding]:
    node = index.nodes[path]
    out = []
    msi_map = node.prop("msi-map")
    if msi_map is not None:
        if not msi_map.value or len(msi_map.value) % (4 * MSI_MAP_CELLS):
            return [
                Finding(
                    "pci.msi-map",
                    path,
                    "msi-map",
                    show(msi_map),
                    "must be rows of 4 cells: rid-base, msi-controller, msi-base, length",
                )
            ]
        cells = msi_map.as_cells()
        for i in range(0, len(cells), MSI_MAP_CELLS):
            rid, ph, _, length = cells[i : i + MSI_MAP_CELLS]
            shown = f"row {i // MSI_MAP_CELLS}"
            problem = _msi_target(index, ph)
            if problem:
                out.append(Finding("pci.msi-map", path, "msi-map", shown, problem))
            if length == 0 or rid + length > RID_SPACE:
                out.append(
                    Finding(
                        "pci.msi-map",
                        path,
                        "msi-map",
                        shown,
                        f"requester IDs [{rid:#x}, {rid + length:#x}) are empty or "
                        f"leave the 16-bit space [0, {RID_SPACE:#x})",
                    )
                )
    parent = node.prop("msi-parent")
    if parent is not None:
        if len(parent.value) < 4:
            problem = "must start with a phandle"
        else:
            problem = _msi_target(index, parent.as_cells()[0])
        if problem:
            out.append(Finding("pci.msi-parent", path, "msi-parent", show(parent), problem))
    return out


def _msi_target(index: TreeIndex, phandle: int) -> str:
    """Why ``phandle`` is not an MSI controller; ``""`` if it is one."""
    target = index.by_phandle.get(phandle)
    if target is None:
        return f"phandle {phandle:#x} names no node"
    if index.nodes[target].prop("msi-controller") is None:
        return f"{target} is not an MSI controller (no msi-controller property)"
    return ""


def _domain_findings(index: TreeIndex, hosts: list[str]) -> list[Finding]:
    """``linux,pci-domain``: one cell, each bridge its own; on all bridges or on none
    (Linux numbers domains itself when no bridge has one, and calls a mix
    inconsistent: drivers/pci/pci.c, ``of_pci_bus_find_domain_nr``)."""
    out = []
    seen: dict[int, str] = {}
    some = any(index.nodes[h].prop("linux,pci-domain") is not None for h in hosts)
    for path in hosts:
        p = index.nodes[path].prop("linux,pci-domain")
        if p is None:
            if some:
                out.append(
                    Finding(
                        "pci.domain",
                        path,
                        "linux,pci-domain",
                        "",
                        "missing while another host bridge has one: all or none",
                    )
                )
            continue
        if len(p.value) != 4:
            out.append(Finding("pci.domain", path, "linux,pci-domain", show(p), "must be one cell"))
            continue
        domain = number(p.as_cells())
        if domain in seen:
            out.append(
                Finding(
                    "pci.domain",
                    path,
                    "linux,pci-domain",
                    show(p),
                    f"domain {domain} is also {seen[domain]}'s",
                )
            )
        seen.setdefault(domain, path)
    return out
