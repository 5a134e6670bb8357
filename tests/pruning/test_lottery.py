"""Iterative magnitude pruning with rewinding."""

from __future__ import annotations

import pytest
import torch
from pruning_helpers import fresh, weight_sparsity

from pruning.lottery import lottery_ticket
from pruning.training import linear_layers


@pytest.mark.parametrize("rewind", [0, 5])
def test_lottery_reaches_sparsity(digits, rewind):
    model = fresh(digits)
    model, masks, log = lottery_ticket(
        model, digits.x_train, digits.y_train, 0.8, rounds=2, epochs=2, rewind_iteration=rewind
    )
    assert weight_sparsity(model) == pytest.approx(0.8, abs=0.01)
    assert log.sparsity[0] == pytest.approx(1 - 0.2**0.5, abs=0.01)
    assert log.sparsity[-1] == pytest.approx(0.8, abs=0.01)
    for i, lin in enumerate(linear_layers(model)):
        assert torch.all(lin.weight[~masks[i]] == 0)


def test_rewind_to_init_restores_initial_weights(digits):
    init = fresh(digits)
    w0 = [lin.weight.detach().clone() for lin in linear_layers(init)]
    # With zero training epochs the returned ticket is exactly the rewound, masked init.
    model, masks, _ = lottery_ticket(init, digits.x_train, digits.y_train, 0.5, rounds=1, epochs=0)
    for i, lin in enumerate(linear_layers(model)):
        torch.testing.assert_close(lin.weight, w0[i] * masks[i])
