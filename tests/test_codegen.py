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


def call(*cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)


def compile_rust(path: Path) -> subprocess.CompletedProcess[str]:
    """rustc as a VMM's build would run it, stopping after const evaluation."""
    out = path.with_suffix(".rmeta")
    cmd = [tool("rustc"), "--crate-type", "lib", "--edition", "2021", "-D", "warnings"]
    cmd += ["--emit", "metadata", "-o", str(out), str(path)]
    return call(*cmd)


def compile_c(path: Path) -> subprocess.CompletedProcess[str]:
    unit = path.with_name(path.stem + "_user.c")
    unit.write_text(f'#include "{path.name}"\nint layout_user;\n')
    cmd = [tool("cc"), "-std=c11", "-Wall", "-Wextra", "-Werror", "-c", str(unit)]
    cmd += ["-o", str(unit.with_suffix(".o"))]
    return call(*cmd, cwd=path.parent)


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
            "the redistributor windows hold fewer than MAX_VCPUS frames of GIC_REDIST_STRIDE",
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
            ["--lang", "c", "--template", "qemu-virt", "--address-width", "36"],
            "template 'qemu-virt' with address_width 36 breaks a proof: gic-redist2 ends past "
            "PHYS_ADDR_BITS "
            "(GIC_REDIST2_END = 0x4004000000, PHYS_ADDR_MAX = 0xfffffffff)",
        ),
        (
            ["--lang", "rust", "--template", "firecracker", "--virtio", "33"],
            "virtio: 33: must be <= 32",
        ),
        (["--lang", "cobol"], "invalid choice: 'cobol'"),
        (["--lang", "c", "--prefix", "my-vmm_"], "--prefix 'my-vmm_' must be a C identifier"),
        (["--lang", "c", "--prefix", "_X"], "must be a C identifier starting with a letter"),
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


