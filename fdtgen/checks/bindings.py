"""Binding findings: the Linux bindings a microVM's nodes follow.

``root.*`` (DT spec "Root node"), ``cpus.*`` and ``psci.*`` (cpus.yaml,
arm/psci.yaml, booting.rst "Secondary CPU requirements"), ``memory.*``
(memory.yaml), ``gic.*`` (arm,gic-v3.yaml, arm,gic.yaml), ``pl011.*``
(serial/pl011.yaml), ``timer.*`` (arm,arch_timer.yaml) and ``virtio.*``
(virtio/mmio.yaml). Each rule reads the tree through a
:class:`~fdtgen.checks.index.TreeIndex`.
"""

from __future__ import annotations

from fdtgen.checks.finding import NOTE, Finding
from fdtgen.checks.index import (
    PSCI_COMPATIBLE,
    TIMER_COMPATIBLE,
    TreeIndex,
    number,
    show,
    string,
    strings,
)
from fdtgen.fdt.tree import Prop, child_path
from fdtgen.spec import (
    GIC_REGISTER_BYTES,
    GICV3_REDIST_STRIDE,
    LINUX_LAST_REGISTER,
    TIMER_NAMES,
    VIRTIO_MMIO_MIN_SIZE,
)

PL011_CLOCK_NAMES = ("uartclk", "apb_pclk")  # serial/pl011.yaml clock-names items


def binding_findings(index: TreeIndex) -> list[Finding]:
    """The binding rules, node kind by node kind, in report order."""
    out: list[Finding] = []
    out += _root_findings(index)
    out += _cpu_findings(index)
    out += _memory_findings(index)
    out += _gic_findings(index)
    out += _pl011_findings(index)
    out += _timer_findings(index)
    out += _virtio_findings(index)
    return out


def _root_findings(index: TreeIndex) -> list[Finding]:
    """DT spec "Root node": ``#address-cells`` and ``#size-cells`` are required."""
    out = []
    for name in ("#address-cells", "#size-cells"):
        p = index.root.prop(name)
        n = index.cell("/", name)
        if n is None or n not in (1, 2):
            out.append(
                Finding(
                    "root.cells",
                    "/",
                    name,
                    show(p),
                    "missing" if p is None else "must be one cell holding 1 or 2",
                )
            )
    return out


def _cpu_findings(index: TreeIndex) -> list[Finding]:
    """cpus.yaml / booting.rst "Secondary CPU requirements"."""
    out: list[Finding] = []
    if "/cpus" not in index.nodes:
        return [Finding("cpus.node", "/cpus", "", "", "missing: the kernel finds no CPUs")]
    ac, sc = index.cell("/cpus", "#address-cells"), index.cell("/cpus", "#size-cells")
    if ac not in (1, 2) or sc != 0:
        out.append(
            Finding(
                "cpus.cells",
                "/cpus",
                "#address-cells" if ac not in (1, 2) else "#size-cells",
                "",
                f"/cpus needs #address-cells 1 or 2 and #size-cells 0, found {ac} and {sc}",
            )
        )
    cpus = index.cpus()
    if not cpus:
        out.append(Finding("cpus.node", "/cpus", "", "", 'no child with device_type = "cpu"'))
    seen: dict[int, str] = {}
    methods = []
    for path in cpus:
        node = index.nodes[path]
        reg = node.prop("reg")
        if reg is None or ac not in (1, 2) or len(reg.value) != 4 * ac:
            out.append(
                Finding(
                    "cpus.reg",
                    path,
                    "reg",
                    show(reg),
                    "missing"
                    if reg is None
                    else f"must be #address-cells ({ac}) cells: the MPIDR affinity",
                )
            )
        else:
            mpidr = number(reg.as_cells())
            if mpidr in seen:
                out.append(
                    Finding(
                        "cpus.reg", path, "reg", show(reg), f"repeats the MPIDR of {seen[mpidr]}"
                    )
                )
            seen.setdefault(mpidr, path)
            unit = node.name.partition("@")[2]
            if unit and unit != f"{mpidr:x}":
                out.append(
                    Finding(
                        "cpus.reg",
                        path,
                        "reg",
                        show(reg),
                        f"does not match the unit address @{unit} (expected @{mpidr:x})",
                    )
                )
        method = string(node.prop("enable-method"))
        methods.append(method)
        if method is None and len(cpus) > 1:
            out.append(
                Finding(
                    "cpus.enable-method",
                    path,
                    "enable-method",
                    show(node.prop("enable-method")),
                    "every cpu node needs an enable-method when there are secondary CPUs "
                    '(booting.rst "Secondary CPU requirements")',
                )
            )
        elif method not in (None, "psci", "spin-table"):
            out.append(
                Finding(
                    "cpus.enable-method",
                    path,
                    "enable-method",
                    show(node.prop("enable-method")),
                    'arm64 knows only "psci" and "spin-table"',
                )
            )
        elif method == "spin-table":
            out += _spin_table_findings(index, path)
    if "psci" in methods:
        psci = index.with_compatible(PSCI_COMPATIBLE)
        if not psci:
            out.append(
                Finding(
                    "psci.node",
                    "/psci",
                    "",
                    "",
                    'a cpu uses enable-method "psci" but no node is compatible with arm,psci* '
                    "(booting.rst: \"The device tree should contain a 'psci' node\")",
                )
            )
        for path in psci:
            conduit = index.nodes[path].prop("method")
            if string(conduit) not in ("hvc", "smc"):
                out.append(
                    Finding(
                        "psci.method",
                        path,
                        "method",
                        show(conduit),
                        "missing" if conduit is None else 'must be "hvc" or "smc" (arm/psci.yaml)',
                    )
                )
    return out


