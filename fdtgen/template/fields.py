"""Typed reading of a template's TOML tables: one converter per kind of value,
and errors that name the template file, the key path and the rule broken.

Addresses and byte counts (converters marked with ``_hex``) show integers in
hex in their errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fdtgen.errors import IrqError, LayoutError, TemplateError, shown
from fdtgen.irq import Intid, Ppi, Spi
from fdtgen.spec import PAGE_SIZE, VIRTIO_MMIO_MIN_SIZE, Trigger
from fdtgen.template.model import is_policy
from fdtgen.units import U32_MAX, U64_MAX, is_pow2, parse_size

T = TypeVar("T")


class Reader:
    """Typed access to one TOML table, with errors naming the key path."""

    def __init__(self, data: dict[str, Any], where: str, path: str) -> None:
        self.data, self.where, self.path = data, where, path
        self.used: set[str] = set()

    def _fail(self, key: str, msg: str) -> TemplateError:
        return TemplateError(f"{self.path}: {self.where}{key}: {msg}")

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

    def table(self, key: str) -> Reader:
        self.used.add(key)
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self._fail(
                key, "missing table" + self._typo_of(key) if value is None else "must be a table"
            )
        return Reader(value, f"{self.where}{key}.", self.path)

    def optional_table(self, key: str) -> Reader | None:
        self.used.add(key)
        return None if key not in self.data else self.table(key)

    def tables(self, key: str) -> list[Reader]:
        self.used.add(key)
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(key, "must be an array of tables")
        return [Reader(v, f"{self.where}{key}[{i}].", self.path) for i, v in enumerate(value)]

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
    """A rejected value as an error shows it: addresses in hex, long values cut short."""
    return shown(v, hex_from=0 if conv in _HEX else 0x10000)


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
def virtio_stride(v: Any) -> int:
    """Bytes from one virtio-mmio transport to the next: room for its register block."""
    n = size(v)
    if n < VIRTIO_MMIO_MIN_SIZE or not is_pow2(n):
        raise ValueError(
            f"must be a power of 2 >= {VIRTIO_MMIO_MIN_SIZE:#x} (the virtio-mmio register block)"
        )
    return n


@_hex
def alignment(v: Any) -> int:
    """An alignment: a power of two of at least a page."""
    n = size(v)
    if n < PAGE_SIZE or not is_pow2(n):
        raise ValueError(f"must be a power of 2 >= {PAGE_SIZE:#x}")
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


def policy(choices: tuple[str, ...]) -> Callable[[Any], str]:
    """One of ``choices`` (:func:`fdtgen.template.model.is_policy`)."""
    return lambda v: is_policy(text(v), choices)
