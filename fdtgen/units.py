"""Byte units, alignment helpers and size parsing.

Every address-valued integer in fdtgen is a byte count: ``base``, ``size``,
``end`` (exclusive) and ``align``.
"""

from __future__ import annotations

import re

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1

# Binary units only: "3GB" is 3 * 10**9 bytes to some readers and 3 GiB to
# others, so decimal spellings are refused with the binary one to write instead.
_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB,
    "kib": KiB,
    "m": MiB,
    "mib": MiB,
    "g": GiB,
    "gib": GiB,
    "t": TiB,
    "tib": TiB,
}
_DECIMAL_UNITS = {"kb": "KiB", "mb": "MiB", "gb": "GiB", "tb": "TiB"}
_SIZE_RE = re.compile(r"\s*(0[xX]_*[0-9a-fA-F][0-9a-fA-F_]*|[0-9][0-9_]*)\s*([a-zA-Z]*)\s*")
# The longest size text worth parsing or repeating in a message (a size has at
# most 20 decimal digits, plus separators and a unit).
_SIZE_TEXT_MAX = 64


def is_pow2(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def align_up(value: int, align: int) -> int:
    """Smallest multiple of ``align`` (a power of two) that is ``>= value``."""
    return (value + align - 1) & ~(align - 1)


def align_down(value: int, align: int) -> int:
    """Largest multiple of ``align`` (a power of two) that is ``<= value``."""
    return value & ~(align - 1)


def is_aligned(value: int, align: int) -> bool:
    return value & (align - 1) == 0


def parse_size(text: str) -> int:
    """Parse ``"512MiB"``, ``"1G"``, ``"0x2000_0000"`` or ``"4096"`` into bytes.

    Units are binary and case-insensitive: ``K``/``KiB``, ``M``/``MiB``,
    ``G``/``GiB``, ``T``/``TiB``, or ``B`` (bytes). Decimal spellings (``kB``,
    ``MB``, ``GB``, ``TB``) are refused with the binary unit to write instead.
    Raises ``ValueError`` saying what is wrong; the caller names the text.
    """
    if len(text) > _SIZE_TEXT_MAX:
        raise ValueError(f"is not a size: {len(text)} characters (at most {_SIZE_TEXT_MAX})")
    m = _SIZE_RE.fullmatch(text)
    if not m:
        raise ValueError("is not a size (expected e.g. 512MiB, 1GiB, 0x20000000, 4096)")
    number, unit = m.groups()
    binary = _DECIMAL_UNITS.get(unit.lower())
    if binary is not None:
        raise ValueError(f"decimal units are not accepted; write {number}{binary} (binary)")
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} (use B, K/KiB, M/MiB, G/GiB, T/TiB)")
    digits = number.replace("_", "")
    if digits[:2] in ("0x", "0X"):
        return int(digits[2:], 16) * factor
    return int(digits, 10) * factor  # "010" is ten, not an error


_BINARY_UNITS = (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB))


def fmt_size(size: int, decimals: int | None = None, *, trim: bool = True) -> str:
    """``size`` bytes in the largest binary unit that suits it.

    ``decimals=None`` (messages): the largest unit that divides ``size``
    exactly, so nothing is lost: ``3 GiB``, ``1536 KiB``, ``4097 B``.
    ``decimals=n`` (tables and pictures): the largest unit ``size`` reaches,
    rounded to ``n`` decimals: ``1.75 GiB``; ``trim`` drops trailing zeros
    (``4 KiB``), ``trim=False`` keeps them (``4.0 KiB``).
    """
    for name, factor in _BINARY_UNITS:
        if size < factor:
            continue
        if size % factor == 0 and (decimals is None or trim):
            return f"{size // factor} {name}"
        if decimals is None:
            continue
        text = f"{size / factor:.{decimals}f}"
        if trim and "." in text:
            text = text.rstrip("0").rstrip(".")
        return f"{text} {name}"
    return f"{size} B"