def _spin_table_findings(index: TreeIndex, path: str) -> list[Finding]:
    """booting.rst: spin-table CPUs poll ``cpu-release-addr``, inside a /memreserve/ region."""
    p = index.nodes[path].prop("cpu-release-addr")
    if p is None or len(p.value) != 8:
        return [
            Finding(
                "cpus.release-addr",
                path,
                "cpu-release-addr",
                show(p),
                "spin-table needs a 64-bit cpu-release-addr",
            )
        ]
    addr = int.from_bytes(p.value, "big")
    if not any(b <= addr and addr + 8 <= b + s for b, s in index.tree.reserve):
        return [
            Finding(
                "cpus.release-addr",
                path,
                "cpu-release-addr",
                f"{addr:#x}",
                "is not inside a /memreserve/ region (booting.rst)",
            )
        ]
    return []


def _memory_findings(index: TreeIndex) -> list[Finding]:
    """memory.yaml: ``device_type = "memory"`` and a ``reg`` matching the unit address."""
    out = []
    paths = [p for p in index.order if string(index.nodes[p].prop("device_type")) == "memory"]
    if not paths:
        out.append(
            Finding(
                "memory.node",
                "/memory",
                "",
                "",
                'no node with device_type = "memory": the kernel has no RAM and dies silently',
            )
        )
    for path in paths:
        node = index.nodes[path]
        reg = node.prop("reg")
        entries = index.reg(path)
        if not entries or any(size == 0 for _, size in entries):
            out.append(
                Finding(
                    "memory.reg",
                    path,
                    "reg",
                    show(reg),
                    "missing"
                    if reg is None
                    else "must be non-empty (address, size) pairs of the "
                    "parent's #address-cells/#size-cells with sizes above 0",
                )
            )
            continue
        unit = node.name.partition("@")[2]
        if unit and unit != f"{entries[0][0]:x}":
            out.append(
                Finding(
                    "memory.reg",
                    path,
                    "reg",
                    show(reg),
                    f"does not match the unit address @{unit} (expected @{entries[0][0]:x})",
                )
            )
    return out


def _frame_size(part: str, path: str, reg: Prop | None, size: int) -> list[Finding]:
    """The GIC ``part`` at ``path``, ``size`` bytes by its first ``reg`` entry,
    reaches past the last register Linux touches in it (``LINUX_LAST_REGISTER``)."""
    register, offset, where = LINUX_LAST_REGISTER[part]
    if size >= offset + GIC_REGISTER_BYTES:
        return []
    return [
        Finding(
            "gic.frame-size",
            path,
            "reg",
            show(reg),
            f"the {part} is {size:#x} bytes; Linux uses {register} at {offset:#x} ({where}), "
            "past its end",
        )
    ]


