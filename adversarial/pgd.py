"""Projected gradient ascent (PGD) on the margin: the cheap attack tried before any MIP.

PGD can only ever prove "adversarial": a candidate counts once it passes ``check_witness`` (the
float64 forward pass on the exactly projected point). Failing to find one proves nothing.
Restarts run as one batch of points, so a restart costs no extra Python loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from adversarial.witness import WitnessCheck, check_witness
from nn2mip.network import Network
from nn2mip.projection import l1_ascent_direction, pgd_step_size, project_l1_box
from nn2mip.region import InputRegion
from nn2mip.threads import torch_threads


@dataclass
class PgdResult:
    """Best candidate of a PGD run; ``check`` is set iff a witness passed the re-check."""

    check: WitnessCheck | None
    best_margin: float
    steps_run: int
    time: float


def _project(x: np.ndarray, region: InputRegion) -> np.ndarray:
    if region.norm == "1" and region.center is not None:
        c = region.center
        # Shrink slightly so rounding can never leave the ball: check_witness uses tol 0.
        eps = region.eps * (1.0 - 1e-9)
        return c + project_l1_box(x - c, eps, region.lower - c, region.upper - c)
    return np.clip(x, region.lower, region.upper)


def _margins(y: torch.Tensor, label: int, target: int | None) -> torch.Tensor:
    if target is not None:
        return y[:, target] - y[:, label]
    others = torch.cat([y[:, :label], y[:, label + 1 :]], dim=1)
    return others.max(dim=1).values - y[:, label]


def pgd_attack(
    network: Network,
    region: InputRegion,
    label: int,
    target: int | None = None,
    steps: int = 40,
    restarts: int = 8,
    step_size: float | None = None,
    seed: int = 0,
) -> PgdResult:
    """Maximize ``y[target] - y[label]`` (or the best wrong class's lead) over ``region``.

    Starts from the center and ``restarts - 1`` random points of the region; L-inf steps follow
    the gradient's sign, L1 steps move the largest gradient entries by a total L1 length
    ``step_size``; every step is projected onto the ball and the box.
    Stops at the first candidate that passes ``check_witness``.
    """
    # Batches here are a few rows: intra-op threads only add contention (6x slower on 2 cores).
    with torch_threads(1):
        return _pgd(network, region, label, target, steps, restarts, step_size, seed)


def _pgd(
    network: Network,
    region: InputRegion,
    label: int,
    target: int | None,
    steps: int,
    restarts: int,
    step_size: float | None,
    seed: int,
) -> PgdResult:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    center = region.center if region.center is not None else 0.5 * (region.lower + region.upper)
    starts = [center[None, :]]
    if restarts > 1:
        starts.append(region.sample(restarts - 1, rng))
    x = _project(np.vstack(starts), region)
    eps = region.eps if region.eps > 0 else float(np.max(region.upper - region.lower))
    alpha = step_size if step_size is not None else pgd_step_size(eps, region.norm, steps)
    ws = [torch.as_tensor(layer.weight) for layer in network.layers]
    bs = [torch.as_tensor(layer.bias) for layer in network.layers]
    relu = [layer.relu for layer in network.layers]
    best_margin = -np.inf
    steps_run = 0
    for step in range(steps + 1):
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        h = xt
        for w, b, r in zip(ws, bs, relu, strict=True):
            h = h @ w.T + b
            if r:
                h = torch.relu(h)
        m = _margins(h, label, target)
        mv = m.detach().numpy()
        i = int(np.argmax(mv))
        best_margin = max(best_margin, float(mv[i]))
        if mv[i] > 0.0:
            # Candidates in order of margin; the float64 re-check decides.
            for j in np.argsort(-mv):
                if mv[j] <= 0.0:
                    break
                chk = check_witness(network, x[j], region, label, target)
                if chk.passed:
                    return PgdResult(chk, float(chk.margin), step, time.perf_counter() - t0)
        if step == steps:
            break
        steps_run = step + 1
        (g,) = torch.autograd.grad(m.sum(), xt)
        g = g.numpy()
        if region.norm == "1":
            x = _project(x + alpha * l1_ascent_direction(g), region)
        else:
            x = _project(x + alpha * np.sign(g), region)
    return PgdResult(None, best_margin, steps_run, time.perf_counter() - t0)
