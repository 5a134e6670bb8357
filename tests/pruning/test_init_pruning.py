"""SNIP, GraSP, SynFlow: exact sparsity at initialization, then training with the masks."""

from __future__ import annotations

import pytest
import torch
from pruning_helpers import fresh, weight_sparsity

from pruning.init_pruning import prune_at_init, synflow_masks
from pruning.masks import mask_sparsity
from pruning.training import accuracy, linear_layers


@pytest.mark.parametrize("method", ["snip", "grasp", "synflow"])
def test_prune_at_init_reaches_sparsity(digits, method):
    model, masks = prune_at_init(
        fresh(digits), digits.x_train, digits.y_train, method, 0.8, epochs=3, iterations=10, lr=1e-2
    )
    assert mask_sparsity(masks) == pytest.approx(0.8, abs=0.002)
    assert weight_sparsity(model) == pytest.approx(0.8, abs=0.002)
    for i, lin in enumerate(linear_layers(model)):
        assert torch.all(lin.weight[~masks[i]] == 0)
    assert accuracy(model, digits.x_test, digits.y_test) > 0.3


def test_synflow_is_data_free_and_avoids_layer_collapse(digits):
    model = fresh(digits)
    masks = synflow_masks(model, 0.98, iterations=20)
    assert mask_sparsity(masks) == pytest.approx(0.98, abs=0.002)
    # every layer keeps some weights, and every kept weight lies on an input-output path
    for m in masks.values():
        assert int(m.sum()) > 0
    with pytest.raises(ValueError):
        prune_at_init(model, digits.x_train, digits.y_train, "nope", 0.5)
