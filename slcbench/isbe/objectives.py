"""What each loss option computes after the network's forward pass, and its value on the learning curves.

``Objective.forward(logits, labels)`` is the option's part of the forward stage and returns its
backward call, so that the two stages can be timed apart (``slcbench.isbe.timing``):

- CE none: ``F.cross_entropy(reduction="none")``, the per-example losses; backward with a vector of
  ones (the gradient of their sum: softmax(z) − onehot per example).
- CE mean / sum: ``F.cross_entropy(reduction=...)``; ``loss.backward()`` (gradient divided by m for mean).
- ISBE none: the paper's code, ``soft_error = a(outputs) − targets; outputs.backward(soft_error)``;
  the soft error is computed outside autograd (it is a gradient to send, not a value to differentiate).
- ISBE mean / sum: ``slcbench.train.losses.isbe`` (its forward also computes the monitoring value
  ½·Σ error², its backward sends the soft error, divided by m for mean).

On the learning curves a CE option shows the mean cross-entropy per example; an ISBE option shows the
paper's monitoring value, the mean squared error of the soft scores, mean over examples and classes
of (a(z) − r)², with the option's own targets r.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from slcbench.isbe.config import LossKind, LossOption, Reduction
from slcbench.isbe.timing import Backward
from slcbench.train.losses import IsbeActivation, isbe, isbe_soft_error


@dataclass(frozen=True)
class Objective:
    """A loss option bound to its blurring value (0 for hard targets)."""

    option: LossOption
    blur: float = 0.0

    @classmethod
    def of(cls, option: LossOption, blur: float) -> Objective:
        """The option's objective; ``blur`` applies only to an option with blurred targets."""
        return cls(option, blur if option.blurred else 0.0)

    @property
    def activation(self) -> IsbeActivation:
        return IsbeActivation(str(self.option.activation))

    def forward(self, logits: Tensor, labels: Tensor) -> Backward:
        """The option's forward stage from the network's ``logits``; returns its backward call."""
        option = self.option
        if option.kind is LossKind.ce:
            loss = F.cross_entropy(logits, labels, reduction=option.reduction.value)
            if option.reduction is Reduction.none:
                return lambda: loss.backward(torch.ones_like(loss))
            return loss.backward
        if option.reduction is Reduction.none:
            error = isbe_soft_error(logits, labels, self.activation, self.blur)
            return lambda: logits.backward(error)
        value = isbe(logits, labels, activation=self.activation, reduction=option.reduction.value, blur=self.blur)
        return value.backward

    def monitor(self, logits: Tensor, labels: Tensor) -> float:
        """The learning-curve value: mean cross-entropy (CE) or the soft scores' mean squared error (ISBE)."""
        with torch.no_grad():
            if self.option.kind is LossKind.ce:
                return float(F.cross_entropy(logits.float(), labels))
            return float(isbe_soft_error(logits.float(), labels, self.activation, self.blur).square().mean())
