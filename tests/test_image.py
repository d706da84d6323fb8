"""The arm64 Image header reader: raw, gzip and EFI zboot kernels, and every rejection."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import subprocess
import zlib

import pytest

from fdtgen.boot.image import declared_kernel, kernel_from_bytes, read_initrd, read_kernel
from fdtgen.errors import ImageError

from .conftest import FIXTURES

DEBIAN_HEAD = FIXTURES / "kernel" / "vmlinuz-6.1.0-56-cloud-arm64.head"
# Retyped from fixtures/kernel/README.md (Debian 6.1.0-56-cloud-arm64 vmlinuz).
DEBIAN_IMAGE_SIZE = 0x1AB_0000
DEBIAN_FLAGS = 0xA
MiB = 1 << 20


def image_bytes(
    text_offset: int, image_size: int, flags: int = 0xA, size: int = 4096, magic: bytes = b"ARM\x64"
) -> bytes:
    """A raw Image: the booting.rst header (little endian), then filler up to ``size``."""
    header = struct.pack(
        "<IIQQQQQQ4sI",
        0x91005A4D,  # code0: "MZ" + add x13, x18, #0x16, as an EFI-stub Image starts
        0x14000000,  # code1: b
        text_offset,
        image_size,
        flags,
        0,
        0,
        0,
        magic,
        0,
    )
    assert len(header) == 64
    return header + bytes((i * 7) & 0xFF for i in range(size - 64))


def zboot_bytes(
    payload: bytes, comp_type: bytes = b"gzip", declared_size: int | None = None
) -> bytes:
    """An EFI zboot container as drivers/firmware/efi/libstub/zboot-header.S lays it out."""
    offset = 0x1000
    head = bytearray(offset)
    head[0:2] = b"MZ"
    head[4:8] = b"zimg"
    struct.pack_into(
        "<II", head, 8, offset, len(payload) if declared_size is None else declared_size
    )
    head[24 : 24 + len(comp_type) + 1] = comp_type + b"\0"
    struct.pack_into("<I", head, 0x38, 0x818223CD)  # LINUX_PE_MAGIC, not the arm64 magic
    return bytes(head) + payload


def test_debian_vmlinuz_header_is_read_as_debian_wrote_it():
    data = DEBIAN_HEAD.read_bytes()
    # An independent read of the three fields at their booting.rst offsets.
    text_offset, image_size, flags = struct.unpack_from("<QQQ", data, 8)
    assert data[:2] == b"MZ" and data[0x38:0x3C] == b"ARM\x64"
    assert (text_offset, image_size, flags) == (0, DEBIAN_IMAGE_SIZE, DEBIAN_FLAGS)
    k = kernel_from_bytes(data)
    assert k.text_offset == 0
    assert k.image_size == DEBIAN_IMAGE_SIZE
    assert k.flags == DEBIAN_FLAGS
    assert k.format == "raw"
    assert k.size == 4096
    assert k.reserve == DEBIAN_IMAGE_SIZE  # image_size larger than the file: BSS
    assert k.page_size == 4096
    assert k.placement_anywhere


@pytest.mark.skipif(shutil.which("file") is None, reason="file(1) not installed")
def test_file_command_agrees_on_the_fixture():
    out = subprocess.run(
        ["file", "-b", str(DEBIAN_HEAD)], capture_output=True, text=True, check=True
    ).stdout
    assert "ARM64 boot executable Image, little-endian, 4K pages" in out
    assert read_kernel(str(DEBIAN_HEAD)).page_size == 4 * 1024


def test_gzip_image_gives_the_same_facts_with_the_decompressed_size(tmp_path):
    raw = DEBIAN_HEAD.read_bytes()
    path = tmp_path / "Image.gz"
    # gzip(1), not Python's gzip module, makes the stream.
    (tmp_path / "Image").write_bytes(raw)
    subprocess.run(["gzip", "-9", "-n", str(tmp_path / "Image")], check=True)
    k = read_kernel(str(path))
    assert (k.text_offset, k.image_size, k.flags) == (0, DEBIAN_IMAGE_SIZE, DEBIAN_FLAGS)
    assert k.format == "gzip"
    assert k.size == len(raw)
    assert k.source is not None
    assert k.source.size == path.stat().st_size
    assert k.source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_gzip_image_larger_than_one_chunk_is_counted_exactly():
    raw = image_bytes(0, 0, size=9 * MiB + 123)
    k = kernel_from_bytes(gzip.compress(raw, compresslevel=1))
    assert k.size == len(raw)


def test_multi_member_gzip_counts_every_member():
    raw = image_bytes(0, 64 * MiB, size=3 * MiB)
    data = gzip.compress(raw[:MiB]) + gzip.compress(raw[MiB:])
    assert kernel_from_bytes(data).size == len(raw)


@pytest.mark.parametrize(
    "text_offset, image_size, expected_text_offset",
    [
        pytest.param(0, 32 * MiB, 0, id="text-offset-0"),
        pytest.param(0x80000, 32 * MiB, 0x80000, id="text-offset-0x80000"),
        pytest.param(0, 0, 0x80000, id="image-size-0-means-0x80000"),
        pytest.param(0x1234000, 0, 0x80000, id="image-size-0-ignores-the-field"),
    ],
)
def test_text_offset_follows_booting_rst(text_offset, image_size, expected_text_offset):
    raw = image_bytes(text_offset, image_size)
    for data in (raw, gzip.compress(raw)):
        k = kernel_from_bytes(data)
        assert k.text_offset == expected_text_offset
        assert k.image_size == image_size
        assert k.reserve == max(4096, image_size)


def test_zboot_gzip_payload_is_unpacked():
    raw = image_bytes(0x80000, 40 * MiB, flags=0x2, size=64 * 1024)
    k = kernel_from_bytes(zboot_bytes(gzip.compress(raw)))
    assert (k.text_offset, k.image_size, k.flags, k.size) == (0x80000, 40 * MiB, 0x2, len(raw))
    assert k.format == "zboot-gzip"


def test_declared_kernel_checks_the_same_rules():
    k = declared_kernel(20 * MiB, text_offset=0, image_size=24 * MiB, flags=0xA)
    assert k.reserve == 24 * MiB and k.format == "declared"
    assert declared_kernel(20 * MiB).text_offset == 0x80000  # image_size 0
    with pytest.raises(ImageError, match="big-endian"):
        declared_kernel(MiB, image_size=MiB, flags=1)


def _bad(data: bytes, tmp_path, name: str = "Image") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError) as e:
        read_kernel(str(path))
    msg = str(e.value)
    assert msg.startswith(f"{path}: kernel")
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    "data, found",
    [
        pytest.param(b"", "truncated: empty", id="empty"),
        pytest.param(
            image_bytes(0, 0)[:63], "truncated: 63 bytes, shorter than the 64-byte", id="63-bytes"
        ),
        pytest.param(
            image_bytes(0, 0, magic=b"ARMd"[::-1]),
            "without the arm64 Image header, no ARM\\x64 magic at 0x38)",
            id="bad-magic",
        ),
        pytest.param(b"\x7fELF" + bytes(200), "an ELF file (vmlinux?)", id="elf"),
        pytest.param(b"\x27\x05\x19\x56" + bytes(200), "a U-Boot uImage", id="uimage"),
        pytest.param(
            b"MZ" + bytes(200),
            "a PE/COFF (MZ) file without the arm64 Image header",
            id="pe-no-magic",
        ),
        pytest.param(
            image_bytes(0, MiB, flags=0xB),
            "big-endian kernel (flags 0xb, bit 0 set)",
            id="big-endian",
        ),
        pytest.param(
            image_bytes(2 * MiB, 8 * MiB),
            "text_offset 0x200000 is not below 0x200000",
            id="text-offset-2mib",
        ),
        pytest.param(
            gzip.compress(image_bytes(0, 0))[:-30], "truncated gzip data", id="gzip-truncated"
        ),
        pytest.param(
            gzip.compress(image_bytes(0, 0))[:10] + b"\x07" + bytes(40),
            "corrupt gzip data after 0 decompressed bytes: Error -3",
            id="gzip-corrupt",
        ),
        pytest.param(
            gzip.compress(b"not a kernel" * 10),
            "(gzip payload): not an arm64 Image",
            id="gzip-not-image",
        ),
        pytest.param(gzip.compress(b"hi"), "(gzip payload): truncated: 2 bytes", id="gzip-tiny"),
        pytest.param(
            gzip.compress(gzip.compress(image_bytes(0, 0))),
            "payload is itself gzip-compressed",
            id="gzip-twice",
        ),
        pytest.param(
            zboot_bytes(b"\x28\xb5\x2f\xfd" + bytes(64), b"zstd22"),
            "'zstd22' payload; only gzip",
            id="zboot-zstd",
        ),
        pytest.param(
            zboot_bytes(gzip.compress(image_bytes(0, 0)), declared_size=1 << 20),
            "truncated EFI zboot file",
            id="zboot-truncated",
        ),
        pytest.param(
            zboot_bytes(zlib.compress(image_bytes(0, 0))),
            "does not start with the gzip magic",
            id="zboot-not-gzip",
        ),
    ],
)
def test_a_file_that_is_not_an_arm64_image_gets_one_clear_error(tmp_path, data, found):
    assert found in _bad(data, tmp_path)


def test_a_missing_kernel_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImageError, match=r"^/.*/nope: kernel: cannot read: No such file"):
        read_kernel(str(tmp_path / "nope"))


def test_initrd_is_read_whole_and_an_empty_one_is_rejected(tmp_path):
    p = tmp_path / "initrd.cpio"
    p.write_bytes(b"070701" + bytes(1000))
    f = read_initrd(str(p))
    assert (f.role, f.size) == ("initrd", 1006)
    out = subprocess.run(["sha256sum", str(p)], capture_output=True, text=True, check=True).stdout
    assert f.sha256 == out.split()[0]
    p.write_bytes(b"")
    with pytest.raises(ImageError, match=r"^/.*initrd.cpio: initrd: the file is empty"):
        read_initrd(str(p))
