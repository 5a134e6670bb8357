"""L1 / group-lasso proximal steps, SPR (formula and pipeline), ReLU-stability regularizer."""

from __future__ import annotations

import copy

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
    spr_group_values,
    spr_prune,
    spr_regularizer,
)
from pruning.train import accuracy, linear_layers, train


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


def test_stability_regularizer_raises_stable_fraction(digits):
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
        regularizer=relu_stability_regularizer(1.0, eps),
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
