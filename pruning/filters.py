"""Structured pruning of convolutions: whole filters (output channels).

Scoring: ``filter_norms`` (L1 or L2 of a filter's weights and bias). Cutting: ``filter_masks``
(boolean per output channel, per Conv2d) kept exactly zero through training by
``filter_mask_hooks``; ``pruning.compact_conv.compact_cnn`` then removes the channels. A masked
filter takes its bias and the following BatchNorm channel (gamma and beta) with it, so the
channel is exactly zero in the masked net and removing it changes nothing.
Regularization: group lasso on filters (proximal step), the Structured Perspective
Regularization on channels (the seed's per-group term, ``spr_group_values``), and the
ReLU-stability loss on the pre-activations of a CNN, from differentiable interval bounds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pruning.masks import Masks
from pruning.regularizers import (
    STABILITY_LOSSES,
    Hook,
    mean_stability_terms,
    spr_group_values,
)
from pruning.training import Regularizer, train

# Keyed by the conv layer's index among the model's Conv2d layers; True = filter kept.
FilterMasks = dict[int, torch.Tensor]


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    """The model's Conv2d layers in forward order."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def _following_batchnorms(model: nn.Module) -> dict[int, nn.BatchNorm2d]:
    """Per conv index, the BatchNorm2d that directly follows it in forward order (if any)."""
    leaves = [m for m in model.modules() if not list(m.children())]
    out, k = {}, -1
    for prev, mod in zip(leaves, leaves[1:], strict=False):
        if isinstance(prev, nn.Conv2d):
            k += 1
            if isinstance(mod, nn.BatchNorm2d):
                out[k] = mod
    return out


def filter_groups(conv: nn.Conv2d, include_bias: bool = True) -> torch.Tensor:
    """One row per filter: its weights (C_in/groups * kH * kW) and, if asked, its bias."""
    w = conv.weight.reshape(conv.out_channels, -1)
    if include_bias and conv.bias is not None:
        w = torch.cat([w, conv.bias[:, None]], dim=1)
    return w


def filter_norms(
    model: nn.Module, norm: str = "l2", include_bias: bool = True
) -> list[torch.Tensor]:
    """Per Conv2d, the L1 (``norm="l1"``) or L2 (``"l2"``) norm of each filter (detached)."""
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    out = []
    for conv in conv_layers(model):
        g = filter_groups(conv, include_bias).detach()
        out.append(g.abs().sum(dim=1) if norm == "l1" else torch.sqrt((g**2).sum(dim=1)))
    return out


