"""Booting a build under QEMU's ``virt`` board with fdtgen's own DTB and placement.

QEMU's ``-kernel``/``-initrd``/``-dtb`` path places the files itself and
rewrites ``/memory`` and ``/chosen``; here nothing is patched. Every file goes
in with QEMU's generic loader (docs/system/generic-loader.rst: ``-device
loader,file=...,addr=...,force-raw=on``) at the address fdtgen's placement
chose, a :mod:`fdtgen.qemu.trampoline` stub sets the boot registers, and a
file-less loader (``-device loader,addr=...,cpu-num=0``) makes CPU 0 start at
the stub. Secondary CPUs stay off until Linux calls PSCI CPU_ON, which QEMU
answers over HVC when EL2 and EL3 are off.

That only works where the DTB describes QEMU's devices at QEMU's addresses.
The map of QEMU 7.2 ``-M virt,gic-version=3`` (``hw/arm/virt.c``,
``base_memmap`` and ``a15irqmap``)::

    0x0800_0000 +64 KiB      GICv3 distributor
    0x080A_0000 +0xF6_0000   GICv3 redistributors, 128 KiB each (123 vCPUs)
    0x0900_0000 +4 KiB       PL011, SPI 1
    0x0901_0000 +4 KiB       PL031 RTC, SPI 2
    0x0902_0000 +0x18        fw-cfg, no interrupt
    0x0903_0000 +4 KiB       PL061 GPIO, SPI 7
    0x0A00_0000 +32 x 0x200  virtio-mmio transport i: SPI 16+i
    0x4000_0000 ..           RAM (-m), at most 255 GiB below the high PCIe window

plus the architected timer on PPIs 13, 14, 11, 10. The rows for the PL011,
PL031, fw-cfg and PL061 are their kinds' ``qemu`` in
:mod:`fdtgen.template.registry`. :func:`check_machine` refuses a layout that
differs. Two more facts shape the command:

* Without ``-kernel``, QEMU still puts its own DTB, a 1 MiB ROM blob, at the
  start of RAM; a loader file overlapping it makes QEMU exit ("Some ROM
  regions are overlapping"). Linux never sees that blob (x0 points at ours).
* ``-device virtio-*-device`` without ``bus=`` plugs into the highest free
  transport (the last-created bus is found first), and Linux skips transports
  with no backend, so a DTB must describe the transports the devices land on.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from fdtgen.errors import ConfigError, ImageError, PlacementError
from fdtgen.irq import Ppi, Spi
from fdtgen.layout import Layout
from fdtgen.qemu.pci import check_gicv2, check_pcie, check_virtio_pci, qemu_machine
from fdtgen.ranges import Range
from fdtgen.spec import GICV3_REDIST_STRIDE, Trigger
from fdtgen.template.registry import layout_kinds
from fdtgen.units import GiB, KiB, MiB, align_up, fmt_size, is_aligned

QEMU_BINARY = "qemu-system-aarch64"
QEMU_MACHINE = "virt,gic-version=3"
QEMU_CPU = "cortex-a57"  # under TCG, -cpu max emulates pointer auth and boots ~6x slower

GICD = Range(0x0800_0000, 64 * KiB)
GICR = Range(0x080A_0000, 0xF6_0000)  # "up to 2*64kB*123 CPUs"
GICR2 = Range(0x40_0000_0000, 64 * MiB)  # VIRT_HIGH_GIC_REDIST2: the next 512, above 255 GiB of RAM
GICR_VCPUS = GICR.size // GICV3_REDIST_STRIDE  # 123
MAX_VCPUS = 512  # the virt board's max_cpus with a GICv3
ITS = Range(0x0808_0000, 128 * KiB)
TIMER_PPIS = (Ppi(13), Ppi(14), Ppi(11), Ppi(10))  # secure, non-secure, virtual, hypervisor
PMU_PPI = Ppi(7)  # VIRTUAL_PMU_IRQ
VIRTIO_BASE = 0x0A00_0000
VIRTIO_STRIDE = 0x200
VIRTIO_TRANSPORTS = 32
VIRTIO_FIRST_SPI = 16
RAM_BASE = 0x4000_0000
RAM_LIMIT = 255 * GiB  # virt.c LEGACY_RAMLIMIT_GB
DTB_ROM = Range(RAM_BASE, 1 * MiB)  # QEMU's own DTB blob when booting without -kernel
PSCI_METHOD = "hvc"
GIC_SPI_TRIGGERS = (Trigger.EDGE_RISING, Trigger.LEVEL_HIGH)  # arm,gic-v3.yaml: 1 or 4


# QEMU options that would replace what fdtgen provides.
_REFUSED_OPTIONS = {
    "-kernel": "fdtgen loads the kernel itself (--kernel)",
    "-initrd": "fdtgen loads the initrd itself (--initrd)",
    "-dtb": "the DTB is fdtgen's build",
    "-append": "the command line lives in the DTB (--cmdline)",
    "-smp": "the vCPU count comes from the machine (--vcpus)",
    "-m": "QEMU's RAM size is --qemu-memory",
    "-machine": "the board is virt with the template's GIC options",
    "-M": "the board is virt with the template's GIC options",
}
_VIRTIO_BUS = "virtio-mmio-bus."


@dataclass(frozen=True, slots=True)
class Load:
    """A file QEMU's generic loader copies to guest-physical ``base`` (``size`` bytes)."""

    tag: str
    path: str
    base: int
    size: int

    @property
    def range(self) -> Range:
        return Range(self.base, self.size)


