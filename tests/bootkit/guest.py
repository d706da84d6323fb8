"""Run a guest, read its console, and parse what ``/init`` reports.

The console is QEMU's ``-serial stdio``. ``/init`` prints ``FDTGEN key=value``
lines and ``FDTGEN-DONE`` before ``poweroff -f``. Early kernel panics hang
(``panic=`` is not parsed yet) and a stuck virtio request can hang the power
off, so the run has a hang guard: the process group is killed ``limit``
seconds after the start, or ``grace`` seconds after ``FDTGEN-DONE``. The
outcome is data (``done``, ``powered_off``, ``killed``); the tests assert on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

DONE = "FDTGEN-DONE"
POWER_DOWN = "reboot: Power down"
PANIC = "Kernel panic"


@dataclass
class Boot:
    """What one guest run produced."""

    console: str
    returncode: int | None
    killed: bool
    facts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return any(line.strip() == DONE for line in self.console.splitlines())

    @property
    def powered_off(self) -> bool:
        return POWER_DOWN in self.console

    def one(self, key: str) -> str:
        values = self.facts.get(key, [])
        if len(values) != 1:
            raise AssertionError(
                f"guest reported {key!r} {len(values)} times: {values}\n{self.tail()}"
            )
        return values[0]

    def all(self, key: str) -> list[str]:
        return self.facts.get(key, [])

    def tail(self, lines: int = 60) -> str:
        return "console (last lines):\n" + "\n".join(self.console.splitlines()[-lines:])


def parse_facts(console: str) -> dict[str, list[str]]:
    facts: dict[str, list[str]] = {}
    for raw in console.splitlines():
        # Kernel messages share the serial line with /init and may land in
        # front of a report on the same line: a report starts where its
        # marker does, not only at the start of a line.
        at = raw.rfind("FDTGEN ")
        line = raw[at:].strip() if at >= 0 else ""
        if not line or "=" not in line:
            continue
        key, _, value = line[len("FDTGEN ") :].partition("=")
        facts.setdefault(key, []).append(value)
    return facts


def run(
    argv: Sequence[str],
    *,
    limit: float = 120.0,
    grace: float = 10.0,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> Boot:
    """Run ``argv`` (a QEMU launch) with stdout as the console."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=cwd,
        env=env,
    )
    chunks: list[bytes] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            chunks.append(line)
            if line.strip() == DONE.encode():
                done.set()
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    killed = False
    try:
        if not done.wait(limit):
            killed = True
        else:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                killed = True
    finally:
        if proc.poll() is None:
            killed = True
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        t.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
    console = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return Boot(console, proc.returncode, killed, parse_facts(console))
