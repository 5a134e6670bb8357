"""torch <-> Network conversion, checked against torch's own float64 forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from nn2mip.errors import UnsupportedLayerError
from nn2mip.network import AffineLayer, Network
from nn2mip.torch_io import from_torch, to_torch, torch_forward

FAST = settings(max_examples=25, deadline=None, database=None)


def _random_mlp(seed: int, sizes: list[int], bias: bool, final_relu: bool) -> nn.Sequential:
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[i], sizes[i + 1], bias=bias))
        if i < len(sizes) - 2 or final_relu:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def _torch64(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The reference: torch's forward pass on a float64 copy."""
    m = model.to(torch.float64).eval()
    with torch.no_grad():
        return m(torch.from_numpy(x)).numpy()


@FAST
@given(
    seed=st.integers(0, 10_000),
    sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5),
    bias=st.booleans(),
    final_relu=st.booleans(),
)
def test_from_torch_equals_torch_forward_in_float64(seed, sizes, bias, final_relu):
    model = _random_mlp(seed, sizes, bias, final_relu)
    net = from_torch(model)
    assert [layer.in_features for layer in net.layers] == sizes[:-1]
    assert net.output_size == sizes[-1]
    assert net.layers[-1].relu == final_relu
    x = np.random.default_rng(seed).normal(scale=3.0, size=(16, sizes[0]))
    np.testing.assert_allclose(net.forward(x), _torch64(model, x), rtol=0, atol=1e-12)


@FAST
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4))
def test_to_torch_then_from_torch_is_exact(seed, sizes):
    rng = np.random.default_rng(seed)
    layers = tuple(
        AffineLayer(rng.normal(size=(o, i)), rng.normal(size=o), relu=k < len(sizes) - 2)
        for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    )
    net = Network(layers)
    back = to_torch(net, dtype=torch.float64)
    x = rng.uniform(-2, 2, size=(10, sizes[0]))
    np.testing.assert_allclose(_torch64(back, x), net.forward(x), rtol=0, atol=1e-12)
    again = from_torch(back)
    for a, b in zip(again.layers, net.layers, strict=True):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
        assert a.relu == b.relu


def test_to_torch_default_is_float32_rounding_of_the_weights():
    rng = np.random.default_rng(0)
    net = Network((AffineLayer(rng.normal(size=(3, 4)), rng.normal(size=3), relu=True),))
    model = to_torch(net)
    lin = model[0]
    assert lin.weight.dtype == torch.float32
    np.testing.assert_array_equal(lin.weight.detach().numpy(), net.layers[0].weight.astype("f4"))
    assert isinstance(model[1], nn.ReLU) and len(model) == 2


def test_nested_sequential_and_pass_through_layers_are_skipped():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.5)),
        nn.Identity(),
        nn.Sequential(nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.ReLU())),
        nn.Linear(4, 2),
    )
    net = from_torch(model)
    assert [layer.relu for layer in net.layers] == [True, True, False]
    x = np.random.default_rng(1).normal(size=(30, 6))
    np.testing.assert_allclose(net.forward(x), _torch64(model, x), rtol=0, atol=1e-12)


def test_single_linear_and_torch_pruned_weights():
    torch.manual_seed(0)
    lin = nn.Linear(8, 3)
    prune.l1_unstructured(lin, "weight", amount=0.5)  # torch's masks live in ``weight``
    net = from_torch(lin)
    assert net.num_weights == 12  # half of 24 are exact zeros and do not count
    x = np.random.default_rng(2).normal(size=(5, 8))
    np.testing.assert_allclose(net.forward(x), _torch64(nn.Sequential(lin), x), atol=1e-12)


def test_torch_forward_is_float64_and_leaves_the_model_alone():
    model = _random_mlp(4, [5, 4, 3], bias=True, final_relu=False)
    x = np.random.default_rng(4).normal(size=(7, 5))
    y = torch_forward(model, x)
    assert y.dtype == np.float64 and y.shape == (7, 3)
    assert next(model.parameters()).dtype == torch.float32
    np.testing.assert_allclose(y, from_torch(model).forward(x), rtol=0, atol=1e-12)
    assert torch_forward(model, x[0]).shape == (1, 3)  # one point is a batch of one


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)), "'1' of type Tanh"),
        (nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU()), "LeakyReLU"),
        (nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), "LayerNorm"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2)), "Conv2d"),
        (nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.Sigmoid())), "'0.1' of type Sigmoid"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 3)), "ReLU before any Linear"),
        (nn.Sequential(nn.Flatten(), nn.Dropout()), "no Linear layer"),
        (nn.Sequential(), "no Linear layer"),
        (nn.ReLU(), "expected a torch.nn.Sequential, got ReLU"),
        (nn.ModuleList([nn.Linear(2, 2)]), "got ModuleList"),
    ],
)
def test_unsupported_models_raise_the_project_error(model, match):
    with pytest.raises(UnsupportedLayerError, match=match) as err:
        from_torch(model)
    assert "\n" not in str(err.value)  # one-line message for the CLI
