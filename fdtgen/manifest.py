"""The placement manifest: what a loader needs to boot the DTB fdtgen built.

A JSON document (and its JSON Schema, ``fdtgen schema manifest``) that loader
scripts and VMMs read: where each file goes, the entry registers, the RAM,
every device's MMIO range and interrupt, the GIC ranges, and the patch slots
for per-boot entropy. Field names are a contract; every address and size is an
integer in bytes, every range ``{address, size}`` with an exclusive end at
``address + size``, at or below 2^64.

The typed dictionaries below are the one model of that document:
:func:`manifest_for` fills one from a build, :func:`to_json` writes it,
:func:`from_json` reads one back and holds it to the model, and :func:`schema`
is the model's JSON Schema. At run time a manifest is a plain ``dict`` in the
model's field order, which JSON writers take as it is; pydantic reads the same
classes for the schema and for validation. The pipeline never imports this
module, so building a DTB never imports pydantic.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic_core import PydanticSerializationError
from pydantic_core import to_json as _pydantic_json
from typing_extensions import TypedDict  # pydantic reads only this one on Python < 3.12

from fdtgen.boot.image import InputFile
from fdtgen.devicetree.machine import default_cmdline
from fdtgen.errors import ConfigError, ManifestError
from fdtgen.pipeline import Build
from fdtgen.ranges import by_address
from fdtgen.spec import FDT_MAX_SIZE, SPI_INTID_BASE, Trigger
from fdtgen.units import U64_MAX
from fdtgen.version import __version__

MANIFEST_VERSION = 1

Address = Annotated[int, Field(ge=0, lt=1 << 64)]
_STRICT = ConfigDict(extra="forbid")


@with_config(_STRICT)
class Span(TypedDict):
    """A guest-physical range ``[address, address + size)``."""

    address: Address
    size: Annotated[int, Field(gt=0, lt=1 << 64)]


@with_config(_STRICT)
class KernelEntry(TypedDict):
    """The kernel Image: copy ``size`` bytes of the (decompressed) Image to ``load_address``."""

    load_address: Annotated[
        int, Field(ge=0, lt=1 << 64, description="where the Image's first byte goes")
    ]
    entry: Annotated[
        int, Field(ge=0, lt=1 << 64, description="the entry point (equals load_address)")
    ]
    text_offset: Annotated[
        int, Field(ge=0, description="load_address minus its 2 MiB-aligned base")
    ]
    image_size: Annotated[int, Field(ge=0, description="the header's image_size (0: not given)")]
    size: Annotated[int, Field(gt=0, description="bytes of the decompressed Image to copy")]
    reserved: Annotated[
        int, Field(gt=0, description="bytes kept free from load_address: max(size, image_size)")
    ]
    flags: Annotated[int, Field(ge=0, description="the header's flags")]
    format: Annotated[
        str,
        Field(description="raw, gzip, zboot-gzip (decompress before loading) or declared"),
    ]


@with_config(_STRICT)
class InitrdEntry(TypedDict):
    """The initrd: copy the file's ``size`` bytes to ``address`` (linux,initrd-start)."""

    address: Address
    size: Annotated[int, Field(gt=0)]


@with_config(_STRICT)
class DtbEntry(TypedDict):
    """The DTB: copy the ``size``-byte blob to ``address`` (x0).

    ``sha256`` identifies the DTB file written beside the manifest (its
    patch slots as written: zeros unless derived), so a DTB that is not the
    one this manifest was made for is found; manifests written before it was
    recorded lack it.
    """

    address: Address
    size: Annotated[int, Field(gt=0, le=FDT_MAX_SIZE)]
    reserved: Annotated[
        int, Field(gt=0, le=FDT_MAX_SIZE, description="bytes of the slot kept for the DTB")
    ]
    sha256: NotRequired[
        Annotated[
            str,
            Field(
                pattern="^[0-9a-f]{64}$",
                description="sha256 of the DTB file as written (patch slots unfilled)",
            ),
        ]
    ]


@with_config(_STRICT)
class RegistersEntry(TypedDict):
    """Primary CPU registers at entry (booting.rst): x0 = DTB, x1..x3 = 0, pc = entry."""

    x0: Address
    x1: Address
    x2: Address
    x3: Address
    pc: Address


@with_config(_STRICT)
class PatchSlotEntry(TypedDict):
    """Bytes at ``offset`` in the DTB file holding ``property``'s value.

    ``derived`` false: zeros, to be overwritten with fresh entropy each boot.
    """

    property: str
    offset: Annotated[int, Field(ge=0)]
    size: Annotated[int, Field(gt=0)]
    derived: bool


@with_config(_STRICT)
class InputEntry(TypedDict):
    """A file the build read."""

    role: str
    path: str
    size: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


