"""Is the measured k-unit head as fast as the library runs that layer? Times, per shape, slcbench's head
(``make_head``, an nn.Linear), a plain ``torch.nn.functional.linear`` on separately allocated tensors of
the same shape and dtype, and the head padded to multiples of N (``PaddedHead``), each under CUDA-graph
replay and (the head and F.linear) launched eagerly, against the weights' bandwidth floor.

    python tools/head_efficiency.py --device cuda --precision bf16,fp32 --width 2048,4096 \\
        --classes 262144,370727 --pad 8,64 --json head-efficiency.json
    python tools/head_efficiency.py --device cpu --precision fp32 --width 2048 --classes 65536,92681 --pad 8

On an H100 the bf16 head at 2048 x 370727 (batch 32) took 1.584 ms in the sweep, 0.32 of its floor,
where an F.linear of that shape timed on its own took 0.55 ms: this separates the suspects (the odd
k, graph capture, the head's construction) on one machine in one run. Each time is the median of the
samples with its 95% interval; "of floor" is the floor over the time (1 = as fast as reading the
k-unit layer's weights once at the measured copy bandwidth, for every variant). The timing is
slcbench's: the paper's warm-up and 3 ms samples on CUDA, a quick eager protocol on the CPU.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

from slcbench.env.collect import collect_environment
from slcbench.speed.config import Precision
from slcbench.speed.heads import PaddedHead, make_head
from slcbench.speed.protocol import CPU_QUICK_PROTOCOL, PAPER_PROTOCOL, WarmupPlan
from slcbench.speed.sweep import DTYPES, numerics
from slcbench.speed.timing import measure_copy_bandwidth_gbs, timer_for
from slcbench.stats import median_interval


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="bf16,fp32", help="comma-separated: fp32, tf32, bf16, fp16")
    parser.add_argument("--width", type=integers, default=[2048, 4096], help="in_features, comma-separated")
    parser.add_argument("--classes", type=integers, default=[262144, 370727], help="k, comma-separated")
    parser.add_argument("--pad", type=integers, default=[8, 64], help="multiples to pad k to, comma-separated")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 on CUDA, 4 on the CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on the CPU, as speed)")
    parser.add_argument("--json", type=Path, default=None, help="write every timing, with samples, here")
    return parser.parse_args()


class Bench:
    """The timer, its settings and the bandwidth floor for one device."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        paper = PAPER_PROTOCOL
        self.plan = (
            WarmupPlan(
                calls=paper.warmup, min_s=paper.min_warmup_s, settle_pct=paper.settle_pct, max_s=paper.max_warmup_s
            )
            if self.cuda
            else WarmupPlan(calls=2)
        )
        self.samples, self.min_sample_ms = (paper.batches, paper.min_sample_ms) if self.cuda else (10, 0.0)
        self.timer = timer_for(device)
        self.bandwidth_gbs = measure_copy_bandwidth_gbs(device) if self.cuda else None

    def time(self, run: Callable[[], object], use_graph: bool, floor_ms: float | None) -> dict[str, Any]:
        m = self.timer.time(
            run, samples=self.samples, warmup=self.plan, use_graph=use_graph, min_sample_ms=self.min_sample_ms
        )
        return {
            "timing": "graph" if use_graph else "eager",
            "ms": m.median,
            "ms_ci": median_interval(m.samples_ms).bounds(),
            "iqr_pct": m.iqr_pct,
            "calls_per_sample": m.calls_per_sample,
            "floor_ms": floor_ms,
            "of_floor": floor_ms / m.median if floor_ms else None,
            "samples_ms": list(m.samples_ms),
        }


def time_shape(bench: Bench, features: torch.Tensor, classes: int, pads: list[int]) -> list[dict[str, Any]]:
    """Every variant of a ``classes``-unit layer on ``features``: slcbench's head, F.linear, padded heads."""
    width, device, dtype = features.shape[1], features.device, features.dtype
    head = make_head(width, classes, device, dtype)
    weight = torch.randn(classes, width, device=device, dtype=dtype)
    bias = torch.randn(classes, device=device, dtype=dtype)
    variants: dict[str, Callable[[], object]] = {
        "head": lambda: head(features),
        "F.linear": lambda: functional.linear(features, weight, bias),
    }
    for multiple in pads:
        if classes % multiple:
            padded = PaddedHead(head, multiple)
            variants[f"padded {padded.padded_to}"] = _bound(padded, features)
    floor_ms = None
    if bench.bandwidth_gbs:
        floor_ms = classes * (width + 1) * features.element_size() / (bench.bandwidth_gbs * 1e9) * 1e3
    rows = []
    for variant, run in variants.items():
        modes = [True, False] if bench.cuda and variant in ("head", "F.linear") else [bench.cuda]
        for use_graph in modes:
            rows.append(
                {"width": width, "classes": classes, "variant": variant, **bench.time(run, use_graph, floor_ms)}
            )
    return rows


def _bound(module: torch.nn.Module, features: torch.Tensor) -> Callable[[], object]:
    return lambda: module(features)


def main() -> int:
    args = arguments()
    device = torch.device(args.device)
    threads = args.threads or (CPU_QUICK_PROTOCOL.threads if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    bench = Bench(device)
    batch = args.batch_size or (32 if bench.cuda else 4)
    started = time.perf_counter()
    results = []
    device_name = collect_environment(device)["device_name"]
    threads = torch.get_num_threads()
    print(f"{device_name}, batch {batch}, {threads} thread(s), copy bandwidth {bench.bandwidth_gbs} GB/s")
    line = "{:9} {:>5} {:>7} {:14} {:6} {:>8} {:>17} {:>8}"
    print(line.format("precision", "width", "classes", "variant", "timing", "ms", "95% CI", "of floor"))
    for name in args.precision.split(","):
        precision = Precision(name)
        with numerics(precision, device, cudnn_benchmark=False), torch.inference_mode():
            for width in args.width:
                features = torch.randn(batch, width, device=device, dtype=DTYPES[precision])
                for classes in args.classes:
                    for row in time_shape(bench, features, classes, args.pad):
                        low, high = row["ms_ci"] or (float("nan"), float("nan"))
                        of_floor = "" if row["of_floor"] is None else f"{row['of_floor']:.2f}"
                        ci = f"{low:.4f}-{high:.4f}"
                        print(
                            line.format(
                                name, width, classes, row["variant"], row["timing"], f"{row['ms']:.4f}", ci, of_floor
                            )
                        )
                        results.append({"precision": name, "batch_size": batch, **row})
                    if bench.cuda:
                        torch.cuda.empty_cache()
    seconds = time.perf_counter() - started
    print(f"{len(results)} timings in {seconds:.1f} s")
    if args.json:
        document = {
            "command": " ".join(["python", *sys.argv]),
            "environment": collect_environment(device),
            "copy_bandwidth_gbs": bench.bandwidth_gbs,
            "seconds": seconds,
            "timings": results,
        }
        args.json.write_text(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
