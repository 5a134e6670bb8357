"""Adversarial training: PGD points stay in the ball and the box, and training on them makes a
net robust where plain training does not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nn2mip.errors import InvalidInputError
from pruning.adversarial_training import Adversary, robust_accuracy
from pruning.training import accuracy, make_mlp, train


@pytest.mark.parametrize(
    "kwargs",
    [
        {"eps": 0.0},
        {"eps": 0.1, "norm": "2"},
        {"eps": 0.1, "steps": 0},
        {"eps": 0.1, "weight": 0.0},
        {"eps": 0.1, "weight": 1.5},
        {"eps": 0.1, "rows": -1},
        {"eps": 0.1, "domain": (1.0, 0.0)},
    ],
)
def test_bad_settings_are_clear_errors(kwargs) -> None:
    with pytest.raises(InvalidInputError):
        Adversary(**kwargs)


@pytest.mark.parametrize("norm,eps", [("inf", 0.1), ("1", 3.0)])
def test_pgd_points_stay_in_the_ball_and_the_box(digits, digits_nets, norm, eps) -> None:
    model = digits_nets["dense"][1]
    x = torch.as_tensor(digits.x_test[:64], dtype=torch.float32)
    y = torch.as_tensor(digits.y_test[:64], dtype=torch.long)
    model.zero_grad(set_to_none=True)
    xa = Adversary(eps, norm).perturb(model, x, y)
    dist = (xa - x).abs().amax(dim=1) if norm == "inf" else (xa - x).abs().sum(dim=1)
    assert float(dist.max()) <= eps * (1 + 1e-5)
    assert float(xa.min()) >= 0.0 and float(xa.max()) <= 1.0
    ce = nn.CrossEntropyLoss(reduction="none")
    with torch.no_grad():
        assert float(ce(model(xa), y).mean()) > float(ce(model(x), y).mean())
    # Only the input gets gradients: the model's parameters are left as they were.
    assert all(p.grad is None for p in model.parameters())


def test_adversarial_training_makes_the_net_robust(digits) -> None:
    torch.set_num_threads(1)
    adv = Adversary(0.1, "inf", steps=5, weight=1.0)
    plain = train(
        make_mlp(64, [32], 10, seed=3), digits.x_train, digits.y_train, epochs=15, lr=3e-3
    )
    robust = train(
        make_mlp(64, [32], 10, seed=3),
        digits.x_train,
        digits.y_train,
        epochs=15,
        lr=3e-3,
        adversary=adv,
    )
    x, y = digits.x_test, digits.y_test
    attack = Adversary(0.1, "inf", steps=20)
    r_plain, r_robust = robust_accuracy(plain, x, y, attack), robust_accuracy(robust, x, y, attack)
    # Measured: 0.51 plain, 0.71 adversarially trained; clean accuracy 0.95 and 0.93.
    assert r_robust > r_plain + 0.12
    assert accuracy(robust, x, y) > 0.85
