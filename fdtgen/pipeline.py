"""Machine in, blob out: template -> layout -> placement -> tree -> DTB.

Without a kernel, :func:`build` makes the DTB alone. With one (a
:class:`Boot`), it also places kernel, initrd and DTB per the template's
policy (:mod:`fdtgen.boot.placement`) and writes the initrd range into
``/chosen``. Entropy properties are either derived from an explicit seed
(deterministic output) or reserved as zero bytes whose blob offsets are
reported as patch slots, for a loader to fill per boot.

This is the only way fdtgen builds a machine, for one VM or a fleet of them.
It is fast because each step is lean, not because anything is remembered:
templates are parsed once per process (a file once per version), and every
build resolves, places, builds and encodes its machine from scratch
(docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fdtgen.boot.placement import Placement, place
from fdtgen.boot.request import Boot
from fdtgen.devicetree.chosen import CHOSEN, entropy_names
from fdtgen.devicetree.machine import Machine, machine_layout, machine_tree, with_defaults
from fdtgen.errors import BlobTooLargeError, FdtgenError, PlacementError
from fdtgen.fdt.encode import encode_located
from fdtgen.fdt.tree import DeviceTree
from fdtgen.layout import Layout
from fdtgen.spec import FDT_MAX_SIZE
from fdtgen.template.load import load_template

__all__ = ["Boot", "Build", "PatchSlot", "build"]


@dataclass(frozen=True, slots=True)
class PatchSlot:
    """Bytes of a property value in the blob that a loader may overwrite per boot.

    ``derived``: the bytes came from the explicit entropy seed; otherwise they
    are zero and meant to be filled with fresh entropy.
    """

    property: str
    offset: int
    size: int
    derived: bool


@dataclass(frozen=True, slots=True)
class Build:
    machine: Machine
    layout: Layout
    tree: DeviceTree
    blob: bytes
    placement: Placement | None = None
    slots: tuple[PatchSlot, ...] = ()
    boot: Boot | None = None


_NO_BOOT = Boot()  # the DTB alone: no kernel, no entropy


def build(m: Machine, boot: Boot | None = None) -> Build:
    """Resolve, place, build and encode ``m``. Raises :class:`fdtgen.errors.FdtgenError`."""
    template = load_template(m.template)
    filled = with_defaults(m, template)
    layout = machine_layout(filled, template)
    boot = boot or _NO_BOOT
    placement = None
    if boot.kernel is not None:
        try:
            placement = place(layout.ram, template.boot, boot.kernel, boot.initrd_size)
        except PlacementError as e:  # the kernel (and initrd) the machine's settings name
            e.setting = "kernel" if e.setting is None else e.setting
            raise
    tree = machine_tree(layout, filled, placement, boot)
    entropy = entropy_names(boot)
    try:
        blob, offsets = encode_located(
            tree, [(CHOSEN, name) for name, _ in entropy], max_size=dtb_limit(placement)
        )
    except BlobTooLargeError as e:
        err = dtb_too_large(e, placement)
        err.setting = "kernel" if placement is not None else ""  # "": the settings as a whole
        raise err from None
    slots = patch_slots(entropy, offsets, boot)
    return Build(m, layout, tree, blob, placement, slots, boot)


def dtb_limit(placement: Placement | None) -> int:
    """The most bytes the blob may take: its placement slot, or booting.rst's 2 MiB."""
    return FDT_MAX_SIZE if placement is None else placement.dtb.size


def dtb_too_large(e: BlobTooLargeError, placement: Placement | None) -> FdtgenError:
    """Over the slot the placement reserved is a placement error; otherwise ``e`` itself."""
    if placement is None:
        return BlobTooLargeError(
            e.size, e.limit, "booting.rst: the dtb must not exceed 2 megabytes"
        )
    return PlacementError(
        f"placement: dtb is {e.size:#x} bytes, over its {e.limit:#x}-byte slot at "
        f"{placement.dtb.base:#x} (template boot.fdt_max_size)"
    )


def patch_slots(
    entropy: list[tuple[str, int]], offsets: Mapping[tuple[str, str], int], boot: Boot
) -> tuple[PatchSlot, ...]:
    """The entropy properties' values as patch slots, from their blob offsets."""
    return tuple(
        PatchSlot(f"{CHOSEN}/{name}", offsets[(CHOSEN, name)], size, boot.entropy_seed is not None)
        for name, size in entropy
    )
