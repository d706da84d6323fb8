"""Validation of a config against the compiled core schema, in plain Python.

``fdtgen/_config_schema.py`` is the pydantic models of :mod:`fdtgen.config`
compiled to a ``pydantic_core`` core schema. Importing ``pydantic_core``
costs about as much as importing pydantic itself (its ``core_schema`` module
pulls in ``typing_extensions``, ``inspect`` and ``asyncio``), which is most
of a one-config ``fdtgen build``. The schema uses a handful of node types, so
this module runs it directly: :func:`validate` returns what
``SchemaValidator(SCHEMA).validate_python(data)`` returns, or raises
:class:`SchemaErrors` holding the errors that ``ValidationError.errors()``
lists (type, loc, msg, input, ctx), in the same order. Tests hold it to
``pydantic_core`` and to the pydantic models on fixed and generated inputs.

Node types: ``typed-dict`` (extra keys forbidden), ``typed-dict-field``,
``default``, ``nullable``, ``int`` (strict or lax, ``ge``/``gt``/``le``/``lt``),
``str`` (``min_length``), ``bool`` (strict), ``literal``, ``tagged-union``
(callable discriminator), ``function-before``/``function-after`` (no-info).
Anything else is a :class:`TypeError`: the schema grew a node type this module
does not know, and a test fails before a user sees it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SchemaErrors", "validate"]

Loc = tuple[str | int, ...]


class SchemaErrors(Exception):
    """The validation errors, as ``pydantic_core.ValidationError.errors()`` lists them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        return self._errors


_SKIP: Any = object()  # a failed validation: its errors are already recorded

_BOUND_TEXT = {
    "le": ("less_than_equal", "less than or equal to"),
    "lt": ("less_than", "less than"),
    "ge": ("greater_than_equal", "greater than or equal to"),
    "gt": ("greater_than", "greater than"),
}
_BOUND_FAILS: dict[str, Callable[[Any, Any], bool]] = {
    "le": lambda v, b: not v <= b,
    "lt": lambda v, b: not v < b,
    "ge": lambda v, b: not v >= b,
    "gt": lambda v, b: not v > b,
}


Check = Callable[[Any, Loc, list[dict[str, Any]]], Any]

_compiled: dict[int, tuple[Mapping[str, Any], Check]] = {}


def validate(schema: Mapping[str, Any], data: Any) -> Any:
    """``data`` validated by ``schema``; raises :class:`SchemaErrors`.

    The schema is turned into nested closures on first use (one per node, the
    node's type dispatched once), so validating many configs costs little more
    than the validator functions the schema names.
    """
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _compiled[id(schema)] = (schema, _compile(schema))
    errors: list[dict[str, Any]] = []
    out = entry[1](data, (), errors)
    if errors:
        raise SchemaErrors(errors)
    return out


def _error(
    errors: list[dict[str, Any]],
    kind: str,
    loc: Loc,
    msg: str,
    value: Any,
    ctx: dict[str, Any] | None = None,
) -> Any:
    err: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        err["ctx"] = ctx
    errors.append(err)
    return _SKIP


def _compile(node: Mapping[str, Any]) -> Check:
    kind = node["type"]
    if kind == "typed-dict":
        return _typed_dict(node)
    if kind in ("default", "typed-dict-field"):
        return _compile(node["schema"])
    if kind == "nullable":
        inner = _compile(node["schema"])
        return lambda value, loc, errors: None if value is None else inner(value, loc, errors)
    if kind == "int":
        return _int(node)
    if kind == "str":
        return _str(node)
    if kind == "bool":
        return _bool
    if kind == "literal":
        return _literal(node)
    if kind == "tagged-union":
        return _tagged_union(node)
    if kind == "function-before":
        return _before(node)
    if kind == "function-after":
        return _after(node)
    raise TypeError(f"core schema node type {kind!r} is not supported")