# Maps made wrong by editing several constants consistently, so that only the
# proof named can catch them: (template, lang, {constant: value}, message).
BROKEN_MAPS = [
    (  # C arithmetic wraps: a window that wraps past 2^64 must still be caught
        "squib",
        "c",
        {"VIRTIO_START": 0xFFFF_FFFF_FFFF_F000, "VIRTIO_END": 0x1F000},
        "virtio: _END is not above _START",
    ),
    (  # more slots than SPI lines: slot 34 would raise the UART's SPI 50
        "squib",
        "rust",
        {
            "VIRTIO_SLOTS": 64,
            "VIRTIO_SIZE": 0x4_0000,
            "VIRTIO_END": 0x0F04_0000,
            "UART0_SPI": 50,
            "UART0_INTID": 82,
        },
        "VIRTIO_SPI_LINES does not match the slots",
    ),
    (  # the same clash, stated in the lines
        "squib",
        "c",
        {"UART0_SPI": 20, "UART0_INTID": 52},
        "share an SPI",
    ),
    ("crosvm", "rust", {"PCIE_INTX_LINES": 60}, "PCIE_INTX_LINES is not 28"),
    ("squib", "c", {"VIRTIO_SPI_LINES": 0xFFFF_FFF0}, "VIRTIO_SPI_LINES does not match"),
    ("squib", "rust", {"UART0_TRIGGER": 3}, "UART0_TRIGGER is not one of 1 (edge-rising)"),
    # Linux's GIC drivers refuse a level-low SPI
    ("squib", "c", {"UART0_TRIGGER": 8}, "UART0_TRIGGER is not one of 1 (edge-rising), 4"),
    ("qemu-virt", "rust", {"PCIE_INTX_TRIGGER": 1}, "PCIE_INTX_TRIGGER is not one of 4"),
    (
        "squib",
        "rust",
        {"MSI_SIZE": 0x0100_1000, "MSI_END": 0x0600_1000},
        "msi: size is not a multiple of 16 MiB",
    ),
    (  # the ITS sits right below the live redistributors, not anywhere below GICD
        "firecracker",
        "rust",
        {"GIC_ITS_START": 0x3F00_0000, "GIC_ITS_END": 0x3F02_0000},
        "the ITS must end where the redistributor window starts",
    ),
    ("cloud-hypervisor", "c", {"PCIE_BUS_LAST": 5}, "PCIE_ECAM_SIZE does not hold the buses"),
    ("crosvm", "rust", {"PCIE_INTX_FIRST_SLOT": 10}, "PCI INTx slots run past device 31"),
    ("squib", "rust", {"GIC_VERSION": 2}, "this map is a GICv3's"),
    # [gic] spis: an SPI past the VMM's GIC's last line never interrupts
    (
        "qemu-virt",
        "rust",
        {"VIRTIO_FIRST_SPI": 240, "VIRTIO_FIRST_INTID": 272},
        "virtio SPIs run past GIC_SPIS",
    ),
    (
        "crosvm",
        "c",
        {"PCIE_INTX_FIRST_SPI": 5, "PCIE_INTX_FIRST_INTID": 37},
        "pcie INTx SPIs run past GIC_SPIS",
    ),
    (
        "cloud-hypervisor",
        "rust",
        {"UART0_SPI": 224, "UART0_INTID": 256},
        "UART0_SPI must be below GIC_SPIS",
    ),
    ("firecracker", "c", {"VMCLOCK_SPI": 96, "VMCLOCK_INTID": 128}, "VMCLOCK_SPI must be below"),
    ("crosvm", "rust", {"GIC_SPIS": 0}, "GIC_SPIS is outside 1..988"),
    ("qemu-virt-gicv2", "c", {"GIC_VERSION": 3}, "this map is a GICv2's"),
    (  # KVM takes GICv3 frames at 64 KiB boundaries only
        "squib",
        "c",
        {"GIC_DIST_START": 0x0800_1000, "GIC_DIST_END": 0x0801_1000},
        "gic-dist: start is not aligned to 64 KiB",
    ),
    ("squib", "rust", {"FDT_MAX_SIZE": 0}, "FDT_MAX_SIZE: booting.rst wants"),
    ("squib", "c", {"VIRTIO_STRIDE": 0x1800}, "VIRTIO_STRIDE is not a power of 2"),
    (  # COM3 shares the console's edge-triggered line
        "crosvm",
        "rust",
        {"COM3_TRIGGER": 4},
        "uart0 shares com3's SPI: it must trigger the same way",
    ),
    (  # Firecracker hands the UART the line after the last transport's
        "firecracker",
        "rust",
        {"VIRTIO_SPI_LINES": 30},
        "uart0 must take the SPI after virtio's ([irq] order)",
    ),
    ("squib", "c", {"INITRD_OFFSET": 0x0100_0000_0000}, "INITRD_OFFSET is past the DRAM window"),
    (  # a device pulled out of the hole it lives in, into RAM
        "firecracker-pci",
        "rust",
        {"PCIE_MMIO64_START": 0x0030_0000_0000, "PCIE_MMIO64_END": 0x0070_0000_0000},
        "pcie-mmio64 leaves the DRAM hole mmio64",
    ),
    (
        "qemu-virt",
        "c",
        {"TIMER_VIRT_PPI": 14, "TIMER_VIRT_INTID": 30},
        "no two interrupts share a PPI",
    ),
    (
        "crosvm",
        "rust",
        {"COM3_SPI": 1, "COM3_INTID": 33},
        "uart0 shares com3's SPIs in the template; keep them together",
    ),
    # RAM_START edited into a hole, off 2 MiB, or below the DRAM window, in both languages
    *(
        ("firecracker", lang, {"RAM_START": value}, message)
        for lang in ("rust", "c")
        for value, message in (
            (0x40_0020_0000, "RAM_START lies in the DRAM hole mmio64"),
            (0x8030_0000, "RAM_START is not 2 MiB aligned"),
            (0x4000_0000, "RAM_START is outside the DRAM window"),
        )
    ),
    # A frame shrunk below its registers (KVM_VGIC_V3_ITS_SIZE, KVM_VGIC_V2_CPU_SIZE),
    # still aligned and clear of its neighbours
    *(
        (
            "qemu-virt",
            lang,
            {"GIC_ITS_SIZE": 0x1_0000, "GIC_ITS_END": 0x0809_0000},
            "GIC_ITS_SIZE must be at least 128 KiB (an ITS is two 64 KiB frames",
        )
        for lang in ("rust", "c")
    ),
    # The 64-bit window that follows RAM: no room left under the top, or not whole pages
    *(
        (
            "cloud-hypervisor",
            lang,
            {"PCIE_MMIO64_FLOOR": 0x3FFF_FFF0_0000},
            "the PCI 64-bit window has no room between PCIE_MMIO64_FLOOR and",
        )
        for lang in ("rust", "c")
    ),
    (  # no machine could have the window: RAM_START + the gap is past the top
        "crosvm",
        "rust",
        {"PCIE_MMIO64_AFTER_RAM": 0xFFFF_7FFF_F000},
        "the PCI 64-bit window has no room after 4 KiB of RAM at RAM_START and "
        "PCIE_MMIO64_AFTER_RAM",
    ),
    (
        "crosvm",
        "c",
        {"PCIE_MMIO64_AFTER_RAM": 0x4000_0800},
        "PCIE_MMIO64_AFTER_RAM, _FLOOR and _BELOW_TOP are not whole 4 KiB pages",
    ),
    *(
        (
            "qemu-virt-gicv2",
            lang,
            {"GIC_CPU_SIZE": 0x1000, "GIC_CPU_END": 0x0801_1000},
            "GIC_CPU_SIZE must be at least 8 KiB (the GICv2 CPU interface is two 4 KiB pages",
        )
        for lang in ("rust", "c")
    ),
]


