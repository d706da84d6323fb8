"""Will this blob boot, and if not, why: rule checks over a strictly parsed DTB.

:func:`verify` parses the blob with :mod:`fdtgen.parse` (a malformed blob is a
:class:`fdtgen.errors.BlobError`, the command's exit 2) and returns
:class:`Finding` values, each naming a rule, a node path, a property, the
value and what is wrong. The rule groups, in report order:

* ``header.*``/``structure.*``/``memreserve.*``: the DT spec's format rules
  beyond what the parser must reject, booting.rst's 2 MiB cap, libfdt's
  ``fdt_check_full`` as a second opinion and dtc's own checks
  (``dtc -I dtb -O dtb``) when dtc is installed.
* bindings (``root.*``, ``cpus.*``, ``psci.*``, ``memory.*``, ``gic.*``,
  ``pl011.*``, ``timer.*``, ``virtio.*``, ``chosen.*``, ``aliases.*``,
  ``phandle.*``): the Linux bindings a microVM's nodes follow.
* ``interrupts.*``: specifiers decode against their controller, GIC numbers
  and triggers are in range, no SPI is wired to two devices.
* ``regions.*``: no two ``reg`` ranges overlap; all lie inside the address width.
* ``template.*`` (with a template): every pinned region and SPI where the
  template puts it (:mod:`fdtgen.verify_template`).
* ``boot.*`` (with a manifest): booting.rst's kernel/initrd/DTB rules and the
  ``/chosen`` initrd, checked independently of :mod:`fdtgen.placement`
  (:mod:`fdtgen.verify_boot`, which also reads manifests).

Those two groups live in their own modules, loaded only when asked for.

No config is parsed here, so pydantic is never imported.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from fdtgen.fdt.dts import prop_value
from fdtgen.fdt.encode import NODE_NAME_RE, PROP_NAME_RE
from fdtgen.fdt.parse import Blob, parse_blob
from fdtgen.fdt.phandles import PhandleUse, node_phandle, phandle_uses
from fdtgen.fdt.tree import DeviceTree, Node, Prop
from fdtgen.irq import PPI_MAX, SPI_MAX, Trigger
from fdtgen.spec import DEFAULT_ADDRESS_WIDTH, FDT_MAX_SIZE, GICV3_REDIST_STRIDE, TIMER_NAMES
from fdtgen.units import U64_MAX

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it as true)
if TYPE_CHECKING:
    from fdtgen.template.model import Template
    from fdtgen.verify.boot import BootManifest

VIRTIO_MMIO_MIN_SIZE = 0x200  # virtio-mmio registers to 0x0fc, device config from 0x100
ESPI_MAX = 1023  # GICv3.1 extended SPIs: INTID 4096..5119
EPPI_MAX = 63  # GICv3.1 extended PPIs: INTID 1056..1119

GICV3_COMPATIBLE = frozenset({"arm,gic-v3", "qcom,msm8996-gic-v3"})
GICV2_COMPATIBLE = frozenset(
    {
        "arm,arm11mp-gic",
        "arm,arm1176jzf-devchip-gic",
        "arm,cortex-a15-gic",
        "arm,cortex-a5-gic",
        "arm,cortex-a7-gic",
        "arm,cortex-a9-gic",
        "arm,eb11mp-gic",
        "arm,gic-400",
        "arm,pl390",
        "arm,tc11mp-gic",
        "qcom,msm-8660-qgic",
        "qcom,msm-qgic2",
    }
)
PSCI_COMPATIBLE = frozenset({"arm,psci", "arm,psci-0.2", "arm,psci-1.0"})
TIMER_COMPATIBLE = frozenset({"arm,armv8-timer", "arm,armv7-timer"})

_DTC_LINE = re.compile(r"^(?:.*?: )?(Warning|ERROR) \(([\w-]+)\): (.*)$")


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: ``rule`` id, node ``path``, property ``prop`` (or ``""``),
    the offending ``value`` as DTS text (or ``""``) and the ``message``."""

    rule: str
    path: str
    prop: str
    value: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path} {self.prop}" if self.prop else self.path
        value = f" = {self.value}" if self.value else ""
        return f"{self.rule}: {where}{value}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "path": self.path,
            "property": self.prop,
            "value": self.value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Options:
    """What to check beyond the blob itself.

    ``dtc``: the dtc executable (``None``: skip its checks). ``shared_spis``:
    SPI numbers that may be wired to more than one node. ``address_bits``: the
    guest physical address width every ``reg`` must fit.
    """

    manifest: BootManifest | None = None
    template: Template | None = None
    dtc: str | None = None
    libfdt: bool = True
    shared_spis: frozenset[int] = frozenset()
    address_bits: int = DEFAULT_ADDRESS_WIDTH


