"""Loading layout templates (TOML data files) into checked :class:`Template` values.

Built-in templates live in ``templates/`` at the top of the source tree and are
shipped inside the wheel as ``fdtgen/templates``. A template name containing a
path separator or ending in ``.toml`` is read from that file instead. Every
template, built-in or not, passes :func:`fdtgen.template.proofs.check_template`.

A region may give ``placement = "below-4g"`` instead of a ``base``: the loader
places it with :mod:`fdtgen.allocator` (top-down below 4 GiB, around every
pinned region and DRAM hole, before RAM) and, where it lands inside the DRAM
window, RAM is split around it, as openvmm places its virtio-mmio block.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from fdtgen.errors import IrqError, LayoutError, TemplateError, parse_failure, shown
from fdtgen.files import file_kind, read_regular
from fdtgen.irq import Spi
from fdtgen.ranges import Range, Region, by_address
from fdtgen.spec import (
    GICV3_REDIST_STRIDE,
    MAX_ADDRESS_WIDTH,
    MIN_ADDRESS_WIDTH,
    NODE_NAMES,
    PAGE_SIZE,
    PCIE_COMPATIBLES,
    SLOTS,
    SPI_MAX,
    Trigger,
)
from fdtgen.template.fields import (
    Reader,
    address,
    alignment,
    boolean,
    dt_text,
    int_in,
    integer,
    intid,
    one_of,
    policy,
    ppi,
    ppis,
    region_size,
    size,
    spi,
    strings,
    text,
    trigger,
    u32,
    virtio_stride,
)
from fdtgen.template.model import (
    DTB_POLICIES,
    INITRD_POLICIES,
    KERNEL_POLICIES,
    PLACEMENTS,
    REDIST_ANCHORS,
    REDIST_REG_KINDS,
    BootSpec,
    DeviceSpec,
    GicSpec,
    MsiFrame,
    PmuSpec,
    Rule,
    Template,
    UartSpec,
    VirtioSpec,
)
from fdtgen.template.pci import (
    INTX_SLOTS,
    INTX_STYLES,
    MSI_STYLES,
    VIRTIO_TRANSPORTS,
    AfterRam,
    PcieSpec,
    bus_range,
)
from fdtgen.template.proofs import check_template
from fdtgen.template.registry import DEVICE_KINDS, PL061, UART_KINDS
from fdtgen.units import U32_MAX, MiB

T = TypeVar("T")

TEMPLATE_MAX_SIZE = 1 * MiB  # a template file is a few KiB; this stops a runaway read


def templates_dir() -> Traversable:
    """The built-in templates: package data when installed, ``templates/`` in a source checkout."""
    packaged = resources.files("fdtgen") / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in templates_dir().iterdir() if p.name.endswith(".toml"))


def load_template(name_or_path: str | os.PathLike[str]) -> Template:
    """A built-in template by name, or a template file by path.

    A built-in template is parsed once per process; a file once per version of
    it (its path, size and modification time), so an edited file is read again.
    An error in a file starts with its path; one about the name itself (no such
    file, no such built-in) names the ``template`` setting, for the caller to
    say where the name came from (:attr:`fdtgen.errors.FdtgenError.setting`).
    """
    name = os.fspath(name_or_path)
    if "/" in name or name.endswith(".toml"):
        path = Path(name)
        try:
            resolved = path.resolve()
            st = resolved.stat()
        except OSError as e:  # no such file, a name too long, a loop of links
            raise TemplateError(
                f"template: {shown(name)}: cannot read: {e.strerror}", setting="template"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise TemplateError(
                f"template: {shown(name)}: not a regular file ({file_kind(st.st_mode)})",
                setting="template",
            )
        return _load_file(str(resolved), st.st_size, st.st_mtime_ns)
    return _load_builtin(name)


@lru_cache(maxsize=64)
def _load_builtin(name: str) -> Template:
    names = builtin_names()
    if name not in names:
        raise TemplateError(
            f"template: {shown(name)} is not a built-in template "
            f"(built-in: {', '.join(names)}; or give a path to a .toml file)",
            setting="template",
        )
    source = templates_dir() / f"{name}.toml"
    return _parsed(source.read_bytes(), str(source))


@lru_cache(maxsize=64)
def _load_file(path: str, size: int, mtime_ns: int) -> Template:
    """The template file at ``path`` as of ``size`` and ``mtime_ns`` (the cache key)."""
    raw = read_regular(path, path, TEMPLATE_MAX_SIZE, TemplateError, noun="template")
    return _parsed(raw, path)


def _parsed(raw: bytes, path: str) -> Template:
    """A template file's bytes, parsed and proved; every failure names ``path``."""
    try:
        data = tomllib.loads(raw.decode())
    except (ValueError, RecursionError) as e:  # not UTF-8, not TOML, nested too deeply
        raise TemplateError(f"{path}: {parse_failure(e, 'TOML')}") from None
    return _checked(data, path)