def filter_masks(
    model: nn.Module,
    amount: float,
    norm: str = "l2",
    existing: FilterMasks | None = None,
    layers: Sequence[int] | None = None,
) -> FilterMasks:
    """Masks removing the fraction ``amount`` of lowest-norm filters of every conv layer (or of
    ``layers``); filters already masked in ``existing`` stay masked and count toward the
    amount. Exact counts, ties broken by position; at least one filter per layer is kept."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    norms = filter_norms(model, norm)
    chosen = range(len(norms)) if layers is None else layers
    masks: FilterMasks = {}
    for i in chosen:
        scores = norms[i].clone().to(torch.float64)
        if existing is not None and i in existing:
            scores[~existing[i]] = -1.0
        n = scores.numel()
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.argsort(scores, descending=True, stable=True)[: max(1, n - int(amount * n))]] = (
            True
        )
        masks[i] = keep
    return masks


def apply_filter_masks(model: nn.Module, masks: FilterMasks) -> None:
    """Zero masked filters in place: weights, bias and the following BatchNorm's gamma and
    beta, so the channel is exactly 0 (running statistics are left alone: they only matter
    through gamma and beta)."""
    convs, bns = conv_layers(model), _following_batchnorms(model)
    with torch.no_grad():
        for i, keep in masks.items():
            drop = ~keep.to(torch.bool)
            convs[i].weight[drop] = 0.0
            if convs[i].bias is not None:
                convs[i].bias[drop] = 0.0
            if i in bns:
                if bns[i].weight is not None:
                    bns[i].weight[drop] = 0.0
                    bns[i].bias[drop] = 0.0
                else:  # no affine parameters: the channel cannot be zeroed by masking
                    raise ValueError(f"conv {i} is followed by a BatchNorm2d without affine")


def filter_mask_hooks(model: nn.Module, masks: FilterMasks) -> tuple[Hook, Hook]:
    """``(on_backward, after_step)`` for ``pruning.training.train``: zero the gradients of masked
    filters (so Adam or momentum build no state for them) and re-zero them after each step."""
    convs, bns = conv_layers(model), _following_batchnorms(model)

    def zero_grads(_model: nn.Module) -> None:
        for i, keep in masks.items():
            drop = ~keep
            params = [convs[i].weight, convs[i].bias]
            if i in bns:
                params += [bns[i].weight, bns[i].bias]
            for p in params:
                if p is not None and p.grad is not None:
                    p.grad[drop] = 0.0

    def reapply(m: nn.Module) -> None:
        apply_filter_masks(m, masks)

    return zero_grads, reapply


def filter_sparsity(masks: FilterMasks) -> float:
    """Fraction of masked-out filters over the masked layers."""
    total = sum(m.numel() for m in masks.values())
    return 1.0 - sum(int(m.sum()) for m in masks.values()) / total if total else 0.0


def masks_from_zero_filters(model: nn.Module) -> FilterMasks:
    """Masks keeping every filter that has a nonzero weight or bias."""
    return {
        i: (filter_groups(conv).detach() != 0).any(dim=1)
        for i, conv in enumerate(conv_layers(model))
    }


def filter_prune(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    amount: float,
    norm: str = "l2",
    steps: int = 1,
    finetune_epochs: int = 2,
    lr: float = 1e-3,
    optimizer: str = "adam",
    regularizer: Regularizer | None = None,
    seed: int = 0,
    callback: Callable[[int, FilterMasks], None] | None = None,
    linear_masks: Masks | None = None,
    batch_size: int = 64,
) -> tuple[nn.Module, FilterMasks]:
    """Gradual filter pruning of a trained model in place: ``steps`` rounds, each masking the
    lowest-norm filters up to ``amount * (round / steps)`` per conv layer and fine-tuning
    ``finetune_epochs`` with the masks held (and ``regularizer``, if any). ``x`` has the
    model's input shape (e.g. (N, 1, 28, 28)). ``linear_masks`` (``pruning.masks`` masks of the
    Linear layers, e.g. from ``pruning.structured.neuron_masks``) are held as well."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    masks: FilterMasks | None = None
    for r in range(1, steps + 1):
        masks = filter_masks(model, amount * r / steps, norm, existing=masks)
        apply_filter_masks(model, masks)
        on_backward, after_step = filter_mask_hooks(model, masks)
        if finetune_epochs > 0:
            train(
                model,
                x,
                y,
                finetune_epochs,
                lr=lr,
                optimizer=optimizer,
                seed=seed + r,
                on_backward=on_backward,
                after_step=after_step,
                regularizer=regularizer,
                masks=linear_masks,
                batch_size=batch_size,
            )
        if callback is not None:
            callback(r, masks)
    assert masks is not None
    return model, masks


# ---------------------------------------------------------------- group lasso and SPR


def filter_group_lasso_prox(lam: float, lr: float) -> Hook:
    """Proximal step of ``lam * sum_f ||w_f||_2`` over filters (group = weights and bias):
    ``w_f <- max(0, 1 - lr lam / ||w_f||) w_f``, which zeroes whole filters exactly."""
    thr = lr * lam

    def step(model: nn.Module) -> None:
        with torch.no_grad():
            for conv in conv_layers(model):
                norms = torch.sqrt((filter_groups(conv) ** 2).sum(dim=1))
                scale = torch.clamp(1.0 - thr / torch.clamp(norms, min=1e-30), min=0.0)
                conv.weight.mul_(scale[:, None, None, None])
                if conv.bias is not None:
                    conv.bias.mul_(scale)

    return step


def filter_group_lasso_penalty(model: nn.Module) -> torch.Tensor:
    """``sum_f ||w_f||_2`` over all filters (differentiable; training can use the prox step)."""
    total = torch.zeros(())
    for conv in conv_layers(model):
        total = total + torch.sqrt((filter_groups(conv) ** 2).sum(dim=1) + 1e-30).sum()
    return total


