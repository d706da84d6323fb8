"""``fdtgen build-many``: one process, many machines, the same bytes as ``fdtgen build``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from fdtgen.batch import BatchItemError, Item, build_items, items_from_dir, items_from_lines
from fdtgen.errors import ConfigError

from .conftest import FIXTURES, ROOT, run_fdtgen

KERNEL = FIXTURES / "kernel" / "vmlinuz-6.1.0-56-cloud-arm64.head"

CONFIGS = {
    "small.toml": 'vcpus = 1\nmemory = "256MiB"\ncmdline = "console=ttyAMA0 id=small"\n',
    "wide.toml": 'vcpus = 16\nvirtio = 8\nmemory = "4GiB"\ninitrd = { size = "20MiB" }\n',
    "qemu.json": json.dumps({"template": "qemu-virt", "virtio": 2, "rng_seed": 32}),
    "fc.json": json.dumps({"template": "firecracker", "memory": "1GiB", "kaslr_seed": True}),
}


def fdtgen(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI from another working directory (the checkout stays importable)."""
    return run_fdtgen(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT)}, stdin=stdin)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    d = tmp_path / "configs"
    d.mkdir()
    for name, text in CONFIGS.items():
        (d / name).write_text(text)
    (d / "notes.txt").write_text("not a config")
    return d


def test_a_directory_builds_what_build_builds_config_by_config(config_dir, tmp_path):
    kernel = str(KERNEL.resolve())
    run = fdtgen("build-many", "configs", "-o", "out", "--kernel", kernel, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "built 4 machines into out" in run.stderr
    names = sorted(n.rsplit(".", 1)[0] for n in CONFIGS)
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        f"{n}.{ext}" for n in names for ext in ("dtb", "json")
    )
    for name in CONFIGS:
        stem = name.rsplit(".", 1)[0]
        config = os.path.join("configs", name)
        one = fdtgen(
            "build",
            config,
            "--kernel",
            kernel,
            "-o",
            "one.dtb",
            "--manifest",
            "one.json",
            cwd=tmp_path,
        )
        assert one.returncode == 0, one.stderr
        assert (tmp_path / "out" / f"{stem}.dtb").read_bytes() == (
            tmp_path / "one.dtb"
        ).read_bytes()
        many = (tmp_path / "out" / f"{stem}.json").read_bytes()
        assert many.count(b"\n") == 1  # one line per manifest
        assert json.loads(many) == json.loads((tmp_path / "one.json").read_bytes())
        inputs = {i["role"]: i for i in json.loads(many)["inputs"]}
        raw = (config_dir / name).read_bytes()
        assert inputs["config"] == {
            "role": "config",
            "path": config,
            "size": len(raw),
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
        assert inputs["kernel"]["path"] == kernel


def test_json_lines_on_stdin_name_their_outputs(tmp_path):
    lines = [
        json.dumps({"name": "vm-a", "vcpus": 2, "cmdline": "console=ttyAMA0 id=a"}),
        "",  # blank lines are skipped but counted
        json.dumps({"memory": "1GiB"}),
    ]
    run = fdtgen(
        "build-many",
        "-",
        "-o",
        "out",
        "--kernel",
        str(KERNEL),
        cwd=tmp_path,
        stdin="\n".join(lines),
    )
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(tmp_path / "out")) == [
        "vm-000003.dtb",
        "vm-000003.json",
        "vm-a.dtb",
        "vm-a.json",
    ]
    manifest = json.loads((tmp_path / "out" / "vm-a.json").read_bytes())
    assert manifest["cmdline"] == "console=ttyAMA0 id=a" and manifest["vcpus"] == 2
    # no config file, so only the kernel is an input; given on the command line, it is absolute
    assert [(i["role"], i["path"]) for i in manifest["inputs"]] == [("kernel", str(KERNEL))]
    third = json.loads((tmp_path / "out" / "vm-000003.json").read_bytes())
    assert sum(r["size"] for r in third["memory"]) == 1 << 30


def test_no_manifest_writes_only_blobs_and_no_kernel_means_no_manifest(config_dir, tmp_path):
    run = fdtgen(
        "build-many", "configs", "-o", "out", "--no-manifest", "--kernel", str(KERNEL), cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert all(n.endswith(".dtb") for n in os.listdir(tmp_path / "out"))
    (config_dir / "wide.toml").unlink()  # the only config with an initrd, which needs a kernel
    run = fdtgen("build-many", "configs", "-o", "plain", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(tmp_path / "plain")) == ["fc.dtb", "qemu.dtb", "small.dtb"]


@pytest.mark.parametrize(
    ("source", "stdin", "message"),
    [
        ("configs", None, "configs/wide.toml: vcpus: 99"),
        ("-", '{"name": "a"}\n{"name": "a"}\n', "stdin:2: name 'a' is used twice"),
        ("-", '{"name": "../up"}\n', "stdin:1: name '../up' must be 1-128 of [A-Za-z0-9._-]"),
        ("-", '{"vcpus": 2}\n[1]\n', "stdin:2: each line must be a JSON object"),
        ("-", "{nope\n", "stdin:1: not valid JSON"),
        ("empty", None, "empty: no *.toml or *.json configs"),
        ("missing", None, "missing: cannot list configs"),
    ],
)
def test_one_bad_item_is_one_error_and_nothing_is_written(
    config_dir, tmp_path, source, stdin, message
):
    (config_dir / "wide.toml").write_text("vcpus = 99\n")
    (tmp_path / "empty").mkdir()
    run = fdtgen("build-many", source, "-o", "out", cwd=tmp_path, stdin=stdin)
    assert run.returncode == 2
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_placement_failure_names_the_item(tmp_path):
    items = [
        Item("ok", {"kernel": {"size": "30MiB"}}, "first"),
        Item(
            "tight",
            {"memory": "64MiB", "kernel": {"size": "30MiB"}, "initrd": {"size": "60MiB"}},
            "second",
        ),
    ]
    with pytest.raises(BatchItemError, match="^second: placement: initrd") as e:
        build_items(items)
    assert e.value.item.name == "tight"


def test_items_read_from_a_directory_carry_their_file_and_anchor_paths(config_dir):
    (config_dir / "rel.toml").write_text('kernel = "../vmlinuz"\n')
    items = {i.name: i for i in items_from_dir(str(config_dir))}
    assert sorted(items) == ["fc", "qemu", "rel", "small", "wide"]
    rel = items["rel"]
    assert rel.data["kernel"] == os.path.join(str(config_dir), "../vmlinuz")
    assert [(f.role, f.path, f.size) for f in rel.inputs] == [
        ("config", os.path.join(str(config_dir), "rel.toml"), len('kernel = "../vmlinuz"\n'))
    ]
    assert list(items_from_lines(["", '{"name": "x"}'])) == [Item("x", {}, "stdin:2")]
    with pytest.raises(ConfigError, match="stdin:1: each line must be a JSON object"):
        list(items_from_lines(["3"]))
