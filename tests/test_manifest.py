"""The placement manifest: its schema, its contract with loaders, ``fdtgen build/place/schema``."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import struct
import subprocess
import sys
from pathlib import Path

import jsonschema
import libfdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fdtgen.boot.image import InputFile, declared_kernel, read_kernel
from fdtgen.devicetree.machine import Machine
from fdtgen.errors import ConfigError, FdtgenError, ManifestError
from fdtgen.fdt.dts import to_dts
from fdtgen.manifest import from_json, manifest_for, schema, to_json
from fdtgen.pipeline import Boot, build
from fdtgen.template.load import load_template

from .conftest import FIXTURES, ROOT, run_fdtgen
from .test_placement import check_booting_rules

KERNEL = FIXTURES / "kernel" / "vmlinuz-6.1.0-56-cloud-arm64.head"
MiB = 1 << 20


def fdtgen(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI from any working directory: the checkout stays importable."""
    return run_fdtgen(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT), **(env or {})})


def sha256sum(path: Path) -> str:
    return subprocess.run(
        ["sha256sum", str(path)], capture_output=True, text=True, check=True
    ).stdout.split()[0]


@pytest.fixture
def initrd(tmp_path: Path) -> Path:
    p = tmp_path / "initrd.cpio.gz"
    p.write_bytes(gzip.compress(b"070701" + bytes(range(256)) * 100, mtime=0))
    return p


def chosen(blob: bytes) -> dict[str, bytes]:
    buf = bytearray(blob)
    assert libfdt.fdt_check_full(buf, len(buf)) == 0
    fdt = libfdt.Fdt(buf)
    off = fdt.first_property_offset(fdt.path_offset("/chosen"), [libfdt.NOTFOUND])
    out = {}
    while off >= 0:
        p = fdt.get_property_by_offset(off)
        out[p.name] = bytes(p)
        off = fdt.next_property_offset(off, [libfdt.NOTFOUND])
    return out


def real_build(**boot):
    return build(Machine(), Boot(kernel=read_kernel(str(KERNEL)), **boot))


# -- schema ------------------------------------------------------------------------------


def test_manifest_validates_against_its_own_json_schema(initrd):
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    b = real_build(initrd_size=initrd.stat().st_size, rng_seed=64, kaslr_seed=True)
    doc = json.loads(to_json(manifest_for(b)))
    jsonschema.validate(doc, s, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    "path, value",
    [
        pytest.param(("kernel", "entry"), None, id="missing-entry"),
        pytest.param(("dtb", "address"), -8, id="negative-address"),
        pytest.param(("registers", "pc"), "0x80200000", id="string-address"),
        pytest.param(("kernel", "surprise"), 1, id="unknown-key"),
        pytest.param(("dtb", "size"), 3 * MiB, id="dtb-over-2mib"),
    ],
)
def test_the_schema_rejects_a_broken_manifest(path, value):
    doc = json.loads(to_json(manifest_for(real_build())))
    table, key = path
    if value is None:
        del doc[table][key]
    else:
        doc[table][key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)


def test_schema_command_prints_the_schema():
    r = fdtgen("schema")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == schema()


def test_manifest_keeps_the_names_loaders_use(initrd):
    b = real_build(initrd_size=initrd.stat().st_size)
    doc = json.loads(to_json(manifest_for(b)))
    for table, keys in {
        "kernel": ("load_address", "entry", "text_offset", "image_size"),
        "initrd": ("address", "size"),
        "dtb": ("address", "size"),
        "registers": ("x0", "x1", "x2", "x3", "pc"),
    }.items():
        for key in keys:
            assert type(doc[table][key]) is int, (table, key)
    assert all(set(m) == {"address", "size"} for m in doc["memory"])
    for key in ("template", "fdtgen_version", "inputs", "devices", "gic", "patch_slots"):
        assert key in doc
    assert doc["template"] == "squib"


# -- the manifest agrees with the blob (read by libfdt) -----------------------------------


