"""Independent views of a blob's tree, for comparing parsers."""

from __future__ import annotations

import struct
import warnings

import libfdt

from fdtgen.fdt.tree import DeviceTree

Flat = dict[str, list[tuple[str, bytes]]]


def ours(tree: DeviceTree) -> Flat:
    return {path: [(p.name, p.value) for p in node.props] for path, node in tree.root.walk()}


def via_libfdt(blob: bytes) -> Flat:
    buf = bytearray(blob)
    assert libfdt.fdt_check_full(buf, len(buf)) == 0
    f = libfdt.FdtRo(buf)
    out: Flat = {}
    off, depth = 0, 0
    while off >= 0 and depth >= 0:
        path = f.get_path(off)
        props = []
        poff = f.first_property_offset(off, [libfdt.NOTFOUND])
        while poff >= 0:
            p = f.get_property_by_offset(poff)
            props.append((p.name, bytes(p)))
            poff = f.next_property_offset(poff, [libfdt.NOTFOUND])
        out[path] = props
        off, depth = f.next_node(off, depth, [libfdt.NOTFOUND])
    return out


def via_fdt_package(blob: bytes) -> Flat:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fdt

    f = fdt.parse_dtb(blob)
    out: Flat = {}

    def value(p: object) -> bytes:
        kind = type(p).__name__
        if kind == "PropWords":
            return struct.pack(f">{len(p.data)}I", *p.data)  # type: ignore[attr-defined]
        if kind == "PropStrings":
            return b"".join(s.encode() + b"\0" for s in p.data)  # type: ignore[attr-defined]
        if kind == "PropBytes":
            return bytes(p.data)  # type: ignore[attr-defined]
        return b""

    def walk(node: object, path: str) -> None:
        out[path] = [(p.name, value(p)) for p in node.props]  # type: ignore[attr-defined]
        for c in node.nodes:  # type: ignore[attr-defined]
            walk(c, f"{path.rstrip('/')}/{c.name}")

    walk(f.root, "/")
    return out
