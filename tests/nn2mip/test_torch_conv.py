"""torch import of convolutional nets (Conv2d, BatchNorm, pooling, Flatten) against torch's own
float64 forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nn2mip.errors import UnsupportedLayerError
from nn2mip.torch_io import from_torch, torch_forward
from pruning.training import make_cnn


def _randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.2)
            with torch.no_grad():
                m.weight.copy_(torch.randn(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g))
    return model.eval()


def test_every_torch_conv_layer_matches_torch_float64():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding="same", dilation=(1, 2), groups=2),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d((2, 3), stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(4, 6, 2, stride=(1, 2), padding=(1, 0)),
        nn.ReLU(),
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
        nn.Flatten(),
        nn.Dropout(),
        nn.Linear(144, 8),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        nn.Linear(8, 3),
    )
    _randomize_bn(model, 1)
    x = np.random.default_rng(2).normal(size=(5, 2 * 11 * 9))
    net = from_torch(model, input_shape=(2, 11, 9))
    assert [ly.activation for ly in net.layers] == ["relu", "max", "relu", "relu", "identity"]
    assert net.layers[0].is_sparse  # a convolution never becomes a dense matrix
    ref = torch_forward(model, x.reshape(5, 2, 11, 9))
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-11, atol=1e-11)


def test_make_cnn_and_relu_after_max_pool():
    model = make_cnn((1, 12, 12), channels=(3, 5), hidden=(7,), output_size=4, seed=3)
    x = np.random.default_rng(0).random((4, 144))
    net = from_torch(model, input_shape=(1, 12, 12))
    np.testing.assert_allclose(
        net.forward(x), torch_forward(model, x.reshape(4, 1, 12, 12)), rtol=1e-11, atol=1e-11
    )
    pool_then_relu = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten())
    net = from_torch(pool_then_relu, input_shape=(1, 6, 6))
    assert [ly.activation for ly in net.layers] == ["max", "relu"]
    np.testing.assert_allclose(
        net.forward(x[:, :36]), torch_forward(pool_then_relu, x[:, :36].reshape(4, 1, 6, 6))
    )


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), "reflect"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(2, 2)), "add nn.Flatten"),
        (nn.Sequential(nn.MaxPool2d(2, return_indices=True)), "return_indices"),
        (nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), "divisor_override"),
        (nn.Sequential(nn.Conv2d(1, 2, 9)), "does not fit"),
    ],
)
def test_unencodable_conv_layers_are_one_line_errors(model, match):
    with pytest.raises(UnsupportedLayerError, match=match) as err:
        from_torch(model, input_shape=(1, 5, 5))
    assert "\n" not in str(err.value)


def test_conv_without_input_shape_asks_for_it():
    with pytest.raises(UnsupportedLayerError, match="input_shape"):
        from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2)))
