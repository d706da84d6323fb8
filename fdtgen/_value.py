"""Frozen, slotted value classes, made with one small ``exec`` per class.

``@frozen`` gives a class what ``@dataclass(frozen=True, slots=True)`` gives
it — an ``__init__`` from the annotated fields (defaults allowed, then
``__post_init__`` to validate), ``__repr__``, field-wise ``__eq__`` and
``__hash__``, ``__slots__``, assignment refused after construction, and with
``order=True`` the four comparisons — and :func:`replace` and :func:`fields`
stand in for ``dataclasses.replace`` and ``dataclasses.fields``.

Why not ``dataclasses`` itself: on Python 3.11 it compiles every generated
method with its own ``exec``, rebuilds each class for ``__slots__``, and its
import pulls in ``inspect``. That is about a millisecond per class, and the
CLI defines dozens of value classes before it does any work. Here only
``__init__`` is compiled (its signature is the class's own); the other
methods are closures over C-level attrgetters, so defining a class costs a
fraction of that, and the instances behave the same.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

# typing.TYPE_CHECKING without importing typing, whose import is a noticeable
# part of a command's start (mypy reads the name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform, overload

    T = TypeVar("T")

__all__ = ["FrozenInstanceError", "field", "fields", "frozen", "replace"]

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


def _frozen(cls: type[T] | None = None, /, *, order: bool = False) -> Any:
    """Make ``cls`` a frozen, slotted value class (``@frozen``, ``@frozen(order=True)``)."""

    def wrap(c: type[T]) -> type[T]:
        return _make(c, order)

    return wrap if cls is None else wrap(cls)


if TYPE_CHECKING:  # what type checkers see: a dataclass-like decorator

    @overload
    def frozen(cls: type[T], /) -> type[T]: ...
    @overload
    def frozen(*, order: bool = False) -> Callable[[type[T]], type[T]]: ...
    @dataclass_transform(frozen_default=True, field_specifiers=(field,))
    def frozen(cls: type[T] | None = None, /, *, order: bool = False) -> Any: ...

else:
    frozen = _frozen


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
    # Only __init__ is compiled (its signature is the class's own, see _init);
    # the other methods are closures over C-level attrgetters, which cost
    # nothing to make.
    key = _getter(compared)
    every = _getter(names)
    methods: dict[str, Callable[..., Any]] = {
        "__repr__": _repr(qual, names),
        "__eq__": _compare(key, operator.eq),
        "__hash__": lambda self: hash(key(self)),
        "__setattr__": _refuse_set,
        "__delattr__": _refuse_del,
        "__getstate__": lambda self: every(self),
        "__setstate__": _setstate,
    }
    if order:
        for op in (operator.lt, operator.le, operator.gt, operator.ge):
            methods[f"__{op.__name__}__"] = _compare(key, op)

    body = {
        k: v
        for k, v in cls.__dict__.items()
        if k not in names and k not in ("__dict__", "__weakref__")
    }
    body["__slots__"] = tuple(names)
    body["__value_fields__"] = tuple(names)
    body["__match_args__"] = tuple(names)
    for m, fn in methods.items():
        if m in cls.__dict__:
            continue  # a method the class writes itself wins, as with dataclass
        if fn.__name__ in ("<lambda>", "method"):  # made for this class
            fn.__name__ = m
            fn.__qualname__ = f"{qual}.{m}"
        body[m] = fn
    metaclass: Any = type(cls)
    new: type[T] = metaclass(cls.__name__, cls.__bases__, body)
    if "__init__" not in cls.__dict__:
        init = _init(new, names, defaults)
        init.__qualname__ = f"{qual}.__init__"
        type.__setattr__(new, "__init__", init)
    return new


def _init(cls: type, names: list[str], defaults: dict[str, Any]) -> Callable[..., None]:
    """``__init__`` with the class's own signature, storing each field through its
    slot's descriptor (a third faster than ``object.__setattr__``), then calling
    ``__post_init__`` if the class has one."""
    params = ", ".join(f"{n}=__d_{n}" if n in defaults else n for n in names)
    sets = "".join(f"    __s_{n}(self, {n})\n" for n in names) or "    pass\n"
    post = "    self.__post_init__()\n" if hasattr(cls, "__post_init__") else ""
    scope: dict[str, Any] = {f"__s_{n}": cls.__dict__[n].__set__ for n in names}
    scope.update((f"__d_{n}", d) for n, d in defaults.items())
    exec(f"def __init__(self, {params}):\n{sets}{post}", scope)  # noqa: S102 - field names only
    init: Callable[..., None] = scope["__init__"]
    return init


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """``obj -> (obj.a, obj.b, ...)``, always a tuple."""
    if len(names) >= 2:
        return operator.attrgetter(*names)
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _compare(
    key: Callable[[Any], tuple[Any, ...]], op: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    def method(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return op(key(self), key(other))
        return NotImplemented

    return method


def _repr(qual: str, names: list[str]) -> Callable[[Any], str]:
    def method(self: Any) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{qual}({shown})"

    return method


def _refuse_set(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_del(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _setstate(self: Any, state: tuple[Any, ...]) -> None:
    for name, item in zip(self.__value_fields__, state, strict=True):
        object.__setattr__(self, name, item)
