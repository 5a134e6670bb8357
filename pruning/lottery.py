"""Lottery tickets: iterative magnitude pruning (IMP) with rewinding to initialization
(Frankle & Carbin) or to an early iteration (Frankle et al., "linear mode connectivity")."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from torch import nn

from pruning.magnitude import magnitude_masks
from pruning.masks import Masks, apply_masks, mask_sparsity
from pruning.training import train


@dataclass
class TicketLog:
    """Per round: the sparsity reached and the training accuracy before pruning."""

    sparsity: list[float] = field(default_factory=list)
    rewind_iteration: int = 0


def lottery_ticket(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    amount: float,
    rounds: int = 3,
    epochs: int = 10,
    rewind_iteration: int = 0,
    scope: Literal["global", "layer"] = "global",
    lr: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 64,
    seed: int = 0,
) -> tuple[nn.Module, Masks, TicketLog]:
    """IMP from the model's current (initial) weights: ``rounds`` times train, prune the same
    fraction of the surviving weights by magnitude (so the last round reaches ``amount``), and
    rewind the survivors to their values at ``rewind_iteration`` optimizer steps (0: the
    initialization); finally train the ticket. Returns the trained ticket, its masks, a log."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    rewind_state = copy.deepcopy(model.state_dict())
    log = TicketLog(rewind_iteration=rewind_iteration)
    masks: Masks | None = None
    steps = {"n": 0}

    def snapshot(m: nn.Module) -> None:
        # Remember the weights once, after the chosen number of steps of the dense run.
        steps["n"] += 1
        if steps["n"] == rewind_iteration:
            rewind_state.update(copy.deepcopy(m.state_dict()))

    for r in range(1, rounds + 1):
        hook = snapshot if r == 1 and rewind_iteration > 0 else None
        train(
            model,
            x,
            y,
            epochs,
            lr=lr,
            optimizer=optimizer,
            batch_size=batch_size,
            masks=masks,
            after_step=hook,
            seed=seed,
        )
        target = 1.0 - (1.0 - amount) ** (r / rounds)
        masks = magnitude_masks(model, target, scope=scope, existing=masks)
        log.sparsity.append(mask_sparsity(masks))
        model.load_state_dict(rewind_state)
        apply_masks(model, masks)
    assert masks is not None
    train(
        model,
        x,
        y,
        epochs,
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        masks=masks,
        seed=seed,
    )
    return model, masks, log
