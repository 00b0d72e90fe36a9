"""Check two repeated sweeps against the speed issue's targets, from their results files alone.

    python tools/check_h100_targets.py results/speed-h100/run1 results/speed-h100/run2

Targets (issue 2): across the two runs every speedup agrees within 2%; every graph-timed row has an
IQR under 1% of its median; a sweep of the full grid for one precision takes under 3 minutes. Also
listed: rows whose warm-up did not settle (files from before the steady-state wait do not record
it). Each folder holds one ``speed-*.json`` per precision setting, and optionally ``walltimes*.txt``
files with lines ``WALL <flags>: <seconds> s`` (as ``rerun_speed_sweep.sh`` writes them). Exit status 0
when every target is met, 1 otherwise, 2 when the folders cannot be paired.
"""

import json
import re
import sys
from pathlib import Path

SPEEDUP_AGREEMENT_PCT = 2.0
IQR_TARGET_PCT = 1.0
SWEEP_TARGET_S = 180.0
# What makes two files the same sweep, and two rows the same row.
SWEEP_KEY = ("precision", "channels_last", "timing", "batch_size", "batches", "compiled", "device")
ROW_KEY = ("arch", "classes", "head")


def load_sweeps(folder: Path) -> dict[tuple, dict]:
    sweeps = {}
    for path in sorted(folder.glob("speed-*.json")):
        doc = json.loads(path.read_text())
        key = tuple(doc["settings"].get(name) for name in SWEEP_KEY)
        if key in sweeps:
            sys.exit(f"{folder} has two sweeps with the same settings: {sweeps[key]['path'].name}, {path.name}")
        sweeps[key] = {"path": path, "rows": {tuple(r[n] for n in ROW_KEY): r for r in doc["rows"]}}
    if not sweeps:
        sys.exit(f"{folder} holds no speed-*.json")
    return sweeps


def wall_times(folder: Path) -> dict[str, float]:
    found = [
        hit
        for path in sorted(folder.glob("walltimes*.txt"))
        for hit in re.findall(r"^WALL (.*): ([0-9.]+) s$", path.read_text(), re.M)
    ]
    return {flags: float(seconds) for flags, seconds in found}


def describe(key: tuple) -> str:
    return ", ".join(f"{name}={value}" for name, value in zip(SWEEP_KEY, key, strict=False))


def check(first: Path, second: Path) -> bool:
    runs = [load_sweeps(first), load_sweeps(second)]
    if runs[0].keys() != runs[1].keys():
        print(f"the folders measured different sweeps: {sorted(runs[0])} vs {sorted(runs[1])}", file=sys.stderr)
        sys.exit(2)
    met = True
    for key in runs[0]:
        files = [run[key] for run in runs]
        print(f"\n{describe(key)}\n  files: {files[0]['path']}, {files[1]['path']}")
        # Speedups of the rows measured in both runs.
        gaps = []
        for row_key, row in files[0]["rows"].items():
            other = files[1]["rows"].get(row_key)
            if other and row.get("speedup") and other.get("speedup"):
                gaps.append((100 * abs(other["speedup"] / row["speedup"] - 1), row_key))
        beyond = sorted((g for g in gaps if g[0] > SPEEDUP_AGREEMENT_PCT), reverse=True)
        worst = max(gaps)[0] if gaps else float("nan")
        print(
            f"  speedups: {len(gaps)} rows in both runs; largest difference {worst:.2f}%; "
            f"{len(beyond)} beyond {SPEEDUP_AGREEMENT_PCT:g}%"
            + "".join(f"\n    {k[0]} k={k[1]} {k[2]}: {g:.2f}%" for g, k in beyond)
        )
        met &= bool(gaps) and not beyond
        # Spread and settling of every graph-timed row, in both runs.
        ok_rows = [(run_no, r) for run_no, f in enumerate(files, 1) for r in f["rows"].values() if r["status"] == "ok"]
        wide = [(run_no, r) for run_no, r in ok_rows if r["timing"] == "graph" and r["iqr_pct"] >= IQR_TARGET_PCT]
        print(
            f"  IQR: {len(ok_rows) - len(wide)} of {len(ok_rows)} rows under {IQR_TARGET_PCT:g}% of the median"
            + "".join(f"\n    run {n}: {r['arch']} k={r['classes']} {r['head']}: {r['iqr_pct']:.2f}%" for n, r in wide)
        )
        met &= not wide
        settled = [r.get("settled") for _, r in ok_rows]
        unsettled = [(n, r) for n, r in ok_rows if r.get("settled") is False]
        if all(s is None for s in settled):
            print("  settled: not recorded (files from before the steady-state wait)")
        else:
            print(
                f"  settled: {len(ok_rows) - len(unsettled)} of {len(ok_rows)} rows"
                + "".join(f"\n    run {n}: {r['arch']} k={r['classes']} {r['head']}" for n, r in unsettled)
            )
    for folder in (first, second):
        for flags, seconds in wall_times(folder).items():
            verdict = "under" if seconds < SWEEP_TARGET_S else "NOT under"
            print(f"\nwall time {folder.name} {flags}: {seconds:.1f} s ({verdict} {SWEEP_TARGET_S:g} s)", end="")
            met &= seconds < SWEEP_TARGET_S
    print(f"\n\n{'all targets met' if met else 'targets missed'}")
    return met


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(0 if check(Path(sys.argv[1]), Path(sys.argv[2])) else 1)
