"""DTS text for a tree: what dtc compiles back to the same bytes, with no warnings.

Nodes that carry a phandle are written with a label, and references to them as
``&label``; the ``phandle`` property itself stays explicit so its position (and
so the blob) does not depend on how dtc would assign one. The root takes no
label (dtc's grammar has none for ``/``): a reference to it is the path
reference ``&{/}``.

One header field has no DTS spelling: ``boot_cpuid_phys``. dtc derives it
from the source unless given ``-b`` (dgibson/dtc ``livetree.c``
6f8b28f496093156ae126b434ed753094943da03, ``guess_boot_cpuid``: the one-cell
``reg`` of the first child of ``/cpus``, else 0); when the tree's value
differs, :func:`header_notes` says so and :func:`to_dts` writes the note as a
comment.
"""

from __future__ import annotations

from fdtgen.fdt.tree import DeviceTree, Kind, Node, Prop, Ref

_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\t"): "\\t"}


def _string(raw: bytes) -> str:
    out = []
    for b in raw:
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


def _cell(c: object) -> str:
    if isinstance(c, Ref):
        return f"&{c.label}"
    assert isinstance(c, int)
    return f"{c:#x}"


def prop_value(p: Prop) -> str | None:
    """The right-hand side of ``name = ...;``, or ``None`` for an empty property."""
    if p.kind is Kind.EMPTY and not p.value:
        return None
    if p.kind is Kind.STRINGS:
        return ", ".join(_string(s) for s in p.value[:-1].split(b"\0"))
    if p.kind is Kind.CELLS and p.items:
        return "<" + " ".join(_cell(c) for c in p.items) + ">"
    if p.kind is Kind.U64:
        return "/bits/ 64 <" + " ".join(f"{v:#x}" for v in p.items) + ">"
    if p.value and len(p.value) % 4 == 0 and p.kind is not Kind.BYTES:
        return "<" + " ".join(f"{c:#x}" for c in p.as_cells()) + ">"
    if not p.value:
        return None
    return "[" + " ".join(f"{b:02x}" for b in p.value) + "]"


def header_notes(tree: DeviceTree) -> list[str]:
    """What of ``tree`` its DTS cannot carry, one sentence each (none usually)."""
    if tree.boot_cpuid_phys is None:
        return []
    derived = DeviceTree(tree.root).boot_cpuid()
    if tree.boot_cpuid_phys == derived:
        return []
    return [
        f"boot_cpuid_phys is {tree.boot_cpuid_phys:#x} in the header, which DTS cannot "
        f"carry; dtc derives {derived:#x} from /cpus, so compile with "
        f"dtc -b {tree.boot_cpuid_phys:#x} to keep it"
    ]


def to_dts(tree: DeviceTree) -> str:
    lines = ["/dts-v1/;", ""]
    notes = header_notes(tree)
    if notes:
        lines.extend(f"// {note}" for note in notes)
        lines.append("")
    for base, size in tree.reserve:
        lines.append(f"/memreserve/ {base:#018x} {size:#018x};")
    if tree.reserve:
        lines.append("")
    _node(tree.root, 0, lines, root=True)
    return "\n".join(lines) + "\n"


def _node(node: Node, depth: int, lines: list[str], root: bool = False) -> None:
    indent = "\t" * depth
    head = "/" if root else node.name
    if node.label:
        head = f"{node.label}: {head}"
    lines.append(f"{indent}{head} {{")
    for p in node.props:
        value = prop_value(p)
        lines.append(f"{indent}\t{p.name};" if value is None else f"{indent}\t{p.name} = {value};")
    for c in node.children:
        lines.append("")
        _node(c, depth + 1, lines)
    lines.append(f"{indent}}};")
