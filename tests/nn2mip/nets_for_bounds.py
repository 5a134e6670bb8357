"""Small networks shared by the bounds, export and Pyomo tests (cached per process)."""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import torch

from nn2mip.datasets import Dataset, load_digits
from nn2mip.network import Network, network_from_arrays
from nn2mip.torch_io import from_torch
from pruning.compact import compact_network
from pruning.structured import neuron_masks
from pruning.training import make_mlp, train


@cache
def digits() -> Dataset:
    return load_digits()


@cache
def nets() -> dict[str, Network]:
    """A dense and a structured-pruned 64-32-32-10 digits net, and a random 64-24-24-24-10."""
    torch.set_num_threads(1)
    data = digits()
    dense = train(make_mlp(64, [32, 32], 10, seed=1), data.x_train, data.y_train, epochs=6, lr=3e-3)
    pruned = copy.deepcopy(dense)
    train(pruned, data.x_train, data.y_train, epochs=2, masks=neuron_masks(pruned, 0.5))
    rng = np.random.default_rng(7)
    sizes = [64, 24, 24, 24, 10]
    ws = [rng.normal(0, 1 / np.sqrt(m), (n, m)) for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
    bs = [rng.normal(0, 0.1, n) for n in sizes[1:]]
    return {
        "dense": from_torch(dense),
        "pruned": compact_network(from_torch(pruned)),
        "random": network_from_arrays(ws, bs),
    }


@cache
def sampled(name: str, norm: str, eps: float, n: int = 100_000) -> tuple[list[np.ndarray], ...]:
    """Per-layer (min, max) of the pre-activations over ``n`` sampled inputs of the region."""
    from nn2mip.region import ball_region

    net = nets()[name]
    region = ball_region(digits().x_test[1], eps, norm)  # type: ignore[arg-type]
    x = region.sample(n, np.random.default_rng(0))
    assert region.contains(x).all()
    zs = net.pre_activations(x)
    return [z.min(axis=0) for z in zs], [z.max(axis=0) for z in zs]
