"""Sign-only solves: is ``max objective`` above ``found_tol`` or provably below ``-robust_tol``?

Verification needs only the sign of the best margin, not its value. Three ways to stop early:

* ``"target"``   -- HiGHS options: ``objective_target`` stops at the first good-enough solution,
  ``objective_bound`` acts as a cutoff (nodes that cannot beat it are pruned; "infeasible" then
  proves the bound);
* ``"callback"`` -- the objective as is, interrupted from Python callbacks on an improving
  solution above ``found_tol`` or a dual bound below ``-robust_tol``;
* ``"hybrid"``   -- the objective kept, the row ``objective >= -robust_tol`` added and
  ``objective_target`` set: presolve can prove robustness from the row alone, and the objective
  still guides the search toward a witness;
* ``"probe"``    -- presolve only (capped at ``PROBE_TIME``), on the model plus the row
  ``objective >= -robust_tol``:
  when presolve alone finds it infeasible that is the robustness proof (often in a few ms);
  otherwise the ``"target"`` solve runs on the plain model;
* ``"feasibility"`` -- zero objective plus the row ``objective >= -robust_tol``: any feasible
  point is a candidate, infeasibility proves robustness. A candidate whose margin is not above
  ``found_tol`` (a hair from zero) falls back to the ``"target"`` solve.

``benchmarks/bench_bounds.py`` measures them; the fastest is ``DEFAULT_METHOD``.
"""

from __future__ import annotations

import math
import time
from typing import Literal

import highspy
import numpy as np

from nn2mip.errors import InvalidInputError
from nn2mip.highs_backend import SolveResult, new_highs, read_result, solve_highs, to_highs_lp
from nn2mip.mip import MipModel

SignMethod = Literal["target", "callback", "hybrid", "probe", "feasibility"]
SIGN_METHODS: tuple[str, ...] = ("target", "callback", "hybrid", "probe", "feasibility")
DEFAULT_METHOD: SignMethod = "target"
# Time cap (seconds) of the presolve probe.
PROBE_TIME = 0.05


def solve_sign(
    model: MipModel,
    found_tol: float,
    robust_tol: float,
    method: SignMethod | None = None,
    time_limit: float | None = None,
    threads: int = 1,
    options: dict[str, object] | None = None,
) -> SolveResult:
    """Solve the max model just far enough to settle the sign of its optimum.

    The result is in the model's terms: a solution ``x`` with ``objective > found_tol``, or a
    ``dual_bound <= -robust_tol``, or neither (time limit).
    """
    if model.sense != "max":
        raise InvalidInputError("sign solves expect a max model (the margin)")
    if method is None:
        # Read at call time, so that setting nn2mip.sign.DEFAULT_METHOD switches every caller.
        method = DEFAULT_METHOD
    if method == "probe":
        t0 = time.perf_counter()
        if _presolve_refutes(model, robust_tol, threads, options):
            elapsed = time.perf_counter() - t0
            return SolveResult("infeasible", None, -robust_tol, None, elapsed, 0, None, "presolve")
        time_limit = (
            None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 1e-3)
        )
        method = "target"
    if method == "target":
        return solve_highs(
            model,
            time_limit=time_limit,
            threads=threads,
            stop_above=found_tol,
            stop_below=-robust_tol,
            options=options,
        )
    if method == "callback":
        return _solve_callback(model, found_tol, robust_tol, time_limit, threads, options)
    if method in ("feasibility", "hybrid"):
        return _solve_feasibility(
            model, found_tol, robust_tol, time_limit, threads, options, method == "hybrid"
        )
    raise InvalidInputError(f"unknown sign method {method!r}; choose from {SIGN_METHODS}")


def _setup(
    model: MipModel, time_limit: float | None, threads: int, options: dict[str, object] | None
) -> highspy.Highs:
    h = new_highs(False)
    if time_limit is not None and math.isfinite(time_limit):
        h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("threads", int(threads))
    for key, value in (options or {}).items():
        h.setOptionValue(key, value)
    h.passModel(to_highs_lp(model))
    return h