def _gic_findings(index: TreeIndex) -> list[Finding]:
    """arm,gic-v3.yaml and arm,gic.yaml: cells, ``reg`` count, redistributor room, ITS, v2m."""
    out: list[Finding] = []
    gics = [p for p in index.order if index.gic_version(p)]
    if not gics:
        # booting.rst asks for the GIC's description where there is one; a
        # board whose root controller is another (bcm2837's) has none.
        if any(n.prop("interrupt-controller") is not None for n in index.nodes.values()):
            return []
        return [
            Finding(
                "gic.node",
                "/",
                "",
                "",
                "no arm,gic-v3 or GICv2 interrupt controller, nor any other "
                "(booting.rst: the DT must describe the GIC)",
            )
        ]
    ncpus = len(index.cpus())
    for path in gics:
        node = index.nodes[path]
        version = index.gic_version(path)
        if node.prop("interrupt-controller") is None:
            out.append(
                Finding("gic.interrupt-controller", path, "interrupt-controller", "", "missing")
            )
        cells = index.cell(path, "#interrupt-cells")
        if cells is None or cells < 3 or (version == 2 and cells != 3) or cells > 4:
            out.append(
                Finding(
                    "gic.interrupt-cells",
                    path,
                    "#interrupt-cells",
                    show(node.prop("#interrupt-cells")),
                    "must be 3 (type, number, flags), or 4 on a GICv3 with PPI affinity",
                )
            )
        entries = index.reg(path)
        reg = node.prop("reg")
        if version == 3:
            nr = index.cell(path, "#redistributor-regions") or 1
            lo, hi = 1 + nr, 1 + nr + 3
            what = f"GICD + {nr} GICR region(s) [+ GICC, GICH, GICV]"
        else:
            lo, hi, nr = 2, 4, 0
            what = "GICD, GICC [+ GICH, GICV]"
        if entries is None or not lo <= len(entries) <= hi:
            count = "no" if entries is None else str(len(entries))
            out.append(
                Finding(
                    "gic.reg",
                    path,
                    "reg",
                    show(reg),
                    f"has {count} decodable entries; a GICv{version} needs {lo}..{hi}: {what}",
                )
            )
        else:
            part = "GICv3 distributor" if version == 3 else "GICv2 distributor"
            out += _frame_size(part, path, reg, entries[0][1])
            if version == 3 and ncpus:
                stride_p = node.prop("redistributor-stride")
                stride = (
                    int.from_bytes(stride_p.value, "big")
                    if stride_p is not None and len(stride_p.value) == 8
                    else GICV3_REDIST_STRIDE
                )
                room = sum(size for _, size in entries[1 : 1 + nr])
                if room < ncpus * stride:
                    out.append(
                        Finding(
                            "gic.redist-size",
                            path,
                            "reg",
                            show(reg),
                            f"the GICR regions hold {room:#x} bytes, less than "
                            f"{ncpus} CPUs x {stride:#x}: "
                            "Linux walks the frames until GICR_TYPER.Last and faults past the end",
                        )
                    )
        for child in node.children:
            cpath = child_path(path, child.name)
            compat = set(index.compatible(cpath))
            if "arm,gic-v3-its" in compat:
                if child.prop("msi-controller") is None:
                    out.append(
                        Finding(
                            "gic.its",
                            cpath,
                            "msi-controller",
                            "",
                            "missing (arm,gic-v3-its requires it)",
                        )
                    )
                if index.cell(cpath, "#msi-cells") != 1:
                    out.append(
                        Finding(
                            "gic.its",
                            cpath,
                            "#msi-cells",
                            show(child.prop("#msi-cells")),
                            "must be <1> (arm,gic-v3.yaml requires it of an ITS)",
                        )
                    )
                if child.prop("reg") is None:
                    out.append(Finding("gic.its", cpath, "reg", "", "missing"))
                else:
                    its = index.reg(cpath)
                    if its:
                        out += _frame_size("ITS", cpath, child.prop("reg"), its[0][1])
            if "arm,gic-v2m-frame" in compat:
                frame = index.reg(cpath)
                if frame:
                    out += _frame_size("v2m frame", cpath, child.prop("reg"), frame[0][1])
                for name in ("msi-controller", "reg"):
                    if child.prop(name) is None:
                        out.append(
                            Finding(
                                "gic.v2m",
                                cpath,
                                name,
                                "",
                                "missing (arm,gic-v2m-frame requires it)",
                            )
                        )
    return out


