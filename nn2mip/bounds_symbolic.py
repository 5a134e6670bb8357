"""Symbolic (CROWN / DeepPoly style) bounds: backward linear relaxation of the ReLUs.

For every layer k, the pre-activation ``z_k`` is bounded by linear functions of the input,
obtained by walking back through the network and replacing each earlier ReLU by two linear
functions that sandwich it on ``[l, u]``:

* upper: ``y <= u (z - l) / (u - l)`` (the chord), exact when the neuron is stable;
* lower: ``y >= a z`` with ``a = 1`` if ``u >= -l`` else ``0`` (the adaptive CROWN choice).

The resulting ``z_k <= A x + c`` is concretized over the input region: over a box with the
usual positive/negative split, over an L1 ball intersected with a box *exactly*, by the greedy
fractional-knapsack argument (spend the L1 budget on the coordinates with the largest |A_ij|,
each up to its box room). Every layer's bounds are intersected with the interval image of the
previous (already tightened) layer and with any prior bounds, then rounded outward.
"""

from __future__ import annotations

import numpy as np

from nn2mip.bounds import (
    NetworkBounds,
    _check_region,
    affine_interval,
    interval_bounds,
    outward,
    register_bound_method,
)
from nn2mip.network import Network
from nn2mip.region import InputRegion


def relu_relaxation(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slopes and intercept of the ReLU sandwich on ``[lo, hi]``.

    Returns ``(upper_slope, upper_intercept, lower_slope)``: ``relu(z) <= su z + tu`` and
    ``relu(z) >= sl z`` for every ``z`` in ``[lo, hi]``.
    """
    su = np.zeros_like(lo)
    tu = np.zeros_like(lo)
    sl = np.zeros_like(lo)
    active = lo >= 0.0
    su[active] = 1.0
    sl[active] = 1.0
    unstable = (lo < 0.0) & (hi > 0.0)
    lu, uu = lo[unstable], hi[unstable]
    slope = uu / (uu - lu)
    su[unstable] = slope
    tu[unstable] = -slope * lu
    # Lower slope 1 or 0, whichever leaves the smaller area between the bound and the ReLU.
    sl[unstable] = (uu >= -lu).astype(np.float64)
    return su, tu, sl


def concretize(a: np.ndarray, c: np.ndarray, region: InputRegion) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``a @ x + c`` (``a`` of shape (m, n)) over the region, row by row."""
    ap, an = np.maximum(a, 0.0), np.minimum(a, 0.0)
    lo = ap @ region.lower + an @ region.upper + c
    hi = ap @ region.upper + an @ region.lower + c
    if region.norm == "1" and region.center is not None:
        center = region.center
        mid = a @ center + c
        # Room from the center to the box face in the direction that increases each term.
        room_up = np.where(a > 0, region.upper - center, center - region.lower)
        room_dn = np.where(a > 0, center - region.lower, region.upper - center)
        gain = np.abs(a)
        hi = np.minimum(hi, mid + _knapsack(gain, np.maximum(room_up, 0.0), region.eps))
        lo = np.maximum(lo, mid - _knapsack(gain, np.maximum(room_dn, 0.0), region.eps))
    return lo, hi


def _knapsack(gain: np.ndarray, room: np.ndarray, budget: float) -> np.ndarray:
    """Per row: ``max sum gain_j t_j`` s.t. ``0 <= t_j <= room_j``, ``sum t_j <= budget``.

    The fractional knapsack is solved exactly by filling in order of decreasing gain.
    """
    order = np.argsort(-gain, axis=1)
    g = np.take_along_axis(gain, order, axis=1)
    r = np.take_along_axis(room, order, axis=1)
    before = np.cumsum(r, axis=1) - r  # room already used by better coordinates
    take = np.clip(budget - before, 0.0, r)
    return np.sum(g * take, axis=1)


def symbolic_layer(
    network: Network,
    region: InputRegion,
    lowers: list[np.ndarray],
    uppers: list[np.ndarray],
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on layer k's pre-activation given (sound) bounds on layers ``0..k-1``.

    Not rounded outward and not intersected: callers do both.
    """
    layers = network.layers
    w, b = layers[k].weight, layers[k].bias
    # Upper bound: z <= au @ h_{k-1} + cu ; lower bound: z >= al @ h_{k-1} + cl.
    au, cu = w.copy(), b.copy()
    al, cl = w.copy(), b.copy()
    for j in range(k - 1, -1, -1):
        if layers[j].relu:
            su, tu, sl = relu_relaxation(lowers[j], uppers[j])
            pos, neg = np.maximum(au, 0.0), np.minimum(au, 0.0)
            cu = cu + pos @ tu
            au = pos * su + neg * sl
            pos, neg = np.maximum(al, 0.0), np.minimum(al, 0.0)
            cl = cl + neg @ tu
            al = pos * sl + neg * su
        wj, bj = layers[j].weight, layers[j].bias
        cu = cu + au @ bj
        cl = cl + al @ bj
        au = au @ wj
        al = al @ wj
    lo = concretize(al, cl, region)[0]
    hi = concretize(au, cu, region)[1]
    return lo, hi


def symbolic_bounds(
    network: Network, region: InputRegion, prior: NetworkBounds | None = None
) -> NetworkBounds:
    """CROWN-style bounds, never looser than interval bounds (nor than ``prior`` if given)."""
    _check_region(network, region)
    base = prior if prior is not None else interval_bounds(network, region)
    lowers: list[np.ndarray] = []
    uppers: list[np.ndarray] = []
    for k in range(len(network.layers)):
        lo, hi = _tighten_layer(network, region, lowers, uppers, k)
        lowers.append(np.maximum(lo, base.lower[k]))
        uppers.append(np.minimum(hi, base.upper[k]))
    return NetworkBounds(lowers, uppers, "symbolic")


def _tighten_layer(
    network: Network,
    region: InputRegion,
    lowers: list[np.ndarray],
    uppers: list[np.ndarray],
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Symbolic bounds of layer k intersected with the interval image of layer k-1's bounds."""
    layer = network.layers[k]
    lo, hi = outward(*symbolic_layer(network, region, lowers, uppers, k))
    if k:
        prev = network.layers[k - 1]
        plo, phi = lowers[k - 1], uppers[k - 1]
        if prev.relu:
            plo, phi = np.maximum(plo, 0.0), np.maximum(phi, 0.0)
        ilo, ihi = outward(*affine_interval(layer.weight, layer.bias, plo, phi))
        lo, hi = np.maximum(lo, ilo), np.minimum(hi, ihi)
    return lo, hi


register_bound_method("symbolic", symbolic_bounds)