def verify(buf: bytes, options: Options = Options()) -> list[Finding]:
    """Every finding for the blob ``buf``. Raises :class:`BlobError` if it does not parse."""
    blob = parse_blob(buf)
    return verify_parsed(blob, buf, options)


def verify_parsed(blob: Blob, buf: bytes, options: Options = Options()) -> list[Finding]:
    """Every finding for ``blob``, parsed from the bytes ``buf``."""
    ctx = _Ctx(blob.tree)
    out: list[Finding] = []
    out += structure_findings(blob, buf, options)
    out += binding_findings(ctx)
    out += interrupt_findings(ctx, options.shared_spis)
    out += region_findings(ctx, options.address_bits)
    if options.template is not None:
        from fdtgen.verify.template import template_findings

        out += template_findings(ctx, options.template)
    if options.manifest is not None:
        from fdtgen.verify.boot import boot_findings

        out += boot_findings(ctx, blob, options.manifest)
    return out


# ---------------------------------------------------------------------------
# The tree, indexed.


class _Ctx:
    """Path-keyed views of a tree: nodes, parents, phandles, cells, addresses."""

    def __init__(self, tree: DeviceTree) -> None:
        self.tree = tree
        self.root = tree.root
        self.nodes: dict[str, Node] = {}
        self.parents: dict[str, str] = {}
        self.order: list[str] = []
        self.by_phandle: dict[int, str] = {}
        for path, node in tree.root.walk():
            self.nodes[path] = node
            self.order.append(path)
            for c in node.children:
                self.parents[_join(path, c.name)] = path
            ph = node_phandle(node)
            if ph is not None:
                self.by_phandle.setdefault(ph, path)
        self.uses: list[PhandleUse] = phandle_uses(tree.root)

    def cell(self, path: str, name: str) -> int | None:
        p = self.nodes[path].prop(name)
        if p is None or len(p.value) != 4:
            return None
        return int.from_bytes(p.value, "big")

    def address_cells(self, path: str) -> int:
        """``#address-cells`` for the children of ``path`` (DT spec default 2)."""
        n = self.cell(path, "#address-cells")
        return 2 if n is None else n

    def size_cells(self, path: str) -> int:
        """``#size-cells`` for the children of ``path`` (DT spec default 1)."""
        n = self.cell(path, "#size-cells")
        return 1 if n is None else n

    def compatible(self, path: str) -> tuple[str, ...]:
        return _strings(self.nodes[path].prop("compatible")) or ()

    def with_compatible(self, names: frozenset[str] | set[str]) -> list[str]:
        return [p for p in self.order if any(c in names for c in self.compatible(p))]

    def reg(self, path: str) -> list[tuple[int, int]] | None:
        """The node's ``reg`` as (base, size) in its parent's address space."""
        p = self.nodes[path].prop("reg")
        parent = self.parents.get(path)
        if p is None or parent is None:
            return None
        return _entries(p.value, self.address_cells(parent), self.size_cells(parent))

    def translate(self, path: str, base: int) -> int | None:
        """``base`` (in the parent's space of ``path``) as a CPU address, through
        every ancestor's ``ranges``; ``None`` when a bus is not memory-mapped."""
        bus = self.parents.get(path)
        addr = base
        while bus is not None and bus != "/":
            node = self.nodes[bus]
            if _string(node.prop("device_type")) == "pci":
                return None
            ranges = node.prop("ranges")
            if ranges is None:
                return None
            if ranges.value:
                up = self.parents[bus]
                entries = _ranges(
                    ranges.value,
                    self.address_cells(bus),
                    self.address_cells(up),
                    self.size_cells(bus),
                )
                if entries is None:
                    return None
                hit = next(((c, p, s) for c, p, s in entries if c <= addr < c + s), None)
                if hit is None:
                    return None
                addr = hit[1] + addr - hit[0]
            bus = self.parents.get(bus)
        return addr

    def interrupt_parent(self, path: str) -> str | None:
        """The controller ``path``'s ``interrupts`` go to (dtc ``check_interrupts_property``)."""
        cur: str | None = path
        while cur is not None:
            node = self.nodes[cur]
            if cur != path and _is_interrupt_provider(node):
                return cur
            ip = node.prop("interrupt-parent")
            if ip is not None:
                if len(ip.value) != 4:
                    return None
                return self.by_phandle.get(int.from_bytes(ip.value, "big"))
            cur = self.parents.get(cur)
        return None

    def gic_version(self, path: str) -> int | None:
        compat = set(self.compatible(path))
        if compat & GICV3_COMPATIBLE:
            return 3
        if compat & GICV2_COMPATIBLE:
            return 2
        return None

    def specifiers(
        self, path: str, prop: str = "interrupts"
    ) -> tuple[str, list[tuple[int, ...]]] | None:
        """``(controller, specifiers)`` of a node's ``interrupts``; ``None`` if undecodable."""
        p = self.nodes[path].prop(prop)
        ctrl = self.interrupt_parent(path)
        if p is None or ctrl is None or len(p.value) % 4:
            return None
        n = self.cell(ctrl, "#interrupt-cells")
        cells = p.as_cells()
        if not n or len(cells) % n:
            return None
        return ctrl, [cells[i : i + n] for i in range(0, len(cells), n)]

    def cpus(self) -> list[str]:
        if "/cpus" not in self.nodes:
            return []
        return [
            _join("/cpus", c.name)
            for c in self.nodes["/cpus"].children
            if _string(c.prop("device_type")) == "cpu"
        ]

    def memory(self) -> list[tuple[str, int, int]]:
        """(path, base, size) of every ``device_type = "memory"`` range, CPU addresses."""
        out = []
        for path in self.order:
            if _string(self.nodes[path].prop("device_type")) != "memory":
                continue
            for base, size in self.reg(path) or ():
                cpu = self.translate(path, base)
                if cpu is not None and size:
                    out.append((path, cpu, size))
        return out


