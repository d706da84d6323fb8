"""The strict parser accepts only what libfdt accepts, and reads the same tree.

libfdt's ``fdt_check_full`` and its read-only walk (:func:`tests.treeview.via_libfdt`)
are the independent oracle: a blob fdtgen's parser accepts must pass
``fdt_check_full`` and read back, node by node and property by property, as
libfdt reads it; a blob libfdt refuses fdtgen refuses too, in one line naming
the offset. (fdtgen is stricter than libfdt in places, e.g. node and
property names, so a blob only fdtgen refuses is allowed.)
"""

from __future__ import annotations

import re

import libfdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen.errors import BlobError
from fdtgen.fdt.parse import MAX_DEPTH, parse_blob
from fdtgen.fdt.tree import Kind, guess_kind

from .test_fuzz import CORPUS, case
from .test_parse import BEGIN, END, END_NODE, NOP, PROP, begin, prop, raw_blob, u32
from .treeview import ours, via_libfdt

ONE_LINE = re.compile(r"^dtb offset 0x[0-9a-f]+: [^\n]*expected[^\n]*found")


def assert_agree(data: bytes) -> str:
    """Hold fdtgen's outcome to libfdt's; return "parsed" or "rejected"."""
    buf = bytearray(data)
    libfdt_ok = libfdt.fdt_check_full(buf, len(buf)) == 0
    try:
        blob = parse_blob(data)
    except BlobError as e:
        assert ONE_LINE.match(str(e)), str(e)
        return "rejected"
    assert libfdt_ok, "fdtgen parsed a blob libfdt's fdt_check_full refuses"
    assert ours(blob.tree) == via_libfdt(data)
    return "parsed"


@pytest.mark.parametrize("shard", range(4))
def test_corrupted_blobs_are_refused_or_read_as_libfdt_reads_them(shard):
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
def test_hand_made_blobs_are_refused_or_read_as_libfdt_reads_them(struct_block):
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
def test_the_kind_guess_is_dtcs_rule(value):
    """dtc's treesource.c guess_value_type: a NUL-terminated run of printable
    strings, none empty, is strings; whole 32-bit words are cells; else bytes."""
    printable = all(0x20 <= b < 0x7F or b == 0 for b in value)
    if not value:
        want = Kind.EMPTY
    elif value[-1] == 0 and value[0] != 0 and b"\0\0" not in value and printable:
        want = Kind.STRINGS
    else:
        want = Kind.CELLS if len(value) % 4 == 0 else Kind.BYTES
    assert guess_kind(value) == want
