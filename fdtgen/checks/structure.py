"""``header.*``, ``structure.*``, ``memreserve.*``, ``libfdt.*`` and ``dtc.*`` findings.

The DT spec's "Flattened Devicetree (DTB) Format" rules the parser tolerates
(:mod:`fdtgen.fdt.parse` rejects what it cannot read), booting.rst's 2 MiB
cap, and two second opinions: libfdt's ``fdt_check_full`` and dtc's own
checks (``dtc -I dtb -O dtb``) when a dtc executable is given.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Sequence

from fdtgen.checks.finding import Finding, Findings
from fdtgen.fdt.names import SPEC_NODE_NAME_RE, SPEC_PROP_NAME_RE
from fdtgen.fdt.parse import Blob
from fdtgen.spec import FDT_MAX_SIZE
from fdtgen.units import U64_MAX

# Seconds dtc's own checks may take. dtc answers in milliseconds for every DTB
# a distribution ships, but some of its checks are quadratic (siblings sharing
# a unit address, huge interrupt-maps: 13 s on a hostile 2 MiB blob), and
# verify's own rules must not wait on them.
DTC_TIMEOUT = 1.0

# The checks the kernel's own DTB build switches off (scripts/Makefile.dtbs,
# torvalds/linux 52c996d3f40b: -Wno-unique_unit_address always, and by default
# -Wno-unit_address_vs_reg -Wno-avoid_unnecessary_addr_size -Wno-alias_paths
# -Wno-graph_child_address -Wno-simple_bus_reg), plus interrupt_provider, which
# the same build switched off until the interrupt warnings were fixed
# (scripts/Makefile.lib up to 6.7): a distribution's DTBs were built without them.
DTC_QUIET = (
    "unique_unit_address",
    "unit_address_vs_reg",
    "avoid_unnecessary_addr_size",
    "alias_paths",
    "graph_child_address",
    "simple_bus_reg",
    "interrupt_provider",
)
NAME_MAX = 31  # DT spec "Node Names" / "Property Names": 1 to 31 characters

_DTC_LINE = re.compile(r"^(?:.*?: )?(Warning|ERROR) \(([\w-]+)\): (.*)$")


def structure_findings(
    blob: Blob,
    buf: bytes,
    libfdt: bool = True,
    dtc: str | None = None,
    out: Findings | None = None,
) -> list[Finding]:
    """DT spec "Flattened Devicetree (DTB) Format" rules the parser tolerates,
    booting.rst's size cap, and the opinions of libfdt and dtc. Reported into
    ``out`` (a new :class:`Findings` when ``None``), which is returned."""
    hdr = blob.header
    if out is None:
        out = Findings()
    if hdr.totalsize > FDT_MAX_SIZE:
        out.append(
            Finding(
                "header.size",
                "/",
                "",
                f"{hdr.totalsize:#x}",
                f"totalsize is over {FDT_MAX_SIZE:#x} "
                "(booting.rst: the dtb must not exceed 2 megabytes)",
            )
        )
    if blob.file_size > hdr.totalsize:
        out.append(
            Finding(
                "header.trailing",
                "/",
                "",
                f"{blob.file_size - hdr.totalsize:#x}",
                f"bytes follow totalsize {hdr.totalsize:#x} in the file; a loader copying "
                "the file copies bytes the kernel never reads",
            )
        )
    if hdr.off_mem_rsvmap % 8:
        out.append(
            Finding(
                "header.rsvmap-align",
                "/",
                "",
                f"{hdr.off_mem_rsvmap:#x}",
                'off_mem_rsvmap is not 8-byte aligned (DT spec "Memory Reservation Block")',
            )
        )
    root = blob.tree.root
    if root.name:
        out.append(
            Finding(
                "structure.root-name",
                "/",
                "",
                repr(root.name),
                "the root node's name must be empty "
                '(DT spec "Structure Block"; libfdt rejects it)',
            )
        )
    for path, node in root.walk():
        base = node.name.partition("@")[0]
        if path != "/" and len(base) > NAME_MAX and out.wants("structure.name-length", path):
            out.append(
                Finding(
                    "structure.name-length",
                    path,
                    "",
                    repr(node.name),
                    f"the node name is {len(base)} characters, over the DT spec's {NAME_MAX} "
                    "(dtc and Linux accept it)",
                )
            )
        if len(base) > NAME_MAX:
            base = base[:NAME_MAX]
        name = base + node.name[len(node.name.partition("@")[0]) :]
        if (
            path != "/"
            and not SPEC_NODE_NAME_RE.fullmatch(name)
            and out.wants("structure.node-name", path)
        ):
            out.append(
                Finding(
                    "structure.node-name",
                    path,
                    "",
                    repr(node.name),
                    "breaks the DT spec node-name rule "
                    "(1-31 of [A-Za-z0-9,._+-], optional @unit-address)",
                )
            )
        for p in node.props:
            if len(p.name) > NAME_MAX and out.wants("structure.name-length", path):
                out.append(
                    Finding(
                        "structure.name-length",
                        path,
                        p.name,
                        "",
                        f"the property name is {len(p.name)} characters, over the DT spec's "
                        f"{NAME_MAX} (dtc and Linux accept it)",
                    )
                )
            if not SPEC_PROP_NAME_RE.fullmatch(p.name[:NAME_MAX]) and out.wants(
                "structure.property-name", path
            ):
                out.append(
                    Finding(
                        "structure.property-name",
                        path,
                        p.name,
                        "",
                        "breaks the DT spec property-name rule (1-31 of [A-Za-z0-9,._+?#-])",
                    )
                )
    out.merge(_memreserve_findings(blob.tree.reserve))
    if libfdt:
        out.merge(_libfdt_findings(buf))
    if dtc:
        out.merge(dtc_findings(dtc, buf))
    return out


def _memreserve_findings(reserve: Sequence[tuple[int, int]]) -> list[Finding]:
    out = []
    for base, size in reserve:
        if base + size > U64_MAX + 1:
            out.append(
                Finding(
                    "memreserve.range",
                    "/memreserve/",
                    "",
                    f"{base:#x} {size:#x}",
                    "the reservation runs past the 64-bit address space",
                )
            )
    ordered = sorted(reserve)
    for (a, asz), (b, bsz) in zip(ordered, ordered[1:], strict=False):
        if b < a + asz:
            out.append(
                Finding(
                    "memreserve.overlap",
                    "/memreserve/",
                    "",
                    f"{b:#x} {bsz:#x}",
                    f"overlaps the reservation [{a:#x}, {a + asz:#x}) "
                    '(DT spec "Memory Reservation Block": entries shall not overlap)',
                )
            )
    return out


def _libfdt_findings(buf: bytes) -> list[Finding]:
    """libfdt's ``fdt_check_full(buf, len(buf))``, which must agree that the blob is sound."""
    import libfdt  # type: ignore[import-untyped]

    data = bytearray(buf)
    rc = libfdt.fdt_check_full(data, len(data))
    if rc == 0:
        return []
    return [
        Finding(
            "libfdt.check-full",
            "/",
            "",
            libfdt.fdt_strerror(rc),
            "libfdt's fdt_check_full rejects a blob fdtgen's parser accepted",
        )
    ]


