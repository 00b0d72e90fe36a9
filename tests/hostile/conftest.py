"""Running the command line as a hostile user would, and checking what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Outcome:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def refused(self, *needles: str) -> str:
        """Exit 2 with exactly one line on stderr that names the problem, and no traceback."""
        lines = self.stderr.strip().splitlines()
        assert self.code == 2, (self.code, self.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("slcbench: error: "), self.stderr[-2000:]
        assert "Traceback" not in self.stderr + self.stdout
        for needle in needles:
            assert needle in lines[0], lines[0]
        return lines[0]


def run_cli(
    *args: str, cwd: Path, timeout: float = 60, memory_mib: int | None = None, stdin=None, stdout=subprocess.PIPE
) -> Outcome:
    """``python -m slcbench ARGS`` in a fresh process (a hang fails at ``timeout``; with ``memory_mib``
    the process runs under that address-space limit)."""
    limit = ""
    if memory_mib is not None:
        limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory_mib} << 20, {memory_mib} << 20)); "
    code = f"{limit}import sys; sys.argv = ['slcbench', *sys.argv[1:]]; from slcbench.__main__ import main; main()"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        stdin=stdin,
        timeout=timeout,
        text=False,
    )
    out = done.stdout.decode("utf-8", "replace") if done.stdout is not None else ""
    return Outcome(done.returncode, out, done.stderr.decode("utf-8", "replace"))


@pytest.fixture
def cli(tmp_path):
    def run(*args, **kwargs):
        return run_cli(*map(str, args), cwd=tmp_path, **kwargs)

    return run
