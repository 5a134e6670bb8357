"""Explicit weight masks: one boolean tensor per Linear layer, ``True`` = kept."""

from __future__ import annotations

import torch
from torch import nn

from nn2mip.serialize import load_network_and_masks, save_network
from nn2mip.torch_io import from_torch, to_torch

# Keyed by the layer's index among the model's Linear layers.
Masks = dict[int, torch.Tensor]


def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the masked weights in place (and the bias of fully removed neurons)."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, mask in masks.items():
            lins[i].weight.mul_(mask.to(lins[i].weight.dtype))


def mask_sparsity(masks: Masks) -> float:
    """Fraction of masked-out weights over all masked layers."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    return 1.0 - kept / total if total else 0.0


def masks_from_zeros(model: nn.Module) -> Masks:
    """Masks that keep exactly the currently nonzero weights."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return {i: lin.weight.detach() != 0 for i, lin in enumerate(lins)}


def mask_gradients(model: nn.Module, masks: Masks) -> None:
    """Zero the gradients of masked weights, so optimizer state (momentum, Adam moments) is
    never built up for them."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for i, mask in masks.items():
        g = lins[i].weight.grad
        if g is not None:
            g.mul_(mask.to(g.dtype))


def full_masks(model: nn.Module) -> Masks:
    """All-``True`` masks, one per Linear layer."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return {i: torch.ones_like(lin.weight, dtype=torch.bool) for i, lin in enumerate(lins)}


def keep_top(scores: dict[int, torch.Tensor], amount: float, scope: str = "global") -> Masks:
    """Masks keeping the highest-scoring ``1 - amount`` fraction of entries (exact counts,
    ties broken by position), ranked over all layers (``"global"``) or per layer (``"layer"``)."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    if scope == "layer":
        out: Masks = {}
        for i, s in scores.items():
            out.update(keep_top({i: s}, amount, "global"))
        return out
    if scope != "global":
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    keys = list(scores)
    flat = torch.cat([scores[k].detach().flatten().to(torch.float64) for k in keys])
    n_keep = flat.numel() - int(amount * flat.numel())
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[torch.argsort(flat, descending=True, stable=True)[:n_keep]] = True
    out, start = {}, 0
    for k in keys:
        n = scores[k].numel()
        out[k] = keep[start : start + n].reshape(scores[k].shape)
        start += n
    return out


def masks_to_list(model: nn.Module, masks: Masks) -> list:
    """Masks as the per-layer numpy list ``nn2mip.serialize.save_network`` stores."""
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return [masks[i].cpu().numpy() if i in masks else None for i in range(len(lins))]


def masks_from_list(stored: list) -> Masks:
    """Inverse of ``masks_to_list`` (layers without a stored mask are left out)."""
    return {i: torch.as_tensor(m, dtype=torch.bool) for i, m in enumerate(stored) if m is not None}


def save_model(
    model: nn.Module, path: str, masks: Masks | None = None, meta: dict[str, str] | None = None
):
    """Save a torch MLP (and its masks) as an nn2mip ``.safetensors`` file."""
    stored = masks_to_list(model, masks) if masks else None
    return save_network(from_torch(model), path, masks=stored, meta=meta)


def load_model(path: str) -> tuple[nn.Sequential, Masks, dict[str, str]]:
    """Load a model file as a float32 ``nn.Sequential`` with its masks (re-applied) and meta."""
    net, stored = load_network_and_masks(path)
    model = to_torch(net)
    masks = masks_from_list(stored)
    apply_masks(model, masks)
    return model, masks, dict(net.meta)
