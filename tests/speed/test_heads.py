"""The SLC query head: one logit per example from the full k-class weights, equal to the full head's column."""

import pytest
import torch

from slcbench.speed.architectures import build_model, resolve_arch
from slcbench.speed.heads import QueryHead, find_classifier, make_head

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
