"""``fdtgen codegen``: the layout as Rust and C that compile, prove the map, and catch drift.

Every built-in template's Rust compiles with ``rustc --edition 2021 -D warnings``
and its C with ``cc -std=c11 -Wall -Wextra -Werror``; an injected overlap,
misalignment or vCPU overflow makes each compile fail with the proof's
message. squib's constants are held to squib's own ``layout.rs``
(``fixtures/upstream/codegen/squib-layout-rs.toml``, written by hand from it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from fdtgen.codegen.check import constants
from fdtgen.codegen.items import build_module
from fdtgen.codegen.model import const_name
from fdtgen.codegen.render import c_prefix, render
from fdtgen.template.load import builtin_names, load_template

from .conftest import FIXTURES
from .conftest import run_fdtgen as run

GOLDEN_TEMPLATES = ("squib", "qemu-virt", "firecracker")
EXT = {"rust": "rs", "c": "h"}
SQUIB_RS = tomllib.loads((FIXTURES / "upstream" / "codegen" / "squib-layout-rs.toml").read_text())


def tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is required (scripts/install-test-deps installs it)")
    return exe


def compile_rust(path: Path) -> subprocess.CompletedProcess[str]:
    """rustc as a VMM's build would run it, stopping after const evaluation."""
    out = path.with_suffix(".rmeta")
    cmd = [tool("rustc"), "--crate-type", "lib", "--edition", "2021", "-D", "warnings"]
    cmd += ["--emit", "metadata", "-o", str(out), str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def compile_c(path: Path) -> subprocess.CompletedProcess[str]:
    unit = path.with_name(path.stem + "_user.c")
    unit.write_text(f'#include "{path.name}"\nint layout_user;\n')
    cmd = [tool("cc"), "-std=c11", "-Wall", "-Wextra", "-Werror", "-c", str(unit)]
    cmd += ["-o", str(unit.with_suffix(".o"))]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=path.parent)


COMPILE = {"rust": compile_rust, "c": compile_c}


def generated(name: str, lang: str) -> str:
    t = load_template(name)
    m = build_module(
        t,
        virtio=t.virtio.slots,
        serial=True,
        address_width=None,
        redist_stride=None,
        command=f"fdtgen codegen --lang {lang} --template {name}",
    )
    return render(m, lang)


def edit(text: str, lang: str, name: str, value: int, prefix: str = "") -> str:
    """``text`` with constant ``name`` set to ``value`` (the line must exist)."""
    if lang == "rust":
        pattern = rf"(pub const {name}: u(?:64|32) = )[^;]+;"
        new = rf"\g<1>{value:#x};"
    else:
        pattern = rf"(#define {prefix}{name} )\S+?(ULL|U)$"
        new = rf"\g<1>{value:#x}\g<2>"
    out, n = re.subn(pattern, new, text, count=1, flags=re.M)
    assert n == 1, f"{name} not in the generated {lang}"
    return out


@pytest.mark.parametrize("lang", ["rust", "c"])
@pytest.mark.parametrize("name", GOLDEN_TEMPLATES)
def test_golden(name: str, lang: str, golden) -> None:
    r = run("codegen", "--lang", lang, "--template", name)
    assert r.returncode == 0, r.stderr
    golden(f"fixtures/golden/codegen/{name}.{EXT[lang]}", r.stdout.encode())


