import numpy as np
import pytest
import torch
from torch import nn

from nn2mip.errors import InvalidInputError, InvalidNetworkError, UnsupportedLayerError
from nn2mip.network import AffineLayer, Network, network_from_arrays
from nn2mip.torch_io import from_torch, to_torch


def _torch_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)
    )


def test_from_torch_matches_torch_forward(rng):
    model = _torch_net().double()
    net = from_torch(model)
    assert net.describe() == "6-5-4-3"
    assert [layer.relu for layer in net.layers] == [True, True, False]
    x = rng.normal(size=(50, 6))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.forward(x), ref, atol=1e-12)


def test_to_torch_round_trip(rng):
    net = from_torch(_torch_net())
    back = to_torch(net, dtype=torch.float64)
    x = rng.normal(size=(20, 6))
    with torch.no_grad():
        y = back(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, net.forward(x), atol=1e-12)
    again = from_torch(back)
    for a, b in zip(again.layers, net.layers, strict=True):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)


def test_unsupported_layer_names_it():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayerError, match="Tanh"):
        from_torch(model)
    with pytest.raises(UnsupportedLayerError, match="Conv2d"):
        from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2)))


def test_nan_weights_rejected():
    w = np.ones((2, 3))
    w[0, 1] = np.nan
    with pytest.raises(InvalidNetworkError, match="NaN"):
        Network((AffineLayer(w, np.zeros(2), relu=False),))


def test_shape_mismatch_rejected():
    with pytest.raises(InvalidNetworkError, match="expects"):
        network_from_arrays([np.ones((3, 2)), np.ones((2, 4))], [np.zeros(3), np.zeros(2)])


def test_wrong_input_size_rejected():
    net = network_from_arrays([np.ones((3, 2))], [np.zeros(3)])
    with pytest.raises(InvalidInputError, match="2"):
        net.forward(np.zeros(5))
