"""Config validation: the pydantic models and the compiled run-time path agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen.config import model as config
from fdtgen.config import rules as configrules
from fdtgen.errors import ConfigError

from .conftest import FIXTURES, ROOT
from .conftest import run_fdtgen as run_cli


def test_compiled_schema_is_current():
    current = (ROOT / "fdtgen" / "config" / "_schema.py").read_text()
    assert current == config.render_compiled(), (
        "fdtgen/_config_schema.py is stale: run `python -m fdtgen.config`"
    )


def outcome_via_models(data):
    try:
        cfg = config.validate(dict(data))
    except ConfigError as e:
        return ("error", str(e))
    return ("ok", cfg.model_dump(), cfg.machine())


def outcome_via_compiled(data):
    try:
        s = configrules.validate(dict(data))
    except ConfigError as e:
        return ("error", str(e))
    return ("ok", s.values, s.machine())


CASES = [
    {},
    {"vcpus": 4, "memory": "1GiB", "cmdline": "x", "virtio": 0, "serial": False},
    {"psci_method": "smc", "redist_stride": "256KiB", "ram_base": 0x4000_0000},
    {"topology": {"sockets": 1, "clusters": 2, "cores": 2}},
    {"kernel": {"size": "20MiB", "image_size": "30MiB"}, "initrd": {"size": 4096}},
    {"kernel": "Image", "initrd": "initrd.img", "rng_seed": 64, "kaslr_seed": True},
    {"entropy_seed": "fixed"},
    {"vcpus": 0},
    {"vcpus": "4"},
    {"vcpus": 4.0},
    {"memory": "lots"},
    {"memory": 0},
    {"memory": True},
    {"memory": 2**64},
    {"virtio": 33},
    {"serial": "yes"},
    {"psci_method": "svc"},
    {"vcpu": 4},
    {"kernel": {"size": 1, "bogus": 2}},
    {"kernel": {"size": 1, "text_offset": "2MiB"}},
    {"kernel": ""},
    {"initrd": {}},
    {"topology": {"sockets": 0}},
    {"address_width": 65},
    {"entropy_seed": ""},
    {"rng_seed": 2000, "vcpus": -1},
    {"cmdline": "console=ttyAMA0\x00init=/bin/sh"},
    {"cmdline": "a" * 2047},
    {"cmdline": "a" * 2048},
    {"cmdline": "\u00e9" * 1023},
    {"cmdline": "\u00e9" * 1024},
    {"cmdline": "\ud800"},
    {"kernel": "boot/Image\x00"},
    {"initrd": "\x00"},
]


@pytest.mark.parametrize("data", CASES, ids=[repr(c)[:40] for c in CASES])
def test_models_and_compiled_schema_agree(data):
    assert outcome_via_compiled(data) == outcome_via_models(data)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**65),
    st.floats(allow_nan=False),
    st.sampled_from(
        ["", "1GiB", "512MiB", "hvc", "smc", "squib", "0x1000", "4", "x", "a\x00b", "x" * 2048]
    ),
    st.dictionaries(
        st.sampled_from(["size", "text_offset", "sockets", "cores", "x"]),
        st.integers(-1, 2**21),
        max_size=3,
    ),
)
KEYS = st.sampled_from(
    [
        "template",
        "vcpus",
        "memory",
        "cmdline",
        "virtio",
        "serial",
        "psci_method",
        "redist_stride",
        "ram_base",
        "address_width",
        "topology",
        "kernel",
        "initrd",
        "rng_seed",
        "kaslr_seed",
        "entropy_seed",
        "unknown",
    ]
)


@given(data=st.dictionaries(KEYS, VALUES, max_size=4))
def test_models_and_compiled_schema_agree_on_generated_input(data):
    assert outcome_via_compiled(data) == outcome_via_models(data)


def test_build_from_a_config_imports_neither_pydantic_nor_pydantic_core(tmp_path: Path):
    cfg = tmp_path / "vm.toml"
    cfg.write_text('vcpus = 4\nmemory = "1GiB"\nkernel = { size = "20MiB" }\n')
    code = (
        "import sys\n"
        "from fdtgen.cli import main\n"
        f"rc = main(['build', {str(cfg)!r}, '--vcpus', '3', '-o', {str(tmp_path / 'g.dtb')!r}])\n"
        "print(rc, 'pydantic' in sys.modules, 'pydantic_core' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0", "False", "False"]


# -- /chosen/bootargs: one NUL-terminated string within arm64's COMMAND_LINE_SIZE ----


@pytest.mark.parametrize(
    "validate", [config.validate, configrules.validate], ids=["models", "compiled"]
)
@pytest.mark.parametrize(
    "cmdline, match",
    [
        (
            "console=ttyAMA0\x00init=/bin/sh",
            r"^config: cmdline: 'console=ttyAMA0\\x00init=/bin/sh': contains a NUL "
            r"byte at offset 15 \(/chosen/bootargs is one NUL-terminated string\)$",
        ),
        (
            "a" * 2048,
            r"^config: cmdline: 'a{59}\.\.\. \(2048 chars\): is 2049 bytes with its "
            r"NUL, over arm64's "
            r"COMMAND_LINE_SIZE of 2048 bytes \(Linux would silently truncate it\)$",
        ),
        ("\u00e9" * 1024, r"cmdline: .*: is 2049 bytes with its NUL"),  # UTF-8 bytes
        ("\ud800", r"cmdline: '\\ud800': is not valid UTF-8 text"),
    ],
    ids=["nul", "2048-bytes", "1024-two-byte-chars", "surrogate"],
)
def test_bad_cmdlines_are_rejected_naming_the_rule(validate, cmdline, match):
    with pytest.raises(ConfigError, match=match):
        validate({"cmdline": cmdline})


@pytest.mark.parametrize(
    "validate", [config.validate, configrules.validate], ids=["models", "compiled"]
)
def test_the_longest_cmdline_arm64_keeps_is_accepted(validate):
    assert validate({"cmdline": "a" * 2047}).cmdline == "a" * 2047
    assert validate({"cmdline": "\u00e9" * 1023 + "a"}).machine().cmdline.endswith("a")


@pytest.mark.parametrize("key", ["kernel", "initrd"])
def test_a_nul_in_a_file_path_is_a_config_error(key):
    with pytest.raises(ConfigError, match=rf"{key}: 'a\\x00b': contains a NUL"):
        configrules.validate({key: "a\x00b"})


@pytest.mark.parametrize(
    "args, message",
    [
        (
            [str(FIXTURES / "configs" / "cmdline-nul-fail.json")],
            "cmdline-nul-fail.json: cmdline: 'console=ttyAMA0\\x00init=/bin/sh': "
            "contains a NUL byte at offset 15",
        ),
        (
            ["--cmdline", "x" * 2100],
            "cmdline: '" + "x" * 59 + "... (2100 chars): is 2101 bytes with its NUL, "
            "over arm64's COMMAND_LINE_SIZE of 2048 bytes",
        ),
    ],
    ids=["nul-in-config", "too-long-option"],
)
def test_cli_rejects_bad_cmdlines_in_one_line_exit_2_and_no_file(tmp_path, args, message):
    out = tmp_path / "guest.dtb"
    r = run_cli("build", *args, "-o", str(out), "--dts", str(tmp_path / "guest.dts"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("fdtgen: error: ")
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert message in r.stderr
    assert r.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_defaults_are_what_validating_nothing_gives():
    from pydantic_core import SchemaValidator

    from fdtgen.config._schema import SCHEMA

    assert configrules.defaults() == SchemaValidator(SCHEMA).validate_python({})
    assert configrules.defaults() == config.Config().model_dump()
    assert configrules.validate({}).machine() == config.Config().machine()


# --- errors that teach: the key path, the value, what is allowed, the key meant ---


@pytest.mark.parametrize(
    "validate", [config.validate, configrules.validate], ids=["models", "core"]
)
@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"vcpu": 4}, "config: vcpu: unknown key (value 4); did you mean 'vcpus'?"),
        (
            {"templte": "squib"},
            "config: templte: unknown key (value 'squib'); did you mean 'template'?",
        ),
        (
            {"topology": {"socket": 1}},
            "config: topology.socket: unknown key (value 1); did you mean 'sockets'?",
        ),
        (
            {"kernel": {"size": 4096, "sise": 3}},
            "config: kernel.sise: unknown key (value 3); did you mean 'size'?",
        ),
        ({"virtio": 40}, "config: virtio: 40: must be <= 32 (allowed: 0..32)"),
        ({"vcpus": 0}, "config: vcpus: 0: must be >= 1 (allowed: 1..4096)"),
        (
            {"vcpus": "four"},
            "config: vcpus: 'four': input should be a valid integer (allowed: 1..4096)",
        ),
        (
            {"kernel": {"size": 4096, "text_offset": "4MiB"}},
            "config: kernel.text_offset: 0x400000: must be < 0x200000 (allowed: 0..0x1fffff)",
        ),
        (
            {"kernel": 5},
            "config: kernel: 5: must be a file path or a table with keys size, text_offset, "
            "image_size, flags",
        ),
        (
            {"memory": "1XB"},
            "config: memory: '1XB': '1XB' has unknown unit 'XB' (use B, KiB, MiB, GiB, TiB)",
        ),
    ],
)
def test_config_errors_name_the_key_value_and_what_is_allowed(validate, data, line):
    with pytest.raises(ConfigError) as e:
        validate(data)
    assert str(e.value) == line


@pytest.mark.parametrize(
    "validate", [config.validate, configrules.validate], ids=["models", "core"]
)
def test_an_unknown_key_far_from_any_lists_the_valid_keys(validate):
    with pytest.raises(ConfigError) as e:
        validate({"xyzzy": 1})
    keys = ", ".join(config.Config.model_fields)
    assert str(e.value) == f"config: xyzzy: unknown key (value 1); valid keys: {keys}"


def test_a_json_config_may_name_its_schema(tmp_path: Path):
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"$schema": "../schemas/config.schema.json", "vcpus": 3}')
    assert configrules.load(str(cfg)).vcpus == 3
