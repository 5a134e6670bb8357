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
from nn2mip.region import InputRegion
from nn2mip.threads import torch_threads


@dataclass
class PgdResult:
    """Best candidate of a PGD run; ``check`` is set iff a witness passed the re-check."""

    check: WitnessCheck | None
    best_margin: float
    steps_run: int
    time: float


def project_l1_ball(v: np.ndarray, eps: float) -> np.ndarray:
    """Euclidean projection of each row of ``v`` onto ``{d : ||d||_1 <= eps}`` (Duchi et al. 2008,
    sort-based, O(n log n) per row)."""
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    a = np.abs(v)
    out = v.copy()
    need = a.sum(axis=1) > eps
    if not np.any(need) or eps <= 0:
        return np.zeros_like(v) if eps <= 0 else out
    u = -np.sort(-a[need], axis=1)
    css = np.cumsum(u, axis=1)
    k = np.arange(1, u.shape[1] + 1)
    cond = u - (css - eps) / k > 0
    rho = u.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = (css[np.arange(len(rho)), rho] - eps) / (rho + 1)
    out[need] = np.sign(v[need]) * np.maximum(a[need] - theta[:, None], 0.0)
    return out


def project_l1_box(v: np.ndarray, eps: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Projection of each row of ``v`` onto ``{d : ||d||_1 <= eps, lo <= d <= hi}``, with
    ``lo <= 0 <= hi``.

    The problem is separable once the L1 multiplier ``theta`` is fixed: the answer is the
    soft-threshold of ``v`` by ``theta`` clipped to the box (the box contains 0). The L1 norm of
    that map, ``f(theta) = sum_i clip(|v_i| - theta, 0, cap_i)``, is piecewise linear and
    non-increasing with breakpoints at ``|v_i| - cap_i`` and ``|v_i|``; ``theta`` is read off
    the sorted breakpoints exactly (O(n log n) per row, no iteration).
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    d = np.clip(v, lo, hi)
    over = np.abs(d).sum(axis=1) > eps
    if not np.any(over):
        return d
    if eps <= 0:
        d[over] = 0.0
        return d
    w = v[over]
    a = np.abs(w)
    cap = np.broadcast_to(np.where(w >= 0, hi, -lo), a.shape)
    theta = _l1_box_theta(a, cap, eps)
    z = np.clip(np.sign(w) * np.maximum(a - theta[:, None], 0.0), lo, hi)
    # Rounding in the breakpoint sums can leave the norm a few ulps above eps: scale back
    # (the box contains 0, so scaling stays in it) until the computed norm is within eps.
    for shrink in (1.0, 1.0 - 1e-15, 1.0 - 1e-13, 1.0 - 1e-11):
        norm = np.abs(z).sum(axis=1)
        bad = norm > eps
        if not np.any(bad):
            break
        z[bad] *= (shrink * eps / norm[bad])[:, None]
    d[over] = z
    return d


def _l1_box_theta(a: np.ndarray, cap: np.ndarray, eps: float) -> np.ndarray:
    """Per row, the ``theta > 0`` with ``sum_i clip(a_i - theta, 0, cap_i) = eps``, given
    ``sum_i min(a_i, cap_i) > eps > 0``."""
    m = a.shape[0]
    bp = np.concatenate([a - cap, a], axis=1)
    # Slope changes of f: -1 where a term starts shrinking, +1 where it reaches 0.
    delta = np.concatenate([-np.ones_like(a), np.ones_like(a)], axis=1)
    order = np.argsort(bp, axis=1)
    bp = np.take_along_axis(bp, order, axis=1)
    slope = np.cumsum(np.take_along_axis(delta, order, axis=1), axis=1)  # on [bp_k, bp_k+1]
    f0 = np.clip(a - bp[:, :1], 0.0, cap).sum(axis=1)
    f = np.empty_like(bp)
    f[:, 0] = f0
    f[:, 1:] = f0[:, None] + np.cumsum(slope[:, :-1] * np.diff(bp, axis=1), axis=1)
    # First breakpoint where f has dropped to eps (f(max bp) = 0 < eps); f > eps for theta <= 0.
    k = np.argmax(f <= eps, axis=1)
    k = np.maximum(k, 1)
    rows = np.arange(m)
    s = slope[rows, k - 1]
    return bp[rows, k - 1] + (f[rows, k - 1] - eps) / -np.minimum(s, -1.0)


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
    alpha = step_size if step_size is not None else (2.5 * eps / max(steps, 1))
    if region.norm == "1":
        alpha = step_size if step_size is not None else eps / 4.0
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
            x = _project(x + alpha * _top(g), region)
        else:
            x = _project(x + alpha * np.sign(g), region)
    return PgdResult(None, best_margin, steps_run, time.perf_counter() - t0)


def _top(g: np.ndarray, frac: float = 0.05) -> np.ndarray:
    """Sparse L1 steepest-ascent direction: the sign of the largest ``frac`` of gradient entries,
    scaled to unit L1 norm (the L1 ball's vertices are where its optima live)."""
    k = max(1, int(frac * g.shape[1]))
    idx = np.argpartition(-np.abs(g), k - 1, axis=1)[:, :k]
    d = np.zeros_like(g)
    rows = np.arange(g.shape[0])[:, None]
    d[rows, idx] = np.sign(g[rows, idx]) / k
    return d
