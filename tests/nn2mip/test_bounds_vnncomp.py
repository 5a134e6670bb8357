"""Bounds on a VNN-COMP 2022 mnist_fc network (needs the ONNX importer and the shared data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nn2mip.bounds import compute_bounds, interval_bounds
from nn2mip.bounds_lp import lp_bounds
from nn2mip.region import ball_region

ONNX = Path(__file__).resolve().parents[2].parent / "shared/data/vnncomp_mnist_fc/onnx"


# L1 balls are covered on the digits nets; one 784-input region keeps this test short.
@pytest.mark.parametrize("norm,eps", [("inf", 0.02)])
def test_vnncomp_net_bounds_sound_and_nested(norm, eps):
    onnx_io = pytest.importorskip("nn2mip.onnx_io", reason="ONNX import is not on this branch")
    path = ONNX / "mnist-net_256x2.onnx"
    if not path.exists():
        pytest.skip(f"VNN-COMP networks not found at {ONNX}")
    net = onnx_io.load_onnx(path)
    rng = np.random.default_rng(0)
    region = ball_region(rng.random(net.input_size), eps, norm)
    ivl = interval_bounds(net, region)
    sym = compute_bounds(net, region, "symbolic")
    alp = compute_bounds(net, region, "alpha")
    lp = lp_bounds(net, region, time_budget=1.0)
    zmin = [np.full(lo.shape, np.inf) for lo in ivl.lower]
    zmax = [np.full(lo.shape, -np.inf) for lo in ivl.lower]
    for _ in range(10):  # 100,000 samples in chunks: 784 inputs are too wide for one batch
        for k, z in enumerate(net.pre_activations(region.sample(10_000, rng))):
            zmin[k] = np.minimum(zmin[k], z.min(axis=0))
            zmax[k] = np.maximum(zmax[k], z.max(axis=0))
    for inner, outer in ((sym, ivl), (alp, sym), (lp, sym)):
        for k in range(len(net.layers)):
            assert np.all(inner.lower[k] >= outer.lower[k])
            assert np.all(inner.upper[k] <= outer.upper[k])
    for b in (ivl, sym, alp, lp):
        for k in range(len(net.layers)):
            assert np.all(zmin[k] >= b.lower[k]) and np.all(zmax[k] <= b.upper[k])
