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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from fdtgen.errors import ImageError
from fdtgen.files import CHUNK, open_regular, too_large
from fdtgen.spec import DEFAULT_TEXT_OFFSET, TEXT_OFFSET_LIMIT
from fdtgen.units import GiB, KiB, MiB, fmt_size

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
# The compression names zboot-header.S records (Linux drivers/firmware/efi/libstub/
# Makefile.zboot, comp-type-$(CONFIG_KERNEL_*), torvalds/linux db6da59cf27b): an
# error names one of these, never bytes it does not recognise.
ZBOOT_COMP_TYPES = frozenset({"gzip", "lz4", "lzma", "lzo", "xzkern", "zstd22"})

# The most bytes an Image may have, decompressed or not. Not a booting.rst rule
# (placement checks the Image against RAM): a cap that stops a runaway file or
# a decompression bomb early, far above a real kernel (Debian's 6.1 cloud arm64
# Image declares an image_size of 0x1ab0000, under 27 MiB: fixtures/kernel/).
KERNEL_MAX_SIZE = 256 * MiB
# The largest initrd read: measured by stat and refused unread above this.
INITRD_MAX_SIZE = 1 * GiB
# The command-line options that raise the two caps (named in a too-large error).
MAX_KERNEL_OPTION = "--max-kernel-size"
MAX_INITRD_OPTION = "--max-initrd-size"

# Where the decompressed Image of a gzip or zboot kernel goes, a chunk at a time.
Sink = Callable[[bytes], None]


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
    if head[MAGIC_OFFSET : MAGIC_OFFSET + 4] != MAGIC:
        raise ImageError(f"{what}: not an arm64 Image ({_describe_foreign(head)})")
    text_offset, image_size, flags = struct.unpack_from("<QQQ", head, 8)
    if flags & FLAG_BIG_ENDIAN:
        raise ImageError(
            f"{what}: big-endian kernel (flags {flags:#x}, bit 0 set); "
            "only little-endian arm64 kernels are supported"
        )
    return text_offset, image_size, flags


def kernel_from_bytes(data: bytes, what: str = "kernel", limit: int | None = None) -> KernelImage:
    """Parse a raw Image, an Image.gz or an EFI zboot file held in memory."""
    import io

    return _kernel(_Reader(io.BytesIO(data)), len(data), what, _limit(limit))


def _limit(limit: int | None) -> int:
    return KERNEL_MAX_SIZE if limit is None else limit


def _kernel(
    r: _Reader, file_size: int, what: str, limit: int, sink: Sink | None = None
) -> KernelImage:
    """The kernel facts of the file ``r`` reads (``file_size`` bytes), its
    Image at most ``limit`` bytes once decompressed; a compressed Image is
    handed to ``sink`` as it is inflated."""
    magic = bytes(r.peek(8))
    fmt = "raw"
    if magic[:2] == GZIP_MAGIC:
        head, size = _gunzip(r, what, limit, sink=sink)
        fmt = "gzip"
    elif magic[:2] == MZ_MAGIC and magic[4:8] == ZBOOT_TYPE:
        head, size = _unzboot(r, file_size, what, limit, sink)
        fmt = "zboot-gzip"
    else:
        if file_size > limit:
            raise ImageError(too_large(what, file_size, limit, MAX_KERNEL_OPTION))
        head, size = bytes(r.peek(HEADER_SIZE)), file_size
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


