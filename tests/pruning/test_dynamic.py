"""SET and RigL: constant per-layer sparsity while the connectivity moves."""

from __future__ import annotations

import pytest
import torch
from pruning_helpers import fresh, weight_sparsity

from pruning.dynamic import random_masks, sparse_train
from pruning.training import accuracy, linear_layers


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_sparse_training_keeps_sparsity_and_moves(digits, method):
    model = fresh(digits)
    start = random_masks(model, 0.8, seed=0)
    start = {i: m.clone() for i, m in start.items()}
    model, masks = sparse_train(
        model,
        digits.x_train,
        digits.y_train,
        0.8,
        method,
        epochs=3,
        update_interval=10,
        lr=1e-2,
    )
    for i, lin in enumerate(linear_layers(model)):
        assert int(masks[i].sum()) == int(start[i].sum())  # per-layer count unchanged
        assert torch.all(lin.weight[~masks[i]] == 0)
    assert any(not torch.equal(masks[i], start[i]) for i in masks)  # connections moved
    assert weight_sparsity(model) >= 0.8 - 0.01
    assert accuracy(model, digits.x_test, digits.y_test) > 0.5


def test_erk_distribution_hits_overall_sparsity(digits):
    model = fresh(digits, hidden=(64, 32))
    masks = random_masks(model, 0.9, "erk")
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert 1 - kept / total == pytest.approx(0.9, abs=0.01)
    dens = [float(m.float().mean()) for m in masks.values()]
    assert dens[-1] > dens[0]  # the small output layer is kept denser
