"""Golden DTB + DTS for the default machine (regenerate: pytest --update-goldens)."""

from __future__ import annotations

import fdtgen
from fdtgen.devicetree.machine import Machine
from fdtgen.fdt.dts import to_dts
from fdtgen.pipeline import build


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
