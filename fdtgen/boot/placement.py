"""Kernel, initrd and DTB addresses per arm64 booting.rst, from a template's policy.

Pure: the RAM ranges, the template's :class:`~fdtgen.layout.BootSpec`, the
kernel's header facts and the initrd size in; a :class:`Placement` out.

The rules, Linux ``Documentation/arch/arm64/booting.rst``:

* "Setup the device tree": "The device tree blob (dtb) must be placed on an
  8-byte boundary and must not exceed 2 megabytes in size. Since the dtb will
  be mapped cacheable using blocks of up to 2 megabytes in size, it must not
  be placed within any 2M region which must be mapped with any specific
  attributes."
* "Call the kernel image": "The Image must be placed text_offset bytes from a
  2MB aligned base address anywhere in usable system RAM and called there
  ... At least image_size bytes from the start of the image must be free for
  use by the kernel." An initrd "must reside entirely within a 1 GB aligned
  physical memory window of up to 32 GB in size that fully covers the kernel
  Image as well."
* Primary CPU registers: "x0 = physical address of device tree blob (dtb) in
  system RAM", x1 = x2 = x3 = 0.

The policy (template data, ``[boot]``): ``dtb``, ``initrd`` and ``kernel``
name where the VMM itself puts each file, and fdtgen puts it there when that
keeps booting.rst; where it does not, fdtgen takes the nearest place that
does and says so in :attr:`Placement.notes`.

* ``dtb``: ``top-of-ram`` (the default, below; crosvm), ``end-of-ram`` (libkrun:
  the VMM puts ``fdt_max_size`` bytes at the very end of RAM; fdtgen takes the
  last whole 2 MiB block, with a note when the two differ), ``end-of-first-ram``
  (Firecracker: the same in the first RAM range, below a hole), ``ram-start`` (Cloud
  Hypervisor: the first 2 MiB block of RAM), ``below:<offset>`` (kvmtool:
  the last whole 2 MiB block below RAM base + min(RAM size, offset)),
  ``after-kernel`` (openvmm: right after the kernel; fdtgen rounds up to the
  next 2 MiB block, which the DTB must not share with the Image).
* ``initrd``: ``preferred`` (the default, below), ``below-dtb`` (Firecracker,
  libkrun, kvmtool: ending at the DTB's block), ``top-of-ram`` (Cloud
  Hypervisor), ``after-kernel-align:<size>`` (crosvm: the kernel's end
  rounded up to ``size``), ``ram+<offset>`` (openvmm, with ``kernel =
  "after-initrd"``: the kernel follows the initrd at the next 2 MiB
  boundary, and the DTB follows the kernel). Every initrd is page aligned:
  the kernel reserves it by whole pages (init/initramfs.c
  ``reserve_initrd_mem``).

The default policy (squib's), in this order:

1. **DTB**: a ``fdt_max_size`` slot at the start of the last whole 2 MiB
   block of the highest RAM range. Nothing else is placed in that block.
2. **Kernel**: the lowest 2 MiB-aligned base at or above DRAM base +
   ``kernel_offset`` whose ``[base + text_offset, + max(file size,
   image_size))`` lies in one RAM range, below the DTB block. (squib computes
   ``max(DRAM + text_offset, DRAM + 2 MiB)``, which for a text_offset of
   0x80000 is not text_offset above a 2 MiB-aligned base.)
3. **initrd**: preferably at ``max(DRAM + initrd_offset, align_up(kernel_end
   + initrd_gap, 2 MiB))``; where it does not fit there, at the lowest legal
   place: after the kernel's reserved end (and ``initrd_gap`` beyond it when
   ``image_size`` is zero, since the kernel's BSS size is then unknown), 2 MiB
   aligned if that fits, else page aligned. Always wholly inside one RAM
   range, inside the 1 GiB-aligned 32 GiB window that starts at or below the
   kernel, and outside the DTB's block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fdtgen.boot.image import KernelImage
from fdtgen.errors import PlacementError
from fdtgen.ranges import Range, Region, by_address, by_range
from fdtgen.spec import (
    DTB_ALIGN,
    DTB_BLOCK,
    INITRD_WINDOW_ALIGN,
    INITRD_WINDOW_SIZE,
    KERNEL_BASE_ALIGN,
    PA_48BIT_END,
    PAGE_SIZE,
)
from fdtgen.template.model import BootSpec
from fdtgen.units import MiB, align_down, align_up, parse_size

INITRD_ALIGN = 2 * MiB  # preferred initrd alignment (squib's 2 MiB grain)


@dataclass(frozen=True, slots=True)
class Registers:
    """The primary CPU's registers at kernel entry (booting.rst "Call the kernel image")."""

    x0: int
    x1: int
    x2: int
    x3: int
    pc: int


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a loader puts each file.

    ``kernel`` is ``[load address, + max(file size, image_size))``: the load
    address is the entry point, ``text_offset`` above a 2 MiB-aligned base.
    ``dtb`` is the slot reserved for the blob (``fdt_max_size`` bytes, at the
    start of its own 2 MiB block). ``initrd`` is ``None`` without an initrd.
    ``notes`` says where fdtgen left the template VMM's own choice and why.
    """

    kernel: Range
    text_offset: int
    dtb: Range
    initrd: Range | None = None
    notes: tuple[str, ...] = ()

    @property
    def entry(self) -> int:
        return self.kernel.base

    @property
    def kernel_base(self) -> int:
        """The 2 MiB-aligned base the Image sits ``text_offset`` bytes above."""
        return self.kernel.base - self.text_offset

    @property
    def dtb_block(self) -> Range:
        """The 2 MiB block(s) holding the DTB slot, shared with nothing else."""
        return _dtb_block(self.dtb)

    @property
    def window(self) -> Range:
        """The 1 GiB-aligned 32 GiB window that covers the kernel and the initrd."""
        return initrd_window(self.kernel)

    @property
    def registers(self) -> Registers:
        return Registers(x0=self.dtb.base, x1=0, x2=0, x3=0, pc=self.entry)

    def regions(self) -> tuple[Region, ...]:
        """The placed files as tagged regions, sorted by address."""
        out = [
            Region("kernel", self.kernel, align=KERNEL_BASE_ALIGN),
            Region("dtb", self.dtb, align=DTB_ALIGN),
        ]
        if self.initrd is not None:
            out.append(Region("initrd", self.initrd))
        return tuple(sorted(out, key=by_address))


def initrd_window(kernel: Range) -> Range:
    """The 1 GiB-aligned window of 32 GiB starting at or just below ``kernel``."""
    return Range(align_down(kernel.base, INITRD_WINDOW_ALIGN), INITRD_WINDOW_SIZE)


def place(
    ram: Sequence[Range], boot: BootSpec, kernel: KernelImage, initrd_size: int | None = None
) -> Placement:
    """Place the DTB slot, the kernel and the initrd; see the module docstring for the policy.

    Raises :class:`PlacementError` saying what does not fit, where, and by how
    many bytes.
    """
    if boot.kernel == "after-initrd":
        return place_initrd_first(ram, boot, kernel, initrd_size)
    placed = place_kernel(ram, boot, kernel)
    if initrd_size is None:
        return placed
    return place_initrd(placed, ram, boot, kernel, initrd_size)


def place_kernel(ram: Sequence[Range], boot: BootSpec, kernel: KernelImage) -> Placement:
    """The DTB slot and the kernel: :func:`place` without an initrd."""
    if not ram:
        raise PlacementError("placement: the machine has no RAM")
    ranges = sorted(ram, key=by_range)
    if boot.dtb == "after-kernel":
        kernel_range = kernel_slot(ranges, boot, kernel, None, ranges[0].base + boot.kernel_offset)
        dtb, notes = dtb_after(ranges, boot, kernel_range)
        return Placement(kernel_range, kernel.text_offset, dtb, notes=notes)
    dtb = policy_dtb_slot(ranges, boot)
    kernel_range = kernel_slot(ranges, boot, kernel, _dtb_block(dtb))
    notes = policy_dtb_notes(ranges, boot, dtb)
    return Placement(kernel=kernel_range, text_offset=kernel.text_offset, dtb=dtb, notes=notes)


def place_initrd(
    placed: Placement, ram: Sequence[Range], boot: BootSpec, kernel: KernelImage, size: int
) -> Placement:
    """``placed`` (from :func:`place_kernel` with the same arguments) with the initrd added."""
    block = placed.dtb_block
    ranges = sorted(ram, key=by_range)
    notes = placed.notes
    if boot.initrd == "preferred":
        initrd = initrd_slot(ranges, boot, kernel, placed.kernel, block, size)
    else:
        initrd, note = policy_initrd_slot(ranges, boot, placed.kernel, block, size)
        notes += note
    return Placement(placed.kernel, placed.text_offset, placed.dtb, initrd, notes)


def policy_dtb_slot(ranges: Sequence[Range], boot: BootSpec) -> Range:
    """The DTB slot of a ``top-of-ram``, ``end-of-ram``, ``end-of-first-ram``,
    ``ram-start`` or ``below:<offset>`` policy."""
    first = ranges[0]
    if boot.dtb == "ram-start":
        base = align_up(first.base, DTB_BLOCK)
        if base + DTB_BLOCK > first.end:
            raise PlacementError(
                f"placement: dtb ({boot.fdt_max_size:#x}-byte slot in its own 2 MiB block) does "
                f"not fit at the start of RAM {first}"
            )
        return Range(base, boot.fdt_max_size)
    if boot.dtb.startswith("below:"):
        limit = parse_size(boot.dtb[len("below:") :])
        return dtb_slot(Range(first.base, min(first.size, limit)), boot)
    return dtb_slot(first if boot.dtb == "end-of-first-ram" else ranges[-1], boot)


def policy_dtb_notes(ranges: Sequence[Range], boot: BootSpec, dtb: Range) -> tuple[str, ...]:
    """Why the DTB of an ``end-of-ram``, ``end-of-first-ram`` or ``below:`` policy is
    not where the VMM puts it: at the very end of RAM, or in a 2 MiB block that
    RAM does not fill, when RAM ends off a 2 MiB boundary."""
    if boot.dtb.startswith("below:"):
        return _below_note(ranges[0], boot, dtb)
    if boot.dtb not in ("end-of-ram", "end-of-first-ram"):
        return ()
    end = (ranges[0] if boot.dtb == "end-of-first-ram" else ranges[-1]).end
    vmm = end - boot.fdt_max_size
    if vmm == dtb.base:
        return ()
    return (
        f"dtb: the VMM puts its {boot.fdt_max_size:#x} bytes at the end of RAM, {vmm:#x}, "
        f"across a 2 MiB boundary; fdtgen puts it at {dtb.base:#x}, the start of the last "
        "whole 2 MiB block, which it shares with nothing (booting.rst)",
    )


def _below_note(first: Range, boot: BootSpec, dtb: Range) -> tuple[str, ...]:
    """kvmtool's ``below:`` rule (arm/kvm.c): the last byte under RAM base + min(RAM,
    offset) is ``limit``, and the DTB goes to ``ALIGN(limit - size - 2 MiB, 2 MiB)``:
    the 2 MiB boundary at or above, which can start a block RAM ends inside."""
    offset = parse_size(boot.dtb[len("below:") :])
    limit = first.base + min(first.size, offset) - 1
    vmm = align_up(limit - boot.fdt_max_size - DTB_BLOCK, DTB_BLOCK)
    if vmm == dtb.base or vmm < first.base:
        return ()
    return (
        f"dtb: the VMM puts its {boot.fdt_max_size:#x} bytes at {vmm:#x}, the start of a "
        f"2 MiB block RAM ends inside ({limit + 1:#x}); fdtgen puts it at {dtb.base:#x}, "
        "the start of the last whole 2 MiB block, which it shares with nothing (booting.rst)",
    )


def dtb_after(
    ranges: Sequence[Range], boot: BootSpec, kernel_range: Range
) -> tuple[Range, tuple[str, ...]]:
    """The DTB right after the kernel, at the next 2 MiB block (booting.rst: the DTB's
    2 MiB block is mapped with no attributes of its own, so it holds nothing else)."""
    vmm = align_up(kernel_range.end, PAGE_SIZE)
    base = align_up(kernel_range.end, DTB_BLOCK)
    r = next((r for r in ranges if r.base <= kernel_range.base < r.end), ranges[0])
    if base + DTB_BLOCK > r.end:
        raise PlacementError(
            f"placement: dtb ({boot.fdt_max_size:#x}-byte slot in its own 2 MiB block) does not "
            f"fit after the kernel ending at {kernel_range.end:#x} in RAM {r}"
        )
    notes: tuple[str, ...] = ()
    if base != vmm:
        notes = (
            f"dtb: the VMM puts it right after the kernel at {vmm:#x}; fdtgen puts it at "
            f"{base:#x}, the next 2 MiB block, which it shares with nothing (booting.rst)",
        )
    return Range(base, boot.fdt_max_size), notes


def policy_initrd_slot(
    ranges: Sequence[Range], boot: BootSpec, kernel_range: Range, block: Range, size: int
) -> tuple[Range, tuple[str, ...]]:
    """The initrd where the template's VMM puts it, or the nearest legal place."""
    if size <= 0:
        raise PlacementError(f"placement: initrd size {size:#x} must be positive")
    policy = boot.initrd
    if policy == "below-dtb":
        want = align_down(block.base - size, PAGE_SIZE) if block.base >= size else 0
    elif policy == "top-of-ram":
        want = align_down(ranges[-1].end - size, PAGE_SIZE)
    elif policy.startswith("after-kernel-align:"):
        want = align_up(kernel_range.end, parse_size(policy.split(":", 1)[1]))
    else:  # ram+<offset>
        want = ranges[0].base + parse_size(policy[len("ram+") :])
    window = initrd_window(kernel_range)
    spans = free_spans(ranges, kernel_range.end, block, window)
    if any(s.base <= want and want + size <= s.end for s in spans):
        return Range(want, size), ()
    best: int | None = None
    for s in spans:
        lo, hi = align_up(s.base, PAGE_SIZE), align_down(s.end - size, PAGE_SIZE)
        if lo > hi:
            continue
        at = min(max(want, lo), hi)
        if best is None or abs(at - want) < abs(best - want):
            best = at
    if best is None:
        largest = max((s.size for s in spans), default=0)
        raise PlacementError(
            f"placement: initrd ({size:#x} bytes) does not fit: it must lie after the kernel, "
            f"inside RAM and the 1 GiB-aligned 32 GiB window {window} that covers the kernel, "
            f"outside the DTB block {block}; the largest free span is {largest:#x} bytes: "
            f"{size - largest:#x} bytes short"
        )
    note = (
        f"initrd: the VMM's policy {policy!r} puts it at [{want:#x}, {want + size:#x}), "
        f"which booting.rst refuses (it must lie in RAM, after the kernel and outside the "
        f"DTB block, inside the 1 GiB-aligned 32 GiB window {window} that covers the "
        f"kernel); fdtgen puts it at the nearest place that complies, {best:#x}"
    )
    return Range(best, size), (note,)