def transport_base(index: int) -> int:
    return VIRTIO_BASE + index * VIRTIO_STRIDE


def check_machine(layout: Layout, psci_method: str) -> None:
    """Refuse a layout whose devices are not where QEMU virt has them.

    Raises :class:`ConfigError` naming the region, its value and QEMU's.
    """
    t = layout.template
    where = f"template {t.name!r}"
    hint = (
        "only a template whose devices sit where QEMU virt's are can boot under QEMU "
        "(e.g. qemu-virt)"
    )

    def refuse(what: str) -> ConfigError:
        return ConfigError(f"qemu: {where}: {what}; {hint}")

    g = t.gic
    if layout.gic_dist != GICD:
        raise refuse(f"'gic-dist' {layout.gic_dist} is not QEMU's GIC distributor {GICD}")
    if g.version == 2:
        check_gicv2(t, layout.vcpus, refuse)
    else:
        _check_gicv3(layout, refuse)
    check_pcie(t, refuse)
    if tuple(t.timer_ppis) != TIMER_PPIS:
        shown = ", ".join(str(p.number) for p in t.timer_ppis)
        raise refuse(f"timer PPIs {shown} are not QEMU's 13, 14, 11, 10")
    if t.pmu is not None and t.pmu.ppi != PMU_PPI:
        raise refuse(f"PMU {t.pmu.ppi} is not QEMU's {PMU_PPI}")
    if psci_method != PSCI_METHOD:
        raise refuse(
            f"psci method {psci_method!r} is not {PSCI_METHOD!r} (QEMU answers PSCI on HVC)"
        )
    kinds = layout_kinds(t)
    for d in (*layout.devices, *layout.unwired):
        if d.spi is not None and d.trigger not in GIC_SPI_TRIGGERS:
            raise refuse(
                f"{d.tag!r} {d.spi} trigger {d.trigger.label} is not edge-rising or level-high "
                "(arm,gic-v3.yaml)"
            )
        if d.kind == "virtio":
            index, rem = divmod(d.range.base - VIRTIO_BASE, VIRTIO_STRIDE)
            if rem or not 0 <= index < VIRTIO_TRANSPORTS or d.range.size > VIRTIO_STRIDE:
                raise refuse(
                    f"{d.tag!r} {d.range} is not one of QEMU's virtio-mmio transports "
                    f"{VIRTIO_BASE:#x} + i x {VIRTIO_STRIDE:#x} (i < {VIRTIO_TRANSPORTS})"
                )
            if d.spi != Spi(VIRTIO_FIRST_SPI + index):
                raise refuse(
                    f"{d.tag!r} at {d.range.base:#x} has {d.spi}, but QEMU wires transport "
                    f"{index} to SPI {VIRTIO_FIRST_SPI + index}"
                )
            continue
        kind = kinds[d.kind]
        fixed = kind.qemu
        if fixed is None:
            raise refuse(f"{d.tag!r} ({kind.name}) {d.range} has no counterpart on QEMU virt")
        if (
            d.range.base != fixed.range.base
            or not fixed.range.contains(d.range)
            or d.spi != fixed.spi
        ):
            raise refuse(
                f"{d.tag!r} {d.range} {_irq(d.spi)} is not QEMU's {fixed.name} {fixed.range} "
                f"{_irq(fixed.spi)}"
            )


