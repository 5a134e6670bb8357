"""Unstructured magnitude pruning: scoring by |w|, cutting below a threshold."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from pruning.masks import Masks


def magnitude_masks(
    model: nn.Module,
    amount: float,
    scope: Literal["global", "layer"] = "layer",
    include_output: bool = True,
    existing: Masks | None = None,
) -> Masks:
    """Masks removing the fraction ``amount`` of smallest-magnitude weights.

    ``scope="layer"`` prunes each layer by ``amount``; ``"global"`` ranks all weights together.
    Already-masked weights stay masked and count toward the amount.
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    chosen = lins if include_output else lins[:-1]
    scores = {}
    for i, lin in enumerate(chosen):
        s = lin.weight.detach().abs().clone()
        if existing is not None and i in existing:
            s[~existing[i]] = -1.0
        scores[i] = s
    masks: Masks = {}
    if scope == "global":
        flat = torch.cat([s.flatten() for s in scores.values()])
        k = int(amount * flat.numel())
        thr = torch.kthvalue(flat, k).values if k > 0 else torch.tensor(-2.0)
        for i, s in scores.items():
            masks[i] = s > thr
    elif scope == "layer":
        for i, s in scores.items():
            k = int(amount * s.numel())
            thr = torch.kthvalue(s.flatten(), k).values if k > 0 else torch.tensor(-2.0)
            masks[i] = s > thr
    else:
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    return masks
