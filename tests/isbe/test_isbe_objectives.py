"""Every loss option's gradient against its definition, computed independently in float64 NumPy:
cross-entropy's softmax(z) − onehot per example (summed for none and sum, divided by m for mean), and
ISBE's a(z) − r with the paper's targets (hard or blurred, rescaled to a's range), scaled alike."""

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax

from slcbench.isbe.config import IsbeConfig, LossKind
from slcbench.isbe.objectives import Objective

ACTIVATIONS = {
    "softmax": lambda z: softmax(z, axis=1),
    "sigmoid": expit,
    "tanh": np.tanh,
    "hardsigmoid": lambda z: np.clip(z / 6.0 + 0.5, 0.0, 1.0),
    "hardtanh": lambda z: np.clip(z, -1.0, 1.0),
}
BLUR = 0.2
M, K = 7, 10


def reference_targets(labels, activation, blur):
    """The paper's teacher targets: blurred one-hot (1 − ε true, ε/(k − 1) false), then 2r − 1 for tanh ranges."""
    r = np.full((len(labels), K), blur / (K - 1))
    r[np.arange(len(labels)), labels] = 1.0 - blur
    return 2.0 * r - 1.0 if activation in ("tanh", "hardtanh") else r


def reference_gradient(option, z, labels, blur):
    if option.kind is LossKind.ce:
        error = softmax(z, axis=1)
        error[np.arange(len(labels)), labels] -= 1.0
    else:
        error = ACTIVATIONS[option.activation](z) - reference_targets(labels, option.activation, blur)
    return error / len(labels) if option.reduction.value == "mean" else error


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(3)
    z = rng.normal(scale=3.0, size=(M, K))
    z[0, :3] = [0.5, -0.5, 2.5]  # inside the hard activations' linear parts as well as outside
    return z, rng.integers(0, K, size=M)


@pytest.mark.parametrize("option", IsbeConfig(blur=BLUR, plot=False).options(), ids=lambda o: o.name)
def test_every_options_backward_sends_its_definitions_gradient(option, batch):
    z, labels = batch
    logits = torch.tensor(z, requires_grad=True)
    backward = Objective.of(option, BLUR).forward(logits, torch.tensor(labels))
    assert logits.grad is None  # the forward stage computes no gradient
    backward()
    expected = reference_gradient(option, z, labels, BLUR if option.blurred else 0.0)
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("option", IsbeConfig(blur=BLUR, plot=False).options(), ids=lambda o: o.name)
def test_monitoring_values_are_mean_cross_entropy_or_the_soft_scores_mse(option, batch):
    z, labels = batch
    value = Objective.of(option, BLUR).monitor(torch.tensor(z), torch.tensor(labels))
    if option.kind is LossKind.ce:
        expected = np.mean(-np.log(softmax(z, axis=1)[np.arange(M), labels]))
    else:
        targets = reference_targets(labels, option.activation, BLUR if option.blurred else 0.0)
        expected = np.mean((ACTIVATIONS[option.activation](z) - targets) ** 2)
    assert value == pytest.approx(expected, rel=1e-6)  # the monitor computes in float32


def test_blur_applies_only_to_the_blurred_options():
    hard, blurred = (o for o in IsbeConfig(plot=False).options() if o.name.startswith("isbe-tanh-none"))
    assert Objective.of(hard, 0.3).blur == 0.0 and Objective.of(blurred, 0.3).blur == 0.3
