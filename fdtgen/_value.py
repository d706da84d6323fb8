"""Frozen, slotted value classes, made with one ``exec`` per class.

``@frozen`` gives a class what ``@dataclass(frozen=True, slots=True)`` gives
it — an ``__init__`` from the annotated fields (defaults allowed, then
``__post_init__`` to validate), ``__repr__``, field-wise ``__eq__`` and
``__hash__``, ``__slots__``, assignment refused after construction, and with
``order=True`` the four comparisons — and :func:`replace` and :func:`fields`
stand in for ``dataclasses.replace`` and ``dataclasses.fields``.

Why not ``dataclasses`` itself: on Python 3.11 it compiles every generated
method with its own ``exec``, rebuilds each class for ``__slots__``, and its
import pulls in ``inspect``. That is about a millisecond per class, and the
CLI defines dozens of value classes before it does any work: most of its cold
start (the benchmark's ``fdtgen build CONFIG`` and ``verify BLOB`` targets).
Here the methods of a class come from one compiled source, so defining one
costs a tenth of that, and the instances behave the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["FrozenInstanceError", "field", "fields", "frozen", "replace"]

T = TypeVar("T")

_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen value (as ``dataclasses.FrozenInstanceError``)."""


class _Field:
    __slots__ = ("default", "compare")

    def __init__(self, default: Any, compare: bool) -> None:
        self.default = default
        self.compare = compare


def field(*, default: Any = _MISSING, compare: bool = True) -> Any:
    """A field's default, or a field left out of ``==``, ``hash`` and ordering."""
    return _Field(default, compare)


def fields(cls_or_value: Any) -> tuple[str, ...]:
    """The field names, in declaration order."""
    return cls_or_value.__value_fields__  # type: ignore[no-any-return]


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of ``obj`` with ``changes`` (validated again, like a new value)."""
    names = obj.__value_fields__  # type: ignore[attr-defined]
    unknown = set(changes) - set(names)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    return type(obj)(**{n: changes[n] if n in changes else getattr(obj, n) for n in names})


@overload
def frozen(cls: type[T], /) -> type[T]: ...
@overload
def frozen(*, order: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: type[T] | None = None, /, *, order: bool = False) -> Any:
    """Make ``cls`` a frozen, slotted value class (``@frozen``, ``@frozen(order=True)``)."""

    def wrap(c: type[T]) -> type[T]:
        return _make(c, order)

    return wrap if cls is None else wrap(cls)


def _make(cls: type[T], order: bool) -> type[T]:
    base_fields: tuple[str, ...] = getattr(cls, "__value_fields__", ())
    if base_fields:
        raise TypeError(f"{cls.__name__}: value classes are not subclassed")
    names: list[str] = []
    defaults: dict[str, Any] = {}
    compared: list[str] = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        default = cls.__dict__.get(name, _MISSING)
        compare = True
        if isinstance(default, _Field):
            default, compare = default.default, default.compare
        if default is _MISSING and defaults:
            raise TypeError(f"{cls.__name__}.{name}: a field without a default follows one with")
        names.append(name)
        if default is not _MISSING:
            defaults[name] = default
        if compare:
            compared.append(name)

    qual = cls.__qualname__
    params = ", ".join(f"{n}=__d_{n}" if n in defaults else n for n in names)
    sets = "".join(f"    __set(self, {n!r}, {n})\n" for n in names)
    post = "    self.__post_init__()\n" if hasattr(cls, "__post_init__") else ""
    mine = "(" + "".join(f"self.{n}, " for n in compared) + ")"
    theirs = "(" + "".join(f"other.{n}, " for n in compared) + ")"
    shown = ", ".join(f"{n}={{self.{n}!r}}" for n in names)
    src = [
        f"def __init__(self, {params}):\n{sets or '    pass'}\n{post}",
        f"def __repr__(self):\n    return f'{qual}({shown})'\n",
        "def __eq__(self, other):\n"
        "    if other.__class__ is self.__class__:\n"
        f"        return {mine} == {theirs}\n"
        "    return NotImplemented\n",
        f"def __hash__(self):\n    return hash({mine})\n",
        "def __setattr__(self, name, value):\n"
        "    raise __Frozen(f'cannot assign to field {name!r}')\n",
        "def __delattr__(self, name):\n    raise __Frozen(f'cannot delete field {name!r}')\n",
        "def __getstate__(self):\n    return "
        + "("
        + "".join(f"self.{n}, " for n in names)
        + ")\n",
        "def __setstate__(self, state):\n"
        f"    for name, item in zip({tuple(names)!r}, state):\n"
        "        __set(self, name, item)\n",
    ]
    if order:
        for op, sym in (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")):
            src.append(
                f"def __{op}__(self, other):\n"
                "    if other.__class__ is self.__class__:\n"
                f"        return {mine} {sym} {theirs}\n"
                "    return NotImplemented\n"
            )
    scope: dict[str, Any] = {
        "__set": object.__setattr__,
        "__Frozen": FrozenInstanceError,
        **{f"__d_{n}": d for n, d in defaults.items()},
    }
    exec("\n".join(src), scope)  # noqa: S102 - generated from the class's own field names

    body = {
        k: v
        for k, v in cls.__dict__.items()
        if k not in names and k not in ("__dict__", "__weakref__")
    }
    body["__slots__"] = tuple(names)
    body["__value_fields__"] = tuple(names)
    body["__match_args__"] = tuple(names)
    methods: list[str] = [
        "__init__",
        "__repr__",
        "__eq__",
        "__hash__",
        "__setattr__",
        "__delattr__",
        "__getstate__",
        "__setstate__",
    ]
    if order:
        methods += ["__lt__", "__le__", "__gt__", "__ge__"]
    for m in methods:
        if m in cls.__dict__:
            continue  # a method the class writes itself wins, as with dataclass
        fn: Callable[..., Any] = scope[m]
        fn.__qualname__ = f"{qual}.{m}"
        body[m] = fn
    metaclass: Any = type(cls)
    new: type[T] = metaclass(cls.__name__, cls.__bases__, body)
    return new