def _join(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}"


def _is_interrupt_provider(node: Node) -> bool:
    return node.prop("interrupt-controller") is not None or node.prop("interrupt-map") is not None


def _strings(p: Prop | None) -> tuple[str, ...] | None:
    if p is None or not p.value.endswith(b"\0"):
        return None
    return p.as_strings()


def _string(p: Prop | None) -> str | None:
    s = _strings(p)
    return s[0] if s and len(s) == 1 else None


def _number(cells: Sequence[int]) -> int:
    v = 0
    for c in cells:
        v = v << 32 | c
    return v


def _entries(value: bytes, ac: int, sc: int) -> list[tuple[int, int]] | None:
    """``reg``-style (address, size) pairs; ``None`` if the length does not fit."""
    n = ac + sc
    if ac == 0 or n == 0 or len(value) % (4 * n):
        return None
    cells = _cells(value)
    return [
        (_number(cells[i : i + ac]), _number(cells[i + ac : i + n]))
        for i in range(0, len(cells), n)
    ]


def _ranges(value: bytes, cac: int, pac: int, sc: int) -> list[tuple[int, int, int]] | None:
    n = cac + pac + sc
    if n == 0 or len(value) % (4 * n):
        return None
    cells = _cells(value)
    return [
        (
            _number(cells[i : i + cac]),
            _number(cells[i + cac : i + cac + pac]),
            _number(cells[i + cac + pac : i + n]),
        )
        for i in range(0, len(cells), n)
    ]


def _cells(value: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value), 4))


def _show(p: Prop | None, limit: int = 96) -> str:
    if p is None:
        return ""
    text = prop_value(p) or "(empty)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------
# Structure: header, blocks, names, libfdt and dtc.


def structure_findings(blob: Blob, buf: bytes, options: Options) -> list[Finding]:
    """DT spec "Flattened Devicetree (DTB) Format" rules the parser tolerates,
    booting.rst's size cap, and the opinions of libfdt and dtc."""
    hdr = blob.header
    out: list[Finding] = []
    if hdr.totalsize > FDT_MAX_SIZE:
        out.append(
            Finding(
                "header.size",
                "/",
                "",
                f"{hdr.totalsize:#x}",
                f"totalsize is over {FDT_MAX_SIZE:#x} "
                "(booting.rst: the dtb must not exceed 2 megabytes)",
            )
        )
    if blob.file_size > hdr.totalsize:
        out.append(
            Finding(
                "header.trailing",
                "/",
                "",
                f"{blob.file_size - hdr.totalsize:#x}",
                f"bytes follow totalsize {hdr.totalsize:#x} in the file; a loader copying "
                "the file copies bytes the kernel never reads",
            )
        )
    if hdr.off_mem_rsvmap % 8:
        out.append(
            Finding(
                "header.rsvmap-align",
                "/",
                "",
                f"{hdr.off_mem_rsvmap:#x}",
                'off_mem_rsvmap is not 8-byte aligned (DT spec "Memory Reservation Block")',
            )
        )
    root = blob.tree.root
    if root.name:
        out.append(
            Finding(
                "structure.root-name",
                "/",
                "",
                repr(root.name),
                "the root node's name must be empty "
                '(DT spec "Structure Block"; libfdt rejects it)',
            )
        )
    for path, node in root.walk():
        if path != "/" and not NODE_NAME_RE.fullmatch(node.name):
            out.append(
                Finding(
                    "structure.node-name",
                    path,
                    "",
                    repr(node.name),
                    "breaks the DT spec node-name rule "
                    "(1-31 of [A-Za-z0-9,._+-], optional @unit-address)",
                )
            )
        for p in node.props:
            if not PROP_NAME_RE.fullmatch(p.name):
                out.append(
                    Finding(
                        "structure.property-name",
                        path,
                        p.name,
                        "",
                        "breaks the DT spec property-name rule (1-31 of [A-Za-z0-9,._+?#-])",
                    )
                )
    out += _memreserve_findings(blob.tree.reserve)
    if options.libfdt:
        out += _libfdt_findings(buf)
    if options.dtc:
        out += dtc_findings(options.dtc, buf)
    return out


