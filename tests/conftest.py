"""Shared fixtures: small networks trained on the embedded digits data (cached per session)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from nn2mip.datasets import Dataset, load_digits
from nn2mip.network import Network
from nn2mip.torch_io import from_torch
from pruning.compact import compact_network
from pruning.magnitude import magnitude_masks
from pruning.structured import neuron_masks
from pruning.training import make_mlp, train

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="session")
def digits_nets(digits: Dataset) -> dict[str, tuple[Network, torch.nn.Module]]:
    """A dense, an unstructured-pruned and a structured-pruned 64-32-32-10 net."""
    torch.set_num_threads(1)
    dense = train(
        make_mlp(64, [32, 32], 10, seed=1), digits.x_train, digits.y_train, epochs=8, lr=3e-3
    )
    unstructured = copy.deepcopy(dense)
    m = magnitude_masks(unstructured, 0.7)
    train(unstructured, digits.x_train, digits.y_train, epochs=3, masks=m)
    structured = copy.deepcopy(dense)
    m = neuron_masks(structured, 0.5)
    train(structured, digits.x_train, digits.y_train, epochs=3, masks=m)
    return {
        "dense": (from_torch(dense), dense),
        "unstructured": (from_torch(unstructured), unstructured),
        "structured": (compact_network(from_torch(structured)), structured),
    }


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture()
def spy_method(monkeypatch):
    """An anytime method in the table (default budget 20 s) that records the budget it was given."""
    import nn2mip.bounds as nb

    seen: list[float | None] = []

    def spy(network, region, time_budget=None):
        seen.append(time_budget)
        return nb.interval_bounds(network, region)

    monkeypatch.setitem(
        nb.BOUND_METHODS, "spy", nb.BoundMethod(spy, anytime=True, default_budget=20.0)
    )
    return seen
