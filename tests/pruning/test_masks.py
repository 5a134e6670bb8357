"""Masks hold through optimizer steps with momentum, and survive saving and loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pruning.magnitude import magnitude_masks
from pruning.masks import apply_masks, keep_top, load_model, mask_sparsity, save_model
from pruning.training import linear_layers, train


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_masked_weights_stay_zero_through_100_steps(digits, trained, optimizer, weight_decay):
    masks = magnitude_masks(trained, 0.7)
    # Exactly 100 optimizer steps: 1,200 rows in batches of 12, one epoch.
    x, y = digits.x_train[:1200], digits.y_train[:1200]
    train(
        trained,
        x,
        y,
        epochs=1,
        batch_size=12,
        optimizer=optimizer,
        lr=1e-2,
        masks=masks,
        weight_decay=weight_decay,
    )
    for i, lin in enumerate(linear_layers(trained)):
        assert torch.all(lin.weight[~masks[i]] == 0)
        assert torch.any(lin.weight[masks[i]] != 0)


def test_masked_gradients_leave_no_optimizer_state(digits, trained):
    masks = magnitude_masks(trained, 0.5)
    opt_state = {}

    def grab(m):
        opt_state["grad"] = [lin.weight.grad.clone() for lin in linear_layers(m)]

    train(
        trained, digits.x_train[:256], digits.y_train[:256], epochs=1, masks=masks, after_step=grab
    )
    for i, g in enumerate(opt_state["grad"]):
        assert torch.all(g[~masks[i]] == 0)


def test_save_and_load_keep_masks(tmp_path, trained):
    masks = magnitude_masks(trained, 0.6, scope="global")
    apply_masks(trained, masks)
    path = save_model(trained, tmp_path / "m.safetensors", masks, meta={"method": "magnitude"})
    model, loaded, meta = load_model(str(path))
    assert meta["method"] == "magnitude"
    assert set(loaded) == set(masks)
    for i in masks:
        assert torch.equal(loaded[i], masks[i])
    assert mask_sparsity(loaded) == pytest.approx(mask_sparsity(masks))
    x = torch.rand(5, 64)
    np.testing.assert_allclose(model(x).detach(), trained(x).detach(), atol=1e-5)


def test_keep_top_exact_counts_with_ties():
    scores = {0: torch.zeros(10, 10), 1: torch.ones(5, 4)}
    m = keep_top(scores, 0.75)
    assert sum(int(v.sum()) for v in m.values()) == 120 - int(0.75 * 120)
    assert bool(m[1].all())
    per_layer = keep_top(scores, 0.5, scope="layer")
    assert int(per_layer[0].sum()) == 50 and int(per_layer[1].sum()) == 10
    with pytest.raises(ValueError):
        keep_top(scores, 1.0)
