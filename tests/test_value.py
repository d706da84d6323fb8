"""fdtgen._value makes what dataclass(frozen=True, slots=True) makes: checked side by side."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen._value import FrozenInstanceError, field, fields, frozen, replace


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class DRange:
    base: int
    size: int = 1
    tag: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"size {self.size}")

    @property
    def end(self) -> int:
        return self.base + self.size


@frozen(order=True)
class VRange:
    base: int
    size: int = 1
    tag: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"size {self.size}")

    @property
    def end(self) -> int:
        return self.base + self.size


@frozen
class Named:
    """A docstring survives."""

    name: str

    def __str__(self) -> str:
        return f"<{self.name}>"


triples = st.tuples(st.integers(-3, 3), st.integers(1, 3), st.sampled_from(["", "a", "b"]))


@given(triples, triples)
def test_eq_hash_order_and_repr_match_dataclasses(a, b):
    da, db, va, vb = DRange(*a), DRange(*b), VRange(*a), VRange(*b)
    assert (va == vb) == (da == db)
    assert (hash(va) == hash(vb)) == (hash(da) == hash(db)) or da != db
    for op in ("__lt__", "__le__", "__gt__", "__ge__"):
        assert getattr(va, op)(vb) == getattr(da, op)(db)
    assert repr(va) == repr(da).replace("DRange", "VRange")
    assert va != da and va.__eq__(da) is NotImplemented
    assert va.end == da.end


def test_frozen_slotted_validated_replaceable_and_picklable():
    v = VRange(4, size=2, tag="x")
    with pytest.raises(FrozenInstanceError):
        v.base = 5  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del v.base  # type: ignore[misc]
    with pytest.raises(AttributeError):
        v.other = 1  # type: ignore[attr-defined]
    assert not hasattr(v, "__dict__") and VRange.__slots__ == ("base", "size", "tag")
    assert replace(v, size=3) == VRange(4, 3) and replace(v, size=3).tag == "x"
    with pytest.raises(ValueError, match="size 0"):
        replace(v, size=0)
    with pytest.raises(ValueError, match="size -1"):
        VRange(0, -1)
    with pytest.raises(TypeError, match="no field 'sise'"):
        replace(v, sise=3)
    assert fields(v) == fields(VRange) == ("base", "size", "tag")
    assert VRange.__match_args__ == ("base", "size", "tag")
    for clone in (pickle.loads(pickle.dumps(v)), copy.copy(v), copy.deepcopy(v)):
        assert clone == v and clone.tag == "x"
    with pytest.raises(TypeError):
        VRange()  # type: ignore[call-arg]


def test_the_class_keeps_its_own_methods_and_docstring():
    n = Named("a")
    assert str(n) == "<a>" and repr(n) == "Named(name='a')"
    assert Named.__doc__ == "A docstring survives."
    assert Named.__init__.__qualname__ == "Named.__init__"


def test_a_field_without_a_default_may_not_follow_one_with():
    with pytest.raises(TypeError, match="without a default follows"):

        @frozen
        class Bad:
            a: int = 0
            b: int
