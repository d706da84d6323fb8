"""Loading layout templates (TOML data files) into checked :class:`Template` values.

Built-in templates live in ``templates/`` at the top of the source tree and are
shipped inside the wheel as ``fdtgen/templates``. A template name containing a
path separator or ending in ``.toml`` is read from that file instead. Every
template, built-in or not, passes :func:`fdtgen.layout.check_template`.

A region may give ``placement = "below-4g"`` instead of a ``base``: the loader
places it with :mod:`fdtgen.allocator` (top-down below 4 GiB, around every
pinned region and DRAM hole, before RAM) and, where it lands inside the DRAM
window, RAM is split around it, as openvmm places its virtio-mmio block.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from .errors import IrqError, LayoutError, TemplateError
from .irq import Intid, Ppi, Spi, Trigger
from .layout import (
    DEVICE_KINDS,
    PAGE_SIZE,
    PLACEMENTS,
    REDIST_ANCHORS,
    REDIST_REG_KINDS,
    UART_KINDS,
    BootSpec,
    DeviceSpec,
    GicSpec,
    MsiFrame,
    PmuSpec,
    Range,
    Region,
    Rule,
    Template,
    UartSpec,
    VirtioSpec,
    check_template,
)
from .units import U64_MAX, parse_size

T = TypeVar("T")


def templates_dir() -> Path:
    """The directory of built-in templates, installed or in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise TemplateError(f"built-in templates not found next to {here}")


def builtin_names() -> list[str]:
    return sorted(p.stem for p in templates_dir().glob("*.toml"))


def load_template(name_or_path: str) -> Template:
    """A built-in template by name, or a template file by path."""
    if "/" in name_or_path or name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise TemplateError(f"template: file {name_or_path!r} does not exist")
        return _load_file(str(path.resolve()))
    path = templates_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        raise TemplateError(
            f"template: {name_or_path!r} is not a built-in template "
            f"(built-in: {', '.join(builtin_names())}; or give a path to a .toml file)"
        )
    return _load_file(str(path))


@lru_cache(maxsize=64)
def _load_file(path: str) -> Template:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise TemplateError(f"template {path}: not valid TOML: {e}") from None
    except OSError as e:
        raise TemplateError(f"template {path}: cannot read: {e.strerror}") from None
    try:
        t = parse_template(data, path)
    except (LayoutError, IrqError) as e:  # a Range or Spi built from the file's numbers
        raise TemplateError(f"template {path}: {e}") from None
    t = place_dynamic(t)
    check_template(t)
    return t


def place_dynamic(t: Template) -> Template:
    """Give every ``below-4g`` region its address; RAM is split around it.

    The placement runs before RAM and depends only on the template, so it is
    the same for every machine built from it.
    """
    from .allocator import Allocator, Placement

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
        raise TemplateError(f"template {t.path or t.name}: {e}") from None
    where = {p.tag: p.range for p in placed}
    holes = [
        Region(f"{tag}-gap", where[tag]) for tag, _, _ in dynamic if where[tag].overlaps(t.dram)
    ]
    return dataclasses.replace(
        t,
        virtio=dataclasses.replace(t.virtio, base=where["virtio"].base)
        if "virtio" in where
        else t.virtio,
        devices=tuple(
            dataclasses.replace(d, base=where[d.tag].base) if d.base is None else d
            for d in t.devices
        ),
        ram_holes=tuple(sorted((*t.ram_holes, *holes), key=lambda h: (h.range, h.tag))),
    )


class _Reader:
    """Typed access to one TOML table, with errors naming the key path."""

    def __init__(self, data: dict[str, Any], where: str, path: str) -> None:
        self.data, self.where, self.path = data, where, path
        self.used: set[str] = set()

    def _fail(self, key: str, msg: str) -> TemplateError:
        return TemplateError(f"template {self.path}: {self.where}{key}: {msg}")

    def get(self, key: str, conv: Callable[[Any], T], default: Any = ...) -> T:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self._fail(key, "missing")
            return default  # type: ignore[no-any-return]
        try:
            return conv(self.data[key])
        except (ValueError, TypeError, IrqError, LayoutError) as e:
            raise self._fail(key, f"{self.data[key]!r}: {e}") from None

    def table(self, key: str) -> _Reader:
        self.used.add(key)
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self._fail(key, "missing table" if value is None else "must be a table")
        return _Reader(value, f"{self.where}{key}.", self.path)

    def optional_table(self, key: str) -> _Reader | None:
        self.used.add(key)
        return None if key not in self.data else self.table(key)

    def tables(self, key: str) -> list[_Reader]:
        self.used.add(key)
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(key, "must be an array of tables")
        return [_Reader(v, f"{self.where}{key}[{i}].", self.path) for i, v in enumerate(value)]

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise self._fail(extra[0], "unknown key")


