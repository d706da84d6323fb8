"""docs/cli.md stays true: every command has a section, every option is documented,
and every option the reference names exists."""

from __future__ import annotations

import argparse
import re

import pytest

from fdtgen.cli import COMMANDS as MODULES
from fdtgen.cli import parser

from .conftest import ROOT

DOC = (ROOT / "docs" / "cli.md").read_text()
SHARED = "## Machine options"


def section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n## ", start + len(title))
    return DOC[start : end if end >= 0 else len(DOC)]


def options(name: str) -> set[str]:
    p = parser(name)
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    cmd = sub.choices[name.replace("_", "-")]
    return {s for a in cmd._actions for s in a.option_strings if s not in ("-h", "--help")}


COMMANDS = [c.replace("_", "-") for c in MODULES]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_and_option_is_documented(command: str):
    own = section(f"## fdtgen {command}\n")
    shared = section(SHARED)
    for opt in options(command.replace("-", "_")):
        assert re.search(rf"`{re.escape(opt)}[ `,=]", own + shared), f"{command} {opt}"
    assert f"(#fdtgen-{command})" in DOC, f"{command} missing from the command table"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_the_reference_names_exists(command: str):
    rows = [
        line.split("|")[1]
        for line in section(f"## fdtgen {command}\n").splitlines()
        if line.startswith("| `")
    ]  # the option tables' first column
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", " ".join(rows)))
    assert named <= options(command.replace("-", "_")), command


def test_the_shared_options_are_real():
    shared = section(SHARED)
    named = set(re.findall(r"`(--[a-z][a-z-]*)", shared))
    every = set().union(*(options(c) for c in ("build", "place", "layout")))
    assert named and named <= every


def test_every_relative_link_in_the_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
