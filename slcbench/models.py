"""Architectures by name, and swapping their top classification layer for a head of k units.

Names: the paper's five (alexnet, vgg16, inception_v3, resnet50, resnet101), any torchvision
classification model, or ``timm:NAME`` for any timm model. Weights are always random
(``weights=None`` / ``pretrained=False``): nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from slcbench.errors import SlcbenchError
from slcbench.paper import PAPER_ARCHS

TIMM_PREFIX = "timm:"
# torchvision builds every classifier with this many outputs by default; we find the head by it.
_TORCHVISION_DEFAULT_CLASSES = 1000


@dataclass(frozen=True)
class ArchSpec:
    """What to build: a model name, which library builds it, and its native input resolution."""

    name: str
    source: str  # "torchvision" or "timm"
    model_name: str
    input_size: int


@lru_cache(maxsize=1)
def list_torchvision_models() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def list_architectures() -> tuple[str, ...]:
    """Names ``--arch`` accepts besides ``all`` and ``timm:NAME``."""
    return list_torchvision_models()


def _torchvision_input_size(model_name: str) -> int:
    # Inception-v3 was designed for (and in the paper run at) 299x299; the rest of the zoo at 224.
    return 299 if model_name == "inception_v3" else 224


def resolve_arch(name: str) -> ArchSpec:
    """The ArchSpec for one ``--arch`` name, or SlcbenchError naming the choices."""
    name = name.strip()
    if name.startswith(TIMM_PREFIX):
        import timm

        model_name = name[len(TIMM_PREFIX):]
        if not timm.is_model(model_name):
            raise SlcbenchError(
                f"unknown timm model {model_name!r}; list them with python -c \"import timm; print(timm.list_models())\""
            )
        cfg = timm.get_pretrained_cfg(model_name)
        size = cfg.input_size[-1] if cfg is not None and cfg.input_size else 224
        return ArchSpec(name=name, source="timm", model_name=model_name, input_size=int(size))
    if name in list_torchvision_models():
        return ArchSpec(name=name, source="torchvision", model_name=name, input_size=_torchvision_input_size(name))
    raise SlcbenchError(
        f"unknown architecture {name!r}; choose from {', '.join(PAPER_ARCHS)}, 'all', any torchvision "
        f"classification model (e.g. resnet18, vit_b_16) or timm:NAME (e.g. timm:convnext_tiny)"
    )


def resolve_arch_list(spec: str) -> tuple[ArchSpec, ...]:
    """A comma list of architectures; ``all`` expands to the paper's five."""
    names: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        for name in PAPER_ARCHS if token.lower() == "all" else (token,):
            if name not in names:
                names.append(name)
    if not names:
        raise SlcbenchError("no architecture given: use e.g. --arch resnet50 or --arch all")
    return tuple(resolve_arch(n) for n in names)


def build_model(spec: ArchSpec, device: torch.device) -> nn.Module:
    """The untrained model in eval mode, parameters created directly on ``device`` (no CPU copy)."""
    with torch.device(device):
        if spec.source == "timm":
            import timm

            model = timm.create_model(spec.model_name, pretrained=False)
        else:
            import torchvision

            kwargs = {"aux_logits": False, "init_weights": True} if spec.model_name in ("inception_v3", "googlenet") else {}
            model = torchvision.models.get_model(spec.model_name, weights=None, **kwargs)
    model.eval().requires_grad_(False)
    return model


def find_classifier(model: nn.Module) -> tuple[str, nn.Linear]:
    """The dotted path and module of the model's final classification layer (an nn.Linear).

    timm models name it through ``get_classifier()``; for torchvision models it is the last
    nn.Linear with the default 1000 outputs (``fc``, ``classifier.6``, ``heads.head``, ...).
    """
    target = model.get_classifier() if hasattr(model, "get_classifier") else None
    found: tuple[str, nn.Linear] | None = None
    for path, module in model.named_modules():
        if target is not None:
            if module is target:
                found = (path, module)
        elif isinstance(module, nn.Linear) and module.out_features == _TORCHVISION_DEFAULT_CLASSES:
            found = (path, module)
    if found is None or not isinstance(found[1], nn.Linear):
        raise SlcbenchError(
            f"{type(model).__name__} has no single nn.Linear classification layer to replace "
            "(convolutional heads such as SqueezeNet's, and two-head distilled models, are not supported)"
        )
    return found


