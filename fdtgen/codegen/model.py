"""The language-neutral pieces of generated code: typed constants, proof expressions.

A proof is an :class:`Op` tree over constant names and numbers;
:func:`evaluate` gives its value with the compiler's rules (an arithmetic
step outside ``0..2^64-1`` is an error), so fdtgen knows a proof holds before
it writes the code that makes the compiler check it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from fdtgen.errors import LayoutError
from fdtgen.ranges import Range
from fdtgen.spec import PPI_INTID_BASE, PPI_MAX, SPI_INTID_BASE, SPI_MAX, Trigger
from fdtgen.template.model import Template
from fdtgen.units import U64_MAX, fmt_size

U64 = "u64"
U32 = "u32"
_TYPE_MAX = {U64: U64_MAX, U32: 0xFFFF_FFFF}


class AllOnes(NamedTuple):
    """``u64::MAX``: the one literal a proof needs a type for."""


class Op(NamedTuple):
    """``a op b``: arithmetic (``+ - * % >>``), comparison, or ``&&``/``||``."""

    op: str
    a: Expr
    b: Expr


Expr = str | int | AllOnes | Op  # a str is a constant's name


def _binary(op: str) -> Callable[[Expr, Expr], Op]:
    def make(a: Expr, b: Expr) -> Op:
        return Op(op, a, b)

    return make


class E:
    """Expression makers: ``E.le(a, b)`` is ``a <= b``."""

    add, sub, mul = (
        staticmethod(_binary("+")),
        staticmethod(_binary("-")),
        staticmethod(_binary("*")),
    )
    mod, shr = staticmethod(_binary("%")), staticmethod(_binary(">>"))
    div, bitand = staticmethod(_binary("/")), staticmethod(_binary("&"))
    eq, ne, lt = (
        staticmethod(_binary("==")),
        staticmethod(_binary("!=")),
        staticmethod(_binary("<")),
    )
    le, ge = staticmethod(_binary("<=")), staticmethod(_binary(">="))
    and_, or_ = staticmethod(_binary("&&")), staticmethod(_binary("||"))


@dataclass(frozen=True, slots=True)
class Const:
    """``name: ty = value``, with its doc comment (units and where it comes from)."""

    name: str
    value: int
    ty: str
    doc: str


@dataclass(frozen=True, slots=True)
class Proof:
    """A compile-time assertion and the message the compiler prints when it fails."""

    expr: Expr
    message: str


@dataclass(frozen=True, slots=True)
class Function:
    """``name(arg)``: a u64 worked out from constants and ``arg``, which runs
    1..``limit`` (a constant's name) — a ``const fn`` in Rust, a macro in C."""

    name: str  # lower case: gic_redist_base (C upper-cases it)
    arg: str
    limit: str
    body: Expr  # over constant names and ``arg``
    doc: str


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    consts: tuple[Const, ...]
    functions: tuple[Function, ...] = ()


@dataclass(frozen=True, slots=True)
class Module:
    """What one generated file holds."""

    template: Template
    command: str  # the fdtgen command that regenerates it
    notes: tuple[str, ...]
    sections: tuple[Section, ...]
    proofs: tuple[Proof, ...]

    def consts(self) -> Iterator[Const]:
        for s in self.sections:
            yield from s.consts


def const_name(tag: str) -> str:
    """The constant stem of a region tag: ``gic-redist2`` -> ``GIC_REDIST2``."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", tag).strip("_").upper()
    if not stem:
        raise LayoutError(f"codegen: region tag {tag!r} has no letter or digit to name it by")
    return f"R_{stem}" if stem[0].isdigit() else stem


def trigger_doc(t: Trigger) -> str:
    """The words for a trigger constant: its value as the DT's type bits."""
    return f"trigger, the type bits of the DT's flags cell: {t.value} = IRQ_TYPE_{t.name}"


TRIGGERS = tuple(int(t) for t in Trigger)
# Linux gic_set_type (irq-gic-v3.c, irq-gic.c) refuses an SPI that is neither.
SPI_TRIGGERS = (int(Trigger.EDGE_RISING), int(Trigger.LEVEL_HIGH))


class Builder:
    """Collects constants (by section) and proofs; a name is given out once."""

    def __init__(self, t: Template, settings: str = "") -> None:
        self.t = t
        self.where = f"template {t.name!r}" + (f" with {settings}" if settings else "")
        self.sections: list[Section] = []
        self.current: list[Const] = []
        self.title = ""
        self.values: dict[str, int] = {}
        self.types: dict[str, str] = {}
        self.proofs: list[Proof] = []
        self.functions: list[Function] = []

    def section(self, title: str) -> None:
        if self.current or self.functions:
            self.sections.append(Section(self.title, tuple(self.current), tuple(self.functions)))
        self.title, self.current, self.functions = title, [], []

    def function(self, name: str, arg: str, limit: str, body: Expr, doc: str) -> None:
        """A function of ``arg`` in 1..``limit``, checked at both ends as proofs are:
        no step of ``body`` leaves 0..2^64-1 for an argument in range."""
        if name.upper() in self.values:
            raise LayoutError(f"codegen: {self.where}: {name.upper()} is also a constant's name")
        for n in (1, self.values[limit]):
            evaluate(body, {**self.values, arg: n})
        self.functions.append(Function(name, arg, limit, body, doc))

    def const(self, name: str, value: int, doc: str, ty: str = U64) -> str:
        if name in self.values:
            raise LayoutError(
                f"codegen: {self.where}: two constants would be named {name}: two region tags "
                "give one name, or a tag gives a name fdtgen uses for something else "
                "(docs/codegen.md, Names); rename the tag"
            )
        if not 0 <= value <= _TYPE_MAX[ty]:
            raise LayoutError(f"codegen: {name} = {value:#x} does not fit a {ty}")
        self.values[name], self.types[name] = value, ty
        self.current.append(Const(name, value, ty, doc))
        return name

    def prove(self, expr: Expr, message: str) -> None:
        self.proofs.append(Proof(expr, message))

    def region(self, tag: str, r: Range, what: str, origin: str, align: int = 1) -> str:
        """``_START``/``_SIZE``/``_END`` of a region, its end and alignment proved."""
        if r.end > U64_MAX:
            raise LayoutError(f"codegen: region {tag!r} {r} ends past what a u64 _END holds")
        n = const_name(tag)
        self.const(f"{n}_START", r.base, f"{what}: start address. Template: {origin}.")
        self.const(f"{n}_SIZE", r.size, f"{what}: size, {size_words(r.size)}.")
        self.const(f"{n}_END", r.end, f"{what}: end address, exclusive.")
        # START < END first: with it, START + SIZE cannot have wrapped (C's arithmetic does).
        self.prove(E.lt(f"{n}_START", f"{n}_END"), f"{tag}: _END is not above _START")
        self.prove(
            E.eq(f"{n}_END", E.add(f"{n}_START", f"{n}_SIZE")), f"{tag}: _END != _START + _SIZE"
        )
        if align > 1:
            self.prove(
                E.eq(E.mod(f"{n}_START", align), 0),
                f"{tag}: start is not aligned to {fmt_size(align)}",
            )
            self.prove(
                E.eq(E.mod(f"{n}_SIZE", align), 0),
                f"{tag}: size is not a multiple of {fmt_size(align)}",
            )
        return n

    def irq(
        self,
        stem: str,
        number: int,
        trigger: Trigger | None,
        ppi: bool,
        doc: str,
        origin: str,
    ) -> None:
        """``_SPI`` (or ``_PPI``), ``_INTID`` and ``_TRIGGER``; ``origin``: the template key."""
        kind, base, top = (
            ("PPI", PPI_INTID_BASE, PPI_MAX) if ppi else ("SPI", SPI_INTID_BASE, SPI_MAX)
        )
        what = f"{doc}: {kind} number (the DT's 2nd cell). Template: {origin}."
        self.const(f"{stem}_{kind}", number, what, U32)
        self.const(f"{stem}_INTID", number + base, f"{doc}: GIC INTID ({kind} + {base}).", U32)
        if trigger is not None:
            allowed = TRIGGERS if ppi else SPI_TRIGGERS
            self.trigger(f"{stem}_TRIGGER", trigger, f"{doc}: {trigger_doc(trigger)}.", allowed)
        self.prove(
            E.eq(f"{stem}_INTID", E.add(f"{stem}_{kind}", base)),
            f"{stem}: INTID != {kind} + {base}",
        )
        self.prove(E.le(f"{stem}_{kind}", top), f"{stem}: {kind} is past the GIC's last ({top})")

    def trigger(
        self, name: str, trigger: Trigger, doc: str, allowed: tuple[int, ...] = TRIGGERS
    ) -> None:
        """A trigger constant, proved to be one of ``allowed`` (an SPI: edge-rising or
        level-high, all Linux's GIC drivers take; a PPI: any of the binding's four)."""
        self.const(name, trigger.value, doc, U32)
        either: Expr = E.eq(name, allowed[0])
        for value in allowed[1:]:
            either = E.or_(either, E.eq(name, value))
        words = ", ".join(f"{v} ({Trigger(v).label})" for v in allowed)
        self.prove(either, f"{name} is not one of {words}")

    def module(self, command: str, notes: tuple[str, ...]) -> Module:
        self.section("")
        for p in self.proofs:
            if evaluate(p.expr, self.values) is not True:
                shown = ", ".join(
                    f"{n} = {self.values[n]:#x}"
                    if self.types[n] == U64
                    else f"{n} = {self.values[n]}"
                    for n in dict.fromkeys(names(p.expr))
                )
                raise LayoutError(f"codegen: {self.where} breaks a proof: {p.message} ({shown})")
        return Module(self.t, command, notes, tuple(self.sections), tuple(self.proofs))


def size_words(size: int) -> str:
    """``64 KiB``; a size no unit divides into a short number, roughly (``about 1.2 TiB``)."""
    exact = fmt_size(size)
    return exact if len(exact.split()[0]) <= 4 else f"about {fmt_size(size, 2)}"


def names(e: Expr) -> list[str]:
    """The constants ``e`` reads, in order."""
    if isinstance(e, str):
        return [e]
    if isinstance(e, Op):
        return names(e.a) + names(e.b)
    return []


def evaluate(e: Expr, values: dict[str, int]) -> int | bool:
    """The value of ``e``; an arithmetic step outside 0..2^64-1 (a compile error) raises."""
    if isinstance(e, str):
        return values[e]
    if isinstance(e, AllOnes):
        return U64_MAX
    if isinstance(e, int):
        return e
    if e.op in ("&&", "||"):  # short-circuit, as C and Rust do: the right side may wrap
        a = evaluate(e.a, values)
        if bool(a) == (e.op == "||"):
            return bool(a)
        return bool(evaluate(e.b, values))
    a, b = evaluate(e.a, values), evaluate(e.b, values)
    result: int | bool
    match e.op:
        case "+":
            result = a + b
        case "-":
            result = a - b
        case "*":
            result = a * b
        case "%" | "/" if b == 0:
            raise LayoutError(f"codegen: {e} divides by zero")
        case "&":
            result = a & b
        case "%":
            result = a % b
        case "/":
            result = a // b
        case ">>":
            result = a >> b if 0 <= b < 64 else -1
        case "==":
            return a == b
        case "!=":
            return a != b
        case "<":
            return a < b
        case "<=":
            return a <= b
        case ">=":
            return a >= b
        case "&&":
            return bool(a) and bool(b)
        case "||":
            return bool(a) or bool(b)
        case _:
            raise ValueError(e.op)
    if not 0 <= result <= U64_MAX:
        raise LayoutError(f"codegen: {e} overflows a u64")
    return result
