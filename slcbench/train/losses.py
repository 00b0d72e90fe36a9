"""The seven training losses of Keren, Sabato & Schuller (ICDM 2018) and Skarbek's ISBE, in PyTorch.

Every loss is a function ``loss(logits, labels) -> scalar tensor`` with ``logits`` of shape [m, k]
(m examples, k >= 2 classes) and integer ``labels`` of shape [m]. Drop one into any training loop:

    loss = batch_cross_entropy(model(x), y)
    loss.backward()

Notation: z_{i,j} is the logit of class j for example i, y_i its label, p_{i,j} = softmax(z_i)_j.
Per-example losses are **averaged over the batch** (the paper sums over the training sample; the mean
only rescales the learning rate and keeps the learning-rate grid comparable across batch sizes). The
two batch losses are on the same per-example-mean scale, as in the authors' code.

**Principle of Logit Separation (PoLS).** A loss is *aligned* with the PoLS when a small enough loss
guarantees that every true logit z_{i,y_i} in the training set is larger than every false logit
z_{i',j}, j != y_{i'}, of any example (Definition 1 of the paper). Cross-entropy and max-margin only
compare logits *within* an example, so they are not aligned (see the counter-example in
``tests/test_losses.py``); the other five are (proofs in the paper's appendix).

**Precision.** float16 and bfloat16 logits are computed in float32 (as autocast does for losses): the
returned loss is float32 and the gradient flows back in the logits' dtype. Every loss is written with
log-sum-exp, log-softmax or softplus, so logits of magnitude 1e4 give finite values and gradients.

The authors released code only for the two batch losses (TensorFlow); the other formulas are taken
from the paper's text, with the choices it leaves open documented on each function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from slcbench.errors import SlcbenchError
from slcbench.registry import Registry
from slcbench.train.config import (
    DEFAULT_MARGIN,
    DEFAULT_NCE_EXACT_MAX_K,
    DEFAULT_NCE_NOISE_SAMPLES,
    DEFAULT_SELF_NORM_ALPHA,
    LossSettings,
)

LossFn = Callable[[Tensor, Tensor], Tensor]


def _checked(logits: Tensor, labels: Tensor) -> Tensor:
    """Validate shapes and return the logits in at least float32 precision."""
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape [m, k], got {tuple(logits.shape)}")
    if logits.shape[1] < 2:
        raise ValueError(f"need at least 2 classes, got k={logits.shape[1]}")
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must have shape [{logits.shape[0]}], got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got {labels.dtype}")
    if not logits.dtype.is_floating_point:
        raise ValueError(f"logits must be floating point, got {logits.dtype}")
    # On the CPU the range is checked here for a clear message; on a GPU that check would stall the
    # stream every step, and an out-of-range label trips the device-side index assert of gather instead.
    if labels.device.type == "cpu" and labels.numel():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= logits.shape[1]:
            raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got values from {low} to {high}")
    # Reduced-precision logits: compute the loss in float32 (autograd casts the gradient back).
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def _true_logits(z: Tensor, labels: Tensor) -> Tensor:
    return z.gather(1, labels.long().unsqueeze(1)).squeeze(1)


def _true_mask(z: Tensor, labels: Tensor) -> Tensor:
    """Boolean [m, k], True at (i, y_i); scatter avoids one_hot's int64 [m, k] intermediate."""
    return torch.zeros(z.shape, dtype=torch.bool, device=z.device).scatter_(1, labels.long().unsqueeze(1), True)


def _false_logits(z: Tensor, labels: Tensor) -> Tensor:
    """z with −∞ at each example's true class: maxima over it are maxima over false logits only.
    amax/amin over it split the gradient evenly among tied entries, as TF's reduce_max does."""
    return z.masked_fill(_true_mask(z, labels), float("-inf"))


def _check_margin(margin: float) -> None:
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")


def _hinges(true: Tensor, max_false: Tensor, margin: float) -> Tensor:
    """Per-example Crammer-Singer hinge max(0, γ − z_y + max_{j≠y} z_j)."""
    return F.relu(margin - true + max_false)