def test_devices_gic_and_memory_in_the_manifest_match_the_dtb():
    b = real_build()
    doc = json.loads(to_json(manifest_for(b)))
    buf = bytearray(b.blob)
    fdt = libfdt.Fdt(buf)

    def cells(path: str, name: str) -> tuple[int, ...]:
        raw = fdt.getprop(fdt.path_offset(path), name)
        return struct.unpack(f">{len(raw) // 4}I", bytes(raw))

    def reg(path: str) -> list[tuple[int, int]]:
        c = cells(path, "reg")
        return [(c[i] << 32 | c[i + 1], c[i + 2] << 32 | c[i + 3]) for i in range(0, len(c), 4)]

    flags = {"edge-rising": 1, "edge-falling": 2, "level-high": 4, "level-low": 8}
    paths = {}
    off, depth = 0, 0
    while off >= 0 and depth >= 0:
        paths[fdt.get_path(off)] = off
        off, depth = fdt.next_node(off, depth, [libfdt.NOTFOUND])
    assert len(doc["devices"]) == 33  # PL011 + 32 virtio-mmio
    for d in doc["devices"]:
        node = next(p for p in paths if p.endswith(f"@{d['address']:x}"))
        assert reg(node) == [(d["address"], d["size"])]
        assert cells(node, "interrupts") == (0, d["spi"], flags[d["trigger"]])
        assert d["intid"] == d["spi"] + 32
    gic = next(p for p in paths if p.startswith("/interrupt-controller@"))
    g = doc["gic"]
    expected = [(g["distributor"]["address"], g["distributor"]["size"])]
    expected += [(r["address"], r["size"]) for r in g["redistributors"]]
    assert reg(gic) == expected
    mem = [p for p in paths if p.startswith("/memory@")]
    assert [r for p in mem for r in reg(p)] == [(m["address"], m["size"]) for m in doc["memory"]]


def test_dts_with_placement_compiles_to_the_same_blob(dtc, initrd):
    b = real_build(initrd_size=initrd.stat().st_size, rng_seed=32, kaslr_seed=True)
    compiled, warnings = dtc.dts_to_dtb(to_dts(b.tree))
    assert warnings == ""
    assert compiled == b.blob
    assert dtc.dtb_to_dtb(b.blob)[0] == b.blob


# -- entropy -------------------------------------------------------------------------------


def test_zero_entropy_slots_can_be_patched_in_place(dtc):
    b = real_build(rng_seed=64, kaslr_seed=True)
    doc = json.loads(to_json(manifest_for(b)))
    slots = {s["property"]: s for s in doc["patch_slots"]}
    assert set(slots) == {"/chosen/rng-seed", "/chosen/kaslr-seed"}
    assert (slots["/chosen/rng-seed"]["size"], slots["/chosen/kaslr-seed"]["size"]) == (64, 8)
    patched = bytearray(b.blob)
    rng = random.Random(1234)
    fresh = {}
    for prop, s in slots.items():
        assert not s["derived"]
        assert patched[s["offset"] : s["offset"] + s["size"]] == bytes(s["size"])
        fresh[prop] = bytes(rng.randrange(256) for _ in range(s["size"]))
        patched[s["offset"] : s["offset"] + s["size"]] = fresh[prop]
    props = chosen(bytes(patched))
    assert props["rng-seed"] == fresh["/chosen/rng-seed"]
    assert props["kaslr-seed"] == fresh["/chosen/kaslr-seed"]
    # The patched blob is still exactly what dtc writes for its tree.
    assert dtc.dtb_to_dtb(bytes(patched))[0] == bytes(patched)


def test_an_explicit_seed_derives_deterministic_entropy():
    a = real_build(rng_seed=48, kaslr_seed=True, entropy_seed=b"host-42")
    again = real_build(rng_seed=48, kaslr_seed=True, entropy_seed=b"host-42")
    other = real_build(rng_seed=48, kaslr_seed=True, entropy_seed=b"host-43")
    assert a.blob == again.blob
    pa, po = chosen(a.blob), chosen(other.blob)
    assert len(pa["rng-seed"]) == 48 and len(pa["kaslr-seed"]) == 8
    assert pa["rng-seed"] != po["rng-seed"] and pa["kaslr-seed"] != po["kaslr-seed"]
    assert pa["rng-seed"] != bytes(48) and pa["kaslr-seed"] != pa["rng-seed"][:8]
    assert all(s.derived for s in a.slots)
    for s in a.slots:
        name = s.property.rsplit("/", 1)[1]
        assert a.blob[s.offset : s.offset + s.size] == pa[name]


