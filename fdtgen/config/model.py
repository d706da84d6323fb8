"""User configuration (TOML or JSON) -> a :class:`~fdtgen.machine.Machine` and its boot inputs.

pydantic lives here (and in :mod:`fdtgen.manifest`): commands that read no
config never import it. Kernel and initrd are paths (relative to the config
file) or declared sizes, for placing files that are not at hand.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
)

from fdtgen.config import rules as configrules
from fdtgen.config.rules import (
    Settings,
    cmdline_after,
    error_line,
    path_after,
    path_or_declared,
    size_before,
)
from fdtgen.devicetree.machine import DEFAULT_CMDLINE, Machine
from fdtgen.spec import COMMAND_LINE_SIZE
from fdtgen.units import U64_MAX, MiB

if TYPE_CHECKING:
    from fdtgen.pipeline import Boot


Cmdline = Annotated[str, AfterValidator(cmdline_after)]
FilePath = Annotated[str, Field(min_length=1), AfterValidator(path_after)]
# What units.parse_size accepts, as an ECMA-262 pattern for editors (a test keeps
# the two in step): a decimal or 0x number, underscores allowed, and a binary unit.
SIZE_PATTERN = (
    r"^\s*(0[xX]_*[0-9a-fA-F][0-9a-fA-F_]*|[0-9][0-9_]*)"
    r"\s*([bB]|[kKmMgGtT]([iI]?[bB])?)?\s*$"
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
    text_offset: SizeOrZero = Field(0, lt=2 * MiB, description="header text_offset")
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
    """The user-facing machine description. Keys are stable: scripts depend on them."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    template: str = Field("squib", description="built-in template name or path to a .toml")
    vcpus: int = Field(2, ge=1, le=4096, strict=True)
    memory: Size = Field(512 << 20, description="RAM in bytes, or '512MiB', '1GiB'")
    cmdline: Cmdline = Field(
        DEFAULT_CMDLINE,
        description=f"/chosen/bootargs: no NUL, at most {COMMAND_LINE_SIZE - 1} bytes of UTF-8",
    )
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

    def settings(self) -> Settings:
        return Settings(self.model_dump(), self.model_dump(exclude_unset=True))

    def machine(self) -> Machine:
        return self.settings().machine()

    def boot(self) -> Boot:
        """Kernel, initrd and entropy settings; reads the kernel and initrd files named."""
        return self.settings().boot()


def validate(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a mapping; a failure is one :class:`ConfigError` line."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise error_line(e.errors(), source) from None


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


# The run-time path (no pydantic import): fdtgen.configrules.
load = configrules.load
override = configrules.override
read_file = configrules.read_file


def compiled_schema() -> dict[str, Any]:
    """:class:`Config`'s core schema, rewritten so pydantic_core alone can run it.

    Models become typed dicts (the validated values are plain dicts, read by
    :class:`~fdtgen.configrules.Settings`), definitions are inlined, metadata
    is dropped, and pydantic's constraint wrappers (``functools.partial`` of
    ``greater_than_validator`` and friends, which raise the same errors as
    the core constraints) fold into the integer schema they wrap.
    """
    root = Config.__pydantic_core_schema__
    defs = {d["ref"]: d for d in root.get("definitions", [])}

    def conv(node: Any) -> Any:
        if isinstance(node, list):
            return [conv(n) for n in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind == "definitions":
            return conv(node["schema"])
        if kind == "definition-ref":
            return conv(defs[node["schema_ref"]])
        if kind == "model":
            fields = node["schema"]["fields"]
            return {
                "type": "typed-dict",
                "fields": {
                    name: {
                        "type": "typed-dict-field",
                        "schema": conv(f["schema"]),
                        "required": f["schema"]["type"] != "default",
                    }
                    for name, f in fields.items()
                },
                "extra_behavior": "forbid",
                "strict": node.get("config", {}).get("strict", False),
            }
        if kind == "function-after" and isinstance(node["function"]["function"], functools.partial):
            fn = node["function"]["function"]
            inner = conv(node["schema"])
            target = inner
            while target.get("type") in ("function-before", "function-after"):
                target = target["schema"]
            if target.get("type") != "int" or fn.func.__name__ not in _CONSTRAINTS:
                raise TypeError(f"cannot compile constraint {fn!r}")
            target.update(fn.keywords)
            return inner
        out = {k: conv(v) for k, v in node.items() if k not in ("metadata", "ref", "serialization")}
        return out

    return conv(root)  # type: ignore[no-any-return]


_CONSTRAINTS = {
    "greater_than_validator",
    "greater_than_or_equal_validator",
    "less_than_validator",
    "less_than_or_equal_validator",
}


def render_compiled() -> str:
    """Python source of ``fdtgen/_config_schema.py``."""
    names = {fn: fn.__name__ for fn in (size_before, path_or_declared, cmdline_after, path_after)}

    def render(v: Any, indent: int) -> str:
        pad = "    " * indent
        if isinstance(v, dict):
            if not v:
                return "{}"
            items = [f"{pad}    {k!r}: {render(x, indent + 1)}," for k, x in v.items()]
            return "{\n" + "\n".join(items) + f"\n{pad}}}"
        if isinstance(v, list):
            return "[" + ", ".join(render(x, indent) for x in v) + "]"
        if callable(v):
            if v not in names:
                raise TypeError(f"cannot render function {v!r}")
            return names[v]
        return repr(v)

    return (
        '"""Generated by ``python -m fdtgen.config`` from the models in fdtgen/config.py.\n\n'
        "Do not edit: regenerate after changing a model (a test checks it is current).\n"
        '"""\n\n'
        "from typing import Any\n\n"
        "from fdtgen.config.rules import cmdline_after, path_after, path_or_declared, size_before\n\n"
        f"SCHEMA: Any = {render(compiled_schema(), 0)}\n"
    )


if __name__ == "__main__":
    import pathlib

    target = pathlib.Path(__file__).with_name("_schema.py")
    target.write_text(render_compiled())
    print(f"wrote {target}")
