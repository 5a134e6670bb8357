"""Dynamic sparse training: the sparsity is fixed from the start and the connectivity moves.

SET (Mocanu et al. 2018): periodically drop the smallest-magnitude active weights and regrow as
many at random. RigL (Evci et al. 2020): drop by magnitude, regrow where the dense gradient is
largest, with a cosine-decaying update fraction that stops at ``end_fraction`` of training.
Both keep each layer's count of active weights exactly constant.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import nn

from pruning.masks import Masks
from pruning.training import linear_layers, train


def random_masks(
    model: nn.Module,
    amount: float,
    distribution: Literal["uniform", "erk"] = "uniform",
    seed: int = 0,
) -> Masks:
    """Random masks with sparsity ``amount``: the same in every layer (``uniform``) or
    Erdos-Renyi-Kernel (density proportional to ``(fan_in + fan_out) / (fan_in fan_out)``,
    scaled so the overall sparsity is ``amount``)."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    gen = torch.Generator().manual_seed(seed)
    lins = linear_layers(model)
    sizes = [lin.weight.numel() for lin in lins]
    if distribution == "uniform":
        dens = [1.0 - amount] * len(lins)
    elif distribution == "erk":
        raw = [sum(lin.weight.shape) / lin.weight.numel() for lin in lins]
        dens = _erk_densities(raw, sizes, 1.0 - amount)
    else:
        raise ValueError(f"distribution must be 'uniform' or 'erk', got {distribution!r}")
    masks: Masks = {}
    for i, (lin, d) in enumerate(zip(lins, dens, strict=True)):
        n = lin.weight.numel()
        k = max(1, n - int((1.0 - d) * n))
        flat = torch.zeros(n, dtype=torch.bool)
        flat[torch.randperm(n, generator=gen)[:k]] = True
        masks[i] = flat.reshape(lin.weight.shape)
    return masks


def _erk_densities(raw: list[float], sizes: list[int], density: float) -> list[float]:
    # Layers whose scaled density would exceed 1 are made dense; the rest share the budget.
    dense: set[int] = set()
    while True:
        budget = density * sum(sizes) - sum(sizes[i] for i in dense)
        scale = budget / sum(raw[i] * sizes[i] for i in range(len(sizes)) if i not in dense)
        over = [i for i in range(len(sizes)) if i not in dense and raw[i] * scale > 1.0]
        if not over:
            return [1.0 if i in dense else raw[i] * scale for i in range(len(sizes))]
        dense.update(over)


def drop_and_grow(
    weight: torch.Tensor,
    mask: torch.Tensor,
    fraction: float,
    grow_scores: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the ``fraction`` of active weights with the smallest magnitude and grow the same
    number of inactive ones with the highest ``grow_scores``. Returns (new mask, grown)."""
    n_active = int(mask.sum())
    k = int(fraction * n_active)
    if k == 0:
        return mask, torch.zeros_like(mask)
    mag = torch.where(mask, weight.detach().abs(), torch.full_like(weight, float("inf")))
    drop = torch.argsort(mag.flatten(), stable=True)[:k]
    new = mask.clone().flatten()
    new[drop] = False
    # Growth candidates: connections inactive before this update (a just-dropped one is not
    # regrown at once, which would make the update a no-op).
    cand = torch.where(
        mask.flatten(),
        torch.full_like(grow_scores.flatten(), -float("inf")),
        grow_scores.flatten().to(weight.dtype),
    )
    grow = torch.argsort(cand, descending=True, stable=True)[:k]
    new[grow] = True
    grown = torch.zeros_like(new)
    grown[grow] = True
    return new.reshape(mask.shape), grown.reshape(mask.shape)


def sparse_train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    amount: float,
    method: Literal["set", "rigl"] = "rigl",
    epochs: int = 10,
    update_interval: int = 50,
    drop_fraction: float = 0.3,
    end_fraction: float = 0.75,
    distribution: Literal["uniform", "erk"] = "uniform",
    lr: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 64,
    seed: int = 0,
) -> tuple[nn.Module, Masks]:
    """Train ``model`` from scratch at sparsity ``amount`` with SET or RigL updates every
    ``update_interval`` steps until ``end_fraction`` of training. SET regrows at random with
    fresh small weights; RigL regrows by dense-gradient magnitude starting at zero."""
    if method not in ("set", "rigl"):
        raise ValueError(f"method must be 'set' or 'rigl', got {method!r}")
    masks = random_masks(model, amount, distribution, seed)
    lins = linear_layers(model)
    gen = torch.Generator().manual_seed(seed + 1)
    total = epochs * -(-len(y) // batch_size)
    t_end = int(end_fraction * total)
    state = {"step": 0}
    grads: dict[int, torch.Tensor] = {}

    def keep_grads(m: nn.Module) -> None:
        t = state["step"] + 1
        if method == "rigl" and t % update_interval == 0 and t < t_end:
            for i, lin in enumerate(lins):
                grads[i] = lin.weight.grad.detach().abs().clone()

    def update(m: nn.Module) -> None:
        state["step"] += 1
        t = state["step"]
        if t % update_interval or t >= t_end:
            return
        # RigL's cosine decay of the update fraction; SET keeps it constant.
        frac = drop_fraction * (
            0.5 * (1 + math.cos(math.pi * t / t_end)) if method == "rigl" else 1.0
        )
        for i, lin in enumerate(lins):
            w = lin.weight
            if method == "rigl":
                scores = grads[i]
            else:
                scores = torch.rand(w.shape, generator=gen)
            new, grown = drop_and_grow(w, masks[i], frac, scores)
            with torch.no_grad():
                if method == "set":
                    bound = 1.0 / math.sqrt(w.shape[1])
                    init = (torch.rand(w.shape, generator=gen) * 2 - 1) * bound
                    w.copy_(torch.where(grown, init.to(w.dtype), w))
                else:
                    w.masked_fill_(grown, 0.0)
                w.mul_(new.to(w.dtype))
            masks[i].copy_(new)  # in place: train() masks with this same tensor

    train(
        model,
        x,
        y,
        epochs,
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        masks=masks,
        on_backward=keep_grads,
        after_step=update,
        seed=seed,
    )
    return model, masks