def place_initrd_first(
    ram: Sequence[Range], boot: BootSpec, kernel: KernelImage, initrd_size: int | None
) -> Placement:
    """openvmm's order: the initrd at RAM base + offset, the kernel at the next 2 MiB
    boundary after it, the DTB after the kernel."""
    if not ram:
        raise PlacementError("placement: the machine has no RAM")
    ranges = sorted(ram, key=by_range)
    offset = parse_size(boot.initrd[len("ram+") :]) if boot.initrd.startswith("ram+") else 0
    start = ranges[0].base + offset
    end = start + (initrd_size or 0)
    if initrd_size is not None and initrd_size <= 0:
        raise PlacementError(f"placement: initrd size {initrd_size:#x} must be positive")
    kernel_range = kernel_slot(ranges, boot, kernel, None, end)
    initrd = None if initrd_size is None else Range(start, initrd_size)
    if initrd is not None:
        window = initrd_window(kernel_range)
        if not any(r.base <= start and end <= r.end for r in ranges) or not (
            window.base <= start and end <= window.end
        ):
            raise PlacementError(
                f"placement: initrd [{start:#x}, {end:#x}) must lie in RAM and in the 1 GiB-"
                f"aligned 32 GiB window {window} that covers the kernel (booting.rst)"
            )
    dtb, notes = dtb_after(ranges, boot, kernel_range)
    return Placement(kernel_range, kernel.text_offset, dtb, initrd, notes)


