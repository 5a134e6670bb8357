"""Projected gradient ascent (PGD), the one engine behind the attacks and adversarial training.

``pgd`` maximizes a per-row objective over a batch of points, each kept in its region: a box
(``norm="box"`` or ``"inf"``; an L-inf ball is the box of its bounding interval) or an L1 ball
intersected with a box. L-inf and box steps follow the gradient's sign; L1 steps move the largest
gradient entries (``l1_ascent_direction``) and project exactly (``project_l1_box``). The
objective is any callable of the batch (a torch model's loss, or a query's disjunct values via
``network_forward``); ``stop`` sees the values at every step and ends the run early.

PGD can only find candidates: a caller re-checks what it returns, and finding none proves
nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nn2mip.crown import layer_tensors
from nn2mip.network import Network
from nn2mip.projection import l1_ascent_direction, project_l1_box

# (step index, points, values) -> stop now?
Stop = Callable[[int, torch.Tensor, torch.Tensor], bool]
# step index -> step length (a number, or a tensor broadcast against the points)
StepSize = float | Callable[[int], float | torch.Tensor]


@dataclass(frozen=True)
class Ball:
    """Where each row of a PGD batch may move: ``lower <= x <= upper`` and, for ``norm == "1"``,
    ``||x - center||_1 <= eps`` (``center`` one row, or one row per point)."""

    lower: torch.Tensor
    upper: torch.Tensor
    norm: str = "inf"
    center: torch.Tensor | None = None
    eps: float = 0.0

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The nearest point of the region to each row (Euclidean)."""
        if self.norm != "1":
            return torch.clamp(x, self.lower, self.upper)
        c = self.center
        assert c is not None
        d = (x - c).double().numpy()
        return c + torch.as_tensor(self._project_l1(d), dtype=c.dtype)

    def _project_l1(self, d: np.ndarray) -> np.ndarray:
        c = self.center.double().numpy()  # type: ignore[union-attr]
        lo = self.lower.double().numpy() - c
        hi = self.upper.double().numpy() - c
        return project_l1_box(d, self.eps, lo, hi)

    def step(self, x: torch.Tensor, g: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        """One ascent step of length ``alpha`` along ``g``, projected back into the region. The
        L1 step and projection run in float64, so a float32 batch stays inside the ball."""
        if self.norm != "1":
            return torch.clamp(x + alpha * torch.sign(g), self.lower, self.upper)
        c = self.center
        assert c is not None
        d = (x - c).double().numpy()
        d += float(alpha) * l1_ascent_direction(g.double().numpy())
        return c + torch.as_tensor(self._project_l1(d), dtype=c.dtype)


@dataclass
class PgdRun:
    """The last points, their objective values (None if the run ended without evaluating them)
    and the number of ascent steps taken."""

    x: torch.Tensor
    values: torch.Tensor | None
    steps: int


def pgd(
    objective: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    ball: Ball,
    steps: int,
    step_size: StepSize,
    stop: Stop | None = None,
) -> PgdRun:
    """Up to ``steps`` ascent steps on ``objective`` (one value per row) from the rows of ``x``.

    With ``stop``, the values are evaluated before every step and after the last one, and
    ``stop(k, x, values)`` returning True ends the run; without it, exactly ``steps`` gradient
    evaluations are made. Only gradients with respect to ``x`` are taken: a model's parameter
    gradients are left untouched.
    """
    values: torch.Tensor | None = None
    k = 0
    for k in range(steps + 1):
        if k == steps and stop is None:
            break
        xt = x.detach().requires_grad_(True)
        with torch.enable_grad():
            v = objective(xt)
            values = v.detach()
            if stop is not None and stop(k, x, values):
                return PgdRun(x, values, k)
            if k == steps:
                break
            (g,) = torch.autograd.grad(v.sum(), xt)
        alpha = step_size(k) if callable(step_size) else step_size
        with torch.no_grad():
            x = ball.step(x, g, alpha)
        values = None
    return PgdRun(x.detach(), values, k)


class _LeakyGrad(torch.autograd.Function):
    """ReLU forward; backward with slope ``leak`` where the input is not positive."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, leak: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(z, leak)
        return torch.clamp(z, min=0.0)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # noqa: ANN001, ANN205
        z, leak = ctx.saved_tensors
        return g * torch.where(z > 0, torch.ones_like(z), leak), None


# A network's maps as torch tensors, made once per network (PGD calls the forward every step).
_TENSORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _torch_layers(network: Network) -> tuple[list, list, list]:
    cached = _TENSORS.get(network)
    if cached is None:
        ws, bs, _ = layer_tensors(network)
        tables = [
            None if layer.groups is None else torch.from_numpy(layer.groups.padded())
            for layer in network.layers
        ]
        cached = _TENSORS[network] = (ws, bs, tables)
    return cached


def _group_max(h: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``max`` over each row of the (groups, size) index ``table`` (-1 past a group's end)."""
    vals = h[..., table.clamp(min=0)]
    return vals.masked_fill(table < 0, -torch.inf).amax(dim=-1)


def network_forward(
    network: Network, x: torch.Tensor, leak: torch.Tensor | None = None
) -> torch.Tensor:
    """The network's outputs in float64 torch (dense or sparse maps, ReLU or max groups).
    ``leak`` (one value per row) lets gradients through inactive ReLUs with that slope: nets
    with few active neurons (VNN-COMP mnist_fc) otherwise leave PGD stalled in one flat linear
    piece."""
    ws, bs, tables = _torch_layers(network)
    h = x
    for layer, w, b, table in zip(network.layers, ws, bs, tables, strict=True):
        if w.layout == torch.strided:
            h = h @ w.T + b
        else:
            flat = h.reshape(-1, h.shape[-1])
            h = torch.sparse.mm(w, flat.t()).t().reshape(*h.shape[:-1], w.shape[0]) + b
        if layer.relu:
            h = torch.relu(h) if leak is None else _LeakyGrad.apply(h, leak)
        elif table is not None:
            h = _group_max(h, table)
    return h
