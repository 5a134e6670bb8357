"""HiGHS backend: hand the whole ``MipModel`` to highspy in one call and read the answer back."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import highspy
import numpy as np

from nn2mip.errors import InvalidInputError
from nn2mip.mip import MipModel


@dataclass
class SolveResult:
    """What the solver says, in the model's own sense (a max model reports max values).

    ``status`` is one of: optimal, infeasible, unbounded, time_limit, objective_bound,
    objective_target, interrupted, error, other. ``dual_bound`` is the best proven bound on the
    objective (an upper bound for max). ``x`` is the best solution found or None.
    """

    status: str
    objective: float | None
    dual_bound: float | None
    x: np.ndarray | None
    solve_time: float
    nodes: int
    gap: float | None
    highs_status: str = ""
    extra: dict[str, float] = field(default_factory=dict)


_STATUS = {
    "kOptimal": "optimal",
    "kInfeasible": "infeasible",
    "kUnbounded": "unbounded",
    "kUnboundedOrInfeasible": "infeasible",
    "kTimeLimit": "time_limit",
    "kObjectiveBound": "objective_bound",
    "kObjectiveTarget": "objective_target",
    "kInterrupt": "interrupted",
    "kHighsInterrupt": "interrupted",
    "kSolutionLimit": "other",
    "kIterationLimit": "other",
}


def to_highs_lp(model: MipModel, native_sense: bool = False) -> highspy.HighsLp:
    """The model as a ``HighsLp`` (column-wise).

    By default always a minimization: a max objective is negated so that HiGHS's
    objective_bound/objective_target options have one meaning. ``native_sense=True`` keeps the
    model's own sense and signs (for files, which readers should see as written).
    """
    lp = highspy.HighsLp()
    a = model.matrix().tocsc()
    sign = -1.0 if model.sense == "max" and not native_sense else 1.0
    if native_sense and model.sense == "max":
        lp.sense_ = highspy.ObjSense.kMaximize
    lp.num_col_ = model.num_cols
    lp.num_row_ = model.num_rows
    lp.col_cost_ = sign * model.cost_vector()
    lp.offset_ = sign * model.offset
    lp.col_lower_ = model.col_lower()
    lp.col_upper_ = model.col_upper()
    lp.row_lower_ = model.row_lower()
    lp.row_upper_ = model.row_upper()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(np.float64)
    if model.num_binaries:
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
            for i in model.integrality()
        ]
    return lp


_banner_shown = False


def new_highs(verbose: bool) -> highspy.Highs:
    """A fresh ``highspy.Highs``, silent unless ``verbose`` (HiGHS's banner kept off stdout)."""
    global _banner_shown
    if _banner_shown or verbose:
        h = highspy.Highs()
    else:
        # HiGHS prints a banner on stdout (C level) the first time; keep stdout clean for --json.

        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
    _banner_shown = True
    h.setOptionValue("output_flag", bool(verbose))
    return h


def solve_highs(
    model: MipModel,
    time_limit: float | None = None,
    threads: int = 1,
    stop_above: float | None = None,
    stop_below: float | None = None,
    mip_feasibility_tolerance: float | None = None,
    relax_integrality: bool = False,
    verbose: bool = False,
    options: dict[str, object] | None = None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> SolveResult:
    """Solve ``model`` with HiGHS.

    ``stop_above`` (max models): stop as soon as a solution better than this is found.
    ``stop_below`` (max models): stop as soon as the dual bound proves the optimum is below it.
    For min models the roles mirror (``stop_below`` on solutions, ``stop_above`` on the bound).
    These two make sign-only questions ("is the margin ever positive?") stop early.
    ``start``: (columns, values) of a known, possibly partial, solution that HiGHS completes
    and starts from.
    """
    if time_limit is not None and not (time_limit > 0):
        raise InvalidInputError(f"time limit must be positive, got {time_limit}")
    h = new_highs(verbose)
    if time_limit is not None and math.isfinite(time_limit):
        h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("threads", int(threads))
    if mip_feasibility_tolerance is not None:
        h.setOptionValue("mip_feasibility_tolerance", float(mip_feasibility_tolerance))
    for key, value in (options or {}).items():
        h.setOptionValue(key, value)
    sign = -1.0 if model.sense == "max" else 1.0
    # In the minimization HiGHS sees, a solution <= target stops it, a bound >= bound stops it.
    target = stop_above if model.sense == "max" else stop_below
    bound = stop_below if model.sense == "max" else stop_above
    if target is not None:
        h.setOptionValue("objective_target", sign * float(target))
    if bound is not None:
        h.setOptionValue("objective_bound", sign * float(bound))
    lp = to_highs_lp(model)
    if relax_integrality:
        lp.integrality_ = []
    h.passModel(lp)
    if start is not None:
        idx, val = start
        h.setSolution(int(len(idx)), np.asarray(idx, np.int32), np.asarray(val, np.float64))
    t0 = time.perf_counter()
    h.run()
    elapsed = time.perf_counter() - t0
    res = read_result(h, model, sign, elapsed, mip=model.num_binaries > 0 and not relax_integrality)
    if bound is not None and res.status == "infeasible":
        # HiGHS uses objective_bound as a cutoff: "infeasible" then means no solution beats the
        # cutoff, i.e. the bound is proven. (The models here always have feasible points.)
        res.status = "objective_bound"
        res.dual_bound = stop_below if model.sense == "max" else stop_above
    return res


def read_result(
    h: highspy.Highs, model: MipModel, sign: float, elapsed: float, mip: bool
) -> SolveResult:
    """The solve's outcome in the model's own sense: ``sign`` is -1 for a max model (HiGHS
    minimized its negation), ``mip`` whether to read MIP information (dual bound, nodes, gap)."""
    ms = h.getModelStatus()
    name = str(ms).split(".")[-1]
    status = _STATUS.get(name, "other")
    info = h.getInfo()
    sol = h.getSolution()
    x = None
    if sol.value_valid and len(sol.col_value) == model.num_cols:
        x = np.asarray(sol.col_value, dtype=np.float64)
    objective = None
    if x is not None:
        objective = model.objective_value(x)
    dual = None
    if mip:
        db = info.mip_dual_bound
        if math.isfinite(db):
            dual = sign * db
        nodes = int(info.mip_node_count)
        gap = float(info.mip_gap) if math.isfinite(info.mip_gap) else None
    else:
        nodes, gap = 0, None
        if status == "optimal" and objective is not None:
            dual = objective
    if status == "optimal" and mip and objective is not None and dual is None:
        dual = objective
    return SolveResult(
        status=status,
        objective=objective,
        dual_bound=dual,
        x=x,
        solve_time=elapsed,
        nodes=nodes,
        gap=gap,
        highs_status=name,
    )


def write_model(model: MipModel, path: str | Path) -> Path:
    """Write the model as MPS (``.mps``) or CPLEX LP (``.lp``), chosen by the file suffix, with
    the model's own objective sense (a max model is written as a maximization) and its column
    names (``MipModel.col_names``) when it has any."""
    path = Path(path)
    if path.suffix.lower() not in (".mps", ".lp"):
        raise InvalidInputError(f"model files must end in .mps or .lp, got {path.name}")
    h = new_highs(False)
    h.passModel(to_highs_lp(model, native_sense=True))
    if model.col_names:
        # Named columns (x_0, z_1_5, ...) make the file readable in another solver.
        for c in range(model.num_cols):
            h.passColName(c, model.col_name(c))
    path.parent.mkdir(parents=True, exist_ok=True)
    status = h.writeModel(str(path))
    if str(status).split(".")[-1] == "kError":
        raise InvalidInputError(f"HiGHS could not write {path}")
    return path
