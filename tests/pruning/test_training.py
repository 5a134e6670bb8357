"""Training: the loss falls on digits (measured by a numpy cross-entropy), masks hold exactly
through momentum even when they shrink mid-run, and every hook sees what its docstring says."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nn2mip.torch_io import from_torch
from pruning.masks import full_masks
from pruning.training import accuracy, linear_layers, make_mlp, train


def _cross_entropy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Reference loss: float64 forward pass of the converted net, log-sum-exp in numpy."""
    z = from_torch(model).forward(x)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def test_make_mlp_shape_and_deterministic_init():
    m = make_mlp(7, [5, 4], 3, seed=2)
    kinds = [type(x).__name__ for x in m]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [(lin.in_features, lin.out_features) for lin in linear_layers(m)] == [
        (7, 5),
        (5, 4),
        (4, 3),
    ]
    assert all(p.dtype == torch.float32 for p in m.parameters())
    same, other = make_mlp(7, [5, 4], 3, seed=2), make_mlp(7, [5, 4], 3, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), same.parameters(), strict=True))
    assert not torch.equal(m[0].weight, other[0].weight)
    assert len(make_mlp(3, [], 2)) == 1  # no hidden layer: one Linear, no ReLU


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_reduces_loss_and_reaches_good_accuracy(digits, optimizer):
    model = make_mlp(digits.num_features, [24], digits.num_classes, seed=0)
    before = _cross_entropy(model, digits.x_train, digits.y_train)
    lr = 1e-2 if optimizer == "adam" else 5e-2
    out = train(model, digits.x_train, digits.y_train, epochs=4, lr=lr, optimizer=optimizer)
    assert out is model and not model.training  # in place, left in eval mode
    after = _cross_entropy(model, digits.x_train, digits.y_train)
    assert before > 2.0 and after < 0.5 * before  # ln(10) = 2.30 at random init
    acc = accuracy(model, digits.x_test, digits.y_test)
    pred = from_torch(model).forward(digits.x_test).argmax(axis=1)
    assert acc == pytest.approx(float((pred == digits.y_test).mean()), abs=2 / len(pred))
    assert acc > 0.85


def test_same_seed_same_weights_other_seed_other_weights(digits):
    x, y = digits.x_train[:300], digits.y_train[:300]
    runs = [
        train(make_mlp(64, [8], 10, seed=0), x, y, epochs=1, seed=s)[0].weight.detach()
        for s in (0, 0, 1)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize(("optimizer", "weight_decay"), [("sgd", 0.0), ("adam", 1e-2)])
def test_masks_shrunk_mid_run_are_never_revived_by_momentum(digits, optimizer, weight_decay):
    model = make_mlp(64, [16, 16], 10, seed=1)
    # Start dense: momentum / Adam moments build up for every weight, then masks shrink.
    masks = full_masks(model)
    gen = torch.Generator().manual_seed(0)
    steps = {"n": 0, "dense_grad_in_masked": False}

    def after_step(m: nn.Module) -> None:
        for i, lin in enumerate(linear_layers(m)):
            assert torch.all(lin.weight[~masks[i]] == 0), f"step {steps['n']}: revived"
            assert torch.all(lin.weight.grad[~masks[i]] == 0)  # no state built for them
        steps["n"] += 1
        if steps["n"] % 5 == 0:  # every 5 steps cut another random 20 % of what is left
            for mk in masks.values():
                mk &= torch.rand(mk.shape, generator=gen) > 0.2

    def on_backward(m: nn.Module) -> None:
        cut = linear_layers(m)[0].weight.grad[~masks[0]]
        steps["dense_grad_in_masked"] |= bool((cut != 0).any())

    train(
        model,
        digits.x_train,
        digits.y_train,
        epochs=2,
        lr=0.05 if optimizer == "sgd" else 1e-2,
        optimizer=optimizer,
        weight_decay=weight_decay,
        masks=masks,
        after_step=after_step,
        on_backward=on_backward,
    )
    assert steps["n"] == 2 * int(np.ceil(len(digits.y_train) / 64))
    assert steps["dense_grad_in_masked"]  # the hook saw gradients before masking
    kept = sum(int(mk.sum()) for mk in masks.values())
    total = sum(mk.numel() for mk in masks.values())
    assert 0 < kept < 0.5 * total
    for i, lin in enumerate(linear_layers(model)):
        assert torch.all(lin.weight[~masks[i]] == 0)
        assert torch.count_nonzero(lin.weight) == int(masks[i].sum())


def test_regularizer_sees_each_batch_and_shapes_the_weights(digits):
    x, y = digits.x_train[:640], digits.y_train[:640]
    seen: list[int] = []

    def l2(m: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        seen.append(xb.shape[0])
        return 0.5 * sum((lin.weight**2).sum() for lin in linear_layers(m))

    plain = train(make_mlp(64, [16], 10, seed=0), x, y, epochs=2, lr=1e-2)
    shrunk = train(make_mlp(64, [16], 10, seed=0), x, y, epochs=2, lr=1e-2, regularizer=l2)
    assert seen == [64] * 20
    norm = [
        sum(float(lin.weight.detach().norm()) for lin in linear_layers(m)) for m in (plain, shrunk)
    ]
    assert norm[1] < 0.7 * norm[0]


def test_frozen_parameters_stay_and_bad_optimizer_fails(digits):
    model = make_mlp(64, [8], 10, seed=0)
    model[0].weight.requires_grad_(False)
    frozen = model[0].weight.detach().clone()
    start = copy.deepcopy(model[2].weight.detach())
    train(model, digits.x_train[:200], digits.y_train[:200], epochs=1, optimizer="sgd", lr=0.1)
    assert torch.equal(model[0].weight, frozen)
    assert not torch.equal(model[2].weight, start)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train(model, digits.x_train[:10], digits.y_train[:10], epochs=1, optimizer="rmsprop")
