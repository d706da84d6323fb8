"""User configuration (TOML or JSON) -> a :class:`~fdtgen.machine.Machine` and its boot inputs.

pydantic lives here (and in :mod:`fdtgen.manifest`): commands that read no
config never import it. Kernel and initrd are paths (relative to the config
file) or declared sizes, for placing files that are not at hand.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from .errors import ConfigError
from .machine import DEFAULT_CMDLINE, Machine, Topology
from .units import U64_MAX, MiB, parse_size

if TYPE_CHECKING:
    from .pipeline import Boot


def _size(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return parse_size(v)
        except ValueError as e:
            raise ValueError(str(e)) from None
    if isinstance(v, bool):
        raise ValueError("expected a byte count, not a boolean")
    return v


Size = Annotated[int, BeforeValidator(_size), Field(gt=0, le=U64_MAX)]
SizeOrZero = Annotated[int, BeforeValidator(_size), Field(ge=0, le=U64_MAX)]


class DeclaredKernel(BaseModel):
    """A kernel known by its header facts rather than a file (booting.rst Image header)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: Size = Field(description="bytes of the decompressed Image")
    text_offset: SizeOrZero = Field(0, lt=2 * MiB, description="header text_offset")
    image_size: SizeOrZero = Field(0, description="header image_size (0: text_offset is 0x80000)")
    flags: int = Field(0, ge=0, le=U64_MAX, strict=True, description="header flags")


class DeclaredInitrd(BaseModel):
    """An initrd known by its size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: Size


def _path_or_declared(v: Any) -> str:
    return "path" if isinstance(v, str) else "declared"


KernelSpec = Annotated[
    Annotated[str, Tag("path"), Field(min_length=1)] | Annotated[DeclaredKernel, Tag("declared")],
    Discriminator(_path_or_declared),
]
InitrdSpec = Annotated[
    Annotated[str, Tag("path"), Field(min_length=1)] | Annotated[DeclaredInitrd, Tag("declared")],
    Discriminator(_path_or_declared),
]


class TopologyConfig(BaseModel):
    """``/cpus/cpu-map`` (cpu-map.yaml): sockets x clusters x cores x threads = vcpus."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sockets: int = Field(1, ge=1, le=4096, strict=True)
    clusters: int = Field(1, ge=1, le=4096, strict=True)
    cores: int = Field(1, ge=1, le=4096, strict=True)
    threads: int = Field(1, ge=1, le=4096, strict=True)


class Config(BaseModel):
    """The user-facing machine description. Keys are stable: scripts depend on them."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    template: str = Field("squib", description="built-in template name or path to a .toml")
    vcpus: int = Field(2, ge=1, le=4096, strict=True)
    memory: Size = Field(512 << 20, description="RAM in bytes, or '512MiB', '1GiB'")
    cmdline: str = DEFAULT_CMDLINE
    virtio: int = Field(32, ge=0, le=32, strict=True, description="virtio-mmio transports")
    serial: bool = Field(True, strict=True)
    psci_method: Literal["hvc", "smc"] | None = None
    redist_stride: Size | None = Field(
        None, description="bytes of GICR per vCPU (HVF reports it); default: the template's"
    )
    ram_base: Size | None = Field(
        None, description="where RAM starts (2 MiB aligned); default: the template's DRAM base"
    )
    address_width: int | None = Field(
        None, ge=32, le=64, strict=True, description="guest physical address bits (36 on Apple M1)"
    )
    topology: TopologyConfig | None = Field(
        None, description="{sockets, clusters, cores, threads} for /cpus/cpu-map"
    )
    kernel: KernelSpec | None = Field(
        None, description="Image path, or {size, text_offset, image_size, flags}"
    )
    initrd: InitrdSpec | None = Field(None, description="initrd path, or {size}")
    rng_seed: int = Field(
        0, ge=0, le=1024, strict=True, description="bytes of /chosen/rng-seed (0: none)"
    )
    kaslr_seed: bool = Field(False, strict=True, description="add /chosen/kaslr-seed")
    entropy_seed: str | None = Field(
        None,
        min_length=1,
        description="derive the seeds from this text; default: zero slots a loader fills",
    )

    def machine(self) -> Machine:
        return Machine(
            template=self.template,
            vcpus=self.vcpus,
            memory=self.memory,
            cmdline=self.cmdline,
            virtio=self.virtio,
            serial=self.serial,
            psci_method=self.psci_method,
            redist_stride=self.redist_stride,
            ram_base=self.ram_base,
            address_width=self.address_width,
            topology=None if self.topology is None else Topology(**self.topology.model_dump()),
        )

    def boot(self) -> Boot:
        """Kernel, initrd and entropy settings; reads the kernel and initrd files named."""
        from .image import declared_kernel, read_initrd, read_kernel
        from .pipeline import Boot

        kernel = None
        if isinstance(self.kernel, str):
            kernel = read_kernel(self.kernel)
        elif self.kernel is not None:
            k = self.kernel
            kernel = declared_kernel(k.size, k.text_offset, k.image_size, k.flags)
        initrd = None
        initrd_size = None
        if isinstance(self.initrd, str):
            initrd = read_initrd(self.initrd)
            initrd_size = initrd.size
        elif self.initrd is not None:
            initrd_size = self.initrd.size
        return Boot(
            kernel=kernel,
            initrd_size=initrd_size,
            initrd=initrd,
            rng_seed=self.rng_seed,
            kaslr_seed=self.kaslr_seed,
            entropy_seed=None if self.entropy_seed is None else self.entropy_seed.encode(),
        )


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "config"
    value = err.get("input")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 0xFFFF:
        shown = f"{value:#x}"
    else:
        shown = repr(value)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key (value {shown})"
    return f"{loc}: {shown}: {msg[0].lower() + msg[1:]}"


def validate(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a mapping; a failure is one :class:`ConfigError` line."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_describe(errors[0])}{more}") from None


def read_file(path: str) -> dict[str, Any]:
    """A config file as a mapping: JSON if it ends in ``.json``, TOML otherwise."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"{path}: not valid {kind}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/object")
    return data


def load(path: str | None, overrides: dict[str, Any] | None = None) -> Config:
    """The embedded default, or ``path``, with CLI ``overrides`` applied on top."""
    data: dict[str, Any] = read_file(path) if path else {}
    template = data.get("template")
    if path and isinstance(template, str) and ("/" in template or template.endswith(".toml")):
        # A template path in a config file is relative to that file.
        data["template"] = str(Path(path).parent / template)
    for key in ("kernel", "initrd"):  # so are kernel and initrd paths
        if path and isinstance(data.get(key), str) and data[key]:
            data[key] = str(Path(path).parent / data[key])
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate(data, path or "config")


def override(cfg: Config, overrides: dict[str, Any], source: str = "command line") -> Config:
    """``cfg`` with the non-``None`` ``overrides`` applied and validated again."""
    updates = {k: v for k, v in overrides.items() if v is not None}
    if not updates:
        return cfg
    return validate({**cfg.model_dump(exclude_unset=True), **updates}, source)
