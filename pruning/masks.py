"""Explicit weight masks: one boolean tensor per Linear layer, ``True`` = kept."""

from __future__ import annotations

import torch
from torch import nn

# Keyed by the layer's index among the model's Linear layers.
Masks = dict[int, torch.Tensor]


def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the masked weights in place (and the bias of fully removed neurons)."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, mask in masks.items():
            lins[i].weight.mul_(mask.to(lins[i].weight.dtype))


def mask_sparsity(masks: Masks) -> float:
    """Fraction of masked-out weights over all masked layers."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    return 1.0 - kept / total if total else 0.0


def masks_from_zeros(model: nn.Module) -> Masks:
    """Masks that keep exactly the currently nonzero weights."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return {i: lin.weight.detach() != 0 for i, lin in enumerate(lins)}