def conv_big_m(model: nn.Module) -> list[float]:
    """Per conv layer, the largest absolute weight or bias (the SPR's M)."""
    return [max(float(filter_groups(c).detach().abs().max()), 1e-12) for c in conv_layers(model)]


def filter_spr_regularizer(
    lam: float, alpha: float, big_m: Sequence[float] | None = None
) -> Regularizer:
    """``lam * sum`` of the SPR over filters (group = a filter's weights and bias), the seed's
    per-group term (``spr_group_values``) on channels. ``big_m`` gives M per conv layer (e.g.
    ``conv_big_m`` of the pretrained model); ``None`` uses the current max-abs weight."""

    def reg(model: nn.Module, _xb: torch.Tensor) -> torch.Tensor:
        convs = conv_layers(model)
        ms = list(big_m) if big_m is not None else conv_big_m(model)
        total = torch.zeros(())
        for conv, m in zip(convs, ms, strict=True):
            total = total + spr_group_values(filter_groups(conv), m, alpha).sum()
        return lam * total

    return reg


def select_filters_to_drop(
    model: nn.Module,
    threshold: float,
    empty_fraction: float,
    amount: float = 0.0,
    big_m: Sequence[float] | None = None,
) -> list[torch.Tensor]:
    """The seed's rule on filters: a weight below ``threshold * M`` counts as zero, and a filter
    with at most ``empty_fraction`` of its weights left is dropped; with ``amount`` > 0 at
    least that fraction of each conv layer goes (lowest L2 norm first). Only weights on input
    channels that survive count (a filter cannot be kept alive by dropped channels); at least
    one filter per layer is kept."""
    ms = list(big_m) if big_m is not None else conv_big_m(model)
    out: list[torch.Tensor] = []
    for conv, m in zip(conv_layers(model), ms, strict=True):
        w = conv.weight.detach()
        if out and conv.groups == 1 and out[-1].numel() == w.shape[1]:
            w = w[:, ~out[-1]]
        alive = (w.reshape(w.shape[0], -1).abs() >= threshold * m).double().mean(dim=1)
        drop = alive <= empty_fraction
        norms = torch.sqrt((filter_groups(conv).detach() ** 2).sum(dim=1))
        k = int(amount * w.shape[0])
        if int(drop.sum()) < k:
            ranked = norms.clone()
            ranked[drop] = -1.0
            drop = drop.clone()
            drop[torch.argsort(ranked, stable=True)[:k]] = True
        if bool(drop.all()):
            drop[torch.argmax(norms)] = False
        out.append(drop)
    return out


def filter_spr_prune(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    lam: float = 1e-3,
    alpha: float = 0.5,
    epochs: int = 5,
    lr: float = 1e-3,
    optimizer: str = "adam",
    big_m: Sequence[float] | None = None,
    threshold: float = 0.05,
    empty_fraction: float = 0.05,
    amount: float = 0.0,
    finetune_epochs: int = 2,
    seed: int = 0,
    batch_size: int = 64,
) -> tuple[nn.Module, FilterMasks]:
    """The seed's SPR pipeline on channels, in place: train with SPR on filters (M per conv
    layer from the model as given, unless ``big_m``), drop filters left (nearly) empty by
    ``select_filters_to_drop``, mask them and fine-tune with the masks held. Compact the
    result with ``pruning.compact_conv.compact_cnn``."""
    ms = list(big_m) if big_m is not None else conv_big_m(model)
    reg = filter_spr_regularizer(lam, alpha, ms)
    train(model, x, y, epochs, lr=lr, optimizer=optimizer, seed=seed, regularizer=reg,
          batch_size=batch_size)  # fmt: skip
    drop = select_filters_to_drop(model, threshold, empty_fraction, amount, ms)
    masks: FilterMasks = {i: ~d for i, d in enumerate(drop)}
    apply_filter_masks(model, masks)
    if finetune_epochs > 0:
        on_backward, after_step = filter_mask_hooks(model, masks)
        train(model, x, y, finetune_epochs, lr=lr, optimizer=optimizer, seed=seed + 1,
              on_backward=on_backward, after_step=after_step, batch_size=batch_size)  # fmt: skip
    return model, masks


# ---------------------------------------------------------------- ReLU stability


