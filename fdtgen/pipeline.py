"""Machine in, blob out: template -> layout -> placement -> tree -> DTB.

Without a kernel, :func:`build` makes the DTB alone. With one (a
:class:`Boot`), it also places kernel, initrd and DTB per the template's
policy (:mod:`fdtgen.placement`) and writes the initrd range into
``/chosen``. Entropy properties are either derived from an explicit seed
(deterministic output) or reserved as zero bytes whose blob offsets are
reported as patch slots, for a loader to fill per boot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from fdtgen.devicetree.machine import Machine, machine_layout, machine_tree
from fdtgen.errors import BlobTooLargeError, ConfigError, FdtgenError, PlacementError
from fdtgen.fdt.encode import encode_located
from fdtgen.fdt.tree import DeviceTree, Prop
from fdtgen.layout import Layout
from fdtgen.spec import FDT_MAX_SIZE, KASLR_SEED_SIZE, RNG_SEED_MAX
from fdtgen.template.load import load_template

if TYPE_CHECKING:  # loaded only for builds that place a kernel
    from fdtgen.boot.image import InputFile, KernelImage
    from fdtgen.boot.placement import Placement

CHOSEN = "/chosen"


@dataclass(frozen=True, slots=True)
class Boot:
    """What a build places besides the DTB, and the entropy it reserves.

    ``initrd_size`` is the initrd's byte count (``initrd`` the file it came
    from, if any). ``rng_seed`` is the byte count of ``/chosen/rng-seed`` (0:
    none); ``kaslr_seed`` adds the 64-bit ``/chosen/kaslr-seed``. With
    ``entropy_seed`` their bytes are derived from it; without, they are zero.
    """

    kernel: KernelImage | None = None
    initrd_size: int | None = None
    initrd: InputFile | None = None
    rng_seed: int = 0
    kaslr_seed: bool = False
    entropy_seed: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rng_seed <= RNG_SEED_MAX:
            raise ConfigError(f"rng_seed: {self.rng_seed} bytes is outside 0..{RNG_SEED_MAX}")
        if self.initrd is not None and self.initrd_size is None:
            raise ConfigError(f"initrd: {self.initrd.path!r} was read but no initrd size was given")
        if self.initrd_size is not None and self.kernel is None:
            raise ConfigError(
                f"initrd: {self.initrd_size:#x} bytes given without a kernel; placement needs "
                "the kernel (--kernel, or kernel = ... in the config)"
            )


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


def build(m: Machine, boot: Boot | None = None) -> Build:
    """Resolve, place, build and encode ``m``. Raises :class:`fdtgen.errors.FdtgenError`."""
    template = load_template(m.template)
    layout = machine_layout(m, template)
    boot = boot or Boot()
    placement = None
    if boot.kernel is not None:
        from fdtgen.boot.placement import place

        placement = place(layout.ram, template.boot, boot.kernel, boot.initrd_size)
    initrd_props = initrd_chosen_props(placement)
    entropy = entropy_chosen_props(boot)
    extra = initrd_props + entropy
    machine = replace(m, chosen_extra=m.chosen_extra + extra) if extra else m
    tree = machine_tree(layout, machine)
    max_size = dtb_limit(placement)
    try:
        blob, offsets = encode_located(tree, [(CHOSEN, p.name) for p in entropy], max_size=max_size)
    except BlobTooLargeError as e:
        raise dtb_too_large(e, placement) from None
    slots = patch_slots(entropy, offsets, boot)
    return Build(machine, layout, tree, blob, placement, slots, boot)


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
    entropy: tuple[Prop, ...], offsets: Mapping[tuple[str, str], int], boot: Boot
) -> tuple[PatchSlot, ...]:
    """The entropy properties' values as patch slots, from their blob offsets."""
    return tuple(
        PatchSlot(
            f"{CHOSEN}/{p.name}",
            offsets[(CHOSEN, p.name)],
            len(p.value),
            boot.entropy_seed is not None,
        )
        for p in entropy
    )


def initrd_chosen_props(placement: Placement | None) -> tuple[Prop, ...]:
    """``linux,initrd-start`` / ``-end`` as 64-bit values.

    chosen.yaml: "linux,initrd-start is inclusive, but linux,initrd-end is
    exclusive". 64-bit cells keep initrds above 4 GiB intact.
    """
    if placement is None or placement.initrd is None:
        return ()
    return (
        Prop.u64("linux,initrd-start", placement.initrd.base),
        Prop.u64("linux,initrd-end", placement.initrd.end),
    )


def entropy_chosen_props(boot: Boot) -> tuple[Prop, ...]:
    """``rng-seed`` (bytes) and ``kaslr-seed`` (uint64), per dt-schema chosen.yaml."""
    props = []
    if boot.rng_seed:
        props.append(
            Prop.bytes_("rng-seed", entropy_bytes(boot.entropy_seed, "rng-seed", boot.rng_seed))
        )
    if boot.kaslr_seed:
        value = int.from_bytes(
            entropy_bytes(boot.entropy_seed, "kaslr-seed", KASLR_SEED_SIZE), "big"
        )
        props.append(Prop.u64("kaslr-seed", value))
    return tuple(props)


def entropy_bytes(seed: bytes | None, label: str, size: int) -> bytes:
    """``size`` bytes for property ``label``: SHAKE-256 of the seed under a per-property
    domain label, or zeros when there is no seed (a slot for the loader)."""
    if seed is None:
        return bytes(size)
    import hashlib  # OpenSSL's import is not free; only seeded builds need it

    return hashlib.shake_256(b"fdtgen " + label.encode() + b"\0" + seed).digest(size)
