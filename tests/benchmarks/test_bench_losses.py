"""pytest-benchmark benchmarks of each loss's forward + backward at m = 256 examples, k = 10,000 classes.

Run: ``python -m pytest tests/benchmarks/test_bench_losses.py --benchmark-only``. CPU, float32.
NCE appears twice: sampled (its default above 1,024 classes: t = 25 noise classes per example) and
with the exact expectation over all 10,000 classes. Benchmarks time; they assert only that the
gradient came back whole and finite.
"""

import pytest
import torch

from slcbench.train.config import LossSettings
from slcbench.train.losses import LOSSES

M, K = 256, 10_000

VARIANTS = {name: LOSSES[name].make() for name in LOSSES}
VARIANTS["nce-exact"] = LOSSES["nce"].make(LossSettings(nce_exact_max_k=K))


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(0)
    return 3.0 * torch.randn(M, K, generator=gen), torch.randint(0, K, (M,), generator=gen)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_forward_backward(benchmark, batch, name):
    logits, labels = batch
    loss_fn = VARIANTS[name]
    z = logits.clone().requires_grad_(True)

    def step():
        z.grad = None
        loss_fn(z, labels).backward()

    benchmark.extra_info.update(m=M, k=K, dtype="float32", device="cpu")
    benchmark(step)
    assert z.grad is not None and z.grad.shape == (M, K) and torch.isfinite(z.grad).all()
