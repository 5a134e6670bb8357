"""Filter pruning of CNNs: scores, masks that stay exact zeros through training, group lasso
and SPR on filters, interval bounds through convolutions (sound on sampled points) and the
ReLU-stability loss on them."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from nn2mip.datasets import Dataset
from pruning.filters import (
    apply_filter_masks,
    cnn_interval_bounds_torch,
    cnn_relu_stability_regularizer,
    cnn_stable_fraction,
    conv_big_m,
    conv_layers,
    filter_group_lasso_penalty,
    filter_group_lasso_prox,
    filter_mask_hooks,
    filter_masks,
    filter_norms,
    filter_prune,
    filter_sparsity,
    filter_spr_prune,
    filter_spr_regularizer,
    masks_from_zero_filters,
    select_filters_to_drop,
)
from pruning.training import accuracy, make_cnn, train


def _images(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, 1, 8, 8)


def _digits_cnn(seed: int = 0) -> nn.Sequential:
    return make_cnn((1, 8, 8), (6, 8), (16,), 10, kernel=3, stride=1, padding=1, seed=seed)


@pytest.fixture(scope="module")
def _trained_cnn(digits: Dataset) -> nn.Sequential:
    m = _digits_cnn()
    return train(m, _images(digits.x_train), digits.y_train, epochs=6, lr=3e-3)


@pytest.fixture
def cnn(_trained_cnn: nn.Sequential) -> nn.Sequential:
    """A fresh copy of a small CNN (8x8 digits, 6 and 8 filters) trained to ~95 %."""
    return copy.deepcopy(_trained_cnn)


def _bn_cnn(dtype=torch.float64, seed: int = 0) -> nn.Sequential:
    """Conv-BN-ReLU-MaxPool-Conv-BN-ReLU-AvgPool-Flatten-Linear-ReLU-Linear with random
    BatchNorm statistics (some gammas negative), eval mode."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, stride=2, padding=1, dilation=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AvgPool2d(2, stride=1, padding=1),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 12),
        nn.ReLU(),
        nn.Linear(12, 5),
    ).to(dtype)
    with torch.no_grad():
        for bn in (model[1], model[5]):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.2, 2.0)
            bn.weight.normal_()
            bn.bias.normal_()
    return model.eval()


# ---------------------------------------------------------------- scores and masks


