"""compact(): a physically smaller network computing the same function."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nn2mip.torch_io import from_torch
from pruning.compact import compact, compact_network, hidden_sizes
from pruning.training import make_mlp


def _net() -> nn.Sequential:
    m = make_mlp(20, [16, 12, 8], 5, seed=3).double()
    lins = [x for x in m if isinstance(x, nn.Linear)]
    with torch.no_grad():
        lins[0].weight[0] = (
            0.0  # zero incoming, positive bias: a constant folded into the next bias
        )
        lins[0].bias[0] = 0.7
        lins[0].weight[1] = 0.0  # zero incoming, negative bias: constant 0
        lins[0].bias[1] = -0.3
        lins[1].weight[:, 2] = 0.0  # zero outgoing: dropped
        lins[1].weight[3] = 0.0  # zero incoming in layer 2 ...
        lins[2].weight[:, 4:6] = 0.0  # two zero-outgoing neurons in layer 2
        lins[0].weight[5, :] = -1.0  # dead on [0, 1]^20 (always negative): removed with a domain
        lins[0].bias[5] = -0.1
    return m


def _max_diff(a: nn.Module, b: nn.Module, n: int = 1000) -> float:
    x = torch.rand(n, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())


def test_compact_each_kind_same_outputs():
    m = _net()
    c = compact(m)
    assert hidden_sizes(c) == [16 - 3, 12 - 3, 8]
    assert c[0].weight.dtype == torch.float64
    assert _max_diff(m, c) <= 1e-6


def test_compact_dead_on_domain():
    m = _net()
    c = compact(m, domain=(0.0, 1.0))
    assert hidden_sizes(c)[0] == 16 - 4
    assert _max_diff(m, c) <= 1e-6  # the random inputs are in [0, 1]


def test_compact_float32_model_and_network_ir():
    m = _net().float()
    c = compact(m)
    x = np.random.default_rng(1).random((1000, 20))
    a = from_torch(m).forward(x)
    b = compact_network(from_torch(m)).forward(x)
    assert np.abs(a - b).max() <= 1e-6
    with torch.no_grad():
        diff = (
            (
                m(torch.as_tensor(x, dtype=torch.float32))
                - c(torch.as_tensor(x, dtype=torch.float32))
            )
            .abs()
            .max()
        )
    assert float(diff) <= 1e-5  # float32 arithmetic on both sides


def test_compact_keeps_a_fully_pruned_layer_valid():
    m = make_mlp(6, [4, 4], 3).double()
    with torch.no_grad():
        m[2].weight.zero_()
    c = compact(m)
    assert hidden_sizes(c) == [1, 1]
    assert _max_diff_small(m, c) <= 1e-9


def _max_diff_small(a: nn.Module, b: nn.Module) -> float:
    x = torch.rand(1000, 6, dtype=torch.float64)
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())