def test_without_a_kernel_the_dtb_is_unchanged_and_has_no_initrd():
    plain = build(Machine())
    assert plain.placement is None
    assert "linux,initrd-start" not in chosen(plain.blob)
    assert build(Machine(), Boot()).blob == plain.blob


def test_the_pipeline_does_not_import_pydantic():
    code = (
        "import sys, fdtgen.pipeline, fdtgen.boot.placement, fdtgen.boot.image\n"
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# -- the command line ----------------------------------------------------------------------


def test_build_twice_gives_identical_dtb_and_manifest(tmp_path, initrd):
    kernel_gz = tmp_path / "Image.gz"
    kernel_gz.write_bytes(gzip.compress(KERNEL.read_bytes(), mtime=0))
    results = []
    for seed in ("0", "77"):
        out, man = tmp_path / f"{seed}.dtb", tmp_path / f"{seed}.json"
        r = fdtgen(
            "build",
            "--kernel",
            str(kernel_gz),
            "--initrd",
            str(initrd),
            "--rng-seed",
            "64",
            "--kaslr-seed",
            "-o",
            str(out),
            "--manifest",
            str(man),
            env={"PYTHONHASHSEED": seed},
        )
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        results.append((out.read_bytes(), man.read_bytes()))
    assert results[0] == results[1]
    blob, raw = results[0]
    doc = json.loads(raw)
    assert doc["kernel"]["format"] == "gzip"
    assert doc["kernel"]["size"] == KERNEL.stat().st_size  # the decompressed Image
    assert doc["dtb"]["size"] == len(blob)
    inputs = {i["role"]: i for i in doc["inputs"]}
    assert inputs["kernel"]["sha256"] == sha256sum(kernel_gz)
    assert inputs["initrd"] == {
        "role": "initrd",
        "path": str(initrd),
        "size": initrd.stat().st_size,
        "sha256": sha256sum(initrd),
    }
    check_booting_rules(
        [(m["address"], m["address"] + m["size"]) for m in doc["memory"]],
        (0, 0x1AB_0000, 0xA),
        KERNEL.stat().st_size,
        doc,
        blob,
    )


def test_config_names_kernel_and_initrd_relative_to_itself(tmp_path, initrd):
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / "Image").write_bytes(KERNEL.read_bytes())
    cfg = tmp_path / "vm.toml"
    cfg.write_text(
        'memory = "1GiB"\nkernel = "boot/Image"\ninitrd = "initrd.cpio.gz"\nrng_seed = 16\n'
    )
    man = tmp_path / "boot.json"
    r = fdtgen(
        "build",
        str(cfg),
        "-o",
        str(tmp_path / "g.dtb"),
        "--manifest",
        str(man),
        cwd=tmp_path.parent,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(man.read_text())
    roles = [i["role"] for i in doc["inputs"]]
    assert roles == ["config", "kernel", "initrd"]
    assert doc["inputs"][0]["sha256"] == sha256sum(cfg)
    assert doc["inputs"][1]["sha256"] == sha256sum(tmp_path / "boot" / "Image")
    assert doc["memory"] == [{"address": 0x8000_0000, "size": 1 << 30}]
    assert [s["size"] for s in doc["patch_slots"]] == [16]


def test_config_may_declare_sizes_instead_of_files(tmp_path):
    cfg = tmp_path / "vm.toml"
    cfg.write_text(
        'kernel = { size = "30MiB", text_offset = 0x80000, image_size = "32MiB", flags = 10 }\n'
        'initrd = { size = "8MiB" }\n'
    )
    man = tmp_path / "boot.json"
    out = tmp_path / "g.dtb"
    r = fdtgen("build", str(cfg), "-o", str(out), "--manifest", str(man))
    assert r.returncode == 0, r.stderr
    doc = json.loads(man.read_text())
    assert doc["kernel"]["format"] == "declared"
    assert (doc["kernel"]["text_offset"], doc["kernel"]["load_address"]) == (0x80000, 0x8028_0000)
    assert doc["initrd"]["size"] == 8 * MiB
    props = chosen(out.read_bytes())
    assert props["linux,initrd-end"] == struct.pack(">Q", doc["initrd"]["address"] + 8 * MiB)


def test_place_prints_the_manifest_addresses(tmp_path, initrd):
    man = tmp_path / "m.json"
    args = ("--kernel", str(KERNEL), "--initrd", str(initrd), "--rng-seed", "8")
    assert (
        fdtgen("build", *args, "-o", str(tmp_path / "g.dtb"), "--manifest", str(man)).returncode
        == 0
    )
    r = fdtgen("place", *args)
    assert r.returncode == 0, r.stderr
    doc = json.loads(man.read_text())
    rows = {
        line.split()[0]: line.split()[1:4]
        for line in r.stdout.splitlines()
        if line.split()[:1] and line.split()[0] in ("kernel", "initrd", "dtb")
    }
    assert int(rows["kernel"][0], 16) == doc["kernel"]["load_address"]
    assert int(rows["kernel"][2], 16) == doc["kernel"]["reserved"]
    assert int(rows["initrd"][0], 16) == doc["initrd"]["address"]
    assert int(rows["initrd"][1], 16) == doc["initrd"]["address"] + doc["initrd"]["size"]
    assert int(rows["dtb"][0], 16) == doc["dtb"]["address"]
    assert int(rows["dtb"][2], 16) == doc["dtb"]["size"]
    assert f"pc={doc['registers']['pc']:#x} x0={doc['registers']['x0']:#x}" in r.stdout
    assert f"/chosen/rng-seed at DTB offset {doc['patch_slots'][0]['offset']:#x}" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(
            ("--manifest", "{tmp}/m.json"),
            "manifest: a manifest needs a kernel",
            id="manifest-no-kernel",
        ),
        pytest.param(("--initrd", "{initrd}"), "initrd: 0x", id="initrd-no-kernel"),
        pytest.param(
            ("--kernel", "{tmp}/nope"), "{tmp}/nope: kernel: cannot read", id="kernel-missing"
        ),
        pytest.param(
            ("--kernel", "{initrd}"),
            "{initrd}: kernel (gzip payload): not an arm64 Image",
            id="kernel-not-image",
        ),
        pytest.param(
            ("--kernel", str(KERNEL), "--memory", "16MiB"),
            "placement: kernel does not fit",
            id="ram-small",
        ),
        pytest.param(
            ("--kernel", str(KERNEL), "--rng-seed", "5000"),
            "rng_seed: 5000: must be <= 1024",
            id="rng-big",
        ),
    ],
)
def test_bad_boot_input_is_one_line_exit_2_and_no_file(tmp_path, initrd, args, message):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    subst = {"tmp": str(out_dir), "initrd": str(initrd)}
    argv = [a.format(**subst) for a in args]
    r = fdtgen("build", *argv, "-o", str(out_dir / "g.dtb"), "--manifest", str(out_dir / "m.json"))
    assert r.returncode == 2
    assert r.stderr.startswith("fdtgen: error: ")
    assert r.stderr.count("\n") == 1, r.stderr
    assert message.format(**subst) in r.stderr
    assert list(out_dir.iterdir()) == []