def cnn_interval_bounds_torch(
    model: nn.Module, x: torch.Tensor, eps: float, domain: tuple[float, float] = (0.0, 1.0)
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Differentiable interval bounds ``(l, u)`` of every ReLU's input over the L-inf ball of
    radius ``eps`` around each input of ``x`` (clipped to ``domain``), for a ``nn.Sequential``
    of Conv2d, Linear, BatchNorm (eval statistics), ReLU, Max/AvgPool2d, Flatten, Dropout.

    Affine layers map the centre and the radius (the radius through ``|W|``); pooling is
    monotone, so it maps the two bounds."""
    lo = torch.clamp(x - eps, domain[0], domain[1])
    hi = torch.clamp(x + eps, domain[0], domain[1])
    out = []
    for mod in (m for m in model.modules() if not list(m.children())):
        if isinstance(mod, nn.Conv2d | nn.Linear):
            c, r = (hi + lo) / 2, (hi - lo) / 2
            if isinstance(mod, nn.Conv2d):
                if mod.padding_mode != "zeros":
                    raise ValueError("interval bounds need zero-padded convolutions")
                args = (mod.stride, mod.padding, mod.dilation, mod.groups)
                mid = F.conv2d(c, mod.weight, mod.bias, *args)
                rad = F.conv2d(r, mod.weight.abs(), None, *args)
            else:
                mid, rad = F.linear(c, mod.weight, mod.bias), F.linear(r, mod.weight.abs())
            lo, hi = mid - rad, mid + rad
        elif isinstance(mod, nn.BatchNorm2d | nn.BatchNorm1d):
            s, t = _bn_scale_shift(mod)
            shape = (1, -1) + (1,) * (lo.dim() - 2)
            s, t = s.reshape(shape), t.reshape(shape)
            c, r = (hi + lo) / 2, (hi - lo) / 2
            lo, hi = s * c + t - s.abs() * r, s * c + t + s.abs() * r
        elif isinstance(mod, nn.ReLU):
            out.append((lo, hi))
            lo, hi = torch.relu(lo), torch.relu(hi)
        elif isinstance(mod, nn.MaxPool2d | nn.AvgPool2d | nn.Flatten):
            lo, hi = mod(lo), mod(hi)
        elif isinstance(mod, nn.Dropout | nn.Identity):
            continue
        else:
            raise ValueError(f"interval bounds: unsupported layer {type(mod).__name__}")
    return out


def _bn_scale_shift(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm in eval mode as ``s * x + t`` per channel."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("BatchNorm without running statistics cannot be folded")
    s = 1.0 / torch.sqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        s = s * bn.weight
    t = -s * bn.running_mean
    if bn.bias is not None:
        t = t + bn.bias
    return s, t


def cnn_relu_stability_regularizer(
    weight: float,
    eps: float,
    domain: tuple[float, float] = (0.0, 1.0),
    loss: str = "tanh",
    rows: int = 0,
) -> Regularizer:
    """ReLU-stability loss (Xiao et al.) on a CNN's pre-activations: ``weight`` times the mean
    of ``stability_terms(l, u, loss)`` over every ReLU input (each conv channel position
    counts once) and the batch, on ``cnn_interval_bounds_torch``. ``rows > 0`` uses only the
    first ``rows`` rows of each batch."""
    if loss not in STABILITY_LOSSES:
        raise ValueError(f"stability loss must be one of {STABILITY_LOSSES}, got {loss!r}")
    if rows < 0:
        raise ValueError(f"rows must be 0 (all) or positive, got {rows}")

    def reg(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        if rows:
            xb = xb[:rows]
        return weight * mean_stability_terms(
            cnn_interval_bounds_torch(model, xb, eps, domain), loss
        )

    return reg


def cnn_stable_fraction(
    model: nn.Module, x: np.ndarray, eps: float, domain: tuple[float, float] = (0.0, 1.0)
) -> float:
    """Fraction of (input, ReLU) pairs whose sign interval bounds fix over the L-inf ball."""
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        bnds = cnn_interval_bounds_torch(m, torch.as_tensor(x, dtype=torch.float64), eps, domain)
    stable = torch.cat([((lo >= 0) | (hi <= 0)).flatten() for lo, hi in bnds])
    return float(stable.double().mean())
