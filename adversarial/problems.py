"""Adversarial problems on a ball: targeted ("does ``target`` beat ``label``?") and untargeted
("does any class?"), as queries (``adversarial.query.ball_query``) decided by the one pipeline,
``adversarial.pipeline.verify``. These wrappers fix the stages the problems were tuned with and
report in the problems' terms (margins instead of disjunct values).

A verdict rests on independent evidence: "adversarial" needs a witness that passes the
forward-pass re-check; "robust" needs a proven bound on the margin below ``-ROBUST_TOL``.
Anything else is "timeout" or "unknown", never a guess.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from torch import nn

from adversarial.pipeline import ROBUST_TOL, Verdict, Verification, verify
from adversarial.query import ball_query
from adversarial.witness import WitnessCheck
from nn2mip.bounds import DEFAULT_BOUND_METHOD
from nn2mip.errors import InvalidInputError
from nn2mip.formulation import FormulationStats
from nn2mip.network import Network
from nn2mip.region import Norm


@dataclass
class AttackResult:
    """Outcome of one adversarial instance."""

    verdict: Verdict
    label: int
    target: int | None
    eps: float
    norm: str
    margin: float | None = None
    bound: float | None = None
    found_class: int | None = None
    witness: np.ndarray | None = None
    check: WitnessCheck | None = None
    decided_by: str = "mip"
    bounds_time: float = 0.0
    build_time: float = 0.0
    solve_time: float = 0.0
    total_time: float = 0.0
    stats: FormulationStats = field(default_factory=FormulationStats)
    solver_status: str = ""
    nodes: int = 0
    mip_solves: int = 0
    bab_time: float = 0.0
    bab_domains: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary (the witness as a list)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("witness", "check", "stats")}
        d["stats"] = self.stats.as_dict()
        d["witness"] = None if self.witness is None else self.witness.tolist()
        d["witness_checked"] = None if self.check is None else bool(self.check.passed)
        return d


__all__ = ["ROBUST_TOL", "AttackResult", "Verdict", "targeted_attack", "untargeted_attack"]


def attack_result(
    v: Verification, label: int, target: int | None, eps: float, norm: str, total_time: float
) -> AttackResult:
    """A ``verify`` outcome in a ball problem's terms: margins are minus disjunct values."""
    out = AttackResult(v.verdict, label, target, eps, norm)
    out.decided_by = {"center": "clean", "attack": "pgd"}.get(v.decided_by, v.decided_by)
    out.decided_by = out.decided_by if out.decided_by in ("clean", "pgd", "bab") else "mip"
    out.note, out.check = v.note, v.check
    if v.check is not None:
        out.witness, out.margin, out.found_class = v.check.x, v.check.margin, v.check.predicted
        if v.decided_by == "center":
            out.note = "the center itself is misclassified"
    elif target is not None and v.objective is not None:
        out.margin = -v.objective
    last = v.outcomes[-1].lower_bound if v.outcomes else None
    if v.bound is not None:
        out.bound = -v.bound
    elif last is not None and (len(v.outcomes) == 1 or v.decided_by == "mip"):
        out.bound = -last  # the (last) MIP's dual bound on the margin
    out.bounds_time = v.times.get("bounds", 0.0)
    out.build_time = v.times.get("build", 0.0)
    out.solve_time = v.times.get("mip", 0.0)
    out.bab_time = v.times.get("bab", 0.0)
    out.bab_domains, out.nodes, out.mip_solves = v.bab_domains, v.nodes, v.mip_solves
    out.solver_status = v.solver_status
    if v.stats is not None:
        out.stats = v.stats
    out.total_time = total_time
    return out


def targeted_attack(
    network: Network,
    x0: np.ndarray,
    label: int,
    target: int,
    eps: float,
    norm: Norm = "inf",
    domain: tuple[float, float] = (0.0, 1.0),
    time_limit: float | None = None,
    threads: int = 1,
    bound_method: str = DEFAULT_BOUND_METHOD,
    torch_model: nn.Module | None = None,
    early_stop: bool = True,
    method: str = "mip",
) -> AttackResult:
    """Can ``target`` beat ``label`` in the ``norm`` ball of radius ``eps`` around ``x0``?

    ``early_stop`` stops the MIP once the sign of the best margin is settled; with it,
    ``method`` "bab" or "auto" runs branch and bound over ReLU splits first (the budget's
    ``bab_share`` of the time in "auto", the MIP gets the rest).
    """
    t0 = time.perf_counter()
    query = ball_query(network, x0, label, eps, norm, target, domain, sign_stop=early_stop)
    v = verify(
        network,
        query,
        time_limit,
        method=method,
        bound_method=bound_method,
        threads=threads,
        torch_model=torch_model,
        center=False,
        spec_bounds=False,
    )
    return attack_result(v, label, target, eps, norm, time.perf_counter() - t0)


def untargeted_attack(
    network: Network,
    x0: np.ndarray,
    label: int,
    eps: float,
    norm: Norm = "inf",
    domain: tuple[float, float] = (0.0, 1.0),
    time_limit: float | None = None,
    threads: int = 1,
    bound_method: str = DEFAULT_BOUND_METHOD,
    torch_model: nn.Module | None = None,
    strategy: Literal["loop", "single"] = "loop",
    early_stop: bool = True,
) -> AttackResult:
    """Is there an input in the ball where some class other than ``label`` scores higher?

    ``strategy="loop"`` builds the formulation once and asks each wrong class in turn (most
    likely first), stopping at the first verified witness; ``"single"`` adds a selection of the
    winning class with one binary per class and solves one MIP.
    """
    t0 = time.perf_counter()
    if strategy not in ("loop", "single"):
        raise InvalidInputError(f"strategy must be 'loop' or 'single', got {strategy!r}")
    query = ball_query(network, x0, label, eps, norm, None, domain, sign_stop=early_stop)
    v = verify(
        network,
        query,
        time_limit,
        method="mip",
        bound_method=bound_method,
        threads=threads,
        torch_model=torch_model,
        spec_bounds=False,
        mip_form="each" if strategy == "loop" else "single",
    )
    return attack_result(v, label, None, eps, norm, time.perf_counter() - t0)
