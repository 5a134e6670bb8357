"""The torch bound engine against the numpy CROWN it replaced, on sparse maps, and its pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from crown_reference import interval_bounds as ref_interval
from crown_reference import symbolic_bounds as ref_symbolic
from nets_for_bounds import digits, nets

from nn2mip.bounds import BOUND_METHODS, DEFAULT_BOUND_METHOD, compute_bounds
from nn2mip.crown import (
    backward,
    concretize_box,
    crown_bounds,
    interval_bounds,
    layer_tensors,
    tighten_layer,
)
from nn2mip.mnist import load_mnist
from nn2mip.network import AffineLayer, MaxGroups, Network
from nn2mip.onnx_io import load_onnx
from nn2mip.region import InputRegion, ball_region

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
MNIST_FC = DATA / "vnncomp_mnist_fc" / "onnx" / "mnist-net_256x2.onnx"


def _close(new, ref_lo, ref_hi, rtol=1e-11):
    for a, b, lo, hi in zip(new.lower, new.upper, ref_lo, ref_hi, strict=True):
        np.testing.assert_allclose(a, lo, rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(b, hi, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", ["dense", "pruned", "random"])
@pytest.mark.parametrize("norm,eps", [("inf", 0.05), ("1", 1.0)])
def test_crown_equals_the_numpy_reference_on_digits_nets(name, norm, eps):
    net = nets()[name]
    region = ball_region(digits().x_test[1], eps, norm)
    _close(crown_bounds(net, region), *ref_symbolic(net, region))
    _close(interval_bounds(net, region), *ref_interval(net, region))


@pytest.mark.skipif(not MNIST_FC.exists(), reason=f"VNN-COMP mnist_fc net not found: {MNIST_FC}")
@pytest.mark.parametrize("norm,eps", [("inf", 0.02), ("1", 5.0)])
def test_crown_equals_the_numpy_reference_on_mnist_fc(norm, eps):
    net = load_onnx(MNIST_FC)
    x = load_mnist(DATA / "mnist", "test", limit=1)[0][0]
    region = ball_region(x, eps, norm)
    new = crown_bounds(net, region)
    _close(new, *ref_symbolic(net, region))
    # And sound: sampled inputs stay inside.
    zs = net.pre_activations(region.sample(2000, np.random.default_rng(0)))
    for z, lo, hi in zip(zs, new.lower, new.upper, strict=True):
        assert np.all(z >= lo) and np.all(z <= hi)


def _sparse_copy(net: Network) -> Network:
    return Network(
        tuple(AffineLayer(sp.csr_array(lay.weight), lay.bias, lay.relu) for lay in net.layers)
    )


@pytest.mark.parametrize("method", ["interval", "symbolic", "alpha"])
def test_sparse_maps_give_the_dense_bounds(method):
    net = nets()["pruned"]
    sparse = _sparse_copy(net)
    assert sparse.layers[0].is_sparse and sparse.num_weights == net.num_weights
    region = ball_region(digits().x_test[2], 0.05, "inf")
    a = compute_bounds(net, region, method)
    b = compute_bounds(sparse, region, method)
    _close(b, a.lower, a.upper, rtol=1e-10)
    x = region.sample(50, np.random.default_rng(1))
    np.testing.assert_allclose(sparse.forward(x), net.forward(x), rtol=1e-12, atol=1e-12)


def test_tighten_layer_reproduces_the_layer_crown_gave():
    net = nets()["random"]
    region = ball_region(digits().x_test[0], 0.05, "1")
    b = crown_bounds(net, region)
    lo, hi = tighten_layer(net, region, b.lower[:2], b.upper[:2], 2)
    # crown_bounds also intersects with interval bounds: where those did not win, the same.
    ivl = interval_bounds(net, region)
    lmask, umask = b.lower[2] > ivl.lower[2], b.upper[2] < ivl.upper[2]
    assert lmask.any() and umask.any()
    np.testing.assert_allclose(lo[lmask], b.lower[2][lmask], rtol=1e-12)
    np.testing.assert_allclose(hi[umask], b.upper[2][umask], rtol=1e-12)


def test_backward_through_an_identity_layer_is_exact():
    """With no ReLU in between, the backward pass composes the maps: the bound is the exact
    minimum of the composed affine function over the box."""
    rng = np.random.default_rng(4)
    w1, w2 = rng.normal(size=(5, 3)), rng.normal(size=(4, 5))
    b1, b2 = rng.normal(size=5), rng.normal(size=4)
    lo, hi = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    w = [torch.from_numpy(w1)]
    b = [torch.from_numpy(b1)]
    lam = torch.from_numpy(w2)[None]
    big = torch.full((1, 5), 1e3, dtype=torch.float64)
    lam_x, const, _ = backward(w, b, lam, torch.from_numpy(b2)[None], [-big], [big], relu=[False])
    got = concretize_box(lam_x, const, lo, hi)[0][0].numpy()
    a, c = w2 @ w1, w2 @ b1 + b2
    want = c + np.minimum(a, 0.0).sum(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_max_groups_crown_bounds_are_sound_and_tighter_than_interval(seed):
    rng = np.random.default_rng(seed)
    groups = MaxGroups.from_lists([[0, 1, 2], [2, 3], [4, 5, 0], [6, 7], [7]])
    bias = rng.normal(size=8)
    bias[6] = 20.0  # group [6, 7] decided by its first unit
    net = Network(
        (
            AffineLayer(rng.normal(size=(8, 4)), bias, groups=groups),
            AffineLayer(rng.normal(size=(6, 5)), rng.normal(size=6), relu=True),
            AffineLayer(rng.normal(size=(3, 6)), rng.normal(size=3)),
        )
    )
    region = InputRegion(np.zeros(4), np.ones(4))
    x = region.sample(20000, rng)
    ivl = compute_bounds(net, region, "interval")
    sym = compute_bounds(net, region, "symbolic")
    for b in (ivl, sym):
        for z, lo, hi in zip(net.pre_activations(x), b.lower, b.upper, strict=True):
            assert np.all(z >= lo) and np.all(z <= hi)
    for a, b_, lo, hi in zip(sym.lower, sym.upper, ivl.lower, ivl.upper, strict=True):
        assert np.all(a >= lo) and np.all(b_ <= hi)
    # On the layer after the max, CROWN is strictly tighter somewhere.
    assert np.any(sym.upper[1] - sym.lower[1] < ivl.upper[1] - ivl.lower[1] - 1e-9)


def test_the_table_is_explicit_and_the_default_is_in_it():
    assert set(BOUND_METHODS) == {"interval", "symbolic", "alpha", "lp", "mip"}
    assert DEFAULT_BOUND_METHOD in BOUND_METHODS
    assert [BOUND_METHODS[m].anytime for m in ("interval", "symbolic")] == [False, False]


def test_layer_tensors_keep_sparse_maps_sparse():
    sparse = _sparse_copy(nets()["pruned"])
    w, _, relu = layer_tensors(sparse)
    assert all(t.layout == torch.sparse_coo for t in w)
    assert relu == [layer.relu for layer in sparse.layers]


@pytest.mark.parametrize("norm,eps", [("inf", 0.1), ("1", 1.5)])
def test_crown_equals_the_reference_with_linear_hidden_layers_and_a_relu_output(norm, eps):
    base = nets()["random"]
    acts = [True, False, True, True]  # layer 1 linear, the output with a ReLU
    net = Network(
        tuple(
            AffineLayer(la.weight, la.bias, relu=r) for la, r in zip(base.layers, acts, strict=True)
        )
    )
    region = ball_region(digits().x_test[4], eps, norm)
    new = crown_bounds(net, region)
    _close(new, *ref_symbolic(net, region))
    zs = net.pre_activations(region.sample(5000, np.random.default_rng(2)))
    for z, lo, hi in zip(zs, new.lower, new.upper, strict=True):
        assert np.all(z >= lo) and np.all(z <= hi)


def test_l1_interval_bounds_for_training_hold_on_sampled_points():
    """``pruning.regularizers.interval_bounds_torch`` over L1 balls (the seed recipe's bounds,
    ``domain=None``, and the tighter ball-in-box ones) contain sampled pre-activations."""
    from pruning.regularizers import interval_bounds_torch
    from pruning.training import make_mlp

    model = make_mlp(64, [24, 24], 10, seed=3).double()
    xs = digits().x_test[:3]
    free = interval_bounds_torch(model, torch.from_numpy(xs), 1.5, domain=None, norm="1")
    boxed = interval_bounds_torch(model, torch.from_numpy(xs), 1.5, norm="1")
    from nn2mip.torch_io import from_torch

    net = from_torch(model)
    for i, x in enumerate(xs):
        region = ball_region(x, 1.5, "1")
        zs = net.pre_activations(region.sample(5000, np.random.default_rng(i)))
        for z, (flo, fhi), (blo, bhi) in zip(zs, free, boxed, strict=False):
            flo, fhi, blo, bhi = (t[i].detach().numpy() for t in (flo, fhi, blo, bhi))
            assert np.all(blo >= flo - 1e-12) and np.all(bhi <= fhi + 1e-12)
            assert np.all(z >= blo - 1e-9) and np.all(z <= bhi + 1e-9)
