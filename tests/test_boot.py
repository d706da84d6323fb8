"""``fdtgen qemu``: the command it builds, what it refuses, and real arm64 boots.

The boot tests (marker ``boot``) start Debian's arm64 cloud kernel under QEMU
TCG with no ``-kernel``/``-initrd``/``-dtb``: QEMU's generic loader puts the
Image, a busybox initramfs built here, fdtgen's DTB and its trampoline where
fdtgen's placement says. They then assert what the guest reports about
itself: CPUs, RAM, command line, initrd, ``/proc/device-tree`` and real
virtio-mmio devices bound through the DTB's nodes and interrupts.

QEMU's virt map itself is checked against QEMU's own ``dumpdtb`` output.
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import shutil
import struct
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import libfdt
import pytest

from fdtgen.debian import kit as debian
from fdtgen.debian import modinfo
from fdtgen.qemu import command as qemu
from fdtgen.qemu.trampoline import TRAMPOLINE_SIZE
from fdtgen.template.load import templates_dir
from fdtgen.template.registry import KINDS

from .bootkit import guest, initramfs
from .conftest import ROOT
from .conftest import run_fdtgen as fdtgen
from .treeview import via_libfdt

MiB = 1 << 20
GiB = 1 << 30
QEMU = shutil.which("qemu-system-aarch64")
DISK_MARKER_OFFSET = 1024 * 512  # the guest reads this sector (dd skip=1024)
MODULES = ["virtio_mmio", "virtio_pci", "virtio_blk", "virtio_rng"]


def require_qemu() -> str:
    if QEMU is None:
        pytest.fail("qemu-system-aarch64 is required (apt-get install qemu-system-arm)")
    return QEMU


def cells(value: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{len(value) // 4}I", value)


def reg_pairs(value: bytes) -> list[tuple[int, int]]:
    c = cells(value)
    return [((c[i] << 32) | c[i + 1], (c[i + 2] << 32) | c[i + 3]) for i in range(0, len(c), 4)]


def props(flat: dict[str, list[tuple[str, bytes]]], path: str) -> dict[str, bytes]:
    return dict(flat[path])


# ---------------------------------------------------------------------------
# QEMU's own map


@pytest.fixture(scope="module")
def qemu_dtb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, bytes]]]:
    """QEMU's DTB for -smp 130 (so both redistributor regions exist), parsed by libfdt."""
    out = tmp_path_factory.mktemp("dumpdtb") / "qemu.dtb"
    p = subprocess.run(
        [require_qemu(), "-M", f"{qemu.QEMU_MACHINE},dumpdtb={out}", "-cpu", qemu.QEMU_CPU,
         "-smp", "130", "-m", "256M", "-nodefaults", "-display", "none"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return via_libfdt(out.read_bytes())


def test_fixed_devices_are_where_qemu_puts_them(qemu_dtb):
    names = {"pl011": "/pl011@9000000", "pl031": "/pl031@9010000", "fw-cfg": "/fw-cfg@9020000",
             "pl061": "/pl061@9030000"}  # fmt: skip
    fixed_devices = {k.name: k.qemu for k in KINDS.values() if k.qemu is not None}
    assert sorted(names) == sorted(fixed_devices)
    for kind, path in names.items():
        node = props(qemu_dtb, path)
        fixed = fixed_devices[kind]
        assert reg_pairs(node["reg"]) == [(fixed.range.base, fixed.range.size)], kind
        if fixed.spi is None:
            assert "interrupts" not in node
        else:
            assert cells(node["interrupts"])[:2] == (0, fixed.spi.number), kind


def test_gic_its_timer_pmu_and_psci_are_qemus(qemu_dtb):
    gic = props(qemu_dtb, "/intc@8000000")
    assert reg_pairs(gic["reg"]) == [
        (qemu.GICD.base, qemu.GICD.size),
        (qemu.GICR.base, qemu.GICR.size),
        (qemu.GICR2.base, qemu.GICR2.size),
    ]
    assert qemu.GICR_VCPUS == 123
    its = props(qemu_dtb, "/intc@8000000/its@8080000")
    assert reg_pairs(its["reg"]) == [(qemu.ITS.base, qemu.ITS.size)]
    timer = cells(props(qemu_dtb, "/timer")["interrupts"])
    assert [timer[i + 1] for i in range(0, len(timer), 3)] == [p.number for p in qemu.TIMER_PPIS]
    assert cells(props(qemu_dtb, "/pmu")["interrupts"])[:2] == (1, qemu.PMU_PPI.number)
    assert props(qemu_dtb, "/psci")["method"] == qemu.PSCI_METHOD.encode() + b"\0"
    mem = props(qemu_dtb, "/memory@40000000")
    assert reg_pairs(mem["reg"])[0][0] == qemu.RAM_BASE


def test_virtio_transports_are_qemus(qemu_dtb):
    found = []
    for path, node in qemu_dtb.items():
        if path.startswith("/virtio_mmio@"):
            p = dict(node)
            ((base, size),) = reg_pairs(p["reg"])
            kind, spi, _flags = cells(p["interrupts"])
            found.append((base, size, kind, spi))
    expected = [
        (qemu.transport_base(i), qemu.VIRTIO_STRIDE, 0, qemu.VIRTIO_FIRST_SPI + i)
        for i in range(qemu.VIRTIO_TRANSPORTS)
    ]
    assert sorted(found) == expected


# ---------------------------------------------------------------------------
# The command, without booting


def fake_image(path: Path, image_size: int = 6 * MiB, size: int = 64 * 1024) -> Path:
    """A raw arm64 Image header (booting.rst) and filler: enough to place and load."""
    header = struct.pack(
        "<IIQQQQQQ4sI", 0x91005A4D, 0x14000000, 0, image_size, 0xA, 0, 0, 0, b"ARM\x64", 0
    )
    path.write_bytes(header + bytes(size - len(header)))
    return path


def loader_args(argv: list[str]) -> list[dict[str, str]]:
    out = []
    for i, arg in enumerate(argv[:-1]):
        if arg == "-device" and argv[i + 1].startswith("loader,"):
            out.append(dict(kv.split("=", 1) for kv in argv[i + 1].split(",")[1:]))
    return out


def test_print_loads_every_file_at_the_manifest_address(tmp_path):
    kernel = fake_image(tmp_path / "Image")
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(os.urandom(300_000))
    work = tmp_path / "work"
    common = ["--template", "qemu-virt", "--vcpus", "3", "--memory", "512MiB",
              "--kernel", str(kernel), "--initrd", str(initrd)]  # fmt: skip
    r = fdtgen(
        "qemu", *common, "--workdir", str(work), "--print", "--", "-device", "virtio-rng-device"
    )
    assert r.returncode == 0, r.stderr
    argv = shlex.split(r.stdout)
    built = fdtgen(
        "build", *common, "-o", str(tmp_path / "b.dtb"), "--manifest", str(tmp_path / "m.json")
    )
    assert built.returncode == 0, built.stderr
    manifest = json.loads((tmp_path / "m.json").read_text())

    for option in ("-kernel", "-initrd", "-dtb", "-append"):
        assert option not in argv
    assert argv[:3] == ["qemu-system-aarch64", "-M", "virt,gic-version=3"]
    assert argv[argv.index("-smp") + 1] == "3" and argv[argv.index("-m") + 1] == "512M"
    assert argv[-2:] == ["-device", "virtio-rng-device"]
    loaders = loader_args(argv)
    by_file = {Path(x["file"]).name: x for x in loaders if "file" in x}
    assert all(x["force-raw"] == "on" for x in by_file.values())
    assert int(by_file["Image"]["addr"], 16) == manifest["kernel"]["load_address"]
    assert int(by_file["initrd.img"]["addr"], 16) == manifest["initrd"]["address"]
    assert int(by_file["guest.dtb"]["addr"], 16) == manifest["dtb"]["address"]
    (start,) = [x for x in loaders if "cpu-num" in x]
    assert start["cpu-num"] == "0" and "file" not in start
    assert start["addr"] == by_file["trampoline.bin"]["addr"]

    # The DTB QEMU loads is the one `fdtgen build` writes, and libfdt accepts it.
    dtb = (work / "guest.dtb").read_bytes()
    assert dtb == (tmp_path / "b.dtb").read_bytes()
    buf = bytearray(dtb)
    assert libfdt.fdt_check_full(buf, len(buf)) == 0
    chosen = props(via_libfdt(dtb), "/chosen")
    assert struct.unpack(">Q", chosen["linux,initrd-start"])[0] == manifest["initrd"]["address"]
    assert (
        struct.unpack(">Q", chosen["linux,initrd-end"])[0]
        == manifest["initrd"]["address"] + initrd.stat().st_size
    )
    assert json.loads((work / "manifest.json").read_text())["registers"] == manifest["registers"]

    # The trampoline branches to the manifest's pc with x0 = the DTB, and sits
    # in RAM clear of every file and of QEMU's own DTB ROM.
    stub = (work / "trampoline.bin").read_bytes()
    assert struct.unpack_from("<2Q", stub, 24) == (
        manifest["registers"]["x0"],
        manifest["registers"]["pc"],
    )
    stub_base = int(start["addr"], 16)
    spans = [(manifest["kernel"]["load_address"], manifest["kernel"]["reserved"]),
             (manifest["initrd"]["address"], manifest["initrd"]["size"]),
             (manifest["dtb"]["address"], manifest["dtb"]["reserved"]),
             (qemu.RAM_BASE, 1 * MiB)]  # fmt: skip
    for base, size in spans:
        assert stub_base + TRAMPOLINE_SIZE <= base or base + size <= stub_base
    assert qemu.RAM_BASE <= stub_base < qemu.RAM_BASE + 512 * MiB


def test_gzip_kernel_is_decompressed_and_the_image_loaded(tmp_path):
    raw = fake_image(tmp_path / "Image").read_bytes()
    (tmp_path / "Image.gz").write_bytes(gzip.compress(raw))
    work = tmp_path / "work"
    r = fdtgen(
        "qemu",
        "--template",
        "qemu-virt",
        "--kernel",
        str(tmp_path / "Image.gz"),
        "--workdir",
        str(work),
        "--print",
    )
    assert r.returncode == 0, r.stderr
    assert (work / "Image").read_bytes() == raw
    files = [x["file"] for x in loader_args(shlex.split(r.stdout)) if "file" in x]
    assert str(work / "Image") in files and str(tmp_path / "Image.gz") not in files


def test_commas_in_paths_are_doubled_for_qemu(tmp_path):
    kernel = fake_image(tmp_path / "Image,v1")
    r = fdtgen(
        "qemu",
        "--template",
        "qemu-virt",
        "--kernel",
        str(kernel),
        "--workdir",
        str(tmp_path / "w"),
        "--print",
    )
    assert r.returncode == 0, r.stderr
    assert f"loader,file={tmp_path}/Image,,v1,addr=" in r.stdout


def test_arguments_after_the_separator_go_to_qemu_not_to_config(tmp_path):
    kernel = fake_image(tmp_path / "Image")
    cfg = tmp_path / "vm.toml"
    cfg.write_text('template = "qemu-virt"\nvcpus = 2\n')
    for args in (
        ["--template", "qemu-virt", "--kernel", str(kernel)],
        [str(cfg), "--kernel", str(kernel)],
    ):
        r = fdtgen(
            "qemu",
            *args,
            "--workdir",
            str(tmp_path / "w"),
            "--print",
            "--",
            "-name",
            "guest,debug-threads=on",
        )
        assert r.returncode == 0, r.stderr
        argv = shlex.split(r.stdout)
        assert argv[-2:] == ["-name", "guest,debug-threads=on"]
    assert argv[argv.index("-smp") + 1] == "2"


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("fdtgen: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr


def test_a_template_whose_devices_are_elsewhere_is_refused(tmp_path):
    kernel = fake_image(tmp_path / "Image")
    work = tmp_path / "w"
    err = one_line_error(
        fdtgen(
            "qemu",
            "--template",
            "squib",
            "--kernel",
            str(kernel),
            "--workdir",
            str(work),
            "--print",
        )
    )
    assert (
        "template 'squib': 'uart0' [0xe0a0000, 0xe0a1000) SPI 1 is not QEMU's PL011 "
        "[0x9000000, 0x9001000)" in err
    )
    assert not work.exists()


def squib_at_qemu_addresses(tmp_path: Path, **changes: str) -> Path:
    """squib's template with its devices moved where QEMU virt has them."""
    text = (templates_dir() / "squib.toml").read_text()
    edits = {
        "redist_end = 0x0E0A_0000": "redist_end = 0x0900_0000",
        "base = 0x0E0A_0000": "base = 0x0900_0000",
        "base = 0x0F00_0000": "base = 0x0A00_0000",
        'stride = "4KiB"': "stride = 0x200",
        "base = 0x8000_0000": "base = 0x4000_0000",
        "max_end = 0x0100_0000_0000": "max_end = 0x40_0000_0000",
        'name = "squib"': 'name = "squib-on-qemu"',
        **changes,
    }
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "squib-on-qemu.toml"
    path.write_text(text)
    return path


def test_a_user_template_with_qemus_addresses_is_accepted(tmp_path):
    kernel = fake_image(tmp_path / "Image")
    template = squib_at_qemu_addresses(tmp_path)
    r = fdtgen(
        "qemu",
        "--template",
        str(template),
        "--kernel",
        str(kernel),
        "--workdir",
        str(tmp_path / "w"),
        "--print",
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "changes, message",
    [
        pytest.param(
            {"first_spi = 16": "first_spi = 17"},
            "'virtio-0' at 0xa000000 has SPI 17, but QEMU wires transport 0 to SPI 16",
            id="virtio-spi",
        ),
        pytest.param(
            {'psci_method = "hvc"': 'psci_method = "smc"'},
            "psci method 'smc' is not 'hvc'",
            id="psci-smc",
        ),
        pytest.param(
            {"ppis = [13, 14, 11, 10]": "ppis = [13, 14, 11, 12]"},
            "timer PPIs 13, 14, 11, 12 are not QEMU's",
            id="timer",
        ),
        pytest.param(
            {"[uart]\n": '[uart]\nkind = "ns16550a"\n'},
            "'uart0' (ns16550a) [0x9000000, 0x9001000) has no counterpart on QEMU virt",
            id="uart-kind",
        ),
    ],
)
def test_templates_that_differ_from_qemu_are_refused(tmp_path, changes, message):
    kernel = fake_image(tmp_path / "Image")
    template = squib_at_qemu_addresses(tmp_path, **changes)
    err = one_line_error(
        fdtgen("qemu", "--template", str(template), "--kernel", str(kernel), "--print")
    )
    assert message in err


@pytest.mark.parametrize(
    "extra, message",
    [
        pytest.param(["-kernel", "x"], "-kernel is not allowed", id="kernel"),
        pytest.param(["-dtb", "x.dtb"], "-dtb is not allowed", id="dtb"),
        pytest.param(["--append", "quiet"], "--append is not allowed", id="append"),
        pytest.param(["-smp", "4"], "-smp is not allowed", id="smp"),
        pytest.param(["-m", "1G"], "-m is not allowed", id="memory"),
        pytest.param(
            ["-device", "virtio-rng-device,bus=pci.0"],
            "bus 'pci.0' is not virtio-mmio-bus.N",
            id="bus",
        ),
    ],
)
def test_qemu_arguments_that_replace_fdtgens_are_refused(tmp_path, extra, message):
    kernel = fake_image(tmp_path / "Image")
    err = one_line_error(
        fdtgen("qemu", "--template", "qemu-virt", "--kernel", str(kernel), "--print", "--", *extra)
    )
    assert message in err


def test_a_virtio_device_on_an_undescribed_transport_is_refused(tmp_path):
    kernel = fake_image(tmp_path / "Image")
    work = str(tmp_path / "w")
    base = ["--template", "qemu-virt", "--virtio", "2", "--kernel", str(kernel), "--workdir", work]
    base += ["--print", "--"]
    err = one_line_error(fdtgen("qemu", *base, "-device", "virtio-rng-device"))
    assert (
        "virtio-rng-device goes to virtio-mmio transport 31 at 0xa003e00, "
        "which the DTB does not describe" in err
    )
    r = fdtgen("qemu", *base, "-device", "virtio-rng-device,bus=virtio-mmio-bus.1")
    assert r.returncode == 0, r.stderr


def test_transports_fill_from_the_highest_free_one():
    extra = ["-device", "virtio-blk-device,drive=d0",
             "-device", "virtio-net-device,bus=virtio-mmio-bus.31",
             "-device=virtio-rng-device", "-device", "loader,addr=0x0"]  # fmt: skip
    assert qemu.virtio_transports(extra) == [
        ("virtio-blk-device", 30),
        ("virtio-net-device", 31),
        ("virtio-rng-device", 29),
    ]


def test_qemu_memory_below_the_dtb_memory_is_refused_and_nothing_written(tmp_path):
    kernel = fake_image(tmp_path / "Image")
    work = tmp_path / "w"
    err = one_line_error(fdtgen("qemu", "--template", "qemu-virt", "--memory", "1GiB",
                                "--qemu-memory", "512MiB", "--kernel", str(kernel),
                                "--workdir", str(work), "--print"))  # fmt: skip
    assert (
        "--qemu-memory: the DTB's RAM [0x40000000, 0x80000000) is not inside "
        "QEMU's RAM [0x40000000, 0x60000000)" in err
    )
    assert not work.exists()


def test_a_declared_kernel_cannot_boot(tmp_path):
    cfg = tmp_path / "vm.toml"
    cfg.write_text('template = "qemu-virt"\n[kernel]\nsize = 1048576\n')
    err = one_line_error(fdtgen("qemu", str(cfg), "--print"))
    assert "kernel: fdtgen qemu loads files; a declared kernel (a size) cannot boot" in err


# ---------------------------------------------------------------------------
# Real boots


@pytest.fixture(scope="session")
def kit() -> debian.Kit:
    return debian.kit()


@pytest.fixture(scope="session")
def modules(kit: debian.Kit) -> list[modinfo.Module]:
    return modinfo.load_order(kit.modules, MODULES)


def test_module_dependencies_come_from_modinfo(kit, modules):
    names = [m.name for m in modules]
    assert set(MODULES) <= set(names)
    for i, m in enumerate(modules):
        assert set(m.depends) <= set(names[:i]), f"{m.name} loads before {m.depends}"
    assert {"virtio", "virtio_ring"} <= set(
        next(m for m in modules if m.name == "virtio_mmio").depends
    )
    assert not (kit.modules / "modules.dep").exists()


def test_initramfs_is_a_cpio_archive_the_cpio_tool_reads(tmp_path, kit, modules):
    cpio = shutil.which("cpio")
    if cpio is None:
        pytest.fail("cpio is required (apt-get install cpio)")
    archive = gzip.decompress(initramfs.initramfs(kit.busybox.read_bytes(), modules, "M-1"))
    listing = subprocess.run(
        [cpio, "-itv"], input=archive, capture_output=True, check=True
    ).stdout.decode()
    names = [line.split()[-1] for line in listing.splitlines()]
    assert {"init", "bin/busybox", "dev/console", *(f"lib/modules/{m}.ko" for m in MODULES)} <= set(
        names
    )
    assert any(
        line.startswith("crw") and line.endswith("dev/console") for line in listing.splitlines()
    )
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run([cpio, "-id", "--quiet"], input=archive, cwd=out, check=True)
    assert (out / "bin" / "busybox").read_bytes() == kit.busybox.read_bytes()
    assert os.access(out / "init", os.X_OK)
    assert b'say initrd "M-1"' in (out / "init").read_bytes()


@dataclass(frozen=True)
class Case:
    vcpus: int
    memory: int
    qemu_memory: int
    virtio: int = 32
    pinned: bool = False  # place the devices with bus=virtio-mmio-bus.N
    gzip_kernel: bool = False

    @property
    def transports(self) -> dict[str, int]:
        # QEMU fills the highest free transport first, in command-line order.
        return (
            {"virtio_blk": 2, "virtio_rng": 3}
            if self.pinned
            else {"virtio_blk": 31, "virtio_rng": 30}
        )


CASES = [
    pytest.param(Case(1, 256 * MiB, 512 * MiB), id="1cpu-256MiB"),
    pytest.param(Case(2, 1 * GiB, 2 * GiB), id="2cpu-1GiB"),
    pytest.param(
        Case(4, 512 * MiB, 1 * GiB, virtio=4, pinned=True, gzip_kernel=True), id="4cpu-512MiB-gzip"
    ),
]


@pytest.mark.boot
@pytest.mark.parametrize("case", CASES)
def test_debian_kernel_boots_from_fdtgens_dtb_and_placement(tmp_path, kit, modules, case):
    require_qemu()
    token = uuid.uuid4().hex[:12]
    initrd_marker = f"INITRD-{token}"
    disk_marker = f"DISK-{token}"
    cmdline = f"console=ttyAMA0 earlycon panic=-1 fdtgen.marker=CMD-{token}"
    (tmp_path / "initrd.gz").write_bytes(
        initramfs.initramfs(kit.busybox.read_bytes(), modules, initrd_marker)
    )
    disk = bytearray(1 * MiB)
    disk[DISK_MARKER_OFFSET : DISK_MARKER_OFFSET + len(disk_marker)] = disk_marker.encode()
    (tmp_path / "disk.img").write_bytes(bytes(disk))
    kernel = kit.kernel
    if case.gzip_kernel:
        kernel = tmp_path / "vmlinuz.gz"
        kernel.write_bytes(gzip.compress(kit.kernel.read_bytes(), compresslevel=1))
    cfg = tmp_path / "vm.toml"
    cfg.write_text(
        f'template = "qemu-virt"\nvcpus = {case.vcpus}\nmemory = {case.memory}\n'
        f"virtio = {case.virtio}\ncmdline = {json.dumps(cmdline)}\n"
    )
    blk_bus = f",bus=virtio-mmio-bus.{case.transports['virtio_blk']}" if case.pinned else ""
    rng_bus = f",bus=virtio-mmio-bus.{case.transports['virtio_rng']}" if case.pinned else ""
    work = tmp_path / "work"
    argv = [
        sys.executable, "-m", "fdtgen", "qemu", str(cfg),
        "--kernel", str(kernel), "--initrd", str(tmp_path / "initrd.gz"),
        "--qemu-memory", f"{case.qemu_memory // MiB}MiB", "--workdir", str(work), "--",
        "-drive", f"file={tmp_path / 'disk.img'},if=none,format=raw,id=d0,readonly=on",
        "-device", f"virtio-blk-device,drive=d0{blk_bus}",
        "-device", f"virtio-rng-device{rng_bus}",
    ]  # fmt: skip
    b = guest.run(argv, cwd=str(ROOT))
    assert b.done, b.tail()  # /init got to the end of its report
    manifest = json.loads((work / "manifest.json").read_text())
    dtb = via_libfdt((work / "guest.dtb").read_bytes())

    # CPUs: every vCPU of the DTB came up through PSCI.
    assert b.one("nproc") == str(case.vcpus), b.tail()
    assert b.one("cpus-online") == ("0" if case.vcpus == 1 else f"0-{case.vcpus - 1}")
    # RAM is exactly the DTB's /memory, though QEMU has twice as much.
    assert case.memory < case.qemu_memory
    end = qemu.RAM_BASE + case.memory
    assert b.all("iomem-ram") == [f"{qemu.RAM_BASE:08x}-{end - 1:08x} : System RAM"]
    memtotal = int(b.one("memtotal-kib")) * 1024
    assert case.memory // 2 < memtotal <= case.memory
    # Command line and initrd: ours, where the manifest put it.
    assert b.one("cmdline") == cmdline
    assert b.one("initrd") == initrd_marker
    initrd = manifest["initrd"]
    assert int(b.one("dt-initrd-start"), 16) == initrd["address"]
    assert (
        int(b.one("dt-initrd-end"), 16)
        == initrd["address"] + (tmp_path / "initrd.gz").stat().st_size
    )
    # /proc/device-tree is our tree: the root's properties and children.
    root = props(dtb, "/")
    assert b.one("dt-model") == root["model"].rstrip(b"\0").decode()
    assert b.one("dt-compatible").split() == root["compatible"].rstrip(b"\0").decode().split("\0")
    children = {path[1:] for path in dtb if path.count("/") == 1 and path != "/"}
    assert set(b.one("dt-nodes").split()) == children | set(root) | {"name"}
    assert sum(name.startswith("virtio_mmio@") for name in children) == case.virtio
    # Real virtio devices, bound through our nodes and interrupts.
    seen = {}
    for line in b.all("virtio"):
        name, *fields = line.split()
        info = dict(f.split("=", 1) for f in fields)
        seen[info["driver"]] = (name, info["path"])
    for driver, index in case.transports.items():
        name, path = seen[driver]
        assert f"/{qemu.transport_base(index):x}.virtio_mmio/" in path, (driver, path)
        intid = 32 + qemu.VIRTIO_FIRST_SPI + index
        (irq,) = [line for line in b.all("irq") if line.split()[-1] == name]
        words = irq.split()
        assert words[-4:-1] == ["GICv3", str(intid), "Edge"], irq
        assert sum(int(n) for n in words[1 : 1 + case.vcpus]) > 0, irq
    assert b.one("blk-data") == disk_marker
    assert b.one("rng-current").startswith("virtio_rng")
    assert len(b.one("rng-bytes")) == 32
    assert not b.all("insmod-failed") and not b.all("modules"), b.tail()
    for problem in ("x1-x3 nonzero", "Firmware Bug", "psci: failed", "Kernel panic", "WARNING:"):
        assert problem not in b.console, problem
    # A clean power-off: no request was left hanging.
    assert b.powered_off and not b.killed, b.tail()


def test_guest_reports_are_found_behind_kernel_output_on_the_same_line():
    console = (
        "[    1.0] Run /init as init process\n"
        "\x00\x03junk from the kernel FDTGEN initrd=INITRD-1\n"
        "FDTGEN nproc=4\n"
        "no report here = 1\n"
    )
    assert guest.parse_facts(console) == {"initrd": ["INITRD-1"], "nproc": ["4"]}


# ---------------------------------------------------------------------------
# PCIe: the board options per template, and virtio-pci disks read through the bridge


@pytest.mark.parametrize(
    "template, machine",
    [
        ("qemu-virt", "virt,gic-version=3"),
        ("qemu-virt-gicv2", "virt,gic-version=2"),
        ("qemu-virt-its-off", "virt,gic-version=3,its=off"),
    ],
)
def test_the_board_options_follow_the_templates_gic(tmp_path, template, machine):
    kernel = fake_image(tmp_path / "Image")
    r = fdtgen("qemu", "--template", template, "--kernel", str(kernel), "--print", "--",
               "-device", "virtio-blk-pci,drive=d0")  # fmt: skip
    assert r.returncode == 0, r.stderr
    argv = shlex.split(r.stdout)
    assert argv[1:3] == ["-M", machine]
    assert argv[-2:] == ["-device", "virtio-blk-pci,drive=d0"]


def test_a_virtio_pci_device_needs_a_bridge_in_the_dtb(tmp_path):
    kernel = fake_image(tmp_path / "Image")
    template = squib_at_qemu_addresses(tmp_path)
    err = one_line_error(fdtgen("qemu", "--template", str(template), "--kernel", str(kernel),
                                "--print", "--", "-device", "virtio-rng-pci"))  # fmt: skip
    assert (
        "-device virtio-rng-pci is a virtio-pci device, but template 'squib-on-qemu' has no "
        "[pcie] bridge" in err
    )


def test_a_pci_only_template_refuses_virtio_mmio_devices(tmp_path):
    kernel = fake_image(tmp_path / "Image")
    text = (templates_dir() / "qemu-virt.toml").read_text()
    virtio = text.index("[virtio]\n")
    text = text[:virtio] + text[text.index("[dram]", virtio) :]
    text = text.replace('virtio = "both"', 'virtio = "pci"').replace(
        '[[rule]]\nkind = "below"\nlower = "virtio"\nupper = "dram"\n', ""
    )
    path = tmp_path / "pci-only.toml"
    path.write_text(text.replace('name = "qemu-virt"', 'name = "pci-only"'))
    base = ["qemu", "--template", str(path), "--virtio", "0", "--kernel", str(kernel), "--print"]
    err = one_line_error(fdtgen(*base, "--", "-device", "virtio-rng-device"))
    assert "-device virtio-rng-device is a virtio-mmio device, but template 'pci-only'" in err
    r = fdtgen(*base, "--", "-device", "virtio-rng-pci")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "changes, message",
    [
        pytest.param({"first_spi = 3": "first_spi = 8"}, "pcie first_spi SPI 8", id="intx"),
        pytest.param(
            {
                "config_base = 0x40_1000_0000": "config_base = 0x40_3000_0000",
                "config_end = 0x40_2000_0000": "config_end = 0x40_4000_0000",
            },
            "pcie config [0x4030000000, 0x4040000000) is not QEMU's [0x4010000000",
            id="ecam",
        ),  # fmt: skip
        pytest.param({'msi = "msi-map"': 'msi = "none"'}, "pcie msi 'none'", id="msi"),
    ],
)
def test_a_bridge_that_differs_from_qemus_is_refused(tmp_path, changes, message):
    kernel = fake_image(tmp_path / "Image")
    text = (templates_dir() / "qemu-virt.toml").read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    err = one_line_error(
        fdtgen("qemu", "--template", str(path), "--kernel", str(kernel), "--print")
    )
    assert message in err


@dataclass(frozen=True)
class PciCase:
    template: str
    msi_chip: str | None  # the irqchip /proc/interrupts names for MSI; None: INTx
    rng_chip: str  # the GIC's name for the virtio-mmio rng's line


PCI_CASES = [
    pytest.param(PciCase("qemu-virt", "ITS-MSI", "GICv3"), id="gicv3-its-msi"),
    pytest.param(PciCase("qemu-virt-gicv2", "MSI", "GIC-0"), id="gicv2-v2m-msi"),
    pytest.param(PciCase("qemu-virt-its-off", None, "GICv3"), id="gicv3-intx"),
]


@pytest.mark.boot
@pytest.mark.parametrize("case", PCI_CASES)
def test_debian_kernel_reads_a_virtio_pci_disk_through_fdtgens_pcie_node(
    tmp_path, kit, modules, case
):
    """The disk sits behind the DTB's bridge: its BARs come from ``ranges``, its
    completions arrive by MSI through the ITS or v2m frame (``msi-map``), or by
    INTx through ``interrupt-map`` when the board has no MSI controller."""
    require_qemu()
    token = uuid.uuid4().hex[:12]
    disk_marker = f"PCIDISK-{token}"
    (tmp_path / "initrd.gz").write_bytes(
        initramfs.initramfs(kit.busybox.read_bytes(), modules, f"INITRD-{token}")
    )
    disk = bytearray(1 * MiB)
    disk[DISK_MARKER_OFFSET : DISK_MARKER_OFFSET + len(disk_marker)] = disk_marker.encode()
    (tmp_path / "disk.img").write_bytes(bytes(disk))
    work = tmp_path / "work"
    argv = [
        sys.executable, "-m", "fdtgen", "qemu", "--template", case.template, "--vcpus", "2",
        "--memory", "256MiB", "--kernel", str(kit.kernel), "--initrd", str(tmp_path / "initrd.gz"),
        "--workdir", str(work), "--",
        "-drive", f"file={tmp_path / 'disk.img'},if=none,format=raw,id=d0,readonly=on",
        "-device", "virtio-blk-pci,drive=d0",
        "-device", "virtio-rng-device",
    ]  # fmt: skip
    b = guest.run(argv, cwd=str(ROOT))
    assert b.done, b.tail()
    dtb = via_libfdt((work / "guest.dtb").read_bytes())
    bridge = props(dtb, "/pcie@10000000")
    ((ecam, _),) = reg_pairs(bridge["reg"])

    # The generic host driver bound the bridge at the DTB's configuration space
    # and found QEMU's virtio-blk (1af4:1001) in slot 1 behind it.
    assert b.all("pci-host") == [f"{ecam:x}.pcie"]
    pci = {line.split()[0]: line for line in b.all("pci")}
    assert "vendor=0x1af4 device=0x1001 driver=virtio-pci" in pci["0000:00:01.0"], pci
    seen = {}
    for line in b.all("virtio"):
        name, *fields = line.split()
        info = dict(f.split("=", 1) for f in fields)
        seen[info["driver"]] = (name, info["path"])
    blk, path = seen["virtio_blk"]
    assert f"/{ecam:x}.pcie/pci0000:00/0000:00:01.0/{blk}" in path
    assert b.one("blk-data") == disk_marker  # a read that completes needs its interrupt

    irqs = [line.split() for line in b.all("irq")]
    blk_lines = [w for w in irqs if w[-1] == blk or w[-1].startswith(f"{blk}-")]
    if case.msi_chip is None:
        # INTx: slot 1 pin A is SPI 3 + (1 + 1 - 1) % 4 = 4, INTID 36, level.
        assert "msi-map" not in bridge
        (words,) = blk_lines
        assert words[-4:-1] == ["GICv3", "36", "Level"], words
    else:
        assert "msi-map" in bridge
        assert blk_lines and all(w[3] == case.msi_chip for w in blk_lines), blk_lines
    assert sum(int(n) for w in blk_lines for n in w[1:3]) > 0, blk_lines
    # The virtio-mmio rng beside it still takes transport 31's edge SPI 47 (INTID 79).
    rng, _ = seen["virtio_rng"]
    (words,) = [w for w in irqs if w[-1] == rng]
    assert words[3:6] == [case.rng_chip, "79", "Edge"], words
    assert b.one("nproc") == "2"
    assert not b.all("insmod-failed") and not b.all("modules"), b.tail()
    for problem in ("Kernel panic", "WARNING:", "psci: failed"):
        assert problem not in b.console, problem
    assert b.powered_off and not b.killed, b.tail()