# ---- the two losses that are not PoLS-aligned ------------------------------------------------


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy, mean_i −log p_{i,y_i}. **Not PoLS-aligned**: it depends only on differences of
    logits within each example, so shifting one example's logits by a constant changes nothing.

    Written as log-softmax gathered at the labels rather than F.cross_entropy, which would silently
    skip examples labelled −100 (its ignore_index) where every other loss here refuses them; the
    cost is the same (logsumexp − gather would double it: its backward makes two full passes).
    """
    z = _checked(logits, labels)
    return -_true_logits(F.log_softmax(z, dim=1), labels).mean()


def max_margin(logits: Tensor, labels: Tensor, *, margin: float = DEFAULT_MARGIN) -> Tensor:
    """Multiclass max-margin (Crammer & Singer 2001), mean_i max(0, γ − z_{i,y_i} + max_{j≠y_i} z_{i,j}).

    **Not PoLS-aligned**: it reaches exactly zero once each example's true logit leads its own false
    logits by γ, whatever their level relative to other examples. ``margin`` is γ > 0 (default 1).
    """
    _check_margin(margin)
    z = _checked(logits, labels)
    return _hinges(_true_logits(z, labels), _false_logits(z, labels).amax(dim=1), margin).mean()


# ---- the five PoLS-aligned losses of the paper -------------------------------------------------


def self_normalization(logits: Tensor, labels: Tensor, *, alpha: float = DEFAULT_SELF_NORM_ALPHA) -> Tensor:
    """Self-normalization (Devlin et al. 2014), mean_i [−log p_{i,y_i} + α·log²(Σ_j e^{z_{i,j}})].

    **PoLS-aligned**: the second term pulls the log-partition function to 0, so at the optimum the true
    logit tends to 0 and the false logits to −∞ for every example alike. ``alpha`` is α > 0 (default 0.1;
    the paper does not state its value).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    z = _checked(logits, labels)
    log_partition = torch.logsumexp(z, dim=1)
    return (log_partition - _true_logits(z, labels) + alpha * log_partition.square()).mean()


def _log_noise(noise: Tensor | None, k: int, like: Tensor) -> Tensor:
    """log q as a [k] tensor on ``like``'s device and dtype; uniform when ``noise`` is None."""
    if noise is None:
        return torch.full((k,), -math.log(k), device=like.device, dtype=like.dtype)
    if noise.shape != (k,):
        raise ValueError(f"noise distribution must have shape [{k}], got {tuple(noise.shape)}")
    q = noise.to(device=like.device, dtype=torch.float64)
    # A class with q(j) = 0 could never be drawn as noise yet would get weight log 0 = −∞ in g_j.
    # Tolerance 1e-3: a float32 distribution over 2^18 classes sums to 1 only within ~3e-5.
    if not bool((q > 0).all()) or abs(float(q.sum()) - 1.0) > 1e-3:
        raise ValueError("noise distribution must be strictly positive and sum to 1")
    return (q / q.sum()).log().to(like.dtype)


