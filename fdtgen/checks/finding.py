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
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: ``rule`` id, node ``path``, property ``prop`` (or ``""``),
    the offending ``value`` as DTS text (or ``""``), the ``message`` and the
    ``severity`` (``""``: the one :func:`severity_of` gives the rule).

    ``omitted`` is nonzero only on the line that closes a capped rule: it says
    how many more findings of ``rule`` were left out."""

    rule: str
    path: str
    prop: str
    value: str
    message: str
    severity: str = ""
    omitted: int = 0

    def __post_init__(self) -> None:
        if not self.severity:
            object.__setattr__(self, "severity", severity_of(self.rule))
        elif self.severity not in SEVERITIES:
            raise ValueError(f"{self.rule}: severity {self.severity!r} is not one of {SEVERITIES}")

    def __str__(self) -> str:
        if self.omitted:
            return f"{self.severity}: … and {self.omitted:,} more {self.rule} findings"
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
