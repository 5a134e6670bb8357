"""Every method of the catalogue reaches the sparsity it is asked for (or removes neurons)."""

from __future__ import annotations

import copy

import pytest
import torch
from pruning_helpers import fresh, weight_sparsity

from pruning.catalogue import MethodConfig, run_method
from pruning.compact import compact, hidden_sizes
from pruning.methods import FROM_SCRATCH, METHODS, STRUCTURED
from pruning.training import linear_layers

CFG = MethodConfig(finetune_epochs=1, epochs=2, rounds=2, iterations=5, update_interval=10)


@pytest.mark.parametrize("method", METHODS)
def test_method_reaches_requested_sparsity(digits, trained, method):
    model = fresh(digits, seed=1) if method in FROM_SCRATCH else copy.deepcopy(trained)
    model, masks = run_method(model, digits.x_train, digits.y_train, method, 0.5, CFG)
    for i, lin in enumerate(linear_layers(model)):
        assert torch.all(lin.weight[~masks[i]] == 0)
    if method in STRUCTURED:
        sizes = hidden_sizes(compact(model))
        assert all(s <= 16 for s in sizes), sizes
    else:
        assert weight_sparsity(model) >= 0.5 - 0.01


def test_unknown_method_and_bad_amount(digits, trained):
    with pytest.raises(ValueError):
        run_method(trained, digits.x_train, digits.y_train, "nope", 0.5, CFG)
    with pytest.raises(ValueError):
        run_method(trained, digits.x_train, digits.y_train, "magnitude", 1.0, CFG)
