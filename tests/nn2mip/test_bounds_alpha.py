"""Alpha-CROWN bounds: sound (sampled inputs, exact MIP extremes), never looser than symbolic."""

from __future__ import annotations

import numpy as np
import pytest
from nets_for_bounds import digits, nets
from test_bounds_symbolic import REGIONS, assert_sound, assert_within

from nn2mip.bounds import compute_bounds
from nn2mip.crown import alpha_bounds
from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs
from nn2mip.network import AffineLayer, Network, network_from_arrays
from nn2mip.region import ball_region, box_region


@pytest.mark.parametrize("name", ["dense", "pruned", "random"])
@pytest.mark.parametrize("norm,eps", REGIONS)
def test_alpha_sound_on_samples_and_within_symbolic(name, norm, eps):
    net = nets()[name]
    region = ball_region(digits().x_test[1], eps, norm)
    sym = compute_bounds(net, region, "symbolic")
    alp = compute_bounds(net, region, "alpha")
    assert alp.method == "alpha"
    assert_within(alp, sym)
    assert_sound(name, norm, eps, alp)


def _exact_extremes(net: Network, region, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of every pre-activation of layer k over the region, by one MIP each."""
    last = net.layers[k]
    sub = Network((*net.layers[:k], AffineLayer(last.weight, last.bias, False)))
    form = build_formulation(sub, region, bound_method="symbolic")
    out = form.encoding.output_cols
    lo, hi = np.empty(last.out_features), np.empty(last.out_features)
    for i in range(last.out_features):
        for sense, dest in (("min", lo), ("max", hi)):
            form.model.set_objective(out[i : i + 1], np.ones(1), sense)
            res = solve_highs(form.model, time_limit=60)
            assert res.status == "optimal"
            dest[i] = res.objective
    return lo, hi


@pytest.mark.parametrize("norm,eps", REGIONS)
def test_alpha_contains_the_exact_extremes_and_beats_symbolic_on_a_deep_net(norm, eps):
    """On a random 4-hidden-layer net the deep layers are where alpha-CROWN gains; its bounds
    must still contain the true extremes, found by MIPs."""
    rng = np.random.default_rng(11)
    sizes = [20, 12, 12, 12, 12, 4]
    ws = [rng.normal(0, 1 / np.sqrt(m), (n, m)) for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
    net = network_from_arrays(ws, [rng.normal(0, 0.1, n) for n in sizes[1:]])
    center = rng.uniform(0.2, 0.8, sizes[0])
    region = ball_region(center, eps * 2, norm) if norm == "inf" else ball_region(center, eps, norm)
    sym = compute_bounds(net, region, "symbolic")
    alp = alpha_bounds(net, region, iters=30)
    assert_within(alp, sym)
    assert np.sum(alp.upper[-1] - alp.lower[-1]) < np.sum(sym.upper[-1] - sym.lower[-1])
    for k in (3, 4):
        lo, hi = _exact_extremes(net, region, k)
        assert np.all(alp.lower[k] <= lo + 1e-6) and np.all(alp.upper[k] >= hi - 1e-6)


def test_point_region_collapses_to_forward_pass():
    net = nets()["dense"]
    x = digits().x_test[3]
    alp = alpha_bounds(net, box_region(x, x))
    z = net.pre_activations(x[None, :])
    for k, zk in enumerate(z):
        np.testing.assert_allclose(alp.lower[k], zk[0], atol=1e-7)
        np.testing.assert_allclose(alp.upper[k], zk[0], atol=1e-7)


def test_other_networks_keep_their_start_bounds():
    """A network ending in a ReLU is outside alpha-CROWN's scope here: start bounds come back."""
    net = nets()["random"]
    relu_out = Network(
        (*net.layers[:-1], AffineLayer(net.layers[-1].weight, net.layers[-1].bias, True))
    )
    region = ball_region(digits().x_test[1], 0.05, "inf")
    start = compute_bounds(relu_out, region, "symbolic")
    assert alpha_bounds(relu_out, region, start=start) is start
