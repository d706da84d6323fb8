"""Config files and command-line overrides in, a validated :class:`Config` out."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from fdtgen.config.model import Config
from fdtgen.errors import ConfigError, parse_failure
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
        cfg = Config.model_validate(data)
    except ValidationError as e:
        from fdtgen.config.messages import config_error  # wording errors is for failures only

        raise config_error(e.errors(), source, from_cli) from None
    return cfg.sourced(source, frozenset(from_cli))


def load(path: str | None, overrides: Mapping[str, Any] | None = None) -> Config:
    """The embedded default, or the config file ``path``, with the non-``None``
    ``overrides`` (command-line options) applied on top."""
    data: dict[str, Any] = anchor_paths(read_file(path), path) if path else {}
    updates = {k: v for k, v in (overrides or {}).items() if v is not None}
    data.update(updates)
    # Without a file, every setting is an option or a default: the command line's.
    return validate(data, path or "command line", updates)


def override(cfg: Config, overrides: Mapping[str, Any], source: str = "command line") -> Config:
    """``cfg`` with the non-``None`` ``overrides`` applied and validated again."""
    updates = {k: v for k, v in overrides.items() if v is not None}
    if not updates:
        return cfg
    out = validate({**cfg.model_dump(exclude_unset=True), **updates}, source, updates)
    from_cli = {k for k in Config.model_fields if cfg.source_of(k) == "command line"}
    return out.sourced(cfg.source_of(""), frozenset(from_cli | set(updates)))


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
    if path.lower().endswith(".json"):
        data = parse_json(raw, path)
    else:
        import tomllib  # import only the parser this file needs

        try:
            data = tomllib.loads(raw.decode())
        except (ValueError, RecursionError) as e:  # not UTF-8, not TOML, nested too deeply
            raise ConfigError(f"{path}: {parse_failure(e, 'TOML')}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/object")
    if isinstance(data.get("$schema"), str):  # an editor's pointer to the JSON Schema
        del data["$schema"]
    return data


def parse_json(raw: bytes | str, source: str) -> Any:
    """JSON text (a config file, or one line of ``build-many``'s input) as Python
    values; anything the parser refuses is one :class:`ConfigError` line."""
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, nested too deeply
        raise ConfigError(f"{source}: {parse_failure(e, 'JSON')}") from None


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
