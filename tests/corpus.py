"""The DTB corpus: every device tree Debian's generic arm64 kernel ships.

``corpus_dtbs`` (a session fixture, registered through ``tests/conftest.py``)
yields the sorted paths of the ``*.dtb`` files that
:func:`fdtgen.debian.kit.dtbs` fetched and unpacked into the apt cache (the
first run downloads one package; later runs read the cache). Tests that use it
carry the ``corpus`` marker. ``corpus_dtbs`` maps a blob's file name to its path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fdtgen.debian import kit as debian


@pytest.fixture(scope="session")
def corpus_dtbs() -> list[Path]:
    """Every DTB of the generic arm64 kernel package, sorted by path."""
    try:
        paths = debian.dtbs().paths()
    except (OSError, debian.FetchError) as e:
        pytest.fail(f"the DTB corpus could not be fetched: {e}")
    return paths


def by_name(paths: list[Path]) -> dict[str, Path]:
    """Each blob by its file name (``sun50i-a64-amarula-relic.dtb``); names are unique."""
    out = {p.name: p for p in paths}
    if len(out) != len(paths):
        raise AssertionError("two corpus blobs share a file name")
    return out
