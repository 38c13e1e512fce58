"""Running the installed ``sentinella`` console script, as a user would, for the probe suite.

Every probe goes through the real entry point: the console script ``pip install`` made, in a
child process, with a clean environment (no ``SENTINELLA_*`` of the test run leaks in) and a
working directory of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


def console_script() -> str:
    """The ``sentinella`` script installed next to this interpreter (or on the PATH)."""
    beside = Path(sys.executable).parent / "sentinella"
    if beside.exists():
        return str(beside)
    found = shutil.which("sentinella")
    if found is None:
        pytest.fail("the sentinella console script is not installed (pip install -e .)")
    return found


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


class Sentinella:
    """``sentinella …`` in ``cwd`` with ``env`` on top of a clean environment."""

    def __init__(self, cwd: Path, **env: str) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLA_")}
        self.env.update(
            SENTINELLA_DATABASE_URL=f"sqlite:///{cwd / 'sentinella.db'}",
            SENTINELLA_NOW="2026-09-02T09:00:00",
            COLUMNS="200",
        )
        self.env.update(env)

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 120) -> Result:
        done = subprocess.run(
            [console_script(), *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)
