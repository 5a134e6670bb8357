"""A dense network and a pruned copy of it, trained the same way: the pair that the demo and the
benchmarks compare (same data, same seed, so any difference is the pruning's)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import nn

from nn2mip.datasets import Dataset
from pruning.magnitude import magnitude_masks
from pruning.structured import neuron_masks
from pruning.training import make_mlp, train


@dataclass
class PairConfig:
    """How the pair is made: a dense MLP, then a copy with ``neuron_amount`` of each layer's
    neurons and ``weight_amount`` of the remaining weights pruned, fine-tuned under its masks."""

    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 30
    neuron_amount: float = 0.5
    weight_amount: float = 0.7
    finetune_epochs: int = 15
    seed: int = 0


def train_pair(data: Dataset, cfg: PairConfig | None = None) -> tuple[nn.Module, nn.Module]:
    """A dense MLP and a copy pruned (whole neurons, then small weights) and fine-tuned."""
    cfg = cfg or PairConfig()
    dense = make_mlp(data.num_features, cfg.hidden, data.num_classes, seed=cfg.seed)
    train(dense, data.x_train, data.y_train, epochs=cfg.epochs, lr=3e-3, seed=cfg.seed)
    pruned = copy.deepcopy(dense)
    masks = neuron_masks(pruned, cfg.neuron_amount)
    masks = magnitude_masks(pruned, cfg.weight_amount, existing=masks)
    train(
        pruned,
        data.x_train,
        data.y_train,
        epochs=cfg.finetune_epochs,
        lr=1e-3,
        masks=masks,
        seed=cfg.seed,
    )
    return dense, pruned
