"""Pruning at initialization: SNIP (Lee et al. 2019), GraSP (Wang et al. 2020) and the data-free,
iterative SynFlow (Tanaka et al. 2020). Each scores the weights of an untrained model and keeps
the top ``1 - amount`` globally; ``prune_at_init`` then trains the sparse model."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from pruning.masks import Masks, apply_masks, keep_top
from pruning.training import linear_layers, train


def _batch(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = np.random.default_rng(seed).permutation(len(y))[:n]
    return (torch.as_tensor(x[idx], dtype=torch.float32), torch.as_tensor(y[idx], dtype=torch.long))


def snip_scores(
    model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 256, seed: int = 0
) -> dict[int, torch.Tensor]:
    """SNIP connection sensitivity ``|dL/dw * w|`` on one batch."""
    m = copy.deepcopy(model)
    xb, yb = _batch(x, y, batch, seed)
    m.zero_grad()
    nn.functional.cross_entropy(m(xb), yb).backward()
    return {
        i: (lin.weight.grad * lin.weight).abs().detach() for i, lin in enumerate(linear_layers(m))
    }


def grasp_scores(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    batch: int = 256,
    temperature: float = 200.0,
    seed: int = 0,
) -> dict[int, torch.Tensor]:
    """GraSP: ``-w * (H g)``, with H g a Hessian-gradient product of the (temperature-scaled)
    loss. Weights whose removal reduces gradient flow least have the highest score, so the
    *lowest* scores are kept: the returned scores are negated to fit ``keep_top``."""
    m = copy.deepcopy(model)
    ws = [lin.weight for lin in linear_layers(m)]
    xb, yb = _batch(x, y, batch, seed)
    loss = nn.functional.cross_entropy(m(xb) / temperature, yb)
    g = torch.autograd.grad(loss, ws)
    loss = nn.functional.cross_entropy(m(xb) / temperature, yb)
    g2 = torch.autograd.grad(loss, ws, create_graph=True)
    z = sum((a * b.detach()).sum() for a, b in zip(g2, g, strict=True))
    hg = torch.autograd.grad(z, ws)
    return {i: (w * h).detach() for i, (w, h) in enumerate(zip(ws, hg, strict=True))}


def synflow_scores(model: nn.Module, masks: Masks | None = None) -> dict[int, torch.Tensor]:
    """SynFlow ``|dR/dw * w|`` with R the all-ones input pushed through ``|W|`` (data-free)."""
    m = copy.deepcopy(model).double()
    lins = linear_layers(m)
    with torch.no_grad():
        for i, lin in enumerate(lins):
            lin.weight.abs_()
            if masks is not None and i in masks:
                lin.weight.mul_(masks[i].double())
            if lin.bias is not None:
                lin.bias.zero_()  # the score is the path norm through the weights alone
    m.zero_grad()
    m(torch.ones(1, lins[0].in_features, dtype=torch.float64)).sum().backward()
    return {i: (lin.weight.grad * lin.weight).abs().detach() for i, lin in enumerate(lins)}


def snip_masks(
    model: nn.Module, x: np.ndarray, y: np.ndarray, amount: float, seed: int = 0
) -> Masks:
    """SNIP: one shot, global."""
    return keep_top(snip_scores(model, x, y, seed=seed), amount)


def grasp_masks(
    model: nn.Module, x: np.ndarray, y: np.ndarray, amount: float, seed: int = 0
) -> Masks:
    """GraSP: one shot, global (keeps the lowest ``-w * Hg``)."""
    return keep_top({i: -s for i, s in grasp_scores(model, x, y, seed=seed).items()}, amount)


def synflow_masks(model: nn.Module, amount: float, iterations: int = 100) -> Masks:
    """SynFlow: ``iterations`` rounds of re-scoring and pruning on an exponential schedule, so
    the kept fraction goes ``(1 - amount)^(k / iterations)``; avoids layer collapse, no data."""
    masks: Masks | None = None
    for k in range(1, iterations + 1):
        target = 1.0 - (1.0 - amount) ** (k / iterations)
        scores = synflow_scores(model, masks)
        if masks is not None:
            # Pruned weights stay pruned: rank them below every survivor.
            scores = {
                i: torch.where(masks[i], s, torch.full_like(s, -1.0)) for i, s in scores.items()
            }
        masks = keep_top(scores, target)
    assert masks is not None
    return masks


def prune_at_init(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    method: str,
    amount: float,
    epochs: int = 10,
    lr: float = 1e-3,
    optimizer: str = "adam",
    iterations: int = 100,
    seed: int = 0,
) -> tuple[nn.Module, Masks]:
    """Score the untrained ``model`` with ``method`` (snip, grasp, synflow), mask, train."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    if method == "snip":
        masks = snip_masks(model, x, y, amount, seed)
    elif method == "grasp":
        masks = grasp_masks(model, x, y, amount, seed)
    elif method == "synflow":
        masks = synflow_masks(model, amount, iterations)
    else:
        raise ValueError(f"unknown pruning-at-init method {method!r}")
    apply_masks(model, masks)
    if epochs > 0:
        train(model, x, y, epochs, lr=lr, optimizer=optimizer, masks=masks, seed=seed)
    return model, masks