def dtc_findings(dtc: str, buf: bytes, timeout: float = DTC_TIMEOUT) -> list[Finding]:
    """dtc's checks on the blob: :class:`DtcCheck` started and waited for."""
    return DtcCheck(dtc, buf, timeout).findings()


class DtcCheck:
    """dtc's checks on the blob (``dtc -I dtb -O dtb -o /dev/null BLOB``) but those
    the kernel's DTB build switches off (:data:`DTC_QUIET`), started at once in
    the background so that they run beside fdtgen's own rules; :meth:`findings`
    waits for them until ``timeout`` seconds after the start. One finding per
    warning or error line; a dtc that cannot run, fails silently or runs out of
    time is one finding."""

    def __init__(self, dtc: str, buf: bytes, timeout: float = DTC_TIMEOUT) -> None:
        import tempfile
        import time

        self.dtc, self.timeout = dtc, timeout
        self.deadline = time.monotonic() + timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.error = ""
        # A file, not a pipe: dtc reads it whole while this process goes on.
        fd, self.path = tempfile.mkstemp(prefix="fdtgen-verify-", suffix=".dtb")
        with os.fdopen(fd, "wb") as f:
            f.write(buf)
        quiet = [f"-Wno-{check}" for check in DTC_QUIET]
        argv = [dtc, "-I", "dtb", "-O", "dtb", *quiet, "-o", os.devnull, self.path]
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as e:
            self.error = f"could not run {dtc}: {e}"
            os.unlink(self.path)

    def close(self) -> None:
        """Stop dtc and remove the blob's temporary copy, when the rules failed
        (an exception, Ctrl-C) before :meth:`findings` was asked."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            self.proc.communicate()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def findings(self) -> list[Finding]:
        import time

        if self.proc is None:
            return [Finding("dtc.run", "/", "", "", self.error)]
        try:
            _, stderr = self.proc.communicate(timeout=max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            message = (
                f"dtc's checks did not finish within {self.timeout:g} s and were left out "
                "(fdtgen's own rules ran); run dtc -I dtb -O dtb on the blob for them"
            )
            return [Finding("dtc.timeout", "/", "", "", message)]
        finally:
            os.unlink(self.path)
        return _dtc_report(stderr, self.proc.returncode)


def _dtc_report(stderr: bytes, returncode: int) -> list[Finding]:
    out: list[Finding] = []
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    for line in lines:
        m = _DTC_LINE.match(line)
        if m is None:
            continue
        check, text = m.group(2), m.group(3)
        path, _, message = text.partition(": ") if text.startswith("/") else ("/", "", text)
        node, _, prop = path.partition(":")
        out.append(Finding(f"dtc.{check}", node, prop, "", message or text))
    if returncode != 0 and not out:
        first = lines[0] if lines else f"exit status {returncode}"
        out.append(Finding("dtc.error", "/", "", "", f"dtc rejects the blob: {first}"))
    return out
