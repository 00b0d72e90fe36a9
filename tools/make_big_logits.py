"""Write large synthetic logits for timing ``slcbench evaluate``, without holding them in memory.

    python tools/make_big_logits.py 100000 10000 /tmp/big           # /tmp/big/logits.npy, labels.npy
    python tools/make_big_logits.py 100000 10000 /tmp/big --npz     # also /tmp/big.npz (np.savez, stored)

Logits are standard normal with +3 on the true class (float32 unless ``--dtype``), labels uniform in
[0, k), from ``numpy.random.default_rng(seed)`` drawn row chunk by row chunk (the setup of the
evaluate benchmark).
"""

import argparse
from pathlib import Path

import numpy as np

CHUNK_ELEMENTS = 1 << 25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="examples (rows)")
    parser.add_argument("k", type=int, help="classes (columns)")
    parser.add_argument("folder", type=Path, help="where logits.npy and labels.npy go")
    parser.add_argument("--npz", action="store_true", help="also write FOLDER.npz with np.savez (uncompressed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float16", "float32", "float64"], default="float32")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    labels = rng.integers(0, args.k, size=args.n)
    np.save(args.folder / "labels.npy", labels)
    logits = np.lib.format.open_memmap(args.folder / "logits.npy", mode="w+", dtype=args.dtype, shape=(args.n, args.k))
    rows = max(1, CHUNK_ELEMENTS // args.k)
    for r0 in range(0, args.n, rows):
        chunk = rng.standard_normal((min(rows, args.n - r0), args.k), dtype=np.float32)
        chunk[np.arange(chunk.shape[0]), labels[r0 : r0 + chunk.shape[0]]] += 3
        logits[r0 : r0 + chunk.shape[0]] = chunk
    logits.flush()
    if args.npz:
        np.savez(args.folder.with_suffix(".npz"), logits=logits, labels=labels)


if __name__ == "__main__":
    main()
