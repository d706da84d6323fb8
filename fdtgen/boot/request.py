"""What a build places besides the DTB, and the entropy it reserves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fdtgen.errors import ConfigError
from fdtgen.spec import RNG_SEED_MAX

if TYPE_CHECKING:
    from fdtgen.boot.image import InputFile, KernelImage


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
            raise ConfigError(
                f"rng_seed: {self.rng_seed} bytes is outside 0..{RNG_SEED_MAX}", setting="rng_seed"
            )
        if self.initrd is not None and self.initrd_size is None:
            raise ConfigError(
                f"initrd: {self.initrd.path!r} was read but no initrd size was given",
                setting="initrd",
            )
        if self.initrd_size is not None and self.kernel is None:
            raise ConfigError(
                f"initrd: {self.initrd_size:#x} bytes given without a kernel; placement needs "
                "the kernel (--kernel, or kernel = ... in the config)",
                setting="initrd",
            )
