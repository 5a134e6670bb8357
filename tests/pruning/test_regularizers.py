"""L1 / group-lasso proximal steps, SPR (formula and pipeline), ReLU-stability regularizer."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from pruning_helpers import fresh, weight_sparsity

from nn2mip.bounds import interval_bounds
from nn2mip.region import ball_region
from nn2mip.torch_io import from_torch
from pruning.compact import compact, hidden_sizes
from pruning.regularizers import (
    group_lasso_prox,
    interval_bounds_torch,
    l1_prox,
    proximal_prune,
    relu_stability_regularizer,
    select_neurons_to_drop,
    spr_group_values,
    spr_prune,
    spr_regularizer,
    stability_terms,
    symbolic_bounds_torch,
)
from pruning.training import accuracy, linear_layers, train


def test_l1_prox_gives_exact_zeros(digits, trained):
    train(
        trained,
        digits.x_train,
        digits.y_train,
        3,
        lr=1e-2,
        optimizer="sgd",
        after_step=l1_prox(1.0, 1e-2),
    )
    assert weight_sparsity(trained) > 0.3


def test_group_lasso_prox_is_block_soft_threshold():
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0, 0.0], [0.1, 0.1, 0.0]]))
        lin.bias.copy_(torch.tensor([4.0, 0.0]))
    model = torch.nn.Sequential(lin, torch.nn.ReLU(), torch.nn.Linear(2, 1))
    group_lasso_prox(1.0, 1.0)(model)
    # group 0 has norm 5 -> scaled by 1 - 1/5; group 1 has norm < 1 -> exactly zero
    torch.testing.assert_close(lin.weight[0], torch.tensor([2.4, 0.0, 0.0]))
    assert float(lin.bias[0].detach()) == pytest.approx(3.2)
    assert torch.all(lin.weight[1] == 0) and float(lin.bias[1].detach()) == 0.0


@pytest.mark.parametrize("kind,lam", [("group-lasso", 0.5), ("spr", 0.05)])
def test_structured_regularizers_remove_whole_neurons(digits, trained, kind, lam):
    before = hidden_sizes(compact(trained))
    assert before == [32, 32]
    if kind == "spr":
        model, masks = spr_prune(
            trained, digits.x_train, digits.y_train, lam=lam, epochs=8, finetune_epochs=3, lr=3e-3
        )
    else:
        model, masks = proximal_prune(
            trained, digits.x_train, digits.y_train, kind, lam, epochs=8, finetune_epochs=3
        )
    after = hidden_sizes(compact(model))
    assert sum(after) < sum(before)
    assert accuracy(model, digits.x_test, digits.y_test) > 0.85


def _spr_brute(w: np.ndarray, m: float, alpha: float) -> float:
    u = min(np.abs(w).max() / m, 1.0)
    z = np.linspace(max(u, 1e-9), 1.0, 200001)
    return float(np.min(alpha * (w @ w) / z + (1 - alpha) * z))


@pytest.mark.parametrize(
    "w,m,alpha",
    [
        ([0.3, 0.1, -0.2], 1.0, 0.5),  # u <= z* <= 1
        ([0.9, 0.01, 0.0], 1.0, 0.1),  # z* < u
        ([0.9, 0.8, -0.9], 1.0, 0.9),  # z* > 1
        ([0.05, 0.0, 0.0], 0.5, 0.5),
    ],
)
def test_spr_matches_definition(w, m, alpha):
    wt = torch.tensor([w], dtype=torch.float64)
    got = float(spr_group_values(wt, m, alpha)[0])
    assert got == pytest.approx(_spr_brute(np.array(w), m, alpha), rel=1e-5, abs=1e-9)


def test_spr_zero_group_and_gradient():
    w = torch.zeros(2, 4, dtype=torch.float64, requires_grad=True)
    v = spr_group_values(w, 1.0, 0.5).sum()
    v.backward()
    assert float(v.detach()) == 0.0 and torch.all(torch.isfinite(w.grad))
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    assert float(spr_regularizer(0.1, 0.5)(model, torch.zeros(1, 3)).detach()) > 0


def test_interval_bounds_torch_match_nn2mip(digits, trained):
    x = digits.x_test[:3]
    eps = 0.05
    bt = interval_bounds_torch(trained.double(), torch.as_tensor(x), eps)
    net = from_torch(trained)
    for i in range(3):
        ref = interval_bounds(net, ball_region(x[i], eps, "inf", (0.0, 1.0)))
        for k, (lo, hi) in enumerate(bt):
            np.testing.assert_allclose(lo[i].detach().numpy(), ref.lower[k], atol=1e-7)
            np.testing.assert_allclose(hi[i].detach().numpy(), ref.upper[k], atol=1e-7)


def _stable_fraction_ir(model, x, eps):
    net = from_torch(model)
    stable = total = 0
    for xi in x:
        b = interval_bounds(net, ball_region(xi, eps, "inf", (0.0, 1.0)))
        unstable = sum(b.unstable_counts(net))
        stable += net.num_hidden_neurons - unstable
        total += net.num_hidden_neurons
    return stable / total


@pytest.mark.parametrize("loss", ["tanh", "hinge", "ratio"])
def test_stability_regularizer_raises_stable_fraction(digits, loss):
    eps = 0.02
    base = fresh(digits)
    reg = copy.deepcopy(base)
    train(base, digits.x_train, digits.y_train, 10, lr=3e-3)
    train(
        reg,
        digits.x_train,
        digits.y_train,
        10,
        lr=3e-3,
        regularizer=relu_stability_regularizer(1.0, eps, loss=loss),
    )
    x = digits.x_test[:50]
    without, with_ = _stable_fraction_ir(base, x, eps), _stable_fraction_ir(reg, x, eps)
    assert with_ > without + 0.02
    assert accuracy(reg, digits.x_test, digits.y_test) > 0.85


def test_spr_restore_pretrained_weights(digits, trained):
    w0 = [lin.weight.detach().clone() for lin in linear_layers(trained)]
    model, masks = spr_prune(
        trained,
        digits.x_train,
        digits.y_train,
        lam=0.05,
        epochs=3,
        finetune_epochs=0,
        restore="pretrained",
        amount=0.25,
    )
    for i, lin in enumerate(linear_layers(model)):
        torch.testing.assert_close(lin.weight, w0[i] * masks[i])
    assert any(not bool(m.all()) for m in masks.values())


# ---------------------------------------------------------------- symbolic (CROWN) bounds in torch


def _small_net(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(12, 9),
        torch.nn.ReLU(),
        torch.nn.Linear(9, 7),
        torch.nn.ReLU(),
        torch.nn.Linear(7, 5),
        torch.nn.ReLU(),
        torch.nn.Linear(5, 3),
    ).double()


def _ball_samples(x: np.ndarray, eps: float, norm: str, n: int, rng) -> np.ndarray:
    """Points of the ball around x within [0, 1]: random directions plus sparse corners."""
    d = x.size
    pts = []
    for _ in range(n):
        if norm == "inf":
            p = x + rng.uniform(-eps, eps, d) * (rng.random(d) < 0.7)
        else:
            v = rng.standard_normal(d) * (rng.random(d) < 0.3)
            if rng.random() < 0.5:  # sparse: spend the budget on 1-3 coordinates
                v = np.zeros(d)
                v[rng.choice(d, rng.integers(1, 4), replace=False)] = rng.standard_normal()
            v *= eps / max(np.abs(v).sum(), 1e-12)
            p = x + v
        pts.append(np.clip(p, 0.0, 1.0))  # clipping only shrinks the L1 / L-inf distance
    return np.array(pts)


@pytest.mark.parametrize("norm,eps", [("inf", 0.1), ("1", 1.5), ("1", 0.4)])
def test_symbolic_bounds_torch_are_sound(norm, eps):
    model = _small_net(1)
    rng = np.random.default_rng(0)
    x = rng.random((4, 12))
    x[:, :3] = 0.0  # pixels at the box faces, as in MNIST
    x[:, 3] = 1.0
    bnds = symbolic_bounds_torch(model, torch.as_tensor(x), eps, norm)
    lins = linear_layers(model)
    for i in range(len(x)):
        h = torch.as_tensor(_ball_samples(x[i], eps, norm, 400, rng))
        for k, lin in enumerate(lins[:-1]):
            z = lin(h).detach().numpy()
            lo, hi = bnds[k][0][i].detach().numpy(), bnds[k][1][i].detach().numpy()
            assert np.all(z >= lo - 1e-9) and np.all(z <= hi + 1e-9)
            h = torch.relu(lin(h))


def test_symbolic_bounds_torch_tighter_than_interval_and_match_first_layer():
    model = _small_net(2)
    x = torch.as_tensor(np.random.default_rng(1).random((3, 12)))
    sym = symbolic_bounds_torch(model, x, 0.15, "inf")
    ivl = interval_bounds_torch(model, x, 0.15)
    net = from_torch(model)
    for k, ((sl, sh), (il, ih)) in enumerate(zip(sym, ivl, strict=True)):
        assert torch.all(sl >= il - 1e-9) and torch.all(sh <= ih + 1e-9)
        if k == 0:  # one affine layer: both are exact over the box
            torch.testing.assert_close(sl, il)
            torch.testing.assert_close(sh, ih)
    # Deeper layers: strictly tighter somewhere.
    assert any(torch.any(s[1] < i[1] - 1e-6) for s, i in zip(sym[1:], ivl[1:], strict=True))
    # L1 first layer: never tighter than the exact knapsack nn2mip computes.
    from nn2mip.bounds import compute_bounds

    s1 = symbolic_bounds_torch(model, x, 1.5, "1")
    for i in range(3):
        ref = compute_bounds(net, ball_region(x[i].numpy(), 1.5, "1", (0.0, 1.0)), "symbolic")
        assert np.all(s1[0][0][i].detach().numpy() <= ref.lower[0] + 1e-9)
        assert np.all(s1[0][1][i].detach().numpy() >= ref.upper[0] - 1e-9)


def test_symbolic_stability_regularizer_is_differentiable_and_checks_arguments():
    model = _small_net(3).float()
    x = torch.rand(5, 12)
    loss = relu_stability_regularizer(0.5, 1.0, norm="1", bounds="symbolic")(model, x)
    loss.backward()
    assert float(loss.detach()) < 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert linear_layers(model)[1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        relu_stability_regularizer(0.5, 1.0, norm="1")  # interval bounds are L-inf only
    with pytest.raises(ValueError):
        relu_stability_regularizer(0.5, 1.0, bounds="lp")
    with pytest.raises(ValueError):
        symbolic_bounds_torch(model, x, 1.0, "2")


def test_stability_terms_hinge_is_distance_to_stability():
    lo = torch.tensor([1.0, -3.0, -2.0, -5.0])
    hi = torch.tensor([4.0, -1.0, 0.5, 7.0])
    torch.testing.assert_close(stability_terms(lo, hi, "hinge"), torch.tensor([0.0, 0.0, 0.5, 5.0]))
    torch.testing.assert_close(stability_terms(lo, hi, "tanh"), -torch.tanh(1.0 + lo * hi))
    torch.testing.assert_close(
        stability_terms(lo, hi, "ratio"), torch.tensor([0.0, 0.0, 0.5 / 2.5, 5.0 / 12.0])
    )
    with pytest.raises(ValueError):
        stability_terms(lo, hi, "square")
    with pytest.raises(ValueError):
        relu_stability_regularizer(0.5, 1.0, loss="square")


def test_hinge_stability_keeps_a_gradient_where_tanh_saturates():
    # A wide-bound neuron (l * u = -400) as deep layers have over an L1 ball of radius 5: tanh
    # gives it no gradient, the hinge gives it one of size 1.
    lo = torch.tensor([-20.0], requires_grad=True)
    hi = torch.tensor([20.0], requires_grad=True)
    stability_terms(lo, hi, "tanh").sum().backward()
    assert float(lo.grad.abs() + hi.grad.abs()) < 1e-12
    lo.grad = hi.grad = None
    stability_terms(lo, hi, "hinge").sum().backward()
    assert float(lo.grad.abs() + hi.grad.abs()) == pytest.approx(1.0)
    lo.grad = hi.grad = None
    stability_terms(lo, hi - 1.0, "ratio").sum().backward()
    assert float(lo.grad.abs() + hi.grad.abs()) > 1e-3
    # Through a model: the hinge loss on symbolic L1 bounds reaches the first layer's weights.
    model = _small_net(2).float()
    x = torch.rand(4, 12)
    loss = relu_stability_regularizer(0.1, 3.0, norm="1", bounds="symbolic", loss="hinge")(model, x)
    loss.backward()
    assert float(loss.detach()) > 0
    assert linear_layers(model)[0].weight.grad.abs().sum() > 0


def test_ratio_stability_is_scale_invariant_and_hinge_is_not():
    # Scaling a hidden layer by c > 0 and the next by 1 / c changes no sign and no output; the
    # ratio loss must not change either (the hinge can be lowered that way without stabilizing).
    model = _small_net(4)
    scaled = copy.deepcopy(model)
    lins = linear_layers(scaled)
    with torch.no_grad():
        lins[1].weight.mul_(0.1)
        lins[1].bias.mul_(0.1)
        lins[2].weight.mul_(10.0)
    x = torch.rand(6, 12, dtype=torch.float64)
    torch.testing.assert_close(model(x), scaled(x))
    for loss, same in (("ratio", True), ("hinge", False)):
        reg = relu_stability_regularizer(1.0, 2.0, norm="1", bounds="symbolic", loss=loss)
        a, b = float(reg(model, x).detach()), float(reg(scaled, x).detach())
        assert a > 0
        assert (a == pytest.approx(b, rel=1e-9)) is same


def test_l1_concretize_picks_top_coordinates_with_the_same_values_and_gradients():
    # Reference: the plain autograd formula (every coordinate's gain, then topk), which the
    # no-grad pick must reproduce exactly, gradient included.
    from pruning.regularizers import _ball_concretize

    torch.manual_seed(0)
    x = torch.rand(3, 20, dtype=torch.float64)
    x[:, :4] = 0.0  # pixels at the box faces can move one way only
    x[:, 4:6] = 1.0
    for upper in (True, False):
        for eps in (2.5, 3.0):
            a = torch.randn(3, 5, 20, dtype=torch.float64, requires_grad=True)
            c = torch.randn(3, 5, dtype=torch.float64)
            got = _ball_concretize(a, c, x, eps, "1", (0.0, 1.0), upper)
            (ga,) = torch.autograd.grad(got.sum(), a)
            sign = 1.0 if upper else -1.0
            up = (x < 1.0).double()[:, None, :]
            dn = (x > 0.0).double()[:, None, :]
            gain = (sign * a).clamp(min=0.0) * up + (-sign * a).clamp(min=0.0) * dn
            k = math.ceil(eps)
            frac = torch.ones(k, dtype=torch.float64)
            frac[-1] = eps - (k - 1)
            ref = torch.einsum("bmn,bn->bm", a, x) + c
            ref = ref + sign * (gain.topk(k, dim=-1).values * frac).sum(-1)
            (gr,) = torch.autograd.grad(ref.sum(), a)
            torch.testing.assert_close(got, ref)
            torch.testing.assert_close(ga, gr)


def test_empty_neuron_rule_counts_only_surviving_inputs():
    # Layer 0 keeps 2 of 50 neurons; each layer-1 neuron reads both with large weights, so it
    # is far from empty even though 2/50 = 4% of its incoming weights are nonzero (< 5%).
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 50), torch.nn.ReLU(), torch.nn.Linear(50, 3), torch.nn.ReLU(),
        torch.nn.Linear(3, 2),
    )  # fmt: skip
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[:2] = 1.0
        model[2].weight.zero_()
        model[2].weight[:2, :2] = 1.0  # neurons 0, 1 read the survivors; neuron 2 reads nothing
    drop = select_neurons_to_drop(model, 0.1, 0.05, big_m=[1.0, 1.0])
    assert int((~drop[0]).sum()) == 2
    assert drop[1].tolist() == [False, False, True]