def _check_gicv3(layout: Layout, refuse: Callable[[str], ConfigError]) -> None:
    """The ITS, the redistributor stride and regions and the vCPU count are QEMU's."""
    g = layout.template.gic
    if g.its is not None and g.its != ITS:
        raise refuse(f"'gic-its' {g.its} is not QEMU's ITS {ITS}")
    if layout.redist_stride != GICV3_REDIST_STRIDE:
        raise refuse(
            f"redistributor stride {layout.redist_stride:#x} is not QEMU's {GICV3_REDIST_STRIDE:#x}"
        )
    if layout.vcpus > MAX_VCPUS:
        raise refuse(f"vcpus {layout.vcpus} is over QEMU virt's {MAX_VCPUS}")
    # QEMU creates min(vcpus, 123) frames in GICR and the rest in GICR2; Linux
    # walks each DT range until GICR_TYPER.Last, so each range must start at
    # QEMU's region and hold every frame QEMU put there.
    counts = (min(layout.vcpus, GICR_VCPUS), max(layout.vcpus - GICR_VCPUS, 0))
    wanted = [(w, n) for w, n in zip((GICR, GICR2), counts, strict=True) if n]
    ok = len(layout.gic_redist) == len(wanted) and all(
        r.base == w.base and w.contains(r) and r.size >= n * GICV3_REDIST_STRIDE
        for r, (w, n) in zip(layout.gic_redist, wanted, strict=False)
    )
    if not ok:
        shown = ", ".join(str(r) for r in layout.gic_redist) or "none"
        need = ", ".join(
            f"{n} x {GICV3_REDIST_STRIDE:#x} from {w.base:#x} within {w}" for w, n in wanted
        )
        raise refuse(f"'gic-redist' {shown} does not cover QEMU's redistributors ({need})")


def _irq(spi: Spi | None) -> str:
    return "no interrupt" if spi is None else str(spi)


def qemu_ram(layout: Layout, qemu_memory: int | None) -> int:
    """QEMU's ``-m`` in bytes: ``qemu_memory``, or just enough for the DTB's RAM.

    Every RAM range of the DTB must lie inside QEMU's RAM, or the guest would
    use memory that does not exist.
    """
    ram_end = max(r.end for r in layout.ram)
    need = ram_end - RAM_BASE
    size = align_up(need, MiB) if qemu_memory is None else qemu_memory
    if size <= 0 or not is_aligned(size, MiB):
        raise ConfigError(f"--qemu-memory: {size:#x} is not a positive multiple of 1 MiB")
    if size > RAM_LIMIT:
        raise ConfigError(
            f"--qemu-memory: {fmt_size(size)} is over QEMU virt's {fmt_size(RAM_LIMIT)} limit"
        )
    qemu = Range(RAM_BASE, size)
    for r in layout.ram:
        if not qemu.contains(r):
            raise ConfigError(
                f"--qemu-memory: the DTB's RAM {r} is not inside QEMU's RAM {qemu} "
                f"(-m {fmt_size(size)}); give at least {fmt_size(align_up(need, MiB))}"
            )
    return size


def check_loads(loads: Sequence[Load], ram_size: int) -> None:
    """Every loaded file lies in QEMU's RAM, outside its DTB ROM, overlapping no other."""
    qemu = Range(RAM_BASE, ram_size)
    for item in loads:
        r = item.range
        if not qemu.contains(r):
            raise PlacementError(f"qemu: {item.tag} {r} is not inside QEMU's RAM {qemu}")
        if r.overlaps(DTB_ROM):
            raise PlacementError(
                f"qemu: {item.tag} {r} overlaps QEMU's own DTB ROM {DTB_ROM}, which QEMU places "
                "at the start of RAM even without -kernel"
            )
    ordered = sorted(loads, key=lambda item: (item.base, item.tag))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.range.overlaps(b.range):
            raise PlacementError(f"qemu: {a.tag} {a.range} overlaps {b.tag} {b.range}")


def trampoline_base(
    ram: Sequence[Range], taken: Sequence[Range], size: int, align: int = 4 * KiB
) -> int:
    """The lowest ``align``-aligned address in ``ram`` for ``size`` bytes, clear
    of QEMU's DTB ROM and of every range in ``taken``."""
    blocked = [DTB_ROM, *taken]
    for r in sorted(ram):
        base = align_up(r.base, align)
        while base + size <= r.end:
            hit = next((b for b in blocked if Range(base, size).overlaps(b)), None)
            if hit is None:
                return base
            base = align_up(hit.end, align)
    raise PlacementError(f"qemu: no free {size:#x}-byte slot in RAM for the boot trampoline")


