"""The numpy CROWN that ``nn2mip.crown`` replaced (``nn2mip/bounds_symbolic.py`` and the interval
bounds of ``nn2mip/bounds.py`` before issue 20), kept verbatim as an independent reference: the
torch engine must give the same bounds (tests) and not be slower (``python -m
tests.nn2mip.crown_reference``, a timing of both in one process)."""

from __future__ import annotations

import numpy as np

from nn2mip.network import Network
from nn2mip.region import InputRegion

_ABS_SLACK = 1e-9
_REL_SLACK = 1e-12


def outward(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (
        lo - (_ABS_SLACK + _REL_SLACK * np.abs(lo)),
        hi + (_ABS_SLACK + _REL_SLACK * np.abs(hi)),
    )


def affine_interval(
    w: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    wp, wn = np.maximum(w, 0.0), np.minimum(w, 0.0)
    return wp @ lo + wn @ hi + b, wp @ hi + wn @ lo + b


def interval_bounds(network: Network, region: InputRegion) -> tuple[list, list]:
    lowers, uppers = [], []
    lo, hi = region.lower, region.upper
    for k, layer in enumerate(network.layers):
        zl, zu = affine_interval(layer.weight, layer.bias, lo, hi)
        if k == 0 and region.norm == "1" and region.center is not None:
            zc = layer.weight @ region.center + layer.bias
            r = region.eps * np.abs(layer.weight).max(axis=1, initial=0.0)
            zl, zu = np.maximum(zl, zc - r), np.minimum(zu, zc + r)
        zl, zu = outward(zl, zu)
        lowers.append(zl)
        uppers.append(zu)
        lo, hi = (np.maximum(zl, 0.0), np.maximum(zu, 0.0)) if layer.relu else (zl, zu)
    return lowers, uppers


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


def symbolic_bounds(network: Network, region: InputRegion) -> tuple[list, list]:
    base = interval_bounds(network, region)
    lowers: list[np.ndarray] = []
    uppers: list[np.ndarray] = []
    for k in range(len(network.layers)):
        lo, hi = _tighten_layer(network, region, lowers, uppers, k)
        lowers.append(np.maximum(lo, base[0][k]))
        uppers.append(np.minimum(hi, base[1][k]))
    return lowers, uppers


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


def _timing() -> None:
    """Median seconds of the old (numpy) and new (torch) CROWN on the VNN-COMP mnist_fc 256x6
    net and a 784-6x500-10 net (30% dense, the seed's size), in one process, alternating."""
    import statistics
    import time
    from pathlib import Path

    import torch

    from nn2mip.crown import crown_bounds
    from nn2mip.mnist import load_mnist
    from nn2mip.network import network_from_arrays
    from nn2mip.onnx_io import load_onnx
    from nn2mip.region import ball_region

    data = Path(__file__).resolve().parents[3] / "shared" / "data"
    data = data if data.is_dir() else Path("/work/shared/data")
    x = load_mnist(data / "mnist", "test", limit=2)[0]
    rng = np.random.default_rng(0)
    sizes = [784] + [500] * 6 + [10]
    ws = [
        rng.normal(0, np.sqrt(2 / m), (n, m)) * (rng.random((n, m)) < 0.3)
        for m, n in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    nets = {
        "mnist_fc 256x6": load_onnx(data / "vnncomp_mnist_fc/onnx/mnist-net_256x6.onnx"),
        "6x500": network_from_arrays(ws, [rng.normal(0, 0.05, n) for n in sizes[1:]]),
    }
    regions = {"Linf 0.02": ball_region(x[0], 0.02), "L1 5": ball_region(x[1], 5.0, "1")}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, net in nets.items():
            for rname, region in regions.items():
                old, new = [], []
                for _ in range(5):
                    t0 = time.perf_counter()
                    symbolic_bounds(net, region)
                    old.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    crown_bounds(net, region)
                    new.append(time.perf_counter() - t0)
                print(
                    f"torch threads {threads}  {name:15s} {rname:10s} numpy "
                    f"{statistics.median(old):.3f} s  torch {statistics.median(new):.3f} s"
                )


if __name__ == "__main__":
    _timing()
