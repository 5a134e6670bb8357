"""LP-tightened bounds: sound, never looser than symbolic, and respecting their budget."""

from __future__ import annotations

import time

import numpy as np
import pytest
from nets_for_bounds import digits, nets
from test_bounds_symbolic import REGIONS, assert_sound, assert_within

from nn2mip.bounds import bound_methods, compute_bounds
from nn2mip.bounds_lp import lp_bounds
from nn2mip.formulation import build_formulation
from nn2mip.region import ball_region


@pytest.mark.parametrize("name", ["dense", "pruned", "random"])
@pytest.mark.parametrize("norm,eps", REGIONS)
def test_lp_sound_and_tighter_than_symbolic(name, norm, eps):
    net = nets()[name]
    region = ball_region(digits().x_test[1], eps, norm)
    lp = compute_bounds(net, region, "lp")
    assert lp.method == "lp"
    assert_sound(name, norm, eps, lp)
    assert_within(lp, compute_bounds(net, region, "symbolic"))


def test_lp_strictly_tightens_some_neuron():
    net = nets()["random"]
    region = ball_region(digits().x_test[1], 1.0, "1")
    lp, sym = compute_bounds(net, region, "lp"), compute_bounds(net, region, "symbolic")
    widths_lp = sum(float(np.sum(u - lo)) for lo, u in zip(lp.lower, lp.upper, strict=True))
    widths_sym = sum(float(np.sum(u - lo)) for lo, u in zip(sym.lower, sym.upper, strict=True))
    assert widths_lp < widths_sym - 1e-3
    assert sum(lp.unstable_counts(net)) <= sum(sym.unstable_counts(net))


def test_zero_budget_returns_symbolic_bounds():
    net = nets()["random"]
    region = ball_region(digits().x_test[2], 0.05)
    t0 = time.perf_counter()
    lp = lp_bounds(net, region, time_budget=0.0)
    assert time.perf_counter() - t0 < 5.0
    assert_within(lp, compute_bounds(net, region, "symbolic"))


def test_methods_registered_and_formulation_uses_them():
    assert {"interval", "symbolic", "lp"} <= set(bound_methods())
    net = nets()["dense"]
    region = ball_region(digits().x_test[0], 0.05)
    sizes = {
        m: build_formulation(net, region, bound_method=m).stats().binaries
        for m in ("interval", "symbolic", "lp")
    }
    assert sizes["interval"] >= sizes["symbolic"] >= sizes["lp"]


def test_output_layer_tightening_is_sound():
    net = nets()["dense"]
    region = ball_region(digits().x_test[1], 0.05, "inf")
    lp = lp_bounds(net, region, tighten_output=True)
    assert_sound("dense", "inf", 0.05, lp)
    sym = compute_bounds(net, region, "symbolic")
    assert_within(lp, sym)
    assert np.sum(lp.upper[-1] - lp.lower[-1]) <= np.sum(sym.upper[-1] - sym.lower[-1])
