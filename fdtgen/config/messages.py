"""A rejected config as one line: ``SOURCE: KEY: VALUE: RULE``.

pydantic reports what failed (``ValidationError.errors()``: loc, type, ctx,
input); this module words it for the person who wrote the file, from the same
models that validated it: the key as written (``kernel.size``), the value
(hex when large, shortened when long), the rule, the range an integer key
allows, and for an unknown key (its value not repeated: it may be a secret)
the key probably meant, or the keys that table takes.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import annotated_types
from pydantic import BaseModel, Tag
from pydantic.fields import FieldInfo

from fdtgen.config.model import Config
from fdtgen.errors import ConfigError
from fdtgen.errors import shown as _shown

# Bound violations are worded here (pydantic's own text prints 2**64-1 as a float).
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
_NOT_A_TABLE = ("dict_type", "model_type", "model_attributes_type")


def config_error(
    errors: Sequence[Mapping[str, Any]], source: str, from_cli: Collection[str] = ()
) -> ConfigError:
    """The first of pydantic's ``errors`` as one :class:`ConfigError` line.

    The line starts with ``source`` (the config file), or ``command line`` when
    the key is one of ``from_cli``, the keys options set. A missing key goes
    last: it is usually missing because it was mistyped, and the error about
    the mistyped key says "did you mean" it.
    """
    first = min(errors, key=lambda e: e["type"] == "missing")
    if first["loc"] and first["loc"][0] in from_cli:
        source = "command line"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(f"{source}: {describe(first)}{more}")


def describe(err: Mapping[str, Any]) -> str:
    """One pydantic error as ``key.path: value: rule``, teaching what is allowed."""
    loc = tuple(err["loc"])
    key, node = _located(loc)
    shown = _shown(err.get("input"))
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key{_suggest(loc)}"  # its value may be a secret
    if kind in _NOT_A_TABLE:
        choices = _located(loc[:-1])[1] if loc else None
        if isinstance(choices, dict):  # kernel/initrd: a path, or a table
            keys = ", ".join(node.model_fields) if _is_model(node) else ""
            return f"{key}: {shown}: must be a file path or a table with keys {keys}"
        return f"{key}: {shown}: must be a table of keys and values"
    if kind == "string_unicode":  # a lone surrogate: JSON "\udc80", or a non-UTF-8 argv byte
        return f"{key}: {shown}: is not valid UTF-8 text (it holds a lone surrogate)"
    allowed = _allowed(node)
    bound = _BOUNDS.get(kind)
    if bound is not None:
        op, name = bound
        return f"{key}: {shown}: must be {op} {_number(int(err['ctx'][name]))}{allowed}"
    if not kind.startswith("int_"):
        allowed = ""
    msg: str = err["msg"]
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    return f"{key}: {shown}: {msg[0].lower() + msg[1:]}{allowed}"


def _number(n: int) -> str:
    return f"{n:#x}" if n > 0xFFFF else str(n)


# -- walking the models along an error's loc ----------------------------------------
#
# A node is what a loc names: a model class, a dict of the choices of a tagged
# union (tag -> node), or a _Leaf: a plain type with the constraints on it.


class _Leaf(typing.NamedTuple):
    type: Any
    constraints: tuple[Any, ...]


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _node(annotation: Any, constraints: tuple[Any, ...] = ()) -> Any:
    """The node of a field's annotation: ``Annotated`` unwrapped (its constraints
    kept), ``X | None`` taken as ``X``, a tagged union as its choices."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:  # Field(...) inside Annotated carries its own metadata
                constraints += tuple(item.metadata) if isinstance(item, FieldInfo) else (item,)
            continue
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
            return {_tag(a): _node(a) for a in args}
        break
    return annotation if _is_model(annotation) else _Leaf(annotation, constraints)


def _tag(annotation: Any) -> str | None:
    for item in typing.get_args(annotation)[1:]:
        if isinstance(item, Tag):
            return item.tag
    return None


def _located(loc: tuple[Any, ...]) -> tuple[str, Any]:
    """An error location as the user writes the key (``kernel.size``, ``list[3]``; the
    tags of kernel/initrd's path-or-table union dropped) and the node it names."""
    node: Any = Config
    key = ""
    for part in loc:
        if isinstance(node, dict) and part in node:  # a union's tag: not part of the key
            node = node[part]
            continue
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
        field = node.model_fields.get(part) if _is_model(node) else None
        node = None if field is None else _node(field.annotation, tuple(field.metadata))
    return key or "config", node


def _suggest(loc: tuple[Any, ...]) -> str:
    """``; did you mean 'vcpus'?`` for a mistyped key, else the keys that table takes."""
    table = _located(loc[:-1])[1]
    keys = list(table.model_fields) if _is_model(table) else []
    if not keys:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid keys: {', '.join(keys)}"


def _allowed(node: Any) -> str:
    """`` (allowed: 0..32)`` for an integer key with both bounds."""
    if not isinstance(node, _Leaf) or node.type is not int:
        return ""
    lo: int | None = None
    hi: int | None = None
    for c in node.constraints:
        if isinstance(c, annotated_types.Ge):
            lo = _int(c.ge)
        elif isinstance(c, annotated_types.Gt):
            lo = _int(c.gt) + 1
        elif isinstance(c, annotated_types.Le):
            hi = _int(c.le) if hi is None else min(hi, _int(c.le))
        elif isinstance(c, annotated_types.Lt):
            hi = _int(c.lt) - 1 if hi is None else min(hi, _int(c.lt) - 1)
    if lo is None or hi is None:
        return ""
    return f" (allowed: {_number(lo)}..{_number(hi)})"


def _int(bound: object) -> int:
    if not isinstance(bound, int):
        raise TypeError(f"integer key with bound {bound!r}")  # a bug in the models
    return bound
