"""Config files and command-line overrides in, a validated :class:`Config` out."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from fdtgen.config.model import Config
from fdtgen.errors import ConfigError
from fdtgen.units import MiB

CONFIG_MAX_SIZE = 1 * MiB  # a config is a few hundred bytes; this stops a runaway read


def validate(
    data: Mapping[str, Any], source: str = "config", from_cli: Collection[str] = ()
) -> Config:
    """Validate a mapping; a failure is one :class:`ConfigError` line.

    The line starts with ``source`` (the config file), or ``command line`` when
    the offending key is one of ``from_cli``, the keys an option set.
    """
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        from fdtgen.config.messages import config_error  # wording errors is for failures only

        raise config_error(e.errors(), source, from_cli) from None


def load(path: str | None, overrides: Mapping[str, Any] | None = None) -> Config:
    """The embedded default, or the config file ``path``, with the non-``None``
    ``overrides`` (command-line options) applied on top."""
    data: dict[str, Any] = anchor_paths(read_file(path), path) if path else {}
    updates = {k: v for k, v in (overrides or {}).items() if v is not None}
    data.update(updates)
    return validate(data, path or "config", updates)


def override(cfg: Config, overrides: Mapping[str, Any], source: str = "command line") -> Config:
    """``cfg`` with the non-``None`` ``overrides`` applied and validated again."""
    updates = {k: v for k, v in overrides.items() if v is not None}
    if not updates:
        return cfg
    return validate({**cfg.model_dump(exclude_unset=True), **updates}, source, updates)


def read_file(path: str) -> dict[str, Any]:
    """A config file as a mapping: JSON if it ends in ``.json``, TOML otherwise."""
    return parse_file(read_bytes(path), path)


def read_bytes(path: str) -> bytes:
    """A config file's bytes: a regular file of at most :data:`CONFIG_MAX_SIZE`
    (anything else is a config error, raised before a byte is read)."""
    from fdtgen.files import read_regular

    return read_regular(path, path, CONFIG_MAX_SIZE, ConfigError, noun="config")


def parse_file(raw: bytes, path: str) -> dict[str, Any]:
    """The bytes of config file ``path`` as a mapping (see :func:`read_file`)."""
    is_json = path.lower().endswith(".json")
    try:  # import only the parser this file needs
        if is_json:
            import json

            data = json.loads(raw)
        else:
            import tomllib

            data = tomllib.loads(raw.decode())
    except UnicodeDecodeError as e:  # its text names the byte: say where, not what
        kind = "JSON" if is_json else "TOML"
        raise ConfigError(
            f"{path}: not valid {kind}: not UTF-8 text: {e.reason} at byte {e.start}"
        ) from None
    except ValueError as e:  # JSONDecodeError, TOMLDecodeError
        raise ConfigError(f"{path}: not valid {'JSON' if is_json else 'TOML'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/object")
    if isinstance(data.get("$schema"), str):  # an editor's pointer to the JSON Schema
        del data["$schema"]
    return data


def anchor_paths(data: dict[str, Any], path: str) -> dict[str, Any]:
    """Template, kernel and initrd paths in a config file are relative to that file."""
    base = os.path.dirname(path)
    template = data.get("template")
    if isinstance(template, str) and ("/" in template or template.endswith(".toml")):
        data["template"] = os.path.join(base, template)
    for key in ("kernel", "initrd"):
        if isinstance(data.get(key), str) and data[key]:
            data[key] = os.path.join(base, data[key])
    return data
