"""Physical compaction: remove neurons that cannot matter, so the network itself shrinks."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nn2mip.bounds import interval_bounds
from nn2mip.network import AffineLayer, Network
from nn2mip.region import box_region
from nn2mip.torch_io import from_torch, to_torch

Domain = tuple[float | np.ndarray, float | np.ndarray]


def dead_on_domain(network: Network, domain: Domain) -> list[np.ndarray]:
    """Per layer, ReLU neurons whose (sound, interval) upper bound over the input box is <= 0:
    they output 0 for every input in ``domain``."""
    lo = np.broadcast_to(np.asarray(domain[0], dtype=np.float64), (network.input_size,))
    hi = np.broadcast_to(np.asarray(domain[1], dtype=np.float64), (network.input_size,))
    b = interval_bounds(network, box_region(lo.copy(), hi.copy()))
    return [
        (u <= 0.0) if layer.relu else np.zeros_like(u, dtype=bool)
        for layer, u in zip(network.layers, b.upper, strict=True)
    ]


def compact_network(network: Network, domain: Domain | None = None) -> Network:
    """An equivalent, physically smaller network.

    Repeats until nothing changes: a hidden neuron with no incoming weights is a constant
    (``relu(b)``), folded into the next layer's bias and removed; a neuron whose outgoing
    weights are all zero is removed. With ``domain=(lo, hi)`` (the input box), neurons that
    interval bounds prove dead on it are removed too (the function is then kept on the box
    only). Widths of at least 1 are kept so shapes stay valid.
    """
    ws = [layer.weight.copy() for layer in network.layers]
    bs = [layer.bias.copy() for layer in network.layers]
    relu = [layer.relu for layer in network.layers]
    if domain is not None:
        for k, dead in enumerate(dead_on_domain(network, domain)[:-1]):
            # A dead neuron is the constant 0: make that explicit, the loop below removes it.
            ws[k][dead] = 0.0
            bs[k][dead] = 0.0
    changed = True
    while changed:
        changed = False
        for k in range(len(ws) - 1):
            const = ~np.any(ws[k] != 0.0, axis=1)
            if np.any(const & np.any(ws[k + 1] != 0.0, axis=0)):
                val = np.maximum(bs[k], 0.0) if relu[k] else bs[k]
                bs[k + 1] = bs[k + 1] + ws[k + 1][:, const] @ val[const]
                ws[k + 1][:, const] = 0.0
            unused = ~np.any(ws[k + 1] != 0.0, axis=0)
            keep = ~unused
            if not keep.any():
                keep[0] = True  # keep one (inert) neuron so the layer still exists
                ws[k][0], bs[k][0] = 0.0, 0.0
            if not keep.all():
                ws[k], bs[k] = ws[k][keep], bs[k][keep]
                ws[k + 1] = ws[k + 1][:, keep]
                changed = True
    layers = tuple(AffineLayer(w, b, r) for w, b, r in zip(ws, bs, relu, strict=True))
    return Network(layers, meta=dict(network.meta))


def compact(
    model: nn.Module, domain: Domain | None = None, dtype: torch.dtype | None = None
) -> nn.Sequential:
    """``compact_network`` for a torch model: a smaller ``nn.Sequential`` in the model's dtype
    (or ``dtype``)."""
    if dtype is None:
        dtype = next(model.parameters()).dtype
    return to_torch(compact_network(from_torch(model), domain), dtype=dtype)


def hidden_sizes(model: nn.Module) -> list[int]:
    """Widths of the hidden Linear layers."""
    return [m.out_features for m in model.modules() if isinstance(m, nn.Linear)][:-1]
