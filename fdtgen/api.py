"""The Python API: ``build(config)`` and ``verify(blob)``, what a build step or a loader calls.

``build`` takes what ``fdtgen build`` takes — a config mapping, a TOML/JSON
file, or a validated :class:`fdtgen.config.Config` — and returns the blob,
its DTS, the loader's manifest and the resolved layout. ``verify`` runs the
checks of ``fdtgen verify`` over any blob and returns the findings. Both raise
:class:`fdtgen.errors.FdtgenError` (one line: what, value, rule) for input they
reject; nothing is written anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from fdtgen.boot.placement import Placement
    from fdtgen.checks import Finding
    from fdtgen.config import Config
    from fdtgen.fdt.tree import DeviceTree
    from fdtgen.layout import Layout
    from fdtgen.manifest import Manifest
    from fdtgen.pipeline import Build, PatchSlot

__all__ = ["Result", "build", "verify"]


class Result(NamedTuple):
    """One machine, built.

    ``blob`` is the DTB (byte-identical to dtc's for ``tree``); ``layout`` the
    resolved guest-physical map; ``placement`` where kernel, initrd and DTB go
    (None without a kernel); ``manifest`` the loader's manifest (None without
    a kernel); ``patch_slots`` the entropy bytes a loader may overwrite.
    """

    blob: bytes
    tree: DeviceTree
    layout: Layout
    placement: Placement | None
    manifest: Manifest | None
    patch_slots: tuple[PatchSlot, ...]

    @property
    def dts(self) -> str:
        """The tree as DTS source; ``dtc -I dts -O dtb`` compiles it to :attr:`blob`."""
        from fdtgen.fdt.dts import to_dts

        return to_dts(self.tree)


def build(config: Mapping[str, Any] | str | os.PathLike[str] | Config | None = None) -> Result:
    """Build the machine ``config`` describes (None: the embedded default machine).

    A mapping has the keys of a TOML config (``{"vcpus": 4, "memory": "1GiB"}``);
    relative ``kernel``/``initrd`` paths in it are relative to the working
    directory, in a file relative to that file. Raises
    :class:`fdtgen.errors.FdtgenError` for a config, template or kernel it rejects.
    """
    from fdtgen.boot.image import input_file
    from fdtgen.config import Config, load, read_bytes, validate
    from fdtgen.manifest import manifest_for

    inputs = []
    if isinstance(config, Config):
        settings = config
    elif config is None or isinstance(config, Mapping):
        settings = validate(dict(config or {}), "config")
    elif isinstance(config, str | os.PathLike):
        path = os.fspath(config)
        settings = load(path)
        inputs.append(input_file("config", path, read_bytes(path)))
    else:
        raise TypeError(
            f"config: expected a mapping, a path or a Config, not {type(config).__name__}"
        )
    b = settings.build()
    return _result(b, manifest_for(b, inputs) if b.placement is not None else None)


def _result(b: Build, manifest: Manifest | None) -> Result:
    return Result(b.blob, b.tree, b.layout, b.placement, manifest, b.slots)


def verify(
    blob: bytes,
    *,
    template: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    dtc: bool = True,
) -> list[Finding]:
    """The findings of ``fdtgen verify`` for ``blob`` (an empty list: clean).

    ``template`` (a built-in name or a template file) adds the template rules;
    ``manifest`` (a manifest file) adds booting.rst's placement rules; ``dtc``
    runs dtc's own checks too when dtc is installed. A blob that does not parse
    raises :class:`fdtgen.errors.BlobError`; so does (as its own error) a template
    or manifest that cannot be read.
    """
    import shutil

    from fdtgen.checks import Options
    from fdtgen.checks import verify as run
    from fdtgen.template.load import load_template

    loaded = None
    if manifest is not None:  # the manifest model brings pydantic: only when asked
        from fdtgen.checks.manifest import load_manifest

        loaded = load_manifest(os.fspath(manifest))
    options = Options(
        template=None if template is None else load_template(template),
        manifest=loaded,
        dtc=shutil.which("dtc") if dtc else None,
    )
    return run(bytes(blob), options)
