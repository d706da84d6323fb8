"""The same tree written by other tools, for the benchmark's ratios.

Each writer takes an fdtgen tree flattened once into plain operations, so it
measures only the writing, not tree construction.
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Callable

from fdtgen.fdt.tree import DeviceTree, Kind, Node

Op = tuple[str, object, object]


def ops(tree: DeviceTree) -> list[Op]:
    out: list[Op] = []

    def walk(n: Node) -> None:
        out.append(("begin", n.name, None))
        for p in n.props:
            out.append(("prop", p.name, p))
        for c in n.children:
            walk(c)
        out.append(("end", None, None))

    walk(tree.root)
    return out


def pylibfdt_writer(tree: DeviceTree) -> Callable[[], bytes]:
    """libfdt's sequential-write API through pylibfdt, on a buffer twice the size
    the blob will have: it never grows (a grow is a failed call, a new buffer and a
    copy), and ``as_fdt`` always has room for the final token (it does not grow the
    buffer, so a buffer filled to the byte fails there with FDT_ERR_NOSPACE)."""
    import libfdt

    program = [(op, name, bytes(p.value) if p is not None else None) for op, name, p in ops(tree)]  # type: ignore[attr-defined]
    size = 2 * (64 + sum(12 + len(v) + 4 + len(n) for op, n, v in program if op == "prop"))

    def write() -> bytes:
        sw = libfdt.FdtSw(size)
        sw.finish_reservemap()
        for op, name, value in program:
            if op == "begin":
                sw.begin_node(name)
            elif op == "prop":
                sw.property(name, value)
            else:
                sw.end_node()
        fdt = sw.as_fdt()
        fdt.pack()
        return bytes(fdt.as_bytearray())

    return write


def fdt_package_writer(tree: DeviceTree) -> Callable[[], bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fdt

    def make_prop(p: object) -> object:
        kind, name, value = p.kind, p.name, p.value  # type: ignore[attr-defined]
        if kind is Kind.EMPTY:
            return ("empty", name, None)
        if kind is Kind.STRINGS and b"\0\0" not in value and value != b"\0":
            return ("strings", name, [s.decode() for s in value[:-1].split(b"\0")])
        if len(value) % 4 == 0 and kind in (Kind.CELLS, Kind.U64):
            return (
                "words",
                name,
                [int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value), 4)],
            )
        return ("bytes", name, list(value))

    def plan(n: Node) -> tuple[str, list[object], list[object]]:
        return (n.name, [make_prop(p) for p in n.props], [plan(c) for c in n.children])

    program = plan(tree.root)
    boot = tree.boot_cpuid()

    def build(spec: tuple[str, list[object], list[object]]) -> object:
        name, props, children = spec
        node = fdt.Node(name)
        for kind, pname, value in props:  # type: ignore[misc]
            if kind == "empty":
                node.append(fdt.Property(pname))
            elif kind == "strings":
                node.append(fdt.PropStrings(pname, *value))
            elif kind == "words":
                node.append(fdt.PropWords(pname, *value))
            else:
                node.append(fdt.PropBytes(pname, data=value))
        for c in children:
            node.append(build(c))  # type: ignore[arg-type]
        return node

    def write() -> bytes:
        f = fdt.FDT(entries=[])
        f.root = build(program)
        f.header.version = 17
        f.header.boot_cpuid_phys = boot
        return bytes(f.to_dtb(version=17))

    return write


def dtc_process(dts_text: str, dtc: str = "dtc") -> Callable[[], bytes]:
    data = dts_text.encode()

    def write() -> bytes:
        return subprocess.run(
            [dtc, "-I", "dts", "-O", "dtb", "-"], input=data, capture_output=True, check=True
        ).stdout

    return write
