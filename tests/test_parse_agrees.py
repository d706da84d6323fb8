"""The fast parser agrees with the parser it replaced, on good and corrupt blobs.

:mod:`tests.parse_reference` is the strict parser as it was before one pass
with cached property names and dict-backed nodes replaced it. On every blob
both must give the same :class:`~fdtgen.fdt.parse.Blob` or the same
:class:`~fdtgen.errors.BlobError` (message and offset): speed bought nothing
from strictness.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen.errors import BlobError
from fdtgen.fdt.parse import MAX_DEPTH, _kind, parse_blob
from fdtgen.fdt.tree import guess_kind

from . import parse_reference
from .test_fuzz import CORPUS, case
from .test_parse import BEGIN, END, END_NODE, NOP, PROP, begin, prop, raw_blob, u32


def outcome(parser, data: bytes) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        return "parsed", tuple(parser(data))
    except BlobError as e:
        return "rejected", (str(e), e.offset)


def assert_agree(data: bytes) -> str:
    ours, theirs = outcome(parse_blob, data), outcome(parse_reference.parse_blob, data)
    assert ours == theirs
    return ours[0]


@pytest.mark.parametrize("shard", range(4))
def test_corrupted_blobs_get_the_same_tree_or_the_same_error(shard):
    seen = {"parsed": 0, "rejected": 0}
    for index in range(500):
        _, data, _ = case(300 + shard, index)
        seen[assert_agree(data)] += 1
    assert seen["parsed"] >= 25 and seen["rejected"] >= 125, seen


def test_the_fuzz_corpus_parses_alike():
    for data in CORPUS:
        assert assert_agree(data) == "parsed"


S = b"a\0b\0c\0bad*\0x/y\0"  # nameoffs: a 0, b 2, c 4, bad* 6 (dtc accepts '*'), x/y 11
HAND = [
    # properties: after a subnode, twice, a name dtc refuses, off the strings block,
    # with no NUL before its end, one name shared by many nodes
    begin("") + begin("c") + u32(END_NODE) + prop(0, b"") + u32(END_NODE, END),
    begin("") + prop(0, u32(1)) + prop(0, u32(2)) + u32(END_NODE, END),
    begin("") + prop(11, b"") + u32(END_NODE, END),
    begin("") + prop(6, b"") + prop(len(S), b"") + u32(END_NODE, END),
    begin("") + begin("k") + prop(len(S) - 1, b"") + u32(END_NODE, END_NODE, END),
    begin("")
    + b"".join(begin(f"n{i}") + prop(2, u32(i)) + prop(4, b"s\0") + u32(END_NODE) for i in range(9))
    + u32(END_NODE, END),
    # nodes: twice, a bad name, a bad root name, a name with no NUL, too deep
    begin("") + begin("c") + u32(END_NODE) + begin("c") + u32(END_NODE, END_NODE, END),
    begin("") + begin("c/d") + u32(END_NODE, END_NODE, END),
    begin("r@t@x") + u32(END_NODE, END),
    begin("") + u32(BEGIN) + b"abcd",
    begin("") + begin("a") * MAX_DEPTH + u32(END_NODE) * (MAX_DEPTH + 1) + u32(END),
    begin("") + begin("a") * (MAX_DEPTH - 1) + u32(END_NODE) * MAX_DEPTH + u32(END),
    # tokens: out of place, unknown, missing, property header cut, length too long
    u32(PROP, 0, 0) + u32(END),
    u32(END_NODE, END),
    u32(END),
    begin("") + u32(END_NODE, END, NOP),
    begin("") + u32(END_NODE) + begin("x"),
    begin("") + u32(7),
    begin("") + u32(NOP, NOP),
    begin("") + u32(PROP, 4),
    begin("") + u32(PROP, 0x100, 0) + u32(END_NODE, END),
    begin("") + begin("a") + u32(END, END_NODE, END_NODE),
]


@pytest.mark.parametrize("struct_block", HAND, ids=range(len(HAND)))
def test_hand_made_blobs_get_the_same_tree_or_error(struct_block):
    assert_agree(raw_blob(struct_block, S))


def test_a_property_name_checked_once_is_still_checked_in_every_node():
    # The cache of names by string offset must not let a bad name through a second time.
    bad = begin("") + begin("a") + prop(0, b"") + u32(END_NODE) + begin("b") + prop(11, b"")
    data = raw_blob(bad + u32(END_NODE, END_NODE, END), S)
    assert assert_agree(data) == "rejected"
    with pytest.raises(BlobError, match=r"property name in /b: expected .* found 'x/y'"):
        parse_blob(data)


PIECES = st.lists(st.sampled_from([b"ab", b"\0", b"\x7f", b" ~"])).map(b"".join)


@given(st.binary(max_size=64) | PIECES)
def test_the_kind_guess_is_the_trees(value):
    assert _kind(value) == guess_kind(value)
