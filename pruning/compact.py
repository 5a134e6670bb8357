"""Physical compaction: remove neurons that cannot matter, so the network itself shrinks."""

from __future__ import annotations

import numpy as np
from torch import nn

from nn2mip.network import AffineLayer, Network
from nn2mip.torch_io import from_torch, to_torch


def compact_network(network: Network) -> Network:
    """An equivalent, physically smaller network.

    Repeats until nothing changes: a hidden neuron with no incoming weights is a constant
    (``relu(b)``), folded into the next layer's bias and removed; a neuron whose outgoing
    weights are all zero is removed. Widths of at least 1 are kept so shapes stay valid.
    """
    ws = [layer.weight.copy() for layer in network.layers]
    bs = [layer.bias.copy() for layer in network.layers]
    relu = [layer.relu for layer in network.layers]
    changed = True
    while changed:
        changed = False
        for k in range(len(ws) - 1):
            const = ~np.any(ws[k] != 0.0, axis=1)
            if np.any(const):
                val = np.maximum(bs[k], 0.0) if relu[k] else bs[k]
                bs[k + 1] = bs[k + 1] + ws[k + 1][:, const] @ val[const]
                ws[k + 1][:, const] = 0.0
            unused = ~np.any(ws[k + 1] != 0.0, axis=0)
            keep = ~unused
            if not keep.any():
                keep[0] = True  # keep one (inert) neuron so the layer still exists
            if not keep.all():
                ws[k], bs[k] = ws[k][keep], bs[k][keep]
                ws[k + 1] = ws[k + 1][:, keep]
                changed = True
    layers = tuple(AffineLayer(w, b, r) for w, b, r in zip(ws, bs, relu, strict=True))
    return Network(layers, meta=dict(network.meta))


def compact(model: nn.Module) -> nn.Sequential:
    """``compact_network`` for a torch model: returns a smaller ``nn.Sequential`` (float32)."""
    return to_torch(compact_network(from_torch(model)))
