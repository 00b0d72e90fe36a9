"""The top layer: finding a model's classifier, splitting it off, and the heads that replace it.

``split_classifier`` turns a model into a trunk and its classifier so that model(x) == head(trunk(x));
a speed row then times ``head(trunk(x))`` with a fresh k-unit ``make_head`` (or its ``PaddedHead``) or,
for single-class queries, one of the ``QUERY_HEAD_TYPES``: SLC's ``QueryHead`` (one logit from the
full k-class weights) and the two baselines a system without SLC would use, ``FullGatherHead`` and
``AdaptiveSoftmaxHead``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional

from slcbench.errors import SlcbenchError
from slcbench.results import Head


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


class FullGatherHead(nn.Module):
    """Scores the queried class the way a system without SLC does: all k logits, then column j_i per example.

    Output shape is [batch, 1]; the weights are the full head's own (no copy).
    """

    query: torch.Tensor

    def __init__(self, full_head: nn.Linear, query: torch.Tensor) -> None:
        super().__init__()
        self.full_head = full_head
        self.register_buffer("query", query.to(device=full_head.weight.device, dtype=torch.long).view(-1, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.full_head(features).gather(1, self.query)


def adaptive_softmax_cutoffs(classes: int) -> list[int]:
    """The cutoffs of the adaptive softmax for ``classes`` classes: the head cluster holds the first k/16
    classes, a second cluster the next 3k/16 (projected to d/4), a third the last 3k/4 (to d/16).

    Our rule, scale-free so that every k is treated alike (Grave et al. tune cutoffs to word frequencies,
    which uniformly drawn classes do not have): cutoffs floor(k/16) and floor(k/4), each at least 1 and
    below k, duplicates dropped.
    """
    return sorted({c for c in (max(1, classes // 16), max(1, classes // 4)) if c < classes})


class AdaptiveSoftmaxHead(nn.Module):
    """The queried class's log-probability from a ``torch.nn.AdaptiveLogSoftmaxWithLoss`` over k classes.

    Computes what the module's ``forward(input, target)`` computes, and nothing more: the head cluster
    for every example, and each tail cluster's projection and log-softmax only for the examples whose
    queried class lies in it (``log_prob`` would compute every cluster). ``forward`` finds those
    examples with ``nonzero()``, a device-to-host synchronisation that CUDA graphs cannot capture; here
    the queries are fixed when the head is built (as ``QueryHead``'s are), so they are grouped by
    cluster once, on the host, as a server would group a request's queries before launching its work.
    The module has its own weights (cutoffs by ``adaptive_softmax_cutoffs``, the default div_value 4);
    the full head only says k, the width, the device and the dtype. Output shape is [batch, 1].
    """

    head_index: torch.Tensor

    def __init__(self, full_head: nn.Linear, query: torch.Tensor) -> None:
        super().__init__()
        weight = full_head.weight
        classes = full_head.out_features
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(
            full_head.in_features,
            classes,
            adaptive_softmax_cutoffs(classes),
            device=weight.device,
            dtype=weight.dtype,
        ).requires_grad_(False)
        query = query.to(dtype=torch.long, device="cpu")
        bounds = [0, *self.softmax.cutoffs]  # the module appends k to the cutoffs
        head_index = query.clone()  # per example: its class in the head cluster, or its cluster's token there
        self.clusters: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (tail index, examples, class in tail)
        for tail in range(self.softmax.n_clusters):
            low, high = bounds[tail + 1], bounds[tail + 2]
            inside = (query >= low) & (query < high)
            if inside.any():
                head_index[inside] = self.softmax.shortlist_size + tail
                rows = inside.nonzero().flatten().to(weight.device)
                self.clusters.append((tail, rows, (query[inside] - low).to(weight.device).view(-1, 1)))
        self.register_buffer("head_index", head_index.to(weight.device).view(-1, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        softmax = self.softmax
        output = features.new_zeros(features.shape[0])
        for tail, rows, targets in self.clusters:
            cluster = functional.log_softmax(softmax.tail[tail](features.index_select(0, rows)), dim=1)
            output.index_copy_(0, rows, cluster.gather(1, targets).squeeze(1))
        head = functional.log_softmax(softmax.head(features), dim=1)
        output += head.gather(1, self.head_index).squeeze(1)
        return output.view(-1, 1)


QueryHeadType = Callable[[nn.Linear, torch.Tensor], nn.Module]
# The heads that answer one queried class per example, by the row's ``head`` value.
QUERY_HEAD_TYPES: dict[Head, QueryHeadType] = {
    Head.query: QueryHead,
    Head.full_gather: FullGatherHead,
    Head.adaptive_softmax: AdaptiveSoftmaxHead,
}


def make_query_head(kind: Head, full_head: nn.Linear, query: torch.Tensor) -> nn.Module:
    """The ``kind`` of query head for the k-class ``full_head``, answering ``query[i]`` for example i."""
    return QUERY_HEAD_TYPES[kind](full_head, query)


class PaddedHead(nn.Module):
    """The k-unit head with its output rows padded with zero rows to a multiple of ``multiple``; the logits
    are sliced back to k (a view, no copy), so they equal the unpadded head's.

    An odd k leaves every output row of a [batch, k] result misaligned for vectorised and tensor-core
    kernels; padding k costs at most ``multiple - 1`` rows of weights. The weights are a padded copy.
    """

    def __init__(self, full_head: nn.Linear, multiple: int) -> None:
        super().__init__()
        weight = full_head.weight
        self.classes = full_head.out_features
        self.padded_to = math.ceil(self.classes / multiple) * multiple
        self.linear = make_head(full_head.in_features, self.padded_to, weight.device, weight.dtype)
        with torch.no_grad():
            self.linear.weight[: self.classes].copy_(weight)
            self.linear.weight[self.classes :].zero_()
            if full_head.bias is not None:
                self.linear.bias[: self.classes].copy_(full_head.bias)
                self.linear.bias[self.classes :].zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)[:, : self.classes]


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
