"""fdtgen: device trees and boot placement for aarch64 Linux microVMs."""

__version__ = "0.1.0"

from .dtb import FDT_MAX_SIZE, encode
from .dts import to_dts
from .errors import FdtgenError
from .machine import Machine
from .pipeline import Build, build
from .tree import DeviceTree, Node, Prop

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