def _add_margin_row(h: highspy.Highs, model: MipModel, robust_tol: float) -> np.ndarray:
    """Add ``objective >= -robust_tol`` as a row; return the objective's columns."""
    cost = model.cost_vector()
    nz = np.flatnonzero(cost)
    h.addRow(-robust_tol - model.offset, highspy.kHighsInf, nz.size, nz.astype(np.int32), cost[nz])
    return nz


def _presolve_refutes(
    model: MipModel, robust_tol: float, threads: int, options: dict[str, object] | None
) -> bool:
    """Does presolve alone prove that no input reaches margin ``-robust_tol``?"""
    # Refutations take ~10 ms on digits-sized models while a presolve that cannot refute takes
    # 0.1-0.3 s, so cap it: the cap bounds the probe's cost on instances it cannot settle.
    h = _setup(model, PROBE_TIME, threads, options)
    _add_margin_row(h, model, robust_tol)
    h.presolve()
    status = h.getModelPresolveStatus()
    return status in (
        highspy.HighsPresolveStatus.kInfeasible,
        highspy.HighsPresolveStatus.kUnboundedOrInfeasible,
    )


def _solve_callback(
    model: MipModel,
    found_tol: float,
    robust_tol: float,
    time_limit: float | None,
    threads: int,
    options: dict[str, object] | None,
) -> SolveResult:
    h = _setup(model, time_limit, threads, options)
    # HiGHS minimizes -margin: a solution below -found_tol or a dual bound above robust_tol
    # settles the sign (the HiGHS objective includes the offset, negated).

    def on_solution(e: highspy.cb.HighsCallbackEvent) -> None:
        if e.data_out.objective_function_value < -found_tol:
            e.data_in.user_interrupt = True

    def on_poll(e: highspy.cb.HighsCallbackEvent) -> None:
        if e.data_out.mip_dual_bound > robust_tol:
            e.data_in.user_interrupt = True

    h.cbMipImprovingSolution.subscribe(on_solution)
    h.cbMipInterrupt.subscribe(on_poll)
    t0 = time.perf_counter()
    h.run()
    return read_result(h, model, -1.0, time.perf_counter() - t0, mip=model.num_binaries > 0)


def _solve_feasibility(
    model: MipModel,
    found_tol: float,
    robust_tol: float,
    time_limit: float | None,
    threads: int,
    options: dict[str, object] | None,
    keep_objective: bool = False,
) -> SolveResult:
    t0 = time.perf_counter()
    h = _setup(model, time_limit, threads, options)
    nz = _add_margin_row(h, model, robust_tol)
    if keep_objective:
        # HiGHS minimizes -margin; stop at the first solution with margin > found_tol.
        h.setOptionValue("objective_target", -float(found_tol))
    else:
        h.changeColsCost(nz.size, nz.astype(np.int32), np.zeros(nz.size))
    h.run()
    elapsed = time.perf_counter() - t0
    status = str(h.getModelStatus()).split(".")[-1]
    if status in ("kInfeasible", "kUnboundedOrInfeasible"):
        # No input reaches margin -robust_tol: that is the robustness proof.
        return SolveResult("infeasible", None, -robust_tol, None, elapsed, _nodes(h), None, status)
    res = read_result(h, model, -1.0, elapsed, mip=model.num_binaries > 0)
    if not keep_objective:
        res.dual_bound = None  # the zero objective's bound says nothing about the margin
    if res.objective is not None and res.objective > found_tol:
        return res
    if status == "kTimeLimit":
        return res
    # A point within a hair of zero: settle it the slow way.
    rest = None if time_limit is None else max(time_limit - elapsed, 1e-3)
    again = solve_highs(
        model,
        time_limit=rest,
        threads=threads,
        stop_above=found_tol,
        stop_below=-robust_tol,
        options=options,
    )
    again.solve_time += elapsed
    return again


def _nodes(h: highspy.Highs) -> int:
    return int(h.getInfo().mip_node_count)
