"""Whatever ``fdtgen verify`` would flag in a built blob, the template proofs refuse first.

Built-in templates with some of their numbers changed (each within its type:
an integer stays an integer, a size string a size string) either fail to load
with one :class:`TemplateError`, or build a machine whose blob verify finds
clean, template rules included.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fdtgen
from fdtgen.devicetree.machine import Machine
from fdtgen.errors import ConfigError, TemplateError
from fdtgen.pipeline import build
from fdtgen.template.load import builtin_names, load_template, templates_dir

# `key = 0x0800_0000`, `key = 42`, `key = "64KiB"`: the numbers a template holds
# one to a line (lists, such as the timer's PPIs, are mutated as lists below).
NUMBER = re.compile(
    r'^(?P<key>[a-z_0-9]+)\s*=\s*(?P<value>0x[0-9A-Fa-f_]+|[0-9][0-9_]*|"[0-9]+[KMG]iB")',
    re.M,
)
PPIS = re.compile(r"^ppis\s*=\s*\[[^\]]*\]", re.M)
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _value(text: str) -> int:
    if text.startswith('"'):
        return int(text[1:-4]) * UNITS[text[-4]]
    return int(text.replace("_", ""), 0)


def _numbers(name: str) -> tuple[str, list[re.Match[str]]]:
    text = (templates_dir() / f"{name}.toml").read_text(encoding="utf-8")
    return text, list(NUMBER.finditer(text))


def _new_value(draw: st.DrawFn, old: int) -> int:
    """A value of the same kind near the old one, or one of the edges proofs guard."""
    return draw(
        st.one_of(
            st.sampled_from([0, 1, 4, 13, 31, 32, 0x200, 0x1000, 0x1_0000, 0x2_0000, 1 << 48]),
            st.integers(0, 2 * old + 16),
            st.builds(lambda s: old << s if s >= 0 else old >> -s, st.integers(-12, 12)),
            st.builds(lambda k: max(old + k, 0), st.integers(-64, 64)),
            st.builds(lambda k: max(old + k * 0x1000, 0), st.integers(-64, 64)),
        )
    )


@st.composite
def mutated_templates(draw: st.DrawFn) -> tuple[str, str]:
    """A built-in template's text with one or two numbers (or its timer PPIs) changed."""
    name = draw(st.sampled_from(builtin_names()))
    text, numbers = _numbers(name)
    chosen = draw(st.lists(st.integers(0, len(numbers) - 1), min_size=1, max_size=2, unique=True))
    edits = []
    for i in chosen:
        m = numbers[i]
        new = _new_value(draw, _value(m["value"]))
        spelled = (
            f'"{new >> 10}KiB"' if m["value"].startswith('"') and new % 1024 == 0 else hex(new)
        )
        edits.append((m.start("value"), m.end("value"), spelled))
    if draw(st.booleans()):
        m = PPIS.search(text)
        if m is not None:
            ppis = draw(st.lists(st.integers(0, 15), max_size=5))
            edits.append((m.start(), m.end(), f"ppis = {ppis}"))
    for start, end, new_text in sorted(edits, reverse=True):
        text = text[:start] + new_text + text[end:]
    return name, text


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutated_templates())
def test_a_template_is_refused_at_load_or_builds_a_blob_verify_finds_clean(tmp_path, case):
    name, text = case
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    try:
        t = load_template(str(path))
    except TemplateError as e:
        assert str(e).startswith(f"{path.resolve()}: "), str(e)
        assert "\n" not in str(e)
        return
    machine = Machine(template=str(path), vcpus=1, memory=64 << 20, virtio=t.virtio.slots)
    try:
        b = build(machine)
    except ConfigError as e:  # RAM that does not fit a shrunken DRAM window is the machine's
        assert e.setting == "memory", str(e)
        return
    findings = fdtgen.verify(b.blob, template=str(path), dtc=False)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("name", builtin_names())
def test_every_built_in_template_builds_a_clean_blob(name: str, tmp_path: Path):
    """The property's starting points hold it unchanged."""
    t = load_template(name)
    b = build(Machine(template=name, vcpus=1, memory=64 << 20, virtio=t.virtio.slots))
    assert fdtgen.verify(b.blob, template=name, dtc=False) == []