def _checked(data: dict[str, Any], path: str) -> Template:
    """Parse, place and prove; a range, interrupt or proof error gets ``path`` in front."""
    try:
        t = place_dynamic(parse_template(data, path))
        check_template(t)
    except (LayoutError, IrqError) as e:  # a Range or Spi built from the file's numbers
        msg = str(e)
        raise TemplateError(msg if msg.startswith(f"{path}: ") else f"{path}: {msg}") from None
    return t


def place_dynamic(t: Template) -> Template:
    """Give every ``below-4g`` region its address; RAM is split around it.

    The placement runs before RAM and depends only on the template, so it is
    the same for every machine built from it.
    """
    from fdtgen.allocator import Allocator, Placement

    dynamic = [(d.tag, d.size, d.align) for d in t.devices if d.base is None]
    if t.virtio.base is None and t.virtio.slots:
        dynamic.append(("virtio", t.virtio.size, max(t.virtio.stride, PAGE_SIZE)))
    if not dynamic:
        return t
    alloc = Allocator()
    for h in t.ram_holes:
        alloc.reserve(f"hole:{h.tag}", h.range)
    for r in t.pinned_regions():
        if not r.tag.startswith("dram"):
            alloc.fixed(r.tag, r.range)
    for tag, size_, align in dynamic:
        alloc.request(tag, size_, align, Placement.BELOW_4G)
    try:
        placed = alloc.allocate()
    except LayoutError as e:
        raise TemplateError(f"{t.path or t.name}: {e}") from None
    where = {p.tag: p.range for p in placed}
    holes = [
        Region(f"{tag}-gap", where[tag]) for tag, _, _ in dynamic if where[tag].overlaps(t.dram)
    ]
    return replace(
        t,
        virtio=replace(t.virtio, base=where["virtio"].base) if "virtio" in where else t.virtio,
        devices=tuple(
            replace(d, base=where[d.tag].base) if d.base is None else d for d in t.devices
        ),
        ram_holes=tuple(sorted((*t.ram_holes, *holes), key=by_address)),
    )


def _base_or_placement(r: Reader) -> tuple[int | None, str]:
    """A region's ``base``, or ``placement = "below-4g"`` for the loader to place it."""
    placement = r.get("placement", one_of(*PLACEMENTS), "fixed")
    base = r.get("base", address, None)
    if (base is None) != (placement != "fixed"):
        raise r._fail("base", 'give exactly one of base (fixed) and placement = "below-4g"')
    return base, placement


def range_of(r: Reader, base_key: str, end_key: str) -> Range | None:
    """``[base, end)`` from two optional keys (both or neither)."""
    base, end = r.get(base_key, address, None), r.get(end_key, address, None)
    if base is None and end is None:
        return None
    if base is None or end is None:
        raise r._fail(
            base_key if base is None else end_key,
            f"missing (give {base_key} and {end_key} together)",
        )
    return _span(r, base_key, base, end_key, end)


