"""Machine in, blob out: template -> layout -> tree -> DTB."""

from __future__ import annotations

from dataclasses import dataclass

from .dtb import encode
from .layout import Layout
from .machine import Machine, machine_layout, machine_tree
from .templates import load_template
from .tree import DeviceTree


@dataclass(frozen=True, slots=True)
class Build:
    machine: Machine
    layout: Layout
    tree: DeviceTree
    blob: bytes


def build(m: Machine) -> Build:
    """Resolve, build and encode ``m``. Raises :class:`fdtgen.errors.FdtgenError`."""
    layout = machine_layout(m, load_template(m.template))
    tree = machine_tree(layout, m)
    return Build(m, layout, tree, encode(tree))
