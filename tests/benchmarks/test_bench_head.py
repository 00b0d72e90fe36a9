"""The SLC head on its own: a Linear layer's forward at k=1 and k=2^16, and one queried logit at k=2^16.

This is the part of the model whose cost grows with k (the paper's Table III): a full head computes
all k logits, SLC computes one. Feature width 2048 (ResNet-50's), batch 32, float32, inference mode.
The k=2^16 weight matrix is 2^16 x 2048 floats = 512 MiB; it is built once per module.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

FEATURES = 2048
BATCH = 32
LARGE_K = 2**16


def make_linear_head(classes: int, device: torch.device) -> nn.Linear:
    torch.manual_seed(0)
    head = nn.Linear(FEATURES, classes, device=device)
    head.requires_grad_(False)
    return head


@pytest.fixture(scope="module")
def heads(bench_device) -> dict[int, nn.Linear]:
    return {k: make_linear_head(k, bench_device) for k in (1, LARGE_K)}


@pytest.fixture(scope="module")
def features(bench_device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(BATCH, FEATURES, generator=generator).to(bench_device)


def record(benchmark, classes: int, device: torch.device) -> None:
    benchmark.extra_info.update(
        classes=classes, features=FEATURES, batch_size=BATCH, device=str(device), torch_threads=torch.get_num_threads()
    )


@pytest.mark.benchmark(group="head")
@pytest.mark.parametrize("classes", [1, LARGE_K], ids=["k=1", "k=65536"])
def test_full_head_forward(benchmark, heads, features, synchronized, bench_device, classes):
    head = heads[classes]
    record(benchmark, classes, bench_device)

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return head(features)

    logits = benchmark(synchronized(forward))
    assert logits.shape == (BATCH, classes)


@pytest.mark.benchmark(group="head")
def test_single_logit_query_forward(benchmark, heads, features, synchronized, bench_device):
    """SLC at k=2^16: each example's queried class row is gathered and one dot product taken."""
    head = heads[LARGE_K]
    query = torch.randint(0, LARGE_K, (BATCH,), generator=torch.Generator().manual_seed(2)).to(bench_device)
    record(benchmark, LARGE_K, bench_device)

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            rows = head.weight.index_select(0, query)
            return (features * rows).sum(dim=-1) + head.bias.index_select(0, query)

    logits = benchmark(synchronized(forward))
    # Each single logit is w_j . h + b_j of its queried class j, here recomputed in float64.
    rows = head.weight[query].double()
    expected = (features.double() * rows).sum(dim=-1) + head.bias[query].double()
    assert (logits.double() - expected).abs().max().item() < 1e-4  # float32 dot products of 2048 terms err by ~1e-6
