"""fdtgen: device trees and boot placement for aarch64 Linux microVMs.

The API is two calls — :func:`build` a machine, :func:`verify` any blob —
documented in ``docs/api.md``. Importing ``fdtgen`` is cheap: each call
imports the layers it needs when it runs, and only a build that reads a
config imports pydantic.
"""

from fdtgen.api import Result, build, verify
from fdtgen.checks.finding import Finding
from fdtgen.errors import FdtgenError
from fdtgen.version import __version__

__all__ = ["FdtgenError", "Finding", "Result", "__version__", "build", "verify"]
