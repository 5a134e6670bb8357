"""Structured (whole-neuron) pruning: score neurons by the norm of their incoming weights."""

from __future__ import annotations

import torch
from torch import nn

from pruning.masks import Masks


def neuron_norms(model: nn.Module) -> list[torch.Tensor]:
    """L2 norm of each hidden neuron's incoming row (weights and bias), per hidden layer."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    out = []
    for lin in lins[:-1]:
        w = lin.weight.detach()
        b = lin.bias.detach() if lin.bias is not None else torch.zeros(w.shape[0])
        out.append(torch.sqrt((w**2).sum(dim=1) + b**2))
    return out


def neuron_masks(model: nn.Module, amount: float, existing: Masks | None = None) -> Masks:
    """Masks removing the fraction ``amount`` of lowest-norm neurons in every hidden layer.

    A removed neuron loses its whole incoming row and its outgoing column, so compaction can
    take it out of the network (and the MIP) entirely.
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    masks: Masks = {
        i: (
            existing[i].clone()
            if existing and i in existing
            else torch.ones_like(lin.weight, dtype=torch.bool)
        )
        for i, lin in enumerate(lins)
    }
    for i, norms in enumerate(neuron_norms(model)):
        k = int(amount * norms.numel())
        if k == 0:
            continue
        drop = torch.argsort(norms)[:k]
        masks[i][drop, :] = False
        masks[i + 1][:, drop] = False
        if lins[i].bias is not None:
            with torch.no_grad():
                lins[i].bias[drop] = 0.0
    return masks
