"""The Python API: ``fdtgen.build`` and ``fdtgen.verify``, held to the CLI, dtc and the goldens."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import fdtgen
from fdtgen.errors import BlobError, ConfigError
from fdtgen.manifest import to_json

from .conftest import FIXTURES, ROOT, run_fdtgen

PLACED = ROOT / "examples" / "placed.toml"


def test_all_is_what_docs_api_md_documents():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `fdtgen\.(\w+)", text, re.M))
    assert documented == set(fdtgen.__all__)
    for name in fdtgen.__all__:
        assert getattr(fdtgen, name) is not None


def test_build_without_a_config_is_the_embedded_default_machine():
    assert fdtgen.build().blob == (FIXTURES / "golden" / "default.dtb").read_bytes()


def test_build_of_a_file_gives_the_clis_dtb_dts_and_manifest(tmp_path):
    out = tmp_path / "g.dtb"
    dts = tmp_path / "g.dts"
    manifest = tmp_path / "boot.json"
    r = run_fdtgen(
        "build", str(PLACED), "-o", str(out), "--dts", str(dts), "--manifest", str(manifest)
    )
    assert r.returncode == 0, r.stderr
    result = fdtgen.build(PLACED)
    assert result.blob == out.read_bytes()
    assert result.dts == dts.read_text()
    assert result.manifest is not None
    assert to_json(result.manifest) == manifest.read_bytes()


def test_build_of_a_mapping_equals_the_same_config_as_a_file(tmp_path):
    config = {"vcpus": 4, "memory": "1GiB", "virtio": 8, "cmdline": "console=ttyAMA0"}
    path = tmp_path / "vm.json"
    path.write_text(
        '{"vcpus": 4, "memory": "1GiB", "virtio": 8, "cmdline": "console=ttyAMA0"}',
        encoding="utf-8",
    )
    from_mapping, from_file = fdtgen.build(config), fdtgen.build(path)
    assert from_mapping.blob == from_file.blob
    assert from_mapping.manifest is None  # no kernel: nothing to place
    assert [r.tag for r in from_mapping.layout.regions()] == [
        r.tag for r in from_file.layout.regions()
    ]


def test_the_dts_compiles_with_dtc_to_the_blob(dtc):
    result = fdtgen.build({"vcpus": 3, "kernel": {"size": "20MiB"}, "initrd": {"size": "4MiB"}})
    blob, warnings = dtc.dts_to_dtb(result.dts)
    assert (blob, warnings) == (result.blob, "")


def test_a_bad_config_raises_one_fdtgen_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"^config: vcpu: unknown key; did you mean 'vcpus'\?"):
        fdtgen.build({"vcpu": 4})
    assert issubclass(ConfigError, fdtgen.FdtgenError)


def test_verify_is_clean_on_a_build_and_a_blob_that_does_not_parse_is_one_error():
    blob = fdtgen.build().blob
    assert fdtgen.verify(blob) == []
    damaged = blob[:4] + (len(blob) + 8).to_bytes(4, "big") + blob[8:]  # totalsize past the end
    with pytest.raises(BlobError, match="totalsize"):
        fdtgen.verify(damaged)


def test_verify_with_the_template_and_manifest_checks_them(tmp_path):
    manifest = tmp_path / "boot.json"
    out = tmp_path / "g.dtb"
    r = run_fdtgen("build", str(PLACED), "-o", str(out), "--manifest", str(manifest))
    assert r.returncode == 0, r.stderr
    result = fdtgen.build(PLACED)
    assert fdtgen.verify(result.blob, template="squib", manifest=manifest) == []
    wrong = fdtgen.build({"template": "qemu-virt"}).blob
    findings = fdtgen.verify(wrong, template="squib")
    assert findings and all(isinstance(f, fdtgen.Finding) for f in findings)
    assert any(f.rule.startswith("template.") for f in findings)


def test_importing_fdtgen_does_not_import_pydantic():
    code = "import sys, fdtgen; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    (tmp_path / "vm.toml").write_text((ROOT / "examples" / "default.toml").read_text())
    r = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "guest.dtb").read_bytes() == fdtgen.build(
        ROOT / "examples" / "default.toml"
    ).blob


def test_an_edited_template_file_is_read_again_and_paths_are_accepted(tmp_path):
    mine = tmp_path / "mine.toml"
    squib = (ROOT / "templates" / "squib.toml").read_text()
    mine.write_text(squib)
    first = fdtgen.build({"template": str(mine)})
    assert fdtgen.verify(first.blob, template=mine) == []  # a Path, as manifest= takes
    mine.write_text(squib.replace('model = "squib,microvm"', 'model = "edited,microvm"'))
    os.utime(mine, ns=(1, 1))  # a different modification time, whatever the clock's grain
    second = fdtgen.build({"template": str(mine)})
    assert b"edited,microvm" in second.blob and b"edited,microvm" not in first.blob


def test_a_finding_is_an_immutable_named_tuple_whose_copies_are_checked():
    f = fdtgen.Finding("dtc.foo", "/", "", "", "m")
    assert f.severity == "warning" and f._replace(message="x").message == "x"
    assert f._replace(severity="") == f  # the rule's own severity again
    assert fdtgen.Finding._make(list(f)) == f
    with pytest.raises(ValueError, match="severity 'zzz' is not one of"):
        f._replace(severity="zzz")
    with pytest.raises(ValueError, match="severity 'zzz' is not one of"):
        fdtgen.Finding._make([*f[:5], "zzz", 0])
    with pytest.raises(AttributeError):
        f.rule = "x"  # type: ignore[misc]
    assert f.as_dict()["severity"] == "warning"