def _pl011_findings(index: TreeIndex) -> list[Finding]:
    """serial/pl011.yaml (torvalds/linux 1aa77e716c6f), as it states it: ``reg``,
    ``interrupts`` required; ``clocks`` optional, at most two, "Just listing one
    clock (the first one) is deprecated"; ``clock-names`` the items uartclk,
    apb_pclk. A node that is also ``arm,sbsa-uart`` is an SBSA UART (its own
    binding, no clocks) and is not held to these."""
    out = []
    for path in index.with_compatible({"arm,pl011"}):
        if "arm,sbsa-uart" in index.compatible(path):
            continue
        node = index.nodes[path]
        clocks = index.uses_at.get((path, "clocks"), [])
        names = strings(node.prop("clock-names"))
        if len(clocks) > 2:
            out.append(
                Finding(
                    "pl011.clocks",
                    path,
                    "clocks",
                    show(node.prop("clocks")),
                    f"has {len(clocks)} clocks; pl011.yaml allows at most two (uartclk, apb_pclk)",
                )
            )
        elif len(clocks) == 1:
            out.append(
                Finding(
                    "pl011.clocks",
                    path,
                    "clocks",
                    show(node.prop("clocks")),
                    'one clock: pl011.yaml says "Just listing one clock (the first one) is '
                    'deprecated"; list uartclk and apb_pclk',
                    severity=NOTE,
                )
            )
        if names is not None and names != PL011_CLOCK_NAMES[: len(names)]:
            out.append(
                Finding(
                    "pl011.clocks",
                    path,
                    "clock-names",
                    show(node.prop("clock-names")),
                    'pl011.yaml: clock-names must be "uartclk", "apb_pclk" in that order',
                )
            )
        if index.interrupts_prop(path) is None:
            out.append(
                Finding(
                    "pl011.interrupts", path, "interrupts", "", "missing (pl011.yaml requires it)"
                )
            )
    return out


def _timer_findings(index: TreeIndex) -> list[Finding]:
    """arm,arch_timer.yaml: PPIs in the order secure, non-secure, virtual,
    hypervisor[, hypervisor virtual], or as ``interrupt-names`` say. A guest at
    EL1 runs on the virtual timer, so that one must be there. Which PPI numbers
    are right depends on the hypervisor: ``--template`` checks them."""
    out = []
    timers = index.with_compatible(TIMER_COMPATIBLE)
    if not timers:
        return [
            Finding(
                "timer.node",
                "/timer",
                "",
                "",
                "no arm,armv8-timer node: the kernel has no clock event",
            )
        ]
    for path in timers:
        node = index.nodes[path]
        p = index.interrupts_prop(path)
        decoded = index.specifiers(path)
        if not decoded:
            out.append(
                Finding(
                    "timer.interrupts",
                    path,
                    "interrupts",
                    show(p),
                    "missing (no interrupts or interrupts-extended)"
                    if p is None
                    else "does not decode against its interrupt controller",
                )
            )
            continue
        specs = [spec for _, spec in decoded]
        names = strings(node.prop("interrupt-names"))
        if names is not None and (len(names) != len(specs) or not set(names) <= set(TIMER_NAMES)):
            out.append(
                Finding(
                    "timer.interrupts",
                    path,
                    "interrupt-names",
                    show(node.prop("interrupt-names")),
                    f"must name each of the {len(specs)} interrupts with one of "
                    f"{', '.join(TIMER_NAMES)} (arm,arch_timer.yaml)",
                )
            )
        elif (names is not None and "virt" not in names) or (names is None and len(specs) < 3):
            out.append(
                Finding(
                    "timer.interrupts",
                    path,
                    "interrupts",
                    show(p),
                    'has no virtual timer (the 3rd interrupt, or one named "virt"): '
                    "a guest at EL1 has no timer interrupt",
                )
            )
        for ctrl, spec in decoded:
            if index.gic_version(ctrl) is not None and spec[0] != 1:
                out.append(
                    Finding(
                        "timer.interrupts",
                        path,
                        p.name if p is not None else "interrupts",
                        show(p),
                        f"<{' '.join(f'{c:#x}' for c in spec)}> is not a PPI (type 1): "
                        "the architected timers are per-CPU",
                    )
                )
    return out


def _virtio_findings(index: TreeIndex) -> list[Finding]:
    """virtio/mmio.yaml: one ``reg`` of at least the register block, one interrupt."""
    out = []
    for path in index.with_compatible({"virtio,mmio"}):
        node = index.nodes[path]
        entries = index.reg(path)
        if not entries or len(entries) != 1 or entries[0][1] < VIRTIO_MMIO_MIN_SIZE:
            out.append(
                Finding(
                    "virtio.reg",
                    path,
                    "reg",
                    show(node.prop("reg")),
                    f"must be one range of at least {VIRTIO_MMIO_MIN_SIZE:#x} bytes",
                )
            )
        decoded = index.specifiers(path)
        if decoded is None or len(decoded) != 1:
            out.append(
                Finding(
                    "virtio.interrupts",
                    path,
                    "interrupts",
                    show(index.interrupts_prop(path)),
                    "must decode to exactly one interrupt specifier",
                )
            )
    return out
