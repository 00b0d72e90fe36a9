"""The top layer: finding a model's classifier, splitting it off, and the heads that replace it.

``split_classifier`` turns a model into a trunk and its classifier so that model(x) == head(trunk(x));
a speed row then times ``head(trunk(x))`` with a fresh k-unit ``make_head`` or, for SLC queries, a
``QueryHead`` that computes one logit per example from the full k-class weights.
"""

from __future__ import annotations

import torch
from torch import nn

from slcbench.errors import SlcbenchError


def find_classifier(model: nn.Module, outputs: int | None = 1000) -> tuple[str, nn.Linear]:
    """The dotted path and module of the model's final classification layer (an nn.Linear).

    timm models name it through ``get_classifier()``; otherwise it is the last nn.Linear with
    ``outputs`` outputs (torchvision's 1000: ``fc``, ``classifier.6``, ``heads.head``, ...), or the
    last nn.Linear of any width when ``outputs`` is None.
    """
    get_classifier = getattr(model, "get_classifier", None)
    target = get_classifier() if callable(get_classifier) else None
    found: tuple[str, nn.Module] | None = None
    for path, module in model.named_modules():
        if target is not None:
            if module is target:
                found = (path, module)
        elif isinstance(module, nn.Linear) and outputs in (None, module.out_features):
            found = (path, module)
    if found is None or not isinstance(found[1], nn.Linear):
        raise SlcbenchError(
            f"{type(model).__name__} has no single nn.Linear classification layer to replace "
            "(convolutional heads such as SqueezeNet's, and two-head distilled models, are not supported)"
        )
    return found[0], found[1]


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

    query: torch.Tensor

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
        # accumulated in float32 and rounded once, so the logit equals the full head's column.
        if self.bias is None:
            return torch.bmm(x, rows).view(batch, 1)
        bias = self.bias.index_select(0, self.query).expand(batch).view(batch, 1, 1)
        return torch.baddbmm(bias, x, rows).view(batch, 1)


def split_classifier(model: nn.Module, probe: torch.Tensor, outputs: int | None = 1000) -> tuple[nn.Module, nn.Linear]:
    """Split ``model`` into a feature trunk and its classifier, so that model(x) == head(trunk(x)).

    The classifier is replaced by nn.Identity in place (the returned trunk is ``model`` itself), so
    every class count reuses one trunk (and one torch.compile of it). The split is checked on
    ``probe`` by structure rather than by value: with a stand-in classifier of random weights
    (untrained models can give logits of 1e-14, or exactly 0, which a value check would pass whatever
    follows), the model's output must be exactly the classifier's output, and the trunk's output
    (up to GPU kernel nondeterminism) the classifier's input. Otherwise the model is refused.
    """
    path, head = find_classifier(model, outputs)
    stand_in = make_head(head.in_features, head.out_features, head.weight.device, head.weight.dtype)
    seen: dict[str, torch.Tensor] = {}
    hook = stand_in.register_forward_hook(lambda module, args, output: seen.update(features=args[0], logits=output))
    try:
        with torch.inference_mode():
            model.set_submodule(path, stand_in)
            output = model(probe)
            model.set_submodule(path, nn.Identity())
            features = model(probe)
    finally:
        hook.remove()
    is_last = (
        "logits" in seen
        and isinstance(output, torch.Tensor)
        and output.shape == seen["logits"].shape
        and torch.equal(output, seen["logits"])
    )
    same_input = (
        is_last
        and features.shape == seen["features"].shape
        and torch.allclose(
            features.float(), seen["features"].float(), rtol=1e-3, atol=1e-3 * float(seen["features"].abs().max())
        )
    )
    if not same_input:
        model.set_submodule(path, head)
        raise SlcbenchError(
            f"{type(model).__name__}: the layer at {path!r} is not the model's last operation, so its "
            "top layer cannot be swapped for a k-unit head"
        )
    return model, head
