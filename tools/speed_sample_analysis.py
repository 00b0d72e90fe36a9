"""Recompute, from the raw samples stored in run1/ and run2/, the figures the READMEs and
slcbench/paper.py quote about these runs: each row's lag-1 autocorrelation and drift (last 20
samples over first 20), its IQR over means of blocks of batches lasting >= 2 ms, and the extra
sweep time that samples of >= 3 ms would cost (100 samples, warm-up as these runs had it).

    python tools/speed_sample_analysis.py > results/speed-h100/sample-analysis.txt
"""

import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent / "results" / "speed-h100"


def iqr_pct(x: np.ndarray) -> float:
    q1, q3 = np.quantile(x, [0.25, 0.75])
    return 100 * (q3 - q1) / np.median(x)


def block_means(x: np.ndarray, min_ms: float) -> np.ndarray:
    n = max(1, math.ceil(min_ms / np.median(x)))
    return x[: len(x) // n * n].reshape(-1, n).mean(axis=1)


for path in sorted(HERE.glob("run*/speed-*.json")):
    doc = json.loads(path.read_text())
    settings = doc["settings"]
    print(f"\n{path.relative_to(HERE)}  {settings['precision']}  channels_last={settings['channels_last']}")
    columns = [
        ("arch", "<13"),
        ("k", ">7"),
        ("head", "<5"),
        ("median", ">8"),
        ("IQR%", ">6"),
        ("ac1", ">6"),
        ("drift%", ">7"),
        ("IQR% blocks>=2ms", ">17"),
    ]
    print(" ".join(f"{name:{spec}}" for name, spec in columns))
    for row in doc["rows"]:
        if row["status"] != "ok":
            continue
        x = np.asarray(row["samples_ms"])
        ac1 = np.corrcoef(x[:-1], x[1:])[0, 1]
        drift = 100 * (x[-20:].mean() / x[:20].mean() - 1)
        print(
            f"{row['arch']:13s} {row['classes']:7d} {row['head']:5s} {np.median(x):8.4f} {iqr_pct(x):6.2f} "
            f"{ac1:+6.2f} {drift:+7.2f} {iqr_pct(block_means(x, 2.0)):17.2f}"
        )

print("\nExtra sweep time of samples >= 3 ms (run 1; forward and head-alone timings):")
for path in sorted(HERE.glob("run1/speed-*.json")):
    doc = json.loads(path.read_text())
    extra_ms = 0.0
    for row in doc["rows"]:
        if row["status"] != "ok":
            continue
        for t in [row["batch_ms"]] + ([row["head_ms"]] if row.get("head_ms") else []):
            if t < 3.0:
                extra_ms += 100 * (math.ceil(3.0 / t) * t - t)
    print(f"  {doc['settings']['precision']}: +{extra_ms / 1e3:.1f} s")