def _span(r: Reader, base_key: str, base: int, end_key: str, end: int) -> Range:
    """``[base, end)``; an empty or inverted span is an error naming ``end_key``."""
    if end <= base:
        raise r._fail(end_key, f"{end:#x}: must be > {base_key} {base:#x} (the end is exclusive)")
    return Range(base, end - base)


def gic_spec(g: Reader) -> GicSpec:
    maint = g.get("maintenance_ppi", ppi, None)
    its = g.optional_table("its")
    v2m = g.optional_table("v2m")
    spec = GicSpec(
        version=g.get("version", integer),
        dist=Range(g.get("dist_base", address), g.get("dist_size", region_size)),
        redist_window=range_of(g, "redist_base", "redist_end"),
        redist_stride=g.get("redist_stride", size, GICV3_REDIST_STRIDE),
        maintenance_ppi=maint,
        redist_reg=g.get("redist_reg", one_of(*REDIST_REG_KINDS), "vcpus"),
        redist2_window=range_of(g, "redist2_base", "redist2_end"),
        cpu_if=None
        if "cpu_base" not in g.data
        else Range(g.get("cpu_base", address), g.get("cpu_size", region_size)),
        its=None if its is None else its_range(its, g),
        v2m=None if v2m is None else msi_frame(v2m),
        redist_anchor=g.get("redist_anchor", one_of(*REDIST_ANCHORS), "base"),
        its_below_redist=False if its is None else its.get("below_redist", boolean, False),
        spis=g.get(
            "spis", int_in(1, SPI_MAX + 1, "SPIs 0..spis-1 exist; the binding's last is 987"), None
        ),
    )
    g.used.update(("cpu_base", "cpu_size"))
    for sub in (its, v2m):
        if sub is not None:
            sub.done()
    return spec


def its_range(its: Reader, g: Reader) -> Range:
    """The ITS frame; ``below_redist = true`` pins it right below the redistributor window."""
    if its.get("below_redist", boolean, False):
        if "base" in its.data:
            raise its._fail("base", "an ITS below the redistributors takes no base")
        redist_base = g.get("redist_base", address)
        its_size = its.get("size", region_size)
        if its_size > redist_base:
            raise its._fail(
                "size", f"{its_size:#x} does not fit below redist_base {redist_base:#x}"
            )
        return Range(redist_base - its_size, its_size)
    return Range(its.get("base", address), its.get("size", region_size))


def msi_frame(r: Reader) -> MsiFrame:
    base_intid = r.get("base_intid", intid, None)
    describe = r.get("describe_spis", boolean, True)
    if not describe and base_intid is None:
        raise r._fail("describe_spis", "says how base_intid and num_spis are written; give them")
    return MsiFrame(
        range=Range(r.get("base", address), r.get("size", region_size)),
        base_intid=base_intid,
        num_spis=r.get("num_spis", u32, None),
        describe_spis=describe,
    )


def device_spec(r: Reader) -> DeviceSpec:
    base, placement = _base_or_placement(r)
    kind = r.get("kind", one_of(*DEVICE_KINDS))
    d = DeviceSpec(
        tag=r.get("tag", text),
        kind=kind,
        base=base,
        size=r.get("size", region_size),
        spi=r.get("spi", spi, None),
        trigger=r.get("trigger", trigger, Trigger.LEVEL_HIGH),
        align=r.get("align", size, PAGE_SIZE),
        placement=placement,
        power_key=r.get("power_key", u32, None),
        power_pin=r.get("power_pin", u32, 3),
        ppi=r.get("ppi", ppi, None),
        clock_hz=r.get("clock_hz", u32, None),
        timeout_sec=r.get("timeout_sec", u32, None),
        shared_spi=r.get("shared_spi", boolean, False),
    )
    if d.power_key is not None and kind != PL061.name:
        raise r._fail("power_key", "only a pl061 GPIO controller has a power button")
    if d.ppi is not None and d.spi is not None:
        raise r._fail("ppi", "a device interrupts through an SPI or a PPI, not both")
    if d.shared_spi and d.spi is None:
        raise r._fail("shared_spi", "only a device with an spi can share it")
    r.done()
    return d


