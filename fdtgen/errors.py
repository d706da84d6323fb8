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

Every message is one line that starts with where the input came from (a file,
or ``command line``), then the key, node path or region tag, the value as
:func:`shown` repeats it, and the rule. An error about one machine setting
raised below the config layer (``vcpus`` past the template's ``max_vcpus``)
does not know which file the setting came from: it names the setting in
``setting``, and the config layer puts the file or ``command line`` in front
(:func:`located`).
"""

from __future__ import annotations

from typing import Any

# A value in a message: integers past this many digits, strings past this many
# characters are cut short (a 4,000-digit vcpus or a 3 kB path is not worth repeating).
SHOWN_DIGITS = 20
SHOWN_CHARS = 60


class FdtgenError(Exception):
    """Base of every error fdtgen reports to its user.

    ``setting``: the machine setting (config key) an error is about when the
    line does not yet say where that setting came from (``""``: the settings
    as a whole); ``None`` once it does, or when the error is not about one.
    """

    setting: str | None = None

    def __init__(self, *args: object, setting: str | None = None) -> None:
        super().__init__(*args)
        self.setting = setting


class ConfigError(FdtgenError):
    """A configuration value was rejected."""


class UsageError(FdtgenError):
    """Command-line options that do not fit together or are out of range."""

    def __init__(self, message: str) -> None:
        super().__init__(f"command line: {message}")


class OutputError(FdtgenError):
    """An output path cannot be written whole."""


class GeneratedFileError(FdtgenError):
    """A file ``fdtgen codegen --check`` cannot read back as one it generated."""


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
    def __init__(
        self, tag: str, what: str, value: int, align: int, context: str = "layout"
    ) -> None:
        super().__init__(
            f"{context}: region {tag!r} {what} {value:#x} is not aligned to {align:#x}"
        )
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


def parse_failure(e: ValueError | RecursionError, language: str) -> str:
    """Why a TOML or JSON parser refused a file, in its author's terms: bytes
    that are not UTF-8, nesting deeper than the parser recurses, an integer
    past Python's digit limit (not a call to ``sys.set_int_max_str_digits``)."""
    import sys

    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text: {e.reason} at byte {e.start}"
    if isinstance(e, RecursionError):
        return f"not valid {language}: arrays or tables nested too deeply"
    if "integer string conversion" in str(e):
        return (
            f"not valid {language}: an integer has more than {sys.get_int_max_str_digits()} digits"
        )
    return f"not valid {language}: {e}"


def located(e: FdtgenError, source: str) -> FdtgenError:
    """``e`` with its line starting ``source: `` (a file, or ``command line``);
    ``e.setting`` is cleared, as the line now says where the setting came from."""
    e.args = (f"{source}: {e}",)
    e.setting = None
    return e


def shown(value: object, hex_from: int = 0x10000) -> str:
    """``value`` as a message repeats it: integers from ``hex_from`` up in hex,
    integers past :data:`SHOWN_DIGITS` digits and strings past :data:`SHOWN_CHARS`
    characters cut short with their length, lists and tables by their size."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        sign, n = ("-", -value) if value < 0 else ("", value)
        if n >= hex_from:
            digits, prefix, unit = f"{n:x}", "0x", "hex digits"
        else:
            digits, prefix, unit = str(n), "", "digits"  # under hex_from: short
        if len(digits) > SHOWN_DIGITS:
            return f"{sign}{prefix}{digits[:SHOWN_DIGITS]}... ({len(digits)} {unit})"
        return f"{sign}{prefix}{digits}"
    if isinstance(value, str):
        if len(value) > SHOWN_CHARS:
            return f"{value[:SHOWN_CHARS]!r}... ({len(value)} chars)"
        return repr(value)
    if isinstance(value, list | tuple | dict):
        # Repeated only when short and flat: a 1,000-deep array has no useful repr.
        flat = all(
            isinstance(v, bool | int | float | str) and len(shown(v, hex_from)) < 24
            for v in (value.values() if isinstance(value, dict) else value)
        )
        if flat and len(value) <= 8:
            if isinstance(value, dict):
                pairs = (f"{shown(k)}: {shown(v, hex_from)}" for k, v in value.items())
                return "{" + ", ".join(pairs) + "}"
            return "[" + ", ".join(shown(v, hex_from) for v in value) + "]"
        kind, item = ("a table", "key") if isinstance(value, dict) else ("a list", "item")
        return f"{kind} of {len(value)} {item}{'' if len(value) == 1 else 's'}"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} chars)"