def _memreserve_findings(reserve: Sequence[tuple[int, int]]) -> list[Finding]:
    out = []
    for base, size in reserve:
        if base + size > U64_MAX + 1:
            out.append(
                Finding(
                    "memreserve.range",
                    "/memreserve/",
                    "",
                    f"{base:#x} {size:#x}",
                    "the reservation runs past the 64-bit address space",
                )
            )
    ordered = sorted(reserve)
    for (a, asz), (b, bsz) in zip(ordered, ordered[1:], strict=False):
        if b < a + asz:
            out.append(
                Finding(
                    "memreserve.overlap",
                    "/memreserve/",
                    "",
                    f"{b:#x} {bsz:#x}",
                    f"overlaps the reservation [{a:#x}, {a + asz:#x}) "
                    '(DT spec "Memory Reservation Block": entries shall not overlap)',
                )
            )
    return out


def _libfdt_findings(buf: bytes) -> list[Finding]:
    """libfdt's ``fdt_check_full(buf, len(buf))``, which must agree that the blob is sound."""
    import libfdt  # type: ignore[import-untyped]

    data = bytearray(buf)
    rc = libfdt.fdt_check_full(data, len(data))
    if rc == 0:
        return []
    return [
        Finding(
            "libfdt.check-full",
            "/",
            "",
            libfdt.fdt_strerror(rc),
            "libfdt's fdt_check_full rejects a blob fdtgen's parser accepted",
        )
    ]


DTC_TIMEOUT = 30.0  # seconds: dtc reads at most 2 MiB and answers in milliseconds


