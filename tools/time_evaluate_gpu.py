"""Time ``slcbench evaluate --device cuda`` on logits that dwarf the CPU, in one command on a GPU machine:

    python tools/time_evaluate_gpu.py                      # 100,000 x 2^18 float16 logits (52 GB), all blocks
    python tools/time_evaluate_gpu.py --classes 65536 --blocks slc

Writes the logits once (standard normal, +3 on the true class, drawn on the GPU; a memory-mapped
``.npy`` pair in ``--data``, reused when present), then runs the whole ``slcbench evaluate`` process
under ``/usr/bin/time -v`` and leaves in ``$OUT`` (or ``--out``): ``evaluate-gpu.json`` (the results,
with each block's wall time), ``evaluate-gpu.txt`` (the command, its output and the time report) and
``gpu-state.txt`` (``nvidia-smi`` before the run). Needs torch with CUDA and about 1.1 x the logits'
size free on disk (float16: 2 bytes per logit).
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_logits(folder: Path, n: int, k: int, dtype: str, seed: int) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(device="cuda").manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=generator, device="cuda")
    np.save(folder / "labels.npy", labels.cpu().numpy())
    logits = np.lib.format.open_memmap(folder / "logits.npy", mode="w+", dtype=dtype, shape=(n, k))
    rows = max(1, (1 << 28) // k)
    for r0 in range(0, n, rows):
        chunk = torch.randn((min(rows, n - r0), k), generator=generator, device="cuda")
        chunk[torch.arange(chunk.shape[0], device="cuda"), labels[r0 : r0 + chunk.shape[0]]] += 3
        logits[r0 : r0 + chunk.shape[0]] = chunk.to(getattr(torch, dtype)).cpu().numpy()
    logits.flush()
    (folder / "complete").write_text(f"{n} {k} {dtype} {seed}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=1 << 18)
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument("--blocks", default="slc,all-logits,pols,self-norm")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "slcbench-gpu-logits")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "results-gpu")))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    signature = f"{args.examples} {args.classes} {args.dtype} {args.seed}\n"
    marker = args.data / "complete"
    if not (marker.exists() and marker.read_text() == signature):
        needed = args.examples * args.classes * np.dtype(args.dtype).itemsize
        free = shutil.disk_usage(args.data.parent if not args.data.exists() else args.data).free
        if free < 1.1 * needed:
            print(f"need {needed / 1e9:.1f} GB on disk for the logits, {free / 1e9:.1f} GB free", file=sys.stderr)
            return 2
        started = time.perf_counter()
        write_logits(args.data, args.examples, args.classes, args.dtype, args.seed)
        print(f"wrote {args.data} in {time.perf_counter() - started:.0f} s")
    state = subprocess.run(["nvidia-smi"], capture_output=True, text=True)
    (args.out / "gpu-state.txt").write_text(state.stdout + state.stderr)
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "slcbench",
        "evaluate",
        str(args.data),
        "--device",
        "cuda",
        "--blocks",
        args.blocks,
        "--json",
        str(args.out / "evaluate-gpu.json"),
        "--force",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    report = f"$ {' '.join(command)}\n\n{done.stdout}\n{done.stderr}"
    (args.out / "evaluate-gpu.txt").write_text(report)
    print(report)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
