"""Peak memory (VmHWM: the most resident memory the process ever had) of `slcbench evaluate`
refusing crafted archives, beside the interpreter's baseline and a plain run, each in a fresh
process. Writes a table to stdout.

VmHWM is read by the process itself at exit: a child's ru_maxrss would include the memory of this
parent at the fork, before the exec.

    python tools/hostile_peak_memory.py > results/cpu-2core/hostile-input/peak-memory.txt
    python tools/hostile_peak_memory.py OLD_CHECKOUT   # the same files, read by another version
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hostile import crafting  # noqa: E402

REPEATS = 3
CODE = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT  # the slcbench the processes run


# Runs ``argv[2:]`` as ``python ARGS`` would (-c CODE or -m MODULE), then writes VmHWM (kB) to argv[1].
LAUNCHER = """
import atexit, runpy, sys
report = sys.argv[1]
def peak():
    with open('/proc/self/status') as status, open(report, 'w') as out:
        out.write(next(line.split()[1] for line in status if line.startswith('VmHWM:')))
atexit.register(peak)
flag, target, *rest = sys.argv[2:]
sys.argv = [target, *rest]
if flag == '-c':
    exec(target)
else:
    runpy.run_module(target, run_name='__main__', alter_sys=True)
"""


def peak_mib(args: list[str]) -> tuple[float, int, str]:
    """(peak resident memory in MiB, exit code, last stderr line) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(CODE)}
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as report:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, report.name, *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=CODE,
        )
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
        return int(report.read()) / 1024, done.returncode, (lines or [""])[-1]


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    archives = crafting.crafted_archives(folder)
    good = crafting.good_logits(folder)
    cases = [
        ("interpreter baseline (python -c pass)", ["-c", "pass"]),
        ("import numpy", ["-c", "import numpy"]),
        ("slcbench --version", ["-m", "slcbench", "--version"]),
        ("evaluate good.npz (200 x 5, accepted)", ["-m", "slcbench", "evaluate", str(good)]),
    ]
    for name in ("bomb-4-gib-wrong-rows", "terabyte-declared", "37-gib-header-in-580-bytes"):
        cases.append((f"evaluate {name}.npz", ["-m", "slcbench", "evaluate", str(archives[name][0])]))
    print(f"# machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs")
    print(f"# python {platform.python_version()}, numpy {np.__version__}; slcbench from {CODE}")
    print(f"# each case: {REPEATS} fresh processes; peak resident memory (VmHWM), MiB")
    print(
        "# sizes: bomb-4-gib-wrong-rows.npz",
        archives["bomb-4-gib-wrong-rows"][0].stat().st_size,
        "bytes, inflates to 4 GiB;",
    )
    print(
        "#        terabyte-declared.npz", archives["terabyte-declared"][0].stat().st_size, "bytes, entries claim 1 TiB"
    )
    print(f"{'case':<48} {'exit':>4} {'min':>7} {'median':>7} {'max':>7}  refusal")
    for label, args in cases:
        runs = [peak_mib(args) for _ in range(REPEATS)]
        peaks = sorted(peak for peak, _, _ in runs)
        code, line = runs[-1][1], runs[-1][2].replace(str(folder), "")
        print(f"{label:<48} {code:>4} {peaks[0]:>7.1f} {peaks[len(peaks) // 2]:>7.1f} {peaks[-1]:>7.1f}  {line[:150]}")


if __name__ == "__main__":
    main()
