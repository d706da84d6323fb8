"""The placement manifest: what a loader needs to boot the DTB fdtgen built.

A JSON document (and its JSON Schema, ``fdtgen schema``) that loader scripts
and VMMs read: where each file goes, the entry registers, the RAM, every
device's MMIO range and interrupt, the GIC ranges, and the patch slots for
per-boot entropy. Field names are a contract; every address and size is an
integer in bytes, every range ``{address, size}`` with an exclusive end at
``address + size``. These pydantic models are the schema and validation;
:mod:`fdtgen.manifestdata` builds the same document without pydantic, which
is what ``fdtgen build`` and ``build-many`` write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fdtgen.boot.image import InputFile
from fdtgen.manifestdata import MANIFEST_VERSION, manifest_data
from fdtgen.pipeline import Build

Address = Annotated[int, Field(ge=0, lt=1 << 64)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(_Model):
    """A guest-physical range ``[address, address + size)``."""

    address: Address
    size: int = Field(gt=0, lt=1 << 64)


class KernelEntry(_Model):
    """The kernel Image: copy ``size`` bytes of the (decompressed) Image to ``load_address``."""

    load_address: int = Field(ge=0, lt=1 << 64, description="where the Image's first byte goes")
    entry: int = Field(ge=0, lt=1 << 64, description="the entry point (equals load_address)")
    text_offset: int = Field(ge=0, description="load_address minus its 2 MiB-aligned base")
    image_size: int = Field(ge=0, description="the header's image_size (0: not given)")
    size: int = Field(gt=0, description="bytes of the decompressed Image to copy")
    reserved: int = Field(
        gt=0, description="bytes kept free from load_address: max(size, image_size)"
    )
    flags: int = Field(ge=0, description="the header's flags")
    format: str = Field(description="raw, gzip, zboot-gzip (decompress before loading) or declared")


class InitrdEntry(_Model):
    """The initrd: copy the file's ``size`` bytes to ``address`` (linux,initrd-start)."""

    address: Address
    size: int = Field(gt=0)


class DtbEntry(_Model):
    """The DTB: copy the ``size``-byte blob to ``address`` (x0)."""

    address: Address
    size: int = Field(gt=0, le=2 * 1024 * 1024)
    reserved: int = Field(
        gt=0, le=2 * 1024 * 1024, description="bytes of the slot kept for the DTB"
    )


class RegistersEntry(_Model):
    """Primary CPU registers at entry (booting.rst): x0 = DTB, x1..x3 = 0, pc = entry."""

    x0: Address
    x1: Address
    x2: Address
    x3: Address
    pc: Address


class PatchSlotEntry(_Model):
    """Bytes at ``offset`` in the DTB file holding ``property``'s value.

    ``derived`` false: zeros, to be overwritten with fresh entropy each boot.
    """

    property: str
    offset: int = Field(ge=0)
    size: int = Field(gt=0)
    derived: bool


class InputEntry(_Model):
    """A file the build read."""

    role: str
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class DeviceEntry(_Model):
    """A device the VMM must emulate: MMIO range and interrupt (INTID = SPI + 32).

    ``spi``, ``intid`` and ``trigger`` are ``null`` for a device without an interrupt.
    """

    tag: str
    kind: str
    address: Address
    size: int = Field(gt=0)
    spi: int | None = Field(ge=0, le=987)
    intid: int | None = Field(ge=32, le=1019)
    trigger: str | None = Field(description="edge-rising, edge-falling, level-high or level-low")


class RegionEntry(_Model):
    """A tagged guest-physical range ``[address, address + size)``."""

    tag: str
    address: Address
    size: int = Field(gt=0)


class GicEntry(_Model):
    """The interrupt controller: version, distributor, redistributors and every GIC range.

    ``regions`` lists them all by tag (``gic-dist``, ``gic-redist``, and where
    the template has them ``gic-redist2``, ``gic-cpu``, ``gic-its``, ``gic-v2m``).
    """

    version: int
    distributor: Span
    redistributors: list[Span]
    redistributor_stride: int = Field(gt=0)
    maintenance_intid: int | None = None
    regions: list[RegionEntry]


class Manifest(_Model):
    """Where a loader puts kernel, initrd and DTB, and what the VMM must provide."""

    manifest_version: int = MANIFEST_VERSION
    fdtgen_version: str
    template: str
    kernel: KernelEntry
    initrd: InitrdEntry | None
    dtb: DtbEntry
    registers: RegistersEntry
    memory: list[Span]
    patch_slots: list[PatchSlotEntry]
    inputs: list[InputEntry]
    vcpus: int = Field(ge=1)
    cmdline: str
    gic: GicEntry
    devices: list[DeviceEntry]
    regions: list[RegionEntry] = Field(
        description="the whole live map: reserved ranges, GIC, devices and RAM, by address"
    )


def manifest_for(b: Build, extra_inputs: Sequence[InputFile] = ()) -> Manifest:
    """The manifest of a build that placed a kernel, as a validated model."""
    return Manifest.model_validate(manifest_data(b, extra_inputs))


def to_json(m: Manifest) -> bytes:
    """The manifest as JSON text: fixed key order, two-space indent, trailing newline."""
    return (json.dumps(m.model_dump(mode="json"), indent=2) + "\n").encode()


def schema() -> dict[str, object]:
    """The manifest's JSON Schema (draft 2020-12, as pydantic writes it)."""
    s = Manifest.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **s}


def schema_json() -> bytes:
    return (json.dumps(schema(), indent=2) + "\n").encode()
