"""Freezing at random initialization: keep weights at their initial values and train only a
chosen part (biases, some layers), or learn a supermask over frozen weights (edge-popup,
Ramanujan et al. 2020). What is trainable is recorded so it can be stored with the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pruning.masks import Masks, apply_masks
from pruning.training import linear_layers, train


@dataclass
class TrainableRecord:
    """Which parameters were trained: names with their sizes, and the totals."""

    trainable: dict[str, int] = field(default_factory=dict)
    frozen: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def num_trainable(self) -> int:
        return sum(self.trainable.values())

    @property
    def num_frozen(self) -> int:
        return sum(self.frozen.values())

    def as_meta(self) -> dict[str, str]:
        """String fields for ``save_network(meta=...)``."""
        return {
            "trainable": ",".join(self.trainable),
            "num_trainable": str(self.num_trainable),
            "num_frozen": str(self.num_frozen),
            "freezing": self.note,
        }


def record_trainable(model: nn.Module, note: str = "") -> TrainableRecord:
    """The current ``requires_grad`` state of every parameter."""
    rec = TrainableRecord(note=note)
    for name, p in model.named_parameters():
        (rec.trainable if p.requires_grad else rec.frozen)[name] = p.numel()
    return rec


def freeze(
    model: nn.Module, train_layers: Sequence[int] = (), train_biases: bool = False
) -> TrainableRecord:
    """Freeze every parameter except the Linear layers listed in ``train_layers`` (indices among
    Linear layers; -1 is the output layer) and, with ``train_biases``, all biases."""
    lins = linear_layers(model)
    chosen = {i % len(lins) for i in train_layers}
    for i, lin in enumerate(lins):
        lin.weight.requires_grad_(i in chosen)
        if lin.bias is not None:
            lin.bias.requires_grad_(i in chosen or train_biases)
    note = f"layers={sorted(chosen)} biases={train_biases}"
    return record_trainable(model, note)


class _TopK(torch.autograd.Function):
    """Mask of the top-k scores; the straight-through estimator passes gradients unchanged."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, keep: float) -> torch.Tensor:  # noqa: ANN001
        k = max(1, int(round(keep * scores.numel())))
        out = torch.zeros_like(scores)
        out.view(-1)[torch.topk(scores.flatten(), k).indices] = 1.0
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        return grad, None


class SupermaskLinear(nn.Module):
    """A Linear layer with frozen weight and bias and trainable scores; only the top
    ``keep`` fraction of weights by score is used."""

    def __init__(self, lin: nn.Linear, keep: float, seed: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(lin.weight.detach().clone(), requires_grad=False)
        b = lin.bias.detach().clone() if lin.bias is not None else torch.zeros(lin.out_features)
        self.bias = nn.Parameter(b, requires_grad=False)
        gen = torch.Generator().manual_seed(seed)
        self.scores = nn.Parameter(torch.rand(self.weight.shape, generator=gen) * 0.01 + 1e-3)
        self.keep = keep

    def mask(self) -> torch.Tensor:
        return _TopK.apply(self.scores.abs(), self.keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask(), self.bias)


def supermask_train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    amount: float,
    epochs: int = 10,
    lr: float = 0.1,
    optimizer: str = "sgd",
    seed: int = 0,
) -> tuple[nn.Sequential, Masks, TrainableRecord]:
    """Edge-popup: the weights stay at their initial values, only per-weight scores are learned
    and each layer keeps its top ``1 - amount`` weights (it needs wide layers to be accurate).
    Returns a plain ``nn.Sequential`` with the masked frozen weights, the masks, and the
    trainable record (scores only)."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    mods = [
        SupermaskLinear(m, 1.0 - amount, seed + i) if isinstance(m, nn.Linear) else m
        for i, m in enumerate(model)
    ]
    sm = nn.Sequential(*mods)
    rec = record_trainable(sm, note=f"supermask over frozen init, keep {1.0 - amount:.4f}")
    train(sm, x, y, epochs, lr=lr, optimizer=optimizer, seed=seed)
    out_mods: list[nn.Module] = []
    masks: Masks = {}
    for m in sm:
        if isinstance(m, SupermaskLinear):
            lin = nn.Linear(m.weight.shape[1], m.weight.shape[0])
            mask = m.mask().detach().bool()
            with torch.no_grad():
                lin.weight.copy_(m.weight)
                lin.bias.copy_(m.bias)
            masks[len(masks)] = mask
            out_mods.append(lin)
        else:
            out_mods.append(m)
    out = nn.Sequential(*out_mods)
    apply_masks(out, masks)
    return out, masks, rec


def frozen_train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    train_layers: Sequence[int] = (-1,),
    train_biases: bool = False,
    epochs: int = 10,
    lr: float = 1e-3,
    optimizer: str = "adam",
    masks: Masks | None = None,
    seed: int = 0,
) -> tuple[nn.Module, TrainableRecord]:
    """Freeze the random initialization except the chosen parts, train, and return the model
    with the record of what was trainable (everything is left trainable again afterwards)."""
    rec = freeze(model, train_layers, train_biases)
    train(model, x, y, epochs, lr=lr, optimizer=optimizer, masks=masks, seed=seed)
    for p in model.parameters():
        p.requires_grad_(True)
    return model, rec
