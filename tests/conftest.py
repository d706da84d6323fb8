from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from .corpus import corpus_dtbs  # noqa: F401  (a fixture shared by the corpus tests)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

# Interpreters the tests start import this checkout's fdtgen, whatever their
# working directory and wherever an installed copy points.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="rewrite fixtures/golden/*, schemas/*.json and docs pictures from the current "
        "output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, bytes], None]:
    update = request.config.getoption("--update-goldens")

    def check(name: str, actual: bytes) -> None:
        """Compare with ``fixtures/golden/NAME``, or with ``ROOT/NAME`` for a path that
        has a directory (the shipped schemas, the README's picture)."""
        path = ROOT / name if "/" in name else FIXTURES / "golden" / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(actual)
        assert path.exists(), f"{path} missing; create it with pytest --update-goldens"
        assert actual == path.read_bytes(), (
            f"{name} changed; rerun with --update-goldens if intended"
        )

    return check


def run_fdtgen(
    *args: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in a fresh interpreter (text output; raises only
    on ``timeout``)."""
    return subprocess.run(
        [sys.executable, "-m", "fdtgen", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=timeout,
    )


class Dtc:
    """The reference compiler, run as a process."""

    def __init__(self, exe: str) -> None:
        self.exe = exe

    def run(self, *args: str, data: bytes) -> tuple[bytes, str]:
        p = subprocess.run(
            [self.exe, *args],
            input=data,
            capture_output=True,
            check=False,
        )
        if p.returncode != 0:
            raise AssertionError(f"dtc {' '.join(args)} failed: {p.stderr.decode()}")
        return p.stdout, p.stderr.decode()

    def dtb_to_dtb(self, blob: bytes) -> tuple[bytes, str]:
        return self.run("-I", "dtb", "-O", "dtb", "-", data=blob)

    def dtb_to_dts(self, blob: bytes) -> tuple[str, str]:
        out, err = self.run("-I", "dtb", "-O", "dts", "-", data=blob)
        return out.decode(), err

    def dts_to_dtb(self, text: str) -> tuple[bytes, str]:
        return self.run("-I", "dts", "-O", "dtb", "-", data=text.encode())


@pytest.fixture(scope="session")
def dtc() -> Dtc:
    exe = shutil.which("dtc")
    if exe is None:
        pytest.fail("dtc is required (apt-get install device-tree-compiler)")
    return Dtc(exe)
