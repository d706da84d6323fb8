"""``regions.*`` findings: ``reg`` ranges, as CPU addresses, fit and do not collide.

Every ``reg`` range on a memory-mapped bus (translated through the ancestors'
``ranges``) ends inside the guest's physical address width, and no two share
bytes, except reserved-memory inside RAM, which is what it is for.
"""

from __future__ import annotations

from fdtgen.checks.finding import Finding
from fdtgen.checks.index import Region, TreeIndex
from fdtgen.spec import DEFAULT_ADDRESS_WIDTH


def region_findings(index: TreeIndex, address_bits: int = DEFAULT_ADDRESS_WIDTH) -> list[Finding]:
    """No two ``reg`` ranges share bytes (reserved-memory inside RAM excepted);
    every range ends inside the ``address_bits`` physical address space."""
    out: list[Finding] = []
    regs = index.regions()
    limit = 1 << address_bits
    for r in regs:
        if r.end > limit:
            out.append(
                Finding(
                    "regions.address-width",
                    r.path,
                    "reg",
                    f"{r}",
                    f"entry {r.index} ends past the {address_bits}-bit physical "
                    f"address space ({limit:#x})",
                )
            )
    ordered = sorted(regs, key=lambda r: (r.base, r.end, r.path, r.index))
    active: list[Region] = []
    for r in ordered:
        active = [a for a in active if a.end > r.base]
        for a in active:
            if {a.kind, r.kind} == {"memory", "reserved"}:
                continue
            out.append(
                Finding(
                    "regions.overlap",
                    r.path,
                    "reg",
                    f"{r}",
                    f"entry {r.index} overlaps {a.path} reg entry {a.index} {a}",
                )
            )
        active.append(r)
    return out