def _dtb_block(dtb: Range) -> Range:
    """The 2 MiB block(s) holding the DTB slot ``dtb``, which nothing else may share."""
    base = align_down(dtb.base, DTB_BLOCK)
    return Range(base, align_up(dtb.end, DTB_BLOCK) - base)


def dtb_slot(last: Range, boot: BootSpec) -> Range:
    """``fdt_max_size`` bytes at the start of the last whole 2 MiB block of ``last``.

    The whole block, not just the slot, lies in RAM: booting.rst maps the DTB
    "using blocks of up to 2 megabytes".
    """
    base = align_down(last.end, DTB_BLOCK) - DTB_BLOCK
    if base < last.base:
        need = align_up(last.base, DTB_BLOCK) + DTB_BLOCK
        raise PlacementError(
            f"placement: dtb ({boot.fdt_max_size:#x}-byte slot in its own 2 MiB block) does not "
            f"fit in RAM {last}: {need - last.end:#x} bytes short"
        )
    return Range(base, boot.fdt_max_size)


def kernel_slot(
    ranges: Sequence[Range],
    boot: BootSpec,
    kernel: KernelImage,
    block: Range | None,
    floor: int | None = None,
) -> Range:
    """The lowest legal ``[load address, + reserve)`` for the kernel, at or above
    ``floor`` (default: RAM base + ``kernel_offset``) and clear of the DTB ``block``."""
    floor = ranges[0].base + boot.kernel_offset if floor is None else floor
    misses: list[tuple[Range, int, int, int]] = []
    for r in ranges:
        base = align_up(max(r.base, floor), KERNEL_BASE_ALIGN)
        if block is not None and block.base <= base < block.end:
            base = align_up(block.end, KERNEL_BASE_ALIGN)  # the DTB block (ram-start) comes first
        load = base + kernel.text_offset
        end = load + kernel.reserve
        above = block is not None and r.base <= block.base < r.end and block.base >= base
        limit = min(r.end, block.base) if above and block is not None else r.end
        clear = block is None or end <= block.base or base >= block.end
        if end <= r.end and clear:
            if kernel.placement_anywhere and end > PA_48BIT_END:
                raise PlacementError(
                    f"placement: kernel [{load:#x}, {end:#x}) ends past the 48-bit physical range "
                    f"{PA_48BIT_END:#x} (booting.rst flags bit 3)"
                )
            return Range(load, kernel.reserve)
        misses.append((r, load, end, limit))
    r, load, end, limit = misses[0]
    where = "the DTB block at" if block is not None and limit == block.base else "RAM ending at"
    raise PlacementError(
        f"placement: kernel does not fit: it needs [{load:#x}, {end:#x}) (text_offset "
        f"{kernel.text_offset:#x} above a 2 MiB-aligned base at or above {floor:#x}, "
        f"{kernel.reserve:#x} bytes reserved) in RAM {r}, below {where} {limit:#x}: "
        f"{max(end - limit, 0):#x} bytes short"
    )