@pytest.mark.parametrize(("name", "lang", "changes", "message"), BROKEN_MAPS)
def test_a_broken_map_fails_the_compile(name, lang, changes, message, tmp_path: Path) -> None:
    text = generated(name, lang)
    for const, value in changes.items():
        text = edit(text, lang, const, value, c_prefix(name) if lang == "c" else "")
    path = tmp_path / f"layout.{EXT[lang]}"
    path.write_text(text)
    r = COMPILE[lang](path)
    assert r.returncode != 0, f"{changes} compiled"
    assert message in r.stderr, r.stderr


@pytest.mark.parametrize("name", builtin_names())
def test_rust_is_clippy_clean_and_rustfmt_stable(name: str, tmp_path: Path) -> None:
    """A VMM that runs clippy and `cargo fmt --check` over its tree keeps the file as written."""
    path = tmp_path / "layout.rs"
    path.write_text(generated(name, "rust"))
    cmd = [tool("clippy-driver"), "--crate-type", "lib", "--edition", "2021", "-D", "warnings"]
    r = call(*cmd, "--emit", "metadata", "-o", str(tmp_path / "x.rmeta"), str(path))
    assert r.returncode == 0, r.stderr
    r = call(tool("rustfmt"), "--edition", "2021", "--check", str(path))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", GOLDEN_TEMPLATES)
def test_c_header_is_pedantic_clean_and_works_in_cpp(name: str, tmp_path: Path) -> None:
    path = tmp_path / "layout.h"
    path.write_text(generated(name, "c"))
    for compiler, std in (("cc", "-std=c11"), ("g++", "-std=c++11")):
        lang = "c" if compiler == "cc" else "c++"
        cmd = [tool(compiler), std, "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-fsyntax-only"]
        r = call(*cmd, "-x", lang, str(path))
        assert r.returncode == 0, f"{compiler}: {r.stderr}"


