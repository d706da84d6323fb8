"""The command line as a user runs it: exit codes, one-line errors, atomic output."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import FIXTURES, ROOT
from .conftest import run_fdtgen as fdtgen

CONFIGS = FIXTURES / "configs"


def test_build_without_config_writes_the_default_machine(tmp_path, dtc):
    out = tmp_path / "guest.dtb"
    r = fdtgen("build", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    blob = out.read_bytes()
    assert dtc.dtb_to_dtb(blob)[0] == blob


def test_default_config_file_equals_the_embedded_default(tmp_path):
    a, b = tmp_path / "a.dtb", tmp_path / "b.dtb"
    assert fdtgen("build", "-o", str(a)).returncode == 0
    assert fdtgen("build", str(CONFIGS / "default.toml"), "-o", str(b)).returncode == 0
    assert a.read_bytes() == b.read_bytes()


def test_cli_overrides_take_precedence_over_the_config():
    r = fdtgen(
        "dts",
        str(CONFIGS / "default.toml"),
        "--vcpus",
        "4",
        "--memory",
        "1GiB",
        "--virtio",
        "2",
        "--cmdline",
        "console=ttyAMA0 marker=42",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("cpu@") == 4
    assert r.stdout.count("virtio_mmio@") == 2
    assert "0x40000000>" in r.stdout
    assert 'bootargs = "console=ttyAMA0 marker=42";' in r.stdout


def test_dts_output_compiles_back_to_the_build_output(tmp_path, dtc):
    out = tmp_path / "g.dtb"
    assert fdtgen("build", "-o", str(out), "--vcpus", "3").returncode == 0
    text = fdtgen("dts", "--vcpus", "3").stdout
    compiled, warnings = dtc.dts_to_dtb(text)
    assert warnings == ""
    assert compiled == out.read_bytes()


def test_dts_of_a_config_with_a_kernel_is_the_tree_build_writes(tmp_path, dtc):
    """The config's kernel, initrd and seeds shape /chosen in dts exactly as in build."""
    out = tmp_path / "g.dtb"
    config = str(ROOT / "examples" / "placed.toml")
    assert fdtgen("build", config, "-o", str(out)).returncode == 0
    text = fdtgen("dts", config).stdout
    assert "linux,initrd-start" in text and "kaslr-seed" in text
    compiled, warnings = dtc.dts_to_dtb(text)
    assert warnings == "" and compiled == out.read_bytes()
    assert fdtgen("dts", config, "--rng-seed", "0").stdout.count("rng-seed") == 0
    r = fdtgen("dts", str(out), "--kernel", config)
    assert r.returncode == 2 and "--kernel: machine options do not apply to a DTB" in r.stderr


@pytest.mark.parametrize(
    "config, message",
    [
        ("vcpus-33-fail.toml", "vcpus: 33 is outside 1..32 (template 'squib' max_vcpus)"),
        ("ram-past-max-fail.toml", "past the DRAM max end 0x10000000000 of template 'squib'"),
        ("stride-overflow-fail.toml", "past the 'gic-redist' window [0x80a0000, 0xe0a0000)"),
        ("unknown-key-fail.toml", "vcpu: unknown key"),
        ("bad-memory-fail.json", "memory: 'lots'"),
        (
            "template-overlap-fail.toml",
            "region 'uart0' [0xe0a0000, 0xe0a1000) overlaps region 'virtio'",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, config, message):
    out = tmp_path / "guest.dtb"
    r = fdtgen("build", str(CONFIGS / config), "-o", str(out))
    assert r.returncode == 2
    assert r.stderr.startswith("fdtgen: error: ")
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert message in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_failed_build_leaves_an_existing_output_untouched(tmp_path):
    out = tmp_path / "guest.dtb"
    out.write_bytes(b"previous")
    r = fdtgen("build", "--vcpus", "0", "-o", str(out))
    assert r.returncode == 2
    assert "vcpus: 0" in r.stderr
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guest.dtb"]


def test_missing_config_file_is_a_clear_error(tmp_path):
    r = fdtgen("build", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "x.dtb"))
    assert r.returncode == 2
    assert "nope.toml: cannot read config" in r.stderr


def test_output_is_identical_across_hash_seeds(tmp_path):
    blobs = []
    for seed in ("0", "1", "12345"):
        out = tmp_path / f"{seed}.dtb"
        r = fdtgen("build", "-o", str(out), "--vcpus", "7", env={"PYTHONHASHSEED": seed})
        assert r.returncode == 0
        blobs.append(out.read_bytes())
    assert blobs[0] == blobs[1] == blobs[2]


def test_console_script_entry_point_runs_the_cli():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "fdtgen"]
    assert ep.value == "fdtgen.cli:main"
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlib.metadata import entry_points; "
            "ep = [e for e in entry_points(group='console_scripts') if e.name == 'fdtgen'][0]; "
            "sys.exit(ep.load()(['templates']))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0 and "squib" in r.stdout


