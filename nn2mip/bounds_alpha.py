"""Optimized linear bounds (alpha-CROWN) on every pre-activation.

CROWN's backward relaxation (``bounds_symbolic``) fixes each unstable ReLU's lower line
``h >= a z`` to ``a`` in {0, 1}. Any ``a`` in [0, 1] is sound, and the best one differs per bounded
quantity, so alpha-CROWN (Xu et al., ICLR 2021) gives every bounded row its own ``a`` per neuron
and tunes them by projected gradient ascent on the bound. Layer by layer, the unstable neurons
of layer ``j`` get lower bounds for ``z`` and ``-z`` this way, using the tightened bounds of the
layers before; every evaluated bound is valid, so the best one seen per row is kept. On deep
networks this tightens the later layers far beyond CROWN at a fraction of an LP pass's cost.

``relaxed_backward`` is the shared backward pass (also branch and bound's, with split
constraints and their multipliers), in the dtype of its tensors. The bounds here are float64
and rounded outward.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from nn2mip.bounds import NetworkBounds, _check_region, outward
from nn2mip.bounds_symbolic import symbolic_bounds
from nn2mip.network import Network
from nn2mip.region import InputRegion

# Adam steps per layer, and their step size on alpha.
ALPHA_ITERS = 20
ALPHA_LR = 0.1


class Adam:
    """Adam ascent steps, by hand: ``torch.optim`` pulls in the compiler stack on first use,
    seconds of import inside a verifier's time budget."""

    def __init__(self, params: list[torch.Tensor], b1: float = 0.9, b2: float = 0.999) -> None:
        self.params, self.b1, self.b2, self.t = params, b1, b2, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def ascend(self, grads: tuple[torch.Tensor, ...], lrs: list[float]) -> None:
        self.t += 1
        c1, c2 = 1.0 - self.b1**self.t, 1.0 - self.b2**self.t
        for p, g, m, v, lr in zip(self.params, grads, self.m, self.v, lrs, strict=True):
            m.mul_(self.b1).add_(g, alpha=1.0 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1.0 - self.b2)
            p.add_(lr * (m / c1) / ((v / c2).sqrt() + 1e-8))


