"""Fixtures for the pruning tests: the embedded digits data and a small trained MLP."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nn2mip.datasets import Dataset, load_digits
from pruning.training import make_mlp, train


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    # The machine is shared: keep torch to one core.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="session")
def _trained(digits: Dataset) -> nn.Sequential:
    m = make_mlp(digits.num_features, [32, 32], digits.num_classes, seed=0)
    return train(m, digits.x_train, digits.y_train, epochs=15, lr=3e-3)


@pytest.fixture
def trained(_trained: nn.Sequential) -> nn.Sequential:
    """A fresh copy of a 64-32-32-10 MLP trained on digits (about 93-95 % test accuracy)."""
    return copy.deepcopy(_trained)