def test_make_cnn_shapes_and_train_takes_images(digits: Dataset) -> None:
    m = make_cnn()
    assert [c.out_channels for c in conv_layers(m)] == [16, 32]
    assert m(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert m[5].in_features == 32 * 7 * 7 and m[5].out_features == 100
    with pytest.raises(ValueError, match="too small"):
        make_cnn((1, 3, 3), (4, 4, 4))


def test_cnn_training_reaches_a_useful_accuracy(cnn: nn.Sequential, digits: Dataset) -> None:
    assert accuracy(cnn, _images(digits.x_test), digits.y_test) > 0.9


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_filter_norms_match_numpy(cnn: nn.Sequential, norm: str) -> None:
    got = filter_norms(cnn, norm)
    for conv, g in zip(conv_layers(cnn), got, strict=True):
        rows = np.concatenate(
            [conv.weight.detach().numpy().reshape(conv.out_channels, -1),
             conv.bias.detach().numpy()[:, None]], axis=1,
        )  # fmt: skip
        ref = np.abs(rows).sum(1) if norm == "l1" else np.sqrt((rows**2).sum(1))
        np.testing.assert_allclose(g.numpy(), ref, rtol=1e-6)
    with pytest.raises(ValueError, match="norm"):
        filter_norms(cnn, "linf")


def test_filter_masks_drop_the_lowest_norms_exactly(cnn: nn.Sequential) -> None:
    norms = filter_norms(cnn)
    masks = filter_masks(cnn, 0.5)
    for i, n in enumerate(norms):
        k = int(0.5 * n.numel())
        assert int((~masks[i]).sum()) == k
        assert set(torch.argsort(n)[:k].tolist()) == set(
            torch.nonzero(~masks[i]).flatten().tolist()
        )
    # Already-masked filters stay masked and count toward the amount.
    prior = {0: torch.tensor([False, True, True, True, True, True])}
    more = filter_masks(cnn, 1 / 3, existing=prior)
    assert not more[0][0] and int((~more[0]).sum()) == 2
    assert filter_masks(cnn, 0.99)[0].sum() == 1  # never an empty layer
    assert filter_sparsity(masks) == pytest.approx(7 / 14)
    with pytest.raises(ValueError, match="amount"):
        filter_masks(cnn, 1.0)


def test_masked_filter_channel_is_exactly_zero_after_batchnorm() -> None:
    model = _bn_cnn()
    masks = {0: torch.tensor([True, False, True, False, True, True]), 1: torch.ones(8, dtype=bool)}
    apply_filter_masks(model, masks)
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    after_bn = model[:2](x)
    assert torch.all(after_bn[:, [1, 3]] == 0)
    assert torch.all(after_bn[:, [0, 2]] != 0)
    assert masks_from_zero_filters(model)[0].tolist() == masks[0].tolist()


def test_masked_filters_stay_zero_through_adam_and_momentum(
    cnn: nn.Sequential, digits: Dataset
) -> None:
    masks = filter_masks(cnn, 0.5)
    apply_filter_masks(cnn, masks)
    on_backward, after_step = filter_mask_hooks(cnn, masks)
    for opt in ("adam", "sgd"):
        train(
            cnn, _images(digits.x_train[:400]), digits.y_train[:400], 2, lr=1e-2, optimizer=opt,
            on_backward=on_backward, after_step=after_step, weight_decay=1e-3,
        )  # fmt: skip
        for i, conv in enumerate(conv_layers(cnn)):
            assert torch.all(conv.weight[~masks[i]] == 0) and torch.all(conv.bias[~masks[i]] == 0)
            assert torch.all(conv.weight[masks[i]].abs().sum(dim=(1, 2, 3)) > 0)


def test_filter_prune_keeps_accuracy(cnn: nn.Sequential, digits: Dataset) -> None:
    seen = []
    model, masks = filter_prune(
        cnn, _images(digits.x_train), digits.y_train, 0.5, steps=2, finetune_epochs=2, lr=3e-3,
        callback=lambda r, m: seen.append((r, filter_sparsity(m))),
    )  # fmt: skip
    assert [r for r, _ in seen] == [1, 2] and seen[0][1] < seen[1][1] == pytest.approx(0.5)
    assert masks_from_zero_filters(model) == {} or all(
        torch.equal(a, masks[i]) for i, a in masks_from_zero_filters(model).items()
    )
    assert accuracy(model, _images(digits.x_test), digits.y_test) > 0.88


# ---------------------------------------------------------------- group lasso and SPR


def test_filter_group_lasso_prox_is_block_soft_threshold() -> None:
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([3.0, 0.3]).reshape(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([4.0, 0.4]))
    model = nn.Sequential(conv)
    filter_group_lasso_prox(1.0, 1.0)(model)  # norms 5 and 0.5: scale 4/5 and 0
    torch.testing.assert_close(conv.weight.flatten(), torch.tensor([2.4, 0.0]))
    torch.testing.assert_close(conv.bias, torch.tensor([3.2, 0.0]))
    assert float(filter_group_lasso_penalty(model).detach()) == pytest.approx(4.0, rel=1e-6)


def test_filter_group_lasso_training_zeroes_whole_filters(
    cnn: nn.Sequential, digits: Dataset
) -> None:
    train(
        cnn, _images(digits.x_train), digits.y_train, 3, lr=1e-2, optimizer="sgd",
        after_step=filter_group_lasso_prox(5.0, 1e-2),
    )  # fmt: skip
    zero = [~m for m in masks_from_zero_filters(cnn).values()]
    assert sum(int(z.sum()) for z in zero) >= 3


def _spr_reference(row: np.ndarray, big_m: float, alpha: float) -> float:
    """min over z in [||w||_inf / M, 1] of alpha ||w||^2 / z + (1 - alpha) z, by a fine grid."""
    u = min(np.abs(row).max() / big_m, 1.0)
    z = np.linspace(max(u, 1e-9), 1.0, 200001)
    return float(np.min(alpha * (row**2).sum() / z + (1 - alpha) * z))


def test_filter_spr_is_the_seed_term_on_each_filter(cnn: nn.Sequential) -> None:
    lam, alpha = 0.3, 0.4
    ms = conv_big_m(cnn)
    value = filter_spr_regularizer(lam, alpha, ms)(cnn, torch.zeros(1))
    ref = 0.0
    for conv, m in zip(conv_layers(cnn), ms, strict=True):
        rows = torch.cat([conv.weight.reshape(conv.out_channels, -1), conv.bias[:, None]], 1)
        ref += sum(_spr_reference(r, m, alpha) for r in rows.detach().double().numpy())
    assert float(value.detach()) == pytest.approx(lam * ref, rel=1e-4)
    value.backward()
    assert all(
        c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in conv_layers(cnn)
    )


def test_select_filters_to_drop_follows_the_seed_rule() -> None:
    model = nn.Sequential(nn.Conv2d(1, 3, 2), nn.ReLU(), nn.Conv2d(3, 2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, 0.01, 0.5]).reshape(3, 1, 1, 1).expand(3, 1, 2, 2))
        model[0].weight[2, 0, 0, 0] = 0.001  # 3 of 4 weights left: kept at empty_fraction 0.5
        model[2].weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]).reshape(2, 3, 1, 1))
    drop = select_filters_to_drop(model, 0.05, 0.5, big_m=[1.0, 1.0])
    assert drop[0].tolist() == [False, True, False]
    # Filter 0 of conv 2 reads only channel 1, which is dropped: it is empty and goes.
    assert drop[1].tolist() == [True, False]
    top_up = select_filters_to_drop(model, 0.0, -1.0, amount=0.6, big_m=[1.0, 1.0])
    assert int(top_up[0].sum()) == 1 and bool(top_up[0][1])
    assert not select_filters_to_drop(model, 10.0, 0.5, big_m=[1.0, 1.0])[0].all()