def dtc_findings(dtc: str, buf: bytes, timeout: float = DTC_TIMEOUT) -> list[Finding]:
    """dtc's checks on the blob (``dtc -I dtb -O dtb -o /dev/null -``), one finding
    per warning or error line; a dtc that cannot run, fails silently or takes
    longer than ``timeout`` seconds is one finding."""
    argv = [dtc, "-I", "dtb", "-O", "dtb", "-o", os.devnull, "-"]
    try:
        done = subprocess.run(
            argv,
            input=buf,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        message = f"could not run {dtc}: {dtc} took more than {timeout:g} s"
        return [Finding("dtc.run", "/", "", "", message)]
    except OSError as e:
        return [Finding("dtc.run", "/", "", "", f"could not run {dtc}: {e}")]
    out: list[Finding] = []
    lines = [ln for ln in done.stderr.decode(errors="replace").splitlines() if ln.strip()]
    for line in lines:
        m = _DTC_LINE.match(line)
        if m is None:
            continue
        check, text = m.group(2), m.group(3)
        path, _, message = text.partition(": ") if text.startswith("/") else ("/", "", text)
        node, _, prop = path.partition(":")
        out.append(Finding(f"dtc.{check}", node, prop, "", message or text))
    if done.returncode != 0 and not out:
        first = lines[0] if lines else f"exit status {done.returncode}"
        out.append(Finding("dtc.error", "/", "", "", f"dtc rejects the blob: {first}"))
    return out


# ---------------------------------------------------------------------------
# Bindings.


def binding_findings(ctx: _Ctx) -> list[Finding]:
    out: list[Finding] = []
    out += _root_findings(ctx)
    out += _cpu_findings(ctx)
    out += _memory_findings(ctx)
    out += _gic_findings(ctx)
    out += _pl011_findings(ctx)
    out += _timer_findings(ctx)
    out += _virtio_findings(ctx)
    out += _chosen_findings(ctx)
    out += _phandle_findings(ctx)
    return out


def _root_findings(ctx: _Ctx) -> list[Finding]:
    """DT spec "Root node": ``#address-cells`` and ``#size-cells`` are required."""
    out = []
    for name in ("#address-cells", "#size-cells"):
        p = ctx.root.prop(name)
        n = ctx.cell("/", name)
        if n is None or n not in (1, 2):
            out.append(
                Finding(
                    "root.cells",
                    "/",
                    name,
                    _show(p),
                    "missing" if p is None else "must be one cell holding 1 or 2",
                )
            )
    return out


def _cpu_findings(ctx: _Ctx) -> list[Finding]:
    """cpus.yaml / booting.rst "Secondary CPU requirements"."""
    out: list[Finding] = []
    if "/cpus" not in ctx.nodes:
        return [Finding("cpus.node", "/cpus", "", "", "missing: the kernel finds no CPUs")]
    ac, sc = ctx.cell("/cpus", "#address-cells"), ctx.cell("/cpus", "#size-cells")
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
    cpus = ctx.cpus()
    if not cpus:
        out.append(Finding("cpus.node", "/cpus", "", "", 'no child with device_type = "cpu"'))
    seen: dict[int, str] = {}
    methods = []
    for path in cpus:
        node = ctx.nodes[path]
        reg = node.prop("reg")
        if reg is None or ac not in (1, 2) or len(reg.value) != 4 * ac:
            out.append(
                Finding(
                    "cpus.reg",
                    path,
                    "reg",
                    _show(reg),
                    "missing"
                    if reg is None
                    else f"must be #address-cells ({ac}) cells: the MPIDR affinity",
                )
            )
        else:
            mpidr = _number(reg.as_cells())
            if mpidr in seen:
                out.append(
                    Finding(
                        "cpus.reg", path, "reg", _show(reg), f"repeats the MPIDR of {seen[mpidr]}"
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
                        _show(reg),
                        f"does not match the unit address @{unit} (expected @{mpidr:x})",
                    )
                )
        method = _string(node.prop("enable-method"))
        methods.append(method)
        if method is None and len(cpus) > 1:
            out.append(
                Finding(
                    "cpus.enable-method",
                    path,
                    "enable-method",
                    _show(node.prop("enable-method")),
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
                    _show(node.prop("enable-method")),
                    'arm64 knows only "psci" and "spin-table"',
                )
            )
        elif method == "spin-table":
            out += _spin_table_findings(ctx, path)
    if "psci" in methods:
        psci = ctx.with_compatible(PSCI_COMPATIBLE)
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
            conduit = ctx.nodes[path].prop("method")
            if _string(conduit) not in ("hvc", "smc"):
                out.append(
                    Finding(
                        "psci.method",
                        path,
                        "method",
                        _show(conduit),
                        "missing" if conduit is None else 'must be "hvc" or "smc" (arm/psci.yaml)',
                    )
                )
    return out


def _spin_table_findings(ctx: _Ctx, path: str) -> list[Finding]:
    """booting.rst: spin-table CPUs poll ``cpu-release-addr``, inside a /memreserve/ region."""
    p = ctx.nodes[path].prop("cpu-release-addr")
    if p is None or len(p.value) != 8:
        return [
            Finding(
                "cpus.release-addr",
                path,
                "cpu-release-addr",
                _show(p),
                "spin-table needs a 64-bit cpu-release-addr",
            )
        ]
    addr = int.from_bytes(p.value, "big")
    if not any(b <= addr and addr + 8 <= b + s for b, s in ctx.tree.reserve):
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


def _memory_findings(ctx: _Ctx) -> list[Finding]:
    """memory.yaml: ``device_type = "memory"`` and a ``reg`` matching the unit address."""
    out = []
    paths = [p for p in ctx.order if _string(ctx.nodes[p].prop("device_type")) == "memory"]
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
        node = ctx.nodes[path]
        reg = node.prop("reg")
        entries = ctx.reg(path)
        if not entries or any(size == 0 for _, size in entries):
            out.append(
                Finding(
                    "memory.reg",
                    path,
                    "reg",
                    _show(reg),
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
                    _show(reg),
                    f"does not match the unit address @{unit} (expected @{entries[0][0]:x})",
                )
            )
    return out


def _gic_findings(ctx: _Ctx) -> list[Finding]:
    """arm,gic-v3.yaml and arm,gic.yaml: cells, ``reg`` count, redistributor room, ITS, v2m."""
    out: list[Finding] = []
    gics = [p for p in ctx.order if ctx.gic_version(p)]
    if not gics:
        return [
            Finding(
                "gic.node",
                "/",
                "",
                "",
                "no arm,gic-v3 or GICv2 interrupt controller "
                "(booting.rst: the DT must describe the GIC)",
            )
        ]
    ncpus = len(ctx.cpus())
    for path in gics:
        node = ctx.nodes[path]
        version = ctx.gic_version(path)
        if node.prop("interrupt-controller") is None:
            out.append(
                Finding("gic.interrupt-controller", path, "interrupt-controller", "", "missing")
            )
        cells = ctx.cell(path, "#interrupt-cells")
        if cells is None or cells < 3 or (version == 2 and cells != 3) or cells > 4:
            out.append(
                Finding(
                    "gic.interrupt-cells",
                    path,
                    "#interrupt-cells",
                    _show(node.prop("#interrupt-cells")),
                    "must be 3 (type, number, flags), or 4 on a GICv3 with PPI affinity",
                )
            )
        entries = ctx.reg(path)
        reg = node.prop("reg")
        if version == 3:
            nr = ctx.cell(path, "#redistributor-regions") or 1
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
                    _show(reg),
                    f"has {count} decodable entries; a GICv{version} needs {lo}..{hi}: {what}",
                )
            )
        elif version == 3 and ncpus:
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
                        _show(reg),
                        f"the GICR regions hold {room:#x} bytes, less than "
                        f"{ncpus} CPUs x {stride:#x}: "
                        "Linux walks the frames until GICR_TYPER.Last and faults past the end",
                    )
                )
        for child in node.children:
            cpath = _join(path, child.name)
            compat = set(ctx.compatible(cpath))
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
                if ctx.cell(cpath, "#msi-cells") != 1:
                    out.append(
                        Finding(
                            "gic.its",
                            cpath,
                            "#msi-cells",
                            _show(child.prop("#msi-cells")),
                            "must be <1> (arm,gic-v3.yaml requires it of an ITS)",
                        )
                    )
                if child.prop("reg") is None:
                    out.append(Finding("gic.its", cpath, "reg", "", "missing"))
            if "arm,gic-v2m-frame" in compat:
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


