"""Each VMM template against the facts of its upstream source.

``fixtures/upstream/<template>.toml`` lists, by hand, what the VMM's own
source says (repository, commit, file and line for each fact): where RAM, the
GIC, each UART, RTC and virtio-mmio slot sit, which SPI and trigger each
takes, the timer PPIs, the PSCI method, and where the kernel, initrd and DTB
go. Each fact is checked against a blob fdtgen builds (read back through
fdtgen's strict parser, not through the template) and its boot placement.

A fact marked ``deviation`` is one fdtgen deliberately does differently; its
``fdtgen`` table holds what fdtgen does instead, and the test asserts that
value, and that it really differs from upstream's.

Fact keys (each fact has ``item``, ``source`` and one of the checks):

- ``compatible`` (+ ``at``, a first ``reg`` address): the node checked by
  ``reg`` (its first entries, as ``[base, size]`` pairs), ``interrupts`` (the
  cells; ``[]`` for none), ``prop``/``value`` (a string property),
  ``prop``/``cells`` (a property's 32-bit cells; ``[]`` for an empty one),
  ``no_prop`` (a property the node does not have) or ``absent = true``;
  ``path`` names a node by path instead (``/psci``);
- ``memory``: every ``memory`` node's ``reg`` entries, by address;
- ``virtio``: the virtio-mmio nodes: ``base``, ``stride``, ``count``,
  ``first_spi`` (``spis`` for a list), ``flags``;
- ``placement``: ``kernel_base`` (where the Image's ``text_offset`` is counted
  from), ``dtb``, ``initrd``, ``initrd_end`` (from ``/chosen``).

``config`` (in the file, and per fact) is the build: keys of a fdtgen config.
"""

from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import fdtgen
from fdtgen.fdt.parse import parse
from fdtgen.fdt.tree import Node
from fdtgen.template.load import builtin_names

from .conftest import FIXTURES

UPSTREAM = FIXTURES / "upstream"
# Templates of VMMs with an upstream source in a repository; the QEMU ones are
# checked against QEMU's own dumpdtb (tests/test_qemu_dumpdtb.py).
VMMS = [
    "cloud-hypervisor",
    "crosvm",
    "firecracker",
    "firecracker-pci",
    "kvmtool",
    "libkrun",
    "openvmm",
    "squib",
]
CHECKS = ("reg", "interrupts", "prop", "no_prop", "absent", "memory", "virtio", "placement")


def fixture(name: str) -> dict[str, Any]:
    with open(UPSTREAM / f"{name}.toml", "rb") as f:
        return tomllib.load(f)


def facts() -> list[Any]:
    out = []
    for name in VMMS:
        data = fixture(name)
        for i, fact in enumerate(data["fact"]):
            out.append(pytest.param(name, i, id=f"{name}:{fact['item']}"))
    return out


@cache
def _build(key: str) -> fdtgen.Result:
    return fdtgen.build(json.loads(key))


def built(name: str, fact: dict[str, Any]) -> tuple[Node, fdtgen.Result]:
    config = {"template": name, **fixture(name).get("config", {}), **fact.get("config", {})}
    result = _build(json.dumps(config, sort_keys=True))
    return parse(result.blob).root, result


def cells(node: Node, name: str) -> tuple[int, ...]:
    prop = node.prop(name)
    return () if prop is None else prop.as_cells()


def reg_pairs(node: Node) -> list[list[int]]:
    """A root-level node's ``reg`` as ``[base, size]`` pairs (2 + 2 cells everywhere here)."""
    c = cells(node, "reg")
    return [[(c[i] << 32) | c[i + 1], (c[i + 2] << 32) | c[i + 3]] for i in range(0, len(c), 4)]


def nodes(root: Node) -> list[tuple[str, Node]]:
    return list(root.walk())


def find(root: Node, fact: dict[str, Any]) -> Node | None:
    if "path" in fact:
        return root.find(fact["path"])
    for _, node in nodes(root):
        compatible = node.prop("compatible")
        if compatible is None or fact["compatible"] not in compatible.as_strings():
            continue
        if "at" not in fact or (node.prop("reg") and reg_pairs(node)[0][0] == fact["at"]):
            return node
    return None


