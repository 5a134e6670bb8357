"""Progressive LP and MIP tightening (MIPVerify's "lp" and "mip" bounds).

Layer by layer, for every ReLU neuron still unstable, minimize and maximize its pre-activation
over the LP relaxation of the big-M formulation of the layers before it (built with the bounds
tightened so far). One HiGHS object per layer: only the objective changes between solves, so
the dual simplex warm-starts from the previous basis. A neuron is done as soon as its sign is
settled: the LP for the side likelier to settle it runs first, and the other is skipped when the
first proves the neuron stable. After each layer, symbolic bounds of the next layer are
recomputed from the tightened ones. Everything is intersected with the previous bounds and
rounded outward, so the result is sound and never looser than the symbolic bounds.

The "mip" method runs the same loop on the LP bounds with the earlier layers' binaries kept: each
neuron's bound is the MIP's dual bound after at most ``neuron_time`` seconds, with a cutoff just
past 0 so that a solve stops as soon as the neuron's sign is proven.
"""

from __future__ import annotations

import time

import highspy
import numpy as np
import scipy.sparse as sp

from nn2mip.bounds_base import NetworkBounds, check_region
from nn2mip.crown import alpha_bounds, tighten_layer
from nn2mip.encoding import add_region, csr_weight, encode_network
from nn2mip.highs_backend import new_highs, to_highs_lp
from nn2mip.mip import MipModel
from nn2mip.network import AffineLayer, Network
from nn2mip.region import InputRegion

# LP optima are only as exact as HiGHS's tolerances (1e-7); widen by more than that.
_LP_ABS_SLACK = 1e-6
_LP_REL_SLACK = 1e-7
# A MIP bound also carries integrality slack (1e-6 times big-M constants of up to ~100).
_MIP_ABS_SLACK = 1e-4
_MIP_REL_SLACK = 1e-6
# A MIP that proves a neuron's sign proves it by this much, so that the slack keeps it stable.
_SIGN_MARGIN = 1e-3
# Seconds each method spends when its caller sets no time limit.
LP_BUDGET = 20.0
MIP_BUDGET = 60.0


def lp_bounds(
    network: Network,
    region: InputRegion,
    time_budget: float = LP_BUDGET,
    start: NetworkBounds | None = None,
    tighten_output: bool = False,
) -> NetworkBounds:
    """LP-tightened bounds, starting from ``start`` (default: alpha-CROWN bounds for a ReLU MLP,
    else symbolic bounds).

    ``time_budget`` (seconds) caps the LP phase; neurons not reached keep their starting bounds.
    ``tighten_output`` also runs LPs for the last (affine) layer.
    """
    check_region(network, region)
    deadline = time.perf_counter() + time_budget
    if start is None:
        # Alpha-CROWN reaches the deep layers in seconds, where LPs would spend the whole budget.
        start = alpha_bounds(network, region, time_budget=time_budget / 2)
    return _progressive(network, region, start, deadline, "lp", tighten_output=tighten_output)


def mip_bounds(
    network: Network,
    region: InputRegion,
    time_budget: float = MIP_BUDGET,
    neuron_time: float = 1.0,
    start: NetworkBounds | None = None,
) -> NetworkBounds:
    """MIP-tightened bounds (MIPVerify's "mip" tightening), starting from ``start`` (default:
    ``lp_bounds`` with a third of the budget).

    Layer by layer, each neuron still unstable gets the dual bound of a MIP over the layers
    before it (their unstable ReLUs as binaries), at most ``neuron_time`` seconds per side; a
    solve stops at once when it proves the neuron's sign. Neurons not reached within
    ``time_budget`` seconds keep their starting bounds. On deep nets this is costly: on a
    VNN-COMP 256x4 net, a second-layer neuron took 1.5-10 s per side with HiGHS (32 binaries).
    """
    check_region(network, region)
    deadline = time.perf_counter() + time_budget
    if start is None:
        start = lp_bounds(network, region, time_budget=time_budget / 3)
    return _progressive(network, region, start, deadline, "mip", neuron_time=neuron_time)


def _progressive(
    network: Network,
    region: InputRegion,
    start: NetworkBounds,
    deadline: float,
    method: str,
    tighten_output: bool = False,
    neuron_time: float | None = None,
) -> NetworkBounds:
    """Layer by layer from ``start``: symbolic re-tightening from the layers before, then an LP
    (or, with ``neuron_time``, a MIP) per neuron still unstable, until ``deadline``."""
    lowers = [lo.copy() for lo in start.lower]
    uppers = [hi.copy() for hi in start.upper]
    # Layer 0 needs no LP: its symbolic bounds are already the exact extremes over the region.
    for k in range(1, len(network.layers)):
        lo, hi = tighten_layer(network, region, lowers[:k], uppers[:k], k)
        lowers[k] = np.maximum(lowers[k], lo)
        uppers[k] = np.minimum(uppers[k], hi)
        layer = network.layers[k]
        if layer.relu:
            todo = np.flatnonzero((lowers[k] < 0.0) & (uppers[k] > 0.0))
        elif tighten_output:
            todo = np.arange(layer.out_features)
        else:
            continue
        if todo.size == 0 or time.perf_counter() >= deadline:
            continue
        _tighten_with_lp(network, region, lowers, uppers, k, todo, deadline, neuron_time)
    return NetworkBounds(lowers, uppers, method)