def _pl011_findings(ctx: _Ctx) -> list[Finding]:
    """serial/pl011.yaml: two clocks named uartclk and apb_pclk (one clock is deprecated;
    the AMBA bus will not probe a primecell without apb_pclk), and an interrupt."""
    out = []
    for path in ctx.with_compatible({"arm,pl011"}):
        node = ctx.nodes[path]
        clocks = [u for u in ctx.uses if u.path == path and u.prop == "clocks"]
        names = _strings(node.prop("clock-names"))
        if len(clocks) != 2 or names != ("uartclk", "apb_pclk"):
            out.append(
                Finding(
                    "pl011.clocks",
                    path,
                    "clocks",
                    _show(node.prop("clocks")),
                    f"has {len(clocks)} clock(s) named {list(names or ())}; pl011.yaml wants two, "
                    'clock-names = "uartclk", "apb_pclk"',
                )
            )
        if node.prop("interrupts") is None and node.prop("interrupts-extended") is None:
            out.append(
                Finding(
                    "pl011.interrupts", path, "interrupts", "", "missing (pl011.yaml requires it)"
                )
            )
    return out


def _timer_findings(ctx: _Ctx) -> list[Finding]:
    """arm,arch_timer.yaml: PPIs in the order secure, non-secure, virtual,
    hypervisor[, hypervisor virtual], or as ``interrupt-names`` say. A guest at
    EL1 runs on the virtual timer, so that one must be there. Which PPI numbers
    are right depends on the hypervisor: ``--template`` checks them."""
    out = []
    timers = ctx.with_compatible(TIMER_COMPATIBLE)
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
        node = ctx.nodes[path]
        p = node.prop("interrupts")
        decoded = ctx.specifiers(path)
        if decoded is None or not decoded[1]:
            out.append(
                Finding(
                    "timer.interrupts",
                    path,
                    "interrupts",
                    _show(p),
                    "missing" if p is None else "does not decode against its interrupt controller",
                )
            )
            continue
        ctrl, specs = decoded
        names = _strings(node.prop("interrupt-names"))
        if names is not None and (len(names) != len(specs) or not set(names) <= set(TIMER_NAMES)):
            out.append(
                Finding(
                    "timer.interrupts",
                    path,
                    "interrupt-names",
                    _show(node.prop("interrupt-names")),
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
                    _show(p),
                    'has no virtual timer (the 3rd interrupt, or one named "virt"): '
                    "a guest at EL1 has no timer interrupt",
                )
            )
        if ctx.gic_version(ctrl) is not None:
            for spec in specs:
                if spec[0] != 1:
                    out.append(
                        Finding(
                            "timer.interrupts",
                            path,
                            "interrupts",
                            _show(p),
                            f"<{' '.join(f'{c:#x}' for c in spec)}> is not a PPI (type 1): "
                            "the architected timers are per-CPU",
                        )
                    )
    return out


def _virtio_findings(ctx: _Ctx) -> list[Finding]:
    """virtio/mmio.yaml: one ``reg`` of at least the register block, one interrupt."""
    out = []
    for path in ctx.with_compatible({"virtio,mmio"}):
        node = ctx.nodes[path]
        entries = ctx.reg(path)
        if not entries or len(entries) != 1 or entries[0][1] < VIRTIO_MMIO_MIN_SIZE:
            out.append(
                Finding(
                    "virtio.reg",
                    path,
                    "reg",
                    _show(node.prop("reg")),
                    f"must be one range of at least {VIRTIO_MMIO_MIN_SIZE:#x} bytes",
                )
            )
        decoded = ctx.specifiers(path)
        if decoded is None or len(decoded[1]) != 1:
            out.append(
                Finding(
                    "virtio.interrupts",
                    path,
                    "interrupts",
                    _show(node.prop("interrupts")),
                    "must decode to exactly one interrupt specifier",
                )
            )
    return out