def test_a_width_below_dram_max_end_ends_dram_there() -> None:
    """Apple M1's 36 bits end squib's 1 TiB DRAM window at 64 GiB."""
    r = run("codegen", "--lang", "rust", "examples/hvf-m1.toml")
    assert r.returncode == 0, r.stderr
    got = constants(r.stdout)
    assert got["PHYS_ADDR_BITS"][0] == 36
    assert got["DRAM_END"][0] == 1 << 36


def test_a_region_tagged_like_dram_keeps_its_constants(tmp_path: Path) -> None:
    src = Path(load_template("squib").path).read_text()
    t = tmp_path / "t.toml"
    t.write_text(
        src
        + '\n[[device]]\ntag = "dram-ctl"\nkind = "pl031"\nbase = 0x0F10_0000\nsize = "4KiB"\n'
        + "spi = 2\n"
    )
    r = run("codegen", "--lang", "rust", "--template", str(t))
    assert r.returncode == 0, r.stderr
    got = constants(r.stdout)
    assert got["DRAM_CTL_START"][0] == 0x0F10_0000
    assert got["DRAM_CTL_SPI"][0] == 2


def test_check_takes_a_crlf_or_reformatted_checkout(tmp_path: Path) -> None:
    path = tmp_path / "layout.h"
    text = generated("squib", "c")
    path.write_bytes(text.replace("\n", "\r\n").encode())
    r = run("codegen", "--check", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    path.write_text(
        text.replace("#define SQUIB_GIC_DIST_START ", "#define SQUIB_GIC_DIST_START    ")
    )
    r = run("codegen", "--check", str(path))
    # the constants still agree; only the spacing is not fdtgen's
    assert r.returncode == 1
    assert "the constants agree, but the text differs" in r.stdout


def test_check_names_the_file_when_its_inputs_are_gone(tmp_path: Path) -> None:
    t = tmp_path / "mine.toml"
    t.write_text(Path(load_template("squib").path).read_text())
    out = tmp_path / "layout.rs"
    assert run("codegen", "--lang", "rust", "--template", str(t), "-o", str(out)).returncode == 0
    t.unlink()
    r = run("codegen", "--check", str(out))
    assert r.returncode == 2
    assert r.stderr.startswith(f"fdtgen: error: {out}: regenerating it: ")
    out.write_text('// Regenerate: fdtgen codegen --lang rust --template "squib\n')
    r = run("codegen", "--check", str(out))
    assert r.returncode == 2
    assert "Regenerate: line does not parse" in r.stderr


def test_a_rule_may_name_the_dram_pieces_between_holes(tmp_path: Path) -> None:
    """``dram`` and ``dram1`` are the RAM below and above Firecracker's 64-bit hole;
    rules about them are proved through the hole's constants."""
    src = Path(load_template("firecracker-pci").path).read_text()
    t = tmp_path / "fc.toml"
    t.write_text(
        src
        + '\n[[rule]]\nkind = "abuts"\nlower = "dram"\nupper = "pcie-mmio64"\n'
        + '\n[[rule]]\nkind = "below"\nlower = "pcie-mmio64"\nupper = "dram1"\n'
    )
    r = run("codegen", "--lang", "rust", "--template", str(t))
    assert r.returncode == 0, r.stderr
    assert "MMIO64_START == PCIE_MMIO64_START" in r.stdout
    assert "PCIE_MMIO64_END <= MMIO64_END" in r.stdout
    path = tmp_path / "layout.rs"
    path.write_text(edit(r.stdout, "rust", "PCIE_MMIO64_START", 0x0040_0010_0000))
    compiled = compile_rust(path)
    assert compiled.returncode != 0
    assert "pcie-mmio64 must abut dram ([[rule]] abuts)" in compiled.stderr


def test_a_c_constant_edited_to_a_signed_number_is_caught(tmp_path: Path) -> None:
    text = generated("squib", "c")
    text = text.replace("#define SQUIB_UART0_SPI 1U", "#define SQUIB_UART0_SPI -1")
    text = text.replace("#define SQUIB_UART0_INTID 33U", "#define SQUIB_UART0_INTID 31U")
    path = tmp_path / "layout.h"
    path.write_text(text)
    r = compile_c(path)
    assert r.returncode != 0
    assert "SQUIB_UART0_SPI is not U" in r.stderr


def test_a_line_sharing_part_of_a_wider_one_is_tied_to_it(tmp_path: Path) -> None:
    """An RTC on virtio slot 0's SPI (shared on purpose) moves with the virtio lines."""
    src = Path(load_template("squib").path).read_text()
    t = tmp_path / "t.toml"
    t.write_text(
        src + '\n[[device]]\ntag = "rtc"\nkind = "pl031"\nbase = 0x0F10_0000\nsize = "4KiB"\n'
        'spi = 20\nshared_spi = true\ntrigger = "edge-rising"\n'
    )
    r = run("codegen", "--lang", "rust", "--template", str(t))
    assert r.returncode == 0, r.stderr
    path = tmp_path / "layout.rs"
    path.write_text(edit(edit(r.stdout, "rust", "RTC_SPI", 1), "rust", "RTC_INTID", 33))
    compiled = compile_rust(path)
    assert compiled.returncode != 0
    assert "rtc shares virtio's SPIs in the template; keep them together" in compiled.stderr


def test_the_timer_constants_follow_the_templates_names() -> None:
    got = constants(generated("openvmm", "rust"))  # one timer PPI, named "virt"
    assert got["TIMER_VIRT_PPI"][0] == 4
    assert "TIMER_SEC_PHYS_PPI" not in got


@pytest.mark.parametrize("bits", ["32", "36"])
def test_a_width_that_cuts_dram_before_its_holes(bits: str, tmp_path: Path) -> None:
    path = tmp_path / "layout.rs"
    r = run("codegen", "--lang", "rust", "--template", "firecracker", "--address-width", bits)
    assert r.returncode == 0, r.stderr
    path.write_text(r.stdout)
    assert compile_rust(path).returncode == 0
    assert constants(r.stdout)["DRAM_END"][0] == 1 << int(bits)


def test_holes_out_of_order_and_across_the_width(tmp_path: Path) -> None:
    src = Path(load_template("cloud-hypervisor").path).read_text()
    t = tmp_path / "ch.toml"
    # listed before mem32-reserved, and crossing 2^38 (256 GiB)
    t.write_text(
        src.replace(
            "[[dram.hole]]",
            '[[dram.hole]]\ntag = "high-gap"\nbase = 0x38_0000_0000\nsize = "64GiB"\n\n'
            "[[dram.hole]]",
            1,
        )
    )
    for width in ([], ["--address-width", "38"]):
        r = run("codegen", "--lang", "c", "--template", str(t), *width)
        assert r.returncode == 0, r.stderr
        path = tmp_path / "layout.h"
        path.write_text(r.stdout)
        assert compile_c(path).returncode == 0, compile_c(path).stderr


def test_any_tag_or_text_still_compiles(tmp_path: Path) -> None:
    """Tags and template text reach comments and string literals: comment markers,
    trigraphs, format braces and control characters must all come out inert."""
    src = Path(load_template("squib").path).read_text()
    t = tmp_path / "odd.toml"
    t.write_text(
        src.replace('tag = "msi"', 'tag = "msi{hvf}??/*/\\n\\"x"').replace(
            'source = "squib_arch/src/layout.rs"', 'source = "arch/*/layout.rs ??/ ```"'
        )
    )
    for lang in ("rust", "c"):
        r = run("codegen", "--lang", lang, "--template", str(t))
        assert r.returncode == 0, r.stderr
        path = tmp_path / f"layout.{EXT[lang]}"
        path.write_text(r.stdout)
        compiled = COMPILE[lang](path)
        assert compiled.returncode == 0, compiled.stderr


def test_c_proofs_read_each_constant_whole(tmp_path: Path) -> None:
    """A macro edited to an expression (``900U + 80U``) is proved as one value."""
    text = generated("squib", "c")
    text = text.replace(
        "#define SQUIB_VIRTIO_FIRST_SPI 16U", "#define SQUIB_VIRTIO_FIRST_SPI 900U + 80U"
    )
    text = text.replace(
        "#define SQUIB_VIRTIO_FIRST_INTID 48U", "#define SQUIB_VIRTIO_FIRST_INTID 1012U"
    )
    path = tmp_path / "layout.h"
    path.write_text(text)
    r = compile_c(path)
    assert r.returncode != 0
    assert "virtio SPIs run past SPI 987" in r.stderr


def test_cpp_checks_the_types_too(tmp_path: Path) -> None:
    text = generated("squib", "c")
    text = text.replace("#define SQUIB_UART0_SPI 1U", "#define SQUIB_UART0_SPI -1")
    path = tmp_path / "layout.h"
    path.write_text(text)
    cmd = [tool("g++"), "-std=c++11", "-fsyntax-only", "-x", "c++", str(path)]
    r = call(*cmd)
    assert r.returncode != 0
    assert "SQUIB_UART0_SPI is not U" in r.stderr


@pytest.mark.parametrize(("compiler", "std"), [("cc", "-std=c99"), ("g++", "-std=c++98")])
def test_an_older_compiler_takes_the_constants_alone(compiler: str, std: str, tmp_path: Path):
    path = tmp_path / "layout.h"
    path.write_text(generated("qemu-virt", "c"))
    lang = "c" if compiler == "cc" else "c++"
    cmd = [tool(compiler), std, "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", lang]
    r = call(*cmd, str(path))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", GOLDEN_TEMPLATES)
def test_rustdoc_and_clippy_pedantic_take_the_doc_comments(name: str, tmp_path: Path) -> None:
    path = tmp_path / "layout.rs"
    path.write_text(generated(name, "rust"))
    doc = [tool("rustdoc"), "--edition", "2021", "--crate-type", "lib", "-D", "warnings"]
    r = call(*doc, "-o", str(tmp_path / "doc"), str(path))
    assert r.returncode == 0, r.stderr
    lint = [tool("clippy-driver"), "--crate-type", "lib", "--edition", "2021"]
    lint += ["-W", "clippy::pedantic", "-D", "warnings", "--emit", "metadata"]
    r = call(*lint, "-o", str(tmp_path / "x.rmeta"), str(path))
    assert r.returncode == 0, r.stderr


def test_check_leaves_a_licence_header_and_a_bom_alone(tmp_path: Path) -> None:
    path = tmp_path / "layout.rs"
    text = generated("squib", "rust")
    path.write_text("\ufeff// SPDX-License-Identifier: Apache-2.0\n// Copyright the VMM\n" + text)
    r = run("codegen", "--check", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    c = tmp_path / "layout.h"
    c.write_text("/* SPDX-License-Identifier: GPL-2.0 */\n" + generated("squib", "c"))
    r = run("codegen", "--check", str(c))
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_larger_config_stride_lowers_max_vcpus(tmp_path: Path) -> None:
    """Firecracker's window holds 32 frames of 128 KiB; with 256 KiB frames, 16."""
    cfg = tmp_path / "vm.toml"
    cfg.write_text('template = "firecracker"\nvcpus = 2\nredist_stride = "256KiB"\n')
    assert run("build", str(cfg), "-o", str(tmp_path / "g.dtb")).returncode == 0
    r = run("codegen", "--lang", "rust", str(cfg))
    assert r.returncode == 0, r.stderr
    got = constants(r.stdout)
    assert (got["MAX_VCPUS"][0], got["GIC_REDIST_STRIDE"][0]) == (16, 0x40000)


# -- where RAM starts ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["rust", "c"])
@pytest.mark.parametrize(
    ("name", "dram_start"), [("squib", 0x8000_0000), ("firecracker", 0x8020_0000)]
)
def test_a_configs_ram_base_is_where_the_boot_offsets_count_from(
    lang: str, name: str, dram_start: int, tmp_path: Path
) -> None:
    """The build places the kernel from the config's ram_base; so does the generated
    file (squib's kernel_offset is 2 MiB, Firecracker's 0)."""
    from fdtgen.config import validate

    config = tmp_path / "vm.toml"
    config.write_text(f'template = "{name}"\nram_base = "0x1_0000_0000"\n')
    path = tmp_path / f"layout.{EXT[lang]}"
    r = run("codegen", "--lang", lang, str(config), "-o", str(path))
    assert r.returncode == 0, r.stderr
    text = path.read_text()
    prefix = c_prefix(name) if lang == "c" else ""
    got = {
        const: int(re.search(rf"\b{prefix}{const}(?:: u64 =| ) ?(0x[0-9a-fA-F_]+)", text)[1], 0)  # type: ignore[index]
        for const in ("RAM_START", "DRAM_START", "KERNEL_OFFSET")
    }
    assert got["RAM_START"] == 0x1_0000_0000 and got["DRAM_START"] == dram_start
    assert got["KERNEL_OFFSET"] == load_template(name).boot.kernel_offset
    assert COMPILE[lang](path).returncode == 0
    built = validate({"template": name, "ram_base": 0x1_0000_0000, "kernel": {"size": 1 << 20}})
    placement = built.build().placement
    assert placement is not None
    # the Image lies text_offset above the 2 MiB-aligned base searched from RAM_START
    kernel_base = placement.kernel.base - placement.text_offset
    assert kernel_base == got["RAM_START"] + got["KERNEL_OFFSET"]
    clean = run("codegen", "--check", str(path))
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_a_ram_base_past_the_address_width_names_the_setting_and_its_file(tmp_path: Path) -> None:
    config = tmp_path / "vm.toml"
    config.write_text('template = "squib"\naddress_width = 36\nram_base = "0x10_0000_0000"\n')
    r = run("codegen", "--lang", "c", str(config))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"fdtgen: error: {config}: ram_base: 0x1000000000 is past the 36-bit guest physical "
        "address space (0x1000000000; address_width)\n"
    )


def test_a_ram_base_the_build_refuses_is_refused_by_codegen_from_its_file(tmp_path: Path) -> None:
    config = tmp_path / "vm.toml"
    config.write_text('template = "firecracker"\nram_base = "0x40_0000_0000"\n')
    r = run("codegen", "--lang", "rust", str(config))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"fdtgen: error: {config}: ram_base: 0x4000000000 lies in the DRAM hole 'mmio64' "
        "[0x4000000000, 0x8000000000) of template 'firecracker'\n"
    )