NO_VIRTIO = VirtioSpec(None, 0x200, 0, Spi(0), Trigger.EDGE_RISING, placement="none")


def virtio_spec(v: Reader) -> VirtioSpec:
    base, placement = _base_or_placement(v)
    first_spi = v.get("first_spi", spi)
    slots = v.get("slots", int_in(0, SPI_MAX + 1, "one SPI per transport"))
    last = first_spi.number + slots - 1
    if last > SPI_MAX:
        raise v._fail(
            "slots",
            f"{slots}: slot {slots - 1} would get SPI {last}, past the binding's last SPI "
            f"{SPI_MAX} (first_spi {first_spi.number} + slots - 1 must be <= {SPI_MAX})",
        )
    return VirtioSpec(
        base=base,
        placement=placement,
        stride=v.get("stride", virtio_stride),
        slots=slots,
        first_spi=first_spi,
        trigger=v.get("trigger", trigger),
        dma_coherent=v.get("dma_coherent", boolean, True),
        shared_spi=v.get("shared_spi", boolean, False),
    )


def pcie_spec(r: Reader) -> PcieSpec:
    """The ``[pcie]`` host bridge; windows as ``<name>_base``/``<name>_end`` pairs."""
    first, last = r.get("bus_range", bus_range, (0, 255))
    base, end = r.get("config_base", address), r.get("config_end", address)
    spec = PcieSpec(
        compatible=r.get("compatible", one_of(*PCIE_COMPATIBLES)),
        config=_span(r, "config_base", base, "config_end", end),
        bus_first=first,
        bus_last=last,
        io=range_of(r, "io_base", "io_end"),
        mmio32=range_of(r, "mmio32_base", "mmio32_end"),
        mmio64=range_of(r, "mmio64_base", "mmio64_end"),
        prefetchable64=r.get("mmio64_prefetchable", boolean, False),
        first_spi=r.get("first_spi", spi, None),
        msi=r.get("msi", one_of(*MSI_STYLES), "none"),
        domain=r.get("domain", u32, 0),
        unit_address=r.get("unit_address", address, None),
        virtio=r.get("virtio", one_of(*VIRTIO_TRANSPORTS), "mmio"),
        intx=r.get("intx", one_of(*INTX_STYLES), "swizzle"),
        intx_first_slot=r.get("intx_first_slot", int_in(0, SLOTS - 1, "a device number"), 0),
        intx_slots=r.get("intx_slots", int_in(1, SLOTS, "device numbers"), INTX_SLOTS),
        node_name=r.get("node_name", one_of(*NODE_NAMES), "pcie"),
        mmio64_after_ram=after_ram(r),
    )
    r.done()
    return spec


def after_ram(r: Reader) -> AfterRam | None:
    """``mmio64_after_ram`` (the gap from RAM's end), ``mmio64_floor`` and
    ``mmio64_below_top``: a 64-bit window that follows RAM."""
    gap = r.get("mmio64_after_ram", size, None)
    floor, top = r.get("mmio64_floor", address, None), r.get("mmio64_below_top", size, None)
    if gap is None:
        for key, value in (("mmio64_floor", floor), ("mmio64_below_top", top)):
            if value is not None:
                raise r._fail(key, "applies to a window after RAM only (give mmio64_after_ram)")
        return None
    return AfterRam(gap, floor or 0, top or 0)


def hole(r: Reader) -> Region:
    h = Region(r.get("tag", text), Range(r.get("base", address), r.get("size", region_size)))
    r.done()
    return h


