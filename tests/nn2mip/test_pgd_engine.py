"""The PGD engine: projections stay in the region, the leaky gradient is the hand-written
backward pass, and ascent raises the objective."""

from __future__ import annotations

import numpy as np
import torch

from nn2mip.network import network_from_arrays
from nn2mip.pgd import Ball, network_forward, pgd


def _net(rng):
    ws = [rng.normal(size=(16, 8)), rng.normal(size=(16, 16)), rng.normal(size=(3, 16))]
    return network_from_arrays(ws, [rng.normal(size=w.shape[0]) * 0.3 for w in ws])


def test_network_forward_matches_the_float64_pass() -> None:
    rng = np.random.default_rng(0)
    net = _net(rng)
    x = rng.uniform(size=(20, 8))
    y = network_forward(net, torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(y, net.forward(x), rtol=1e-12, atol=1e-12)


def test_leaky_gradient_is_the_manual_backward_pass() -> None:
    rng = np.random.default_rng(1)
    net = _net(rng)
    x = rng.uniform(size=(6, 8))
    leak = torch.full((6, 1), 0.1, dtype=torch.float64)
    xt = torch.as_tensor(x).requires_grad_(True)
    (g,) = torch.autograd.grad(network_forward(net, xt, leak)[:, 0].sum(), xt)
    zs = net.pre_activations(x)
    ref = np.zeros((6, 3))
    ref[:, 0] = 1.0
    for j in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[j]
        if layer.relu:
            ref = ref * np.where(zs[j] > 0, 1.0, 0.1)
        ref = ref @ layer.weight
    np.testing.assert_allclose(g.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_l1_and_box_steps_stay_inside_and_ascend() -> None:
    rng = np.random.default_rng(2)
    net = _net(rng)
    c = torch.as_tensor(rng.uniform(0.2, 0.8, size=(5, 8)))
    for ball in (
        Ball(torch.zeros(8, dtype=torch.float64), torch.ones(8, dtype=torch.float64), "1", c, 0.7),
        Ball(torch.clamp(c - 0.1, min=0.0), torch.clamp(c + 0.1, max=1.0)),
    ):

        def objective(x: torch.Tensor) -> torch.Tensor:
            return network_forward(net, x)[:, 1]

        start = objective(c).detach()
        seen: list[int] = []

        def stop(k: int, x: torch.Tensor, v: torch.Tensor, seen: list[int] = seen) -> bool:
            seen.append(k)
            return False

        run = pgd(objective, c.clone(), ball, 20, 0.05, stop)
        assert seen == list(range(21))  # evaluated before every step and after the last
        x = run.x
        assert torch.all(x >= ball.lower - 1e-12) and torch.all(x <= ball.upper + 1e-12)
        if ball.norm == "1":
            assert float((x - c).abs().sum(dim=1).max()) <= 0.7 + 1e-12
        assert torch.all(run.values >= start - 1e-9) and float((run.values - start).sum()) > 0
