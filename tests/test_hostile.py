"""Hostile input through the command line: one stderr line, exit 2, no traceback, nothing written.

Each case writes its input files into ``in/``, runs ``fdtgen`` as a user does
(outputs aimed at ``out/``) and checks the one line: where the input came from
(the file, or ``command line``), the key or region, and the rule. The cases of
the hardening list itself run in :mod:`tests.test_hostile_matrix` under a
memory limit; these are the neighbours of those cases.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fdtgen.template.load import templates_dir

from .conftest import run_fdtgen

SQUIB = (templates_dir() / "squib.toml").read_text(encoding="utf-8")


def squib_with(old: str, new: str) -> str:
    assert SQUIB.count(old) == 1, old
    return SQUIB.replace(old, new)


def rejected(tmp_path: Path, *args: str, stdin: str | None = None) -> str:
    """Run ``fdtgen ARGS`` (``{in}``/``{out}`` name the input and output folders)
    and return its one error line, after checking how it failed."""
    inp, out = tmp_path / "in", tmp_path / "out"
    out.mkdir()
    argv = [a.replace("{in}", str(inp)).replace("{out}", str(out)) for a in args]
    r = run_fdtgen(*argv, stdin=stdin)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("fdtgen: error: "), r.stderr
    assert r.stdout == ""
    assert list(out.iterdir()) == [], "a rejected command wrote output"
    return r.stderr.removeprefix("fdtgen: error: ").rstrip("\n")


def inputs(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    inp = tmp_path / "in"
    inp.mkdir()
    for name, data in files.items():
        (inp / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return inp


# -- what used to be a traceback ------------------------------------------------------


NESTED_TOML = "x = " + "[" * 500 + "]" * 500 + "\n"
NESTED_JSON = '{"x": ' + "[" * 1000 + "]" * 1000 + "}"


@pytest.mark.parametrize(
    "files, args, line",
    [
        pytest.param(
            {"vm.json": '{"vcpus": ' + "9" * 4301 + "}"},
            ["build", "{in}/vm.json", "-o", "{out}/g.dtb"],
            "{in}/vm.json: not valid JSON: an integer has more than 4300 digits",
            id="json-vcpus-4301-digits",
        ),
        pytest.param(
            {"mine.toml": squib_with("max_vcpus = 32", "max_vcpus = " + "9" * 4301)},
            ["build", "--template", "{in}/mine.toml", "-o", "{out}/g.dtb"],
            "{in}/mine.toml: not valid TOML: an integer has more than 4300 digits",
            id="template-4301-digits",
        ),
    ],
)
def test_input_that_used_to_raise_is_one_line(tmp_path, files, args, line):
    inp = inputs(tmp_path, files)
    got = rejected(tmp_path, *args)
    assert got.startswith(line.replace("{in}", str(inp))), got


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"vcpus": ' + "9" * 4301 + "}", "stdin:1: not valid JSON: an integer has more than"),
        ('{"vcpus": 124}', "stdin:1: vcpus: 124 is outside 1..32 (template 'squib' max_vcpus)"),
    ],
    ids=["4301-digits", "vcpus-over-template"],
)
def test_build_many_on_stdin_rejects_hostile_lines_in_one_line(tmp_path, line, message):
    got = rejected(tmp_path, "build-many", "-", "-o", "{out}", stdin=line + "\n")
    assert got.startswith(message), got


# -- every line says where, what and which rule -----------------------------------------


@pytest.mark.parametrize(
    "files, args, line",
    [
        pytest.param(
            {"vm.toml": "vcpus = 4\n"},
            ["layout", "{in}/vm.toml", "--vcpus", "124", "--svg", "{out}/m.svg"],
            "command line: vcpus: 124 is outside 1..32 (template 'squib' max_vcpus)",
            id="vcpus-over-template-option",
        ),
        pytest.param(
            {"vm.toml": 'template = "cloud-hypervisor"\nvirtio = 1\n'},
            ["dts", "{in}/vm.toml", "-o", "{out}/g.dts"],
            "{in}/vm.toml: virtio: 1 is outside 0..0 "
            "(template 'cloud-hypervisor' has 0 virtio slots)",
            id="virtio-over-template",
        ),
        pytest.param(
            {"vm.toml": 'memory = "1023GiB"\n'},
            ["build", "{in}/vm.toml", "-o", "{out}/g.dtb"],
            "{in}/vm.toml: memory: 1023 GiB (0xffc0000000) at 0x80000000 ends at "
            "0x10040000000, past the DRAM max end 0x10000000000 of template 'squib'",
            id="memory-over-template",
        ),
        pytest.param(
            {"vm.toml": 'template = "nope"\n'},
            ["build", "{in}/vm.toml", "-o", "{out}/g.dtb"],
            "{in}/vm.toml: template: 'nope' is not a built-in template",
            id="unknown-template-in-file",
        ),
        pytest.param(
            {"vm.toml": "vcpu = 4\n"},
            ["build", "{in}/vm.toml", "-o", "{out}/g.dtb"],
            "{in}/vm.toml: vcpu: unknown key; did you mean 'vcpus'?",
            id="unknown-key-did-you-mean",
        ),
        pytest.param(
            {"vm.toml": "memory = " + str(10**30) + "\n"},
            ["build", "{in}/vm.toml", "-o", "{out}/g.dtb"],
            "{in}/vm.toml: memory: 0xc9f2c9cd04674edea400... (25 hex digits): must be <= ",
            id="31-digit-int-shortened",
        ),
        pytest.param(
            {"vm.toml": 'template = "' + "x" * 200 + '"\n'},
            ["build", "{in}/vm.toml", "-o", "{out}/g.dtb"],
            "{in}/vm.toml: template: '" + "x" * 60 + "'... (200 chars) is not a built-in",
            id="200-char-string-shortened",
        ),
    ],
)
def test_errors_start_with_the_file_or_command_line_and_name_the_key(tmp_path, files, args, line):
    inp = inputs(tmp_path, files)
    got = rejected(tmp_path, *args)
    assert got.startswith(line.replace("{in}", str(inp))), got
    assert "hunter2" not in got


@pytest.mark.parametrize(
    "value, binary",
    [("4kB", "4KiB"), ("2tb", "2TiB")],
)
def test_decimal_size_units_are_refused_with_the_binary_unit_to_write(tmp_path, value, binary):
    inp = inputs(tmp_path, {"vm.toml": f'memory = "{value}"\n'})
    got = rejected(tmp_path, "build", "{in}/vm.toml", "-o", "{out}/g.dtb")
    assert got == (
        f"{inp}/vm.toml: memory: '{value}': decimal units are not accepted; write {binary} (binary)"
    )
    got = rejected_again(tmp_path, "build", "--memory", value, "-o", "{out}/g.dtb")
    assert got.startswith(f"command line: memory: '{value}': decimal units are not accepted")


def rejected_again(tmp_path: Path, *args: str) -> str:
    """:func:`rejected` once more, with a fresh output folder."""
    (tmp_path / "out").rmdir()
    return rejected(tmp_path, *args)


@pytest.mark.parametrize("value", ["4K", "4KiB", "4096", "0x1000", "4kib"])
def test_binary_units_and_plain_bytes_are_accepted_in_templates(tmp_path, value):
    inp = inputs(tmp_path, {"mine.toml": squib_with('stride = "4KiB"', f'stride = "{value}"')})
    r = run_fdtgen("build", "--template", str(inp / "mine.toml"), "-o", str(tmp_path / "g.dtb"))
    assert r.returncode == 0, r.stderr


def test_a_decimal_unit_in_a_template_names_the_template_and_key(tmp_path):
    inp = inputs(tmp_path, {"mine.toml": squib_with('stride = "4KiB"', 'stride = "4kB"')})
    got = rejected(tmp_path, "build", "--template", "{in}/mine.toml", "-o", "{out}/g.dtb")
    assert got == (
        f"{inp}/mine.toml: virtio.stride: '4kB': decimal units are not accepted; "
        "write 4KiB (binary)"
    )


# -- templates: what verify would flag is refused at load --------------------------------


@pytest.mark.parametrize(
    "old, new, message",
    [
        pytest.param(
            "ppis = [13, 14, 11, 10]",
            "ppis = [13, 14, 11, 13]",
            "PPI 13 (INTID 29) is wired to both 'timer' and 'timer'",
            id="ppi-twice",
        ),
        pytest.param(
            "base = 0x8000_0000",
            "base = 0x8010_0000",
            "region 'dram' base 0x80100000 is not aligned to 0x200000",
            id="dram-base-not-2mib",
        ),
    ],
)
def test_a_template_verify_would_fault_is_refused_naming_file_and_key(tmp_path, old, new, message):
    if old == "base = 0x8000_0000":  # the DRAM window's base, not another region's
        text = SQUIB.replace("[dram]\nbase = 0x8000_0000", f"[dram]\n{new}")
        assert text != SQUIB
    else:
        text = squib_with(old, new)
    inp = inputs(tmp_path, {"mine.toml": text})
    got = rejected(tmp_path, "build", "--template", "{in}/mine.toml", "-o", "{out}/g.dtb")
    assert got.startswith(f"{inp}/mine.toml: "), got
    assert message in got, got


def test_build_and_verify_assume_one_address_width():
    from dataclasses import replace

    from fdtgen.checks import Options
    from fdtgen.cli import parser
    from fdtgen.errors import ConfigError
    from fdtgen.layout import resolve
    from fdtgen.ranges import Range
    from fdtgen.spec import DEFAULT_ADDRESS_WIDTH
    from fdtgen.template.load import load_template

    assert DEFAULT_ADDRESS_WIDTH == 48
    assert Options().address_bits == DEFAULT_ADDRESS_WIDTH
    assert parser("verify").parse_args(["verify", "x.dtb"]).address_bits == DEFAULT_ADDRESS_WIDTH
    # RAM that would end past 2^48 is refused when neither template nor config names a width,
    # even where the DRAM window reaches further.
    t = load_template("squib")
    assert t.address_width is None
    wide = replace(t, dram=Range(t.dram.base, 1 << 50))
    with pytest.raises(ConfigError, match=r"past the 48-bit guest physical address limit"):
        resolve(wide, vcpus=1, memory=1 << 48, virtio=0)
    assert resolve(wide, vcpus=1, memory=1 << 46, virtio=0).ram[-1].end <= 1 << 48


# -- the command line itself ------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["build", "--vcpu", "3", "-o", "{out}/g.dtb"],
            "command line: unrecognized arguments: --vcpu",
        ),
        (["build"], "command line: the following arguments are required: -o/--output"),
        (["biuld"], "command line: argument COMMAND: invalid choice: 'biuld'"),
        (
            ["build", "--vcpus", "9" * 5000, "-o", "{out}/g.dtb"],
            "command line: argument --vcpus: invalid int value: '" + "9" * 60 + "'... (5000 chars)",
        ),
        (
            ["verify", "{out}/none.dtb", "--address-bits", "99"],
            "command line: --address-bits: 99 is outside 1..64",
        ),
    ],
    ids=["abbreviation", "missing-output", "unknown-command", "5000-digit-option", "usage-error"],
)
def test_a_bad_command_line_is_one_line_without_usage(tmp_path, args, message):
    got = rejected(tmp_path, *args)
    assert got.startswith(message), got


def test_no_command_lists_the_commands_and_exits_2():
    r = run_fdtgen()
    assert r.returncode == 2 and r.stdout == ""
    for command in ("build", "build-many", "verify", "templates"):
        assert re.search(rf"^\s+{command}\s", r.stderr, re.M), r.stderr


# -- the same paths in process (no subprocess per case) ---------------------------------


@pytest.mark.parametrize(
    "text, rule",
    [
        ("vcpus = 2\n" + NESTED_TOML, "not valid TOML: arrays or tables nested too deeply"),
        ("x = 1\n", "x: unknown key; valid keys: template,"),
    ],
    ids=["nested", "unknown-key"],
)
def test_the_cli_main_returns_2_with_one_line(tmp_path, capsys, text, rule):
    from fdtgen.cli import main

    config = tmp_path / "vm.toml"
    config.write_text(text)
    assert main(["build", str(config), "-o", str(tmp_path / "g.dtb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"fdtgen: error: {config}: {rule}"), err
    assert not (tmp_path / "g.dtb").exists()
