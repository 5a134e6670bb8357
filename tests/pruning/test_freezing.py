"""Freezing at random initialization: chosen parts trained, supermasks, the trainable record."""

from __future__ import annotations

import pytest
import torch
from pruning_helpers import fresh

from nn2mip.serialize import load_network_and_masks
from pruning.freezing import frozen_train, supermask_train
from pruning.masks import mask_sparsity, save_model
from pruning.training import linear_layers


def test_frozen_layers_keep_their_init(digits):
    model = fresh(digits)
    w0 = [lin.weight.detach().clone() for lin in linear_layers(model)]
    b0 = [lin.bias.detach().clone() for lin in linear_layers(model)]
    model, rec = frozen_train(
        model, digits.x_train, digits.y_train, train_layers=[-1], train_biases=True, epochs=2
    )
    lins = linear_layers(model)
    assert torch.equal(lins[0].weight, w0[0]) and torch.equal(lins[1].weight, w0[1])
    assert not torch.equal(lins[2].weight, w0[2])
    assert not torch.equal(lins[0].bias, b0[0])
    assert rec.trainable == {"0.bias": 32, "2.bias": 32, "4.weight": 320, "4.bias": 10}
    assert rec.num_frozen == 64 * 32 + 32 * 32


def test_supermask_keeps_weights_and_reaches_sparsity(tmp_path, digits):
    model = fresh(digits)
    w0 = [lin.weight.detach().clone() for lin in linear_layers(model)]
    out, masks, rec = supermask_train(model, digits.x_train, digits.y_train, 0.6, epochs=2)
    assert mask_sparsity(masks) == pytest.approx(0.6, abs=0.01)
    for i, lin in enumerate(linear_layers(out)):
        torch.testing.assert_close(lin.weight, w0[i] * masks[i])
    assert all(name.endswith("scores") for name in rec.trainable)
    path = save_model(out, str(tmp_path / "sm.safetensors"), masks, meta=rec.as_meta())
    net, stored = load_network_and_masks(path)
    assert net.meta["num_trainable"] == str(rec.num_trainable)
    assert all(m is not None for m in stored)
