"""The query heads (SLC's, full-gather, adaptive softmax) and the padded head, each against the full forward."""

import pytest
import torch
from torch import nn

from slcbench.results import Head
from slcbench.speed.architectures import build_model, resolve_arch
from slcbench.speed.heads import (
    AdaptiveSoftmaxHead,
    PaddedHead,
    QueryHead,
    adaptive_softmax_cutoffs,
    find_classifier,
    make_head,
    make_query_head,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_query_logit_equals_the_full_forward_column(device, dtype):
    torch.manual_seed(1)
    device = torch.device(device)
    full = make_head(64, 5000, device, dtype)
    features = torch.randn(16, 64, device=device, dtype=dtype)
    query = torch.randint(0, 5000, (16,))
    with torch.inference_mode():
        expected = full(features).gather(1, query.to(device).unsqueeze(1))
        got = QueryHead(full, query)(features)
    assert got.shape == (16, 1)
    if dtype in (torch.bfloat16, torch.float16) and device.type == "cpu":
        # One float32 accumulation and one rounding, like nn.Linear: bit for bit on the CPU.
        assert torch.equal(got, expected)
    elif dtype in (torch.bfloat16, torch.float16):
        torch.testing.assert_close(got, expected)  # GPU kernels may sum in another order: dtype's tolerance
    else:
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert QueryHead(full, query).weight.data_ptr() == full.weight.data_ptr()  # shares, never copies


def test_query_mode_inside_a_real_model_matches_full_model():
    torch.manual_seed(2)
    model = build_model(resolve_arch("resnet18"), CPU)
    path, old = find_classifier(model)
    full = make_head(old.in_features, 3000, CPU, torch.float32)
    x = torch.randn(3, 3, 64, 64)
    query = torch.tensor([0, 2999, 1234])
    with torch.inference_mode():
        model.set_submodule(path, full)
        all_logits = model(x)
        model.set_submodule(path, QueryHead(full, query))
        single = model(x)
    torch.testing.assert_close(single[:, 0], all_logits[torch.arange(3), query], rtol=1e-5, atol=1e-5)


def test_the_three_query_heads_agree_with_the_full_forward():
    torch.manual_seed(3)
    full = make_head(64, 5000, CPU, torch.float32)
    features = torch.randn(16, 64)
    query = torch.randint(0, 5000, (16,))
    with torch.inference_mode():
        column = full(features).gather(1, query.unsqueeze(1))
        slc = make_query_head(Head.query, full, query)(features)
        gathered = make_query_head(Head.full_gather, full, query)(features)
    assert gathered.shape == slc.shape == (16, 1)
    assert torch.equal(gathered, column)  # the same GEMM, then a gather
    torch.testing.assert_close(slc, gathered, rtol=1e-5, atol=1e-5)
    assert make_query_head(Head.full_gather, full, query).full_head.weight.data_ptr() == full.weight.data_ptr()


@pytest.mark.parametrize(
    "classes, cutoffs", [(2, [1]), (3, [1]), (4, [1]), (16, [1, 4]), (1024, [64, 256]), (370727, [23170, 92681])]
)
def test_adaptive_softmax_cutoffs_follow_the_k_over_16_and_k_over_4_rule(classes, cutoffs):
    assert adaptive_softmax_cutoffs(classes) == cutoffs
    nn.AdaptiveLogSoftmaxWithLoss(64, classes, cutoffs)  # torch accepts them


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_adaptive_softmax_query_is_the_modules_own_log_probability_of_the_queried_class(dtype, tolerance):
    torch.manual_seed(4)
    classes = 1000  # cutoffs 62 and 250: queries in the head cluster, both tails, and on every boundary
    query = torch.tensor([0, 61, 62, 249, 250, 999, 5, 700, 100, 300])
    features = torch.randn(len(query), 64, dtype=dtype)
    head = AdaptiveSoftmaxHead(make_head(64, classes, CPU, dtype), query)
    softmax = head.softmax
    with torch.inference_mode():
        got = head(features)
        every_class = softmax.log_prob(features)  # computes every cluster
        forward = softmax(features, query).output  # the module's own per-target path (not graph-capturable)
    assert got.shape == (len(query), 1)
    torch.testing.assert_close(
        got[:, 0], every_class.gather(1, query.unsqueeze(1))[:, 0], rtol=tolerance, atol=tolerance
    )
    assert torch.equal(got[:, 0], forward)  # the same operations in the same order
    # Tail clusters are computed only where some query falls: here both; a shortlist-only batch needs none.
    assert [tail for tail, _, _ in head.clusters] == [0, 1]
    assert AdaptiveSoftmaxHead(make_head(64, classes, CPU, dtype), torch.tensor([1, 2, 3])).clusters == []


def test_a_padded_head_gives_the_unpadded_logits():
    torch.manual_seed(5)
    full = make_head(48, 1001, CPU, torch.float32)
    features = torch.randn(4, 48)
    padded = PaddedHead(full, 8)
    assert padded.padded_to == 1008 and padded.linear.weight.shape == (1008, 48)
    assert torch.equal(padded.linear.weight[1001:], torch.zeros(7, 48))
    with torch.inference_mode():
        torch.testing.assert_close(padded(features), full(features), rtol=1e-6, atol=1e-6)
    assert PaddedHead(full, 7).padded_to == 1001  # already a multiple: nothing added


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", [Head.query, Head.full_gather, Head.adaptive_softmax, Head.padded])
def test_every_head_replays_as_a_cuda_graph_with_its_eager_output(kind):
    from slcbench.speed.timing import capture_cuda_graph

    torch.manual_seed(6)
    device = torch.device("cuda")
    full = make_head(256, 10001, device, torch.bfloat16)
    features = torch.randn(32, 256, device=device, dtype=torch.bfloat16)
    query = torch.randint(0, 10001, (32,))
    head = PaddedHead(full, 8) if kind is Head.padded else make_query_head(kind, full, query)
    with torch.inference_mode():
        eager = head(features).clone()
        out = torch.empty_like(eager)
        replay = capture_cuda_graph(lambda: out.copy_(head(features)))  # no host synchronisation inside
        out.zero_()
        replay()
        torch.cuda.synchronize()
    assert torch.equal(out, eager)