def relaxed_backward(
    w: list[torch.Tensor],
    b: list[torch.Tensor],
    lam: torch.Tensor,
    const: torch.Tensor,
    x_lo: torch.Tensor,
    x_hi: torch.Tensor,
    lower: list[torch.Tensor],
    upper: list[torch.Tensor],
    splits: list[torch.Tensor] | None = None,
    alpha: list[torch.Tensor] | None = None,
    beta: list[torch.Tensor] | None = None,
    l1: tuple[torch.Tensor, float] | None = None,
    want_scores: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
    """Lower bound of ``lam @ h + const`` over the input region, where ``h`` is the output of
    the last of the ReLU layers given (weights ``w[k]``, biases ``b[k]``, ``k < len(lower)``),
    walking back through them to the input.

    Shapes: ``lam`` (B, R, n_top), ``const`` (B, R); ``lower[k]``, ``upper[k]`` (B, n_k)
    pre-activation bounds; ``splits[k]`` (B, n_k) in {-1, 0, +1} (a split ``s z >= 0``,
    entering through ``beta[k]`` (B, R, n_k) >= 0); ``alpha[k]`` (B, R, n_k) lower slopes in
    [0, 1] (default: CROWN's adaptive choice). The region is the box ``[x_lo, x_hi]``, cut by
    the L1 ball ``l1 = (center, eps)`` if given. Returns the bounds (B, R), the inputs that
    attain them (B, R, n_in) and, if asked, per layer the cost of each unsplit unstable
    neuron's upper-line intercept (BaBSR's branching score, -1 where no split is possible).
    """
    scores: list[torch.Tensor] | None = [] if want_scores else None
    for k in range(len(lower) - 1, -1, -1):
        lo, up = lower[k], upper[k]
        s = None
        if splits is not None:
            s = splits[k].to(lo.dtype)
            lo = torch.where(s > 0, lo.clamp(min=0.0), lo)
            up = torch.where(s < 0, up.clamp(max=0.0), up)
        active = lo >= 0.0
        unstable = (lo < 0.0) & (up > 0.0)
        width = torch.where(unstable, up - lo, torch.ones_like(up))
        su = torch.where(unstable, up / width, active.to(lo.dtype))
        tu = torch.where(unstable, -su * lo, torch.zeros_like(lo))
        a = alpha[k] if alpha is not None else (up >= -lo).to(lo.dtype).unsqueeze(1)
        sl = torch.where(unstable.unsqueeze(1), a, active.to(lo.dtype).unsqueeze(1))
        lam_pos, lam_neg = lam.clamp(min=0.0), lam.clamp(max=0.0)
        const = const + (lam_neg * tu.unsqueeze(1)).sum(-1)
        if scores is not None:
            # What the upper line's intercept costs the bound (BaBSR), unsplit unstable only.
            sc = (-lam_neg * tu.unsqueeze(1)).sum(1)
            free = unstable if s is None else unstable & (s == 0)
            scores.insert(0, torch.where(free, sc + 1e-9, -torch.ones_like(sc)))
        lam_z = lam_pos * sl + lam_neg * su.unsqueeze(1)
        if beta is not None and s is not None:
            lam_z = lam_z - beta[k] * s.unsqueeze(1)
        const = const + lam_z @ b[k]
        lam = lam_z @ w[k]
    if l1 is not None:
        return (*concretize_l1(lam, const, x_lo, x_hi, l1), scores)
    x_star = torch.where(lam > 0, x_lo, x_hi)
    return const + (lam * x_star).sum(-1), x_star, scores


def concretize_l1(
    lam: torch.Tensor,
    const: torch.Tensor,
    x_lo: torch.Tensor,
    x_hi: torch.Tensor,
    l1: tuple[torch.Tensor, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``min lam . x + const`` over the box and ``||x - center||_1 <= eps``: from the
    center, spend the budget on the coordinates with the largest ``|lam|`` first, each up to its
    room to the box face (the fractional knapsack), and the minimizing inputs."""
    center, eps = l1
    gain = lam.abs()
    room = torch.where(lam > 0, center - x_lo, x_hi - center).clamp(min=0.0)
    order = torch.argsort(gain, dim=-1, descending=True)
    g, r = gain.gather(-1, order), room.gather(-1, order)
    before = r.cumsum(-1) - r  # room already taken by better coordinates
    take = torch.minimum((eps - before).clamp(min=0.0), r)
    lb = const + (lam * center).sum(-1) - (g * take).sum(-1)
    step = torch.zeros_like(lam).scatter(-1, order, take)
    return lb, center - torch.sign(lam) * step


def alpha_fits(network: Network) -> bool:
    """True for the networks these bounds handle: ReLU hidden layers and an affine output."""
    layers = network.layers
    return len(layers) > 1 and not layers[-1].relu and all(lay.relu for lay in layers[:-1])


def alpha_bounds(
    network: Network,
    region: InputRegion,
    start: NetworkBounds | None = None,
    iters: int = ALPHA_ITERS,
    time_budget: float | None = None,
) -> NetworkBounds:
    """Alpha-CROWN bounds, layer by layer, intersected with ``start`` (default: symbolic).

    Only neurons unstable under the bounds so far are optimized (a stable neuron's bounds enter
    no relaxation); the output layer is tightened too. Past ``time_budget`` seconds the
    remaining layers keep ``start``'s bounds. Networks other than a ReLU MLP get ``start``.
    """
    _check_region(network, region)
    base = start if start is not None else symbolic_bounds(network, region)
    if not alpha_fits(network):
        return base
    deadline = None if time_budget is None else time.perf_counter() + time_budget
    lowers = [lo.copy() for lo in base.lower]
    uppers = [hi.copy() for hi in base.upper]
    x_lo = torch.from_numpy(np.asarray(region.lower, np.float64))
    x_hi = torch.from_numpy(np.asarray(region.upper, np.float64))
    l1 = None
    if region.norm == "1" and region.center is not None:
        l1 = (torch.from_numpy(np.asarray(region.center, np.float64)), float(region.eps))
    w = [torch.from_numpy(lay.weight) for lay in network.layers]
    b = [torch.from_numpy(lay.bias) for lay in network.layers]
    for j in range(1, len(network.layers)):
        if deadline is not None and time.perf_counter() > deadline:
            break
        last = j == len(network.layers) - 1
        rows = np.flatnonzero(
            np.ones_like(lowers[j], bool) if last else (lowers[j] < 0.0) & (uppers[j] > 0.0)
        )
        if rows.size == 0:
            continue
        lo_t = [torch.from_numpy(v).unsqueeze(0) for v in lowers[:j]]
        up_t = [torch.from_numpy(v).unsqueeze(0) for v in uppers[:j]]
        wr = w[j][torch.from_numpy(rows)]
        lam = torch.cat([wr, -wr]).unsqueeze(0)
        br = b[j][torch.from_numpy(rows)]
        const = torch.cat([br, -br]).unsqueeze(0)
        bound = partial(relaxed_backward, w[:j], b[:j], lam, const, x_lo, x_hi, lo_t, up_t, l1=l1)
        best = _optimize_rows(bound, lo_t, up_t, lam.shape[1], iters, deadline)
        m = rows.size
        lo, hi = outward(best[:m], -best[m:])
        lowers[j][rows] = np.maximum(lowers[j][rows], lo)
        uppers[j][rows] = np.minimum(uppers[j][rows], hi)
    return NetworkBounds(lowers, uppers, "alpha")


def _optimize_rows(
    bound: Callable[..., tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]],
    lower: list[torch.Tensor],
    upper: list[torch.Tensor],
    n_rows: int,
    iters: int,
    deadline: float | None,
) -> np.ndarray:
    """Best lower bound per row over ``iters`` Adam steps on the rows' own lower slopes, started
    from CROWN's choice under ``lower``/``upper``, as a numpy array (R,). ``bound(alpha=...)``
    is ``relaxed_backward`` with everything else fixed (rows of shape (1, R))."""
    alpha = [
        (up >= -lo).to(torch.float64).unsqueeze(1).expand(-1, n_rows, -1).clone()
        for lo, up in zip(lower, upper, strict=True)
    ]
    for a in alpha:
        a.requires_grad_(True)
    adam = Adam(alpha)
    best = None
    for it in range(iters + 1):
        final = it == iters or (deadline is not None and time.perf_counter() > deadline)
        with torch.set_grad_enabled(not final):
            lb = bound(alpha=alpha)[0]
        best = lb.detach() if best is None else torch.maximum(best, lb.detach())
        if final:
            break
        grads = torch.autograd.grad(lb.sum(), alpha)
        with torch.no_grad():  # projected back onto [0, 1]
            adam.ascend(grads, [ALPHA_LR] * len(alpha))
            for a in alpha:
                a.clamp_(0.0, 1.0)
    assert best is not None
    return best[0].numpy()
