"""The qemu-virt template against QEMU's own device tree.

QEMU writes the tree it would give a guest with ``-M virt,...,dumpdtb=FILE``.
For the same vCPUs and RAM (and GIC version and ITS: the ``qemu-virt``,
``qemu-virt-gicv2`` and ``qemu-virt-its-off`` templates), every node both trees
describe must have the same ``reg``, ``interrupts`` and ``compatible``; the PCIe
host bridge must match property for property, its ``interrupt-map`` and
``msi-map`` phandles pointing at the same nodes; the nodes only one side has
are exactly the ones docs/templates.md lists and justifies.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fdtgen.devicetree.machine import Machine
from fdtgen.pipeline import build
from fdtgen.units import GiB, MiB

from .conftest import ROOT
from .treeview import via_libfdt

QEMU = shutil.which("qemu-system-aarch64")
pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-system-aarch64 is not installed")

COMPARED = ("reg", "interrupts", "compatible")

# docs/templates.md, "qemu-virt: differences from QEMU's dumpdtb".
ONLY_QEMU = {
    ("reg", 0x0): "flash@0",
    ("name", "/platform-bus@c000000"): "platform-bus@c000000",
}
PCIE = ("reg", 0x40_1000_0000)  # the bridge, keyed by its configuration space
PHANDLE_CELL = {"interrupt-map": (10, 4), "msi-map": (4, 1)}  # row width, phandle cell
ONLY_OURS = {("name", "/aliases"): "aliases"}


def qemu_dtb(tmp_path: Path, vcpus: int, memory: int, machine: str = "gic-version=3") -> bytes:
    out = tmp_path / "qemu.dtb"
    subprocess.run(
        [
            str(QEMU),
            "-M",
            f"virt,{machine},dumpdtb={out}",
            "-cpu",
            "cortex-a57",
            "-smp",
            str(vcpus),
            "-m",
            f"{memory // MiB}M",
            "-nographic",
            "-nic",
            "none",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out.read_bytes()


def first_address(value: bytes, cells: int) -> int:
    words = struct.unpack(f">{cells}I", value[: 4 * cells])
    return sum(w << (32 * (cells - 1 - i)) for i, w in enumerate(words))


def keyed(
    flat: dict[str, list[tuple[str, bytes]]],
) -> dict[tuple[str, object], tuple[str, dict[str, bytes]]]:
    """Nodes by what they describe, not by name: the address of their first
    ``reg`` (a cpu by its MPIDR), a gpio-keys button by its key code, the rest by path."""
    out: dict[tuple[str, object], tuple[str, dict[str, bytes]]] = {}
    for path, props in flat.items():
        p = dict(props)
        parent = path.rsplit("/", 1)[0] or "/"
        parent_props = dict(flat[parent]) if path != "/" else {}
        if "reg" in p:
            cells = struct.unpack(">I", parent_props.get("#address-cells", b"\0\0\0\2"))[0]
            kind = "cpu" if parent == "/cpus" else "reg"
            key: tuple[str, object] = (kind, first_address(p["reg"], cells))
        elif "linux,code" in p:
            key = ("key", struct.unpack(">I", p["linux,code"])[0])
        elif path.startswith("/cpus/cpu-map"):
            key = ("name", path)
        else:
            key = ("name", path)
        assert key not in out, f"two nodes describe {key}: {out[key][0]} and {path}"
        out[key] = (path, p)
    return out


def phandle_targets(flat: dict[str, list[tuple[str, bytes]]]) -> dict[int, str]:
    return {
        struct.unpack(">I", dict(props)["phandle"])[0]: path
        for path, props in flat.items()
        if "phandle" in dict(props)
    }


def cpu_map(flat: dict[str, list[tuple[str, bytes]]]) -> dict[str, bytes]:
    """cpu-map leaf path -> the ``reg`` (MPIDR) of the cpu it names."""
    targets = phandle_targets(flat)
    out = {}
    for path, props in flat.items():
        p = dict(props)
        if path.startswith("/cpus/cpu-map/") and "cpu" in p:
            cpu = targets[struct.unpack(">I", p["cpu"])[0]]
            out[path] = dict(flat[cpu])["reg"]
    return out


def pcie_props(flat: dict[str, list[tuple[str, bytes]]], path: str) -> dict[str, object]:
    """The bridge's properties, each phandle in its maps replaced by what its target describes."""
    described = {path: key for key, (path, _) in keyed(flat).items()}
    targets = {ph: described[p] for ph, p in phandle_targets(flat).items()}
    out: dict[str, object] = {}
    for name, value in flat[path]:
        if name not in PHANDLE_CELL:
            out[name] = value
            continue
        width, at = PHANDLE_CELL[name]
        cells = struct.unpack(f">{len(value) // 4}I", value)
        assert len(cells) % width == 0, (name, len(cells))
        out[name] = [
            (*cells[i : i + at], targets[cells[i + at]], *cells[i + at + 1 : i + width])
            for i in range(0, len(cells), width)
        ]
    return out