def read_kernel(path: str, limit: int | None = None, sink: Sink | None = None) -> KernelImage:
    """Read a kernel file: a raw Image (``MZ`` EFI stub or not), ``Image.gz`` or EFI zboot.

    The file is read once, forward, in chunks: its sha256 is computed as it
    is read and a gzip payload is inflated as a stream, counting bytes and
    keeping only the header, so memory stays bounded whatever the file. The
    Image may be at most ``limit`` bytes (default :data:`KERNEL_MAX_SIZE`),
    decompressed or not; inflating stops as soon as it passes that. With
    ``sink``, the inflated Image of a gzip or zboot kernel is handed to it a
    chunk at a time, in order (a raw kernel is its own Image: ``sink`` is not
    called). Errors start ``PATH: kernel``.
    """
    import hashlib

    what = kernel_what(path)
    limit = _limit(limit)
    f, file_size = open_regular(path, what, limit, ImageError, MAX_KERNEL_OPTION)
    digest = hashlib.sha256()
    with f:
        r = _Reader(f, digest, what)
        k = _kernel(r, file_size, what, limit, sink)
        read = r.drain()
    source = InputFile("kernel", path, read, digest.hexdigest())
    return KernelImage(k.text_offset, k.image_size, k.flags, k.size, k.format, source)


def read_initrd(path: str, limit: int = INITRD_MAX_SIZE) -> InputFile:
    """An initrd/initramfs file: loaded as is, so only its size and digest matter.

    The size comes from ``stat`` (a file over ``limit`` is refused unread);
    the digest is computed over the file in chunks, never holding it whole.
    Errors start ``PATH: initrd``.
    """
    import hashlib

    what = f"{path}: initrd"
    f, size = open_regular(path, what, limit, ImageError, MAX_INITRD_OPTION)
    with f:
        if size == 0:
            raise ImageError(f"{what}: the file is empty")
        digest = hashlib.sha256()
        r = _Reader(f, digest, what)
        read = r.drain()
    return InputFile("initrd", path, read, digest.hexdigest())


def kernel_what(path: str) -> str:
    """How an error about kernel file ``path`` starts: the file, then what it is for."""
    return f"{path}: kernel"


def input_file(role: str, path: str, data: bytes) -> InputFile:
    import hashlib  # OpenSSL's import is not free; only builds that read files need it

    return InputFile(role, path, len(data), hashlib.sha256(data).hexdigest())


class _Reader:
    """A file read forward once in :data:`fdtgen.files.CHUNK`-byte reads, every
    byte fed to ``digest`` as it is read; ``peek`` and ``consume`` walk it by
    position without ever holding more than a chunk and a peek."""

    def __init__(self, f: BinaryIO, digest: Any = None, what: str = "kernel") -> None:
        self.f, self.digest, self.what = f, digest, what
        self.buf = b""
        self.start = 0  # file offset of buf[0]
        self.at = 0  # file offset of the next byte not consumed
        self.read = 0  # bytes read from the file so far
        self.eof = False

    def _chunk(self) -> bytes:
        try:
            chunk = self.f.read(CHUNK)
        except OSError as e:
            raise ImageError(f"{self.what}: cannot read: {e.strerror}") from None
        if not chunk:
            self.eof = True
        elif self.digest is not None:
            self.digest.update(chunk)
        self.read += len(chunk)
        return chunk

    def peek(self, n: int) -> memoryview:
        """Up to ``n`` bytes from the current position (fewer at the end of the file)."""
        end = self.start + len(self.buf)
        if end < self.at + n and not self.eof:
            parts = [self.buf[self.at - self.start :]] if self.at < end else []
            have = max(0, end - self.at)
            while have < n:
                pos = self.read
                chunk = self._chunk()
                if not chunk:
                    break
                skip = max(0, self.at - pos)
                if skip < len(chunk):
                    parts.append(chunk[skip:] if skip else chunk)
                    have += len(chunk) - skip
            self.buf, self.start = b"".join(parts), self.at
        off = self.at - self.start
        return memoryview(self.buf)[off : off + n]

    def consume(self, n: int) -> None:
        self.at += n

    def drain(self) -> int:
        """Read (and hash) the rest of the file; the number of bytes in it."""
        while not self.eof:
            self._chunk()
        return self.read


