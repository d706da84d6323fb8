"""``regions.*`` findings: ``reg`` ranges, as CPU addresses, fit and do not collide.

Every ``reg`` range on a memory-mapped bus (translated through the ancestors'
``ranges`` to the root's address space) ends inside the guest's physical
address width, and no two enabled nodes that could really collide share bytes.
Not a collision: a node and its own descendants (an SRAM and its sections, a
bus and its devices: the child describes part of the parent), a bus (a node
with ``ranges``: its ``reg`` is a window, claimed by none), a disabled node
(DT spec "status": the kernel never probes it) and reserved-memory inside RAM,
which is what it is for.

The overlap check is a sweep over the ranges sorted by base: each range is
compared with the few earlier ranges reaching furthest, so the cost is
``n log n`` in the number of ranges and each range yields at most one finding,
naming one range it overlaps.
"""

from __future__ import annotations

from fdtgen.checks.finding import Finding, Findings
from fdtgen.checks.index import Region, TreeIndex
from fdtgen.spec import DEFAULT_ADDRESS_WIDTH

# Earlier ranges kept by reach: enough to step past a range's own ancestors
# (nested reg'd nodes are rarely more than a few deep) and allowed partners.
REACH_KEPT = 8


def region_findings(
    index: TreeIndex, address_bits: int = DEFAULT_ADDRESS_WIDTH, out: Findings | None = None
) -> list[Finding]:
    """Every range ends inside the ``address_bits`` physical address space; no
    enabled range shares bytes with another that is not its ancestor's or its
    descendant's (reserved-memory inside RAM excepted). Reported into ``out``
    (a new :class:`Findings` when ``None``), which is returned."""
    if out is None:
        out = Findings()
    disabled = index.disabled
    regs = [r for r in index.regions() if r.path not in disabled]
    limit = 1 << address_bits
    for r in regs:
        if r.end > limit and out.wants("regions.address-width", r.path):
            out.append(
                Finding(
                    "regions.address-width",
                    r.path,
                    "reg",
                    f"{r}",
                    f"entry {r.entry} ends past the {address_bits}-bit physical "
                    f"address space ({limit:#x})",
                )
            )
    # A bus (a node with ``ranges``) claims nothing: its reg is the window its
    # devices, children or not, sit in.
    buses = {p for p in {r.path for r in regs} if index.nodes[p].prop("ranges") is not None}
    devices = [r for r in regs if r.path not in buses]
    ordered = sorted(devices, key=lambda r: (r.base, -r.end, r.path, r.entry))
    reach: list[Region] = []  # the earlier ranges ending last, furthest first
    for r in ordered:
        for a in reach:
            if a.end <= r.base:
                break  # reach is sorted by end: nothing further overlaps
            if _collide(a, r):
                if not out.wants("regions.overlap", r.path):
                    break
                out.append(
                    Finding(
                        "regions.overlap",
                        r.path,
                        "reg",
                        f"{r}",
                        f"entry {r.entry} overlaps {a.path} reg entry {a.entry} {a}",
                    )
                )
                break
        if len(reach) < REACH_KEPT or r.end > reach[-1].end:
            reach.append(r)
            reach.sort(key=lambda x: -x.end)
            del reach[REACH_KEPT:]
    return out


def _collide(a: Region, b: Region) -> bool:
    """``a`` and ``b`` overlapping is no collision: one node contains the
    other, or reserved-memory lies in RAM."""
    if {a.kind, b.kind} == {"memory", "reserved"}:
        return False
    return a.path == b.path or not (_inside(a.path, b.path) or _inside(b.path, a.path))


def _inside(path: str, ancestor: str) -> bool:
    return ancestor == "/" or path.startswith(ancestor + "/")
