"""Magnitude masks: the right fraction, the smallest weights, ties, zeros and existing masks,
checked against a numpy ranking of the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pruning.magnitude import magnitude_masks

FAST = settings(max_examples=40, deadline=None, database=None)


def _mlp(weights: list[np.ndarray]) -> nn.Sequential:
    mods: list[nn.Module] = []
    for w in weights:
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
        mods += [lin, nn.ReLU()]
    return nn.Sequential(*mods[:-1])


def _check_smallest_cut(masks: dict[int, torch.Tensor], weights: list[np.ndarray], k: int):
    """Exactly ``k`` cut, and no cut weight is larger than a kept one."""
    keep = np.concatenate([masks[i].numpy().ravel() for i in range(len(weights))])
    mag = np.concatenate([np.abs(w).ravel() for w in weights])
    assert int((~keep).sum()) == k
    if 0 < k < keep.size:
        assert mag[~keep].max() <= mag[keep].min()


def _random_weights(seed: int, shapes: list[tuple[int, int]], levels: int | None):
    """Random weights; with ``levels`` they take few values (many ties), never zero."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        if levels is None:
            out.append(rng.normal(size=shape).astype(np.float32))
        else:
            v = rng.integers(1, levels + 1, size=shape) * rng.choice([-1, 1], size=shape)
            out.append((0.1 * v).astype(np.float32))
    return out


shapes = st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=3)


@FAST
@given(
    seed=st.integers(0, 10_000),
    dims=shapes,
    amount=st.floats(0.0, 0.95),
    levels=st.sampled_from([None, 1, 2, 3]),
)
def test_layer_scope_cuts_exactly_the_smallest_fraction_of_each_layer(seed, dims, amount, levels):
    sizes = [d[0] for d in dims] + [dims[-1][1]]
    weights = _random_weights(seed, list(zip(sizes[1:], sizes[:-1], strict=True)), levels)
    masks = magnitude_masks(_mlp(weights), amount, scope="layer")
    assert sorted(masks) == list(range(len(weights)))
    for i, w in enumerate(weights):
        assert masks[i].shape == w.shape and masks[i].dtype == torch.bool
        _check_smallest_cut({0: masks[i]}, [w], int(amount * w.size))


@FAST
@given(
    seed=st.integers(0, 10_000),
    dims=shapes,
    amount=st.floats(0.0, 0.95),
    levels=st.sampled_from([None, 1, 2]),
)
def test_global_scope_ranks_all_layers_together(seed, dims, amount, levels):
    sizes = [d[0] for d in dims] + [dims[-1][1]]
    weights = _random_weights(seed, list(zip(sizes[1:], sizes[:-1], strict=True)), levels)
    masks = magnitude_masks(_mlp(weights), amount, scope="global")
    _check_smallest_cut(masks, weights, int(amount * sum(w.size for w in weights)))


def test_equal_weights_lose_only_the_requested_fraction():
    # A threshold at the k-th smallest value used to cut every tied weight: all 16 here.
    m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        m[0].weight.fill_(0.3)
        m[2].weight.copy_(torch.tensor([[1.0, 1, 2, 2], [3, 3, 4, 4]]))
    layer = magnitude_masks(m, 0.5)
    assert int(layer[0].sum()) == 8 and int(layer[1].sum()) == 4
    assert bool(layer[1][1].all()) and not bool(layer[1][0].any())  # 1, 1, 2, 2 are cut
    glob = magnitude_masks(m, 0.3, scope="global")
    assert int(glob[0].sum()) + int(glob[1].sum()) == 24 - 7
    assert bool(glob[1].all())  # the seven cut are all among the tied 0.3s


def test_existing_masks_stay_and_count_toward_the_amount():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 3))
    existing = {0: torch.rand(10, 10) > 0.3}  # about 30 % already cut
    already = int((~existing[0]).sum())
    for amount, cut in ((0.0, already), (0.1, already), (0.6, 60)):
        masks = magnitude_masks(m, amount, existing=existing)
        assert not bool(masks[0][~existing[0]].any()), amount  # never revived, even at 0
        assert int((~masks[0]).sum()) == max(cut, already)
        kept_mag = m[0].weight.detach().abs()[masks[0]]
        cut_fresh = m[0].weight.detach().abs()[existing[0] & ~masks[0]]
        if cut_fresh.numel():
            assert cut_fresh.max() <= kept_mag.min()
        assert int((~masks[1]).sum()) == int(amount * 30)


def test_exact_zeros_are_always_cut_and_count():
    m = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        m[0].weight[:2] = 0.0  # 10 of 20 weights are zero
    for amount, cut in ((0.0, 10), (0.25, 10), (0.5, 10), (0.75, 15)):
        masks = magnitude_masks(m, amount)
        assert not bool(masks[0][:2].any())
        assert int((~masks[0]).sum()) == cut


def test_output_layer_can_be_left_out_and_bad_arguments_fail():
    m = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    assert sorted(magnitude_masks(m, 0.5, include_output=False)) == [0]
    for amount in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="amount"):
            magnitude_masks(m, amount)
    with pytest.raises(ValueError, match="scope"):
        magnitude_masks(m, 0.5, scope="neuron")  # type: ignore[arg-type]
