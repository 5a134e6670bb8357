"""Small helpers shared by the pruning tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

from torch import nn

from nn2mip.datasets import Dataset
from pruning.training import make_mlp


def fresh(digits: Dataset, hidden: tuple[int, ...] = (32, 32), seed: int = 0) -> nn.Sequential:
    """An untrained MLP for the digits data."""
    return make_mlp(digits.num_features, list(hidden), digits.num_classes, seed=seed)


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all Linear layers."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    zeros = sum(int((lin.weight == 0).sum()) for lin in lins)
    return zeros / sum(lin.weight.numel() for lin in lins)
