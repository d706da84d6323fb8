"""The fast path: the same blob as :func:`fdtgen.pipeline.build`, without rebuilding the tree.

A VMM launching thousands of guests builds many DTBs that differ only in a few
values: the command line, the RAM size, the initrd range, the entropy. For each
*shape* (everything else: template, vCPUs, virtio count, devices, which
``/chosen`` properties exist, where RAM ranges start) the generic path runs
once and its blob is compiled into a :class:`fdtgen.dtb.Stencil` with holes
for those values. Later builds of the same shape resolve the layout and the
placement as usual, encode only the holed values with the same
:class:`fdtgen.tree.Prop` constructors, and fill the stencil. The bytes equal
the generic path's by construction, and a test compares them over generated
machines.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from ._value import fields, replace
from .dtb import Stencil, compile_stencil
from .errors import BlobTooLargeError
from .layout import Layout, Template
from .machine import Machine, machine_layout, machine_tree
from .pipeline import (
    CHOSEN,
    Boot,
    Build,
    dtb_limit,
    dtb_too_large,
    entropy_chosen_props,
    initrd_chosen_props,
    patch_slots,
)
from .placement import Placement, place
from .templates import load_template
from .tree import DeviceTree, Prop, reg_cells, unit_name

_CACHE_SIZE = 256
V = TypeVar("V")
# Machine fields that change a blob's structure; the rest are stencil holes.
_VALUE_FIELDS = {"cmdline", "memory", "chosen_extra"}
_SHAPE_FIELDS = tuple(f for f in fields(Machine) if f not in _VALUE_FIELDS)


class FastBuilder:
    """Builds blobs through per-shape stencils; one instance per process is plenty.

    Not thread-safe (the caches are plain dicts); give each thread its own.
    """

    def __init__(self, cache_size: int = _CACHE_SIZE) -> None:
        self._templates: dict[str, Template] = {}
        self._layouts: OrderedDict[Hashable, Layout] = OrderedDict()
        self._stencils: OrderedDict[Hashable, tuple[Stencil, tuple[tuple[str, str], ...]]] = (
            OrderedDict()
        )
        self._placements: OrderedDict[Hashable, Placement] = OrderedDict()
        self.cache_size = cache_size

    def template(self, name: str) -> Template:
        t = self._templates.get(name)
        if t is None:
            t = self._templates[name] = load_template(name)
        return t

    def layout(self, m: Machine, t: Template) -> Layout:
        key = (
            m.template,
            m.vcpus,
            m.memory,
            m.virtio,
            m.serial,
            m.redist_stride,
            m.ram_base,
            m.address_width,
            m.topology,
        )
        layout = self._layouts.get(key)
        if layout is None:
            layout = machine_layout(m, t)
            _put(self._layouts, key, layout, self.cache_size)
        return layout

    def placement(self, layout: Layout, t: Template, boot: Boot) -> Placement:
        """:func:`~fdtgen.placement.place`, remembered: a fleet boots few kernels."""
        k = boot.kernel
        assert k is not None
        key = (layout.ram, t.boot, k.text_offset, k.image_size, k.flags, k.size, boot.initrd_size)
        p = self._placements.get(key)
        if p is None:
            p = place(layout.ram, t.boot, k, boot.initrd_size)
            _put(self._placements, key, p, self.cache_size)
        return p

    def build(self, m: Machine, boot: Boot | None = None) -> Build:
        """Same result as :func:`fdtgen.pipeline.build` except ``tree`` is ``None``."""
        t = self.template(m.template)
        layout = self.layout(m, t)
        boot = boot or Boot()
        placement = None
        if boot.kernel is not None:
            placement = self.placement(layout, t, boot)
        entropy = entropy_chosen_props(boot)
        extra = initrd_chosen_props(placement) + entropy
        values = _hole_values(m, layout, extra)
        shape = (
            tuple(getattr(m, f) for f in _SHAPE_FIELDS),
            tuple(r.base for r in layout.ram),
            tuple(p.name for p in (*m.chosen_extra, *extra)),
        )
        entry = self._stencils.get(shape)
        if entry is None:
            machine = replace(m, chosen_extra=m.chosen_extra + extra)
            tree = machine_tree(layout, machine)
            holes = tuple(sorted(values, key=_blob_order(tree)))
            entry = (compile_stencil(tree, holes), holes)
            _put(self._stencils, shape, entry, self.cache_size)
        stencil, holes = entry
        try:
            blob, where = stencil.fill([values[h] for h in holes], max_size=dtb_limit(placement))
        except BlobTooLargeError as e:
            raise dtb_too_large(e, placement) from None
        slots = patch_slots(entropy, dict(zip(holes, where, strict=True)), boot)
        machine = replace(m, chosen_extra=m.chosen_extra + extra) if extra else m
        return Build(machine, layout, None, blob, placement, slots, boot)


def _hole_values(
    m: Machine, layout: Layout, extra: tuple[Prop, ...]
) -> dict[tuple[str, str], bytes]:
    """Encoded bytes of every value that varies within a shape."""
    values = {(CHOSEN, "bootargs"): Prop.strings("bootargs", m.cmdline).value}
    for r in layout.ram:
        values[("/" + unit_name("memory", r.base), "reg")] = Prop.cells(
            "reg", *reg_cells(r.base, r.size)
        ).value
    for p in extra:
        values[(CHOSEN, p.name)] = p.value
    return values


def _blob_order(tree: DeviceTree) -> Callable[[tuple[str, str]], int]:
    """Sort key putting (node path, property) pairs in the order the blob holds them."""
    order: dict[tuple[str, str], int] = {}
    for path, node in tree.root.walk():
        for p in node.props:
            order[(path, p.name)] = len(order)
    return order.__getitem__


def _put(cache: OrderedDict[Hashable, V], key: Hashable, value: V, limit: int) -> None:
    cache[key] = value
    if len(cache) > limit:
        cache.popitem(last=False)
