"""fdtgen: device trees and boot placement for aarch64 Linux microVMs.

The public names below are imported on first use, so ``import fdtgen`` (and
every CLI command) pays only for the modules it actually needs.
"""

from fdtgen.version import __version__

__all__ = [
    "FDT_MAX_SIZE",
    "Build",
    "DeviceTree",
    "FdtgenError",
    "Machine",
    "Node",
    "Prop",
    "__version__",
    "build",
    "encode",
    "to_dts",
]

_LAZY = {
    "FDT_MAX_SIZE": "spec",
    "encode": "fdt.encode",
    "to_dts": "fdt.dts",
    "FdtgenError": "errors",
    "Machine": "devicetree.machine",
    "Build": "pipeline",
    "build": "pipeline",
    "DeviceTree": "fdt.tree",
    "Node": "fdt.tree",
    "Prop": "fdt.tree",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fdtgen' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"fdtgen.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
