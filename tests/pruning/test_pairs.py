"""``train_pair``: the dense net stays dense; the copy loses the neurons and weights asked."""

from __future__ import annotations

import torch

from pruning.pairs import PairConfig, train_pair


def test_pair_prunes_the_copy_only(digits):
    cfg = PairConfig(hidden=(16, 16), epochs=2, finetune_epochs=1, neuron_amount=0.5)
    dense, pruned = train_pair(digits, cfg)
    dense_w = [m.weight for m in dense if isinstance(m, torch.nn.Linear)]
    pruned_w = [m.weight for m in pruned if isinstance(m, torch.nn.Linear)]
    assert all(bool((w != 0).all()) for w in dense_w)
    for w in pruned_w[:-1]:  # hidden layers: half of the neurons have no incoming weight left
        assert int((w.abs().sum(dim=1) == 0).sum()) == 8
    n_dense = sum(int((w != 0).sum()) for w in dense_w)
    n_pruned = sum(int((w != 0).sum()) for w in pruned_w)
    assert n_pruned < 0.5 * n_dense
