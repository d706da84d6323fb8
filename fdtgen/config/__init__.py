"""User configuration (TOML or JSON) -> the pipeline's inputs, through pydantic.

``load(path, overrides)`` reads a config file (or none: the defaults) and
applies command-line overrides; ``validate(mapping, source)`` checks a mapping.
Both return a :class:`Config`, whose ``machine()`` and ``boot()`` are what
:func:`fdtgen.pipeline.build` takes, or raise one :class:`~fdtgen.errors.ConfigError`
line naming the file, key, value and rule.

Importing this package imports pydantic: commands that read no config never do.

* :mod:`fdtgen.config.model`     the pydantic models and the JSON Schema
* :mod:`fdtgen.config.messages`  pydantic's errors worded for the config's author
* :mod:`fdtgen.config.loading`   files, path anchoring, overrides, validation
"""

from fdtgen.config.loading import (
    anchor_paths,
    load,
    override,
    parse_file,
    parse_json,
    read_bytes,
    read_file,
    validate,
)
from fdtgen.config.model import SIZE_PATTERN, Config, schema, schema_json

__all__ = [
    "SIZE_PATTERN",
    "Config",
    "anchor_paths",
    "load",
    "override",
    "parse_file",
    "parse_json",
    "read_bytes",
    "read_file",
    "schema",
    "schema_json",
    "validate",
]