def nce(
    logits: Tensor,
    labels: Tensor,
    *,
    noise_samples: int = DEFAULT_NCE_NOISE_SAMPLES,
    noise: Tensor | None = None,
    exact_max_k: int = DEFAULT_NCE_EXACT_MAX_K,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Noise-contrastive estimation (Mnih & Teh 2012) in the paper's notation (its Eq. 3):

        ℓ(z, y) = −log g_y − t · E_{j∼q}[log(1 − g_j)],   g_j = (1 + t·q(j)·e^{−z_j})^{−1},

    averaged over the batch. With c_j = log(t·q(j)) both terms are softplus functions, which is how
    they are computed: −log g_j = softplus(c_j − z_j) and −log(1 − g_j) = softplus(z_j − c_j).

    - ``noise_samples`` is t (default 25; the paper does not state it), ``noise`` is q, a strictly
      positive [k] distribution (default uniform, our choice: the paper does not say).
    - **Exact or sampled expectation.** When k <= ``exact_max_k`` the expectation is the exact sum
      Σ_j q(j)·(...) over all k classes; otherwise it is the Monte-Carlo estimate of the paper, t
      classes drawn from q with replacement per example (from ``generator``, on the logits' device, if
      given), which is unbiased for the same value. Set ``exact_max_k=0`` to always sample.
    - The expectation runs over all classes, the true one included, as Mnih & Teh's noise samples do;
      so the loss is bounded below by a positive constant: its infimum has z_y = 0 (e^{z_y} = 1, a
      self-normalised probability, whatever t and q) and all false logits at −∞.

    **PoLS-aligned** (the paper's Appendix B): g_j is increasing in z_j, so a small loss forces true
    logits up and false logits down for every example on the same scale.
    """
    if noise_samples < 1:
        raise ValueError(f"noise_samples (t) must be at least 1, got {noise_samples}")
    z = _checked(logits, labels)
    m, k = z.shape
    log_q = _log_noise(noise, k, z)
    offsets = math.log(noise_samples) + log_q  # c_j = log(t·q(j))
    true_term = F.softplus(offsets[labels.long()] - _true_logits(z, labels))
    if k <= exact_max_k:
        noise_term = noise_samples * (log_q.exp() * F.softplus(z - offsets)).sum(dim=1)
    else:
        if noise is None:
            drawn = torch.randint(k, (m, noise_samples), device=z.device, generator=generator)
        else:
            drawn = torch.multinomial(
                log_q.exp().float(), m * noise_samples, replacement=True, generator=generator
            ).view(m, noise_samples)
        # t·E_q[f(j)] estimated by t·(1/t)·Σ_s f(j_s) = Σ_s f(j_s).
        noise_term = F.softplus(z.gather(1, drawn) - offsets[drawn]).sum(dim=1)
    return (true_term + noise_term).mean()


def binary_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """One-vs-all binary cross-entropy, mean_i [−log σ(z_{i,y_i}) − Σ_{j≠y_i} log(1 − σ(z_{i,j}))].

    Summed over the k classes, averaged over examples. (The paper's displayed formula has a sign typo,
    +Σ log(1−σ), and sums to n instead of k.) **PoLS-aligned**: each logit is pushed towards +∞ or −∞
    on its own, so all true logits end above 0 and all false ones below.
    """
    z = _checked(logits, labels)
    targets = _true_mask(z, labels).to(z.dtype)
    return F.binary_cross_entropy_with_logits(z, targets, reduction="sum") / z.shape[0]


def batch_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Batch cross-entropy (the paper's Definition 2), KL(P_B ‖ Q_B) over the m·k entries of the batch.

    Q_B is the softmax over **all** m·k logits of the batch, P_B puts 1/m on each example's true entry:

        KL(P_B ‖ Q_B) = −log m − (1/m)·Σ_i log Q_B(i, y_i).

    It is zero exactly when every true entry holds batch probability 1/m (all false logits → −∞).
    The authors' TensorFlow code computes Σ P·log(P/(Q+ε)+ε) with ε = 1e-6; we use log-softmax
    instead, which agrees wherever Q ≫ 1e-6 and keeps its gradient when a true entry's Q is tiny.
    **PoLS-aligned** (Appendix D): true and false logits of different examples share one normaliser.
    Needs m >= 1; with m = 1 it is ordinary cross-entropy.
    """
    z = _checked(logits, labels)
    m = z.shape[0]
    log_q = z - torch.logsumexp(z.reshape(-1), dim=0)
    return -math.log(m) - _true_logits(log_q, labels).mean()


def batch_max_margin(logits: Tensor, labels: Tensor, *, margin: float = DEFAULT_MARGIN) -> Tensor:
    """Batch max-margin (the paper's Definition 3), as in the authors' code:

        mean_i max(0, γ − z_{i,y_i} + max_{j≠y_i} z_{i,j}) + (1/m)·max(0, γ − (z⁺_B − z⁻_B)),

    with z⁺_B the smallest true logit in the batch and z⁻_B the largest false logit of any example.
    Ties share the gradient evenly at each level of the max: among the rows whose largest false logit
    is z⁻_B, then among each row's tied entries (a valid subgradient; TF's reduce_max over all false
    logits at once would split it evenly among all tied entries, but that extra full-batch reduction
    costs ~60% more time). The paper assumes m > 1: with m = 1 the batch term repeats the example's
    own hinge, so the loss is twice max-margin's.
    **PoLS-aligned**: a batch loss below γ/m forces every true logit above every false logit in the
    batch. ``margin`` is γ > 0 (default 1; the authors' code reads it from an undefined flag).
    """
    _check_margin(margin)
    z = _checked(logits, labels)
    true, max_false = _true_logits(z, labels), _false_logits(z, labels).amax(dim=1)
    batch_hinge = F.relu(margin - true.amin() + max_false.amax())  # max over rows of row maxima = global max
    return _hinges(true, max_false, margin).mean() + batch_hinge / z.shape[0]


# ---- ISBE (Skarbek 2023) -------------------------------------------------------------------


class IsbeActivation(StrEnum):
    """Score normalisations for ISBE and the range their targets are rescaled to."""

    softmax = "softmax"
    sigmoid = "sigmoid"
    tanh = "tanh"
    hardsigmoid = "hardsigmoid"
    hardtanh = "hardtanh"

    @property
    def target_range(self) -> tuple[float, float]:
        """(value for false classes, value for the true class)."""
        return (-1.0, 1.0) if self in (IsbeActivation.tanh, IsbeActivation.hardtanh) else (0.0, 1.0)

    def apply(self, z: Tensor) -> Tensor:
        if self is IsbeActivation.softmax:
            return torch.softmax(z, dim=1)
        functions: dict[IsbeActivation, Callable[[Tensor], Tensor]] = {
            IsbeActivation.sigmoid: torch.sigmoid,
            IsbeActivation.tanh: torch.tanh,
            IsbeActivation.hardsigmoid: F.hardsigmoid,
            IsbeActivation.hardtanh: F.hardtanh,
        }
        return functions[self](z)


def isbe_target_levels(activation: IsbeActivation | str, num_classes: int, blur: float = 0.0) -> tuple[float, float]:
    """(target of every false class, target of the true class) for ISBE, in the activation's range.

    Skarbek's teacher targets: the one-hot vector blurred by ``blur`` (ε), i.e. 1 − ε at the true class
    and ε / (k − 1) at each of the k − 1 others (still a probability vector), then rescaled from [0, 1]
    to the activation's range (for tanh and hardtanh r ↦ 2r − 1, the paper's range adjustment).
    ``blur=0`` gives the hard one-hot targets {0, 1} or {−1, 1}.

    Parameters
    ----------
    activation : IsbeActivation or str
        The score normalisation whose range the targets are rescaled to.
    num_classes : int
        k >= 2.
    blur : float
        ε in [0, (k − 1) / k): below that bound the true class keeps the largest target.

    Returns
    -------
    tuple of float
        (false-class target, true-class target).
    """
    activation = IsbeActivation(activation)
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got k={num_classes}")
    if not 0.0 <= blur < (num_classes - 1) / num_classes:
        raise ValueError(f"blur must lie in [0, {(num_classes - 1) / num_classes:g}) for k={num_classes}, got {blur}")
    low, high = activation.target_range
    false_share, true_share = blur / (num_classes - 1), 1.0 - blur
    return low + (high - low) * false_share, low + (high - low) * true_share


def isbe_soft_error(
    logits: Tensor, labels: Tensor, activation: IsbeActivation | str = IsbeActivation.softmax, blur: float = 0.0
) -> Tensor:
    """ISBE's soft error a(z) − r (what its backward sends to the logits), as a new tensor, without
    materialising the target matrix r (see ``isbe_target_levels`` for r and ``blur``).

    Computed outside autograd: the soft error is a gradient to send, not a value to differentiate.
    """
    activation = IsbeActivation(activation)
    false_level, true_level = isbe_target_levels(activation, logits.shape[1], blur)
    with torch.no_grad():
        error = activation.apply(logits)  # a fresh tensor: safe to change in place
        if false_level:
            error.sub_(false_level)
        # subtract (true − false level) at each true class: error = a(z) − r
        error.scatter_add_(1, labels.unsqueeze(1), error.new_full((logits.shape[0], 1), false_level - true_level))
    return error


class _IsbeFunction(torch.autograd.Function):
    """Forward: a monitoring value; backward: the soft error (activation(z) − target) straight to z."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, labels: Tensor, activation: IsbeActivation, scale: float, blur: float) -> Tensor:
        error = isbe_soft_error(z, labels, activation, blur)
        ctx.save_for_backward(error)
        ctx.scale = scale
        return 0.5 * scale * error.square().sum()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None, None, None]:
        (error,) = ctx.saved_tensors
        return grad_output * ctx.scale * error, None, None, None, None


def isbe(
    logits: Tensor,
    labels: Tensor,
    *,
    activation: IsbeActivation | str = IsbeActivation.softmax,
    reduction: str = "mean",
    blur: float = 0.0,
) -> Tensor:
    """ISBE (Skarbek 2023, "Cross entropy in deep learning of classifiers is unnecessary").

    No loss is differentiated: the backward pass sends the soft error a(z) − r straight to the logits,
    where a is the activation (softmax, sigmoid, tanh, hardsigmoid or hardtanh) and r the one-hot
    target rescaled to a's range ({0, 1}, or {−1, 1} for tanh and hardtanh). The returned scalar is
    only a value to monitor, Skarbek's ½·Σ (a(z) − r)² (divided by m for ``reduction="mean"``); its
    own gradient is *not* what backward returns. ``reduction`` "mean" divides the soft error by m,
    "sum" sends it as is (Skarbek's code). ``blur`` ε > 0 uses Skarbek's blurred targets instead of
    one-hot ones (1 − ε at the true class, ε / (k − 1) elsewhere, then rescaled to a's range; see
    ``isbe_target_levels``); the default 0 is the hard one-hot target.

    For softmax the soft error p − r *is* the gradient of cross-entropy (the "softmax trick",
    Skarbek's Theorem 1), so ISBE-softmax trains exactly like CE and is **not PoLS-aligned**. For
    sigmoid it equals binary cross-entropy's gradient; for tanh, hardsigmoid and hardtanh the error
    vanishes only when each true logit is high and each false logit low on a fixed scale (e.g.
    hardtanh: z_y >= 1, z_j <= −1), so those four variants are PoLS-aligned by the same argument as
    binary cross-entropy (our reasoning; neither paper states it).
    """
    activation = IsbeActivation(activation)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    z = _checked(logits, labels)
    scale = 1.0 / z.shape[0] if reduction == "mean" else 1.0
    return _IsbeFunction.apply(z, labels.long(), activation, scale, blur)


# ---- registry: the losses by name --------------------------------------------------------------


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: the row name of the paper's Table I, PoLS alignment, and how to build it.

    Parameters
    ----------
    title : str
        The row name in tables (``"batch CE"``).
    pols_aligned : bool
        Whether a small loss forces every true logit above every false logit (the PoLS).
    in_paper : bool
        One of the paper's seven losses (trained by ``--loss all``).
    build : callable
        ``LossSettings -> loss function`` with the settings bound.
    """

    title: str
    pols_aligned: bool
    in_paper: bool
    build: Callable[[LossSettings], LossFn]

    def make(self, settings: LossSettings = LossSettings()) -> LossFn:
        return self.build(settings)


LOSSES: Registry[LossSpec] = Registry("loss")
"""Every loss by its ``--loss`` name, in the order of the paper's Table I (non-aligned first), then ISBE."""

LOSSES.register("cross-entropy", LossSpec("CE", False, True, lambda s: cross_entropy))
LOSSES.register("max-margin", LossSpec("max-margin", False, True, lambda s: partial(max_margin, margin=s.margin)))
LOSSES.register(
    "self-norm", LossSpec("self-norm", True, True, lambda s: partial(self_normalization, alpha=s.self_norm_alpha))
)
LOSSES.register(
    "nce",
    LossSpec(
        "NCE", True, True, lambda s: partial(nce, noise_samples=s.nce_noise_samples, exact_max_k=s.nce_exact_max_k)
    ),
)
LOSSES.register("binary-ce", LossSpec("binary CE", True, True, lambda s: binary_cross_entropy))
LOSSES.register("batch-ce", LossSpec("batch CE", True, True, lambda s: batch_cross_entropy))
LOSSES.register(
    "batch-max-margin", LossSpec("batch max-margin", True, True, lambda s: partial(batch_max_margin, margin=s.margin))
)


def _isbe_builder(activation: IsbeActivation) -> Callable[[LossSettings], LossFn]:
    return lambda settings: partial(isbe, activation=activation)


for _activation in IsbeActivation:
    LOSSES.register(
        f"isbe-{_activation.value}",
        LossSpec(
            f"ISBE {_activation.value}", _activation is not IsbeActivation.softmax, False, _isbe_builder(_activation)
        ),
    )


def paper_losses() -> tuple[str, ...]:
    """The paper's seven losses, in Table I order (what ``--loss all`` trains)."""
    return tuple(name for name, spec in LOSSES.items() if spec.in_paper)


def losses_to_train(names: Sequence[str]) -> list[str]:
    """Expand 'all' to the paper's seven losses; reject unknown names with the list of choices."""
    expanded: list[str] = []
    for name in names:
        if name == "all":
            expanded += paper_losses()
        elif name in LOSSES:
            expanded.append(name)
        else:
            raise SlcbenchError(f"unknown loss '{name}'; choose one of: {', '.join(LOSSES)}, all")
    return list(dict.fromkeys(expanded))
