"""User configuration (TOML or JSON) -> :class:`fdtgen.machine.Machine`.

pydantic lives here and only here: commands that read no config never import it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .machine import DEFAULT_CMDLINE, Machine
from .units import U64_MAX, parse_size


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
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate(data, path or "config")
