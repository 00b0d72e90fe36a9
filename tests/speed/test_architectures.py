"""Architectures by name from their sources, and the split of a model into trunk and classifier."""

import pytest
import torch
from torch import nn

from slcbench.errors import SlcbenchError
from slcbench.paper import PAPER_ARCHS
from slcbench.speed.architectures import ARCH_SOURCES, ArchSource, build_model, resolve_arch, resolve_arch_list
from slcbench.speed.heads import find_classifier, make_head, split_classifier

CPU = torch.device("cpu")


@pytest.mark.slow
@pytest.mark.parametrize("arch", [*PAPER_ARCHS, "timm:resnet18"])
def test_head_replacement_gives_k_outputs(arch):
    spec = resolve_arch(arch)
    torch.manual_seed(0)
    model = build_model(spec, CPU)
    path, old = find_classifier(model)
    assert old.out_features == 1000
    model.set_submodule(path, make_head(old.in_features, 37, CPU, torch.float32))
    size = spec.input_size
    with torch.inference_mode():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 37)
    assert torch.isfinite(out).all()


def test_split_classifier_matches_the_whole_model_and_refuses_layers_after_the_head():
    torch.manual_seed(3)
    model = build_model(resolve_arch("resnet18"), CPU)
    probe = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = model(probe)
    trunk, head = split_classifier(model, probe)
    with torch.inference_mode():
        torch.testing.assert_close(head(trunk(probe)), expected)

    after_head = nn.Sequential(nn.Flatten(), nn.Linear(12, 1000), nn.Softmax(dim=1))
    with pytest.raises(SlcbenchError, match="not the model's last operation"):
        split_classifier(after_head, torch.randn(2, 3, 2, 2))
    assert isinstance(after_head[1], nn.Linear)  # left intact after the refusal


class _AfterTheHead(nn.Module):
    """A model that computes something after its classifier: the split must be refused."""

    def __init__(self, inner: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return -self.scale * self.inner(x).flip(1)


@pytest.mark.parametrize("logit_scale", [1e-14, 0.0])
def test_split_refuses_layers_after_the_head_even_when_untrained_logits_are_tiny_or_zero(logit_scale):
    # Untrained efficientnet gives logits of ~1e-14 and vit_b_16 starts with a zero head: a check
    # of values with an absolute tolerance would accept any operation after the head.
    features = nn.Sequential(nn.Flatten(), nn.Linear(12, 16))
    head = nn.Linear(16, 1000)
    with torch.no_grad():
        head.weight.mul_(logit_scale)
        head.bias.zero_()
    model = _AfterTheHead(nn.Sequential(features, head), scale=100.0).eval()
    with pytest.raises(SlcbenchError, match="not the model's last operation"):
        split_classifier(model, torch.randn(2, 3, 2, 2))
    assert model.inner[1] is head  # restored
    plain = nn.Sequential(features, head).eval()
    trunk, found = split_classifier(plain, torch.randn(2, 3, 2, 2))
    assert found is head and isinstance(trunk[1], nn.Identity)


def test_native_resolutions():
    assert resolve_arch("inception_v3").input_size == 299
    assert resolve_arch("resnet50").input_size == 224
    assert resolve_arch("timm:convnext_tiny").input_size == 224


def test_unknown_architecture_lists_choices():
    with pytest.raises(SlcbenchError, match="alexnet, vgg16, inception_v3, resnet50, resnet101"):
        resolve_arch("resnet5000")
    with pytest.raises(SlcbenchError, match="unknown timm model"):
        resolve_arch("timm:no_such_model")


def test_convolutional_head_is_refused_clearly():
    model = build_model(resolve_arch("squeezenet1_0"), CPU)
    with pytest.raises(SlcbenchError, match="no single nn.Linear classification layer"):
        find_classifier(model)


def tiny_net() -> nn.Module:
    """A model of one's own for ``python:``: any width, its last Linear is the classifier."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 7))


tiny_net.input_size = 32  # type: ignore[attr-defined]


def test_a_model_of_your_own_through_the_python_source():
    spec = resolve_arch(f"python:{__name__}:tiny_net")
    assert (spec.source, spec.model_name, spec.input_size) == ("python", f"{__name__}:tiny_net", 32)
    model = build_model(spec, CPU)
    trunk, head = split_classifier(model, torch.randn(1, 3, 32, 32), ARCH_SOURCES.get("python").classifier_outputs)
    assert head.out_features == 7 and not any(p.requires_grad for p in model.parameters())
    for bad, message in [
        ("python:nope", "python:MODULE:CALLABLE"),
        ("python:no_such_module_x:f", "cannot import"),
        (f"python:{__name__}:missing", "has no missing"),
    ]:
        with pytest.raises(SlcbenchError, match=message):
            resolve_arch(bad)


def test_a_registered_source_is_one_entry_and_resolves_its_prefix():
    ARCH_SOURCES.register("toy", ArchSource("toy:", lambda name: 16, lambda name: tiny_net()))
    try:
        (spec,) = resolve_arch_list("toy:anything")
        assert (spec.source, spec.model_name, spec.input_size) == ("toy", "anything", 16)
        assert isinstance(build_model(spec, CPU), nn.Sequential)
    finally:
        ARCH_SOURCES.unregister("toy")
