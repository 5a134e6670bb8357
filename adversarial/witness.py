"""Independent re-checking of adversarial witnesses.

A MIP solution satisfies the constraints only up to solver tolerances, so before a witness is
reported it is moved back into the region exactly (clip to the box, shrink toward the center for
an L1 ball) and its margin is recomputed by the float64 forward pass and, when given, the torch
model. Only a strictly positive margin in both passes makes it adversarial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from nn2mip.network import Network
from nn2mip.region import InputRegion
from nn2mip.torch_io import torch_forward


@dataclass
class WitnessCheck:
    """Result of re-checking one candidate input."""

    x: np.ndarray
    in_region: bool
    outputs: np.ndarray
    margin: float
    torch_margin: float | None
    predicted: int
    passed: bool


def project_to_region(x: np.ndarray, region: InputRegion) -> np.ndarray:
    """Move ``x`` exactly into the region: clip to the box, then scale into the L1 ball."""
    z = np.clip(np.asarray(x, dtype=np.float64), region.lower, region.upper)
    if region.norm == "1" and region.center is not None:
        d = z - region.center
        n1 = np.abs(d).sum()
        if n1 > region.eps:
            # Shrinking toward the center keeps the box (the center is inside it).
            z = region.center + d * (region.eps / n1) * (1.0 - 1e-12)
            z = np.clip(z, region.lower, region.upper)
    return z


def margin_of(outputs: np.ndarray, label: int, target: int | None) -> float:
    """``y[target] - y[label]``, or the best wrong class's lead when ``target`` is None."""
    y = np.asarray(outputs, dtype=np.float64).reshape(-1)
    if target is not None:
        return float(y[target] - y[label])
    others = np.delete(y, label)
    return float(others.max() - y[label])


def check_witness(
    network: Network,
    x: np.ndarray,
    region: InputRegion,
    label: int,
    target: int | None = None,
    torch_model: nn.Module | None = None,
) -> WitnessCheck:
    """Project ``x`` into ``region`` and re-evaluate it; ``passed`` iff it is truly adversarial."""
    z = project_to_region(x, region)
    inside = bool(region.contains(z, tol=0.0)[0])
    y = network.forward(z)
    m = margin_of(y, label, target)
    tm = None
    if torch_model is not None:
        tm = margin_of(torch_forward(torch_model, z)[0], label, target)
    passed = inside and m > 0.0 and (tm is None or tm > 0.0)
    return WitnessCheck(z, inside, y, m, tm, int(np.argmax(y)), passed)