def parse_template(data: dict[str, Any], path: str = "<template>") -> Template:
    top = Reader(data, "", path)
    m = top.table("machine")
    timer = top.table("timer")
    g = top.table("gic")
    u = top.table("uart")
    v = top.optional_table("virtio")
    d = top.table("dram")
    b = top.table("boot")
    pmu = top.optional_table("pmu")
    irq = top.optional_table("irq")
    pcie = top.optional_table("pcie")
    gic = gic_spec(g)
    if gic.version not in (2, 3):
        raise TemplateError(f"{path}: gic.version: {shown(gic.version)}: is not supported (2 or 3)")
    virtio = NO_VIRTIO if v is None else virtio_spec(v)
    reserved = []
    for r in top.tables("reserved"):
        reserved.append(
            Region(
                r.get("tag", text),
                Range(r.get("base", address), r.get("size", region_size)),
                align=r.get("align", size, 4096),
            )
        )
        r.done()
    rules = []
    for r in top.tables("rule"):
        rules.append(Rule(r.get("kind", text), r.get("lower", text), r.get("upper", text)))
        r.done()
    t = Template(
        name=top.get("name", text),
        description=top.get("description", text, ""),
        source=top.get("source", text, ""),
        vmm=top.get("vmm", text, ""),
        model=m.get("model", dt_text),
        compatible=m.get("compatible", strings),
        max_vcpus=m.get("max_vcpus", integer),
        psci_compatible=m.get("psci_compatible", strings),
        psci_method=m.get("psci_method", text),
        timer_ppis=timer.get("ppis", ppis),
        timer_compatible=timer.get("compatible", strings, ("arm,armv8-timer",)),
        timer_names=timer.get("names", strings, ()),
        cpu_compatible=m.get("cpu_compatible", dt_text, "arm,armv8"),
        cpu_map=m.get("cpu_map", boolean, False),
        address_width=m.get(
            "address_width",
            int_in(MIN_ADDRESS_WIDTH, MAX_ADDRESS_WIDTH, "guest physical address bits"),
            None,
        ),
        pmu=None
        if pmu is None
        else PmuSpec(pmu.get("ppi", ppi), pmu.get("trigger", trigger, Trigger.LEVEL_HIGH)),
        devices=tuple(device_spec(r) for r in top.tables("device")),
        ram_holes=tuple(hole(r) for r in d.tables("hole")),
        timer_trigger=timer.get("trigger", trigger),
        gic=gic,
        uart=UartSpec(
            base=u.get("base", address),
            size=u.get("size", region_size),
            spi=u.get("spi", spi),
            trigger=u.get("trigger", trigger),
            kind=u.get("kind", one_of(*UART_KINDS), "pl011"),
        ),
        virtio=virtio,
        dram=_span(d, "base", d.get("base", address), "max_end", d.get("max_end", address)),
        boot=BootSpec(
            kernel_offset=b.get("kernel_offset", size),
            initrd_offset=b.get("initrd_offset", size),
            fdt_max_size=b.get("fdt_max_size", size),
            initrd_gap=b.get("initrd_gap", size, BootSpec.DEFAULT_INITRD_GAP),
            dtb=b.get("dtb", policy(DTB_POLICIES), "top-of-ram"),
            initrd=b.get("initrd", policy(INITRD_POLICIES), "preferred"),
            kernel=b.get("kernel", policy(KERNEL_POLICIES), "ram-offset"),
        ),
        reserved=tuple(reserved),
        rules=tuple(rules),
        pcie=None if pcie is None else pcie_spec(pcie),
        uart_clock_hz=u.get(
            "clock_hz", int_in(1, U32_MAX, "clock-frequency is one 32-bit cell"), 24_000_000
        ),
        path=path,
        ram_piece_align=d.get("piece_align", alignment, None),
        irq_order=() if irq is None else irq.get("order", strings),
        irq_first=0 if irq is None else irq.get("first_spi", spi).number,
    )
    for reader in (top, m, timer, g, u, d, b, *(r for r in (v, pmu, irq) if r is not None)):
        reader.done()
    if t.psci_method not in ("hvc", "smc"):
        raise TemplateError(
            f"{path}: machine.psci_method: {shown(t.psci_method)}: is not hvc or smc"
        )
    if not t.max_vcpus >= 1:
        raise TemplateError(f"{path}: machine.max_vcpus: {shown(t.max_vcpus)}: must be >= 1")
    return t
