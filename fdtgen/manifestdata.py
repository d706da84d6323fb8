"""The manifest as plain data: built without pydantic, in the model's field order.

:mod:`fdtgen.manifest` declares the same document as pydantic models (its JSON
Schema and validation); :func:`manifest_data` produces the dict those models
accept, and :func:`manifest_json` its JSON text, so that ``fdtgen build`` and
batch builds write manifests without importing pydantic. A test checks the two
agree byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from fdtgen.boot.image import InputFile, KernelImage
from fdtgen.errors import ConfigError
from fdtgen.layout import Layout
from fdtgen.pipeline import Build
from fdtgen.ranges import Region, by_address
from fdtgen.version import __version__

if TYPE_CHECKING:
    from fdtgen.boot.placement import Placement

MANIFEST_VERSION = 1


def _span(base: int, size: int) -> dict[str, int]:
    return {"address": base, "size": size}


def _region(r: Region) -> dict[str, Any]:
    return {"tag": r.tag, "address": r.range.base, "size": r.range.size}


def _placed(
    b: Build, extra_inputs: Sequence[InputFile]
) -> tuple[Placement, KernelImage, list[InputFile]]:
    """The placement, the kernel and the input files of a build that placed a kernel."""
    p = b.placement
    if p is None or b.boot is None or b.boot.kernel is None:
        raise ConfigError(
            "manifest: a manifest needs a kernel to place (--kernel, or kernel = ... in the config)"
        )
    k = b.boot.kernel
    inputs = [*extra_inputs]
    if k.source is not None:
        inputs.append(k.source)
    if b.boot.initrd is not None:
        inputs.append(b.boot.initrd)
    return p, k, inputs


def manifest_data(b: Build, extra_inputs: Sequence[InputFile] = ()) -> dict[str, Any]:
    """The manifest of a build that placed a kernel."""
    p, k, inputs = _placed(b, extra_inputs)
    layout = b.layout
    t = layout.template
    regs = p.registers
    gic, devices, regions = _layout_parts(layout)
    return {
        "manifest_version": MANIFEST_VERSION,
        "fdtgen_version": __version__,
        "template": t.name,
        "kernel": {
            "load_address": p.kernel.base,
            "entry": p.entry,
            "text_offset": p.text_offset,
            "image_size": k.image_size,
            "size": k.size,
            "reserved": p.kernel.size,
            "flags": k.flags,
            "format": k.format,
        },
        "initrd": None if p.initrd is None else _span(p.initrd.base, p.initrd.size),
        "dtb": {"address": p.dtb.base, "size": len(b.blob), "reserved": p.dtb.size},
        "registers": {"x0": regs.x0, "x1": regs.x1, "x2": regs.x2, "x3": regs.x3, "pc": regs.pc},
        "memory": [_span(r.base, r.size) for r in layout.ram],
        "patch_slots": [
            {"property": s.property, "offset": s.offset, "size": s.size, "derived": s.derived}
            for s in b.slots
        ],
        "inputs": [
            {"role": i.role, "path": i.path, "size": i.size, "sha256": i.sha256} for i in inputs
        ],
        "vcpus": layout.vcpus,
        "cmdline": b.machine.cmdline,
        "gic": gic,
        "devices": devices,
        "regions": regions,
    }


_parts: dict[int, tuple[Layout, tuple[Any, Any, Any]]] = {}


def _layout_parts(layout: Layout) -> tuple[Any, Any, Any]:
    """The manifest parts that depend only on the layout (the GIC, devices and
    regions), shared by every build of the same layout object (batch builds reuse
    layouts). Callers must not mutate them."""
    hit = _parts.get(id(layout))
    if hit is not None and hit[0] is layout:
        return hit[1]
    t = layout.template
    maint = t.gic.maintenance_ppi
    regions = layout.regions()
    gic = {
        "version": t.gic.version,
        "distributor": _span(layout.gic_dist.base, layout.gic_dist.size),
        "redistributors": [_span(r.base, r.size) for r in layout.gic_redist],
        "redistributor_stride": layout.redist_stride,
        "maintenance_intid": None if maint is None else maint.intid.value,
        "regions": [_region(r) for r in regions if r.tag.startswith("gic-")],
    }
    devices = [
        {
            "tag": d.tag,
            "kind": d.kind,
            "address": d.range.base,
            "size": d.range.size,
            "spi": None if d.spi is None else d.spi.number,
            "intid": None if d.spi is None else d.spi.intid.value,
            "trigger": None if d.spi is None else d.trigger.label,
        }
        for d in sorted((*layout.devices, *layout.unwired), key=by_address)
    ]
    parts = (gic, devices, [_region(r) for r in regions])
    if len(_parts) >= 256:
        _parts.clear()
    _parts[id(layout)] = (layout, parts)
    return parts


def manifest_json(
    b: Build, extra_inputs: Sequence[InputFile] = (), *, compact: bool = False
) -> bytes:
    """The manifest as JSON text: fixed key order, two-space indent, trailing newline.

    ``compact`` writes the same document on one line, byte for byte what
    ``json.dumps(manifest_data(b), separators=(",", ":"))`` gives, about ten
    times faster; batch builds use it.
    """
    if compact:
        return _compact_json(b, extra_inputs)
    return (json.dumps(manifest_data(b, extra_inputs), indent=2) + "\n").encode()


def _compact_json(b: Build, extra_inputs: Sequence[InputFile]) -> bytes:
    """The compact manifest written directly; a test holds it to ``json.dumps``.

    Strings go through the json module's own (C) string encoder; every other
    value is an int, so ``str`` spells it as JSON does.
    """
    p, k, inputs = _placed(b, extra_inputs)
    layout = b.layout
    regs = p.registers
    q = _quote
    i = p.initrd
    initrd = "null" if i is None else f'{{"address":{i.base},"size":{i.size}}}'
    memory = ",".join(f'{{"address":{r.base},"size":{r.size}}}' for r in layout.ram)
    slots = ",".join(
        f'{{"property":{q(s.property)},"offset":{s.offset},"size":{s.size},'
        f'"derived":{"true" if s.derived else "false"}}}'
        for s in b.slots
    )
    files = ",".join(
        f'{{"role":{q(f.role)},"path":{q(f.path)},"size":{f.size},"sha256":{q(f.sha256)}}}'
        for f in inputs
    )
    return (
        f'{{"manifest_version":{MANIFEST_VERSION},"fdtgen_version":{_VERSION},'
        f'"template":{q(layout.template.name)},'
        f'"kernel":{{"load_address":{p.kernel.base},"entry":{p.entry},'
        f'"text_offset":{p.text_offset},"image_size":{k.image_size},"size":{k.size},'
        f'"reserved":{p.kernel.size},"flags":{k.flags},"format":{q(k.format)}}},'
        f'"initrd":{initrd},'
        f'"dtb":{{"address":{p.dtb.base},"size":{len(b.blob)},"reserved":{p.dtb.size}}},'
        f'"registers":{{"x0":{regs.x0},"x1":{regs.x1},"x2":{regs.x2},"x3":{regs.x3},'
        f'"pc":{regs.pc}}},'
        f'"memory":[{memory}],"patch_slots":[{slots}],"inputs":[{files}],'
        f'"vcpus":{layout.vcpus},"cmdline":{q(b.machine.cmdline)}'
        f"{_compact_tail(layout)}}}\n"
    ).encode()


_quote = encode_basestring_ascii  # the C encoder json.dumps itself uses
_VERSION = _quote(__version__)
_LAYOUT_KEYS = ("gic", "devices", "regions")
_tails: dict[int, tuple[Layout, str]] = {}


def _compact_tail(layout: Layout) -> str:
    """The GIC, devices and regions, which close the document and depend only on
    the layout: encoded once per layout object."""
    hit = _tails.get(id(layout))
    if hit is not None and hit[0] is layout:
        return hit[1]
    parts = _layout_parts(layout)
    tail = "".join(
        f",{json.dumps(k)}:{json.dumps(v, separators=(',', ':'))}"
        for k, v in zip(_LAYOUT_KEYS, parts, strict=True)
    )
    if len(_tails) >= 256:
        _tails.clear()
    _tails[id(layout)] = (layout, tail)
    return tail