@pytest.mark.parametrize("lang", ["rust", "c"])
@pytest.mark.parametrize("name", GOLDEN_TEMPLATES)
def test_golden_compiles(name: str, lang: str, tmp_path: Path) -> None:
    path = tmp_path / f"layout.{EXT[lang]}"
    shutil.copy(FIXTURES / "golden" / "codegen" / f"{name}.{EXT[lang]}", path)
    r = COMPILE[lang](path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("lang", ["rust", "c"])
@pytest.mark.parametrize("name", builtin_names())
def test_every_template_compiles(name: str, lang: str, tmp_path: Path) -> None:
    path = tmp_path / f"layout.{EXT[lang]}"
    path.write_text(generated(name, lang))
    r = COMPILE[lang](path)
    assert r.returncode == 0, r.stderr


def test_rust_module_also_works_through_include(tmp_path: Path) -> None:
    """A build.rs flow writes the file to OUT_DIR and includes it into a module."""
    (tmp_path / "layout.rs").write_text(generated("squib", "rust"))
    lib = tmp_path / "lib.rs"
    lib.write_text(
        'pub mod layout {\n    include!("layout.rs");\n}\n'
        "pub const DTB_TOP: u64 = layout::DRAM_START + layout::FDT_MAX_SIZE;\n"
    )
    r = compile_rust(lib)
    assert r.returncode == 0, r.stderr


def injections(name: str) -> list[tuple[str, dict[str, int], str]]:
    """(what, the one constant changed, a message the compiler must print) for ``name``."""
    t = load_template(name)
    regions = [r for r in t.pinned_regions() if not r.tag.startswith("dram")]
    a, b = next((x, y) for x, y in zip(regions, regions[1:], strict=False) if x.range.size > 0x1000)
    # b now starts in the last page of a
    overlap = {f"{const_name(b.tag)}_START": a.range.end - 0x1000}
    aligned = next(r for r in regions if r.align >= 0x1000)
    odd = {f"{const_name(aligned.tag)}_START": aligned.range.base + 8}
    if t.gic.version == 2:
        vcpus = ({"MAX_VCPUS": 9}, "a GICv2 targets at most 8 vCPUs")
    else:
        windows = sum(w.size for w in t.gic.redist_windows())
        vcpus = (
            {"MAX_VCPUS": windows // t.gic.redist_stride + 1},
            "the redistributor windows hold fewer than MAX_VCPUS x GIC_REDIST_STRIDE bytes",
        )
    return [
        ("overlap", overlap, f"{a.tag} and {b.tag} overlap"),
        ("misalignment", odd, f"{aligned.tag}: start is not aligned to"),
        ("vcpu-overflow", *vcpus),
    ]


CASES = [
    (name, lang, what)
    for name in builtin_names()
    for lang in ("rust", "c")
    for what in ("overlap", "misalignment", "vcpu-overflow")
]


@pytest.mark.parametrize(("name", "lang", "what"), CASES)
def test_injected_fault_fails_the_compile(name: str, lang: str, what: str, tmp_path: Path) -> None:
    text = generated(name, lang)
    prefix = c_prefix(name) if lang == "c" else ""
    changes, message = next((c, m) for w, c, m in injections(name) if w == what)
    for const, value in changes.items():
        text = edit(text, lang, const, value, prefix)
    path = tmp_path / f"layout.{EXT[lang]}"
    path.write_text(text)
    r = COMPILE[lang](path)
    assert r.returncode != 0, f"{what} in {name} compiled"
    assert message in r.stderr, r.stderr


def test_squib_equals_its_layout_rs() -> None:
    got = constants(generated("squib", "rust"))
    for entry in SQUIB_RS["const"]:
        name = entry["generated"]
        assert name in got, f"{entry['upstream']}: no {name} in the generated module"
        assert got[name][0] == entry["value"], (
            f"{entry['upstream']} = {entry['value']:#x} in layout.rs, {name} = {got[name][0]:#x}"
        )


def test_squib_equals_its_layout_rs_through_rustc(tmp_path: Path) -> None:
    """The same equalities, as the compiler sees the generated constants."""
    (tmp_path / "layout.rs").write_text(generated("squib", "rust"))
    checks = [
        f"const _: () = assert!(layout::{e['generated']} as u64 == {e['value']:#x}, "
        f'"{e["upstream"]}");'
        for e in SQUIB_RS["const"]
    ]
    lib = tmp_path / "squib_layout.rs"
    lib.write_text('pub mod layout {\n    include!("layout.rs");\n}\n' + "\n".join(checks) + "\n")
    r = compile_rust(lib)
    assert r.returncode == 0, r.stderr


def test_layout_rs_fixture_still_catches_a_wrong_number(tmp_path: Path) -> None:
    """The rustc check above fails when a generated value differs from layout.rs."""
    text = edit(generated("squib", "rust"), "rust", "UART0_START", 0x0E0B_0000)
    (tmp_path / "layout.rs").write_text(text)
    lib = tmp_path / "squib_layout.rs"
    lib.write_text(
        'pub mod layout {\n    include!("layout.rs");\n}\n'
        'const _: () = assert!(layout::UART0_START == 0x0E0A_0000, "PL011_BASE");\n'
    )
    r = compile_rust(lib)
    assert r.returncode != 0
    assert "PL011_BASE" in r.stderr


@pytest.mark.parametrize("lang", ["rust", "c"])
def test_check_reports_a_hand_edited_constant(lang: str, tmp_path: Path) -> None:
    path = tmp_path / f"layout.{EXT[lang]}"
    r = run("codegen", "--lang", lang, "--template", "squib", "-o", str(path))
    assert r.returncode == 0, r.stderr
    clean = run("codegen", "--check", str(path))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "up to date" in clean.stdout

    prefix = "SQUIB_" if lang == "c" else ""
    path.write_text(edit(path.read_text(), lang, "GIC_DIST_START", 0x0800_1000, prefix))
    line = next(
        i
        for i, text in enumerate(path.read_text().splitlines(), 1)
        if re.match(rf"(pub const|#define) {prefix}GIC_DIST_START\b", text)
    )
    r = run("codegen", "--check", str(path))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"{path}:{line}: {prefix}GIC_DIST_START is 0x8001000; the template gives "
        + ("0x0800_0000" if lang == "rust" else "0x08000000")
    ]
    assert r.stderr == ""


def test_check_reports_missing_stale_and_text_drift(tmp_path: Path) -> None:
    path = tmp_path / "layout.rs"
    text = generated("squib", "rust").replace(
        "pub const UART0_SIZE: u64 = 0x1000;", "pub const UART0_BYTES: u64 = 0x1000;"
    )
    path.write_text(text)
    r = run("codegen", "--check", str(path))
    assert r.returncode == 1
    out = r.stdout.splitlines()
    assert f"{path}: UART0_SIZE is missing; the template gives 0x1000" in out
    assert any(s.endswith("UART0_BYTES = 0x1000 is not in the template any more") for s in out)
    assert len(out) == 2

    path.write_text(generated("squib", "rust").replace('"uart0 overlaps DRAM"', '"x"'))
    r = run("codegen", "--check", str(path))
    assert r.returncode == 1
    (finding,) = r.stdout.splitlines()
    assert "the constants agree, but the text differs" in finding


def test_check_against_a_changed_template(tmp_path: Path) -> None:
    """A template edit (the UART moved) shows up as drift in the file made before it."""
    src = load_template("squib").path
    changed = tmp_path / "squib.toml"
    changed.write_text(Path(src).read_text())
    out = tmp_path / "layout.h"
    r = run("codegen", "--lang", "c", "--template", str(changed), "-o", str(out))
    assert r.returncode == 0, r.stderr
    changed.write_text(changed.read_text().replace('dist_size = "64KiB"', 'dist_size = "128KiB"'))
    r = run("codegen", "--check", str(out))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"{out}:{line}: SQUIB_{name} is {old}; the template gives {new}"
        for name, old, new, line in [
            ("GIC_DIST_SIZE", "0x00010000", "0x00020000", _line(out, "SQUIB_GIC_DIST_SIZE")),
            ("GIC_DIST_END", "0x08010000", "0x08020000", _line(out, "SQUIB_GIC_DIST_END")),
        ]
    ]


