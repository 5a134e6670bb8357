"""Scheduling: how much to prune and when (Zhu & Gupta's cubic schedule), and the magnitude
pruning driver, one-shot or gradual, layerwise or global."""

from __future__ import annotations

from typing import Literal

import numpy as np
from torch import nn

from pruning.magnitude import magnitude_masks
from pruning.masks import Masks, apply_masks
from pruning.training import train


def cubic_sparsity(
    step: int, final: float, start: int, n: int, interval: int = 1, initial: float = 0.0
) -> float:
    """Zhu & Gupta: ``s_t = s_f + (s_0 - s_f) (1 - (t - t0) / (n dt))^3``.

    ``start`` is t0, ``n`` the number of pruning steps and ``interval`` dt; ``t`` is rounded down
    to a multiple of dt (pruning happens every dt steps), held at s_0 before t0 and s_f after.
    """
    if n <= 0 or interval <= 0:
        raise ValueError("n and interval must be positive")
    if step < start:
        return initial
    t = min((step - start) // interval * interval, n * interval)
    return final + (initial - final) * (1.0 - t / (n * interval)) ** 3


def magnitude_prune(
    model: nn.Module,
    amount: float,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    scope: Literal["global", "layer"] = "layer",
    finetune_epochs: int = 0,
    lr: float = 1e-3,
    optimizer: str = "adam",
    seed: int = 0,
) -> tuple[nn.Module, Masks]:
    """One-shot magnitude pruning to ``amount``, then (with data) masked fine-tuning."""
    masks = magnitude_masks(model, amount, scope=scope)
    if finetune_epochs > 0 and x is not None and y is not None:
        train(model, x, y, finetune_epochs, lr=lr, optimizer=optimizer, masks=masks, seed=seed)
    else:
        apply_masks(model, masks)
    return model, masks


def gradual_magnitude_prune(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    amount: float,
    epochs: int = 10,
    scope: Literal["global", "layer"] = "layer",
    start_fraction: float = 0.0,
    end_fraction: float = 0.7,
    interval: int = 10,
    initial: float = 0.0,
    lr: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 64,
    seed: int = 0,
) -> tuple[nn.Module, Masks]:
    """Train while pruning along the cubic schedule, every ``interval`` steps, from
    ``start_fraction`` to ``end_fraction`` of training; the remaining steps fine-tune at the final
    sparsity ``amount``."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    steps_per_epoch = -(-len(y) // batch_size)
    total = epochs * steps_per_epoch
    t0 = int(start_fraction * total)
    n = max(1, (int(end_fraction * total) - t0) // interval)
    masks: Masks = magnitude_masks(model, initial, scope=scope)
    state = {"step": 0}

    def prune_step(m: nn.Module) -> None:
        state["step"] += 1
        t = state["step"]
        if t >= t0 and (t - t0) % interval == 0 and t <= t0 + n * interval:
            s = cubic_sparsity(t, amount, t0, n, interval, initial)
            # Updating in place: train() re-applies these masks after every later step.
            masks.update(magnitude_masks(m, s, scope=scope, existing=masks))
            apply_masks(m, masks)

    train(
        model,
        x,
        y,
        epochs,
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        masks=masks,
        after_step=prune_step,
        seed=seed,
    )
    # Guarantee the target even when training ended before the schedule did.
    masks.update(magnitude_masks(model, amount, scope=scope, existing=masks))
    apply_masks(model, masks)
    return model, masks
