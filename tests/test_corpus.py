"""verify over real-world device trees: every DTB Debian's generic arm64 kernel ships.

The blobs come from ``linux-image-<abi>-arm64`` (the ``linux-image-arm64``
metapackage's dependency, Debian bookworm: Linux 6.1), fetched once into the
apt cache by :func:`fdtgen.debian.kit.dtbs`. Every blob goes through
``fdtgen.checks.verify`` in this process. The tables below were checked by
hand against each blob's DTS (``dtc -I dtb -O dts``): what must stay silent
(findings that were false) and what must stay found (real defects).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fdtgen.checks import Finding, Options, counts, verify
from fdtgen.checks.structure import DTC_QUIET

from .corpus import by_name

pytestmark = pytest.mark.corpus

# The package held 576 DTBs from 16 vendors when these tables were checked;
# a later ABI may add boards, but never so few.
MIN_BLOBS = 500


@pytest.fixture(scope="module")
def results(corpus_dtbs: list[Path]) -> dict[str, list[Finding]]:
    """Every blob's findings (uncapped, dtc left out: it runs on a sample below)."""
    assert len(corpus_dtbs) >= MIN_BLOBS, f"only {len(corpus_dtbs)} DTBs in the corpus"
    by = by_name(corpus_dtbs)
    out: dict[str, list[Finding]] = {}
    for name, path in by.items():
        # A traceback here fails the test: no blob may crash verify.
        out[name] = verify(path.read_bytes(), Options(dtc=None, cap=None))
    return out


def where(findings: list[Finding], rule: str) -> Iterator[Finding]:
    return (f for f in findings if f.rule == rule)


# (blob, rule, path prefix or "" for any): false findings that must stay silent.
SILENT = [
    # A node against its own child: the SRAM and its section.
    ("sun50i-a64-amarula-relic.dtb", "regions.overlap", "/soc/sram-controller@1c00000/sram@18000"),
    ("sun50i-a64-amarula-relic.dtb", "regions.overlap", "/soc/sram-controller@1c00000"),
    # The timer's PPIs are in interrupts-extended.
    ("r8a774a1-beacon-rzg2m-kit.dtb", "timer.interrupts", ""),
    ("r8a774a1-hihope-rzg2m.dtb", "timer.interrupts", ""),
    # The Raspberry Pi 3 has no GIC (bcm2836's own controllers).
    ("bcm2837-rpi-3-b.dtb", "gic.node", ""),
    ("bcm2837-rpi-3-b-plus.dtb", "gic.node", ""),
    # fsl,ls1088a-extirq parses its own interrupt-map (of_irq_imap_abusers).
    ("fsl-ls1088a-rdb.dtb", "interrupts.type", ""),
    ("fsl-ls1088a-rdb.dtb", "interrupts.trigger", ""),
    ("fsl-ls1088a-rdb.dtb", "phandle.cells", ""),
    ("fsl-ls2080a-rdb.dtb", "interrupts.trigger", ""),
    ("fsl-lx2160a-rdb.dtb", "interrupts.trigger", ""),
    ("fsl-lx2160a-rdb.dtb", "phandle.cells", ""),
    # interrupt-map rows no child uses, and disabled PL011s, share nothing.
    ("foundation-v8-gicv3-psci.dtb", "interrupts.shared", ""),
    ("foundation-v8.dtb", "interrupts.shared", ""),
    ("bcm2711-rpi-4-b.dtb", "interrupts.shared", "/soc/serial@"),
    # arm,sbsa-uart takes no clocks.
    ("fsl-lx2160a-rdb.dtb", "pl011.clocks", ""),
    ("fsl-lx2160a-honeycomb.dtb", "pl011.clocks", ""),
]


@pytest.mark.parametrize(
    "blob, rule, prefix", [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in SILENT]
)
def test_a_false_finding_class_stays_silent(results, blob, rule, prefix):
    hits = [f for f in where(results[blob], rule) if f.path.startswith(prefix)]
    assert hits == [], "\n".join(map(str, hits))


