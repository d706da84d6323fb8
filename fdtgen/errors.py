"""fdtgen's exception hierarchy.

* FdtgenError                  base; the CLI catches this and only this (exit 2)
  + ConfigError                a machine config value rejected (file, key, value, rule)
  + UsageError                 command-line options that do not fit together
  + OutputError                an output path that cannot be written (or would clobber an input)
  + ManifestError              a manifest file that is not one fdtgen can read
  + TemplateError              a template file is malformed
  + LayoutError                address map inconsistent
    - RegionOverlapError       two regions share bytes
    - AlignmentError           a region base/size is not aligned
    - AllocationExhaustedError a dynamic request found no room
  + IrqError                   interrupt number out of range or reused
  + EncodeError                the tree cannot be flattened
    - BlobTooLargeError        the blob exceeds the 2 MiB booting.rst cap
  + ImageError                 a kernel file is not an arm64 Image
  + PlacementError             kernel/initrd/DTB cannot satisfy booting.rst
  + BlobError                  an input blob is malformed (offset, expected, found)
"""

from __future__ import annotations

from typing import Any


class FdtgenError(Exception):
    """Base of every error fdtgen reports to its user."""


class ConfigError(FdtgenError):
    """A configuration value was rejected."""


class UsageError(FdtgenError):
    """Command-line options that do not fit together or are out of range."""


class OutputError(FdtgenError):
    """An output path cannot be written whole."""


class ManifestError(FdtgenError):
    """A placement manifest does not match its model: the file, the key, the rule."""

    def __init__(self, source: str, key: str, rule: str) -> None:
        super().__init__(f"{source}: {key}: {rule}" if key else f"{source}: {rule}")
        self.source, self.key, self.rule = source, key, rule


class TemplateError(FdtgenError):
    """A layout template is malformed."""


class LayoutError(FdtgenError):
    """The address map is inconsistent."""


class RegionOverlapError(LayoutError):
    def __init__(self, a: Any, b: Any, context: str = "layout") -> None:
        # a and b are fdtgen.ranges.Region values (a higher layer than this one)
        super().__init__(
            f"{context}: region {a.tag!r} {a.range} overlaps region {b.tag!r} {b.range}"
        )
        self.a, self.b = a, b


class AlignmentError(LayoutError):
    def __init__(self, tag: str, what: str, value: int, align: int) -> None:
        super().__init__(f"layout: region {tag!r} {what} {value:#x} is not aligned to {align:#x}")
        self.tag, self.what, self.value, self.align = tag, what, value, align


class AllocationExhaustedError(LayoutError):
    def __init__(self, tag: str, size: int, align: int, phase: str, free: str) -> None:
        super().__init__(
            f"allocator: no room for {tag!r} (size {size:#x}, alignment {align:#x}) "
            f"in phase {phase}; free space: {free}"
        )
        self.tag, self.size, self.align, self.phase = tag, size, align, phase


class IrqError(FdtgenError):
    """An interrupt number is out of range or assigned twice."""


class EncodeError(FdtgenError):
    """The tree cannot be flattened into a blob."""


class BlobTooLargeError(EncodeError):
    def __init__(self, size: int, limit: int, rule: str = "") -> None:
        super().__init__(
            f"dtb: blob is {size} bytes ({size:#x}), over the {limit:#x}-byte limit"
            + (f" ({rule})" if rule else "")
        )
        self.size, self.limit = size, limit


class ImageError(FdtgenError):
    """A kernel file is not a usable arm64 Image."""


class PlacementError(FdtgenError):
    """Kernel, initrd and DTB cannot be placed per booting.rst."""


class BlobError(FdtgenError):
    """An input blob is malformed."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"dtb offset {offset:#x}: {message}")
        self.offset = offset