def make_head(in_features: int, num_classes: int, device: torch.device, dtype: torch.dtype) -> nn.Linear:
    """A fresh k-unit linear head allocated directly on the device in the target dtype."""
    head = nn.Linear(in_features, num_classes, device=device, dtype=dtype)
    head.requires_grad_(False)
    return head


class QueryHead(nn.Module):
    """Answers "is x of class j?" with the full k-class weights in memory but only one logit computed.

    For each example i it gathers the weight row of its queried class j_i and takes one dot product:
    z_i = w_{j_i} · h_i + b_{j_i}. Output shape is [batch, 1]. The weights are shared with the full
    head (no copy), the way a deployed SLC system keeps one model and serves single-class queries.
    """

    def __init__(self, full_head: nn.Linear, query: torch.Tensor) -> None:
        super().__init__()
        self.weight = full_head.weight
        self.bias = full_head.bias
        self.register_buffer("query", query.to(device=full_head.weight.device, dtype=torch.long))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch = features.shape[0]
        rows = self.weight.index_select(0, self.query).expand(batch, -1).unsqueeze(-1)  # [batch, d, 1]
        x = features.unsqueeze(1)  # [batch, 1, d]
        # One batched GEMM with the bias fused, as nn.Linear does: in bf16/fp16 the products are
        # accumulated in float32 and rounded once, so the logit equals the full head's column
        # (an elementwise product and sum would round each product and the bias separately).
        if self.bias is None:
            return torch.bmm(x, rows).view(batch, 1)
        bias = self.bias.index_select(0, self.query).expand(batch).view(batch, 1, 1)
        return torch.baddbmm(bias, x, rows).view(batch, 1)


def replace_classifier(model: nn.Module, path: str, head: nn.Module) -> None:
    """Install ``head`` at ``path``, dropping the old layer so its memory can be freed."""
    model.set_submodule(path, head)


def split_classifier(model: nn.Module, probe: torch.Tensor) -> tuple[nn.Module, nn.Linear]:
    """Split ``model`` into a feature trunk and its classifier, so that model(x) == head(trunk(x)).

    The classifier is replaced by nn.Identity in place (the returned trunk is ``model`` itself).
    Timing ``head(trunk(x))`` lets every class count reuse one trunk (and one torch.compile of it)
    with no module swapping. The split is checked on ``probe``, by structure rather than by value:
    with a stand-in classifier of random weights (untrained models can give logits of 1e-14, or
    exactly 0 where the head starts at zero, which a value check would pass whatever follows), the
    model's output must be exactly the classifier's output, and the trunk's output exactly (up to
    GPU kernel nondeterminism) the classifier's input. Otherwise the model is refused.
    """
    path, head = find_classifier(model)
    stand_in = make_head(head.in_features, head.out_features, head.weight.device, head.weight.dtype)
    seen: dict[str, torch.Tensor] = {}
    hook = stand_in.register_forward_hook(lambda module, args, output: seen.update(features=args[0], logits=output))
    try:
        with torch.inference_mode():
            replace_classifier(model, path, stand_in)
            output = model(probe)
            replace_classifier(model, path, nn.Identity())
            features = model(probe)
    finally:
        hook.remove()
    is_last = (
        "logits" in seen and isinstance(output, torch.Tensor)
        and output.shape == seen["logits"].shape and torch.equal(output, seen["logits"])
    )
    same_input = is_last and features.shape == seen["features"].shape and torch.allclose(
        features.float(), seen["features"].float(), rtol=1e-3, atol=1e-3 * float(seen["features"].abs().max())
    )
    if not same_input:
        replace_classifier(model, path, head)
        raise SlcbenchError(
            f"{type(model).__name__}: the layer at {path!r} is not the model's last operation, so its "
            "top layer cannot be swapped for a k-unit head"
        )
    return model, head
