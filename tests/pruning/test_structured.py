"""Structured masks drop whole hidden neurons, the lowest by the norm of their incoming row;
the masked net computes what the physically smaller net computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pruning.masks import apply_masks
from pruning.structured import neuron_masks, neuron_norms
from pruning.training import linear_layers, make_mlp

FAST = settings(max_examples=30, deadline=None, database=None)


def _numpy_norms(model: nn.Module) -> list[np.ndarray]:
    out = []
    for lin in linear_layers(model)[:-1]:
        w = lin.weight.detach().double().numpy()
        b = lin.bias.detach().double().numpy() if lin.bias is not None else np.zeros(w.shape[0])
        out.append(np.sqrt((w**2).sum(axis=1) + b**2))
    return out


def _forward_without(model: nn.Module, dropped: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Reference: delete the dropped neurons' rows and columns, then run the smaller net."""
    lins = linear_layers(model)
    keep_in = np.arange(lins[0].in_features)
    h = x
    for i, lin in enumerate(lins):
        keep_out = (
            np.setdiff1d(np.arange(lin.out_features), dropped[i])
            if i < len(lins) - 1
            else np.arange(lin.out_features)
        )
        w = lin.weight.detach().double().numpy()[np.ix_(keep_out, keep_in)]
        h = h @ w.T + lin.bias.detach().double().numpy()[keep_out]
        if i < len(lins) - 1:
            h = np.maximum(h, 0.0)
        keep_in = keep_out
    return h


@FAST
@given(
    seed=st.integers(0, 10_000),
    hidden=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    amount=st.floats(0.0, 0.95),
)
def test_lowest_norm_neurons_are_dropped_whole(seed, hidden, amount):
    model = make_mlp(5, hidden, 3, seed=seed).double()
    norms = _numpy_norms(model)
    for got, ref in zip(neuron_norms(model), norms, strict=True):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    masks = neuron_masks(model, amount)
    lins = linear_layers(model)
    assert sorted(masks) == list(range(len(lins)))
    dropped = []
    for i, n in enumerate(norms):
        gone = np.flatnonzero(~masks[i].numpy().any(axis=1))
        dropped.append(gone)
        assert gone.size == int(amount * n.size)
        if 0 < gone.size < n.size:
            assert n[gone].max() <= np.delete(n, gone).min()
        assert lins[i].bias[gone].abs().sum() == 0.0
    # Whole rows and the matching outgoing columns out, nothing else; output neurons all stay.
    for i, lin in enumerate(lins):
        rows = np.ones(lin.out_features, bool)
        cols = np.ones(lin.in_features, bool)
        if i < len(lins) - 1:
            rows[dropped[i]] = False
        if i > 0:
            cols[dropped[i - 1]] = False
        np.testing.assert_array_equal(masks[i].numpy(), np.outer(rows, cols))

    x = np.random.default_rng(seed).uniform(-1, 1, size=(20, 5))
    ref = _forward_without(model, dropped, x)
    apply_masks(model, masks)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    for lin, gone in zip(lins[:-1], dropped, strict=True):  # exactly the dropped rows are zero
        zero_rows = (lin.weight == 0).all(dim=1) & (lin.bias == 0)
        assert np.flatnonzero(zero_rows.numpy()).tolist() == gone.tolist()


def test_existing_masks_are_kept_and_not_changed():
    model = make_mlp(6, [8, 8], 2, seed=3)
    existing = {0: torch.rand(8, 6, generator=torch.Generator().manual_seed(0)) > 0.5}
    before = existing[0].clone()
    masks = neuron_masks(model, 0.25, existing=existing)
    assert torch.equal(existing[0], before)  # cloned, not modified
    assert not bool(masks[0][~before].any())
    assert int((~masks[0].any(dim=1)).sum()) >= 2


def test_pruning_again_drops_the_same_neurons():
    # A dropped neuron has a zero row and a zero bias: the lowest norm next time too.
    model = make_mlp(6, [10, 10], 2, seed=4)
    first = neuron_masks(model, 0.4)
    apply_masks(model, first)
    second = neuron_masks(model, 0.4, existing=first)
    for i in first:
        assert torch.equal(first[i], second[i])


def test_zero_amount_biasless_layers_and_bad_amounts():
    model = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 2))
    w = model[0].weight.detach().numpy()
    np.testing.assert_allclose(neuron_norms(model)[0].numpy(), np.linalg.norm(w, axis=1), 1e-6)
    assert all(bool(m.all()) for m in neuron_masks(model, 0.0).values())
    masks = neuron_masks(model, 0.5)
    assert int((~masks[0].any(dim=1)).sum()) == 3
    for amount in (-0.1, 1.0):
        with pytest.raises(ValueError, match="amount"):
            neuron_masks(model, amount)