def initrd_slot(
    ranges: Sequence[Range],
    boot: BootSpec,
    kernel: KernelImage,
    kernel_range: Range,
    block: Range,
    size: int,
) -> Range:
    """The initrd: at the policy's preferred address, else at the lowest legal one."""
    if size <= 0:
        raise PlacementError(f"placement: initrd size {size:#x} must be positive")
    window = initrd_window(kernel_range)
    if kernel_range.end > window.end:
        raise PlacementError(
            f"placement: kernel [{kernel_range.base:#x}, {kernel_range.end:#x}) does not fit the "
            f"1 GiB-aligned 32 GiB window {window} an initrd must share with it (booting.rst): "
            f"{kernel_range.end - window.end:#x} bytes short"
        )
    spans = free_spans(ranges, kernel_range.end, block, window)
    preferred = align_up(
        max(
            ranges[0].base + boot.initrd_offset,
            align_up(kernel_range.end + boot.initrd_gap, INITRD_ALIGN),
        ),
        PAGE_SIZE,
    )
    if any(s.base <= preferred and preferred + size <= s.end for s in spans):
        return Range(preferred, size)
    floor = kernel_range.end + (boot.initrd_gap if kernel.image_size == 0 else 0)
    largest = 0
    for s in spans:
        for align in (INITRD_ALIGN, PAGE_SIZE):
            start = align_up(max(s.base, floor), align)
            if start + size <= s.end:
                return Range(start, size)
        largest = max(largest, s.end - align_up(max(s.base, floor), PAGE_SIZE))
    raise PlacementError(
        f"placement: initrd ({size:#x} bytes) does not fit: it must start at or above "
        f"{floor:#x} (after "
        f"the kernel), inside RAM and the 1 GiB-aligned 32 GiB window {window} that covers the "
        f"kernel, outside the DTB block {block}; the largest free span is {largest:#x} bytes: "
        f"{size - largest:#x} bytes short"
    )


def free_spans(ranges: Sequence[Range], floor: int, block: Range, window: Range) -> list[Range]:
    """RAM at or above ``floor`` and inside ``window``, minus the DTB ``block``, by address."""
    spans: list[Range] = []
    for r in ranges:
        lo, hi = max(r.base, floor, window.base), min(r.end, window.end)
        for a, b in ((lo, min(hi, block.base)), (max(lo, block.end), hi)):
            if a < b:
                spans.append(Range(a, b - a))
    return sorted(spans, key=by_range)
