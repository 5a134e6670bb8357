"""Check a VNN-LIB property on a network: ``sat`` (re-checked counterexample), ``unsat`` (proven),
``timeout`` or ``unknown``.

A property is one query per input box (``adversarial.query.property_queries``), each decided by
the one pipeline (``adversarial.pipeline.verify``) with the VNN-LIB budget preset
(``nn2mip.budget.VNNLIB_SHARES``) and the PGD rounds of ``adversarial.pgd.pgd_rounds``. This
module only maps the pipeline's verdicts to VNN-COMP's words: ``sat`` only with a counterexample
that satisfies a disjunct within ``SAT_TOL`` on the float64 forward pass; ``unsat`` only when
every disjunct of every box has a proven lower bound above ``ROBUST_TOL``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np

from adversarial.pgd import pgd_rounds
from adversarial.pipeline import (
    ROBUST_TOL,
    Attack,
    DisjunctOutcome,
    Verification,
    check_method,
    default_bound_method,
    verify,
)
from adversarial.query import SAT_TOL, property_queries
from nn2mip.budget import VNNLIB_SHARES, Budget
from nn2mip.errors import InvalidInputError
from nn2mip.formulation import FormulationStats
from nn2mip.network import Network
from nn2mip.threads import torch_threads
from nn2mip.vnnlib import VnnProperty

Result = Literal["sat", "unsat", "timeout", "unknown"]
UNSAT_TOL = ROBUST_TOL
_RESULT: dict[str, Result] = {
    "adversarial": "sat",
    "robust": "unsat",
    "timeout": "timeout",
    "unknown": "unknown",
}


@dataclass
class VerifyResult:
    """Outcome of ``verify_property``; ``x``/``y`` are the re-checked counterexample for sat."""

    result: Result
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    case: int | None = None
    disjunct: int | None = None
    decided_by: str = ""
    bound_method: str = ""
    sat_tol: float = SAT_TOL
    unsat_tol: float = UNSAT_TOL
    total_time: float = 0.0
    attack_time: float = 0.0
    bounds_time: float = 0.0
    build_time: float = 0.0
    solve_time: float = 0.0
    mip_solves: int = 0
    nodes: int = 0
    bab_time: float = 0.0
    bab_domains: int = 0
    stats: list[FormulationStats] = field(default_factory=list)
    outcomes: list[DisjunctOutcome] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary."""
        d = {k: v for k, v in asdict(self).items() if k not in ("x", "y", "stats", "outcomes")}
        d["x"] = None if self.x is None else self.x.tolist()
        d["y"] = None if self.y is None else self.y.tolist()
        d["stats"] = [s.as_dict() for s in self.stats]
        d["outcomes"] = [asdict(o) for o in self.outcomes]
        return d


def check_property_fits(network: Network, prop: VnnProperty) -> None:
    """Raise ``InvalidInputError`` unless the property's X/Y sizes match the network."""
    if prop.num_inputs != network.input_size:
        raise InvalidInputError(
            f"{prop.source} declares {prop.num_inputs} inputs X_i but the network has "
            f"{network.input_size}"
        )
    if prop.num_outputs != network.output_size:
        raise InvalidInputError(
            f"{prop.source} declares {prop.num_outputs} outputs Y_j but the network has "
            f"{network.output_size}"
        )


def verify_property(
    network: Network,
    prop: VnnProperty,
    time_limit: float,
    threads: int = 1,
    bound_method: str | None = None,
    attack: Attack | None = pgd_rounds,
    attack_share: float = VNNLIB_SHARES.attack_share,
    method: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> VerifyResult:
    """Decide whether ``prop`` is violated on ``network`` within ``time_limit`` seconds.

    Each input box is one query for ``adversarial.pipeline.verify`` (center, ``attack`` with
    ``attack_share`` of the limit, bounds, branch and bound, MIPs; ``method`` as there), the
    boxes sharing one budget. Runs on ``threads`` torch threads throughout; HiGHS gets as many.
    ``progress`` gets a line per stage (see ``verify``).
    """
    if not (isinstance(time_limit, int | float) and math.isfinite(time_limit) and time_limit > 0):
        raise InvalidInputError(f"timeout must be a positive number, got {time_limit}")
    check_method(network, method)
    check_property_fits(network, prop)
    budget = Budget(time_limit, replace(VNNLIB_SHARES, attack_share=attack_share))
    res = VerifyResult("unknown", bound_method=bound_method or default_bound_method())
    if not prop.cases:
        res.result, res.decided_by = "unsat", "property"
        res.note = "the property has no satisfiable case"
        return res
    queries = property_queries(prop)
    verdicts: list[str] = []
    notes: list[str] = []
    with torch_threads(threads):
        for ci, q in enumerate(queries):
            if budget.expired():
                verdicts.append("timeout")
                notes.append("time ran out before every case was encoded")
                break
            if progress is not None and len(queries) > 1:
                progress(f"input box {ci + 1} of {len(queries)}")
            v = verify(
                network,
                q,
                budget,
                method=method,
                bound_method=res.bound_method,
                threads=threads,
                attack=attack,
                portion=1.0 / (len(queries) - ci),
                case=ci,
                progress=progress,
            )
            _add(res, v)
            verdicts.append(v.verdict)
            if v.note:
                notes.append(f"case {ci}: {v.note}" if len(queries) > 1 else v.note)
            if v.verdict == "adversarial":
                assert v.check is not None
                res.x, res.y = v.check.x, v.check.outputs
                res.case, res.disjunct, res.decided_by = ci, v.disjunct, v.decided_by
                break
    # The property is violated iff some box has a counterexample, holds iff every box is robust.
    if "adversarial" in verdicts:
        verdict = "adversarial"
    elif all(v == "robust" for v in verdicts):
        verdict = "robust"
        res.decided_by = "+".join(sorted({o.decided_by for o in res.outcomes}))
    else:
        verdict = "timeout" if "timeout" in verdicts else "unknown"
    res.result = _RESULT[verdict]
    res.note = "; ".join(notes)
    res.total_time = budget.elapsed()
    return res


def _add(res: VerifyResult, v: Verification) -> None:
    times = v.times
    res.attack_time += times.get("attack", 0.0)
    res.bounds_time += times.get("bounds", 0.0)
    res.build_time += times.get("build", 0.0)
    res.solve_time += times.get("mip", 0.0)
    res.bab_time += times.get("bab", 0.0)
    res.mip_solves += v.mip_solves
    res.nodes += v.nodes
    res.bab_domains += v.bab_domains
    if v.stats is not None:
        res.stats.append(v.stats)
    res.outcomes.extend(v.outcomes)
