"""One small end-to-end ``slcbench speed`` sweep through the library (``measure_rows``): build AlexNet's
trunk with random weights, swap in heads of k=1 and k=2^10 units, and time both (the k=2^10 row in
A-B-B-A blocks against k=1), batch 2, 2 timed batches for k=1 and 6 blocks for k=2^10, after 1
warm-up. This is a smoke-sized benchmark of the whole pipeline (model building included), not the
paper's protocol: for Table III numbers run ``slcbench speed`` on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slcbench.speed.architectures import resolve_arch_list
from slcbench.speed.config import SpeedConfig
from slcbench.speed.protocol import Protocol
from slcbench.speed.sweep import measure_rows

ARCH = "alexnet"
CLASSES = (1, 2**10)
TINY_PROTOCOL = Protocol("ci-tiny", batch_size=2, batches=2, warmup=1)


@pytest.mark.slow
@pytest.mark.benchmark(group="speed-e2e")
def test_speed_sweep_end_to_end(benchmark, bench_device):
    config = SpeedConfig(
        archs=resolve_arch_list(ARCH), classes=CLASSES, device=str(bench_device), protocol=TINY_PROTOCOL
    )
    benchmark.extra_info.update(
        arch=ARCH,
        classes=list(CLASSES),
        batch_size=TINY_PROTOCOL.batch_size,
        batches=TINY_PROTOCOL.batches,
        device=str(bench_device),
        torch_threads=torch.get_num_threads(),
    )
    rows = benchmark(lambda: list(measure_rows(config)))
    assert [(row.classes, row.head, row.status) for row in rows] == [(1, "full", "ok"), (2**10, "full", "ok")]
    # The k=1 reference: its own samples; the k=2^10 row: A-B-B-A blocks against it.
    assert len(rows[0].samples_ms) == TINY_PROTOCOL.batches and rows[0].speedup == 1.0
    assert len(rows[1].ratio_samples) == TINY_PROTOCOL.blocks == len(rows[1].samples_ms) // 2
    # The in-run reference that `slcbench compare` gates on: time(k) / time(k=1) of the same run, paired.
    assert rows[1].speedup == pytest.approx(float(np.median(rows[1].ratio_samples)))
    assert rows[1].speedup_ci[0] <= rows[1].speedup <= rows[1].speedup_ci[1]
