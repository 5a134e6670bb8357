"""Every stage on a lowered conv net with a max pool: bounds (interval, CROWN, LP) hold on
sampled inputs, the torch forward PGD uses equals the float64 forward pass, and verify_property
agrees with the 2021 consensus on real verivital instances (sat ones with a re-checked witness)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adversarial.vnnlib_problem import verify_property
from nn2mip.bounds import compute_bounds
from nn2mip.onnx_io import load_onnx
from nn2mip.pgd import network_forward
from nn2mip.region import box_region
from nn2mip.vnnlib import load_vnnlib

VERIVITAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vnncomp2021_conv"
VERIVITAL = VERIVITAL / "verivital"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="module")
def maxpool_net():
    return load_onnx(_need(VERIVITAL / "Convnet_maxpool.onnx"))


@pytest.mark.parametrize("method", ["interval", "symbolic"])
def test_conv_bounds_hold_on_samples_and_corners(maxpool_net, method):
    rng = np.random.default_rng(0)
    center = rng.random(784)
    region = box_region(np.clip(center - 0.01, 0, 1), np.clip(center + 0.01, 0, 1))
    b = compute_bounds(maxpool_net, region, method)
    x = region.lower + rng.random((300, 784)) * (region.upper - region.lower)
    corners = np.where(rng.random((100, 784)) < 0.5, region.lower, region.upper)
    zs = maxpool_net.pre_activations(np.vstack([x, corners]))
    for z, lo, hi in zip(zs, b.lower, b.upper, strict=True):
        assert np.all(z >= lo - 1e-9) and np.all(z <= hi + 1e-9)
    if method == "symbolic":  # CROWN is never looser than intervals
        ib = compute_bounds(maxpool_net, region, "interval")
        for lo, ilo in zip(b.lower, ib.lower, strict=True):
            assert np.all(lo >= ilo - 1e-12)


def test_torch_forward_on_sparse_maps_and_max_groups(maxpool_net):
    x = np.random.default_rng(1).random((3, 784))
    y = network_forward(maxpool_net, torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, maxpool_net.forward(x), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize(
    ("net", "prop", "expected"),
    [
        ("Convnet_maxpool.onnx", "maxpool_specs/prop_0_0.004.vnnlib", "unsat"),
        ("Convnet_maxpool.onnx", "maxpool_specs/prop_14_0.004.vnnlib", "sat"),
        ("Convnet_avgpool.onnx", "avgpool_specs/prop_4_0.02.vnnlib", "sat"),
    ],
)
def test_verivital_instances_agree_with_consensus(net, prop, expected):
    network = load_onnx(_need(VERIVITAL / net))
    p = load_vnnlib(_need(VERIVITAL / "specs" / prop))
    r = verify_property(network, p, 120.0)
    assert r.result == expected
    if expected == "sat":
        assert p.is_violated_by(r.x, network.forward(r.x), 1e-9)
