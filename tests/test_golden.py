"""Golden DTB + DTS for the default machine, and a placed machine's manifest
(regenerate: pytest --update-goldens)."""

from __future__ import annotations

import fdtgen
from fdtgen.boot.image import declared_kernel
from fdtgen.devicetree.machine import Machine
from fdtgen.fdt.dts import to_dts
from fdtgen.manifest import manifest_for, to_json
from fdtgen.pipeline import Boot, build
from fdtgen.units import MiB


def test_default_machine_matches_the_golden_files(golden, dtc):
    b = build(Machine())
    golden("default.dtb", b.blob)
    text = to_dts(b.tree)
    golden("default.dts", text.encode())
    assert dtc.dts_to_dtb(text)[0] == b.blob


def test_exported_members_are_exactly_all():
    for name in fdtgen.__all__:
        assert getattr(fdtgen, name) is not None
    public = {n for n in dir(fdtgen) if not n.startswith("_") or n == "__version__"}
    modules = {n for n in public if type(getattr(fdtgen, n)).__name__ == "module"}
    assert sorted(fdtgen.__all__) == sorted(public - modules)


def placed_build():
    """Every placement input declared (no files), entropy and a command line with
    characters JSON must escape."""
    return build(
        Machine(
            vcpus=8,
            memory=1024 * MiB,
            cmdline='console=ttyAMA0 quiet "quoted" caf\u00e9 \x7f',
            virtio=32,
        ),
        Boot(
            kernel=declared_kernel(30 * MiB, 0, 34 * MiB, 0xA),
            initrd_size=12 * MiB,
            rng_seed=32,
            kaslr_seed=True,
        ),
    )


def test_placed_machine_manifest_matches_the_golden_files(golden):
    m = manifest_for(placed_build())
    golden("placed.manifest.json", to_json(m))
    golden("placed.manifest.compact.json", to_json(m, compact=True))
