"""Cubic schedule and the magnitude pruning driver (layerwise/global, one-shot/gradual)."""

from __future__ import annotations

import pytest
import torch
from pruning_helpers import weight_sparsity

from pruning.schedules import cubic_sparsity, gradual_magnitude_prune, magnitude_prune
from pruning.training import linear_layers


def test_cubic_schedule_formula():
    # s_t = s_f + (s_0 - s_f)(1 - (t - t0)/(n dt))^3
    assert cubic_sparsity(0, 0.9, start=10, n=5, interval=4) == 0.0
    assert cubic_sparsity(10, 0.9, start=10, n=5, interval=4) == pytest.approx(0.0)
    assert cubic_sparsity(18, 0.9, start=10, n=5, interval=4) == pytest.approx(
        0.9 + (0.0 - 0.9) * (1 - 8 / 20) ** 3
    )
    assert cubic_sparsity(19, 0.9, start=10, n=5, interval=4) == cubic_sparsity(
        18, 0.9, start=10, n=5, interval=4
    )
    assert cubic_sparsity(1000, 0.9, start=10, n=5, interval=4) == pytest.approx(0.9)
    vals = [cubic_sparsity(t, 0.8, 0, 10, 1, initial=0.1) for t in range(12)]
    assert all(a <= b for a, b in zip(vals, vals[1:], strict=False))


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_one_shot_reaches_sparsity(digits, trained, scope):
    model, masks = magnitude_prune(trained, 0.8, digits.x_train, digits.y_train, scope, 2)
    assert weight_sparsity(model) == pytest.approx(0.8, abs=0.01)
    if scope == "layer":
        for lin in linear_layers(model):
            assert float((lin.weight == 0).float().mean()) == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_gradual_reaches_sparsity_and_masks_hold(digits, trained, scope):
    model, masks = gradual_magnitude_prune(
        trained, digits.x_train, digits.y_train, 0.75, epochs=3, scope=scope, interval=5
    )
    assert weight_sparsity(model) == pytest.approx(0.75, abs=0.01)
    for i, lin in enumerate(linear_layers(model)):
        assert torch.all(lin.weight[~masks[i]] == 0)
