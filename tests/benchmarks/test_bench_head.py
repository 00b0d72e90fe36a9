"""The SLC head on its own: a k-unit Linear head's forward at k=1 and k=2^16, and SLC's single queried
logit with the k=2^16 weights (``slcbench.speed.heads.QueryHead``, the same code ``slcbench speed --query`` times).

The head is the part of the model whose cost grows with k (the paper's Table III): a full head
computes all k logits, SLC one per example. Feature width 2048 (ResNet-50's), batch 32, float32,
inference mode. The k=2^16 weight matrix is 2^16 x 2048 floats = 512 MiB; it is built once per module.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from slcbench.speed.heads import QueryHead, make_head

FEATURES = 2048
BATCH = 32
LARGE_K = 2**16


@pytest.fixture(scope="module")
def heads(bench_device) -> dict[int, nn.Linear]:
    torch.manual_seed(0)
    return {k: make_head(FEATURES, k, bench_device, torch.float32) for k in (1, LARGE_K)}


@pytest.fixture(scope="module")
def features(bench_device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(BATCH, FEATURES, generator=generator).to(bench_device)


def record(benchmark, classes: int, device: torch.device) -> None:
    benchmark.extra_info.update(
        classes=classes, features=FEATURES, batch_size=BATCH, device=str(device), torch_threads=torch.get_num_threads()
    )


def inference(module: nn.Module, features: torch.Tensor):
    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return module(features)

    return forward


@pytest.mark.benchmark(group="head")
@pytest.mark.parametrize("classes", [1, LARGE_K], ids=["k=1", "k=65536"])
def test_full_head_forward(benchmark, heads, features, synchronized, bench_device, classes):
    record(benchmark, classes, bench_device)
    logits = benchmark(synchronized(inference(heads[classes], features)))
    assert logits.shape == (BATCH, classes)


@pytest.mark.benchmark(group="head")
def test_single_logit_query_forward(benchmark, heads, features, synchronized, bench_device):
    """SLC at k=2^16: each example's queried class row is gathered and one dot product taken."""
    full_head = heads[LARGE_K]
    query = torch.randint(0, LARGE_K, (BATCH,), generator=torch.Generator().manual_seed(2))
    record(benchmark, LARGE_K, bench_device)
    logits = benchmark(synchronized(inference(QueryHead(full_head, query), features)))
    # Each single logit is w_j . h + b_j of its queried class j, recomputed here in float64.
    query = query.to(bench_device)
    expected = (features.double() * full_head.weight[query].double()).sum(dim=-1) + full_head.bias[query].double()
    assert logits.shape == (BATCH, 1)
    assert (
        logits[:, 0].double() - expected
    ).abs().max().item() < 1e-4  # float32 dot products of 2048 terms err by ~1e-6
