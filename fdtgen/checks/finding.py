"""A finding: one broken rule, as ``fdtgen verify`` prints it and ``fdtgen.verify`` returns it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: ``rule`` id, node ``path``, property ``prop`` (or ``""``),
    the offending ``value`` as DTS text (or ``""``) and the ``message``."""

    rule: str
    path: str
    prop: str
    value: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path} {self.prop}" if self.prop else self.path
        value = f" = {self.value}" if self.value else ""
        return f"{self.rule}: {where}{value}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "path": self.path,
            "property": self.prop,
            "value": self.value,
            "message": self.message,
        }
