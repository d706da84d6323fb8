"""Drift between a generated file and what its template generates now.

The constants are read back line by line (``pub const NAME: u64 = 0x...;``
in Rust, ``#define NAME 0x...ULL`` in C) and compared by name, one finding per
constant that changed, went missing or no longer exists. When every constant
agrees but the text does not (a proof or comment edited by hand, or a file
from an older fdtgen), the first differing line is reported.
"""

from __future__ import annotations

import re
import shlex

from fdtgen.codegen.render import REGENERATE

# A constant as written, or as rustfmt or clang-format may have re-spaced it.
_RUST = re.compile(r"pub\s+const\s+(\w+)\s*:\s*(?:u64|u32)\s*=\s*(0x[0-9A-Fa-f_]+|[0-9_]+)\s*;")
_C = re.compile(r"#\s*define\s+(\w+)\s+(0x[0-9A-Fa-f]+|[0-9]+)(?:ULL|U)")
HEADER_LINES = 40  # the Regenerate line is among a file's first lines (a licence header above)


def regenerate_words(text: str) -> list[str] | None:
    """The arguments after ``fdtgen codegen`` on the file's ``Regenerate:`` line
    (``None``: there is none); a line that does not split as shell words raises
    :class:`ValueError`."""
    for line in text.splitlines()[:HEADER_LINES]:
        at = line.find(REGENERATE + "fdtgen codegen")
        if at >= 0:
            rest = line[at + len(REGENERATE) :].removesuffix("*/").strip()
            return shlex.split(rest)[2:]
    return None


def constants(text: str) -> dict[str, tuple[int, int, str]]:
    """``name -> (value, line number, literal as written)`` of every constant in ``text``."""
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        m = _RUST.fullmatch(line.strip()) or _C.fullmatch(line.strip())
        if m is not None:
            out[m[1]] = (int(m[2].replace("_", ""), 0), number, m[2])
    return out


def _from_regenerate(lines: list[str]) -> int:
    """The index of the ``Regenerate:`` line (0 if there is none): what is above it
    (a licence header the VMM adds) is not fdtgen's to compare."""
    return next((i for i, x in enumerate(lines[:HEADER_LINES]) if REGENERATE in x), 0)


def drift(label: str, old: str, new: str) -> list[str]:
    """One line per difference between the file ``old`` (shown as ``label``) and ``new``."""
    old = old.removeprefix("\ufeff")  # an editor's byte-order mark
    was, now = constants(old), constants(new)
    out = []
    for name, (value, _, literal) in now.items():
        if name not in was:
            out.append(f"{label}: {name} is missing; the template gives {literal}")
        elif was[name][0] != value:
            out.append(
                f"{label}:{was[name][1]}: {name} is {was[name][2]}; the template gives {literal}"
            )
    out += [
        f"{label}:{line}: {name} = {literal} is not in the template any more"
        for name, (_, line, literal) in was.items()
        if name not in now
    ]
    if out:
        return out
    old_lines, new_lines = old.splitlines(), new.splitlines()
    skip = _from_regenerate(old_lines)
    old_lines, new_lines = old_lines[skip:], new_lines[_from_regenerate(new_lines) :]
    if old_lines == new_lines:
        return []
    n = next(
        (i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=False)) if a != b),
        min(len(old_lines), len(new_lines)),
    )
    expected = new_lines[n] if n < len(new_lines) else "(end of file)"
    return [
        f"{label}:{skip + n + 1}: the constants agree, but the text differs from what fdtgen "
        f"generates (expected {expected.strip()[:80]!r}); regenerate the file"
    ]
