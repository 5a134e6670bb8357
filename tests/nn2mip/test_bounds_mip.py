"""MIP-tightened bounds: sound, never looser than LP, exact when given time."""

from __future__ import annotations

import numpy as np
import pytest
from nets_for_bounds import digits, nets
from test_bounds_symbolic import assert_sound, assert_within

from nn2mip.bounds import bound_methods, compute_bounds
from nn2mip.bounds_lp import lp_bounds, mip_bounds
from nn2mip.network import network_from_arrays
from nn2mip.region import ball_region, box_region


@pytest.mark.parametrize("name", ["dense", "random"])
@pytest.mark.parametrize("norm,eps", [("inf", 0.05), ("1", 1.0)])
def test_mip_sound_and_within_lp(name, norm, eps):
    net = nets()[name]
    region = ball_region(digits().x_test[1], eps, norm)
    lp = lp_bounds(net, region)
    mip = mip_bounds(net, region, time_budget=30.0, neuron_time=0.5, start=lp)
    assert mip.method == "mip"
    assert_sound(name, norm, eps, mip)
    assert_within(mip, lp)


def _grid_extremes(net, n=1201):
    """Per layer, the min and max pre-activation over a dense grid of [-1, 1]^2."""
    g = np.linspace(-1.0, 1.0, n)
    x = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    zs = net.pre_activations(x)
    return [z.min(axis=0) for z in zs], [z.max(axis=0) for z in zs]


def test_mip_bounds_are_the_exact_extremes_where_lp_is_loose():
    """On a 2-input net, MIP bounds match the extremes over a dense grid (an inner estimate,
    found by the forward pass alone) up to the grid's resolution, where LP bounds stay away."""
    rng = np.random.default_rng(3)
    sizes = [2, 8, 8, 8, 1]
    ws = [rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
    bs = [rng.normal(scale=0.5, size=o) for o in sizes[1:]]
    net = network_from_arrays(ws, bs)
    region = box_region(-np.ones(2), np.ones(2))
    lp = lp_bounds(net, region)
    mip = mip_bounds(net, region, time_budget=60.0, neuron_time=10.0)
    gmin, gmax = _grid_extremes(net)
    lp_gap = mip_gap = 0.0
    for k in range(1, len(sizes) - 2):  # hidden layers after the first (exact already)
        # Sound: never inside the sampled range; tight: within the grid's resolution of it.
        assert np.all(mip.lower[k] <= gmin[k]) and np.all(mip.upper[k] >= gmax[k])
        # A neuron proven stable keeps its LP bound on the settled side: compare the others.
        unstable = (mip.lower[k] < 0) & (mip.upper[k] > 0)
        mip_gap = max(mip_gap, float(np.max((gmin[k] - mip.lower[k])[unstable], initial=0)))
        mip_gap = max(mip_gap, float(np.max((mip.upper[k] - gmax[k])[unstable], initial=0)))
        lp_gap = max(
            lp_gap, float(np.max(gmin[k] - lp.lower[k])), float(np.max(lp.upper[k] - gmax[k]))
        )
    assert mip_gap < 0.05
    assert lp_gap > 0.5  # the test would catch LP bounds posing as MIP bounds
    assert sum(mip.unstable_counts(net)) < sum(lp.unstable_counts(net))


def test_zero_budget_keeps_the_start():
    net = nets()["random"]
    region = ball_region(digits().x_test[2], 0.05)
    lp = lp_bounds(net, region)
    mip = mip_bounds(net, region, time_budget=0.0, start=lp)
    for a, b in zip(mip.lower + mip.upper, lp.lower + lp.upper, strict=True):
        np.testing.assert_array_equal(a, b)


def test_mip_is_a_registered_method():
    assert "mip" in bound_methods()
    net = nets()["pruned"]
    region = ball_region(digits().x_test[0], 0.05)
    assert compute_bounds(net, region, "mip").method == "mip"