def observe(root: Node, result: fdtgen.Result, fact: dict[str, Any], want: dict[str, Any]) -> Any:
    """What the built machine says for the check ``want`` holds (a fact or its fdtgen table)."""
    if "memory" in want:
        regs = [r for _, n in nodes(root) if n.name.split("@")[0] == "memory" for r in reg_pairs(n)]
        return sorted(regs)
    if "virtio" in want:
        slots = sorted(
            (reg_pairs(n)[0], cells(n, "interrupts"))
            for _, n in nodes(root)
            if n.prop("compatible") and "virtio,mmio" in n.prop("compatible").as_strings()  # type: ignore[union-attr]
        )
        spec = want["virtio"]
        seen: dict[str, Any] = {"count": len(slots)}
        if slots:
            seen["base"] = slots[0][0][0]
            seen["stride"] = slots[1][0][0] - slots[0][0][0] if len(slots) > 1 else None
            seen["first_spi"] = slots[0][1][1]
            seen["spis"] = [irq[1] for _, irq in slots]
            seen["flags"] = sorted({irq[2] for _, irq in slots})
            seen["size"] = slots[0][0][1]
        return {k: seen.get(k) for k in spec}
    if "placement" in want:
        p = result.placement
        assert p is not None, "the fact needs a kernel in its config"
        chosen = root.find("/chosen")
        assert chosen is not None
        seen = {
            "kernel_base": p.kernel.base - p.text_offset,
            "dtb": p.dtb.base,
            "dtb_size": p.dtb.size,
            "initrd": _u64(chosen, "linux,initrd-start"),
            "initrd_end": _u64(chosen, "linux,initrd-end"),
        }
        return {k: seen[k] for k in want["placement"]}
    node = find(root, fact)
    if "absent" in want:
        return node is None
    assert node is not None, f"no node for {fact.get('path') or fact.get('compatible')}"
    if "reg" in want:
        return reg_pairs(node)[: len(want["reg"])]
    if "interrupts" in want:
        return list(cells(node, "interrupts"))
    if "no_prop" in want:
        return node.prop(want["no_prop"]) is None
    if "prop" in want:
        prop = node.prop(want["prop"])
        if prop is None:
            return None
        return list(prop.as_cells()) if "cells" in want else list(prop.as_strings())
    raise AssertionError(f"fact {fact['item']!r} has no check ({', '.join(CHECKS)})")


def _u64(node: Node, name: str) -> int | None:
    prop = node.prop(name)
    return None if prop is None else int.from_bytes(prop.value, "big")


def expected(want: dict[str, Any]) -> Any:
    if "memory" in want:
        return sorted(want["memory"])
    for key in ("virtio", "placement", "reg", "interrupts", "absent"):
        if key in want:
            return want[key]
    if "no_prop" in want:
        return True
    if "cells" in want:
        return want["cells"]
    if "prop" in want:
        v = want["value"]
        return v if isinstance(v, list) else [v]
    raise AssertionError(f"no check in {want}")


def with_fact_selector(fact: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """A deviation's ``fdtgen`` table checks the same node with the same kind of check."""
    merged = {k: v for k, v in fact.items() if k not in (*CHECKS, "value", "cells")}
    merged.update(table)
    if "prop" in fact and "prop" not in table:
        merged["prop"] = fact["prop"]
    return merged


@pytest.mark.parametrize("name,index", facts())
def test_template_keeps_the_upstream_fact(name: str, index: int) -> None:
    fact = fixture(name)["fact"][index]
    root, result = built(name, fact)
    upstream_value = expected(fact)
    if "deviation" in fact:
        table = with_fact_selector(fact, fact["fdtgen"])
        ours = observe(root, result, fact, table)
        assert ours == expected(table), (
            f"{name}: {fact['item']}: fdtgen's documented value {expected(table)} is now {ours}"
        )
        assert observe(root, result, fact, fact) != upstream_value, (
            f"{name}: {fact['item']}: now matches upstream; drop the deviation"
        )
    else:
        assert observe(root, result, fact, fact) == upstream_value, (
            f"{name}: {fact['item']} ({fact['source']}): upstream {upstream_value}"
        )


@pytest.mark.parametrize("name", VMMS)
def test_fixture_names_its_upstream_and_every_source(name: str) -> None:
    data = fixture(name)
    assert data["template"] == name
    assert data["repository"]
    if "commit" in data:
        assert len(data["commit"]) == 40
        int(data["commit"], 16)
    else:  # squib: its layout.rs, cited by file
        assert data["file"].endswith(".rs")
    for fact in data["fact"]:
        assert fact["item"] and fact["source"], fact
        assert sum(k in fact for k in CHECKS) == 1, fact["item"]
        if "prop" in fact:  # a string value or cells, not both
            assert ("value" in fact) != ("cells" in fact), fact["item"]
        if "deviation" in fact:
            assert isinstance(fact["fdtgen"], dict) and len(fact["deviation"]) > 40, fact["item"]


def test_every_vmm_template_has_a_fixture() -> None:
    vmm_templates = [n for n in builtin_names() if not n.startswith("qemu-")]
    assert vmm_templates == VMMS
    assert sorted(p.stem for p in Path(UPSTREAM).glob("*.toml")) == VMMS
