"""A finding: one broken rule, as ``fdtgen verify`` prints it and ``fdtgen.verify`` returns it.

Every finding has a severity:

* ``error``: the kernel will not boot, or a driver's binding check fails and
  the device does not probe (the kernel enforces it);
* ``warning``: against a binding or the DT spec in a way that can bite
  (a device that may not work, a console that is not there);
* ``note``: worth knowing, harmless to the kernel (a name longer than the DT
  spec recommends, something firmware is expected to complete).

A rule's severity is the one :data:`SEVERITY` lists for it (the longest
listed prefix of its id decides), unless the rule module chose one itself.

Rules report into one :class:`Findings` per verify, which keeps the first
``cap`` findings of each rule and only counts the rest: a rule asks
:meth:`Findings.wants` before it builds a finding, so a blob with a hundred
thousand overlapping ranges costs a hundred thousand counts, not a hundred
thousand formatted messages.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any, NamedTuple, Self

ERROR = "error"
WARNING = "warning"
NOTE = "note"
SEVERITIES = (ERROR, WARNING, NOTE)  # most severe first

# Rule id (or a prefix ending in ".") -> severity. Anything not listed is an error.
SEVERITY: dict[str, str] = {
    "header.trailing": NOTE,
    "header.rsvmap-align": WARNING,
    "structure.node-name": WARNING,
    "structure.property-name": WARNING,
    "structure.name-length": NOTE,
    "memreserve.": WARNING,
    "dtc.": WARNING,
    "dtc.error": ERROR,
    "dtc.run": WARNING,
    "dtc.timeout": NOTE,
    "cpus.reg": WARNING,
    "cpus.release-addr": WARNING,
    "memory.reg": WARNING,
    "gic.its": WARNING,
    "gic.v2m": WARNING,
    "pl011.": WARNING,
    "pl011.interrupts": ERROR,
    "chosen.": WARNING,
    "aliases.": WARNING,
    "phandle.": WARNING,
    "interrupts.shared": WARNING,
    "regions.": WARNING,
}


@functools.cache
def severity_of(rule: str) -> str:
    """The severity :data:`SEVERITY` gives ``rule`` (``error`` when not listed)."""
    if rule in SEVERITY:
        return SEVERITY[rule]
    best = ""
    for prefix in SEVERITY:
        if prefix.endswith(".") and rule.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return SEVERITY[best] if best else ERROR


class _Fields(NamedTuple):
    rule: str
    path: str
    prop: str
    value: str
    message: str
    severity: str
    omitted: int


class Finding(_Fields):
    """One broken rule: ``rule`` id, node ``path``, property ``prop`` (or ``""``),
    the offending ``value`` as DTS text (or ``""``), the ``message`` and the
    ``severity`` (``""``: the one :func:`severity_of` gives the rule).

    ``omitted`` is nonzero only on the line that closes a capped rule: it says
    how many more findings of ``rule`` were left out.

    An immutable named tuple: a verify of a blob never imports ``dataclasses``,
    whose ``inspect`` costs milliseconds of every start."""

    __slots__ = ()

    def __new__(
        cls,
        rule: str,
        path: str,
        prop: str,
        value: str,
        message: str,
        severity: str = "",
        omitted: int = 0,
    ) -> Finding:
        if not severity:
            severity = severity_of(rule)
        elif severity not in SEVERITIES:
            raise ValueError(f"{rule}: severity {severity!r} is not one of {SEVERITIES}")
        return tuple.__new__(cls, (rule, path, prop, value, message, severity, omitted))

    # A copy or a finding from fields goes through __new__, so its severity is checked too.
    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Self:  # type: ignore[override]
        return cls(*iterable)

    def _replace(self, **changes: Any) -> Self:
        return type(self)(**{**self._asdict(), **changes})

    def __str__(self) -> str:
        if self.omitted:
            where = " on disabled nodes" if self.message.endswith("on disabled nodes") else ""
            return f"{self.severity}: … and {self.omitted:,} more {self.rule} findings{where}"
        where = f"{self.path} {self.prop}" if self.prop else self.path
        value = f" = {self.value}" if self.value else ""
        return f"{self.severity}: {self.rule}: {where}{value}: {self.message}"

    def as_dict(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {
            "severity": self.severity,
            "rule": self.rule,
            "path": self.path,
            "property": self.prop,
            "value": self.value,
            "message": self.message,
        }
        if self.omitted:
            out["omitted"] = self.omitted
        return out


class Findings(list[Finding]):
    """The findings of one verify, in report order, at most ``cap`` per rule.

    A rule calls :meth:`wants` with its id and the node's path before building
    a finding and appends the finding only when told to; every call is
    counted in ``counted`` (rule id to the number of findings the rule
    reported), and those on a node in ``disabled`` (a disabled node, whose
    findings are notes) in ``counted_disabled`` too, so what the cap leaves
    out is known exactly, severity included, without being built. ``cap``
    ``None`` keeps everything. :meth:`add` and :meth:`merge` do the same for
    findings that are already built."""

    def __init__(self, cap: int | None = None, disabled: AbstractSet[str] = frozenset()) -> None:
        super().__init__()
        self.cap = sys.maxsize if cap is None else cap
        self.disabled = disabled
        self.counted: dict[str, int] = {}
        self.counted_disabled: dict[str, int] = {}

    def wants(self, rule: str, path: str = "") -> bool:
        """Count one more finding of ``rule`` on ``path``; whether it is to be
        built and appended."""
        n = self.counted[rule] = self.counted.get(rule, 0) + 1
        if path in self.disabled:
            self.counted_disabled[rule] = self.counted_disabled.get(rule, 0) + 1
        return n <= self.cap

    def wanted(self, rule: str, n: int, path: str = "") -> int:
        """Count ``n`` more findings of ``rule`` on ``path``; how many of them
        (the first) to build."""
        before = self.counted.get(rule, 0)
        self.counted[rule] = before + n
        if path in self.disabled:
            self.counted_disabled[rule] = self.counted_disabled.get(rule, 0) + n
        return max(0, min(n, self.cap - before))

    def add(self, finding: Finding) -> None:
        """Count ``finding`` and keep it if its rule is under the cap."""
        if self.wants(finding.rule, finding.path):
            self.append(finding)

    def merge(self, found: Iterable[Finding]) -> None:
        """:meth:`add` each of ``found``, in order."""
        for f in found:
            self.add(f)
