"""Unstructured magnitude pruning: scoring by |w|, keeping the largest (exact counts)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from pruning.masks import Masks, keep_top


def magnitude_masks(
    model: nn.Module,
    amount: float,
    scope: Literal["global", "layer"] = "layer",
    include_output: bool = True,
    existing: Masks | None = None,
) -> Masks:
    """Masks removing the fraction ``amount`` of smallest-magnitude weights.

    ``scope="layer"`` prunes each layer by ``amount``; ``"global"`` ranks all weights together.
    Counts are exact, ties broken by position. Already-masked weights stay masked and count
    toward the amount; exact zeros are always cut (they carry nothing) and count too.
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
    # A threshold (``|w| > k-th smallest``) would cut every weight tied with it: a layer of
    # equal weights would lose all of them for any amount.
    kept = keep_top(scores, amount, scope)
    return {i: kept[i] & (s > 0) for i, s in scores.items()}
