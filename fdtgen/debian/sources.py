"""The Debian archives the machine's apt already uses, read from its sources.

Both formats apt reads (sources.list(5)): one-line ``deb [options] URI SUITE
COMPONENT...`` in ``sources.list`` and ``sources.list.d/*.list``, and deb822
stanzas (``Types``, ``URIs``, ``Suites``, ``Components``, ``Signed-By``,
``Enabled``) in ``sources.list.d/*.sources``. Only ``deb`` entries whose URI
is a Debian archive (its path ends in ``/debian`` or ``/debian-security``)
are kept: a third-party repository rarely carries arm64 kernels, and the
machine's mirror, proxy and keyring choices are what matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEBIAN_ARCHIVES = ("debian", "debian-security")


@dataclass(frozen=True, slots=True)
class Source:
    uri: str
    suite: str
    components: tuple[str, ...]
    signed_by: str | None = None

    def line(self, arch: str) -> str:
        """This source as a one-line entry restricted to ``arch``."""
        options = [f"arch={arch}"]
        if self.signed_by:
            options.append(f"signed-by={self.signed_by}")
        return f"deb [{' '.join(options)}] {self.uri} {self.suite} {' '.join(self.components)}"


def parse_one_line(text: str) -> list[Source]:
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        m = re.match(r"deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        opts = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
        components = tuple(m.group(4).split())
        out.append(Source(m.group(2), m.group(3), components, opts.get("signed-by")))
    return out


def parse_deb822(text: str) -> list[Source]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + raw.strip()
                continue
            name, sep, value = raw.partition(":")
            if sep:
                key = name.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        signed_by = fields.get("signed-by")
        # An inline key block is not a path apt could be given on a one-line entry.
        if signed_by and "\n" in signed_by:
            signed_by = None
        components = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append(Source(uri, suite, components, signed_by))
    return out


def machine_sources(etc: Path = Path("/etc/apt")) -> list[Source]:
    """Every ``deb`` source the machine's apt reads, in apt's order."""
    found: list[Source] = []
    main = etc / "sources.list"
    if main.is_file():
        found += parse_one_line(main.read_text(errors="replace"))
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.name.endswith(".list"):
                found += parse_one_line(path.read_text(errors="replace"))
            elif path.name.endswith(".sources"):
                found += parse_deb822(path.read_text(errors="replace"))
    return found


def debian_sources(sources: list[Source]) -> list[Source]:
    """The Debian archives among ``sources`` with their ``main`` component."""
    return [
        Source(s.uri, s.suite, ("main",), s.signed_by)
        for s in sources
        if s.uri.rstrip("/").rsplit("/", 1)[-1] in DEBIAN_ARCHIVES and "main" in s.components
    ]