def _tighten_with_lp(
    network: Network,
    region: InputRegion,
    lowers: list[np.ndarray],
    uppers: list[np.ndarray],
    k: int,
    todo: np.ndarray,
    deadline: float,
    neuron_time: float | None = None,
) -> int:
    """LP bounds for neurons ``todo`` of layer k, in place; returns the number of LPs solved.
    With ``neuron_time``, MIP bounds instead (binaries kept), that many seconds per solve."""
    mip = neuron_time is not None
    model = MipModel()
    if region.norm == "1" and region.center is not None:
        x, sub = _l1_inputs(model, network, region, k)
    else:
        x, sub = add_region(model, region), Network(network.layers[:k])
    enc = encode_network(model, sub, NetworkBounds(lowers[:k], uppers[:k], "lp"), x)
    model.sense = "min"
    lp = to_highs_lp(model)
    if not mip:
        lp.integrality_ = []
    h = new_highs(False)
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    slack_abs, slack_rel = (
        (_MIP_ABS_SLACK, _MIP_REL_SLACK) if mip else (_LP_ABS_SLACK, _LP_REL_SLACK)
    )

    prev_cols, prev_consts = enc.layer_cols[-1], enc.layer_consts[-1]
    var = prev_cols >= 0
    cols = prev_cols[var].astype(np.int32)
    layer = network.layers[k]
    w = csr_weight(layer)
    offsets = layer.bias + w[:, np.flatnonzero(~var)] @ prev_consts[~var]
    w_var = layer.weight[:, var] if not layer.is_sparse else w[:, np.flatnonzero(var)]
    relu = layer.relu
    solves = 0
    for i in todo:
        if not mip:  # a MIP solve sets its own (signed) cost
            h.changeColsCost(cols.size, cols, _row(w_var, i))
        # Solve first the side likelier to settle the sign; skip the other if it does.
        mid = 0.5 * (lowers[k][i] + uppers[k][i])
        sides = ("max", "min") if mid < 0.0 else ("min", "max")
        for side in sides:
            left = deadline - time.perf_counter()
            if left <= 0:
                return solves
            if mip:
                value = _solve_mip(
                    h, _row(w_var, i), cols, side, -offsets[i], min(neuron_time, left)
                )
            else:
                value = _solve(h, side)
            solves += 1
            if value is None:
                continue
            value += offsets[i]
            slack = slack_abs + slack_rel * abs(value)
            if side == "min":
                lowers[k][i] = max(lowers[k][i], value - slack)
            else:
                uppers[k][i] = min(uppers[k][i], value + slack)
            if relu and (lowers[k][i] >= 0.0 or uppers[k][i] <= 0.0):
                break
    return solves


def _l1_inputs(
    model: MipModel, network: Network, region: InputRegion, k: int
) -> tuple[np.ndarray, Network]:
    """Input columns and first k layers for an L1 ball, with ``x = c + p - q``.

    ``p, q >= 0`` up to the box room on each side and ``sum p + q <= eps``: one row instead of
    the ``t >= |x - c|`` rows, whose degeneracy made every LP take thousands of iterations.
    The set of reachable ``x`` is exactly the region, so the pre-activations are unchanged.
    """
    c = region.center
    assert c is not None
    room = np.concatenate([np.maximum(region.upper - c, 0.0), np.maximum(c - region.lower, 0.0)])
    cols = model.add_cols(0.0, room)
    model.add_rows(np.zeros(cols.size), cols, np.ones(cols.size), -np.inf, region.eps, n=1)
    first = network.layers[0]
    stack = sp.hstack if first.is_sparse else np.hstack
    lifted = AffineLayer(
        stack([first.weight, -first.weight]), first.bias + first.weight @ c, first.relu
    )
    return cols, Network((lifted, *network.layers[1:k]))


def _row(w: np.ndarray | sp.csr_array, i: int) -> np.ndarray:
    """Row ``i`` of a dense or sparse matrix as a dense vector."""
    return w[[i]].toarray()[0] if sp.issparse(w) else w[i]


def _solve(h: highspy.Highs, side: str) -> float | None:
    """Optimal value of the current objective, or None if HiGHS did not prove optimality."""
    sense = highspy.ObjSense.kMinimize if side == "min" else highspy.ObjSense.kMaximize
    h.changeObjectiveSense(sense)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return float(h.getInfo().objective_function_value)


def _solve_mip(
    h: highspy.Highs, cost: np.ndarray, cols: np.ndarray, side: str, zero: float, limit: float
) -> float | None:
    """A proven bound on ``cost . x`` (lower for "min", upper for "max") after at most ``limit``
    seconds; the solve stops once it proves the bound ``_SIGN_MARGIN`` beyond ``zero`` (the
    neuron's sign, with room for the slack taken off after).

    HiGHS always minimizes here (the max side negates the cost), so its ``objective_bound``
    is a cutoff with one meaning: when it prunes everything, the minimum is at least the cutoff,
    and otherwise the true minimum is at least min(dual bound, cutoff)."""
    sign = 1.0 if side == "min" else -1.0
    cutoff = sign * zero + _SIGN_MARGIN
    h.changeColsCost(cols.size, cols, sign * cost)
    h.setOptionValue("time_limit", float(limit))
    h.setOptionValue("objective_bound", cutoff)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        return sign * cutoff  # every point with a smaller value was cut off
    db = h.getInfo().mip_dual_bound
    if not np.isfinite(db):
        return None
    return sign * min(db, cutoff)
