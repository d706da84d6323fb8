"""Will this blob boot, and if not, why: rule checks over a strictly parsed DTB.

:func:`verify` parses the blob with :mod:`fdtgen.fdt.parse` (a malformed blob
is a :class:`fdtgen.errors.BlobError`, the command's exit 2) and returns
:class:`Finding` values, each naming a rule, a node path, a property, the
value and what is wrong. The rule groups, in report order, one module each:

* :mod:`~fdtgen.checks.structure` (``header.*``, ``structure.*``,
  ``memreserve.*``, ``libfdt.*``, ``dtc.*``): the DT spec's format rules beyond
  what the parser must reject, booting.rst's 2 MiB cap, libfdt's
  ``fdt_check_full`` as a second opinion and dtc's own checks when dtc is given.
* :mod:`~fdtgen.checks.bindings` (``root.*``, ``cpus.*``, ``psci.*``,
  ``memory.*``, ``gic.*``, ``pl011.*``, ``timer.*``, ``virtio.*``): the Linux
  bindings a microVM's nodes follow.
* :mod:`~fdtgen.checks.references` (``chosen.*``, ``aliases.*``,
  ``phandle.*``): every path and phandle reference resolves.
* :mod:`~fdtgen.checks.interrupts` (``interrupts.*``): specifiers decode
  against their controller, GIC numbers and triggers are in range, no SPI is
  wired to two devices.
* :mod:`~fdtgen.checks.regions` (``regions.*``): no two ``reg`` ranges
  overlap; all lie inside the address width.
* :mod:`~fdtgen.checks.pci` (``pci.*``): PCI host bridges: cells, bus range,
  configuration space, well-formed windows that fit and collide with nothing,
  ``interrupt-map`` rows that resolve, ``msi-map``/``msi-parent`` naming MSI
  controllers.
* :mod:`~fdtgen.checks.template` (``template.*``, with a template): every
  pinned region and SPI where the template puts it.
* :mod:`~fdtgen.checks.boot` (``boot.*``, with a manifest): booting.rst's
  kernel/initrd/DTB rules and the ``/chosen`` initrd, checked independently of
  :mod:`fdtgen.boot.placement`, from a manifest held to the one model,
  :class:`fdtgen.manifest.Manifest` (:mod:`~fdtgen.checks.manifest` reads a
  manifest file through it).

The last two groups are imported only when asked for. Every rule module reads
the tree through one :class:`~fdtgen.checks.index.TreeIndex` and imports
nothing from this module. No config is parsed here, and the manifest model is
imported only with a manifest, so verifying a blob alone never imports pydantic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from fdtgen.checks.finding import ERROR, NOTE, SEVERITIES, WARNING, Finding, Findings
from fdtgen.spec import DEFAULT_ADDRESS_WIDTH

if TYPE_CHECKING:
    from fdtgen.checks.index import TreeIndex
    from fdtgen.checks.structure import DtcCheck
    from fdtgen.fdt.parse import Blob
    from fdtgen.manifest import Manifest
    from fdtgen.template.model import Template

__all__ = [
    "PROFILES",
    "Finding",
    "Options",
    "counts",
    "findings_json",
    "findings_report",
    "profile_of",
    "verify",
    "verify_parsed",
]

PROFILES = ("auto", "board", "microvm")
# Properties only a SoC's DTB has: a pin-mux state, reset, power-domain and PHY
# providers (pinctrl-bindings.txt, reset.txt, power-domain.yaml, phy-provider.yaml).
SOC_PROPERTIES = ("pinctrl-0", "#reset-cells", "#power-domain-cells", "#phy-cells")
DEFAULT_CAP = 20  # findings shown per rule; the rest are counted

# What a board DTB (one a bootloader or firmware completes before the kernel
# sees it) is not held to: the boot-time rules become notes, psci a warning
# (firmware may add the node), and a GIC only on a microVM, which always has
# one (booting.rst asks for the GIC's description where there is one); an SPI
# that hardware shares between devices is normal on a board. ``None`` drops the rule.
BOARD_SEVERITY: dict[str, str | None] = {
    "memory.": NOTE,
    "cpus.enable-method": NOTE,
    "chosen.": NOTE,
    "psci.node": WARNING,
    "gic.node": None,
    "timer.node": NOTE,
    "interrupts.shared": NOTE,
    # Linux takes a window's type from its space code whatever its PCI address
    # (drivers/of/address.c), and vendor bridges may overlay their windows on
    # other resources (hi3798cv200's I/O window inside /memory).
    "pci.ranges-width": WARNING,
    "pci.window": WARNING,
}


class Options(NamedTuple):
    """What to check beyond the blob itself.

    ``manifest``: the placement to hold to booting.rst (``boot.*``), a manifest
    :func:`fdtgen.manifest.from_json` read or :func:`~fdtgen.manifest.manifest_for` made.
    ``template``: the template whose pinned regions and SPIs the blob must
    follow (``template.*``). ``dtc``: the dtc executable (``None``: skip its
    checks). ``libfdt``: ask libfdt's ``fdt_check_full`` too. ``shared_spis``:
    SPI numbers that may be wired to more than one node. ``address_bits``: the
    guest physical address width every ``reg`` must fit. ``profile``: which
    rules fit the blob (:data:`PROFILES`; ``"auto"`` decides by
    :func:`profile_of`). ``cap``: findings kept per rule (``None``: all); the
    rest are counted on one closing finding of the rule (its ``omitted``).
    """

    manifest: Manifest | None = None
    template: Template | None = None
    dtc: str | None = None
    libfdt: bool = True
    shared_spis: frozenset[int] = frozenset()
    address_bits: int = DEFAULT_ADDRESS_WIDTH
    profile: str = "auto"
    cap: int | None = DEFAULT_CAP


NO_OPTIONS = Options()  # the blob alone: every default


def verify(buf: bytes, options: Options = NO_OPTIONS) -> list[Finding]:
    """Every finding for the blob ``buf``. Raises :class:`BlobError` if it does not parse."""
    from fdtgen.fdt.parse import parse_blob

    return verify_parsed(parse_blob(buf), buf, options)


def verify_parsed(blob: Blob, buf: bytes, options: Options = NO_OPTIONS) -> list[Finding]:
    """Every finding for ``blob``, parsed from the bytes ``buf``, in report order."""
    # The rule modules load with the first check, not with ``import fdtgen``.
    from fdtgen.checks.structure import DtcCheck

    if options.profile not in PROFILES:
        raise ValueError(f"profile {options.profile!r} is not one of {PROFILES}")
    dtc = DtcCheck(options.dtc, buf) if options.dtc else None  # runs beside the rules below
    try:
        return _verify_with(blob, buf, options, dtc)
    except BaseException:
        if dtc is not None:
            dtc.close()
        raise


def _verify_with(blob: Blob, buf: bytes, options: Options, dtc: DtcCheck | None) -> list[Finding]:
    from fdtgen.checks.bindings import binding_findings
    from fdtgen.checks.index import TreeIndex
    from fdtgen.checks.interrupts import interrupt_findings
    from fdtgen.checks.pci import pci_findings
    from fdtgen.checks.references import reference_findings
    from fdtgen.checks.regions import region_findings
    from fdtgen.checks.structure import structure_findings

    index = TreeIndex(blob.tree)
    profile = profile_of(index) if options.profile == "auto" else options.profile
    out = Findings(options.cap, index.disabled)
    structure_findings(blob, buf, libfdt=options.libfdt, out=out)
    out.merge(binding_findings(index))
    reference_findings(index, out)
    interrupt_findings(index, options.shared_spis, out)
    region_findings(index, options.address_bits, out)
    pci_findings(index, options.address_bits, out)
    if options.template is not None:
        from fdtgen.checks.template import template_findings

        out.merge(template_findings(index, options.template, options.address_bits))
    if options.manifest is not None:
        from fdtgen.checks.boot import boot_findings

        out.merge(boot_findings(index, blob, options.manifest, buf))
    if dtc is not None:
        out.merge(dtc.findings())
    judge: dict[str, str | None] = {}  # rule -> its severity in this profile
    return _capped(_judged(out, index, profile, judge), out, options.cap, judge)


def profile_of(index: TreeIndex) -> str:
    """``"microvm"`` when the blob looks final, ready for the kernel as it is;
    else ``"board"``. Final means: the root is ``linux,dummy-virt`` (QEMU's
    virt board and the VMMs that follow it), or a node is ``virtio,mmio``, or
    some ``/memory`` range has a nonzero size and ``/chosen`` carries what a
    loader puts there (``bootargs`` or ``linux,initrd-start``) on a tree without
    a SoC's plumbing (:data:`SOC_PROPERTIES`: pin muxing, reset, power-domain
    and PHY providers, which no VMM or Arm model describes). A board DTB as a
    kernel ships it leaves the memory size, the command line and often the
    CPUs' enable-method to the bootloader; its ``/chosen`` names a console at
    most, and the boards whose DTS sets ``bootargs`` have that plumbing."""
    if "linux,dummy-virt" in index.compatible("/") or index.with_compatible({"virtio,mmio"}):
        return "microvm"
    chosen = index.nodes.get("/chosen")
    loaded = chosen is not None and any(
        chosen.prop(name) is not None for name in ("bootargs", "linux,initrd-start")
    )
    if not loaded or not index.memory():
        return "board"
    soc = any(n.prop(name) is not None for n in index.nodes.values() for name in SOC_PROPERTIES)
    return "board" if soc else "microvm"


def _judged(
    found: list[Finding], index: TreeIndex, profile: str, judge: dict[str, str | None]
) -> list[Finding]:
    """Severities for ``profile``, and a disabled node's findings as notes
    (DT spec "status": the kernel never probes it). ``judge`` collects each
    rule's severity in ``profile``."""
    out = []
    for f in found:
        if f.rule in judge:
            severity = judge[f.rule]
        else:
            severity = judge[f.rule] = (
                _board_severity(f.rule, f.severity) if profile == "board" else f.severity
            )
        if severity is None:
            continue
        if severity != NOTE and f.path in index.disabled and f.path in index.nodes:
            severity = NOTE
        out.append(f if severity == f.severity else _with_severity(f, severity))
    return out