# (blob, rule, path, property, severity): real defects, confirmed in the DTS.
FOUND = [
    # The PCIe map gives the GIC (#address-cells = <1>) no parent unit address:
    # <0 0 0 1 &intc 0 0x8e 4> reads 0x0 as the next row's phandle.
    ("ipq8074-hk01.dtb", "phandle.reference", "/soc/pci@10000000", "interrupt-map", "warning"),
    ("ipq8074-hk01.dtb", "phandle.reference", "/soc/pci@20000000", "interrupt-map", "warning"),
    # Level-low SPIs (flags 8) on a GICv3, on an SMMU the board leaves disabled.
    (
        "sdm630-sony-xperia-nile-pioneer.dtb",
        "interrupts.trigger",
        "/soc/iommu@16c0000",
        "interrupts",
        "note",
    ),
    # An ITS with no #msi-cells (arm,gic-v3.yaml requires <1>).
    (
        "fsl-ls1028a-rdb.dtb",
        "gic.its",
        "/interrupt-controller@6000000/gic-its@6020000",
        "#msi-cells",
        "warning",
    ),
    # stdout-path "framebuffer0": /aliases has only mmc1 and mmc2.
    ("sdm630-sony-xperia-nile-pioneer.dtb", "chosen.stdout-path", "/chosen", "stdout-path", "note"),
    # enable-method = "psci" on every cpu, and no psci node.
    ("fsl-ls1028a-rdb.dtb", "psci.node", "/psci", "", "warning"),
    ("apq8094-sony-xperia-kitakami-karin_windy.dtb", "psci.node", "/psci", "", "warning"),
]


@pytest.mark.parametrize(
    "blob, rule, path, prop, severity", [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in FOUND]
)
def test_a_real_defect_stays_found(results, blob, rule, path, prop, severity):
    hits = [f for f in where(results[blob], rule) if (f.path, f.prop) == (path, prop)]
    assert hits, "\n".join(map(str, results[blob]))
    assert {f.severity for f in hits} == {severity}


def test_no_board_blob_has_a_false_class_anywhere(results):
    """The classes above, over the whole corpus: no overlap between a node and
    its descendant or with a disabled node, no shared SPI involving a disabled
    node."""
    from fdtgen.checks.index import TreeIndex
    from fdtgen.fdt.parse import parse_blob

    bad = []
    for name, findings in results.items():
        suspects = [f for f in findings if f.rule in ("regions.overlap", "interrupts.shared")]
        if not suspects:
            continue
        index = None
        for f in suspects:
            other = f.message.split(" is also wired to ")[-1].split(";")[0]
            if f.rule == "regions.overlap":
                other = f.message.split(" overlaps ")[1].split(" reg entry ")[0]
            if index is None:
                index = TreeIndex(parse_blob(_blob(name).read_bytes()).tree)
            related = other.startswith(f.path + "/") or f.path.startswith(other + "/")
            if (
                (related and f.rule == "regions.overlap")
                or not index.enabled(f.path)
                or not index.enabled(other)
            ):
                bad.append(f"{name}: {f}")
    assert bad == [], "\n".join(bad[:20])


_PATHS: dict[str, Path] = {}


def _blob(name: str) -> Path:
    return _PATHS[name]


@pytest.fixture(scope="module", autouse=True)
def _paths(corpus_dtbs: list[Path]) -> None:
    _PATHS.update(by_name(corpus_dtbs))


def test_names_over_31_characters_are_notes(results):
    long = [f for fs in results.values() for f in where(fs, "structure.name-length")]
    assert long, "the corpus has property names over 31 characters (apq8016-sbc and others)"
    assert {f.severity for f in long} == {"note"}
    assert not any(
        f.rule in ("structure.node-name", "structure.property-name")
        for fs in results.values()
        for f in fs
    )


