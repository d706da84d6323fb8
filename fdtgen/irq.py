"""GIC interrupt numbers as distinct types, and the one place they convert.

Linux ``arm,gic-v3.yaml`` (``#interrupt-cells``): "The 1st cell is the interrupt
type; 0 for SPI interrupts, 1 for PPI interrupts ... SPI interrupts are in the
range [0-987]. PPI interrupts are in the range [0-15]." The GIC's own numbering,
the INTID, puts PPIs at 16..31 and SPIs at 32..1019. A bare ``irq`` is never
used: a value is an :class:`Spi`, a :class:`Ppi` or an :class:`Intid`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fdtgen.errors import IrqError
from fdtgen.spec import (
    CELL_TYPE_PPI,
    CELL_TYPE_SPI,
    PPI_INTID_BASE,
    PPI_MAX,
    SPI_INTID_BASE,
    SPI_MAX,
    Trigger,
)


@dataclass(frozen=True, slots=True, order=True)
class Intid:
    """A GIC interrupt ID: 16..31 are PPIs, 32..1019 SPIs."""

    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value <= 1019:
            raise IrqError(f"INTID {self.value} is outside the GIC range 0..1019")

    def spi(self) -> Spi:
        return Spi(self.value - SPI_INTID_BASE)

    def ppi(self) -> Ppi:
        return Ppi(self.value - PPI_INTID_BASE)

    def __str__(self) -> str:
        return f"INTID {self.value}"


@dataclass(frozen=True, slots=True, order=True)
class Spi:
    """A shared peripheral interrupt as written in the specifier's 2nd cell."""

    number: int

    def __post_init__(self) -> None:
        if not 0 <= self.number <= SPI_MAX:
            raise IrqError(f"SPI {self.number} is outside the binding range 0..{SPI_MAX}")

    @property
    def intid(self) -> Intid:
        return Intid(self.number + SPI_INTID_BASE)

    def __str__(self) -> str:
        return f"SPI {self.number}"


@dataclass(frozen=True, slots=True, order=True)
class Ppi:
    """A private peripheral interrupt as written in the specifier's 2nd cell."""

    number: int

    def __post_init__(self) -> None:
        if not 0 <= self.number <= PPI_MAX:
            raise IrqError(f"PPI {self.number} is outside the binding range 0..{PPI_MAX}")

    @property
    def intid(self) -> Intid:
        return Intid(self.number + PPI_INTID_BASE)

    def __str__(self) -> str:
        return f"PPI {self.number}"


def gic_cells(irq: Spi | Ppi, trigger: Trigger, cpu_mask: int = 0) -> tuple[int, int, int]:
    """The three-cell GIC interrupt specifier ``<type number flags>``.

    ``cpu_mask`` (bits 15:8 of the flags) is only meaningful for PPIs on a GICv2
    (arm,gic.yaml); GICv3 has no CPU mask.
    """
    if isinstance(irq, Spi):
        if cpu_mask:
            raise IrqError(f"{irq}: a CPU mask is only valid for PPIs")
        return (CELL_TYPE_SPI, irq.number, int(trigger))
    return (CELL_TYPE_PPI, irq.number, (cpu_mask & 0xFF) << 8 | int(trigger))


def irq_from_cells(kind: int, number: int) -> Spi | Ppi:
    """Inverse of :func:`gic_cells` for the first two cells."""
    if kind == CELL_TYPE_SPI:
        return Spi(number)
    if kind == CELL_TYPE_PPI:
        return Ppi(number)
    raise IrqError(f"interrupt type cell {kind} is neither SPI (0) nor PPI (1)")
