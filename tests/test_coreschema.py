"""fdtgen.coreschema runs the compiled config schema as pydantic_core does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import SchemaValidator, ValidationError

from fdtgen.config import coreschema
from fdtgen.config._schema import SCHEMA

from .test_config import CASES, KEYS, VALUES

CORE = SchemaValidator(SCHEMA)


def comparable(errors: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for e in errors:
        ctx = {k: v for k, v in (e.get("ctx") or {}).items() if k != "error"}
        out.append((e["type"], tuple(e["loc"]), e["msg"], repr(e["input"]), ctx))
    return out


def both(schema_validator: SchemaValidator, schema: Any, data: Any) -> None:
    try:
        expected = ("ok", schema_validator.validate_python(data))
    except ValidationError as e:
        expected = ("error", comparable(e.errors()))
    try:
        actual = ("ok", coreschema.validate(schema, data))
    except coreschema.SchemaErrors as e:
        actual = ("error", comparable(e.errors()))
    assert actual == expected
    if actual[0] == "ok" and isinstance(actual[1], dict):  # the same keys in the same order
        assert list(actual[1]) == list(expected[1])


EXTRA = [
    {"memory": 2.0},
    {"memory": 1.5},
    {"memory": float("inf")},
    {"memory": float("nan")},
    {"memory": 2.0**63},
    {"memory": 2.0**63 - 1024},
    {"memory": -0.0},
    {"memory": None},
    {"memory": []},
    {"zz": 1, "memory": "x", "vcpus": 0, "aa": 2},
    {"virtio": 99, "memory": "x", "vcpus": 0},  # errors listed in field order, not input order
    {"initrd": None, "virtio": 3, "template": "qemu-virt"},
    {"topology": {"zz": 1, "sockets": 0}},
    {"kernel": {"zz": 1}},
    {"kernel": {"size": 1, "text_offset": 2**64}},
    {"kernel": 5},
    {"kernel": None},
    {"template": b"x"},
    {"template": b"\xff"},
    {"template": 5},
    {"psci_method": None},
    {"vcpus": True},
    {"rng_seed": 2**70},
    [],
    "vm",
]


@pytest.mark.parametrize("data", CASES + EXTRA, ids=[repr(c)[:40] for c in CASES + EXTRA])
def test_fixed_inputs_validate_as_pydantic_core_does(data):
    both(CORE, SCHEMA, data)


@given(data=st.dictionaries(KEYS, VALUES, max_size=5))
def test_generated_configs_validate_as_pydantic_core_does(data):
    both(CORE, SCHEMA, data)


LAX_INT = {"type": "int"}


@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.from_regex(r"\A[ \t]?[+-]?[0-9]{1,5}[ \t]?\Z"),
        st.none(),
        st.lists(st.integers(), max_size=1),
    )
)
def test_lax_integers_match_pydantic_core(value):
    both(SchemaValidator(LAX_INT), LAX_INT, value)


def lax_ints(node: Any, behind: Any = None) -> list[Any]:
    """Every lax int node of a schema, with the before-validator right above it."""
    if isinstance(node, list):
        return [x for n in node for x in lax_ints(n, behind)]
    if not isinstance(node, dict):
        return []
    if node.get("type") == "int" and not node.get("strict"):
        return [behind]
    above = node["function"]["function"] if node.get("type") == "function-before" else None
    return [x for k, v in node.items() if k != "function" for x in lax_ints(v, above)]


def test_no_string_reaches_a_lax_integer_of_the_config_schema():
    from fdtgen.config.rules import size_before

    found = lax_ints(SCHEMA)
    assert found and all(fn is size_before for fn in found), found
    for text in ("4096", " 12 ", "0x10", "1_000", "2MiB"):
        assert type(size_before(text)) is int


def test_an_unknown_node_type_is_a_type_error():
    with pytest.raises(TypeError, match="'float' is not supported"):
        coreschema.validate({"type": "float"}, 1.0)