def size(v: Any) -> int:
    n = parse_size(v) if isinstance(v, str) else v
    if type(n) is not int or not 0 <= n <= U64_MAX:
        raise ValueError("expected a 64-bit byte count (int or string like '64KiB')")
    return n


def address(v: Any) -> int:
    return size(v)


def text(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("expected a string")
    return v


def strings(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not v or not all(isinstance(s, str) for s in v):
        raise TypeError("expected a non-empty list of strings")
    return tuple(v)


def integer(v: Any) -> int:
    if type(v) is not int:
        raise TypeError("expected an integer")
    return v


def trigger(v: Any) -> Trigger:
    return Trigger.parse(text(v))


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError("expected true or false")
    return v


def one_of(*choices: str) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if text(v) not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return str(v)

    return conv


def _base_or_placement(r: _Reader) -> tuple[int | None, str]:
    """A region's ``base``, or ``placement = "below-4g"`` for the loader to place it."""
    placement = r.get("placement", one_of(*PLACEMENTS), "fixed")
    base = r.get("base", address, None)
    if (base is None) != (placement != "fixed"):
        raise r._fail("base", 'give exactly one of base (fixed) and placement = "below-4g"')
    return base, placement


def range_of(r: _Reader, base_key: str, end_key: str) -> Range | None:
    """``[base, end)`` from two optional keys (both or neither)."""
    base, end = r.get(base_key, address, None), r.get(end_key, address, None)
    if base is None and end is None:
        return None
    if base is None or end is None:
        raise r._fail(
            base_key if base is None else end_key,
            f"missing (give {base_key} and {end_key} together)",
        )
    return Range(base, end - base)


def gic_spec(g: _Reader) -> GicSpec:
    maint = g.get("maintenance_ppi", integer, None)
    its = g.optional_table("its")
    v2m = g.optional_table("v2m")
    spec = GicSpec(
        version=g.get("version", integer),
        dist=Range(g.get("dist_base", address), g.get("dist_size", size)),
        redist_window=range_of(g, "redist_base", "redist_end"),
        redist_stride=g.get("redist_stride", size, 128 * 1024),
        maintenance_ppi=None if maint is None else Ppi(maint),
        redist_reg=g.get("redist_reg", one_of(*REDIST_REG_KINDS), "vcpus"),
        redist2_window=range_of(g, "redist2_base", "redist2_end"),
        cpu_if=None
        if "cpu_base" not in g.data
        else Range(g.get("cpu_base", address), g.get("cpu_size", size)),
        its=None if its is None else its_range(its, g),
        v2m=None if v2m is None else msi_frame(v2m),
        redist_anchor=g.get("redist_anchor", one_of(*REDIST_ANCHORS), "base"),
        its_below_redist=False if its is None else its.get("below_redist", boolean, False),
    )
    g.used.update(("cpu_base", "cpu_size"))
    for sub in (its, v2m):
        if sub is not None:
            sub.done()
    return spec


def its_range(its: _Reader, g: _Reader) -> Range:
    """The ITS frame; ``below_redist = true`` pins it right below the redistributor window."""
    if its.get("below_redist", boolean, False):
        if "base" in its.data:
            raise its._fail("base", "an ITS below the redistributors takes no base")
        redist_base = g.get("redist_base", address)
        its_size = its.get("size", size)
        if its_size > redist_base:
            raise its._fail(
                "size", f"{its_size:#x} does not fit below redist_base {redist_base:#x}"
            )
        return Range(redist_base - its_size, its_size)
    return Range(its.get("base", address), its.get("size", size))


def msi_frame(r: _Reader) -> MsiFrame:
    base_intid = r.get("base_intid", integer, None)
    return MsiFrame(
        range=Range(r.get("base", address), r.get("size", size)),
        base_intid=None if base_intid is None else Intid(base_intid),
        num_spis=r.get("num_spis", integer, None),
    )


def device_spec(r: _Reader) -> DeviceSpec:
    base, placement = _base_or_placement(r)
    spi = r.get("spi", integer, None)
    kind = r.get("kind", one_of(*DEVICE_KINDS))
    d = DeviceSpec(
        tag=r.get("tag", text),
        kind=kind,
        base=base,
        size=r.get("size", size),
        spi=None if spi is None else Spi(spi),
        trigger=r.get("trigger", trigger, Trigger.LEVEL_HIGH),
        align=r.get("align", size, PAGE_SIZE),
        placement=placement,
        power_key=r.get("power_key", integer, None),
        power_pin=r.get("power_pin", integer, 3),
    )
    if d.power_key is not None and kind != "pl061":
        raise r._fail("power_key", "only a pl061 GPIO controller has a power button")
    r.done()
    return d


NO_VIRTIO = VirtioSpec(None, 0x200, 0, Spi(0), Trigger.EDGE_RISING, placement="none")


def virtio_spec(v: _Reader) -> VirtioSpec:
    base, placement = _base_or_placement(v)
    return VirtioSpec(
        base=base,
        placement=placement,
        stride=v.get("stride", size),
        slots=v.get("slots", integer),
        first_spi=Spi(v.get("first_spi", integer)),
        trigger=v.get("trigger", trigger),
        dma_coherent=v.get("dma_coherent", boolean, True),
    )


def hole(r: _Reader) -> Region:
    h = Region(r.get("tag", text), Range(r.get("base", address), r.get("size", size)))
    r.done()
    return h


def parse_template(data: dict[str, Any], path: str = "<template>") -> Template:
    top = _Reader(data, "", path)
    m = top.table("machine")
    timer = top.table("timer")
    g = top.table("gic")
    u = top.table("uart")
    v = top.optional_table("virtio")
    d = top.table("dram")
    b = top.table("boot")
    pmu = top.optional_table("pmu")
    gic = gic_spec(g)
    if gic.version not in (2, 3):
        raise TemplateError(
            f"template {path}: gic.version: {gic.version} is not supported (2 or 3)"
        )
    virtio = NO_VIRTIO if v is None else virtio_spec(v)
    reserved = []
    for r in top.tables("reserved"):
        reserved.append(
            Region(
                r.get("tag", text),
                Range(r.get("base", address), r.get("size", size)),
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
        model=m.get("model", text),
        compatible=m.get("compatible", strings),
        max_vcpus=m.get("max_vcpus", integer),
        psci_compatible=m.get("psci_compatible", strings),
        psci_method=m.get("psci_method", text),
        timer_ppis=tuple(Ppi(n) for n in timer.get("ppis", lambda x: [integer(i) for i in x])),
        timer_compatible=timer.get("compatible", strings, ("arm,armv8-timer",)),
        timer_names=timer.get("names", strings, ()),
        cpu_compatible=m.get("cpu_compatible", text, "arm,armv8"),
        cpu_map=m.get("cpu_map", boolean, False),
        address_width=m.get("address_width", integer, None),
        pmu=None
        if pmu is None
        else PmuSpec(Ppi(pmu.get("ppi", integer)), pmu.get("trigger", trigger, Trigger.LEVEL_HIGH)),
        devices=tuple(device_spec(r) for r in top.tables("device")),
        ram_holes=tuple(hole(r) for r in d.tables("hole")),
        timer_trigger=timer.get("trigger", trigger),
        gic=gic,
        uart=UartSpec(
            base=u.get("base", address),
            size=u.get("size", size),
            spi=Spi(u.get("spi", integer)),
            trigger=u.get("trigger", trigger),
            kind=u.get("kind", one_of(*UART_KINDS), "pl011"),
        ),
        virtio=virtio,
        dram=Range(d.get("base", address), d.get("max_end", address) - d.get("base", address)),
        boot=BootSpec(
            kernel_offset=b.get("kernel_offset", size),
            initrd_offset=b.get("initrd_offset", size),
            fdt_max_size=b.get("fdt_max_size", size),
            initrd_gap=b.get("initrd_gap", size, BootSpec.DEFAULT_INITRD_GAP),
        ),
        reserved=tuple(reserved),
        rules=tuple(rules),
        uart_clock_hz=u.get("clock_hz", integer, 24_000_000),
        path=path,
    )
    for reader in (top, m, timer, g, u, d, b, *(r for r in (v, pmu) if r is not None)):
        reader.done()
    if t.psci_method not in ("hvc", "smc"):
        raise TemplateError(
            f"template {path}: machine.psci_method: {t.psci_method!r} is not hvc or smc"
        )
    if not t.max_vcpus >= 1:
        raise TemplateError(f"template {path}: machine.max_vcpus: {t.max_vcpus} must be >= 1")
    return t
