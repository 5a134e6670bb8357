"""Physical compaction of CNNs (against the masked net, float64) and safetensors storage."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nn2mip.lowering import avg_pool2d_map, conv2d_map, max_pool2d_groups
from pruning.compact_conv import (
    architecture,
    compact_cnn,
    conv_channels,
    fold_batchnorm,
    load_cnn,
    save_cnn,
)
from pruning.filters import apply_filter_masks, filter_masks
from pruning.masks import apply_masks
from pruning.structured import neuron_masks
from pruning.training import make_cnn


def _bn_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AvgPool2d(2, stride=1, padding=1),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 12),
        nn.ReLU(),
        nn.Linear(12, 5),
    ).double()
    with torch.no_grad():
        for bn in (model[1], model[5]):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.2, 2.0)
            bn.weight.normal_()
            bn.bias.normal_()
    return model.eval()


def _x(n: int = 16, shape=(2, 8, 8)) -> torch.Tensor:
    return torch.rand(n, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_fold_batchnorm_is_exact() -> None:
    model = _bn_cnn()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d | nn.Dropout) for m in folded)
    torch.testing.assert_close(folded(_x()), model(_x()), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="must follow"):
        fold_batchnorm(nn.Sequential(nn.ReLU(), nn.BatchNorm2d(2)))


def test_compacted_cnn_equals_masked_cnn_and_is_smaller() -> None:
    model = _bn_cnn()
    masks = filter_masks(model, 0.5)
    apply_filter_masks(model, masks)
    lin_masks = neuron_masks(model, 0.25)  # hidden Linear neurons too
    apply_masks(model, lin_masks)
    small = compact_cnn(model, (2, 8, 8))
    torch.testing.assert_close(small(_x()), model(_x()), rtol=1e-10, atol=1e-10)
    assert conv_channels(small) == [3, 4]
    convs = [m for m in small if isinstance(m, nn.Conv2d)]
    lins = [m for m in small if isinstance(m, nn.Linear)]
    assert convs[1].in_channels == 3
    assert lins[0].in_features == 4 * 3 * 3 and lins[0].out_features == 9
    assert lins[1].in_features == 9 and lins[1].out_features == 5
    assert not any(isinstance(m, nn.BatchNorm2d) for m in small)
    assert all(p.dtype == torch.float64 for p in small.parameters())


def test_compaction_keeps_the_masked_nets_channel_order() -> None:
    """Which channels survive, and that their columns in the first Linear move with them."""
    model = _bn_cnn(seed=3)
    masks = {0: torch.ones(6, dtype=bool), 1: torch.tensor([1, 0, 1, 1, 0, 0, 1, 0]).bool()}
    apply_filter_masks(model, masks)
    small = compact_cnn(model, (2, 8, 8))
    folded = fold_batchnorm(model)
    kept = torch.nonzero(masks[1]).flatten()
    torch.testing.assert_close(small[3].weight, folded[3].weight[kept])
    cols = torch.arange(72).reshape(8, 9)[kept].flatten()
    torch.testing.assert_close(small[7].weight, folded[7].weight[:, cols])


def test_unused_and_dead_channels_are_removed_constant_ones_kept() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(3 * 4 * 4, 2),
    ).double()  # fmt: skip
    with torch.no_grad():
        model[0].weight[1] = 0.0
        model[0].bias[1] = -0.5  # dead: relu(-0.5) = 0 everywhere
        model[0].weight[2] = 0.0
        model[0].bias[2] = 0.7  # a nonzero constant channel: must stay
        model[2].weight[:, 3] = 0.0  # channel 3 of conv 0 is never read
        model[5].weight[:, 16:32] = 0.0  # channel 1 of conv 2 is never read
    x = _x(8, (1, 8, 8))
    small = compact_cnn(model, (1, 8, 8))
    assert conv_channels(small) == [2, 2]
    assert small[5].in_features == 2 * 16
    torch.testing.assert_close(small(x), model(x), rtol=1e-12, atol=1e-12)


def test_all_filters_gone_leaves_one_inert_channel() -> None:
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 36, 2))
    model = model.double()
    with torch.no_grad():
        model[3].weight.zero_()
    small = compact_cnn(model, (1, 8, 8))
    assert conv_channels(small) == [1] and small[3].in_features == 36
    x = _x(4, (1, 8, 8))
    torch.testing.assert_close(small(x), model(x), rtol=0, atol=1e-15)


def test_grouped_convolutions_are_left_alone() -> None:
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, groups=2), nn.ReLU(), nn.Conv2d(4, 4, 1, groups=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 36, 3),
    ).double()  # fmt: skip
    with torch.no_grad():
        model[0].weight[1] = 0.0
        model[0].bias[1] = 0.0
    small = compact_cnn(model, (2, 8, 8))
    assert conv_channels(small) == [4, 4]
    x = _x(4)
    torch.testing.assert_close(small(x), model(x), rtol=1e-12, atol=1e-12)


def test_compacted_cnn_lowered_to_sparse_maps_equals_torch() -> None:
    """The compacted net run through nn2mip.lowering in float64 gives torch's outputs."""
    model = _bn_cnn()
    apply_filter_masks(model, filter_masks(model, 0.5))
    small = compact_cnn(model, (2, 8, 8))
    x = _x(4)
    h, shape = x.numpy().reshape(4, -1), (2, 8, 8)
    for m in small:
        if isinstance(m, nn.Conv2d):
            f = conv2d_map(m.weight.detach().numpy(), m.bias.detach().numpy(), shape,
                           m.stride, m.padding, m.dilation, m.groups)  # fmt: skip
        elif isinstance(m, nn.MaxPool2d):
            f = max_pool2d_groups(shape, m.kernel_size, m.stride, m.padding, m.dilation)
        elif isinstance(m, nn.AvgPool2d):
            f = avg_pool2d_map(shape, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                               m.count_include_pad)  # fmt: skip
        elif isinstance(m, nn.ReLU):
            h = np.maximum(h, 0.0)
            continue
        elif isinstance(m, nn.Linear):
            h = h @ m.weight.detach().numpy().T + m.bias.detach().numpy()
            continue
        else:
            continue
        h, shape = f(h), f.out_shape
    np.testing.assert_allclose(h, small(x).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_save_and_load_cnn_round_trip(tmp_path) -> None:
    model = _bn_cnn()
    path = save_cnn(model, tmp_path / "net.safetensors", (2, 8, 8), meta={"accuracy": "0.5"})
    loaded, shape, header = load_cnn(path)
    assert shape == (2, 8, 8) and header["accuracy"] == "0.5"
    assert architecture(loaded) == architecture(model)
    torch.testing.assert_close(loaded(_x()), model(_x()), rtol=0, atol=0)
    cnn = make_cnn()
    save_cnn(cnn, tmp_path / "cnn.safetensors", (1, 28, 28))
    again, _, _ = load_cnn(tmp_path / "cnn.safetensors")
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(again(x), cnn.eval()(x))
    # Not a CNN file: a safetensors file without the header.
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a CNN"):
        load_cnn(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="Tanh"):
        save_cnn(nn.Sequential(nn.Tanh()), tmp_path / "t.safetensors", (1,))


def test_compaction_does_not_touch_the_input_model() -> None:
    model = _bn_cnn()
    before = copy.deepcopy(model.state_dict())
    compact_cnn(model, (2, 8, 8))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
