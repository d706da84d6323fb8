"""fdtgen: device trees and boot placement for aarch64 Linux microVMs.

The API is two calls — :func:`build` a machine, :func:`verify` any blob —
documented in ``docs/api.md``. Importing ``fdtgen`` is cheap: the API's names
load on first use (so ``fdtgen dts`` and ``diff``, which never call them, do
not pay for them), each call imports the layers it needs, and only a build
that reads a config imports pydantic.
"""

import typing

from fdtgen.errors import FdtgenError
from fdtgen.version import __version__

if typing.TYPE_CHECKING:
    from fdtgen.api import Result, build, verify
    from fdtgen.checks.finding import Finding

__all__ = ["FdtgenError", "Finding", "Result", "__version__", "build", "verify"]

_LAZY = {
    "Finding": "fdtgen.checks.finding",
    "Result": "fdtgen.api",
    "build": "fdtgen.api",
    "verify": "fdtgen.api",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fdtgen' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
