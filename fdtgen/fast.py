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
from operator import attrgetter
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
from .placement import Placement, place_initrd, place_kernel
from .templates import load_template
from .tree import DeviceTree, Prop, reg_cells, unit_name

_CACHE_SIZE = 256
V = TypeVar("V")
# Machine fields that change a blob's structure; the rest are stencil holes.
_VALUE_FIELDS = {"cmdline", "memory", "chosen_extra"}
_SHAPE_FIELDS = tuple(f for f in fields(Machine) if f not in _VALUE_FIELDS)

Hole = tuple[str, str]  # (node path, property name)
_LayoutEntry = tuple[Layout, dict[Hole, bytes], tuple[int, ...]]
# What machine_layout reads of a Machine (topology: it checks it): with the
# template, named here and loaded once per builder, this fixes the layout.
_layout_key = attrgetter(
    "template",
    "vcpus",
    "memory",
    "virtio",
    "serial",
    "redist_stride",
    "ram_base",
    "address_width",
    "topology",
)
_shape = attrgetter(*_SHAPE_FIELDS)


class FastBuilder:
    """Builds blobs through per-shape stencils; one instance per process is plenty.

    Besides the stencils it remembers layouts (with their RAM ``reg`` values
    encoded) and placements (with their initrd ``/chosen`` properties): a fleet
    has few shapes, few RAM sizes and few kernels. Not thread-safe (the caches
    are plain dicts); give each thread its own.
    """

    def __init__(self, cache_size: int = _CACHE_SIZE) -> None:
        self._templates: dict[str, Template] = {}
        self._layouts: OrderedDict[Hashable, _LayoutEntry] = OrderedDict()
        self._stencils: OrderedDict[Hashable, tuple[Stencil, tuple[Hole, ...]]] = OrderedDict()
        self._kernels: OrderedDict[Hashable, Placement] = OrderedDict()
        self._placements: OrderedDict[Hashable, tuple[Placement, tuple[Prop, ...]]] = OrderedDict()
        self.cache_size = cache_size

    def template(self, name: str) -> Template:
        t = self._templates.get(name)
        if t is None:
            t = self._templates[name] = load_template(name)
        return t

    def _layout(self, key: Hashable, m: Machine, t: Template) -> _LayoutEntry:
        """The layout, the encoded ``reg`` of each ``/memory`` node, and the RAM bases
        (which name those nodes, so they are part of a stencil's shape)."""
        hit = self._layouts.get(key)
        if hit is None:
            layout = machine_layout(m, t)
            hit = (layout, _memory_values(layout), tuple(r.base for r in layout.ram))
            _put(self._layouts, key, hit, self.cache_size)
        return hit

    def _placement(
        self, layout_key: Hashable, layout: Layout, t: Template, boot: Boot
    ) -> tuple[Placement, tuple[Prop, ...]]:
        """:func:`~fdtgen.placement.place` and the initrd properties, remembered: a
        fleet boots few kernels. The kernel's part is remembered on its own, so a
        fleet with a different initrd size per VM places only initrds. (Keys are
        the layout's key, not the layout: hashing plain values is cheaper.)"""
        k = boot.kernel
        assert k is not None
        kernel_key = (layout_key, k.text_offset, k.image_size, k.flags, k.size)
        key = (kernel_key, boot.initrd_size)
        hit = self._placements.get(key)
        if hit is None:
            p = self._kernels.get(kernel_key)
            if p is None:
                p = place_kernel(layout.ram, t.boot, k)
                _put(self._kernels, kernel_key, p, self.cache_size)
            if boot.initrd_size is not None:
                p = place_initrd(p, layout.ram, t.boot, k, boot.initrd_size)
            hit = (p, initrd_chosen_props(p))
            _put(self._placements, key, hit, self.cache_size)
        return hit

    def build(self, m: Machine, boot: Boot | None = None) -> Build:
        """Same result as :func:`fdtgen.pipeline.build` except ``tree`` is ``None``."""
        t = self.template(m.template)
        layout_key = _layout_key(m)
        layout, ram_values, ram_bases = self._layout(layout_key, m, t)
        boot = boot or Boot()
        placement = None
        extra: tuple[Prop, ...] = ()
        if boot.kernel is not None:
            placement, extra = self._placement(layout_key, layout, t, boot)
        entropy = entropy_chosen_props(boot)
        extra += entropy
        values = {**ram_values, (CHOSEN, "bootargs"): Prop.strings("bootargs", m.cmdline).value}
        for p in extra:
            values[(CHOSEN, p.name)] = p.value
        shape = (_shape(m), ram_bases, tuple(p.name for p in (*m.chosen_extra, *extra)))
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
        slots = patch_slots(entropy, dict(zip(holes, where, strict=True)), boot) if entropy else ()
        machine = replace(m, chosen_extra=m.chosen_extra + extra) if extra else m
        return Build(machine, layout, None, blob, placement, slots, boot)


def _memory_values(layout: Layout) -> dict[Hole, bytes]:
    """The encoded ``reg`` of every ``/memory`` node: the layout's holed values."""
    return {
        ("/" + unit_name("memory", r.base), "reg"): Prop.cells(
            "reg", *reg_cells(r.base, r.size)
        ).value
        for r in layout.ram
    }


def _blob_order(tree: DeviceTree) -> Callable[[Hole], int]:
    """Sort key putting (node path, property) pairs in the order the blob holds them."""
    order: dict[Hole, int] = {}
    for path, node in tree.root.walk():
        for p in node.props:
            order[(path, p.name)] = len(order)
    return order.__getitem__


def _put(cache: OrderedDict[Hashable, V], key: Hashable, value: V, limit: int) -> None:
    cache[key] = value
    if len(cache) > limit:
        cache.popitem(last=False)
