"""Adversarial training (Madry et al. 2018): cross-entropy on PGD points of an L-inf or L1 ball.

Xiao et al. ("Training for faster adversarial robustness verification via inducing ReLU
stability", 2019) train with it beside weight sparsity and the ReLU-stability loss: a net that
keeps its margin over the ball leaves its verification instances far from the decision boundary,
where a MIP settles the sign at the root instead of searching for a counterexample.
``pruning.training.train(..., adversary=Adversary(...))`` plugs it into any training loop here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nn2mip.errors import InvalidInputError
from nn2mip.pgd import Ball, pgd
from nn2mip.projection import pgd_step_size

ADV_NORMS: tuple[str, ...] = ("inf", "1")


@dataclass(frozen=True)
class Adversary:
    """PGD settings for adversarial training.

    The loss becomes ``(1 - weight) * CE(clean) + weight * CE(PGD points)``; ``rows > 0``
    attacks only the first ``rows`` points of each batch (PGD costs ``steps`` extra passes).
    """

    eps: float
    norm: str = "inf"
    steps: int = 10
    weight: float = 0.5
    domain: tuple[float, float] = (0.0, 1.0)
    rows: int = 0

    def __post_init__(self) -> None:
        if self.norm not in ADV_NORMS:
            choices = ", ".join(ADV_NORMS)
            raise InvalidInputError(
                f"adversarial-training norm must be one of {choices}, got {self.norm!r}"
            )
        if not self.eps > 0:
            raise InvalidInputError(f"adversarial-training eps must be positive, got {self.eps}")
        if self.steps < 1:
            raise InvalidInputError(f"adversarial-training steps must be >= 1, got {self.steps}")
        if not 0.0 < self.weight <= 1.0:
            raise InvalidInputError(
                f"adversarial-training weight must be in (0, 1], got {self.weight}"
            )
        if self.rows < 0:
            raise InvalidInputError(f"adversarial-training rows must be >= 0, got {self.rows}")
        if not self.domain[0] < self.domain[1]:
            raise InvalidInputError(f"domain must be (low, high) with low < high: {self.domain}")

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """PGD points that raise the cross-entropy, each within ``eps`` of its row of ``x`` and
        inside the domain box. Starts at ``x``; the model's parameter gradients are untouched."""
        lo, hi = self.domain
        x0 = x.detach()
        if self.norm == "inf":
            ball = Ball(torch.clamp(x0 - self.eps, min=lo), torch.clamp(x0 + self.eps, max=hi))
        else:
            ball = Ball(torch.full_like(x0, lo), torch.full_like(x0, hi), "1", x0, self.eps)
        ce = nn.CrossEntropyLoss(reduction="none")
        step = pgd_step_size(self.eps, self.norm, self.steps)
        # The per-row loss: its gradient has the mean loss's signs and largest entries.
        return pgd(lambda xa: ce(model(xa), y), x0.clone(), ball, self.steps, step).x

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module
    ) -> torch.Tensor:
        """The mixed clean / adversarial cross-entropy of one batch."""
        clean = loss_fn(model(x), y)
        n = len(y) if self.rows == 0 else min(self.rows, len(y))
        xa = self.perturb(model, x[:n], y[:n])
        return (1.0 - self.weight) * clean + self.weight * loss_fn(model(xa), y[:n])


def robust_accuracy(
    model: nn.Module, x: np.ndarray, y: np.ndarray, adversary: Adversary, batch: int = 500
) -> float:
    """Share of ``x`` still classified right at ``adversary``'s PGD points (an upper bound on
    the verified robust accuracy: PGD can miss counterexamples)."""
    model.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    right = 0
    for s in range(0, len(yt), batch):
        xa = adversary.perturb(model, xt[s : s + batch], yt[s : s + batch])
        with torch.no_grad():
            right += int((model(xa).argmax(dim=1) == yt[s : s + batch]).sum())
    return right / max(len(yt), 1)
