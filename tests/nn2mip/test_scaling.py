"""Folded scaling equals scale -> net -> unscale in float64, and bad scalings are refused."""

from __future__ import annotations

import numpy as np
import pytest

from nn2mip.errors import InvalidInputError, InvalidNetworkError
from nn2mip.network import network_from_arrays
from nn2mip.scaling import Scaling, fold_scaling


def _net(rng, sizes, relu_last=False):
    ws = [rng.normal(size=(b, a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    bs = [rng.normal(size=b) for b in sizes[1:]]
    return network_from_arrays(ws, bs, relu_last=relu_last)


@pytest.mark.parametrize("sizes", [[3, 8, 8, 4], [2, 5], [4, 6, 1]])
def test_folded_equals_scale_net_unscale(rng, sizes):
    net = _net(rng, sizes)
    sc = Scaling(
        input_offset=rng.normal(size=sizes[0]) * 10,
        input_factor=rng.uniform(0.1, 5, size=sizes[0]) * rng.choice([-1, 1], size=sizes[0]),
        output_offset=rng.normal(size=sizes[-1]) * 100,
        output_factor=rng.uniform(0.01, 50, size=sizes[-1]),
    )
    folded = fold_scaling(net, sc)
    x = rng.normal(size=(200, sizes[0])) * 20
    ref = sc.unscale_outputs(net.forward(sc.scale_inputs(x)))
    np.testing.assert_allclose(folded.forward(x), ref, rtol=1e-12, atol=1e-9)
    # the original network is untouched
    assert not np.array_equal(folded.layers[0].weight, net.layers[0].weight)


def test_from_data_minmax_maps_range_to_unit_box(rng):
    x = rng.uniform(-3, 7, size=(100, 2))
    y = rng.uniform(100, 200, size=(100, 3))
    sc = Scaling.from_data(x, y)
    xs = sc.scale_inputs(x)
    assert np.allclose(xs.min(axis=0), 0) and np.allclose(xs.max(axis=0), 1)
    np.testing.assert_allclose(sc.unscale_outputs(sc.scale_outputs(y)), y)
    st = Scaling.from_data(x, y, kind="standard")
    assert np.allclose(st.scale_outputs(y).mean(axis=0), 0, atol=1e-12)


def test_constant_column_gets_factor_one():
    x = np.array([[1.0, 5.0], [2.0, 5.0]])
    sc = Scaling.from_data(x)
    assert np.asarray(sc.input_factor)[1] == 1.0


def test_relu_last_layer(rng):
    net = _net(rng, [3, 4, 2], relu_last=True)
    ok = fold_scaling(net, Scaling(output_factor=np.array([2.0, 3.0])))
    x = rng.normal(size=(50, 3))
    np.testing.assert_allclose(ok.forward(x), net.forward(x) * [2.0, 3.0], rtol=1e-12)
    with pytest.raises(InvalidNetworkError, match="ReLU"):
        fold_scaling(net, Scaling(output_offset=1.0))


def test_bad_scalings_refused(rng):
    net = _net(rng, [3, 4, 2])
    with pytest.raises(InvalidInputError, match="nonzero"):
        fold_scaling(net, Scaling(input_factor=np.array([1.0, 0.0, 1.0])))
    with pytest.raises(InvalidInputError, match="expected 3"):
        fold_scaling(net, Scaling(input_offset=np.zeros(2)))
    with pytest.raises(InvalidInputError, match="NaN"):
        fold_scaling(net, Scaling(output_factor=np.array([1.0, np.nan])))
    with pytest.raises(InvalidInputError, match="kind"):
        Scaling.from_data(np.zeros((3, 2)), kind="log")
