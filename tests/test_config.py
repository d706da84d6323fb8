"""Config validation: pydantic models in, the pipeline's inputs or one error line out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen.boot.image import InputFile, KernelImage, declared_kernel
from fdtgen.config import Config, load, override, validate
from fdtgen.devicetree.machine import Machine, Topology
from fdtgen.errors import ConfigError
from fdtgen.pipeline import Boot

from .conftest import FIXTURES
from .conftest import run_fdtgen as run_cli


def test_an_empty_config_is_the_default_machine():
    cfg = validate({})
    assert cfg == Config()
    assert cfg.machine() == Machine()
    assert cfg.boot() == Boot()


def test_a_config_becomes_the_pipelines_machine_and_boot_inputs():
    cfg = validate(
        {
            "template": "qemu-virt",
            "vcpus": 8,
            "memory": "1GiB",
            "cmdline": "console=ttyAMA0",
            "virtio": 4,
            "serial": False,
            "psci_method": "smc",
            "redist_stride": "256KiB",
            "ram_base": 0x4000_0000,
            "address_width": 40,
            "topology": {"sockets": 2, "cores": 2, "threads": 2},
            "kernel": {"size": "20MiB", "image_size": "30MiB"},
            "initrd": {"size": 4096},
            "rng_seed": 64,
            "kaslr_seed": True,
            "entropy_seed": "fixed",
        }
    )
    assert cfg.machine() == Machine(
        template="qemu-virt",
        vcpus=8,
        memory=1 << 30,
        cmdline="console=ttyAMA0",
        virtio=4,
        serial=False,
        psci_method="smc",
        redist_stride=256 << 10,
        ram_base=0x4000_0000,
        address_width=40,
        topology=Topology(sockets=2, clusters=1, cores=2, threads=2),
    )
    assert cfg.boot() == Boot(
        kernel=declared_kernel(20 << 20, 0, 30 << 20, 0),
        initrd_size=4096,
        rng_seed=64,
        kaslr_seed=True,
        entropy_seed=b"fixed",
    )


def test_kernel_and_initrd_files_are_read_through_the_readers_given():
    kernel = declared_kernel(4 << 20)
    initrd = InputFile("initrd", "/boot/initrd.img", 1234, "0" * 64)
    read: list[str] = []

    def read_kernel(path: str) -> KernelImage:
        read.append(path)
        return kernel

    def read_initrd(path: str) -> InputFile:
        read.append(path)
        return initrd

    boot = validate({"kernel": "/boot/Image", "initrd": "/boot/initrd.img"}).boot(
        read_kernel, read_initrd
    )
    assert read == ["/boot/Image", "/boot/initrd.img"]
    assert (boot.kernel, boot.initrd, boot.initrd_size) == (kernel, initrd, 1234)


def test_load_anchors_paths_to_the_config_file_and_applies_overrides(tmp_path: Path):
    cfg = tmp_path / "vm.toml"
    cfg.write_text('vcpus = 4\nkernel = "boot/Image"\ntemplate = "t/my.toml"\n')
    loaded = load(str(cfg), {"vcpus": 6, "memory": None})
    assert loaded.vcpus == 6
    assert loaded.kernel == str(tmp_path / "boot" / "Image")
    assert loaded.template == str(tmp_path / "t" / "my.toml")
    assert load(None).machine() == Machine()


def test_override_keeps_the_files_values_and_validates_the_new_ones(tmp_path: Path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"vcpus": 4, "kernel": {"size": "8MiB"}}))
    loaded = load(str(cfg))
    assert override(loaded, {"rng_seed": None}) is loaded
    changed = override(loaded, {"rng_seed": 32})
    assert (changed.vcpus, changed.kernel, changed.rng_seed) == (4, loaded.kernel, 32)
    with pytest.raises(ConfigError, match=r"^command line: rng_seed: 2000: must be <= 1024"):
        override(loaded, {"rng_seed": 2000}, str(cfg))


def test_a_bad_option_is_blamed_on_the_command_line_and_a_bad_file_key_on_the_file(
    tmp_path: Path,
):
    cfg = tmp_path / "vm.toml"
    cfg.write_text("virtio = 40\n")
    with pytest.raises(ConfigError, match=rf"^{cfg}: virtio: 40: must be <= 32"):
        load(str(cfg), {"vcpus": 2})
    with pytest.raises(ConfigError, match=r"^command line: vcpus: 0: must be >= 1"):
        load(None, {"vcpus": 0})


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**65),
    st.floats(allow_nan=True),
    st.sampled_from(
        ["", "1GiB", "512MiB", "hvc", "smc", "squib", "0x1000", "4", "x", "a\x00b", "x" * 2048]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(
        st.sampled_from(["size", "text_offset", "sockets", "cores", "x"]),
        st.one_of(st.integers(-1, 2**21), st.text(max_size=3), st.none()),
        max_size=3,
    ),
)
KEYS = st.sampled_from([*Config.model_fields, "unknown", "vcpu"])


@given(data=st.dictionaries(KEYS, VALUES, max_size=4))
def test_any_config_validates_or_is_rejected_in_one_line_naming_a_key(data):
    try:
        cfg = validate(data, "vm.toml")
    except ConfigError as e:
        line = str(e)
        assert "\n" not in line
        source, key, *_ = line.split(": ")
        assert source == "vm.toml"
        assert key.split(".")[0] in data
        return
    assert cfg.machine().vcpus == cfg.vcpus


# -- /chosen/bootargs: one NUL-terminated string within arm64's COMMAND_LINE_SIZE ----


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
            r"^config: cmdline: 'a{60}'\.\.\. \(2048 chars\): is 2049 bytes with its "
            r"NUL, over arm64's "
            r"COMMAND_LINE_SIZE of 2048 bytes \(Linux would silently truncate it\)$",
        ),
        ("\u00e9" * 1024, r"cmdline: .*: is 2049 bytes with its NUL"),  # UTF-8 bytes
        ("\ud800", r"cmdline: '\\ud800': is not valid UTF-8 text"),
    ],
    ids=["nul", "2048-bytes", "1024-two-byte-chars", "surrogate"],
)
def test_bad_cmdlines_are_rejected_naming_the_rule(cmdline, match):
    with pytest.raises(ConfigError, match=match):
        validate({"cmdline": cmdline})


def test_the_longest_cmdline_arm64_keeps_is_accepted():
    assert validate({"cmdline": "a" * 2047}).cmdline == "a" * 2047
    assert validate({"cmdline": "\u00e9" * 1023 + "a"}).machine().cmdline.endswith("a")


@pytest.mark.parametrize("key", ["kernel", "initrd"])
def test_a_nul_in_a_file_path_is_a_config_error(key):
    with pytest.raises(ConfigError, match=rf"{key}: 'a\\x00b': contains a NUL"):
        validate({key: "a\x00b"})


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
            "command line: cmdline: '" + "x" * 60 + "'... (2100 chars): "
            "is 2101 bytes with its NUL, "
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


# --- errors that teach: the key path, the value, what is allowed, the key meant ---


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"vcpu": 4}, "config: vcpu: unknown key; did you mean 'vcpus'?"),
        (
            {"templte": "squib"},
            "config: templte: unknown key; did you mean 'template'?",
        ),
        (
            {"topology": {"socket": 1}},
            "config: topology.socket: unknown key; did you mean 'sockets'?",
        ),
        (
            {"kernel": {"size": 4096, "sise": 3}},
            "config: kernel.sise: unknown key; did you mean 'size'?",
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
            "config: memory: '1XB': unknown unit 'XB' (use B, K/KiB, M/MiB, G/GiB, T/TiB)",
        ),
        (  # the mistyped key, not the key it leaves missing
            {"kernel": {"sise": 4096}},
            "config: kernel.sise: unknown key; did you mean 'size'? (and 1 more)",
        ),
        ({"kernel": {}}, "config: kernel.size: {}: field required"),
        (
            {"initrd": "x", "topology": {"sockets": 0}},
            "config: topology.sockets: 0: must be >= 1 (allowed: 1..4096)",
        ),
        (
            {"ram_base": "0"},
            "config: ram_base: '0': must be > 0 (allowed: 1..0xffffffffffffffff)",
        ),
    ],
)
def test_config_errors_name_the_key_value_and_what_is_allowed(data, line):
    with pytest.raises(ConfigError) as e:
        validate(data)
    assert str(e.value) == line


def test_an_unknown_key_far_from_any_lists_the_valid_keys():
    with pytest.raises(ConfigError) as e:
        validate({"xyzzy": 1})
    keys = ", ".join(Config.model_fields)
    assert str(e.value) == f"config: xyzzy: unknown key; valid keys: {keys}"


def test_a_json_config_may_name_its_schema(tmp_path: Path):
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"$schema": "../schemas/config.schema.json", "vcpus": 3}')
    assert load(str(cfg)).vcpus == 3


def bootargs(blob: bytes) -> str:
    import libfdt

    fdt = libfdt.Fdt(blob)
    return fdt.getprop(fdt.path_offset("/chosen"), "bootargs").as_str()


@pytest.mark.parametrize(
    ("template", "console"),
    [("qemu-virt", "ttyAMA0"), ("firecracker", "ttyS0"), ("kvmtool", "ttyS0")],
)
def test_the_default_cmdline_names_the_templates_console_tty(template, console):
    b = validate({"template": template, "kernel": {"size": "2MiB"}}).build()
    assert bootargs(b.blob) == f"console={console} earlycon panic=-1"


@pytest.mark.parametrize("template", ["qemu-virt", "firecracker", "crosvm"])
def test_without_a_serial_console_the_default_cmdline_asks_for_none(template):
    from fdtgen.manifest import manifest_for

    b = validate({"template": template, "serial": False, "kernel": {"size": "2MiB"}}).build()
    assert bootargs(b.blob) == "panic=-1"
    assert manifest_for(b)["cmdline"] == "panic=-1"