def test_no_blob_has_an_error_but_the_checked_ones(results):
    """Errors in shipped DTBs are rare and each one here was read in the DTS:
    a PPI number past 15 (hi6220's GPU <1 126 4>, thunder-88xx's UARTs <1 21 4>)
    and a GPIO specifier written as ``interrupts`` under the GIC (the Lumias'
    ad7147 captouch: ``interrupts = <0x2f 0x60 0x2>``, 0x2f a phandle, type 47);
    ipq8074's PCIe ``interrupt-map`` rows give the GIC no address cell, so from
    row 1 on every parent phandle is read from the wrong cell (INTx misrouted)."""
    errors = sorted(
        {(name, f.rule) for name, fs in results.items() for f in fs if f.severity == "error"}
    )
    assert errors == [
        ("hi6220-hikey.dtb", "interrupts.range"),
        ("ipq8074-hk01.dtb", "pci.interrupt-map"),
        ("ipq8074-hk10-c1.dtb", "pci.interrupt-map"),
        ("ipq8074-hk10-c2.dtb", "pci.interrupt-map"),
        ("msm8992-msft-lumia-octagon-talkman.dtb", "interrupts.type"),
        ("msm8994-msft-lumia-octagon-cityman.dtb", "interrupts.type"),
        ("thunder-88xx.dtb", "interrupts.range"),
    ]


def test_dtc_reports_none_of_the_checks_the_kernel_build_switches_off(corpus_dtbs):
    dtc = shutil.which("dtc")
    if dtc is None:
        pytest.fail("dtc is required (apt-get install device-tree-compiler)")
    sample = corpus_dtbs[::12]  # every vendor, a fraction of the time
    quiet = {f"dtc.{c}" for c in DTC_QUIET}
    hits = []
    for path in sample:
        from fdtgen.checks.structure import dtc_findings

        hits += [
            f"{path.name}: {f}" for f in dtc_findings(dtc, path.read_bytes()) if f.rule in quiet
        ]
    assert hits == [], "\n".join(hits[:20])


def test_the_cap_counts_what_it_leaves_out(results, corpus_dtbs):
    """Capped, a blob with more than 20 findings of one rule shows 20 and
    closing lines that count the rest (those on disabled nodes as notes of
    their own), and the counts per severity are those of the full report."""
    name, rule, n = max(
        (
            (name, r, sum(1 for f in fs if f.rule == r))
            for name, fs in results.items()
            for r in {f.rule for f in fs}
        ),
        key=lambda t: t[2],
    )
    assert n > 20
    capped = verify(_blob(name).read_bytes(), Options(dtc=None))
    mine = [f for f in capped if f.rule == rule]
    kept = [f for f in mine if not f.omitted]
    closing = [f for f in mine if f.omitted]
    assert len(kept) == 20 and 1 <= len(closing) <= 2
    assert sum(f.omitted for f in closing) == n - 20
    for f in closing:
        assert f" and {f.omitted:,} more {rule} findings" in str(f)
    assert counts(capped) == counts(results[name])


def test_auto_profile_calls_only_the_arm_models_microvms(corpus_dtbs):
    """Of the shipped DTBs only Arm's FVP and Foundation models boot as they are:
    the boards whose DTS sets ``bootargs`` (r8a774a1's idk-1110wr, TI K3,
    ZynqMP) have pin muxing, reset and power-domain providers a VMM never
    describes, so ``--profile auto`` judges them boards."""
    from fdtgen.checks import profile_of
    from fdtgen.checks.index import TreeIndex
    from fdtgen.fdt.parse import parse_blob

    microvms = sorted(
        name
        for name, path in by_name(corpus_dtbs).items()
        if profile_of(TreeIndex(parse_blob(path.read_bytes()).tree)) == "microvm"
    )
    assert microvms == [
        "foundation-v8-gicv3-psci.dtb",
        "foundation-v8-gicv3.dtb",
        "foundation-v8-psci.dtb",
        "foundation-v8.dtb",
        "fvp-base-revc.dtb",
        "rtsm_ve-aemv8a.dtb",
    ]
