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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fdtgen.checks.finding import Finding
from fdtgen.spec import DEFAULT_ADDRESS_WIDTH

if TYPE_CHECKING:
    from fdtgen.fdt.parse import Blob
    from fdtgen.manifest import Manifest
    from fdtgen.template.model import Template

__all__ = ["Finding", "Options", "findings_json", "verify", "verify_parsed"]


@dataclass(frozen=True, slots=True)
class Options:
    """What to check beyond the blob itself.

    ``manifest``: the placement to hold to booting.rst (``boot.*``), a manifest
    :func:`fdtgen.manifest.from_json` read or :func:`~fdtgen.manifest.manifest_for` made.
    ``template``: the template whose pinned regions and SPIs the blob must
    follow (``template.*``). ``dtc``: the dtc executable (``None``: skip its
    checks). ``libfdt``: ask libfdt's ``fdt_check_full`` too. ``shared_spis``:
    SPI numbers that may be wired to more than one node. ``address_bits``: the
    guest physical address width every ``reg`` must fit.
    """

    manifest: Manifest | None = None
    template: Template | None = None
    dtc: str | None = None
    libfdt: bool = True
    shared_spis: frozenset[int] = frozenset()
    address_bits: int = DEFAULT_ADDRESS_WIDTH


def verify(buf: bytes, options: Options = Options()) -> list[Finding]:
    """Every finding for the blob ``buf``. Raises :class:`BlobError` if it does not parse."""
    from fdtgen.fdt.parse import parse_blob

    return verify_parsed(parse_blob(buf), buf, options)


def verify_parsed(blob: Blob, buf: bytes, options: Options = Options()) -> list[Finding]:
    """Every finding for ``blob``, parsed from the bytes ``buf``, in report order."""
    # The rule modules load with the first check, not with ``import fdtgen``.
    from fdtgen.checks.bindings import binding_findings
    from fdtgen.checks.index import TreeIndex
    from fdtgen.checks.interrupts import interrupt_findings
    from fdtgen.checks.references import reference_findings
    from fdtgen.checks.regions import region_findings
    from fdtgen.checks.structure import structure_findings

    index = TreeIndex(blob.tree)
    out: list[Finding] = []
    out += structure_findings(blob, buf, libfdt=options.libfdt, dtc=options.dtc)
    out += binding_findings(index)
    out += reference_findings(index)
    out += interrupt_findings(index, options.shared_spis)
    out += region_findings(index, options.address_bits)
    if options.template is not None:
        from fdtgen.checks.template import template_findings

        out += template_findings(index, options.template)
    if options.manifest is not None:
        from fdtgen.checks.boot import boot_findings

        out += boot_findings(index, blob, options.manifest, buf)
    return out


def findings_json(findings: Sequence[Finding], source: str) -> str:
    """The findings for the blob read from ``source`` as ``fdtgen verify --json`` prints them."""
    import json  # only --json needs it

    report = {"blob": source, "clean": not findings, "findings": [f.as_dict() for f in findings]}
    return json.dumps(report, indent=2) + "\n"
