"""PGD attacks on a query: the cheap search for a counterexample tried before any proof.

Both attacks run the one engine, ``nn2mip.pgd.pgd``, on the query's disjunct values:

* ``pgd_query`` (ball problems): maximize the margin (minus the best disjunct's value) from the
  center and ``restarts - 1`` random points of the region; L-inf steps follow the gradient's
  sign, L1 steps move the largest gradient entries; it stops at the first candidate that passes
  ``check_query``.
* ``pgd_rounds`` / ``pgd_round`` (VNN-LIB boxes): restarts per disjunct, each minimizing its own
  disjunct, with a decaying per-coordinate step, leaky ReLU gradients on half the restarts and
  output-diversified starts (``odi_points``).

PGD can only ever prove "adversarial": a candidate counts once it passes the float64 re-check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from adversarial.query import Query, class_query
from adversarial.witness import WitnessCheck, check_query
from nn2mip.network import Network
from nn2mip.pgd import Ball, network_forward, pgd
from nn2mip.projection import pgd_step_size
from nn2mip.region import InputRegion
from nn2mip.threads import torch_threads
from nn2mip.vnnlib import OutputConstraint

# (network, lower, upper, disjuncts, seconds) -> candidate inputs (rows) or None; the
# pipeline (``adversarial.pipeline``) re-checks whatever an attack returns.
Attack = Callable[[Network, np.ndarray, np.ndarray, tuple[OutputConstraint, ...], float], object]

# Output-diversified sign steps before the random restarts of ``pgd_rounds``.
ODI_STEPS = 5


@dataclass
class PgdResult:
    """Best candidate of a PGD run; ``check`` is set iff a witness passed the re-check."""

    check: WitnessCheck | None
    best_margin: float
    steps_run: int
    time: float


def _values(network: Network, query: Query, x: torch.Tensor, leak=None, assign=None):  # noqa: ANN001, ANN202
    """Disjunct values of each row: of its own disjunct ``assign[r]``, else the best one."""
    y = network_forward(network, x, leak)
    cols = []
    for dj in query.disjuncts:
        rows = y @ torch.as_tensor(dj.C).T - torch.as_tensor(dj.d)
        cols.append(rows.max(dim=1).values)
    v = torch.stack(cols, dim=1)
    if assign is None:
        return v.min(dim=1).values
    return v.gather(1, assign[:, None])[:, 0]


def region_ball(region: InputRegion) -> Ball:
    """The engine's view of a region; an L1 ball is shrunk a hair so that rounding can never
    leave it (the re-check uses tolerance 0)."""
    lo, hi = torch.as_tensor(region.lower), torch.as_tensor(region.upper)
    if region.norm == "1" and region.center is not None:
        return Ball(lo, hi, "1", torch.as_tensor(region.center), region.eps * (1.0 - 1e-9))
    return Ball(lo, hi, "inf")


def pgd_query(
    network: Network,
    query: Query,
    steps: int = 40,
    restarts: int = 8,
    step_size: float | None = None,
    seed: int = 0,
) -> PgdResult:
    """Maximize the margin of a ball query; the first re-checked candidate ends the run."""
    # Batches here are a few rows: intra-op threads only add contention (6x slower on 2 cores).
    with torch_threads(1):
        return _pgd_query(network, query, steps, restarts, step_size, seed)


def _pgd_query(
    network: Network,
    query: Query,
    steps: int,
    restarts: int,
    step_size: float | None,
    seed: int,
) -> PgdResult:
    t0 = time.perf_counter()
    region = query.region
    rng = np.random.default_rng(seed)
    center = region.center if region.center is not None else 0.5 * (region.lower + region.upper)
    starts = [center[None, :]]
    if restarts > 1:
        starts.append(region.sample(restarts - 1, rng))
    ball = region_ball(region)
    x = ball.project(torch.as_tensor(np.vstack(starts)))
    eps = region.eps if region.eps > 0 else float(np.max(region.upper - region.lower))
    alpha = step_size if step_size is not None else pgd_step_size(eps, region.norm or "inf", steps)
    best = [-np.inf]
    found: list[WitnessCheck] = []

    def stop(k: int, xs: torch.Tensor, v: torch.Tensor) -> bool:
        m = v.numpy()  # the margins
        best[0] = max(best[0], float(m.max()))
        for j in np.argsort(-m):  # candidates in order of margin; the float64 re-check decides
            if m[j] <= 0.0:
                break
            chk = check_query(network, xs[j].numpy(), query)
            if chk.passed:
                found.append(chk)
                return True
        return False

    run = pgd(lambda xs: -_values(network, query, xs), x, ball, steps, alpha, stop)
    if found:
        return PgdResult(found[0], float(found[0].margin), run.steps, time.perf_counter() - t0)
    return PgdResult(None, best[0], run.steps, time.perf_counter() - t0)


def pgd_attack(
    network: Network,
    region: InputRegion,
    label: int,
    target: int | None = None,
    steps: int = 40,
    restarts: int = 8,
    step_size: float | None = None,
    seed: int = 0,
) -> PgdResult:
    """``pgd_query`` on "``target`` (or any class) beats ``label`` in ``region``"."""
    query = class_query(region, network.output_size, label, target)
    return pgd_query(network, query, steps, restarts, step_size, seed)


def pgd_rounds(
    network: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    disjuncts: tuple[OutputConstraint, ...],
    time_limit: float,
) -> np.ndarray | None:
    """PGD rounds until one finds a counterexample or ``time_limit`` seconds are spent: a cheap
    first round (4 restarts x 50 steps per disjunct), then wider ones (16 x 200) with fresh
    seeds; the random restarts start from output-diversified points (``odi_points``)."""
    t_end = time.perf_counter() + time_limit
    for r in range(1000):
        restarts, steps = (4, 50) if r == 0 else (16, 200)
        left = t_end - time.perf_counter()
        if left <= 0:
            break
        found = pgd_round(
            network, lower, upper, disjuncts, left, restarts, steps, seed=r, odi_steps=ODI_STEPS
        )
        if found is not None:
            return found
    return None


def pgd_round(
    network: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    disjuncts: tuple[OutputConstraint, ...],
    time_limit: float,
    restarts: int = 4,
    steps: int = 50,
    seed: int = 0,
    start: np.ndarray | None = None,
    odi_steps: int = 0,
) -> np.ndarray | None:
    """One round on a box: ``restarts`` runs per disjunct, all in one batch, each minimizing
    ``max_i (C_i y - d_i)`` of its own disjunct with sign steps of a decaying share of the box.

    Half the restarts back-propagate through inactive ReLUs with slope 0.1: nets with few active
    neurons (VNN-COMP mnist_fc) otherwise stall in a flat linear piece. ``odi_steps`` > 0 moves
    the random starts by ``odi_points`` first; ``start`` rows replace the first restarts.
    Returns points with value <= 0 (best first), or None; the caller re-checks them.
    """
    t_end = time.perf_counter() + time_limit
    if any(dj.C.shape[0] == 0 for dj in disjuncts):
        return ((lower + upper) / 2.0)[None, :]  # an output-free disjunct holds at any input
    rng = np.random.default_rng(seed)
    n_dj = len(disjuncts)
    x = rng.uniform(lower, upper, size=(n_dj * restarts, lower.size))
    if odi_steps > 0:
        x = odi_points(network, lower, upper, x, odi_steps, rng)
    x[::restarts] = (lower + upper) / 2.0  # every disjunct's first run starts at the center
    if start is not None:
        s = np.clip(np.atleast_2d(start), lower, upper)
        for r in range(min(len(s), restarts)):
            x[r::restarts] = s[r]
    leak = torch.as_tensor(np.tile(np.where(np.arange(restarts) % 2 == 0, 0.0, 0.1), n_dj))
    leak = leak[:, None]
    assign = torch.as_tensor(np.repeat(np.arange(n_dj), restarts))
    query = Query(InputRegion(lower, upper), tuple(disjuncts))
    lo, hi = torch.as_tensor(lower), torch.as_tensor(upper)
    width = hi - lo
    last: list[np.ndarray] = []

    def stop(k: int, xs: torch.Tensor, v: torch.Tensor) -> bool:
        vals = -v.numpy()
        # Push past 0 so the float32 evaluation other tools use agrees with ours.
        hit = np.flatnonzero(vals < -1e-3) if k < steps else np.flatnonzero(vals <= 0.0)
        if hit.size or k == steps or time.perf_counter() > t_end:
            hit = hit if hit.size else np.flatnonzero(vals <= 0.0)
            if hit.size:
                last.append(xs.numpy()[hit[np.argsort(vals[hit])]])
            return True
        return False

    def step_size(k: int) -> torch.Tensor:
        return width * (0.3 * (1.0 - k / steps) + 0.02)

    pgd(
        lambda xs: -_values(network, query, xs, leak, assign),
        torch.as_tensor(x),
        Ball(lo, hi, "box"),
        steps,
        step_size,
        stop,
    )
    return last[0] if last else None


def odi_points(
    network: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    x: np.ndarray,
    steps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Output-diversified starts (Tashiro et al., ODI): from each row of ``x``, ``steps`` sign
    steps of half the box width maximizing ``w . y`` for a random ``w`` in [-1, 1]^outputs.

    Uniform random starts in a 784-dim box all land near the same output (the averages
    concentrate), so PGD from them explores one region; random output directions spread them
    over the box's corners where the counterexamples of VNN-COMP mnist_fc live.
    """
    w = torch.as_tensor(rng.uniform(-1.0, 1.0, size=(len(x), network.output_size)))
    lo, hi = torch.as_tensor(lower), torch.as_tensor(upper)
    run = pgd(
        lambda xs: (network_forward(network, xs) * w).sum(dim=1),
        torch.as_tensor(x),
        Ball(lo, hi, "box"),
        steps,
        0.5 * (hi - lo),
    )
    return run.x.numpy().copy()


def ball_attack(query: Query, steps: int = 40, restarts: int = 8) -> Attack:
    """``pgd_query`` on ``query`` as a pipeline attack (``adversarial.pipeline.Attack``); it runs
    its ``steps`` whatever time it is offered."""

    def attack(network: Network, lower, upper, disjuncts, time_limit) -> np.ndarray | None:  # noqa: ANN001, ARG001
        r = pgd_query(network, query, steps, restarts)
        return None if r.check is None else r.check.x[None, :]

    return attack
