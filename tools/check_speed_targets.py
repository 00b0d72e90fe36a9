"""Check repeated speed sweeps against the speed targets, from their results files alone.

    python tools/check_speed_targets.py results/speed-h100/run1 results/speed-h100/run2
    python tools/check_speed_targets.py results/speed-h200/run1            # one run: no repeat to compare

Targets: across the two runs every speedup agrees within 2%; every graph-timed row has an IQR under 1%
of its median; a sweep of the grid for one precision takes under 3 minutes; and, where NVML recorded
them, no row is flagged (its SM clock moved more than the stated tolerance, or the GPU throttled).
Also listed: rows whose warm-up did not settle (files from before the steady-state wait do not record
it) and the energy rows (E(k)/E(1) beside the speedup). Each folder holds one ``speed-*.json`` per
precision setting, and optionally ``walltimes*.txt`` files with lines ``WALL <flags>: <seconds> s`` (as
``rerun_speed_sweep.sh`` and ``h200_table_iii.sh`` write them). Sweeps found in one folder only are
named and skipped. Exit status 0 when every target is met, 1 otherwise, 2 when the folders have no
sweep in common.
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


def label(row: dict) -> str:
    return f"{row['arch']} k={row['classes']} {row['head']}"


def check_speedups(files: list[dict]) -> bool:
    """Speedups of the rows measured in both runs agree within SPEEDUP_AGREEMENT_PCT."""
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
    return bool(gaps) and not beyond


def check_rows(files: list[dict]) -> bool:
    """Spread, settling, validity flags and energy of every row of the runs."""
    ok_rows = [(run_no, r) for run_no, f in enumerate(files, 1) for r in f["rows"].values() if r["status"] == "ok"]
    wide = [(run_no, r) for run_no, r in ok_rows if r["timing"] == "graph" and r["iqr_pct"] >= IQR_TARGET_PCT]
    print(
        f"  IQR: {len(ok_rows) - len(wide)} of {len(ok_rows)} rows under {IQR_TARGET_PCT:g}% of the median"
        + "".join(f"\n    run {n}: {label(r)}: {r['iqr_pct']:.2f}%" for n, r in wide)
    )
    met = not wide
    unsettled = [(n, r) for n, r in ok_rows if r.get("settled") is False]
    if all(r.get("settled") is None for _, r in ok_rows):
        print("  settled: not recorded (files from before the steady-state wait)")
    else:
        print(
            f"  settled: {len(ok_rows) - len(unsettled)} of {len(ok_rows)} rows"
            + "".join(f"\n    run {n}: {label(r)}" for n, r in unsettled)
        )
    flagged = [(n, r) for n, r in ok_rows if r.get("flagged")]
    if all(r.get("flagged") is None for _, r in ok_rows):
        print("  validity: not recorded (no NVML)")
    else:
        print(
            f"  validity: {len(ok_rows) - len(flagged)} of {len(ok_rows)} rows not flagged"
            + "".join(
                f"\n    run {n}: {label(r)}: SM clock moved {r.get('sm_clock_moved_pct') or 0:.1f}%, "
                f"reasons {', '.join(r.get('throttle_reasons') or []) or 'none'}"
                for n, r in flagged
            )
        )
        met &= not flagged
    energy = [(n, r) for n, r in ok_rows if r.get("energy_mj_per_batch") is not None]
    if energy:
        print(f"  energy: {len(energy)} rows with energy per batch")
        for n, r in energy:
            if r.get("energy_ratio") is not None and r["classes"] == max(x["classes"] for _, x in ok_rows):
                print(f"    run {n}: {label(r)}: E ratio ×{r['energy_ratio']:.3f}, speedup ×{r['speedup']:.3f}")
    return met


def check(folders: list[Path]) -> bool:
    runs = [load_sweeps(folder) for folder in folders]
    common = [key for key in runs[0] if all(key in run for run in runs)]
    if not common:
        print(f"the folders measured different sweeps: {[sorted(run) for run in runs]}", file=sys.stderr)
        sys.exit(2)
    for folder, run in zip(folders, runs, strict=True):
        for key in run:
            if key not in common:
                print(f"\nonly in {folder}: {describe(key)} (not checked)")
    met = True
    for key in common:
        files = [run[key] for run in runs]
        print(f"\n{describe(key)}\n  files: {', '.join(str(f['path']) for f in files)}")
        if len(files) == 2:
            met &= check_speedups(files)
        else:
            print("  speedups: one run, no repeat to compare")
            met = False
        met &= check_rows(files)
    for folder in folders:
        for flags, seconds in wall_times(folder).items():
            verdict = "under" if seconds < SWEEP_TARGET_S else "NOT under"
            print(f"\nwall time {folder.name} {flags}: {seconds:.1f} s ({verdict} {SWEEP_TARGET_S:g} s)", end="")
            met &= seconds < SWEEP_TARGET_S
    print(f"\n\n{'all targets met' if met else 'targets missed'}")
    return met


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(0 if check([Path(arg) for arg in sys.argv[1:]]) else 1)
