"""Regression and multi-output surrogates end to end: MSE training, every catalogue method that
applies, compaction, encoding; the MIP with the input fixed equals the float64 forward pass."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs
from nn2mip.region import box_region
from nn2mip.torch_io import from_torch
from pruning.catalogue import MethodConfig, run_method
from pruning.compact import compact_network
from pruning.methods import FROM_SCRATCH, REGRESSION, STRUCTURED
from pruning.regularizers import relu_stability_regularizer
from pruning.training import linear_layers, loss_kind, make_mlp, mse, train

CFG = MethodConfig(finetune_epochs=2, epochs=3, rounds=2, iterations=5, update_interval=10)


@pytest.fixture(scope="module")
def surrogate_data():
    """Two inputs in [0, 1], three smooth outputs (a multi-output regression)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(600, 2))
    y = np.stack(
        [np.sin(3 * x[:, 0]) + x[:, 1], x[:, 0] * x[:, 1], (x[:, 0] - 0.5) ** 2 - x[:, 1]], axis=1
    )
    return x.astype(np.float32), y.astype(np.float32)


@pytest.fixture(scope="module")
def trained_surrogate(surrogate_data):
    torch.set_num_threads(1)
    x, y = surrogate_data
    return train(make_mlp(2, [16, 16], 3, seed=0), x, y, epochs=40, lr=1e-2, batch_size=32)


def test_mse_training_fits(surrogate_data, trained_surrogate):
    x, y = surrogate_data
    assert loss_kind(y) == "mse" and loss_kind(np.array([0, 1])) == "ce"
    untrained = make_mlp(2, [16, 16], 3, seed=0)
    assert mse(trained_surrogate, x, y) < 0.2 * mse(untrained, x, y)
    assert mse(trained_surrogate, x, y) < 0.01


def test_single_output_1d_targets(surrogate_data):
    x, y = surrogate_data
    m = train(make_mlp(2, [16, 16], 1, seed=0), x, y[:, 0], epochs=40, lr=1e-2, batch_size=32)
    assert mse(m, x, y[:, 0]) < 0.2 * float(np.var(y[:, 0]))


def _check_mip_equals_forward(net, n_points=3):
    form = build_formulation(net, box_region(np.zeros(2), np.ones(2)))
    rng = np.random.default_rng(1)
    for x in rng.uniform(0, 1, size=(n_points, 2)):
        form.model.set_col_bounds(form.input_cols, x, x)
        form.model.set_objective(form.output_cols, np.ones(net.output_size))
        r = solve_highs(form.model, mip_feasibility_tolerance=1e-9)
        assert r.status == "optimal"
        np.testing.assert_allclose(r.x[form.output_cols], net.forward(x), atol=1e-6)


@pytest.mark.parametrize("method", REGRESSION)
def test_catalogue_method_prunes_regression(surrogate_data, trained_surrogate, method):
    x, y = surrogate_data
    model = make_mlp(2, [16, 16], 3, seed=1) if method in FROM_SCRATCH else None
    model = model if model is not None else copy.deepcopy(trained_surrogate)
    model, masks = run_method(model, x, y, method, 0.5, CFG)
    for i, lin in enumerate(linear_layers(model)):
        assert torch.all(lin.weight[~masks[i]] == 0)
    net = compact_network(from_torch(model), domain=(0.0, 1.0))
    if method in STRUCTURED:
        assert net.num_hidden_neurons <= 16
    else:
        assert net.num_weights <= 0.5 * (2 * 16 + 16 * 16 + 16 * 3) + 1
    assert np.isfinite(mse(model, x, y))
    _check_mip_equals_forward(net, n_points=1)


def test_classifier_only_methods_refuse_regression(surrogate_data, trained_surrogate):
    x, y = surrogate_data
    for method in ("snip", "grasp"):
        with pytest.raises(ValueError, match="class labels"):
            run_method(copy.deepcopy(trained_surrogate), x, y, method, 0.5, CFG)


def test_relu_stability_on_regression_reduces_unstable(surrogate_data, trained_surrogate):
    x, y = surrogate_data
    region = box_region(np.zeros(2), np.ones(2))
    base = build_formulation(from_torch(trained_surrogate), region).stats().unstable
    rs = copy.deepcopy(trained_surrogate)
    reg = relu_stability_regularizer(0.5, eps=1.0, domain=(0.0, 1.0))
    train(rs, x, y, epochs=10, lr=3e-3, regularizer=reg, batch_size=32)
    net = from_torch(rs)
    assert build_formulation(net, region).stats().unstable < base
    assert mse(rs, x, y) < 0.05
    _check_mip_equals_forward(net)
