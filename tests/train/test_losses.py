"""The losses against independent float64 NumPy computations of the paper's formulas, their gradients,
the paper's PoLS counter-example, Skarbek's softmax trick, and numerical stability."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slcbench.train import losses as L
from slcbench.train.config import LossSettings
from slcbench.train.losses import LOSSES, IsbeActivation, paper_losses

# ---- independent references: direct transcriptions of the formulas, float64, loops, no log tricks ----


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_cross_entropy(z, y):
    return np.mean([-np.log(np.exp(z[i, y[i]]) / np.exp(z[i]).sum()) for i in range(len(y))])


def ref_max_margin(z, y, gamma=1.0):
    return np.mean([max(0.0, gamma - z[i, y[i]] + np.delete(z[i], y[i]).max()) for i in range(len(y))])


def ref_self_norm(z, y, alpha=0.1):
    return np.mean(
        [
            -np.log(np.exp(z[i, y[i]]) / np.exp(z[i]).sum()) + alpha * np.log(np.exp(z[i]).sum()) ** 2
            for i in range(len(y))
        ]
    )


def ref_nce(z, y, t, q):
    total = 0.0
    for i in range(len(y)):
        g = 1.0 / (1.0 + t * q * np.exp(-z[i]))
        total += -np.log(g[y[i]]) - t * np.sum(q * np.log(1.0 - g))
    return total / len(y)


def ref_binary_ce(z, y):
    total = 0.0
    for i in range(len(y)):
        for j in range(z.shape[1]):
            total += -np.log(_sigmoid(z[i, j])) if j == y[i] else -np.log(1.0 - _sigmoid(z[i, j]))
    return total / len(y)


def ref_batch_ce(z, y):
    m = len(y)
    Q = np.exp(z) / np.exp(z).sum()
    P = np.zeros_like(z)
    P[np.arange(m), y] = 1.0 / m
    nz = P > 0
    return float(np.sum(P[nz] * np.log(P[nz] / Q[nz])))  # KL(P||Q)


def ref_batch_max_margin(z, y, gamma=1.0):
    m = len(y)
    true = [z[i, y[i]] for i in range(m)]
    false = [z[i, j] for i in range(m) for j in range(z.shape[1]) if j != y[i]]
    return ref_max_margin(z, y, gamma) + max(0.0, gamma - min(true) + max(false)) / m


def _random_batch(m=6, k=5, scale=2.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=scale, size=(m, k)), rng.integers(0, k, size=m)


CASES = [
    ("cross-entropy", lambda z, y: L.cross_entropy(z, y), ref_cross_entropy),
    ("max-margin", lambda z, y: L.max_margin(z, y, margin=0.7), lambda z, y: ref_max_margin(z, y, 0.7)),
    ("self-norm", lambda z, y: L.self_normalization(z, y, alpha=0.3), lambda z, y: ref_self_norm(z, y, 0.3)),
    (
        "nce-uniform",
        lambda z, y: L.nce(z, y, noise_samples=3),
        lambda z, y: ref_nce(z, y, 3, np.full(z.shape[1], 1.0 / z.shape[1])),
    ),
    (
        "nce-given-q",
        lambda z, y: L.nce(z, y, noise_samples=7, noise=torch.tensor([0.1, 0.2, 0.3, 0.15, 0.25], dtype=torch.float64)),
        lambda z, y: ref_nce(z, y, 7, np.array([0.1, 0.2, 0.3, 0.15, 0.25])),
    ),
    ("binary-ce", lambda z, y: L.binary_cross_entropy(z, y), ref_binary_ce),
    ("batch-ce", lambda z, y: L.batch_cross_entropy(z, y), ref_batch_ce),
    (
        "batch-max-margin",
        lambda z, y: L.batch_max_margin(z, y, margin=1.5),
        lambda z, y: ref_batch_max_margin(z, y, 1.5),
    ),
]


@pytest.mark.parametrize("name,ours,reference", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_matches_float64_reference(name, ours, reference, seed):
    z, y = _random_batch(seed=seed)
    expected = reference(z, y)
    got = ours(torch.tensor(z), torch.tensor(y))
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    # float32 agrees to float32 precision
    got32 = ours(torch.tensor(z, dtype=torch.float32), torch.tensor(y))
    assert got32.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_batch_max_margin_hits_both_terms_on_a_hand_example():
    # Example 0 (label 0): hinge max(0, 1 − 3 + 1) = 0; example 1 (label 1): max(0, 1 − 0 + 2) = 3.
    # min true = 0, max false = 2 → batch term max(0, 1 − 0 + 2)/2 = 1.5. Total 3/2 + 1.5 = 3.
    z = torch.tensor([[3.0, 1.0], [2.0, 0.0]])
    assert L.batch_max_margin(z, torch.tensor([0, 1])).item() == pytest.approx(3.0)


def test_batch_ce_is_zero_when_true_entries_hold_the_whole_batch_mass():
    z = torch.tensor([[5.0, -1e4, -1e4], [-1e4, 5.0, -1e4]])
    assert L.batch_cross_entropy(z, torch.tensor([0, 1])).item() == pytest.approx(0.0, abs=1e-6)
    # one true logit lower than the other: Q = (e^5, e^3)/Z → KL = −log 2 − ½(log Q00 + log Q11)
    z2 = torch.tensor([[5.0, -1e4], [-1e4, 3.0]], dtype=torch.float64)
    logZ = math.log(math.exp(5) + math.exp(3))
    expected = -math.log(2) - 0.5 * ((5 - logZ) + (3 - logZ))
    assert L.batch_cross_entropy(z2, torch.tensor([0, 1])).item() == pytest.approx(expected, rel=1e-12)


# ---- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("name,ours,reference", CASES, ids=[c[0] for c in CASES])
def test_gradcheck_float64(name, ours, reference):
    z, y = _random_batch(m=4, k=5, scale=1.5, seed=7)
    zt = torch.tensor(z, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: ours(a, torch.tensor(y)), (zt,), eps=1e-6, atol=1e-7)


def test_nce_monte_carlo_is_unbiased_for_the_exact_expectation():
    z, y = _random_batch(m=8, k=6, scale=1.0, seed=3)
    zt, yt = torch.tensor(z), torch.tensor(y)
    exact = L.nce(zt, yt, noise_samples=4).item()
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([L.nce(zt, yt, noise_samples=4, exact_max_k=0, generator=gen) for _ in range(4000)])
    # the standard error of the mean of 4000 draws is ~0.003 here; allow five of them
    assert draws.mean().item() == pytest.approx(exact, abs=5 * draws.std().item() / math.sqrt(4000))
    assert draws.std().item() > 0.01  # it really was sampled
    # exact_max_k switches at k: k=6 <= 6 is exact, a fixed generator makes the sampled value repeatable
    assert L.nce(zt, yt, noise_samples=4, exact_max_k=6).item() == exact
    a = L.nce(zt, yt, noise_samples=4, exact_max_k=5, generator=torch.Generator().manual_seed(1))
    b = L.nce(zt, yt, noise_samples=4, exact_max_k=5, generator=torch.Generator().manual_seed(1))
    assert a.item() == b.item() != exact


def test_nce_sampling_from_a_given_noise_distribution_matches_its_expectation():
    q = torch.tensor([0.5, 0.3, 0.1, 0.1], dtype=torch.float64)
    z, y = _random_batch(m=4, k=4, scale=1.0, seed=4)
    zt, yt = torch.tensor(z), torch.tensor(y)
    exact = L.nce(zt, yt, noise_samples=2, noise=q).item()
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([L.nce(zt, yt, noise_samples=2, noise=q, exact_max_k=0, generator=gen) for _ in range(4000)])
    assert draws.mean().item() == pytest.approx(exact, abs=5 * draws.std().item() / math.sqrt(4000))


# ---- ISBE ---------------------------------------------------------------------------------


def test_isbe_softmax_gradient_equals_cross_entropy_gradient_sum_reduction():
    # Skarbek's Theorem 1 (softmax trick): ∂CE/∂z = softmax(z) − onehot, which ISBE sends directly.
    z, y = _random_batch(m=8, k=7, scale=3.0, seed=5)
    za = torch.tensor(z, requires_grad=True)
    zb = torch.tensor(z, requires_grad=True)
    L.isbe(za, torch.tensor(y), activation="softmax", reduction="sum").backward()
    F.cross_entropy(zb, torch.tensor(y), reduction="sum").backward()
    torch.testing.assert_close(za.grad, zb.grad, rtol=1e-12, atol=1e-14)
    # and with mean reduction it equals our (mean) cross_entropy's gradient
    zc = torch.tensor(z, requires_grad=True)
    zd = torch.tensor(z, requires_grad=True)
    L.isbe(zc, torch.tensor(y)).backward()
    L.cross_entropy(zd, torch.tensor(y)).backward()
    torch.testing.assert_close(zc.grad, zd.grad, rtol=1e-12, atol=1e-14)


def test_isbe_sigmoid_gradient_equals_binary_cross_entropy_gradient():
    z, y = _random_batch(m=5, k=4, seed=6)
    za = torch.tensor(z, requires_grad=True)
    zb = torch.tensor(z, requires_grad=True)
    L.isbe(za, torch.tensor(y), activation="sigmoid").backward()
    L.binary_cross_entropy(zb, torch.tensor(y)).backward()
    torch.testing.assert_close(za.grad, zb.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "activation,reference,low",
    [
        ("tanh", np.tanh, -1.0),
        ("hardtanh", lambda x: np.clip(x, -1.0, 1.0), -1.0),
        ("hardsigmoid", lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0), 0.0),
        ("sigmoid", _sigmoid, 0.0),
    ],
)
def test_isbe_backward_is_activation_minus_rescaled_target(activation, reference, low):
    z, y = _random_batch(m=6, k=5, scale=4.0, seed=8)
    target = np.full_like(z, low)
    target[np.arange(len(y)), y] = 1.0
    zt = torch.tensor(z, requires_grad=True)
    value = L.isbe(zt, torch.tensor(y), activation=activation, reduction="sum")
    value.backward()
    error = reference(z) - target
    np.testing.assert_allclose(zt.grad.numpy(), error, rtol=1e-12, atol=1e-15)
    assert value.item() == pytest.approx(0.5 * np.sum(error**2), rel=1e-12)  # Skarbek's monitoring value


@pytest.mark.parametrize(
    "activation,reference,rescale",
    [
        ("softmax", lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), lambda r: r),
        ("sigmoid", _sigmoid, lambda r: r),
        ("hardsigmoid", lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0), lambda r: r),
        ("tanh", np.tanh, lambda r: 2.0 * r - 1.0),  # Skarbek's range adjustment for tanh
        ("hardtanh", lambda x: np.clip(x, -1.0, 1.0), lambda r: 2.0 * r - 1.0),
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_isbe_blurred_targets_are_the_papers_rescaled_blurred_one_hot(activation, reference, rescale, reduction):
    z, y = _random_batch(m=6, k=5, scale=3.0, seed=9)
    blur = 0.2
    target = np.full_like(z, blur / 4)  # ε / (k − 1) on each false class
    target[np.arange(len(y)), y] = 1.0 - blur
    target = rescale(target)
    zt = torch.tensor(z, requires_grad=True)
    value = L.isbe(zt, torch.tensor(y), activation=activation, reduction=reduction, blur=blur)
    value.backward()
    scale = 1.0 / len(y) if reduction == "mean" else 1.0
    error = reference(z) - target
    np.testing.assert_allclose(zt.grad.numpy(), scale * error, rtol=1e-12, atol=1e-15)
    assert value.item() == pytest.approx(0.5 * scale * np.sum(error**2), rel=1e-12)
    soft_error = L.isbe_soft_error(torch.tensor(z), torch.tensor(y), activation, blur)
    np.testing.assert_allclose(soft_error.numpy(), error, rtol=1e-12, atol=1e-15)


def test_isbe_target_levels_and_blur_range():
    assert L.isbe_target_levels("tanh", 10) == (-1.0, 1.0)
    assert L.isbe_target_levels("sigmoid", 10, 0.1) == pytest.approx((0.1 / 9, 0.9))
    assert L.isbe_target_levels("hardtanh", 10, 0.1) == pytest.approx((2 * 0.1 / 9 - 1, 0.8))
    z, y = torch.zeros(2, 4), torch.tensor([0, 1])
    for blur in (-0.01, 0.75):  # from 1 − 1/k = 0.75 on the true class no longer holds the largest target
        with pytest.raises(ValueError, match=r"blur must lie in \[0, 0.75\)"):
            L.isbe(z, y, blur=blur)


def test_isbe_rejects_unknown_activation_and_reduction():
    z, y = torch.zeros(2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError):
        L.isbe(z, y, activation="relu")
    with pytest.raises(ValueError, match="reduction"):
        L.isbe(z, y, reduction="none")


# ---- the paper's PoLS counter-example (Section III) ----------------------------------------------

# S = ((x1, class 1), (x2, class 2)), z(x1) = (2α, α), z(x2) = (−2α, −α): the false logit z_2(x1) = α
# is above the true logit z_2(x2) = −α, so PoLS is violated for every α > 0.
LABELS = torch.tensor([0, 1])


def _counter_example(alpha: float) -> torch.Tensor:
    return torch.tensor([[2 * alpha, alpha], [-2 * alpha, -alpha]], dtype=torch.float64)


def _pols_holds(z: torch.Tensor, y: torch.Tensor) -> bool:
    """Definition 1: every true logit of any example above every false logit of any example."""
    is_true = F.one_hot(y, z.shape[1]).bool()
    return bool(z[is_true].min() > z[~is_true].max())


def _aligned_loss_fns():
    settings = LossSettings()
    return {name: LOSSES[name].make(settings) for name in paper_losses() if LOSSES[name].pols_aligned}


def test_counter_example_gives_cross_entropy_and_max_margin_near_zero_loss_while_pols_fails():
    for alpha in (1.0, 10.0, 40.0):
        z = _counter_example(alpha)
        assert not _pols_holds(z, LABELS)
        # the paper: ℓ(S) = 2 log(1 + e^{−α}) as a sum, i.e. log(1 + e^{−α}) as our mean
        assert L.cross_entropy(z, LABELS).item() == pytest.approx(math.log1p(math.exp(-alpha)), rel=1e-12)
    assert L.cross_entropy(_counter_example(40.0), LABELS).item() < 1e-15
    assert L.max_margin(_counter_example(1.0), LABELS, margin=1.0).item() == 0.0  # α = γ gives exactly 0


def test_aligned_losses_stay_bounded_away_from_their_infimum_on_the_counter_example():
    alphas = np.concatenate([np.linspace(0.01, 5, 500), np.geomspace(5, 1e3, 200)])
    # A PoLS-satisfying configuration each loss reaches far lower values on: true logits 0, false −30
    # (true logits at 0 is the optimum of self-norm and NCE; the others only get lower further out).
    separated = torch.tensor([[0.0, -30.0], [-30.0, 0.0]], dtype=torch.float64)
    for name, loss in _aligned_loss_fns().items():
        on_counter_example = min(loss(_counter_example(a), LABELS).item() for a in alphas)
        floor = loss(separated, LABELS).item()
        assert on_counter_example > floor + 0.25, (name, on_counter_example, floor)
    # and for the non-aligned ones that gap closes: CE reaches below its value at the separated point
    assert L.cross_entropy(_counter_example(40.0), LABELS).item() <= L.cross_entropy(separated, LABELS).item()


@pytest.mark.parametrize("name", paper_losses())
def test_gradient_descent_from_the_counter_example_separates_logits_only_for_aligned_losses(name):
    # Start at the counter-example with α = 5 (CE ≈ 0.007, max-margin 0) and descend on the four logits
    # themselves: the aligned losses move them until PoLS holds, CE and max-margin have (almost) no
    # gradient left and stay in violation.
    spec = LOSSES[name]
    loss_fn = spec.make(LossSettings())
    z = _counter_example(5.0).requires_grad_(True)
    opt = torch.optim.SGD([z], lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        loss_fn(z, LABELS).backward()
        opt.step()
    assert _pols_holds(z.detach(), LABELS) == spec.pols_aligned, z.detach()


# ---- stability, precision, registry -----------------------------------------------------------


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_loss_and_gradient_at_logit_magnitude_1e4(name, dtype):
    gen = torch.Generator().manual_seed(0)
    z = (1e4 * torch.randn(16, 10, generator=gen)).to(dtype).requires_grad_(True)
    y = torch.randint(0, 10, (16,), generator=gen)
    value = LOSSES[name].make()(z, y)
    value.backward()
    assert torch.isfinite(value).item(), value
    assert z.grad.dtype == dtype
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", list(LOSSES))
def test_bfloat16_logits_give_the_float32_loss_of_the_rounded_logits(name):
    z, y = _random_batch(m=8, k=6, seed=9)
    z16 = torch.tensor(z, dtype=torch.bfloat16)
    fn = LOSSES[name].make()
    assert fn(z16, torch.tensor(y)).item() == pytest.approx(fn(z16.float(), torch.tensor(y)).item(), rel=1e-6)


def test_registry_names_and_alignment_follow_the_paper():
    assert paper_losses() == (
        "cross-entropy",
        "max-margin",
        "self-norm",
        "nce",
        "binary-ce",
        "batch-ce",
        "batch-max-margin",
    )
    assert [n for n in paper_losses() if not LOSSES[n].pols_aligned] == ["cross-entropy", "max-margin"]
    assert {n for n in LOSSES if n.startswith("isbe-")} == {f"isbe-{a.value}" for a in IsbeActivation}
    assert not LOSSES["isbe-softmax"].pols_aligned and LOSSES["isbe-hardtanh"].pols_aligned


def test_settings_reach_the_loss():
    z, y = _random_batch(seed=10)
    zt, yt = torch.tensor(z), torch.tensor(y)
    wide = LOSSES["max-margin"].make(LossSettings(margin=5.0))(zt, yt).item()
    assert wide == pytest.approx(ref_max_margin(z, y, 5.0))
    alpha = LOSSES["self-norm"].make(LossSettings(self_norm_alpha=2.0))(zt, yt).item()
    assert alpha == pytest.approx(ref_self_norm(z, y, 2.0))
    t = LOSSES["nce"].make(LossSettings(nce_noise_samples=9))(zt, yt).item()
    assert t == pytest.approx(ref_nce(z, y, 9, np.full(5, 0.2)))


@pytest.mark.parametrize(
    "bad",
    [
        (torch.zeros(3), torch.tensor([0, 1, 2])),  # 1-D logits
        (torch.zeros(3, 1), torch.tensor([0, 0, 0])),  # one class
        (torch.zeros(3, 4), torch.tensor([0, 1])),  # wrong label count
        (torch.zeros(3, 4), torch.tensor([0.0, 1.0, 2.0])),  # float labels
    ],
)
def test_bad_shapes_are_rejected(bad):
    with pytest.raises(ValueError):
        L.cross_entropy(*bad)


def test_bad_hyperparameters_are_rejected():
    z, y = torch.zeros(2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="margin"):
        L.max_margin(z, y, margin=0.0)
    with pytest.raises(ValueError, match="alpha"):
        L.self_normalization(z, y, alpha=-1.0)
    with pytest.raises(ValueError, match="noise distribution"):
        L.nce(z, y, noise=torch.tensor([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match="noise_samples"):
        L.nce(z, y, noise_samples=0)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("label", [-100, -1, 4])
def test_labels_outside_the_class_range_are_refused_by_every_loss(name, label):
    # -100 matters for cross-entropy: torch's F.cross_entropy would silently skip that example.
    z, y = torch.randn(3, 4), torch.tensor([0, label, 2])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        LOSSES[name].make(LossSettings())(z, y)


def _gradient(loss, z, y):
    z = z.clone().requires_grad_(True)
    loss(z, y).backward()
    return z.grad


def test_tied_maxima_share_the_gradient_evenly():
    z = torch.tensor([[0.0, 5.0, 5.0], [0.0, 5.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 0])
    per_example = _gradient(L.max_margin, z, y)
    # Row 0's two tied false logits split its 1/m = 1/2; row 1's single maximum takes all of it.
    assert per_example[:, 1:].tolist() == [[0.25, 0.25], [0.5, 0.0]]
    # The batch term's largest false logit, 5, is the maximum of both rows: each row gets half of
    # 1/m, and row 0 splits its half between its two tied entries (the documented subgradient).
    batch_term = _gradient(L.batch_max_margin, z, y) - per_example
    assert batch_term[:, 1:].tolist() == [[0.125, 0.125], [0.25, 0.0]]


def test_nce_accepts_a_float32_noise_distribution_over_many_classes():
    k = 2**18
    q32 = torch.softmax(3 * torch.randn(k, generator=torch.Generator().manual_seed(0)), 0)
    assert abs(float(q32.double().sum()) - 1) > 1e-6  # float32 rounding: the old exact check refused it
    z, y = torch.randn(2, k, dtype=torch.float64), torch.tensor([3, 7])
    q64 = q32.double() / q32.double().sum()
    assert L.nce(z, y, noise=q32, exact_max_k=k).item() == pytest.approx(
        L.nce(z, y, noise=q64, exact_max_k=k).item(), rel=1e-12
    )


def test_list_losses_prints_the_registry_and_a_registered_loss_trains_by_name(tmp_path):
    from typer.testing import CliRunner

    from slcbench.cli import app
    from slcbench.train.losses import LossSpec

    runner = CliRunner()
    listed = runner.invoke(app, ["train", "--list-losses"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert all(name in listed.stdout for name in LOSSES)
    # A new loss is one registration: it is then listed, accepted by --loss and trained.
    LOSSES.register(
        "squared-error",
        LossSpec(
            "squared error",
            False,
            False,
            lambda settings: (
                lambda z, y: ((z - torch.nn.functional.one_hot(y, z.shape[1]).to(z.dtype)) ** 2).sum(1).mean()
            ),
        ),
    )
    try:
        assert "squared-error" in runner.invoke(app, ["train", "--list-losses"], env={"COLUMNS": "200"}).stdout
        out = tmp_path / "se.npz"
        trained = runner.invoke(
            app, ["train", "--loss", "squared-error", "--steps", "3", "--lr", "0.1", "--out", str(out)]
        )
        assert trained.exit_code == 0, trained.output
        assert np.load(out)["logits"].shape == (450, 10)
    finally:
        LOSSES.unregister("squared-error")