def test_input_digest_is_of_the_file_as_given():
    b = real_build()
    doc = json.loads(to_json(manifest_for(b)))
    assert doc["inputs"][0]["sha256"] == hashlib.sha256(KERNEL.read_bytes()).hexdigest()
    assert doc["kernel"]["reserved"] == 0x1AB_0000 > doc["kernel"]["size"] == 4096


def test_declared_kernel_placement_matches_a_real_file_with_the_same_header():
    real = real_build()
    declared = build(Machine(), Boot(kernel=declared_kernel(4096, 0, 0x1AB_0000, 0xA)))
    assert real.placement == declared.placement
    assert real.blob == declared.blob


def generated_build(template, virtio, cmdline, initrd, entropy, real_kernel):
    """A placed build, with an initrd file name of whatever characters when ``initrd`` is text."""
    rng, kaslr, seed = entropy
    kernel = read_kernel(str(KERNEL)) if real_kernel else declared_kernel(4096, 0, 0x1AB_0000, 0xA)
    initrd_file = None
    if isinstance(initrd, str):
        initrd_file = InputFile("initrd", initrd, 4096, "ab" * 32)
        initrd = 4096
    virtio = min(virtio, load_template(template).virtio.slots)
    return build(
        Machine(template=template, virtio=virtio, cmdline=cmdline),
        Boot(kernel, initrd, initrd_file, rng_seed=rng, kaslr_seed=kaslr, entropy_seed=seed),
    )


