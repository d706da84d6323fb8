"""Loading layout templates (TOML data files) into checked :class:`Template` values.

Built-in templates live in ``templates/`` at the top of the source tree and are
shipped inside the wheel as ``fdtgen/templates``. A template name containing a
path separator or ending in ``.toml`` is read from that file instead. Every
template, built-in or not, passes :func:`fdtgen.layout.check_template`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from .errors import IrqError, LayoutError, TemplateError
from .irq import Ppi, Spi, Trigger
from .layout import (
    BootSpec,
    GicSpec,
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
    except LayoutError as e:  # a Range built from the file's numbers was invalid
        raise TemplateError(f"template {path}: {e}") from None
    check_template(t)
    return t


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


def parse_template(data: dict[str, Any], path: str = "<template>") -> Template:
    top = _Reader(data, "", path)
    m = top.table("machine")
    timer = top.table("timer")
    g = top.table("gic")
    u = top.table("uart")
    v = top.table("virtio")
    d = top.table("dram")
    b = top.table("boot")
    maint = g.get("maintenance_ppi", integer, None)
    gic = GicSpec(
        version=g.get("version", integer),
        dist=Range(g.get("dist_base", address), g.get("dist_size", size)),
        redist_window=Range(
            g.get("redist_base", address), g.get("redist_end", address) - g.get("redist_base", address)
        ),
        redist_stride=g.get("redist_stride", size),
        maintenance_ppi=None if maint is None else Ppi(maint),
    )
    if gic.version != 3:
        raise TemplateError(f"template {path}: gic.version: {gic.version} is not supported (3)")
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
        timer_trigger=timer.get("trigger", trigger),
        gic=gic,
        uart=UartSpec(
            base=u.get("base", address),
            size=u.get("size", size),
            spi=Spi(u.get("spi", integer)),
            trigger=u.get("trigger", trigger),
        ),
        virtio=VirtioSpec(
            base=v.get("base", address),
            stride=v.get("stride", size),
            slots=v.get("slots", integer),
            first_spi=Spi(v.get("first_spi", integer)),
            trigger=v.get("trigger", trigger),
            dma_coherent=v.get("dma_coherent", bool, True),
        ),
        dram=Range(d.get("base", address), d.get("max_end", address) - d.get("base", address)),
        boot=BootSpec(
            kernel_offset=b.get("kernel_offset", size),
            initrd_offset=b.get("initrd_offset", size),
            fdt_max_size=b.get("fdt_max_size", size),
        ),
        reserved=tuple(reserved),
        rules=tuple(rules),
        uart_clock_hz=u.get("clock_hz", integer, 24_000_000),
        path=path,
    )
    for reader in (top, m, timer, g, u, v, d, b):
        reader.done()
    if t.psci_method not in ("hvc", "smc"):
        raise TemplateError(f"template {path}: machine.psci_method: {t.psci_method!r} is not hvc or smc")
    if not 1 <= t.max_vcpus:
        raise TemplateError(f"template {path}: machine.max_vcpus: {t.max_vcpus} must be >= 1")
    return t
