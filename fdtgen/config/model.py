"""The user-facing config as pydantic models: what a TOML/JSON config may hold.

These models are the one source of truth: validation, the JSON Schema
(``fdtgen schema config``, ``schemas/config.schema.json``) and, through
:mod:`fdtgen.config.messages`, the wording of errors. A validated
:class:`Config` gives the pipeline its inputs: :meth:`Config.machine` and
:meth:`Config.boot`. Kernel and initrd are paths (relative to the config file)
or declared sizes, for placing files that are not at hand.

No ``from __future__ import annotations`` here: with it, pydantic evaluates
every field's annotation from a string when it builds the models, which adds
milliseconds to each run's start.
"""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    WithJsonSchema,
)

from fdtgen.boot.image import InputFile, KernelImage, declared_kernel
from fdtgen.boot.image import read_initrd as default_read_initrd
from fdtgen.boot.image import read_kernel as default_read_kernel
from fdtgen.devicetree.machine import DEFAULT_CMDLINE, Machine, Topology
from fdtgen.errors import FdtgenError, located
from fdtgen.pipeline import Boot, Build, build
from fdtgen.spec import COMMAND_LINE_SIZE, RNG_SEED_MAX, TEXT_OFFSET_LIMIT
from fdtgen.units import U64_MAX, parse_size


def size_before(v: Any) -> Any:
    """Accept ``"512MiB"`` style strings for byte counts (a before-validator)."""
    if isinstance(v, str):
        return parse_size(v)  # its ValueError names the text and what a size looks like
    if isinstance(v, bool):
        raise ValueError("expected a byte count, not a boolean")
    return v


def cmdline_after(v: str) -> str:
    """``cmdline`` becomes /chosen/bootargs: one NUL-terminated UTF-8 string that fits arm64's
    COMMAND_LINE_SIZE."""
    if "\0" in v:
        raise ValueError(
            f"contains a NUL byte at offset {v.index(chr(0))} (/chosen/bootargs is one "
            "NUL-terminated string)"
        )
    try:
        n = len(v.encode()) + 1
    except UnicodeEncodeError:
        raise ValueError("is not valid UTF-8 text (it holds a lone surrogate)") from None
    if n > COMMAND_LINE_SIZE:
        raise ValueError(
            f"is {n} bytes with its NUL, over arm64's COMMAND_LINE_SIZE of "
            f"{COMMAND_LINE_SIZE} bytes (Linux would silently truncate it)"
        )
    return v


def path_after(v: str) -> str:
    """A file path the OS can open."""
    if "\0" in v:
        raise ValueError(f"contains a NUL byte at offset {v.index(chr(0))} (not a valid file path)")
    return v


def path_or_declared(v: Any) -> str:
    """Discriminator of ``kernel``/``initrd``: a path string, or a declared table."""
    return "path" if isinstance(v, str) else "declared"


Cmdline = Annotated[str, AfterValidator(cmdline_after)]
FilePath = Annotated[str, Field(min_length=1), AfterValidator(path_after)]
# What units.parse_size accepts, as an ECMA-262 pattern for editors (a test keeps
# the two in step): a decimal or 0x number, underscores allowed, and a binary unit
# (K or KiB, not the decimal kB), at most 64 characters.
SIZE_PATTERN = (
    r"^(?=[\s\S]{0,64}$)\s*(0[xX]_*[0-9a-fA-F][0-9a-fA-F_]*|[0-9][0-9_]*)"
    r"\s*([bB]|[kKmMgGtT]([iI][bB])?)?\s*$"
)


def _size_json(minimum: int) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": minimum, "maximum": U64_MAX},
                {"type": "string", "pattern": SIZE_PATTERN},
            ],
            "examples": ["512MiB", "1GiB", "0x2000_0000", 4096],
        }
    )


Size = Annotated[int, BeforeValidator(size_before), Field(gt=0, le=U64_MAX), _size_json(1)]
SizeOrZero = Annotated[int, BeforeValidator(size_before), Field(ge=0, le=U64_MAX), _size_json(0)]


class DeclaredKernel(BaseModel):
    """A kernel known by its header facts rather than a file (booting.rst Image header)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: Size = Field(description="bytes of the decompressed Image")
    text_offset: SizeOrZero = Field(0, lt=TEXT_OFFSET_LIMIT, description="header text_offset")
    image_size: SizeOrZero = Field(0, description="header image_size (0: text_offset is 0x80000)")
    flags: int = Field(0, ge=0, le=U64_MAX, strict=True, description="header flags")


class DeclaredInitrd(BaseModel):
    """An initrd known by its size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: Size


