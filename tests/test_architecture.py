"""The package's shape: layers a reader sees in the folder tree, imports pointing one way.

Every module belongs to a layer; a module may import its own layer's modules
and lower layers' (type-only imports included), never a higher layer's, and
no import cycle exists anywhere. docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fdtgen"

# Lowest first. A module is placed by its longest matching prefix.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("fdtgen.errors", "fdtgen.files", "fdtgen.units", "fdtgen.version"),
    ("fdtgen.fdt",),
    ("fdtgen.spec", "fdtgen.irq", "fdtgen.ranges", "fdtgen.allocator"),
    ("fdtgen.template",),
    ("fdtgen.layout",),
    ("fdtgen.boot",),
    ("fdtgen.devicetree",),
    ("fdtgen.pipeline", "fdtgen.manifest"),
    (
        "fdtgen.checks",
        "fdtgen.codegen",
        "fdtgen.diff",
        "fdtgen.pictures",
        "fdtgen.qemu",
        "fdtgen.debian",
    ),
    ("fdtgen.config", "fdtgen.batch"),
    ("fdtgen.cli", "fdtgen.api"),
    ("fdtgen", "fdtgen.__main__"),
)


def module_name(path: Path) -> str:
    parts = ["fdtgen", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    best = max(
        (
            (len(prefix), i)
            for i, group in enumerate(LAYERS)
            for prefix in group
            if module == prefix or module.startswith(prefix + ".")
        ),
        default=None,
    )
    assert best is not None, f"{module} is in no layer"
    return best[1]


def imports(module: str) -> set[str]:
    """The fdtgen modules ``module`` imports, at any depth of its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        out |= {n for n in names if n in MODULES and n != module}
    return out


GRAPH = {m: imports(m) for m in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    upward = sorted(m for m in GRAPH[module] if layer(m) > layer(module))
    assert upward == [], f"{module} (layer {layer(module)}) imports a higher layer: {upward}"


def test_no_import_cycles():
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n) :] + [n])
            elif n not in state:
                walk(n, [*path, n])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            walk(m, [m])
    assert cycles == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_600_lines(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= 600, f"{module} has {lines} lines; split it by concern"


def test_nothing_is_compiled_at_run_time():
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("exec", "eval"):
                raise AssertionError(f"{module}:{node.lineno} calls {node.func.id}")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("fdtgen.cli.")))
def test_commands_do_not_import_each_other(module):
    shared = {"fdtgen.cli", "fdtgen.cli.common"}
    others = sorted(m for m in GRAPH[module] if m.startswith("fdtgen.cli.") and m not in shared)
    assert others == [], f"{module} imports other commands: {others}; share through cli/common.py"


def test_the_package_holds_only_modules_and_its_type_marker():
    stray = sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix != ".py"
        and p.name != "py.typed"
    )
    assert stray == []
