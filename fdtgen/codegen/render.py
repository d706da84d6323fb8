"""A :class:`~fdtgen.codegen.model.Module` as a Rust module or a C header.

Both files start with the command that regenerates them (``Regenerate:``), which
``fdtgen codegen --check`` reads back. Rust: one ``pub const`` per value with a
``///`` doc comment, then ``const _: () = assert!(..., "message");`` per proof,
and no inner attributes or ``//!`` comments, so the file works as a module
(``mod layout;``) and through ``include!``. C: an include guard, one
``#define`` per value (``ULL`` for 64-bit, ``U`` for 32-bit), then
``_Static_assert`` per proof (C11).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable

from fdtgen.codegen.model import (
    U32,
    U64,
    AllOnes,
    Expr,
    Function,
    Module,
    Op,
    Proof,
    const_name,
)

REGENERATE = "Regenerate: "
WIDTH = 100
_COMPARISON = ("==", "!=", "<", "<=", ">=", "&&", "||")


def hex_literal(value: int, sep: str = "_") -> str:
    """``0x0800_0000``: uppercase digits, padded to whole groups of four (Rust style)."""
    digits = f"{value:X}"
    digits = digits.rjust(-(-len(digits) // 4) * 4, "0")
    return "0x" + sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _type(e: Expr, types: dict[str, str]) -> str | None:
    """The integer type of ``e`` (``None``: an untyped literal; ``bool`` for a test)."""
    if isinstance(e, str):
        return types[e]
    if isinstance(e, AllOnes):
        return U64
    if isinstance(e, int):
        return None
    if e.op in _COMPARISON:
        return "bool"
    if e.op == ">>":
        return _type(e.a, types)
    ta, tb = _type(e.a, types), _type(e.b, types)
    return U64 if U64 in (ta, tb) else ta or tb


def _expr(
    e: Expr, types: dict[str, str], name: Callable[[str], str], rust: bool, wide: bool = False
) -> str:
    """``e`` in Rust (``as u64`` where a u32 meets a u64) or C syntax."""
    if isinstance(e, str):
        return name(e)
    if isinstance(e, AllOnes):
        return "u64::MAX" if rust else "0xFFFFFFFFFFFFFFFFULL"
    if isinstance(e, int):  # a bare number: an address or size beside a u64, else a count
        return hex_literal(e, "_" if rust else "") if wide and e >= 0x100 else str(e)

    def side(x: Expr, widen: bool) -> str:
        text = _expr(x, types, name, rust, widen)
        if isinstance(x, Op):
            text = f"({text})"
        if rust and widen and _type(x, types) == U32:
            text = f"({text} as u64)"
        return text

    widen = e.op not in ("&&", "||", ">>") and U64 in (_type(e.a, types), _type(e.b, types))
    return f"{side(e.a, widen)} {e.op} {side(e.b, widen and e.op != '>>')}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _visible(text: str) -> str:
    """Control characters (a tag may hold any) as ``\\xNN`` text: a comment stays one line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def rust_string(text: str) -> str:
    """A Rust string literal that ``assert!`` takes as its message: a format string,
    so ``{`` and ``}`` are doubled."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("{", "{{").replace("}", "}}")
    return '"' + _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text) + '"'


def c_string(text: str) -> str:
    """A C string literal: control characters as octal escapes (a hex escape would
    swallow the digits after it), ``?`` escaped so no trigraph forms."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")
    return '"' + _CONTROL.sub(lambda m: f"\\{ord(m[0]):03o}", text) + '"'


def c_comment(text: str) -> str:
    """Text safe inside ``/* */``: no comment markers, no trigraph (``??/`` splices lines)."""
    text = _visible(text).replace("*/", "* /").replace("/*", "/ *")
    return re.sub(r"\?(?=\?)", "?\\\\", text)


def unsafe_in_comments(text: str) -> bool:
    """``text`` would change on its way into a comment (it could not be read back)."""
    return c_comment(text) != text or rust_comment(text) != text


# Words clippy's doc_markdown takes for code: with an underscore, or mixed case past
# the first letter (GICv3, vCPUs, MicroVM).
_IDENT = re.compile(
    r"(?<![\w`])([A-Za-z0-9]*_[A-Za-z0-9_]*|[A-Za-z][a-z0-9]*[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*"
    r"|[A-Za-z]+[A-Z][a-z0-9]+[A-Za-z0-9]*|[a-z]+[A-Z][A-Za-z0-9]*)(?![\w`])"
)
# A template key as the doc comments cite it: [gic] dist_base, dist_size; [[device]] tag = "rtc"
_KEY = re.compile(r'\[\[?[\w.]+\]\]?(?: tag = "[^"`]*"| \w+(?:\.\.\w+)?(?:, \w+)*)?')
_CODE = re.compile(r"(`[^`]*`)")


