"""Config validation: the pydantic models and the compiled run-time path agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen import config, configrules
from fdtgen.errors import ConfigError

from .conftest import ROOT


def test_compiled_schema_is_current():
    current = (ROOT / "fdtgen" / "_config_schema.py").read_text()
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
]


@pytest.mark.parametrize("data", CASES, ids=[repr(c)[:40] for c in CASES])
def test_models_and_compiled_schema_agree(data):
    assert outcome_via_compiled(data) == outcome_via_models(data)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**65),
    st.floats(allow_nan=False),
    st.sampled_from(["", "1GiB", "512MiB", "hvc", "smc", "squib", "0x1000", "4", "x"]),
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


def test_build_from_a_config_does_not_import_pydantic(tmp_path: Path):
    code = (
        "import sys\n"
        "from fdtgen.cli import main\n"
        f"rc = main(['build', '--vcpus', '4', '-o', {str(tmp_path / 'g.dtb')!r}])\n"
        "print(rc, 'pydantic' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0", "False"]
