"""The JSON Schemas: current, and true to what fdtgen accepts and writes.

The shipped examples validate against the config schema *and* build; every
manifest fdtgen writes for them validates against the manifest schema; and
configs fdtgen rejects for their shape are rejected by the schema too.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen.config import SIZE_PATTERN
from fdtgen.units import parse_size

from .conftest import ROOT
from .conftest import run_fdtgen as run

EXAMPLES = sorted((ROOT / "examples").glob("*.*"))


def schema(which: str) -> dict:
    return json.loads((ROOT / "schemas" / f"{which}.schema.json").read_text())


def validator(which: str) -> jsonschema.protocols.Validator:
    s = schema(which)
    cls = jsonschema.validators.validator_for(s)
    cls.check_schema(s)
    return cls(s)


def read_config(path: Path) -> dict:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return tomllib.loads(path.read_text())


@pytest.mark.parametrize("which", ["config", "manifest"])
def test_the_shipped_schemas_are_current(which: str, golden):
    out = run("schema", which)
    assert out.returncode == 0, out.stderr
    golden(f"schemas/{which}.schema.json", out.stdout.encode())


def test_schema_without_an_argument_is_the_manifest_schema():
    assert run("schema").stdout == run("schema", "manifest").stdout


def test_there_are_examples_in_both_formats():
    assert {p.suffix for p in EXAMPLES} == {".toml", ".json"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_config_validates_and_builds(path: Path, tmp_path: Path):
    data = read_config(path)
    validator("config").validate(data)
    if path.suffix == ".toml":
        assert path.read_text().startswith("#:schema ../schemas/config.schema.json\n")
    else:
        assert data["$schema"] == "../schemas/config.schema.json"
    args = ["build", str(path), "-o", str(tmp_path / "guest.dtb")]
    if "kernel" in data:
        args += ["--manifest", str(tmp_path / "boot.json")]
    out = run(*args)
    assert out.returncode == 0, out.stderr
    if "kernel" in data:
        validator("manifest").validate(json.loads((tmp_path / "boot.json").read_text()))


def test_manifests_of_every_template_validate(tmp_path: Path):
    from fdtgen.template.load import builtin_names

    v = validator("manifest")
    for name in builtin_names():
        cfg = tmp_path / f"{name}.toml"
        virtio = "" if name not in ("crosvm", "cloud-hypervisor") else "virtio = 0\n"
        cfg.write_text(
            f'template = "{name}"\n{virtio}kernel = {{ size = "20MiB" }}\n'
            'initrd = { size = "4MiB" }\nrng_seed = 16\n'
        )
        out = run(
            "build", str(cfg), "-o", str(tmp_path / "g.dtb"), "--manifest", str(tmp_path / "m.json")
        )
        assert out.returncode == 0, out.stderr
        v.validate(json.loads((tmp_path / "m.json").read_text()))


@pytest.mark.parametrize(
    "data",
    [
        {"vcpus": 0},
        {"vcpu": 2},
        {"virtio": 33},
        {"memory": "1XB"},
        {"memory": True},
        {"kernel": {"sise": 4096}},
        {"kernel": 5},
        {"topology": {"sockets": 0}},
        {"psci_method": "svc"},
        {"serial": "yes"},
    ],
    ids=repr,
)
def test_what_fdtgen_rejects_for_its_shape_the_schema_rejects(data: dict, tmp_path: Path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps(data))
    assert run("build", str(cfg), "-o", str(tmp_path / "g.dtb")).returncode == 2
    assert list(validator("config").iter_errors(data)), f"schema accepts {data}"


@given(
    st.one_of(
        st.text(alphabet="0123456789abcdefxXkKmMgGtTiIbB _\t", max_size=12),
        st.from_regex(r"\A\s?(0x[0-9a-f_]{1,6}|[0-9][0-9_]{0,6})\s?[kmgtKMGT]?[iI]?[bB]?\s?\Z"),
    )
)
def test_the_size_pattern_accepts_exactly_what_parse_size_accepts(text: str):
    try:
        parse_size(text)
        parsed = True
    except ValueError:
        parsed = False
    assert (re.search(SIZE_PATTERN, text) is not None) == parsed, text