@with_config(_STRICT)
class DeviceEntry(TypedDict):
    """A device the VMM must emulate: MMIO range and interrupt (INTID = SPI + 32).

    ``spi``, ``intid`` and ``trigger`` are ``null`` for a device without an interrupt.
    """

    tag: str
    kind: str
    address: Address
    size: Annotated[int, Field(gt=0)]
    spi: Annotated[int | None, Field(ge=0, le=987)]
    intid: Annotated[int | None, Field(ge=32, le=1019)]
    trigger: Annotated[
        str | None, Field(description="edge-rising, edge-falling, level-high or level-low")
    ]


@with_config(_STRICT)
class RegionEntry(TypedDict):
    """A tagged guest-physical range ``[address, address + size)``."""

    tag: str
    address: Address
    size: Annotated[int, Field(gt=0)]


@with_config(_STRICT)
class GicEntry(TypedDict):
    """The interrupt controller: version, distributor, redistributors and every GIC range.

    ``regions`` lists them all by tag (``gic-dist``, ``gic-redist``, and where
    the template has them ``gic-redist2``, ``gic-cpu``, ``gic-its``, ``gic-v2m``).
    """

    version: int
    distributor: Span
    redistributors: list[Span]
    redistributor_stride: Annotated[int, Field(gt=0)]
    maintenance_intid: NotRequired[Annotated[int | None, Field(default=None)]]
    regions: list[RegionEntry]


@with_config(_STRICT)
class Manifest(TypedDict):
    """Where a loader puts kernel, initrd and DTB, and what the VMM must provide.

    ``notes`` says where the placement left the template VMM's own choice
    because it breaks booting.rst, and why (empty when it kept every one);
    manifests written before it was recorded lack it.
    """

    manifest_version: NotRequired[Annotated[int, Field(default=MANIFEST_VERSION)]]
    fdtgen_version: str
    template: str
    kernel: KernelEntry
    initrd: InitrdEntry | None
    dtb: DtbEntry
    notes: NotRequired[
        Annotated[
            list[str],
            Field(
                description="where the placement differs from the VMM's own, and why (booting.rst)"
            ),
        ]
    ]
    registers: RegistersEntry
    memory: list[Span]
    patch_slots: list[PatchSlotEntry]
    inputs: list[InputEntry]
    vcpus: Annotated[int, Field(ge=1)]
    cmdline: str
    gic: GicEntry
    devices: list[DeviceEntry]
    regions: Annotated[
        list[RegionEntry],
        Field(description="the whole live map: reserved ranges, GIC, devices and RAM, by address"),
    ]


_TRIGGER_LABELS = {t: t.label for t in Trigger}


def manifest_for(b: Build, extra_inputs: Sequence[InputFile] = ()) -> Manifest:
    """The manifest of a build that placed a kernel; ``extra_inputs`` (the config
    file) come first among its inputs, then the kernel and initrd files."""
    p, boot = b.placement, b.boot
    if p is None or boot is None or boot.kernel is None:
        raise ConfigError(
            "manifest: a manifest needs a kernel to place (--kernel, or kernel = ... in the config)"
        )
    k = boot.kernel
    files = [*extra_inputs]
    if k.source is not None:
        files.append(k.source)
    if boot.initrd is not None:
        files.append(boot.initrd)
    layout = b.layout
    g = layout.template.gic
    regs = p.registers
    spans = layout.spans()
    devices: list[DeviceEntry] = []
    for d in sorted((*layout.devices, *layout.unwired), key=by_address):
        spi = d.spi
        devices.append(
            {
                "tag": d.tag,
                "kind": d.kind,
                "address": d.range.base,
                "size": d.range.size,
                "spi": None if spi is None else spi.number,
                "intid": None if spi is None else spi.number + SPI_INTID_BASE,  # Spi.intid
                "trigger": None if spi is None else _TRIGGER_LABELS[d.trigger],
            }
        )
    return {
        "manifest_version": MANIFEST_VERSION,
        "fdtgen_version": __version__,
        "template": layout.template.name,
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
        "initrd": None if p.initrd is None else {"address": p.initrd.base, "size": p.initrd.size},
        "dtb": {
            "address": p.dtb.base,
            "size": len(b.blob),
            "reserved": p.dtb.size,
            "sha256": hashlib.sha256(b.blob).hexdigest(),
        },
        "notes": list(p.notes),
        "registers": {"x0": regs.x0, "x1": regs.x1, "x2": regs.x2, "x3": regs.x3, "pc": regs.pc},
        "memory": [{"address": r.base, "size": r.size} for r in layout.ram],
        "patch_slots": [
            {"property": s.property, "offset": s.offset, "size": s.size, "derived": s.derived}
            for s in b.slots
        ],
        "inputs": [
            {"role": f.role, "path": f.path, "size": f.size, "sha256": f.sha256} for f in files
        ],
        "vcpus": layout.vcpus,
        "cmdline": b.machine.cmdline
        if b.machine.cmdline is not None
        else default_cmdline(layout.template, b.machine.serial),
        "gic": {
            "version": g.version,
            "distributor": {"address": layout.gic_dist.base, "size": layout.gic_dist.size},
            "redistributors": [{"address": r.base, "size": r.size} for r in layout.gic_redist],
            "redistributor_stride": layout.redist_stride,
            "maintenance_intid": None
            if g.maintenance_ppi is None
            else g.maintenance_ppi.intid.value,
            "regions": [
                {"tag": tag, "address": base, "size": size}
                for base, size, tag in spans
                if tag.startswith("gic-")
            ],
        },
        "devices": devices,
        "regions": [{"tag": tag, "address": base, "size": size} for base, size, tag in spans],
    }