def test_several_outputs_are_written_all_or_none(tmp_path):
    dtb = tmp_path / "g.dtb"
    r = fdtgen("build", "-o", str(dtb), "--dts", str(tmp_path / "missing" / "g.dts"))
    assert r.returncode == 2
    assert "cannot write" in r.stderr and r.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_replacing_an_output_keeps_its_permissions(tmp_path):
    dtb = tmp_path / "g.dtb"
    dtb.write_bytes(b"old")
    dtb.chmod(0o600)
    assert fdtgen("build", "-o", str(dtb)).returncode == 0
    assert dtb.stat().st_mode & 0o777 == 0o600
    assert dtb.read_bytes()[:4] == bytes.fromhex("d00dfeed")


def test_templates_command_lists_squib():
    r = fdtgen("templates")
    assert r.returncode == 0
    assert r.stdout.startswith("squib") or "\nsquib" in r.stdout


# A blob-only command never reads a config, so it never pays for the config validator.
# pydantic, and dataclasses with its inspect (milliseconds of each start), and
# the template layer a blob alone never needs.
HEAVY = ("pydantic", "pydantic_core", "dataclasses", "inspect", "fdtgen.template", "fdtgen.irq")


@pytest.mark.parametrize("command", [["verify"], ["dts"], ["verify", "--json"]])
def test_blob_commands_import_no_heavy_modules(tmp_path, command):
    """Run without ``site`` (whose ``.pth`` hooks may import some of these first)
    and list what the command itself imports."""
    import site

    blob = tmp_path / "g.dtb"
    assert fdtgen("build", "-o", str(blob)).returncode == 0
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, *{site.getsitepackages()!r}]\n"
        "before = set(sys.modules)\n"
        "from fdtgen.cli import main\n"
        f"rc = main([{command[0]!r}, {str(blob)!r}, *{command[1:]!r}])\n"
        "print(rc, *sorted(set(sys.modules) - before), file=sys.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False
    )
    rc, *imported = run.stderr.split()
    assert rc == "0", run.stderr
    assert "fdtgen.checks" in imported or command == ["dts"]
    assert sorted(set(HEAVY) & set(imported)) == []
    # the template and manifest rules load only with --template / --manifest
    assert not {"fdtgen.checks.boot", "fdtgen.checks.manifest", "fdtgen.checks.template"} & set(
        imported
    )


def test_an_output_that_is_a_directory_is_an_output_error_not_a_config_error(tmp_path):
    from fdtgen.cli.common import write_atomic
    from fdtgen.errors import ConfigError, OutputError

    with pytest.raises(OutputError, match="is a directory") as e:
        write_atomic(str(tmp_path), b"x")
    assert not isinstance(e.value, ConfigError)
    r = fdtgen("build", "-o", str(tmp_path))
    assert r.returncode == 2 and r.stderr == f"fdtgen: error: {tmp_path}: output: is a directory\n"


def test_address_width_is_a_machine_option(tmp_path):
    out = tmp_path / "fc.dtb"
    r = fdtgen("build", "--template", "firecracker", "--address-width", "36", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert fdtgen("verify", "--address-bits", "36", str(out)).returncode == 0
    # qemu-virt's 64-bit PCIe window ends at 2^40: 36 bits cannot hold it.
    bad = fdtgen("build", "--template", "qemu-virt", "--address-width", "36", "-o", str(out))
    assert bad.returncode == 2
    (line,) = bad.stderr.splitlines()
    assert line.startswith("fdtgen: error: command line: address_width: region 'pcie-")
    assert "36-bit" in line