KernelSpec = Annotated[
    Annotated[FilePath, Tag("path")] | Annotated[DeclaredKernel, Tag("declared")],
    Discriminator(path_or_declared),
]
InitrdSpec = Annotated[
    Annotated[FilePath, Tag("path")] | Annotated[DeclaredInitrd, Tag("declared")],
    Discriminator(path_or_declared),
]


class TopologyConfig(BaseModel):
    """``/cpus/cpu-map`` (cpu-map.yaml): sockets x clusters x cores x threads = vcpus."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sockets: int = Field(1, ge=1, le=4096, strict=True)
    clusters: int = Field(1, ge=1, le=4096, strict=True)
    cores: int = Field(1, ge=1, le=4096, strict=True)
    threads: int = Field(1, ge=1, le=4096, strict=True)


class Config(BaseModel):
    """The user-facing machine description. Keys are stable: scripts depend on them.

    It remembers where each setting came from (:func:`fdtgen.config.validate`
    tells it: a key an option set came from the ``command line``, the others
    from the config file), so that :meth:`build` can start an error about a
    setting with its file.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    _source: str = PrivateAttr("config")
    _from_cli: frozenset[str] = PrivateAttr(frozenset())

    template: str = Field("squib", description="built-in template name or path to a .toml")
    vcpus: int = Field(2, ge=1, le=4096, strict=True)
    memory: Size = Field(512 << 20, description="RAM in bytes, or '512MiB', '1GiB'")
    cmdline: Cmdline | None = Field(
        None,
        description=f"/chosen/bootargs: no NUL, at most {COMMAND_LINE_SIZE - 1} bytes of UTF-8; "
        f"default: {DEFAULT_CMDLINE!r} with the template's console tty (ttyS0 for a 16550); "
        "'panic=-1' with serial = false",
    )
    virtio: int | None = Field(
        None,
        ge=0,
        le=32,
        strict=True,
        description="virtio-mmio transports; default: the template's slots (0 on a PCI-only VMM)",
    )
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
        0, ge=0, le=RNG_SEED_MAX, strict=True, description="bytes of /chosen/rng-seed (0: none)"
    )
    kaslr_seed: bool = Field(False, strict=True, description="add /chosen/kaslr-seed")
    entropy_seed: str | None = Field(
        None,
        min_length=1,
        description="derive the seeds from this text; default: zero slots a loader fills",
    )

    def source_of(self, key: str) -> str:
        """Where setting ``key`` came from: ``command line``, or the config file."""
        return "command line" if key in self._from_cli else self._source

    def sourced(self, source: str, from_cli: frozenset[str]) -> "Config":
        """This config, knowing its file (``source``) and the keys options set."""
        self._source, self._from_cli = source, from_cli
        return self

    def build(
        self,
        read_kernel: Callable[[str], KernelImage] = default_read_kernel,
        read_initrd: Callable[[str], InputFile] = default_read_initrd,
    ) -> Build:
        """:func:`fdtgen.pipeline.build` of :meth:`machine` and :meth:`boot`.

        An error about one setting (``vcpus`` past the template's
        ``max_vcpus``) starts with where that setting came from.
        """
        try:
            return build(self.machine(), self.boot(read_kernel, read_initrd))
        except FdtgenError as e:
            if e.setting is None:
                raise
            raise located(e, self.source_of(e.setting)) from None

    def machine(self) -> Machine:
        """The machine to build: the pipeline's first input."""
        t = self.topology
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
            topology=None if t is None else Topology(t.sockets, t.clusters, t.cores, t.threads),
        )

    def boot(
        self,
        read_kernel: Callable[[str], KernelImage] = default_read_kernel,
        read_initrd: Callable[[str], InputFile] = default_read_initrd,
    ) -> Boot:
        """Kernel, initrd and entropy settings: the pipeline's second input.

        Reads the kernel and initrd files named, through the given readers
        (a batch passes ones that read each file once).
        """
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
        seed = self.entropy_seed
        return Boot(
            kernel=kernel,
            initrd_size=initrd_size,
            initrd=initrd,
            rng_seed=self.rng_seed,
            kaslr_seed=self.kaslr_seed,
            entropy_seed=None if seed is None else seed.encode(),
        )


def schema() -> dict[str, Any]:
    """The config's JSON Schema (draft 2020-12), for editors and CI linting of configs.

    Size keys take an integer or a size string (``SIZE_PATTERN``). A JSON config
    may name this schema in a top-level ``"$schema"`` key, which fdtgen ignores.
    """
    s = Config.model_json_schema()
    s["properties"] = {
        "$schema": {"type": "string", "description": "the schema this file follows (ignored)"},
        **s["properties"],
    }
    s["title"] = "fdtgen machine config"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **s,
    }


def schema_json() -> bytes:
    import json

    return (json.dumps(schema(), indent=2) + "\n").encode()