def to_json(m: Manifest, *, compact: bool = False) -> bytes:
    """The manifest as JSON text in its field order, ASCII only, with a trailing
    newline: two-space indent, or with ``compact`` one line without spaces.

    Byte for byte what ``json.dumps(m, indent=2)`` (or ``separators=(",", ":")``)
    writes; a test holds it to that. pydantic-core writes it several times
    faster, escaping every character json's ASCII escaper does but DEL (0x7f),
    which is escaped here; a lone surrogate (a path that is not UTF-8), which
    pydantic-core refuses, goes to ``json`` itself.
    """
    try:
        raw = _pydantic_json(m, indent=None if compact else 2, ensure_ascii=True)
    except PydanticSerializationError:
        text = json.dumps(m, separators=(",", ":")) if compact else json.dumps(m, indent=2)
        return text.encode() + b"\n"
    return raw.replace(b"\x7f", b"\\u007f") + b"\n"


def from_json(raw: str | bytes, source: str = "manifest") -> Manifest:
    """A manifest read from JSON text and held to the model, strictly (integers
    are JSON integers, no key missing or unknown, no range past 2^64). Raises
    :class:`ManifestError` naming ``source``, the key and the rule of the first
    problem."""
    try:
        m = _adapter().validate_json(raw, strict=True)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        raise ManifestError(source, _key(err["loc"]), _rule(err)) from None
    # The one rule the model's JSON Schema cannot state: no range wraps past 2^64.
    # The kernel's footprint is the largest of what it reserves, its size and its
    # image_size (booting.rst: image_size bytes from the load address are the kernel's).
    k = m["kernel"]
    field, extent = max(
        (("reserved", k["reserved"]), ("size", k["size"]), ("image_size", k["image_size"])),
        key=lambda item: item[1],
    )
    if k["load_address"] + extent > U64_MAX + 1:
        raise ManifestError(
            source,
            "kernel",
            f"load_address {k['load_address']:#x} + {field} {extent:#x} "
            "ends past 2^64 (the range wraps)",
        )
    for key, address, size in _ranges(m):
        if address + size > U64_MAX + 1:
            raise ManifestError(
                source,
                key,
                f"address {address:#x} + size {size:#x} ends past 2^64 (the range wraps)",
            )
    return m


def _ranges(value: object, key: str = "") -> Iterator[tuple[str, int, int]]:
    """Every ``{address, size}`` object in ``value``, in document order, as
    (key path, address, size)."""
    if isinstance(value, dict):
        if "address" in value and "size" in value:
            yield key, value["address"], value["size"]
        for k, v in value.items():
            yield from _ranges(v, f"{key}.{k}" if key else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _ranges(v, f"{key}[{i}]")


def _key(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a key path: ``devices[3].spi``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _rule(err: Any) -> str:
    """A pydantic error as ``value: rule`` (integers past 0xffff in hex)."""
    msg = err["msg"]
    if err["type"] == "json_invalid":
        return f"not valid JSON: {err.get('ctx', {}).get('error', msg)}"
    if err["type"] == "missing":
        return "missing"
    value = err.get("input")
    shown = f"{value:#x}" if type(value) is int and abs(value) > 0xFFFF else repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown}: {msg[0].lower()}{msg[1:]}"


@functools.cache
def _adapter() -> TypeAdapter[Manifest]:
    """The model compiled for validation and the schema, once per process when first needed."""
    return TypeAdapter(Manifest)


def schema() -> dict[str, object]:
    """The manifest's JSON Schema (draft 2020-12, as pydantic writes it for the model)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_adapter().json_schema()}


def schema_json() -> bytes:
    return (json.dumps(schema(), indent=2) + "\n").encode()
