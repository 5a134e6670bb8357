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

from adversarial.query import Query, class_query
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


def check_query(
    network: Network, x: np.ndarray, query: Query, torch_model: nn.Module | None = None
) -> WitnessCheck:
    """Project ``x`` into the query's region and re-evaluate it in float64 (and by
    ``torch_model`` when given); ``passed`` iff both passes satisfy a disjunct. ``margin`` is
    minus the best disjunct's value (for ball queries: the best wrong class's lead)."""
    z = project_to_region(x, query.region)
    if not np.all(np.isfinite(z)):
        return WitnessCheck(
            z, False, np.full(network.output_size, np.nan), -np.inf, None, -1, False
        )
    inside = bool(query.region.contains(z, tol=0.0)[0])
    y = network.forward(z)
    value = query.value(y)
    tm = None
    if torch_model is not None:
        tm = -query.value(torch_forward(torch_model, z)[0])
    passed = inside and query.satisfied(value) and (tm is None or query.satisfied(-tm))
    return WitnessCheck(z, inside, y, -value, tm, int(np.argmax(y)), passed)


def check_witness(
    network: Network,
    x: np.ndarray,
    region: InputRegion,
    label: int,
    target: int | None = None,
    torch_model: nn.Module | None = None,
) -> WitnessCheck:
    """Does ``x`` (projected into ``region``) make ``target`` (or any class) beat ``label``?"""
    query = class_query(region, network.output_size, label, target)
    return check_query(network, x, query, torch_model)
