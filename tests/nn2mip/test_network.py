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


def test_sparse_layers_forward_like_dense(rng):
    import scipy.sparse as sp

    w = rng.normal(size=(7, 5)) * (rng.random((7, 5)) < 0.4)
    dense = AffineLayer(w, np.ones(7), relu=True)
    sparse = AffineLayer(sp.csr_array(w), np.ones(7), relu=True)
    assert sparse.is_sparse and not dense.is_sparse
    assert sparse.weight_nnz() == dense.weight_nnz() == np.count_nonzero(w)
    np.testing.assert_array_equal(sparse.dense_weight(), w)
    x = rng.normal(size=(9, 5))
    np.testing.assert_allclose(
        Network((sparse,)).forward(x), Network((dense,)).forward(x), rtol=1e-14, atol=1e-14
    )
    r, c, v = sparse.nonzero()
    np.testing.assert_array_equal(w[r, c], v)
    assert np.all(v != 0)


def test_max_groups_forward_is_the_max_of_each_group(rng):
    from nn2mip.network import MaxGroups

    groups = MaxGroups.from_lists([[0, 3], [1], [2, 3, 4], [4, 0]])
    layer = AffineLayer(rng.normal(size=(5, 3)), rng.normal(size=5), groups=groups)
    assert layer.activation == "max" and layer.out_features == 4 and layer.units == 5
    net = Network((layer, AffineLayer(rng.normal(size=(2, 4)), np.zeros(2))))
    x = rng.normal(size=(6, 3))
    z = x @ layer.weight.T + layer.bias
    want = np.stack([z[:, [0, 3]].max(1), z[:, 1], z[:, [2, 3, 4]].max(1), z[:, [4, 0]].max(1)], 1)
    np.testing.assert_array_equal(net.pre_activations(x)[1], want @ net.layers[1].weight.T)


def test_bad_max_groups_are_rejected(rng):
    from nn2mip.network import MaxGroups

    with pytest.raises(InvalidNetworkError, match="at least one index"):
        MaxGroups(np.array([0, 1]), np.array([0, 0, 2]))
    with pytest.raises(InvalidNetworkError, match="refers to unit 5"):
        AffineLayer(np.ones((3, 2)), np.zeros(3), groups=MaxGroups.from_lists([[0, 5]]))
    with pytest.raises(InvalidNetworkError, match="one activation"):
        AffineLayer(np.ones((3, 2)), np.zeros(3), relu=True, groups=MaxGroups.from_lists([[0]]))
