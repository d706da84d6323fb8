"""The boot trampoline, disassembled and executed by QEMU's own CPU model.

QEMU logs each translated block with its capstone disassembly (``-d in_asm``)
and the CPU registers on entry to it (``-d cpu``; ``nochain`` makes every
block entry go through the logger). A prefix dirties x0..x3 and branches to
the trampoline; the stand-in "kernel" at the entry point powers the machine
off through PSCI SYSTEM_OFF, so QEMU exits by itself. The registers logged on
entry to the stand-in are what a kernel would see.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fdtgen.errors import PlacementError
from fdtgen.qemu.trampoline import TRAMPOLINE_SIZE, trampoline

PREFIX = 0x4010_0000
STUB = 0x4020_0000
ENTRY = 0x4040_0000

# Test-side encodings (Arm ARM: MOVN, MOVZ, MOVK, HVC, B); QEMU's disassembly
# below confirms each one, so they are not taken on trust either.
MOVN_X = 0x9280_0000  # MOVN Xd, #0 -> Xd = ~0
PSCI_SYSTEM_OFF = (
    0x5280_0100,  # movz w0, #0x8
    0x72B0_8000,  # movk w0, #0x8400, lsl #16   -> w0 = 0x84000008
    0xD400_0002,  # hvc #0
)


def branch(source: int, target: int) -> int:
    return 0x1400_0000 | ((target - source) >> 2) & 0x3FF_FFFF


def prefix() -> bytes:
    words = [MOVN_X | rd for rd in (0, 1, 2, 3)]
    words.append(branch(PREFIX + 4 * len(words), STUB))
    return struct.pack(f"<{len(words)}I", *words)


def qemu_log(tmp_path: Path, dtb: int, entry: int = ENTRY) -> str:
    exe = shutil.which("qemu-system-aarch64")
    if exe is None:
        pytest.fail("qemu-system-aarch64 is required (apt-get install qemu-system-arm)")
    files = {
        "prefix.bin": (PREFIX, prefix()),
        "stub.bin": (STUB, trampoline(dtb, entry)),
        "kernel.bin": (entry, struct.pack("<3I", *PSCI_SYSTEM_OFF)),
    }
    argv = [exe, "-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-m", "128M", "-nodefaults",
            "-display", "none", "-serial", "none", "-no-reboot",
            "-d", "in_asm,cpu,nochain", "-D", str(tmp_path / "qemu.log")]  # fmt: skip
    for name, (addr, data) in files.items():
        (tmp_path / name).write_bytes(data)
        argv += ["-device", f"loader,file={tmp_path / name},addr={addr:#x},force-raw=on"]
    argv += ["-device", f"loader,addr={PREFIX:#x},cpu-num=0"]
    # A hang guard only: SYSTEM_OFF ends QEMU within milliseconds.
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    return (tmp_path / "qemu.log").read_text()


def blocks(log: str) -> dict[int, tuple[list[str], dict[str, int]]]:
    """Translated block address -> (disassembly, registers on entry)."""
    out: dict[int, tuple[list[str], dict[str, int]]] = {}
    asm: list[str] = []
    for chunk in log.split("----------------"):
        insns = re.findall(r"^0x([0-9a-f]+):\s+[0-9a-f]{8}\s+(.*)$", chunk, re.MULTILINE)
        if insns:
            asm = [" ".join(text.split()) for _, text in insns]
        regs = {k: int(v, 16) for k, v in re.findall(r"\b(PC|X\d\d)=([0-9a-f]{16})", chunk)}
        if "PC" in regs:
            out[regs["PC"]] = (asm, regs)
    return out


@pytest.mark.parametrize("dtb", [0x47E0_0000, 0x1_2345_6788], ids=["in-ram", "above-4g"])
def test_qemu_runs_the_trampoline_into_the_kernel_with_booting_rst_registers(tmp_path, dtb):
    seen = blocks(qemu_log(tmp_path, dtb))
    asm, before = seen[STUB]
    assert asm == [
        f"ldr x0, #{STUB + 0x18:#x}",
        "mov x1, xzr",
        "mov x2, xzr",
        "mov x3, xzr",
        f"ldr x4, #{STUB + 0x20:#x}",
        "br x4",
    ]
    assert [before[f"X0{i}"] for i in range(4)] == [2**64 - 1] * 4  # the prefix dirtied them
    kernel_asm, regs = seen[ENTRY]
    assert kernel_asm == ["movz w0, #0x8", "movk w0, #0x8400, lsl #16", "hvc #0"]
    assert regs["X00"] == dtb
    assert (regs["X01"], regs["X02"], regs["X03"]) == (0, 0, 0)


def test_prefix_encodings_are_what_qemu_disassembles(tmp_path):
    asm, _ = blocks(qemu_log(tmp_path, 0x47E0_0000))[PREFIX]
    assert asm == ["movn x0, #0", "movn x1, #0", "movn x2, #0", "movn x3, #0", f"b #{STUB:#x}"]


def test_the_stub_is_forty_bytes_with_its_literals_last():
    code = trampoline(0x4FE0_0000, 0x4020_0000)
    assert len(code) == TRAMPOLINE_SIZE == 40
    assert struct.unpack_from("<2Q", code, 24) == (0x4FE0_0000, 0x4020_0000)


@pytest.mark.parametrize(
    "dtb, entry, match",
    [
        pytest.param(
            0x4FE0_0004,
            0x4020_0000,
            r"registers\.x0: DTB address 0x4fe00004 is not 8-byte aligned",
            id="dtb-4",
        ),
        pytest.param(-8, 0x4020_0000, r"registers\.x0", id="dtb-negative"),
        pytest.param(1 << 64, 0x4020_0000, r"registers\.x0", id="dtb-65-bit"),
        pytest.param(
            0x4FE0_0000,
            0x4020_0002,
            r"registers\.pc: kernel entry 0x40200002 is not a word-aligned",
            id="entry-2",
        ),
    ],
)
def test_bad_addresses_are_placement_errors_naming_the_register(dtb, entry, match):
    with pytest.raises(PlacementError, match=match):
        trampoline(dtb, entry)
