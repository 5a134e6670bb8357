"""safetensors round trip of sparse maps and max-group layers, and strict refusal of
inconsistent CSR arrays and groups."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from nn2mip.errors import ModelFileError
from nn2mip.lowering import conv2d_map, max_pool2d_groups
from nn2mip.network import AffineLayer, MaxGroups, Network
from nn2mip.serialize import load_network, save_network


def _conv_net(rng: np.random.Generator) -> Network:
    conv = conv2d_map(rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3), (1, 6, 6), padding=1)
    pool = max_pool2d_groups((3, 6, 6), 2)
    n = conv.matrix.shape[0]
    return Network(
        (
            AffineLayer(conv.matrix, conv.bias, relu=True),
            AffineLayer(
                sp.identity(n, format="csr"), np.zeros(n), groups=MaxGroups(pool.index, pool.start)
            ),
            AffineLayer(rng.normal(size=(4, 27)), rng.normal(size=4)),
        ),
        meta={"source": "test"},
    )


def test_sparse_and_max_group_layers_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(0)
    net = _conv_net(rng)
    back = load_network(save_network(net, tmp_path / "c.safetensors"))
    assert [ly.activation for ly in back.layers] == ["relu", "max", "identity"]
    assert back.layers[0].is_sparse and back.layers[1].is_sparse
    assert (back.layers[0].weight != net.layers[0].weight).nnz == 0
    np.testing.assert_array_equal(back.layers[1].groups.index, net.layers[1].groups.index)
    np.testing.assert_array_equal(back.layers[1].groups.start, net.layers[1].groups.start)
    x = rng.normal(size=(5, 36))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    assert back.meta["source"] == "test"


def _edit(tmp_path, net, change):
    path = save_network(net, tmp_path / "c.safetensors")
    with safe_open(str(path), framework="numpy") as f:
        header = f.metadata()
    tensors = load_file(str(path))
    change(tensors, header)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=header)
    return bad


def _set(name, value):
    def change(t, h):
        t[name] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("layers.0.weight.indptr", np.arange(5, dtype=np.int64)), "indptr"),
        (_set("layers.0.weight.indices", np.zeros(3, dtype=np.int64)), "values"),
        (lambda t, h: t["layers.0.weight.indices"].__setitem__(0, 99), "outside"),
        (lambda t, h: t["layers.0.weight.indices"].__setitem__(1, 0), "increasing"),
        (lambda t, h: t["layers.0.weight.data"].__setitem__(0, np.nan), "NaN"),
        (_set("layers.0.weight.indptr", np.zeros(109, dtype=np.float64)), "integer"),
        (lambda t, h: t.pop("layers.0.weight.indices"), "missing"),
        (_set("layers.0.weight", np.ones((108, 36))), "both"),
        (lambda t, h: t["layers.1.groups.index"].__setitem__(0, 10**6), "outside"),
        (lambda t, h: t["layers.1.groups.start"].__setitem__(1, 0), "at least one"),
        (lambda t, h: h.__setitem__("relu", "[true, true, false]"), "ReLU too"),
        (_set("layers.0.mask", np.ones((108, 36), dtype=np.uint8)), "sparse layer"),
        (_set("layers.2.groups.start", np.array([0, 1])), "missing"),
    ],
)
def test_inconsistent_sparse_or_group_tensors_are_refused(tmp_path, change, message):
    net = _conv_net(np.random.default_rng(1))
    bad = _edit(tmp_path, net, change)
    with pytest.raises(ModelFileError, match=message) as info:
        load_network(bad)
    assert "\n" not in str(info.value)