@pytest.mark.parametrize(
    "template, machine, vcpus, memory",
    [
        pytest.param("qemu-virt", "gic-version=3", 1, 128 * MiB, id="v3-1cpu-128m"),
        pytest.param("qemu-virt", "gic-version=3", 2, 512 * MiB, id="v3-2cpu-512m"),
        pytest.param("qemu-virt", "gic-version=3", 20, 3 * GiB, id="v3-20cpu-second-aff1"),
        pytest.param("qemu-virt", "gic-version=3", 130, 1 * GiB, id="v3-130cpu-redist2"),
        pytest.param("qemu-virt-gicv2", "gic-version=2", 1, 256 * MiB, id="v2-1cpu"),
        pytest.param("qemu-virt-gicv2", "gic-version=2", 8, 1 * GiB, id="v2-8cpu-cpumask"),
        pytest.param("qemu-virt-its-off", "gic-version=3,its=off", 2, 512 * MiB, id="its-off"),
        pytest.param(
            "qemu-virt-its-off", "gic-version=3,its=off", 130, 1 * GiB, id="its-off-redist2"
        ),
    ],
)
def test_qemu_virt_matches_qemu_dumpdtb(tmp_path, template, machine, vcpus, memory):
    gic_version = 2 if "gic-version=2" in machine else 3
    its = gic_version == 3 and "its=off" not in machine
    theirs_flat = via_libfdt(qemu_dtb(tmp_path, vcpus, memory, machine))
    ours_flat = via_libfdt(build(Machine(template=template, vcpus=vcpus, memory=memory)).blob)
    theirs, ours = keyed(theirs_flat), keyed(ours_flat)

    both = sorted(set(theirs) & set(ours), key=repr)
    mismatches = []
    for key in both:
        (tpath, tprops), (opath, oprops) = theirs[key], ours[key]
        for name in COMPARED:
            if tprops.get(name) != oprops.get(name):
                mismatches.append(
                    f"{tpath} vs {opath}: {name} {tprops.get(name)!r} != {oprops.get(name)!r}"
                )
    assert mismatches == []

    assert {k: theirs[k][0].rsplit("/", 1)[1] for k in set(theirs) - set(ours)} == ONLY_QEMU
    assert {k: ours[k][0].rsplit("/", 1)[1] for k in set(ours) - set(theirs)} == ONLY_OURS
    # The checks above matched these by content; make sure they really are there.
    assert ("cpu", 0x100 if vcpus > 16 else 0) in both
    msi = {3: ("reg", 0x0808_0000), 2: ("reg", 0x0802_0000)}[gic_version]  # the ITS / v2m frame
    assert (msi in both) == (its or gic_version == 2) and msi not in set(theirs) ^ set(ours)
    assert len([k for k in both if k[0] == "cpu"]) == vcpus
    assert len([k for k in both if k[0] == "reg" and 0x0A00_0000 <= k[1] < 0x0A00_4000]) == 32

    # The PCIe bridge, property for property: windows, bus range, the 4 x 4 INTx
    # swizzle onto SPI 3..6 through the GIC, and the MSI controller (none with its=off).
    pcie_t = pcie_props(theirs_flat, theirs[PCIE][0])
    pcie_o = pcie_props(ours_flat, ours[PCIE][0])
    assert pcie_o == pcie_t
    assert theirs[PCIE][0] == ours[PCIE][0] == "/pcie@10000000"
    assert len(pcie_o["interrupt-map"]) == 16
    assert {row[4] for row in pcie_o["interrupt-map"]} == {("reg", 0x0800_0000)}
    assert sorted({row[8] for row in pcie_o["interrupt-map"]}) == [3, 4, 5, 6]
    if its or gic_version == 2:
        assert pcie_o["msi-map"] == [(0, msi, 0, 0x10000)]
    else:
        assert "msi-map" not in pcie_o and "msi-parent" not in pcie_o

    # Same topology: each cpu-map leaf names the cpu with the same MPIDR.
    assert cpu_map(ours_flat) == cpu_map(theirs_flat) and len(cpu_map(ours_flat)) == vcpus
    # The power button is pin 3 of the PL061, KEY_POWER, on both.
    for flat, tree in ((theirs_flat, theirs), (ours_flat, ours)):
        gpios = struct.unpack(">3I", tree[("key", 116)][1]["gpios"])
        assert phandle_targets(flat)[gpios[0]] == tree[("reg", 0x0903_0000)][0]
        assert gpios[1:] == (3, 0)
    # Same GICR description, including the region count; on a GICv2 the PPI
    # flags carry the CPU mask (QEMU: 0xf04 for four CPUs).
    gic_t, gic_o = theirs[("reg", 0x0800_0000)][1], ours[("reg", 0x0800_0000)][1]
    if gic_version == 3:
        assert gic_t["#redistributor-regions"] == gic_o["#redistributor-regions"]
        assert gic_t["#redistributor-regions"] == struct.pack(">I", 2 if vcpus > 123 else 1)
    else:
        assert "#redistributor-regions" not in gic_o
        flags = struct.unpack(">3I", ours[("name", "/pmu")][1]["interrupts"])[2]
        assert flags == ((1 << vcpus) - 1) << 8 | 4


def test_every_listed_difference_is_justified_in_the_docs():
    text = (ROOT / "docs" / "templates.md").read_text()
    for node in (*ONLY_QEMU.values(), *ONLY_OURS.values()):
        assert f"`{node}`" in text, f"docs/templates.md does not justify {node}"