def _line(path: Path, name: str) -> int:
    return next(
        i
        for i, s in enumerate(path.read_text().splitlines(), 1)
        if s.startswith(f"#define {name} ")
    )


def test_output_is_deterministic_across_hash_seeds() -> None:
    outs = {
        run(
            "codegen",
            "--lang",
            "c",
            "--template",
            "qemu-virt",
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("0", "1", "4242")
    }
    assert len(outs) == 1


def test_config_and_overrides_reach_the_module(tmp_path: Path) -> None:
    cfg = tmp_path / "vm.toml"
    cfg.write_text('template = "firecracker"\nvirtio = 4\naddress_width = 44\n')
    r = run("codegen", "--lang", "rust", str(cfg))
    assert r.returncode == 0, r.stderr
    got = constants(r.stdout)
    assert got["PHYS_ADDR_BITS"][0] == 44
    # Firecracker hands SPIs out in attach order: four transports, then the UART.
    assert got["VIRTIO_SPI_LINES"][0] == 4
    assert got["UART0_SPI"][0] == 4
    assert f"Regenerate: fdtgen codegen --lang rust {cfg}" in r.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "squib"], "give --lang rust or --lang c"),
        (["--lang", "rust", "--prefix", "X_"], "--prefix names C macros"),
        (
            ["--lang", "c", "--template", "squib", "--address-width", "32"],
            "template 'squib' breaks a proof: dram ends past PHYS_ADDR_BITS "
            "(DRAM_END = 0x10000000000, PHYS_ADDR_MAX = 0xffffffff)",
        ),
        (
            ["--lang", "rust", "--template", "firecracker", "--virtio", "33"],
            "virtio: 33: must be <= 32",
        ),
        (["--lang", "cobol"], "invalid choice: 'cobol'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    args: list[str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "layout.rs"
    r = run("codegen", *args, "-o", str(out))
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert r.stdout == ""
    assert not out.exists()


def test_check_of_a_fifo_or_directory_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "layout.rs"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        r = run("codegen", "--check", str(path), timeout=30)
        assert r.returncode == 2
        assert len(r.stderr.splitlines()) == 1
        assert "not a regular file" in r.stderr


def test_check_of_a_file_codegen_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "layout.rs"
    path.write_text("pub const X: u64 = 1;\n")
    r = run("codegen", "--check", str(path))
    assert r.returncode == 2
    assert "no 'Regenerate: fdtgen codegen' line" in r.stderr
    path.write_bytes(b"\xff\xfe")
    r = run("codegen", "--check", str(path))
    assert r.returncode == 2
    assert "not UTF-8" in r.stderr
    r = run("codegen", "--check", str(tmp_path / "absent.rs"))
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1