def _resolve_path(ctx: _Ctx, text: str) -> str | None:
    """A ``stdout-path``-style reference (``/path[:opts]`` or ``alias[:opts]``) as a node path."""
    target = text.partition(":")[0]
    if not target.startswith("/"):
        alias = _string(ctx.nodes["/aliases"].prop(target)) if "/aliases" in ctx.nodes else None
        if alias is None:
            return None
        target = alias
    target = target.rstrip("/") or "/"
    return target if target in ctx.nodes else None


def _chosen_findings(ctx: _Ctx) -> list[Finding]:
    """chosen.yaml ``stdout-path`` and the ``/aliases`` paths must name real nodes."""
    out = []
    chosen = ctx.nodes.get("/chosen")
    if chosen is not None and chosen.prop("stdout-path") is not None:
        p = chosen.prop("stdout-path")
        text = _string(p)
        if text is None or _resolve_path(ctx, text) is None:
            out.append(
                Finding(
                    "chosen.stdout-path",
                    "/chosen",
                    "stdout-path",
                    _show(p),
                    "does not resolve to a node (a path, or an alias in /aliases): no console",
                )
            )
    aliases = ctx.nodes.get("/aliases")
    for p in aliases.props if aliases is not None else ():
        text = _string(p)
        if text is None or not text.startswith("/") or (text.rstrip("/") or "/") not in ctx.nodes:
            out.append(
                Finding(
                    "aliases.path", "/aliases", p.name, _show(p), "does not name a node in the tree"
                )
            )
    return out


def _phandle_findings(ctx: _Ctx) -> list[Finding]:
    """DT spec "phandle": unique, not 0 or 0xffffffff; every reference resolves."""
    out = []
    owner: dict[int, str] = {}
    for path in ctx.order:
        node = ctx.nodes[path]
        for name in ("phandle", "linux,phandle"):
            p = node.prop(name)
            if p is None:
                continue
            if len(p.value) != 4 or int.from_bytes(p.value, "big") in (0, 0xFFFF_FFFF):
                out.append(
                    Finding(
                        "phandle.value",
                        path,
                        name,
                        _show(p),
                        "must be one cell, not 0 or 0xffffffff",
                    )
                )
        ph = node_phandle(node)
        if ph is not None and ph not in (0, 0xFFFF_FFFF):
            if ph in owner:
                out.append(
                    Finding(
                        "phandle.unique",
                        path,
                        "phandle",
                        f"{ph:#x}",
                        f"is also the phandle of {owner[ph]}",
                    )
                )
            owner.setdefault(ph, path)
    for u in ctx.uses:
        if u.target is None and not u.problem:
            out.append(
                Finding(
                    "phandle.reference",
                    u.path,
                    u.prop,
                    f"{u.phandle:#x}",
                    f"cell {u.cell} refers to phandle {u.phandle:#x}, which no node has",
                )
            )
        elif u.problem:
            out.append(Finding("phandle.cells", u.path, u.prop, f"{u.phandle:#x}", u.problem))
    return out


# ---------------------------------------------------------------------------
# Interrupts.


def interrupt_findings(ctx: _Ctx, shared: frozenset[int] = frozenset()) -> list[Finding]:
    """Every ``interrupts`` decodes against its controller; GIC specifiers use a
    valid type, a number in the binding's range and (for SPIs) a trigger the GIC
    accepts (Linux ``gic_set_type``: level-high or edge-rising); no SPI is
    wired to two nodes unless listed in ``shared``."""
    out: list[Finding] = []
    owners: dict[tuple[str, int], list[str]] = {}
    for path in ctx.order:
        node = ctx.nodes[path]
        p = node.prop("interrupts")
        if p is None:
            continue
        ctrl = ctx.interrupt_parent(path)
        if ctrl is None:
            out.append(
                Finding(
                    "interrupts.parent",
                    path,
                    "interrupts",
                    _show(p),
                    "no interrupt parent "
                    "(no interrupt-parent here or above, or it does not resolve)",
                )
            )
            continue
        if not _is_interrupt_provider(ctx.nodes[ctrl]):
            out.append(
                Finding(
                    "interrupts.parent",
                    path,
                    "interrupts",
                    _show(p),
                    f"the interrupt parent {ctrl} has no interrupt-controller or interrupt-map",
                )
            )
            continue
        n = ctx.cell(ctrl, "#interrupt-cells")
        if not n:
            out.append(
                Finding(
                    "interrupts.cells",
                    path,
                    "interrupts",
                    _show(p),
                    f"the interrupt parent {ctrl} has no usable #interrupt-cells",
                )
            )
            continue
        if len(p.value) % (4 * n):
            out.append(
                Finding(
                    "interrupts.cells",
                    path,
                    "interrupts",
                    _show(p),
                    f"is {len(p.value)} bytes, not a whole number of {ctrl}'s "
                    f"#interrupt-cells = {n} specifiers",
                )
            )
            continue
        decoded = ctx.specifiers(path)
        if decoded is None:
            continue
        for spec in decoded[1]:
            out += _gic_specifier(ctx, path, p, ctrl, spec, owners)
    for path in ctx.order:
        node = ctx.nodes[path]
        imap = node.prop("interrupt-map")
        if imap is None:
            continue
        for u in ctx.uses:
            if u.path != path or u.prop != "interrupt-map" or u.target is None or u.problem:
                continue
            cells = imap.as_cells()
            start = u.cell + 1 + (ctx.cell(u.target, "#address-cells") or 0)
            width = ctx.cell(u.target, "#interrupt-cells") or 0
            out += _gic_specifier(ctx, path, imap, u.target, cells[start : start + width], owners)
    for (ctrl, spi), paths in owners.items():
        unique = list(dict.fromkeys(paths))
        if len(unique) > 1 and spi not in shared:
            for other in unique[1:]:
                out.append(
                    Finding(
                        "interrupts.shared",
                        other,
                        "interrupts",
                        f"<0x0 {spi:#x} ...>",
                        f"SPI {spi} (INTID {spi + 32}) on {ctrl} is also wired to {unique[0]}; "
                        "not declared shared",
                    )
                )
    return out


