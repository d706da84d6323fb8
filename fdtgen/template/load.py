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
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from fdtgen.errors import IrqError, LayoutError, TemplateError
from fdtgen.files import file_kind, read_regular
from fdtgen.irq import SPI_MAX, Intid, Ppi, Spi, Trigger
from fdtgen.ranges import Range, Region, by_address
from fdtgen.spec import GICV3_REDIST_STRIDE, MAX_ADDRESS_WIDTH, MIN_ADDRESS_WIDTH, PAGE_SIZE
from fdtgen.template.model import (
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
from fdtgen.template.proofs import check_template
from fdtgen.template.registry import DEVICE_KINDS, PL061, UART_KINDS
from fdtgen.units import U32_MAX, U64_MAX, MiB, parse_size

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
    """
    name = os.fspath(name_or_path)
    if "/" in name or name.endswith(".toml"):
        path = Path(name)
        if not path.exists():
            raise TemplateError(f"template: file {name!r} does not exist")
        resolved = path.resolve()
        st = resolved.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read; /dev/zero never ends
            raise TemplateError(f"template {name!r}: not a regular file ({file_kind(st.st_mode)})")
        return _load_file(str(resolved), st.st_size, st.st_mtime_ns)
    return _load_builtin(name)


@lru_cache(maxsize=64)
def _load_builtin(name: str) -> Template:
    names = builtin_names()
    if name not in names:
        raise TemplateError(
            f"template: {name!r} is not a built-in template "
            f"(built-in: {', '.join(names)}; or give a path to a .toml file)"
        )
    source = templates_dir() / f"{name}.toml"
    return _parsed(source.read_text(encoding="utf-8"), str(source))


@lru_cache(maxsize=64)
def _load_file(path: str, size: int, mtime_ns: int) -> Template:
    """The template file at ``path`` as of ``size`` and ``mtime_ns`` (the cache key)."""
    raw = read_regular(path, f"template {path}", TEMPLATE_MAX_SIZE, TemplateError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TemplateError(
            f"template {path}: not UTF-8 text: {e.reason} at byte {e.start}"
        ) from None
    return _parsed(text, path)


def _parsed(text: str, path: str) -> Template:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TemplateError(f"template {path}: not valid TOML: {e}") from None
    return _checked(data, path)


def _checked(data: dict[str, Any], path: str) -> Template:
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
        raise TemplateError(f"template {t.path or t.name}: {e}") from None
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


class _Reader:
    """Typed access to one TOML table, with errors naming the key path."""

    def __init__(self, data: dict[str, Any], where: str, path: str) -> None:
        self.data, self.where, self.path = data, where, path
        self.used: set[str] = set()

    def _fail(self, key: str, msg: str) -> TemplateError:
        return TemplateError(f"template {self.path}: {self.where}{key}: {msg}")

    def _typo_of(self, key: str) -> str:
        """`` (is 'dist_bas' a typo of it?)`` when an unread key in the table is close."""
        import difflib

        close = difflib.get_close_matches(key, sorted(set(self.data) - self.used), n=1, cutoff=0.6)
        return f" (is {close[0]!r} a typo of it?)" if close else ""

    def get(self, key: str, conv: Callable[[Any], T], default: Any = ...) -> T:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self._fail(key, "missing" + self._typo_of(key))
            return default  # type: ignore[no-any-return]
        raw = self.data[key]
        try:
            return conv(raw)
        except (ValueError, TypeError, IrqError, LayoutError) as e:
            raise self._fail(key, f"{_shown(raw, conv)}: {e}") from None

    def table(self, key: str) -> _Reader:
        self.used.add(key)
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self._fail(
                key, "missing table" + self._typo_of(key) if value is None else "must be a table"
            )
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
            import difflib

            close = difflib.get_close_matches(extra[0], sorted(self.used), n=1, cutoff=0.6)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else (f"; valid keys: {', '.join(sorted(self.used))}" if self.used else "")
            )
            raise self._fail(extra[0], "unknown key" + hint)


_HEX: set[Callable[[Any], Any]] = set()


def _hex(conv: Callable[[Any], T]) -> Callable[[Any], T]:
    """Mark a converter of addresses and byte counts: errors show its integers in hex."""
    _HEX.add(conv)
    return conv


def _shown(v: Any, conv: Callable[[Any], Any]) -> str:
    """A rejected value as an error shows it: addresses and large numbers in hex."""
    if type(v) is int and (conv in _HEX or abs(v) > 0xFFFF):
        return f"{v:#x}" if v >= 0 else f"-{-v:#x}"
    return repr(v)


@_hex
def size(v: Any) -> int:
    n = parse_size(v) if isinstance(v, str) else v
    if type(n) is not int or not 0 <= n <= U64_MAX:
        raise ValueError("expected a 64-bit byte count (int or string like '64KiB')")
    return n


@_hex
def region_size(v: Any) -> int:
    """The size of a region the template pins: a range holds at least one byte."""
    n = size(v)
    if n == 0:
        raise ValueError("must be > 0 (a region holds at least one byte)")
    return n


@_hex
def address(v: Any) -> int:
    return size(v)


def text(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("expected a string")
    return v


def dt_text(v: Any) -> str:
    """A string the device tree carries: NUL-terminated there, so none inside."""
    s = text(v)
    if "\0" in s:
        raise ValueError(
            f"contains a NUL byte at offset {s.index(chr(0))} "
            "(a device-tree string ends at its first NUL)"
        )
    return s


def strings(v: Any) -> tuple[str, ...]:
    """A device-tree string list (``compatible``): each string without a NUL."""
    if not isinstance(v, list) or not v or not all(isinstance(s, str) for s in v):
        raise TypeError("expected a non-empty list of strings")
    for i, s in enumerate(v):
        if "\0" in s:
            raise ValueError(
                f"string {i} contains a NUL byte at offset {s.index(chr(0))} "
                "(a device-tree string ends at its first NUL)"
            )
    return tuple(v)


def integer(v: Any) -> int:
    if type(v) is not int:
        raise TypeError("expected an integer")
    return v


def int_in(lo: int, hi: int, why: str) -> Callable[[Any], int]:
    """An integer in ``lo..hi``; ``why`` names the rule."""

    def conv(v: Any) -> int:
        n = integer(v)
        if not lo <= n <= hi:
            shown = (lambda x: f"{x:#x}") if hi > 0xFFFF else str
            raise ValueError(f"must be in {shown(lo)}..{shown(hi)} ({why})")
        return n

    return conv


u32 = int_in(0, U32_MAX, "it becomes one 32-bit device-tree cell")


def spi(v: Any) -> Spi:
    return Spi(integer(v))


def ppi(v: Any) -> Ppi:
    return Ppi(integer(v))


def intid(v: Any) -> Intid:
    return Intid(integer(v))


def ppis(v: Any) -> tuple[Ppi, ...]:
    if not isinstance(v, list) or not all(type(n) is int for n in v):
        raise TypeError("expected a list of integers")
    return tuple(Ppi(n) for n in v)


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
    return _span(r, base_key, base, end_key, end)


def _span(r: _Reader, base_key: str, base: int, end_key: str, end: int) -> Range:
    """``[base, end)``; an empty or inverted span is an error naming ``end_key``."""
    if end <= base:
        raise r._fail(end_key, f"{end:#x}: must be > {base_key} {base:#x} (the end is exclusive)")
    return Range(base, end - base)


def gic_spec(g: _Reader) -> GicSpec:
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
        its_size = its.get("size", region_size)
        if its_size > redist_base:
            raise its._fail(
                "size", f"{its_size:#x} does not fit below redist_base {redist_base:#x}"
            )
        return Range(redist_base - its_size, its_size)
    return Range(its.get("base", address), its.get("size", region_size))


def msi_frame(r: _Reader) -> MsiFrame:
    return MsiFrame(
        range=Range(r.get("base", address), r.get("size", region_size)),
        base_intid=r.get("base_intid", intid, None),
        num_spis=r.get("num_spis", u32, None),
    )


def device_spec(r: _Reader) -> DeviceSpec:
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
    )
    if d.power_key is not None and kind != PL061.name:
        raise r._fail("power_key", "only a pl061 GPIO controller has a power button")
    r.done()
    return d


NO_VIRTIO = VirtioSpec(None, 0x200, 0, Spi(0), Trigger.EDGE_RISING, placement="none")


def virtio_spec(v: _Reader) -> VirtioSpec:
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
        stride=v.get("stride", size),
        slots=slots,
        first_spi=first_spi,
        trigger=v.get("trigger", trigger),
        dma_coherent=v.get("dma_coherent", boolean, True),
    )


def hole(r: _Reader) -> Region:
    h = Region(r.get("tag", text), Range(r.get("base", address), r.get("size", region_size)))
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
        ),
        reserved=tuple(reserved),
        rules=tuple(rules),
        uart_clock_hz=u.get(
            "clock_hz", int_in(1, U32_MAX, "clock-frequency is one 32-bit cell"), 24_000_000
        ),
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