# -- redistributors stacked down from the distributor ----------------------------------


# VMMs whose source puts n vCPUs' redistributors at GICD - n x 128 KiB (the
# templates cite it): Firecracker's get_redists_addr, crosvm's
# AARCH64_GIC_REDIST_BASE, kvmtool's gic_redists_base.
UPSTREAM_REDIST_BELOW_GICD = ("firecracker", "firecracker-pci", "crosvm", "kvmtool")


def _anchored() -> list[str]:
    return [n for n in builtin_names() if load_template(n).gic.redist_anchor == "end"]


def _layout_redist_base(name: str, vcpus: int) -> int:
    from fdtgen.layout import resolve

    t = load_template(name)
    return resolve(t, vcpus=vcpus, memory=256 << 20, virtio=0).gic_redist[0].base


@pytest.mark.parametrize("name", _anchored())
def test_the_redistributor_base_function_agrees_with_the_build(name: str, tmp_path: Path) -> None:
    """``gic_redist_base(n)`` (Rust ``const fn``) and ``*_GIC_REDIST_BASE(n)`` (C macro),
    compiled and run, give the frames' base the build puts in the DTB's GICR ``reg``."""
    t = load_template(name)
    counts = sorted({1, 2, t.max_vcpus})
    want = [f"{_layout_redist_base(name, n):#x}" for n in counts]
    if name in UPSTREAM_REDIST_BELOW_GICD:  # the VMM's own formula: GICD - n x 128 KiB
        assert want == [f"{t.gic.dist.base - n * 0x2_0000:#x}" for n in counts]
    (tmp_path / "layout.rs").write_text(generated(name, "rust"))
    (tmp_path / "main.rs").write_text(
        "#![allow(dead_code)] // a program using one function of the module\n"
        "mod layout;\nfn main() {\n"
        + "".join(f'    println!("{{:#x}}", layout::gic_redist_base({n}));\n' for n in counts)
        + "}\n"
    )
    exe = tmp_path / "rs"
    r = call(
        tool("rustc"),
        "--edition",
        "2021",
        "-D",
        "warnings",
        "-o",
        str(exe),
        str(tmp_path / "main.rs"),
    )
    assert r.returncode == 0, r.stderr
    assert call(str(exe)).stdout.split() == want
    prefix = c_prefix(name)
    (tmp_path / "layout.h").write_text(generated(name, "c"))
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "layout.h"\nint main(void) {\n'
        + "".join(f'    printf("%#llx\\n", {prefix}GIC_REDIST_BASE({n}));\n' for n in counts)
        + "    return 0;\n}\n"
    )
    r = call(
        tool("cc"), "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", "c", "main.c", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert call(str(tmp_path / "c")).stdout.split() == want


@pytest.mark.parametrize(
    ("vcpus", "message"), [("0", "vcpus is 0"), ("MAX_VCPUS as u64 + 1", "vcpus > MAX_VCPUS")]
)
def test_a_vcpu_count_out_of_range_fails_in_a_const_context(
    vcpus: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "layout.rs"
    path.write_text(
        generated("firecracker", "rust") + f"\npub const BAD: u64 = gic_redist_base({vcpus});\n"
    )
    r = compile_rust(path)
    assert r.returncode != 0 and message in r.stderr, r.stderr


def test_only_anchored_templates_have_the_function() -> None:
    assert "crosvm" in _anchored() and "firecracker" in _anchored()
    assert "gic_redist_base" not in generated("squib", "rust")
    assert "GIC_REDIST_BASE" not in generated("qemu-virt", "c")


@pytest.mark.parametrize("name", ["cloud-hypervisor", "crosvm"])
@pytest.mark.parametrize("lang", ["rust", "c"])
def test_the_window_after_ram_constants_give_the_builds_window(name: str, lang: str) -> None:
    """max(FLOOR, RAM end + AFTER_RAM) .. 2^PHYS_ADDR_BITS - BELOW_TOP, from the
    generated constants, is the window the build writes for several RAM sizes."""
    from fdtgen.devicetree.machine import Machine
    from fdtgen.pipeline import build

    got = {k: v[0] for k, v in constants(generated(name, lang)).items()}
    prefix = c_prefix(name) if lang == "c" else ""
    gap, floor, below = (
        got[f"{prefix}PCIE_MMIO64_{k}"] for k in ("AFTER_RAM", "FLOOR", "BELOW_TOP")
    )
    top = got[f"{prefix}PHYS_ADDR_MAX"] + 1
    for memory in (512 << 20, 6 << 30, 40 << 30):
        b = build(Machine(template=name, vcpus=1, memory=memory))
        w = b.layout.pcie_mmio64
        assert w is not None
        assert (w.base, w.end) == (max(floor, b.layout.ram[-1].end + gap), top - below)