def test_filter_spr_prune_removes_filters_and_keeps_accuracy(
    cnn: nn.Sequential, digits: Dataset
) -> None:
    model, masks = filter_spr_prune(
        cnn, _images(digits.x_train), digits.y_train, lam=0.02, alpha=0.5, epochs=3, lr=3e-3,
        threshold=0.1, empty_fraction=0.2, amount=0.25, finetune_epochs=2,
    )  # fmt: skip
    assert all(int((~m).sum()) >= int(0.25 * m.numel()) for m in masks.values())
    for i, conv in enumerate(conv_layers(model)):
        assert torch.all(conv.weight[~masks[i]] == 0) and torch.all(conv.bias[~masks[i]] == 0)
    assert accuracy(model, _images(digits.x_test), digits.y_test) > 0.85


# ---------------------------------------------------------------- interval bounds and RS


def _pre_activations(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].detach()))
        for m in model if isinstance(m, nn.ReLU)
    ]  # fmt: skip
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def test_cnn_interval_bounds_hold_on_sampled_points() -> None:
    model = _bn_cnn()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 8, 8, dtype=torch.float64, generator=gen)
    eps = 0.05
    bounds = cnn_interval_bounds_torch(model, x, eps)
    assert len(bounds) == 3
    for _ in range(30):
        noise = (torch.rand(x.shape, dtype=torch.float64, generator=gen) * 2 - 1) * eps
        pts = torch.clamp(x + noise, 0.0, 1.0)
        corners = torch.clamp(x + eps * torch.sign(noise), 0.0, 1.0)
        for p in (pts, corners):
            for (lo, hi), z in zip(bounds, _pre_activations(model, p), strict=True):
                assert torch.all(lo <= z + 1e-12) and torch.all(z <= hi + 1e-12)
    # eps = 0: the bounds are the pre-activations themselves.
    for (lo, hi), z in zip(
        cnn_interval_bounds_torch(model, x, 0.0), _pre_activations(model, x), strict=True
    ):
        torch.testing.assert_close(lo, z, rtol=0, atol=1e-12)
        torch.testing.assert_close(hi, z, rtol=0, atol=1e-12)


def test_cnn_relu_stability_training_stabilizes_neurons(digits: Dataset) -> None:
    x, y = _images(digits.x_train), digits.y_train
    eps = 0.02
    plain = train(_digits_cnn(1), x, y, epochs=3, lr=3e-3)
    rs = train(
        _digits_cnn(1), x, y, epochs=3, lr=3e-3,
        regularizer=cnn_relu_stability_regularizer(0.5, eps, rows=32),
    )  # fmt: skip
    xt = _images(digits.x_test[:100])
    assert cnn_stable_fraction(rs, xt, eps) > cnn_stable_fraction(plain, xt, eps) + 0.02
    assert accuracy(rs, _images(digits.x_test), digits.y_test) > 0.5  # still learns (3 epochs)
    with pytest.raises(ValueError, match="stability loss"):
        cnn_relu_stability_regularizer(1.0, eps, loss="square")


def test_interval_bounds_refuse_unknown_layers() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Tanh())
    with pytest.raises(ValueError, match="Tanh"):
        cnn_interval_bounds_torch(model, torch.zeros(1, 1, 2, 2), 0.1)
    assert math.isfinite(cnn_stable_fraction(_digits_cnn(), np.zeros((1, 1, 8, 8)), 0.1))