def _bool(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    if type(value) is bool:
        return value
    return _error(errors, "bool_type", loc, "Input should be a valid boolean", value)


def _literal(node: Mapping[str, Any]) -> Check:
    expected = node["expected"]
    text = _or_list([repr(e) for e in expected])

    def check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
        if any(type(value) is type(e) and value == e for e in expected):
            return value
        return _error(
            errors, "literal_error", loc, f"Input should be {text}", value, {"expected": text}
        )

    return check


def _tagged_union(node: Mapping[str, Any]) -> Check:
    discriminator = node["discriminator"]
    choices = {tag: _compile(choice) for tag, choice in node["choices"].items()}

    def check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
        tag = discriminator(value)
        choice = choices.get(tag)
        if choice is None:
            raise TypeError(f"discriminator returned {tag!r}, not one of {list(choices)}")
        return choice(value, (*loc, tag), errors)

    return check


def _function(fn: Mapping[str, Any]) -> Callable[[Any], Any]:
    if fn.get("type") != "no-info":
        raise TypeError(f"validator function of type {fn.get('type')!r}")
    return fn["function"]  # type: ignore[no-any-return]


def _before(node: Mapping[str, Any]) -> Check:
    fn = _function(node["function"])
    inner = _compile(node["schema"])

    def check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
        try:
            converted = fn(value)
        except ValueError as e:
            return _error(errors, "value_error", loc, f"Value error, {e}", value, {"error": e})
        return inner(converted, loc, errors)

    return check


def _after(node: Mapping[str, Any]) -> Check:
    fn = _function(node["function"])
    inner = _compile(node["schema"])

    def check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
        result = inner(value, loc, errors)
        if result is _SKIP:
            return _SKIP
        try:
            return fn(result)
        except ValueError as e:
            return _error(errors, "value_error", loc, f"Value error, {e}", value, {"error": e})

    return check


def _typed_dict(node: Mapping[str, Any]) -> Check:
    if node.get("extra_behavior") != "forbid":
        raise TypeError("typed-dict without extra_behavior = 'forbid'")
    fields = []
    for name, field in node["fields"].items():
        schema = field["schema"]
        has_default = schema["type"] == "default"
        fields.append(
            (
                name,
                _compile(schema),
                has_default,
                schema.get("default"),
                field.get("required", True),
            )
        )
    known = frozenset(node["fields"])
    # When every field has a default (the config's top level), a dict with only
    # known keys is validated key by key over what it holds, on a copy of the
    # defaults (already in field order). Errors are reported in field order, as
    # pydantic_core does, so an input with any error is validated again the
    # long way, which lists them in that order.
    defaults = {name: default for name, _, has_default, default, _ in fields if has_default}
    runs = {name: run for name, run, *_ in fields}
    all_defaulted = len(defaults) == len(fields)

    def check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
        if not isinstance(value, dict):
            return _error(errors, "dict_type", loc, "Input should be a valid dictionary", value)
        if all_defaulted and len(value) <= len(known) and known.issuperset(value):
            mark = len(errors)
            out = defaults.copy()
            for name, item in value.items():
                out[name] = runs[name](item, (*loc, name), errors)
            if len(errors) == mark:
                return out
            del errors[mark:]
        out = {}
        for name, run, has_default, default, required in fields:
            if name in value:
                result = run(value[name], (*loc, name), errors)
                if result is not _SKIP:
                    out[name] = result
            elif has_default:
                out[name] = default
            elif required:
                _error(errors, "missing", (*loc, name), "Field required", value)
        if len(value) > len(known) or not known.issuperset(value):
            for key in value:
                if key not in known:
                    msg = "Extra inputs are not permitted"
                    _error(errors, "extra_forbidden", (*loc, key), msg, value[key])
        return out

    return check


def _int(node: Mapping[str, Any]) -> Check:
    strict = bool(node.get("strict"))
    bounds = [
        (key, node[key], _BOUND_FAILS[key], *_BOUND_TEXT[key])
        for key in ("le", "lt", "ge", "gt")
        if key in node
    ]

    # The bounds as one closed interval (exact for int bounds, inside them
    # otherwise): the common, passing case is two comparisons, and the loop
    # below, which has the last word, words the error.
    low = max(
        [b for k, b, *_ in bounds if k == "ge"] + [b + 1 for k, b, *_ in bounds if k == "gt"],
        default=-math.inf,
    )
    high = min(
        [b for k, b, *_ in bounds if k == "le"] + [b - 1 for k, b, *_ in bounds if k == "lt"],
        default=math.inf,
    )

    def check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
        number = value if type(value) is int else _int_lax(strict, value, loc, errors)
        if number is _SKIP:
            return _SKIP
        if low <= number <= high:
            return number
        for key, bound, fails, kind, words in bounds:
            if fails(number, bound):
                msg = f"Input should be {words} {bound}"
                return _error(errors, kind, loc, msg, value, {key: bound})
        return number

    return check


def _int_lax(strict: bool, value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    number: Any
    if strict:
        return _error(errors, "int_type", loc, "Input should be a valid integer", value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return _error(errors, "finite_number", loc, "Input should be a finite number", value)
        if not value.is_integer():
            return _error(
                errors,
                "int_from_float",
                loc,
                "Input should be a valid integer, got a number with a fractional part",
                value,
            )
        if abs(value) >= 2.0**63:
            return _error(
                errors,
                "int_parsing_size",
                loc,
                "Unable to parse input string as an integer, exceeded maximum size",
                value,
            )
        number = int(value)
    elif isinstance(value, int):  # bool and int subclasses, as lax mode takes them
        number = int(value)
    elif isinstance(value, (str, bytes, bytearray)):
        number = _int_text(value)
        if number is None:
            return _error(
                errors,
                "int_parsing",
                loc,
                "Input should be a valid integer, unable to parse string as an integer",
                value,
            )
    else:
        return _error(errors, "int_type", loc, "Input should be a valid integer", value)
    return number


def _int_text(value: str | bytes | bytearray) -> int | None:
    """``[sign]digits`` in ASCII text with blanks around it, else ``None``.

    pydantic_core's lax mode reads more than this (underscores, a ``.0`` tail,
    and some malformed strings: ``"0-0"`` is 0). No string reaches a lax
    integer from fdtgen's schema — each sits behind ``size_before``, which
    parses sizes itself, and a test holds the schema to that — so this reader
    only has to be safe, not a copy of those rules.
    """
    try:
        text = value.decode() if isinstance(value, (bytes, bytearray)) else value
    except UnicodeDecodeError:
        return None
    text = text.strip(" \t\n\r\x0b\x0c")
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits.isascii() or not digits.isdigit():
        return None
    return int(text, 10)


def _str(node: Mapping[str, Any]) -> Check:
    least = node.get("min_length")

    def check(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
        return _str_check(least, value, loc, errors)

    return check


def _str_check(least: int | None, value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    if type(value) is str:
        text = value
    elif isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode()
        except UnicodeDecodeError:
            return _error(
                errors,
                "string_unicode",
                loc,
                "Input should be a valid string, unable to parse raw data as a unicode string",
                value,
            )
    elif isinstance(value, str):
        text = str(value)
    else:
        return _error(errors, "string_type", loc, "Input should be a valid string", value)
    if least is not None and len(text) < least:
        unit = "character" if least == 1 else "characters"
        return _error(
            errors,
            "string_too_short",
            loc,
            f"String should have at least {least} {unit}",
            value,
            {"min_length": least},
        )
    return text


def _or_list(items: list[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'`` (pydantic's wording for literals)."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]
