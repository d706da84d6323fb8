"""The arm64 Linux ``Image`` header, from a raw Image, an ``Image.gz`` or an EFI zboot file.

Linux Documentation/arch/arm64/booting.rst, "Call the kernel image": "The
decompressed kernel image contains a 64-byte header as follows"::

    0x00  u32 code0, code1    executable code
    0x08  u64 text_offset     image load offset, little endian
    0x10  u64 image_size      effective Image size, little endian
    0x18  u64 flags           kernel flags, little endian
    0x20  u64 res2, res3, res4
    0x38  u32 magic           0x644d5241, "ARM\\x64"
    0x3c  u32 res5            PE COFF offset

"Where image_size is zero, text_offset can be assumed to be 0x80000." Flags:
"Bit 0 Kernel endianness. 1 if BE, 0 if LE"; "Bit 1-2 Kernel Page size. 0 -
Unspecified. 1 - 4K 2 - 16K 3 - 64K"; "Bit 3 Kernel physical placement".

A kernel built with the EFI stub starts with ``MZ`` and is still a raw Image
(Debian's arm64 ``vmlinuz`` is one; its ``image_size`` exceeds the file, which
has no BSS). An EFI zboot file (``drivers/firmware/efi/libstub/zboot-header.S``:
``MZ``, ``zimg`` at 4, payload offset at 8, payload size at 12, the
compression type string at 24) carries the Image compressed; a gzip payload
is unpacked here, any other type is reported.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from fdtgen.errors import ImageError
from fdtgen.spec import DEFAULT_TEXT_OFFSET, TEXT_OFFSET_LIMIT
from fdtgen.units import KiB, MiB

HEADER_SIZE = 64
MAGIC = b"ARM\x64"
MAGIC_OFFSET = 0x38

FLAG_BIG_ENDIAN = 1 << 0
FLAG_PAGE_SIZE_SHIFT = 1
FLAG_PHYS_PLACEMENT = 1 << 3  # 1: anywhere within the 48-bit physical range
PAGE_SIZES = {0: None, 1: 4 * KiB, 2: 16 * KiB, 3: 64 * KiB}

GZIP_MAGIC = b"\x1f\x8b"
MZ_MAGIC = b"MZ"
ZBOOT_TYPE = b"zimg"
_ZBOOT_HEADER = struct.Struct("<2s2x4sII8x32s")  # magic, type, offset, size, comp type
_CHUNK = 4 * MiB


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file a build read: what it is for, where it was, and its bytes' identity."""

    role: str
    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class KernelImage:
    """What placement needs to know about a kernel.

    ``text_offset`` is the effective load offset (the header's, or 0x80000 when
    ``image_size`` is zero); ``image_size`` and ``flags`` are the header's;
    ``size`` is the number of bytes of the (decompressed) Image a loader
    copies; ``format`` is ``raw``, ``gzip``, ``zboot-gzip`` or ``declared``.
    """

    text_offset: int
    image_size: int
    flags: int
    size: int
    format: str = "raw"
    source: InputFile | None = None

    @property
    def reserve(self) -> int:
        """Bytes from the load address that must be free: ``max(size, image_size)``."""
        return max(self.size, self.image_size)

    @property
    def page_size(self) -> int | None:
        """Flags bits 1-2: the kernel's page size, ``None`` when unspecified."""
        return PAGE_SIZES[(self.flags >> FLAG_PAGE_SIZE_SHIFT) & 3]

    @property
    def placement_anywhere(self) -> bool:
        """Flags bit 3: the base may be anywhere in the 48-bit physical range."""
        return bool(self.flags & FLAG_PHYS_PLACEMENT)


def kernel_header(head: bytes, what: str = "kernel") -> tuple[int, int, int]:
    """``(text_offset, image_size, flags)`` as written in a raw Image's first 64 bytes.

    Raises :class:`ImageError` naming ``what`` and what was found instead.
    """
    if len(head) < HEADER_SIZE:
        found = "empty" if not head else f"{len(head)} bytes"
        raise ImageError(
            f"{what}: truncated: {found}, shorter than the {HEADER_SIZE}-byte arm64 Image header"
        )
    magic = head[MAGIC_OFFSET : MAGIC_OFFSET + 4]
    if magic != MAGIC:
        raise ImageError(f"{what}: not an arm64 Image: {_describe_foreign(head, magic)}")
    text_offset, image_size, flags = struct.unpack_from("<QQQ", head, 8)
    if flags & FLAG_BIG_ENDIAN:
        raise ImageError(
            f"{what}: big-endian kernel (flags {flags:#x}, bit 0 set); "
            "only little-endian arm64 kernels are supported"
        )
    return text_offset, image_size, flags


def kernel_from_bytes(data: bytes, what: str = "kernel") -> KernelImage:
    """Parse a raw Image, an Image.gz or an EFI zboot file held in memory."""
    fmt = "raw"
    if data[:2] == GZIP_MAGIC:
        head, size = _gunzip(data, what)
        fmt = "gzip"
    elif data[:2] == MZ_MAGIC and data[4:8] == ZBOOT_TYPE:
        head, size = _unzboot(data, what)
        fmt = "zboot-gzip"
    else:
        head, size = data[:HEADER_SIZE], len(data)
    if fmt != "raw" and head[:2] == GZIP_MAGIC:
        raise ImageError(f"{what}: the {fmt} payload is itself gzip-compressed, not an Image")
    text_offset, image_size, flags = kernel_header(
        head, what if fmt == "raw" else f"{what} ({fmt} payload)"
    )
    return declared_kernel(size, text_offset, image_size, flags, what=what, fmt=fmt)