def _describe_foreign(head: bytes) -> str:
    """What a file without the arm64 magic seems to be, from well-known magic
    numbers only: an error never echoes the file's own bytes."""
    rule = f"no ARM\\x64 magic at {MAGIC_OFFSET:#x}"
    if head[:4] == b"\x7fELF":
        return f"an ELF file (vmlinux?), {rule}"
    if head[:4] == b"\x27\x05\x19\x56":
        return f"a U-Boot uImage, {rule}"
    if head[:2] == MZ_MAGIC:
        return f"a PE/COFF (MZ) file without the arm64 Image header, {rule}"
    return rule


def _gunzip(
    r: _Reader,
    what: str,
    limit: int,
    fmt: str = "gzip",
    end: int | None = None,
    sink: Sink | None = None,
) -> tuple[bytes, int]:
    """The first 64 bytes and the total length of the gzip member(s) at ``r``
    (up to file offset ``end``).

    One pass, linear in the input: each member gets a fresh decompressor fed
    from ``r`` in slices that start small and double, so that the bytes past a
    member's end (``unused_data``, which zlib copies) are few for a tiny
    member and at most a chunk for a large one; output is taken a chunk at a
    time and counted, never kept (only handed to ``sink``), and inflating
    stops once it passes ``limit``. Bytes after the last member are ignored,
    as gzip(1) does.
    """
    head = bytearray()
    total = 0

    def left() -> int:
        return CHUNK if end is None else min(CHUNK, end - r.at)

    while left() >= 2 and r.peek(2) == GZIP_MAGIC:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        feed = 256
        while not d.eof:
            view = r.peek(min(feed, left()))
            try:
                out = d.decompress(view, CHUNK) if view else d.flush()
                while True:
                    total += len(out)
                    if total > limit:
                        raise ImageError(
                            f"{what}: too large: the {fmt} data inflates past the "
                            f"{fmt_size(limit)} cap on an Image ({total:#x} bytes so far; "
                            f"raise it with {MAX_KERNEL_OPTION})"
                        )
                    if len(head) < HEADER_SIZE:
                        head += out[: HEADER_SIZE - len(head)]
                    if sink is not None and out:
                        sink(out)
                    if not (d.unconsumed_tail or (len(out) == CHUNK and not d.eof)):
                        break
                    out = d.decompress(d.unconsumed_tail, CHUNK)
            except zlib.error as e:
                raise ImageError(
                    f"{what}: corrupt {fmt} data after {total} decompressed bytes: {e}"
                ) from None
            if not view and not d.eof:
                raise ImageError(
                    f"{what}: truncated {fmt} data: the stream ends after {total} "
                    "decompressed bytes without its trailer"
                )
            r.consume(len(view) - len(d.unused_data) if d.eof else len(view))
            feed = min(2 * feed, CHUNK)
    return bytes(head), total


def _unzboot(
    r: _Reader, file_size: int, what: str, limit: int, sink: Sink | None = None
) -> tuple[bytes, int]:
    """The Image inside an EFI zboot container (zboot-header.S), gzip payloads only."""
    header = bytes(r.peek(_ZBOOT_HEADER.size))
    if len(header) < _ZBOOT_HEADER.size:
        raise ImageError(f"{what}: truncated EFI zboot header: {len(header)} bytes")
    _, _, offset, size, comp = _ZBOOT_HEADER.unpack_from(header)
    comp_type = comp.split(b"\0", 1)[0].decode("ascii", "replace")
    if comp_type != "gzip":
        named = repr(comp_type) if comp_type in ZBOOT_COMP_TYPES else "an unknown"
        raise ImageError(
            f"{what}: EFI zboot image with {named} payload; only gzip payloads can be "
            "unpacked (give the decompressed Image instead)"
        )
    if offset + size > file_size or size == 0:
        raise ImageError(
            f"{what}: truncated EFI zboot file: payload [{offset:#x}, {offset + size:#x}) "
            f"but the file is {file_size:#x} bytes"
        )
    r.consume(offset)
    if r.peek(2) != GZIP_MAGIC or size < 2:
        raise ImageError(
            f"{what}: EFI zboot payload at {offset:#x} does not start with the gzip magic"
        )
    return _gunzip(r, what, limit, "zboot gzip", end=offset + size, sink=sink)