def _outside_code(text: str, change: Callable[[str], str]) -> str:
    parts = _CODE.split(text)
    return "".join(part if i % 2 else change(part) for i, part in enumerate(parts))


def rust_doc(text: str) -> str:
    """A ``///`` comment's text, as rustdoc and clippy's ``doc_markdown`` want it:
    template keys and names in backticks, no bracket read as an intra-doc link."""
    text = _outside_code(rust_comment(text), lambda t: _KEY.sub(lambda m: f"`{m[0]}`", t))
    text = _outside_code(text, lambda t: _IDENT.sub(lambda m: f"`{m[1]}`", t))
    return _outside_code(text, lambda t: t.replace("[", "\\[").replace("]", "\\]"))


def rust_comment(text: str) -> str:
    """Text safe in a ``//`` or ``///`` comment, and in rustdoc (no code fence a doctest
    would compile)."""
    return re.sub(r"`{3,}", lambda m: "'" * len(m[0]), _visible(text))


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width``; names and ranges (``system-mem-gap``) are never split."""
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def _comment(
    lines: list[str], lead: str, safe: Callable[[str], str], keep_first: bool = False
) -> list[str]:
    """``lines`` made ``safe`` and wrapped to the width behind ``lead``; ``keep_first``:
    the first stays whole."""
    lines = [safe(line) for line in lines]
    out = [f"{lead}{lines[0]}"] if keep_first else []
    for line in lines[keep_first:]:
        wrapped = _wrap(line, WIDTH - len(lead)) or [""]
        out += [f"{lead}{w}".rstrip() for w in wrapped]
    return out


def _header(m: Module) -> list[str]:
    t = m.template
    return [
        f"{REGENERATE}{m.command}",
        "",
        f"Generated by fdtgen from template {t.name}: the guest-physical map the DTB describes. "
        "Do not edit; regenerate it, and run `fdtgen codegen --check FILE` in CI to catch drift.",
        "",
        *m.notes,
        "",
        "Addresses are guest-physical, sizes in bytes, every _END exclusive; "
        "bracketed names are the template's keys.",
    ]


def rust(m: Module) -> str:
    types = {c.name: c.ty for c in m.consts()}
    out = _comment(_header(m), "// ", rust_comment, keep_first=True)
    for s in m.sections:
        out += ["", f"// ---- {s.title} ----"]
        for c in s.consts:
            value = str(c.value) if c.ty == U32 else hex_literal(c.value)
            doc = _comment([c.doc], "/// ", rust_doc)
            out += ["", *doc, f"pub const {c.name}: {c.ty} = {value};"]
        for f in s.functions:
            out += ["", *_rust_function(f, types)]
    out += [
        "",
        "// ---- Proofs: a broken one fails the build, not the boot ----",
        "",
        "#[allow(clippy::all, clippy::pedantic)]",
        "#[rustfmt::skip]",
        "mod proofs {",
        "    use super::*;",
        "",
        *(f"    {line}" if line else "" for p in m.proofs for line in _rust_proof(p, types)),
        "}",
    ]
    return "\n".join(out) + "\n"


def _rust_function(f: Function, types: dict[str, str]) -> list[str]:
    """A ``const fn`` that panics (at compile time in a const context) outside 1..limit."""
    body = _expr(f.body, {**types, f.arg: U64}, str, rust=True)
    limit = f.limit if types[f.limit] == U64 else f"{f.limit} as u64"
    return [
        *_comment([f.doc], "/// ", rust_doc),
        "///",
        "/// # Panics",
        "///",
        f"/// If `{f.arg}` is 0 or above `{f.limit}`: a compile error where it is evaluated "
        "as a constant.",
        "#[must_use]",
        "#[allow(clippy::cast_lossless)]",
        f"pub const fn {f.name}({f.arg}: u64) -> u64 {{",
        f'    assert!({f.arg} != 0, "{f.arg} is 0");',
        f'    assert!({f.arg} <= {limit}, "{f.arg} > {f.limit}");',
        f"    {body}",
        "}",
    ]


def _rust_proof(p: Proof, types: dict[str, str]) -> list[str]:
    """One ``const _`` item, on one line when it fits in the module's indent."""
    cond = _expr(p.expr, types, str, rust=True)
    message = rust_string(p.message)
    line = f"const _: () = assert!({cond}, {message});"
    if len(line) <= WIDTH - 4:
        return [line]
    return ["const _: () = assert!(", f"    {cond},", f"    {message}", ");"]


PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def c_prefix(template_name: str) -> str:
    """The default C name prefix: the template's name as a constant stem, then ``_``."""
    return const_name(template_name) + "_"


def c(m: Module, prefix: str) -> str:
    types = {k.name: k.ty for k in m.consts()}
    guard = f"{prefix}LAYOUT_H"
    head = _comment(_header(m), " * ", c_comment, keep_first=True)
    out = ["/*", *head, " */", f"#ifndef {guard}", f"#define {guard}"]

    for s in m.sections:
        out += ["", f"/* ---- {s.title} ---- */"]
        for k in s.consts:
            suffix = "ULL" if k.ty == U64 else "U"
            value = hex_literal(k.value, "") if k.ty == U64 else str(k.value)
            out += ["", *_c_doc(k.doc), f"#define {prefix}{k.name} {value}{suffix}"]
        for f in s.functions:
            out += ["", *_c_function(f, types, prefix)]
    is_type = f"{prefix}IS_TYPE"
    out += [
        "",
        "/* ---- Proofs: a broken one fails the build, not the boot ---- */",
        "",
        "/* C11 and C++11 check them; an older compiler takes the constants alone. */",
        "#if (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L) || \\",
        "    (defined(__cplusplus) && __cplusplus >= 201103L)",
        "#if defined(__cplusplus)",
        "#include <type_traits>",
        f"#define {is_type}(x, t) (std::is_same<decltype(x), t>::value)",
        "#if !defined(_Static_assert)",
        "#define _Static_assert static_assert",
        f"#define {prefix}STATIC_ASSERT_DEFINED",
        "#endif",
        "#else",
        f"#define {is_type}(x, t) _Generic((x), t: 1, default: 0)",
        "#endif",
        "",
        "/* Each constant's type: an edit to a negative or unsuffixed number is caught. */",
    ]
    for k in m.consts():
        ctype = "unsigned long long" if k.ty == U64 else "unsigned int"
        suffix = "ULL" if k.ty == U64 else "U"
        name = prefix + k.name
        out.append(f'_Static_assert({is_type}({name}, {ctype}), "{name} is not {suffix}");')
    out.append("")
    for p in m.proofs:
        cond = _expr(p.expr, types, lambda n: f"({prefix}{n})", rust=False)
        message = c_string(p.message)
        line = f"_Static_assert({cond}, {message});"
        out.append(line if len(line) <= WIDTH else f"_Static_assert(\n    {cond},\n    {message});")
    out += [
        "",
        f"#undef {is_type}",
        f"#if defined({prefix}STATIC_ASSERT_DEFINED)",
        "#undef _Static_assert",
        f"#undef {prefix}STATIC_ASSERT_DEFINED",
        "#endif",
        "#endif /* C11, C++11 */",
        "",
        f"#endif /* {guard} */",
    ]
    return "\n".join(out) + "\n"


def _c_function(f: Function, types: dict[str, str], prefix: str) -> list[str]:
    """A function-like macro; its argument is not checked (C has no const fn)."""
    arg = f"(unsigned long long)({f.arg})"
    body = _expr(
        f.body,
        {**types, f.arg: U64},
        lambda n: arg if n == f.arg else f"({prefix}{n})",
        rust=False,
    )
    doc = f"{f.doc} {f.arg} must be 1..{f.limit}: the macro does not check it."
    head = f"#define {prefix}{f.name.upper()}({f.arg})"
    line = f"{head} ({body})"
    return [*_c_doc(doc), *([line] if len(line) <= WIDTH else [f"{head} \\", f"    ({body})"])]


def _c_doc(doc: str) -> list[str]:
    lines = _wrap(c_comment(doc), WIDTH - 3)
    if len(lines) == 1:
        return [f"/* {lines[0]} */"]
    return ["/*", *(f" * {w}" for w in lines), " */"]


def render(m: Module, lang: str, prefix: str | None = None) -> str:
    if lang == "rust":
        return rust(m)
    return c(m, c_prefix(m.template.name) if prefix is None else prefix)


__all__ = ["PREFIX_RE", "REGENERATE", "c", "c_prefix", "hex_literal", "render", "rust"]