BUILDS = {
    "template": st.sampled_from(["squib", "qemu-virt", "cloud-hypervisor", "firecracker"]),
    "virtio": st.integers(0, 4),
    # a command line must be UTF-8 without NUL (config validation); file names may be
    # anything, lone surrogates (names that are not UTF-8) included
    "cmdline": st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40
    ),
    "initrd": st.one_of(st.none(), st.integers(1, 32 * MiB), st.text(min_size=1, max_size=12)),
    "entropy": st.sampled_from([(0, False, None), (8, True, None), (64, False, b"seed")]),
    "real_kernel": st.booleans(),
}


@given(**BUILDS)
def test_manifest_json_is_what_json_dumps_writes(
    template, virtio, cmdline, initrd, entropy, real_kernel
):
    """Both spellings, escapes (quotes, control characters, non-ASCII, DEL, lone
    surrogates) included."""
    b = generated_build(template, virtio, cmdline, initrd, entropy, real_kernel)
    m = manifest_for(b, (InputFile("config", f"dir/{cmdline}.toml", 10, "0" * 64),))
    assert to_json(m) == (json.dumps(m, indent=2) + "\n").encode()
    assert to_json(m, compact=True) == (json.dumps(m, separators=(",", ":")) + "\n").encode()


def test_the_writer_escapes_every_character_as_json_dumps_does():
    m = manifest_for(real_build())
    m["cmdline"] = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert to_json(m, compact=True) == (json.dumps(m, separators=(",", ":")) + "\n").encode()
    m["cmdline"] = "lone \udc80 surrogate"
    assert to_json(m) == (json.dumps(m, indent=2) + "\n").encode()


@given(**{**BUILDS, "initrd": st.one_of(st.none(), st.integers(1, 32 * MiB))})
def test_a_manifest_reads_back_as_the_same_document(
    template, virtio, cmdline, initrd, entropy, real_kernel
):
    m = manifest_for(generated_build(template, virtio, cmdline, initrd, entropy, real_kernel))
    assert from_json(to_json(m), "m.json") == m
    assert from_json(to_json(m, compact=True).decode(), "m.json") == m


def test_a_manifest_needs_a_kernel():
    with pytest.raises(ConfigError, match="manifest needs a kernel"):
        manifest_for(build(Machine()))


def _broken(edit):
    doc = json.loads(to_json(manifest_for(real_build())))
    edit(doc)
    return json.dumps(doc)


