"""Conversion between ``torch.nn`` models and the float64 ``Network`` IR."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from nn2mip.errors import UnsupportedLayerError
from nn2mip.network import AffineLayer, Network

# Layers that are the identity at inference time and can be skipped.
_PASS_THROUGH = (nn.Flatten, nn.Identity, nn.Dropout)


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}{name}.")
    else:
        yield prefix.rstrip("."), module


def from_torch(model: nn.Module) -> Network:
    """Convert a ``nn.Sequential`` of Linear/ReLU/Flatten (Identity, Dropout skipped) to a Network.

    Raises ``UnsupportedLayerError`` naming the first layer that cannot be encoded.
    """
    if isinstance(model, nn.Linear):
        model = nn.Sequential(model)
    if not isinstance(model, nn.Sequential):
        raise UnsupportedLayerError(
            f"expected a torch.nn.Sequential, got {type(model).__name__}; "
            "wrap the layers in nn.Sequential"
        )
    layers: list[AffineLayer] = []
    for name, leaf in _leaves(model):
        if isinstance(leaf, nn.Linear):
            # torch.nn.utils.prune keeps the masked weight in ``weight`` itself.
            w = leaf.weight.detach().to(torch.float64).cpu().numpy()
            if leaf.bias is not None:
                b = leaf.bias.detach().to(torch.float64).cpu().numpy()
            else:
                b = np.zeros(w.shape[0])
            layers.append(AffineLayer(w, b, relu=False))
        elif isinstance(leaf, nn.ReLU):
            if not layers:
                raise UnsupportedLayerError(f"layer '{name}': ReLU before any Linear layer")
            last = layers[-1]
            layers[-1] = AffineLayer(last.weight, last.bias, relu=True)  # relu(relu(x)) = relu(x)
        elif isinstance(leaf, _PASS_THROUGH):
            continue  # inputs are flat vectors already; these are identities at inference
        else:
            raise UnsupportedLayerError(
                f"unsupported layer '{name}' of type {type(leaf).__name__} "
                "(nn2mip encodes Linear, ReLU and Flatten)"
            )
    if not layers:
        raise UnsupportedLayerError("the model has no Linear layer")
    return Network(tuple(layers))


def to_torch(network: Network, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """Build an equivalent ``nn.Sequential`` (Linear, ReLU, ...) from a Network."""
    modules: list[nn.Module] = []
    for layer in network.layers:
        lin = nn.Linear(layer.in_features, layer.out_features, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.weight))
            lin.bias.copy_(torch.from_numpy(layer.bias))
        modules.append(lin)
        if layer.relu:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def torch_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Evaluate a torch model on a numpy batch in float64 (a copy of the model, so the original
    keeps its dtype); used as the second, independent witness check."""
    model64 = copy.deepcopy(model).to(torch.float64).eval()
    with torch.no_grad():
        out = model64(torch.as_tensor(np.atleast_2d(x), dtype=torch.float64))
    return out.numpy()