def declared_kernel(
    size: int,
    text_offset: int = 0,
    image_size: int = 0,
    flags: int = 0,
    *,
    what: str = "kernel",
    fmt: str = "declared",
    source: InputFile | None = None,
) -> KernelImage:
    """A kernel from its header facts; the booting.rst rules on them are checked here."""
    if size <= 0:
        raise ImageError(f"{what}: size {size:#x} must be positive")
    if flags & FLAG_BIG_ENDIAN:
        raise ImageError(
            f"{what}: flags {flags:#x} has bit 0 set (big-endian); only little-endian is supported"
        )
    effective = DEFAULT_TEXT_OFFSET if image_size == 0 else text_offset
    if not 0 <= effective < TEXT_OFFSET_LIMIT:
        raise ImageError(
            f"{what}: text_offset {effective:#x} is not below {TEXT_OFFSET_LIMIT:#x} "
            "(booting.rst: the Image is placed text_offset bytes from a 2MB aligned base)"
        )
    if not 0 <= image_size < 1 << 64 or not 0 <= flags < 1 << 64:
        raise ImageError(
            f"{what}: image_size {image_size:#x} / flags {flags:#x} are not 64-bit values"
        )
    return KernelImage(effective, image_size, flags, size, fmt, source)


def read_kernel(path: str) -> KernelImage:
    """Read a kernel file: a raw Image (``MZ`` EFI stub or not), ``Image.gz`` or EFI zboot."""
    what = f"kernel {path!r}"
    data = _read(path, what)
    k = kernel_from_bytes(data, what)
    return KernelImage(
        k.text_offset, k.image_size, k.flags, k.size, k.format, input_file("kernel", path, data)
    )


def read_initrd(path: str) -> InputFile:
    """An initrd/initramfs file: loaded as is, so only its size and digest matter."""
    what = f"initrd {path!r}"
    data = _read(path, what)
    if not data:
        raise ImageError(f"{what}: the file is empty")
    return input_file("initrd", path, data)


def input_file(role: str, path: str, data: bytes) -> InputFile:
    import hashlib  # OpenSSL's import is not free; only builds that read files need it

    return InputFile(role, path, len(data), hashlib.sha256(data).hexdigest())


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ImageError(f"{what}: cannot read: {e.strerror}") from None


def _describe_foreign(head: bytes, magic: bytes) -> str:
    found = (
        f"bytes at {MAGIC_OFFSET:#x} are {magic.hex(' ') or 'missing'}, "
        f"expected {MAGIC.hex(' ')} ('ARM\\x64')"
    )
    if head[:4] == b"\x7fELF":
        return f"an ELF file (vmlinux?); {found}"
    if head[:4] == b"\x27\x05\x19\x56":
        return f"a U-Boot uImage; {found}"
    if head[:2] == MZ_MAGIC:
        return f"a PE/COFF (MZ) file without the arm64 Image header; {found}"
    return found


def _gunzip(data: bytes, what: str, fmt: str = "gzip") -> tuple[bytes, int]:
    """The first 64 bytes and the total length of the gzip member(s) in ``data``.

    Streams the decompression (an Image is tens of MiB); trailing bytes after
    the last member are ignored, as gzip(1) does.
    """
    head = bytearray()
    total = 0
    rest = data
    while rest[:2] == GZIP_MAGIC:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        buf = rest
        try:
            while not d.eof:
                out = d.decompress(buf, _CHUNK)
                total += len(out)
                if len(head) < HEADER_SIZE:
                    head += out[: HEADER_SIZE - len(head)]
                buf = d.unconsumed_tail
                if not d.eof and not buf and len(out) < _CHUNK:
                    raise ImageError(
                        f"{what}: truncated {fmt} data: the stream ends after {total} "
                        "decompressed bytes without its trailer"
                    )
        except zlib.error as e:
            raise ImageError(
                f"{what}: corrupt {fmt} data after {total} decompressed bytes: {e}"
            ) from None
        rest = d.unused_data
    return bytes(head), total


def _unzboot(data: bytes, what: str) -> tuple[bytes, int]:
    """The Image inside an EFI zboot container (zboot-header.S), gzip payloads only."""
    if len(data) < _ZBOOT_HEADER.size:
        raise ImageError(f"{what}: truncated EFI zboot header: {len(data)} bytes")
    _, _, offset, size, comp = _ZBOOT_HEADER.unpack_from(data)
    comp_type = comp.split(b"\0", 1)[0].decode("ascii", "replace")
    if comp_type != "gzip":
        raise ImageError(
            f"{what}: EFI zboot image with a {comp_type!r} payload; only gzip payloads can be "
            "unpacked (give the decompressed Image instead)"
        )
    if offset + size > len(data) or size == 0:
        raise ImageError(
            f"{what}: truncated EFI zboot file: payload [{offset:#x}, {offset + size:#x}) "
            f"but the file is {len(data):#x} bytes"
        )
    payload = data[offset : offset + size]
    if payload[:2] != GZIP_MAGIC:
        raise ImageError(
            f"{what}: EFI zboot payload at {offset:#x} does not start with the gzip magic"
        )
    return _gunzip(payload, what, "zboot gzip")