@pytest.mark.parametrize(
    "raw, key, rule",
    [
        pytest.param(
            lambda: _broken(lambda d: d["kernel"].pop("entry")),
            "kernel.entry",
            "missing",
            id="missing",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["registers"].update(pc="0x80200000")),
            "registers.pc",
            "'0x80200000': input should be a valid integer",
            id="string-address",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["dtb"].update(address=-8)),
            "dtb.address",
            "-8: input should be greater than or equal to 0",
            id="negative",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["dtb"].update(size=3 * MiB)),
            "dtb.size",
            "0x300000: input should be less than or equal to 2097152",
            id="dtb-over-2mib",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["devices"][3].update(surprise=1)),
            "devices[3].surprise",
            "1: extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["patch_slots"].append({"property": "x"})),
            "patch_slots[0].offset",
            "missing",
            id="missing-in-list",
        ),
        pytest.param(
            lambda: _broken(lambda d: d.update(vcpus=True)),
            "vcpus",
            "True: input should be a valid integer",
            id="bool-for-int",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["dtb"].update(address=(1 << 64) - 8, size=0x1000)),
            "dtb",
            "address 0xfffffffffffffff8 + size 0x1000 ends past 2^64 (the range wraps)",
            id="dtb-wraps",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["kernel"].update(load_address=(1 << 64) - 0x20_0000)),
            "kernel",
            "load_address 0xffffffffffe00000 + reserved 0x1ab0000 ends past 2^64 (the range wraps)",
            id="kernel-wraps",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["kernel"].update(image_size=(1 << 64) - 1)),
            "kernel",
            "load_address 0x80200000 + image_size 0xffffffffffffffff ends past 2^64 "
            "(the range wraps)",
            id="kernel-image-size-wraps",
        ),
        pytest.param(
            lambda: _broken(lambda d: d["devices"][1].update(address=(1 << 64) - 0x100)),
            "devices[1]",
            "address 0xffffffffffffff00 + size 0x1000 ends past 2^64 (the range wraps)",
            id="device-wraps",
        ),
        pytest.param(
            lambda: "{nope",
            "",
            "not valid JSON: key must be a string at line 1 column 2",
            id="not-json",
        ),
    ],
)
def test_reading_a_broken_manifest_names_the_file_the_key_and_the_rule(raw, key, rule):
    with pytest.raises(ManifestError) as e:
        from_json(raw(), "boot.json")
    assert (e.value.source, e.value.key, e.value.rule) == ("boot.json", key, rule)
    assert str(e.value) == ": ".join(p for p in ("boot.json", key, rule) if p)
    assert isinstance(e.value, FdtgenError)


# -- placement notes ---------------------------------------------------------------------


def test_a_vmm_placement_fdtgen_leaves_is_a_note_in_manifest_and_place(tmp_path):
    # openvmm puts the DTB right after the kernel (dtb = "after-kernel"); the
    # kernel ends inside a 2 MiB block, which booting.rst keeps for the DTB alone.
    cfg = tmp_path / "vm.toml"
    cfg.write_text('template = "openvmm"\nvirtio = 1\n')
    man, out = tmp_path / "boot.json", tmp_path / "g.dtb"
    args = (str(cfg), "--kernel", str(KERNEL))
    r = fdtgen("build", *args, "-o", str(out), "--manifest", str(man))
    assert r.returncode == 0, r.stderr
    doc = json.loads(man.read_text())
    k, dtb = doc["kernel"], doc["dtb"]["address"]
    vmm = -(-(k["load_address"] + k["reserved"]) // 4096) * 4096  # the kernel's end, page up
    assert vmm % (2 * MiB) and dtb == -(-vmm // (2 * MiB)) * (2 * MiB)
    assert doc["notes"] == [
        f"dtb: the VMM puts it right after the kernel at {vmm:#x}; fdtgen puts it at "
        f"{dtb:#x}, the next 2 MiB block, which it shares with nothing (booting.rst)"
    ]
    jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)
    assert from_json(man.read_text())["notes"] == doc["notes"]
    r = fdtgen("place", *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"note: {doc['notes'][0]}"
    r = fdtgen("verify", str(out), "--manifest", str(man), "--no-dtc")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_placement_that_keeps_the_vmms_choices_has_no_notes(tmp_path):
    doc = json.loads(to_json(manifest_for(real_build())))
    assert doc["notes"] == []
    r = fdtgen("place", "--kernel", str(KERNEL))
    assert r.returncode == 0, r.stderr
    assert not any(line.startswith("note:") for line in r.stdout.splitlines())


def test_a_manifest_written_before_notes_is_still_read_and_verified(tmp_path):
    man, out = tmp_path / "boot.json", tmp_path / "g.dtb"
    r = fdtgen("build", "--kernel", str(KERNEL), "-o", str(out), "--manifest", str(man))
    assert r.returncode == 0, r.stderr
    doc = json.loads(man.read_text())
    del doc["notes"]
    man.write_text(json.dumps(doc))
    assert "notes" not in from_json(man.read_text())
    jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)
    r = fdtgen("verify", str(out), "--manifest", str(man), "--no-dtc")
    assert r.returncode == 0, r.stdout + r.stderr
    doc["notes"] = "dtb moved"  # a list of strings, not one
    man.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="notes"):
        from_json(man.read_text(), str(man))
