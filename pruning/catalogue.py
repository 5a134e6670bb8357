"""One entry point over the whole catalogue, used by ``nn2mip prune``, ``pruning.recipe``
(a catalogue step of a recipe) and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from pruning.dynamic import sparse_train
from pruning.init_pruning import prune_at_init
from pruning.lottery import lottery_ticket
from pruning.masks import Masks
from pruning.methods import METHODS, REGRESSION
from pruning.regularizers import proximal_prune, spr_prune
from pruning.schedules import gradual_magnitude_prune, magnitude_prune
from pruning.structured import neuron_masks
from pruning.training import loss_kind, train


@dataclass
class MethodConfig:
    """Hyperparameters shared by the catalogue's methods (each uses the ones it needs)."""

    finetune_epochs: int = 10
    epochs: int = 20  # training epochs of the from-scratch methods and of regularized training
    lr: float = 3e-3
    optimizer: str = "adam"
    batch_size: int = 64
    lam: float = 1e-3  # L1 / group-lasso strength (proximal)
    spr_lambda: float = 0.05
    spr_alpha: float = 0.5
    spr_threshold: float = 0.05
    rounds: int = 3  # lottery
    rewind_iteration: int = 0  # lottery: 0 rewinds to the initialization
    iterations: int = 100  # synflow
    update_interval: int = 50  # set / rigl
    drop_fraction: float = 0.3  # set / rigl
    seed: int = 0


def run_method(
    model: nn.Module, x: np.ndarray, y: np.ndarray, method: str, amount: float, cfg: MethodConfig
) -> tuple[nn.Module, Masks]:
    """Apply ``method`` at ``amount`` to ``model`` (trained, or freshly initialized for the
    ``FROM_SCRATCH`` methods) and return the pruned model and its masks (not compacted)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if loss_kind(y) == "mse" and method not in REGRESSION:
        raise ValueError(
            f"{method} scores weights by a cross-entropy gradient and needs class labels; "
            f"for regression targets choose from {', '.join(REGRESSION)}"
        )
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    common = dict(lr=cfg.lr, optimizer=cfg.optimizer, seed=cfg.seed)
    ft = cfg.finetune_epochs
    if method in ("magnitude", "global-magnitude"):
        scope = "layer" if method == "magnitude" else "global"
        return magnitude_prune(model, amount, x, y, scope, ft, **common)
    if method == "gradual":
        return gradual_magnitude_prune(
            model, x, y, amount, epochs=max(ft, 1), batch_size=cfg.batch_size, **common
        )
    if method == "neuron":
        masks = neuron_masks(model, amount)
        train(model, x, y, ft, masks=masks, batch_size=cfg.batch_size, **common)
        return model, masks
    if method in ("l1", "group-lasso"):
        # The proximal step wants plain SGD steps: its threshold is lr * lambda per step.
        return proximal_prune(
            model,
            x,
            y,
            method,
            cfg.lam,
            amount,
            epochs=cfg.epochs,
            lr=max(cfg.lr, 1e-2),
            optimizer="sgd",
            finetune_epochs=ft,
            seed=cfg.seed,
        )
    if method == "spr":
        return spr_prune(
            model,
            x,
            y,
            lam=cfg.spr_lambda,
            alpha=cfg.spr_alpha,
            epochs=cfg.epochs,
            threshold=cfg.spr_threshold,
            amount=amount,
            finetune_epochs=ft,
            **common,
        )
    if method == "lottery":
        model, masks, _ = lottery_ticket(
            model,
            x,
            y,
            amount,
            rounds=cfg.rounds,
            epochs=cfg.epochs,
            rewind_iteration=cfg.rewind_iteration,
            batch_size=cfg.batch_size,
            **common,
        )
        return model, masks
    if method in ("snip", "grasp", "synflow"):
        return prune_at_init(
            model, x, y, method, amount, epochs=cfg.epochs, iterations=cfg.iterations, **common
        )
    return sparse_train(
        model,
        x,
        y,
        amount,
        method,
        epochs=cfg.epochs,
        update_interval=cfg.update_interval,
        drop_fraction=cfg.drop_fraction,
        batch_size=cfg.batch_size,
        **common,
    )
