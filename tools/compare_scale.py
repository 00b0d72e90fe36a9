"""Wall time and peak memory of `slcbench compare` on two speed files of N rows each.

Each row is written as `slcbench speed` writes it (20 timed samples, 10 block ratios, 20 reference
samples), one architecture name per three class counts; the new file is 3% slower on every row.
Each comparison runs in a fresh process, timed by /usr/bin/time.

    python tools/compare_scale.py 300000 100000 > results/cpu-2core/hostile-input/compare-scale.txt
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.compare.test_compare import speed_payload, speed_row  # noqa: E402

BATCH_MS = {1: 2.80, 1024: 2.84, 65536: 4.34}


def write_speed_file(path: Path, rows: int, slowdown: float, seed: int) -> None:
    payload = speed_payload(seed=seed)
    payload["rows"] = []
    for i in range(-(-rows // len(BATCH_MS))):
        for classes, ms in BATCH_MS.items():
            row = speed_row(classes, ms * slowdown, BATCH_MS[1] * slowdown, seed=seed + i)
            row["arch"] = f"model{i}"
            payload["rows"].append(row)
    payload["rows"] = payload["rows"][:rows]
    path.write_text(json.dumps(payload))


def main() -> None:
    print(f"# machine: {platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}")
    print("# rows  file_MB  exit  wall_s  peak_rss_MiB")
    with tempfile.TemporaryDirectory() as folder:
        for rows in map(int, sys.argv[1:]):
            base, new = Path(folder, f"base-{rows}.json"), Path(folder, f"new-{rows}.json")
            write_speed_file(base, rows, 1.0, seed=0)
            write_speed_file(new, rows, 1.03, seed=1)
            report = Path(folder, "time.txt")
            start = time.perf_counter()
            done = subprocess.run(
                ["/usr/bin/time", "-f", "%M", "-o", str(report), sys.executable, "-m", "slcbench", "compare"]
                + [str(base), str(new)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
            )
            wall = time.perf_counter() - start
            peak_mib = int(report.read_text().split()[-1]) / 1024
            size_mb = base.stat().st_size / 1e6
            print(f"{rows:>7}  {size_mb:7.1f}  {done.returncode:>4}  {wall:6.1f}  {peak_mib:12.0f}", flush=True)


if __name__ == "__main__":
    main()