def _gic_specifier(
    ctx: _Ctx,
    path: str,
    p: Prop,
    ctrl: str,
    spec: Sequence[int],
    owners: dict[tuple[str, int], list[str]],
) -> list[Finding]:
    version = ctx.gic_version(ctrl)
    if version is None or len(spec) < 3:
        return []
    kind, number, flags = spec[0], spec[1], spec[2]
    shown = f"<{' '.join(f'{c:#x}' for c in spec)}>"
    limits = {0: ("SPI", SPI_MAX, 32), 1: ("PPI", PPI_MAX, 16)}
    if version == 3:
        limits |= {2: ("extended SPI", ESPI_MAX, 4096), 3: ("extended PPI", EPPI_MAX, 1056)}
    if kind not in limits:
        return [
            Finding(
                "interrupts.type",
                path,
                p.name,
                shown,
                f"type cell {kind} is not one of {sorted(limits)} for a GICv{version}",
            )
        ]
    name, top, base = limits[kind]
    if number > top:
        return [
            Finding(
                "interrupts.range",
                path,
                p.name,
                shown,
                f"{name} {number} is outside the binding's range 0..{top} "
                f"(INTID {base}..{base + top})",
            )
        ]
    out = []
    trigger = flags & 0xF
    if kind in (0, 2) and trigger not in (Trigger.EDGE_RISING, Trigger.LEVEL_HIGH):
        out.append(
            Finding(
                "interrupts.trigger",
                path,
                p.name,
                shown,
                f"{name} trigger {trigger} is not 1 (edge-rising) or 4 (level-high); "
                "the GIC rejects it (gic_set_type -EINVAL) and the driver fails to probe",
            )
        )
    if kind == 0:
        owners.setdefault((ctrl, number), []).append(path)
    return out


# ---------------------------------------------------------------------------
# Regions.


@dataclass(frozen=True, slots=True)
class _Region:
    path: str
    index: int
    base: int
    size: int
    kind: str  # "memory", "reserved" (under /reserved-memory) or "device"

    @property
    def end(self) -> int:
        return self.base + self.size

    def __str__(self) -> str:
        return f"[{self.base:#x}, {self.end:#x})"


def regions(ctx: _Ctx) -> list[_Region]:
    """Every ``reg`` range on a memory-mapped bus, as CPU addresses, in tree order."""
    out = []
    for path in ctx.order:
        parent = ctx.parents.get(path)
        if parent is None or ctx.size_cells(parent) == 0:
            continue
        entries = ctx.reg(path)
        if not entries:
            continue
        if _string(ctx.nodes[path].prop("device_type")) == "memory":
            kind = "memory"
        elif path.startswith("/reserved-memory/"):
            kind = "reserved"
        else:
            kind = "device"
        for i, (base, size) in enumerate(entries):
            cpu = ctx.translate(path, base)
            if cpu is not None and size:
                out.append(_Region(path, i, cpu, size, kind))
    return out


def region_findings(ctx: _Ctx, address_bits: int = DEFAULT_ADDRESS_WIDTH) -> list[Finding]:
    """No two ``reg`` ranges share bytes (reserved-memory inside RAM excepted);
    every range ends inside the ``address_bits`` physical address space."""
    out: list[Finding] = []
    regs = regions(ctx)
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
    active: list[_Region] = []
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


def findings_json(findings: Sequence[Finding], source: str) -> str:
    import json  # only --json needs it

    return (
        json.dumps(
            {"blob": source, "clean": not findings, "findings": [f.as_dict() for f in findings]},
            indent=2,
        )
        + "\n"
    )
