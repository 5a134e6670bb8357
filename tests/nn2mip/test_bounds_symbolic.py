"""Symbolic bounds: sound on sampled inputs and never looser than interval bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nets_for_bounds import digits, nets, sampled

from nn2mip.bounds import compute_bounds, interval_bounds
from nn2mip.crown import region_concretizer
from nn2mip.region import InputRegion, ball_region, box_region

REGIONS = [("inf", 0.05), ("1", 1.0)]


def assert_sound(name, norm, eps, bounds):
    """No pre-activation of 100,000 sampled inputs of the region leaves the bounds."""
    zmin, zmax = sampled(name, norm, eps)
    for a, b, lo, hi in zip(zmin, zmax, bounds.lower, bounds.upper, strict=True):
        assert np.all(a >= lo) and np.all(b <= hi)


def assert_within(inner, outer):
    for li, ui, lo, uo in zip(inner.lower, inner.upper, outer.lower, outer.upper, strict=True):
        assert np.all(li >= lo) and np.all(ui <= uo)


@pytest.mark.parametrize("name", ["dense", "pruned", "random"])
@pytest.mark.parametrize("norm,eps", REGIONS)
def test_symbolic_sound_and_tighter_than_interval(name, norm, eps):
    net = nets()[name]
    region = ball_region(digits().x_test[1], eps, norm)
    sym = compute_bounds(net, region, "symbolic")
    assert sym.method == "symbolic"
    assert_sound(name, norm, eps, sym)
    ivl = interval_bounds(net, region)
    assert_sound(name, norm, eps, ivl)
    assert_within(sym, ivl)
    # On trained nets it is strictly tighter somewhere (here: the logits).
    assert np.sum(sym.upper[-1] - sym.lower[-1]) < np.sum(ivl.upper[-1] - ivl.lower[-1])


def test_l1_concretization_is_the_exact_lp_value():
    rng = np.random.default_rng(3)
    n = 6
    center = rng.random(n)
    region = InputRegion(np.zeros(n), np.ones(n), center=center, eps=0.7, norm="1")
    a = rng.normal(size=(4, n))
    conc = region_concretizer(region)
    lam = torch.from_numpy(np.concatenate([a, -a]))[None]
    lb = conc(lam, torch.zeros(1, 8, dtype=torch.float64))[0][0].numpy()
    lo, hi = lb[:4], -lb[4:]
    # Brute force over the vertices of {box ∩ L1 ball} by dense sampling plus LP via scipy.
    from scipy.optimize import linprog

    for i in range(4):
        for sign, want in ((1.0, lo[i]), (-1.0, -hi[i])):
            # variables x (n), t (n): t >= |x - c|, sum t <= eps
            c = np.concatenate([sign * a[i], np.zeros(n)])
            eye = np.eye(n)
            a_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, n)), np.ones((1, n))]])
            b_ub = np.concatenate([center, -center, [region.eps]])
            res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=[(0, 1)] * n + [(0, None)] * n)
            assert res.fun == pytest.approx(want, abs=1e-9)


def test_point_region_collapses_to_forward_pass():
    net = nets()["random"]
    x = np.random.default_rng(0).random(64)
    b = compute_bounds(net, box_region(x, x), "symbolic")
    for z, lo, hi in zip(net.pre_activations(x), b.lower, b.upper, strict=True):
        assert np.all(hi - lo < 1e-6) and np.all((lo <= z[0]) & (z[0] <= hi))
