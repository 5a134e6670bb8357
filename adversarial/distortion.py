"""Minimum distortion: the smallest ``eps`` (L-inf or L1) at which a target, or any wrong class,
can win.

Bisection on ``eps`` over ball queries (``adversarial.query.ball_query``): PGD first at every
step, then ``adversarial.pipeline.verify`` with the sign-only MIP (early stop both ways).
Each step leaves evidence: the upper end ``distortion`` is the distance of a re-checked witness,
the lower end ``lower`` is a radius at which the MIP's dual bound proved robustness. So the
true minimum lies in ``[lower, distortion]``, and the bracket is at most ``tol`` wide when the
verdict is "adversarial".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from adversarial.pgd import pgd_query
from adversarial.pipeline import Verdict, verify
from adversarial.query import ball_query
from adversarial.witness import WitnessCheck, check_query
from nn2mip.bounds import DEFAULT_BOUND_METHOD
from nn2mip.errors import InvalidInputError
from nn2mip.formulation import FormulationStats
from nn2mip.network import Network
from nn2mip.region import Norm


@dataclass
class DistortionResult:
    """Outcome of a minimum-distortion search.

    ``verdict``: "adversarial" (bracket closed to ``tol``), "robust" (no winner within
    ``eps_max``), "timeout" (the bracket is what was proven before time ran out) or "unknown".
    """

    verdict: Verdict
    label: int
    target: int | None
    norm: str
    eps_max: float
    distortion: float | None = None
    lower: float = 0.0
    witness: np.ndarray | None = None
    check: WitnessCheck | None = None
    decided_by: str = "mip"
    bounds_time: float = 0.0
    build_time: float = 0.0
    solve_time: float = 0.0
    pgd_time: float = 0.0
    total_time: float = 0.0
    stats: FormulationStats = field(default_factory=FormulationStats)
    solver_status: str = ""
    nodes: int = 0
    mip_solves: int = 0
    steps: list[tuple[float, str, str]] = field(default_factory=list)
    note: str = ""


def distance(x: np.ndarray, x0: np.ndarray, norm: str) -> float:
    """``||x - x0||`` in the given norm ("inf" or "1")."""
    d = np.abs(np.asarray(x, np.float64) - np.asarray(x0, np.float64))
    return float(d.max() if norm == "inf" else d.sum())


def min_distortion(
    network: Network,
    x0: np.ndarray,
    label: int,
    norm: Norm = "inf",
    target: int | None = None,
    eps_max: float = 0.1,
    tol: float | None = None,
    domain: tuple[float, float] = (0.0, 1.0),
    time_limit: float | None = None,
    threads: int = 1,
    bound_method: str = DEFAULT_BOUND_METHOD,
    torch_model: nn.Module | None = None,
    use_pgd: bool = True,
    pgd_steps: int = 30,
    pgd_restarts: int = 4,
) -> DistortionResult:
    """Bracket the smallest adversarial radius within ``[0, eps_max]`` to width ``tol``
    (default ``1e-3 * eps_max``)."""
    t0 = time.perf_counter()
    if not np.isfinite(eps_max) or eps_max <= 0:
        raise InvalidInputError(f"eps_max must be a positive number, got {eps_max}")
    tol = 1e-3 * eps_max if tol is None else float(tol)
    if tol <= 0:
        raise InvalidInputError(f"tol must be positive, got {tol}")
    x = network.check_input(x0)[0]
    out = DistortionResult("unknown", label, target, norm, eps_max)
    chk0 = check_query(
        network, x, ball_query(network, x, label, 0.0, norm, target, domain), torch_model
    )
    if chk0.passed:
        out.decided_by = "clean"
        _set_witness(out, chk0, x)
        out.verdict, out.total_time = "adversarial", time.perf_counter() - t0
        out.note = "the center itself is misclassified"
        return out

    def remaining() -> float | None:
        if time_limit is None:
            return None
        return time_limit - (time.perf_counter() - t0)

    def probe(eps: float) -> tuple[str, WitnessCheck | None, str]:
        """One step: PGD, then the pipeline. Returns (verdict, witness check, decided_by)."""
        query = ball_query(network, x, label, eps, norm, target, domain)
        if use_pgd:
            pg = pgd_query(network, query, pgd_steps, pgd_restarts)
            out.pgd_time += pg.time
            if pg.check is not None:
                return "adversarial", pg.check, "pgd"
        left = remaining()
        if left is not None and left <= 1e-3:
            return "timeout", None, "mip"
        v = verify(
            network,
            query,
            left,
            method="mip",
            bound_method=bound_method,
            threads=threads,
            torch_model=torch_model,
            center=False,
            spec_bounds=False,
        )
        out.bounds_time += v.times.get("bounds", 0.0)
        out.build_time += v.times.get("build", 0.0)
        out.solve_time += v.times.get("mip", 0.0)
        out.nodes += v.nodes
        out.mip_solves += v.mip_solves
        if v.stats is not None:
            out.stats = v.stats
        out.solver_status = v.solver_status
        return v.verdict, v.check, "mip"

    verdict, chk, by = probe(eps_max)
    out.steps.append((eps_max, verdict, by))
    if verdict != "adversarial":
        out.verdict = verdict
        if verdict == "robust":
            out.lower = eps_max
        out.total_time = time.perf_counter() - t0
        return out
    _set_witness(out, chk, x)
    out.decided_by = by
    lo, hi = 0.0, out.distortion
    assert hi is not None
    while hi - lo > tol:
        left = remaining()
        if left is not None and left <= 1e-3:
            out.verdict = "timeout"
            break
        mid = 0.5 * (lo + hi)
        verdict, chk, by = probe(mid)
        out.steps.append((mid, verdict, by))
        if verdict == "adversarial":
            _set_witness(out, chk, x)
            hi = out.distortion
            assert hi is not None
        elif verdict == "robust":
            lo = mid
        else:
            out.verdict = verdict
            break
    else:
        out.verdict = "adversarial"
    # "mip" if any bisection step needed the solver: the lower end is MIP evidence.
    if any(s[2] == "mip" for s in out.steps):
        out.decided_by = "mip"
    out.lower = lo
    out.total_time = time.perf_counter() - t0
    return out


def _set_witness(out: DistortionResult, chk: WitnessCheck | None, x0: np.ndarray) -> None:
    assert chk is not None
    out.check, out.witness = chk, chk.x
    out.distortion = distance(chk.x, x0, out.norm)