def virtio_transports(extra: Sequence[str]) -> list[tuple[str, int]]:
    """``(device driver, transport index)`` for each ``-device virtio-*-device``.

    Devices with ``bus=virtio-mmio-bus.N`` take transport N; the others take
    the highest free transport, in command-line order, as QEMU does.
    """
    devices: list[tuple[str, int | None]] = []
    for value in _option_values(extra, "-device"):
        driver, *props = value.split(",")
        if not (driver.startswith("virtio-") and driver.endswith("-device")):
            continue
        bus = next((p[4:] for p in props if p.startswith("bus=")), None)
        index = None
        if bus is not None:
            if not bus.startswith(_VIRTIO_BUS) or not bus[len(_VIRTIO_BUS) :].isdigit():
                raise ConfigError(
                    f"qemu args: -device {value}: bus {bus!r} is not virtio-mmio-bus.N"
                )
            index = int(bus[len(_VIRTIO_BUS) :])
        devices.append((driver, index))
    used = {i for _, i in devices if i is not None}
    out: list[tuple[str, int]] = []
    free = [i for i in reversed(range(VIRTIO_TRANSPORTS)) if i not in used]
    for driver, index in devices:
        if index is None:
            if not free:
                raise ConfigError(
                    f"qemu args: -device {driver}: all {VIRTIO_TRANSPORTS} virtio-mmio "
                    "transports are taken"
                )
            index = free.pop(0)
        out.append((driver, index))
    return out


def check_extra_args(extra: Sequence[str], layout: Layout) -> None:
    """Refuse options that would replace fdtgen's, and virtio devices the DTB does not describe."""
    for arg in extra:
        option = "-" + arg.lstrip("-").split("=", 1)[0] if arg.startswith("-") else None
        if option in _REFUSED_OPTIONS:
            raise ConfigError(f"qemu args: {arg} is not allowed: {_REFUSED_OPTIONS[option]}")
    drivers = [v.split(",")[0] for v in _option_values(extra, "-device")]
    check_virtio_pci(layout.template, [d for d in drivers if d.startswith("virtio-")])
    described = {d.range.base for d in layout.virtio}
    for driver, index in virtio_transports(extra):
        base = transport_base(index)
        if base not in described:
            raise ConfigError(
                f"qemu args: -device {driver} goes to virtio-mmio transport {index} at {base:#x}, "
                f"which the DTB does not describe (it has {len(described)} transport(s) from "
                f"{VIRTIO_BASE:#x}); QEMU fills the highest free transport first: describe all "
                f"{VIRTIO_TRANSPORTS} (--virtio {VIRTIO_TRANSPORTS}) or add bus={_VIRTIO_BUS}N"
            )


def _option_values(args: Sequence[str], option: str) -> list[str]:
    values = []
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if "-" + name.lstrip("-") != option:
            continue
        if eq:
            values.append(value)
        elif i + 1 < len(args):
            values.append(args[i + 1])
    return values


def loader_path(path: str) -> str:
    """QEMU option values separate on commas; a literal comma is written twice."""
    return path.replace(",", ",,")


def command(
    layout: Layout,
    loads: Sequence[Load],
    pc: int,
    ram_size: int,
    extra: Sequence[str] = (),
    binary: str = QEMU_BINARY,
) -> list[str]:
    """The ``qemu-system-aarch64`` argv: the board, the loaders, CPU 0's start, ``extra``."""
    argv = [
        binary,
        "-M", qemu_machine(layout.template),
        "-cpu", QEMU_CPU,
        "-smp", str(layout.vcpus),
        "-m", f"{ram_size // MiB}M",
        "-nodefaults",
        "-display", "none",
        "-serial", "stdio",
        "-no-reboot",
    ]  # fmt: skip
    for item in sorted(loads, key=lambda item: (item.base, item.tag)):
        argv += [
            "-device",
            f"loader,file={loader_path(item.path)},addr={item.base:#x},force-raw=on",
        ]
    argv += ["-device", f"loader,addr={pc:#x},cpu-num=0"]
    return argv + list(extra)


def shell_command(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def image_writer(path: str, size: int, limit: int | None = None) -> Callable[[BinaryIO], None]:
    """What writes the raw Image inside compressed kernel ``path`` (gzip or EFI
    zboot) to an open file: the one inflater placement reads it with
    (:func:`fdtgen.boot.image.read_kernel`), streamed a chunk at a time, at most
    ``limit`` bytes; the Image must be the ``size`` bytes the manifest placed.
    """
    from fdtgen.boot.image import kernel_what, read_kernel

    def write(f: BinaryIO) -> None:
        written = 0

        def sink(chunk: bytes) -> None:
            nonlocal written
            f.write(chunk)
            written += len(chunk)

        read_kernel(path, limit, sink)
        if written != size:
            raise ImageError(
                f"{kernel_what(path)}: decompressed to {written:#x} bytes, "
                f"but the manifest says {size:#x}"
            )

    return write
