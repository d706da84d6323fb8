"""The boot trampoline: the few instructions a bootloader runs before Linux.

Documentation/arch/arm64/booting.rst, "Call the kernel image": the primary
CPU enters the Image with "x0 = physical address of device tree blob (dtb) in
system RAM", "x1 = 0", "x2 = 0", "x3 = 0 (reserved for future use)", the MMU
off and every interrupt masked in PSTATE.DAIF. A VMM that starts a vCPU in
that state (QEMU's reset state at EL1, for one) only needs the registers set
and a branch to the entry point, which is what these 40 bytes do::

    0x00  580000c0  ldr x0, 0x18        LDR (literal, 64-bit): the DTB address
    0x04  aa1f03e1  mov x1, xzr         ORR x1, xzr, xzr
    0x08  aa1f03e2  mov x2, xzr
    0x0c  aa1f03e3  mov x3, xzr
    0x10  58000084  ldr x4, 0x20        the kernel entry
    0x14  d61f0080  br  x4
    0x18  .quad dtb
    0x20  .quad entry

Encodings: Arm ARM (DDI 0487), "LDR (literal)" ``0x58000000 | imm19 << 5 | Rt``
(offset = imm19 * 4 from the instruction), "ORR (shifted register)" 64-bit
``0xAA000000 | Rm << 16 | Rn << 5 | Rd`` (register 31 is XZR), "BR"
``0xD61F0000 | Rn << 5``. Instructions and literals are little-endian.
"""

from __future__ import annotations

import struct

from fdtgen.errors import PlacementError
from fdtgen.spec import DTB_ALIGN
from fdtgen.units import U64_MAX, is_aligned

TRAMPOLINE_SIZE = 40
TRAMPOLINE_ALIGN = 8  # the 64-bit literals must be naturally aligned
INSN_ALIGN = 4  # A64 instructions are 32-bit and word aligned

XZR = 31
_DTB_LITERAL = 0x18
_ENTRY_LITERAL = 0x20


def ldr_literal(rt: int, offset: int) -> int:
    """``LDR Xt, label`` with ``label`` at ``offset`` bytes from this instruction."""
    if not is_aligned(offset, 4) or not -(1 << 20) <= offset < (1 << 20):
        raise ValueError(f"LDR (literal) offset {offset:#x} is not a word multiple within +-1 MiB")
    return 0x5800_0000 | ((offset >> 2) & 0x7FFFF) << 5 | rt


def mov_from_zero(rd: int) -> int:
    """``MOV Xd, XZR``, the alias of ``ORR Xd, XZR, XZR``."""
    return 0xAA00_0000 | XZR << 16 | XZR << 5 | rd


def br(rn: int) -> int:
    """``BR Xn``: branch to the address in ``Xn``."""
    return 0xD61F_0000 | rn << 5


def trampoline(dtb: int, entry: int) -> bytes:
    """The 40-byte stub that sets x0 = ``dtb``, x1..x3 = 0 and branches to ``entry``.

    Raises :class:`~fdtgen.errors.PlacementError` when ``dtb`` is not 8-byte
    aligned (booting.rst) or ``entry`` is not a word-aligned 64-bit address.
    """
    if not 0 <= dtb <= U64_MAX or not is_aligned(dtb, DTB_ALIGN):
        raise PlacementError(
            f"registers.x0: DTB address {dtb:#x} is not 8-byte aligned "
            "(booting.rst: the dtb must be placed on an 8-byte boundary)"
        )
    if not 0 <= entry <= U64_MAX or not is_aligned(entry, INSN_ALIGN):
        raise PlacementError(
            f"registers.pc: kernel entry {entry:#x} is not a word-aligned 64-bit address"
        )
    words = (
        ldr_literal(0, _DTB_LITERAL - 0x00),
        mov_from_zero(1),
        mov_from_zero(2),
        mov_from_zero(3),
        ldr_literal(4, _ENTRY_LITERAL - 0x10),
        br(4),
    )
    return struct.pack("<6I2Q", *words, dtb, entry)