def _board_severity(rule: str, severity: str) -> str | None:
    """``rule``'s severity on a board: what the longest matching key of
    :data:`BOARD_SEVERITY` says, else ``severity`` as it is."""
    key = max(
        (k for k in BOARD_SEVERITY if rule == k or (k.endswith(".") and rule.startswith(k))),
        key=len,
        default=None,
    )
    return severity if key is None else BOARD_SEVERITY[key]


def _with_severity(f: Finding, severity: str) -> Finding:
    return Finding(f.rule, f.path, f.prop, f.value, f.message, severity, f.omitted)


def _capped(
    found: list[Finding],
    reported: Findings,
    cap: int | None,
    judge: dict[str, str | None],
) -> list[Finding]:
    """``found`` (at most ``cap`` findings of each rule; ``reported`` counted
    what each rule reported, and how much of it on disabled nodes), each capped
    rule closed after its last kept finding by a finding counting what was
    left out (its ``omitted``) at the rule's severity in the profile
    (``judge``), and by a note counting the left-out findings on disabled
    nodes, which are notes like every finding on a disabled node."""
    if cap is None:
        return found
    counted, disabled = reported.counted, reported.disabled
    last = {f.rule: i for i, f in enumerate(found) if counted.get(f.rule, 0) > cap}
    kept_disabled: dict[str, int] = {}
    for f in found:
        if f.rule in last and f.path in disabled:
            kept_disabled[f.rule] = kept_disabled.get(f.rule, 0) + 1
    closing = {i: rule for rule, i in last.items()}
    out: list[Finding] = []
    for i, f in enumerate(found):
        out.append(f)
        rule = closing.get(i)
        if rule is None:
            continue
        off = reported.counted_disabled.get(rule, 0) - kept_disabled.get(rule, 0)
        on = counted[rule] - cap - off
        severity = judge.get(rule) or ""
        if on and severity:
            out.append(Finding(rule, "/", "", "", f"{on} more", severity, omitted=on))
        if off:
            what = f"{off} more on disabled nodes"
            out.append(Finding(rule, "/", "", "", what, NOTE, omitted=off))
    return out


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    """Findings per severity, counting what capped rules left out."""
    n = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        n[f.severity] += f.omitted or 1
    return n


def findings_report(findings: Sequence[Finding], source: str) -> dict[str, object]:
    """The findings for the blob read from ``source`` as ``fdtgen verify --json``
    reports them: ``clean`` means no finding at all, ``errors``/``warnings``/
    ``notes`` count them (left-out ones included)."""
    n = counts(findings)
    return {
        "blob": source,
        "clean": not findings,
        "errors": n[ERROR],
        "warnings": n[WARNING],
        "notes": n[NOTE],
        "findings": [f.as_dict() for f in findings],
    }


def findings_json(findings: Sequence[Finding], source: str) -> str:
    """The findings for the blob read from ``source`` as ``fdtgen verify --json`` prints them."""
    import json  # only --json needs it

    return json.dumps(findings_report(findings, source), indent=2) + "\n"
