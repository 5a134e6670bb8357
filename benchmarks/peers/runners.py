"""One runner per tool: build the tool's model for an instance, solve it, re-check the witness.

Every runner asks the same question (maximize ``y[target] - y[label]`` over the ball) and
returns a ``ToolResult``. Timings: ``build`` is the modeling work up to a model ready to solve
(bounds included), ``solve`` is the wall time of the solve call (for Pyomo paths that includes
Pyomo's hand-off to HiGHS), ``solver_time`` the solver's own clock, ``total`` the whole run
including the witness re-check. Sizes are those of the model handed to the solver (before its
presolve).
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from adversarial.witness import check_witness
from benchmarks.peers.instances import Instance
from nn2mip.bounds import DEFAULT_BOUND_METHOD
from nn2mip.network import Network

ROBUST_TOL = 1e-6
FOUND_TOL = 1e-6

# OMLT assigns initial values outside the variable bounds; Pyomo warns once per input.
logging.getLogger("pyomo.core").setLevel(logging.ERROR)


@dataclass
class ToolResult:
    """What one tool did on one instance."""

    tool: str
    network: str
    instance: str
    mode: str  # "opt" (to optimality) or "sign" (stop once the sign of the margin is settled)
    verdict: str = "error"  # adversarial / robust / timeout / unknown / error
    status: str = ""
    optimal: bool = False
    objective: float | None = None  # the solver's best margin
    bound: float | None = None  # the solver's proven upper bound on the margin
    witness_margin: float | None = None  # float64 forward pass at the (projected) witness
    witness_ok: bool | None = None
    build: float = math.nan
    solve: float = math.nan
    solver_time: float = math.nan
    total: float = math.nan
    binaries: int = -1
    rows: int = -1
    cols: int = -1
    nonzeros: int = -1
    note: str = ""
    # nn2mip only: the bound method, whether PGD ran first (as in the batch engine), its time,
    # and what decided the instance ("clean" center, "pgd" or "mip").
    bound_method: str = ""
    pgd: bool = False
    pgd_time: float = 0.0
    decided_by: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _judge(out: ToolResult, net: Network, inst: Instance, x: np.ndarray | None) -> None:
    """Verdict from re-checked evidence only (the same rule for every tool)."""
    if x is not None and out.objective is not None:
        chk = check_witness(net, x, inst.region(), inst.label, inst.target)
        out.witness_margin, out.witness_ok = chk.margin, chk.passed
        if out.objective > 0.0 and chk.passed:
            out.verdict = "adversarial"
            return
        if out.objective > 0.0:
            out.note = f"witness failed the float64 re-check (margin {chk.margin:.3g})"
    if out.bound is not None and out.bound <= -ROBUST_TOL:
        out.verdict = "robust"
    elif out.status in ("time_limit", "timelimit", "maxTimeLimit"):
        out.verdict = "timeout"
    else:
        out.verdict = "unknown"


# --------------------------------------------------------------------------- nn2mip (highspy)


def nn2mip_tool(base: str, bound_method: str, pgd: bool, method: str = "mip") -> str:
    """The store name of an nn2mip variant: ``nn2mip[symbolic+pgd]``, ``nn2mip-pyomo[lp]``,
    ``nn2mip[symbolic+pgd+bab]`` (branch and bound before the MIP, ``method="auto"``)."""
    bab = "" if method == "mip" else ("+bab" if method == "auto" else "+babonly")
    return f"{base}[{bound_method}{'+pgd' if pgd else ''}{bab}]"


def run_nn2mip_highs(
    net: Network,
    inst: Instance,
    time_limit: float,
    mode: str,
    bound_method: str = DEFAULT_BOUND_METHOD,
    method: str = "mip",
) -> ToolResult:
    """nn2mip's own path: sparse formulation handed to highspy in one call; with ``method``
    "auto", branch and bound answers sign questions first on box regions."""
    from adversarial.problems import targeted_attack

    tool = nn2mip_tool("nn2mip", bound_method, False, method)
    out = ToolResult(tool, inst.network_name, inst.key, mode)
    out.bound_method = bound_method
    r = targeted_attack(
        net,
        inst.x0,
        inst.label,
        inst.target,
        inst.eps,
        inst.norm,
        time_limit=time_limit,
        threads=1,
        bound_method=bound_method,
        early_stop=(mode == "sign"),
        method=method,
    )
    out.decided_by = r.decided_by
    out.build = r.bounds_time + r.build_time
    out.solve = r.solve_time
    out.solver_time = r.solve_time
    out.total = r.total_time
    out.status = r.solver_status
    out.optimal = r.solver_status == "optimal" and mode == "opt"
    out.bound = r.bound
    out.objective = r.margin
    out.binaries, out.rows = r.stats.binaries, r.stats.rows
    out.cols, out.nonzeros = r.stats.cols, r.stats.nonzeros
    out.note = r.note
    if r.witness is not None:
        chk = check_witness(net, r.witness, inst.region(), inst.label, inst.target)
        out.witness_margin, out.witness_ok = chk.margin, chk.passed
    out.verdict = r.verdict
    return out


def pgd_first(runner: Runner, tool: str) -> Runner:
    """``runner`` behind the batch engine's cheap attacks (``adversarial.batch.solve_instance``):
    the center is checked, then PGD runs with the batch defaults (``BatchSpec.pgd_steps`` /
    ``pgd_restarts``); a witness that passes ``check_witness`` decides "adversarial" and no
    model is built (build/solve/sizes stay unset). Otherwise the MIP runner gets the time left.
    ``total`` counts everything from the first check on.
    """
    from adversarial.batch import BatchSpec
    from adversarial.pgd import pgd_attack

    def run(net: Network, inst: Instance, time_limit: float, mode: str) -> ToolResult:
        t0 = time.perf_counter()
        region = inst.region()
        chk = check_witness(net, inst.x0, region, inst.label, inst.target)
        decided_by, pgd_time = ("clean" if chk.passed else ""), 0.0
        if not chk.passed:
            pg = pgd_attack(
                net, region, inst.label, inst.target, BatchSpec.pgd_steps, BatchSpec.pgd_restarts
            )
            pgd_time = pg.time
            if pg.check is not None:
                # Re-checked here too, as every witness in this benchmark is.
                chk = check_witness(net, pg.check.x, region, inst.label, inst.target)
                decided_by = "pgd" if chk.passed else ""
        if decided_by:
            out = ToolResult(tool, inst.network_name, inst.key, mode, verdict="adversarial")
            out.status, out.decided_by = decided_by, decided_by
            out.objective = out.witness_margin = chk.margin
            out.witness_ok = chk.passed
            out.note = f"decided by {decided_by}"
        else:
            left = max(time_limit - (time.perf_counter() - t0), 1e-2)
            out = runner(net, inst, left, mode)
            out.tool = tool
        out.pgd, out.pgd_time = True, pgd_time
        out.total = time.perf_counter() - t0
        return out

    return run


# --------------------------------------------------------------------------- Pyomo helpers


def _add_l1_pyomo(m: Any, xs: list[Any], inst: Instance) -> None:
    """``t_i >= |x_i - c_i|``, ``sum t <= eps``: the L1 ball for a Pyomo model."""
    import pyomo.environ as pyo

    c = inst.x0
    n = len(xs)
    m.l1_t = pyo.Var(range(n), bounds=(0.0, None))
    m.l1_pos = pyo.Constraint(range(n), rule=lambda b, i: b.l1_t[i] >= xs[i] - float(c[i]))
    m.l1_neg = pyo.Constraint(range(n), rule=lambda b, i: b.l1_t[i] >= float(c[i]) - xs[i])
    m.l1_sum = pyo.Constraint(expr=sum(m.l1_t[i] for i in range(n)) <= inst.eps)


def _solve_appsi(
    m: Any, out: ToolResult, xs: list[Any], time_limit: float, mode: str
) -> np.ndarray | None:
    """Solve a Pyomo model (max margin) with HiGHS through Pyomo's appsi interface."""
    from pyomo.contrib.appsi.solvers import Highs

    opt = Highs()
    opt.config.time_limit = float(time_limit)
    opt.config.load_solution = False
    opt.config.stream_solver = False
    options: dict[str, Any] = {"threads": 1}
    if mode == "sign":
        # HiGHS minimizes internally; appsi passes the max sense. Settle the sign only.
        options.update({"objective_target": FOUND_TOL, "objective_bound": -ROBUST_TOL})
    opt.highs_options = options
    t0 = time.perf_counter()
    res = opt.solve(m)
    out.solve = time.perf_counter() - t0
    h = opt._solver_model  # the highspy.Highs object appsi built
    out.solver_time = float(h.getRunTime())
    lp = h.getLp()
    out.rows, out.cols = int(lp.num_row_), int(lp.num_col_)
    out.nonzeros = int(len(lp.a_matrix_.value_))
    out.binaries = int(sum(1 for v in lp.integrality_ if str(v).endswith("kInteger")))
    tc = res.termination_condition.name
    out.status = {"maxTimeLimit": "time_limit", "objectiveLimit": "objective_limit"}.get(tc, tc)
    out.optimal = tc == "optimal" and mode == "opt"
    if res.best_objective_bound is not None and math.isfinite(res.best_objective_bound):
        out.bound = float(res.best_objective_bound)
    if mode == "sign" and tc == "infeasible":
        out.bound, out.status = -ROBUST_TOL, "objective_bound"  # the cutoff proved it
    if res.best_feasible_objective is None or not math.isfinite(res.best_feasible_objective):
        return None
    out.objective = float(res.best_feasible_objective)
    res.solution_loader.load_vars()
    return np.array([v.value for v in xs], dtype=np.float64)


def _max_margin_pyomo(m: Any, outputs: Any, inst: Instance) -> None:
    import pyomo.environ as pyo

    m.margin = pyo.Objective(expr=outputs[inst.target] - outputs[inst.label], sense=pyo.maximize)


# --------------------------------------------------------------------------- nn2mip (Pyomo)


def pyomo_backend_available() -> bool:
    """True when ``nn2mip.pyomo_backend`` (the Pyomo modeling path) can be imported."""
    try:
        import nn2mip.pyomo_backend  # noqa: F401
    except ImportError:
        return False
    return True


def run_nn2mip_pyomo(
    net: Network,
    inst: Instance,
    time_limit: float,
    mode: str,
    bound_method: str = DEFAULT_BOUND_METHOD,
) -> ToolResult:
    """nn2mip's Pyomo block (``add_network``), solved with HiGHS through Pyomo (appsi)."""
    import pyomo.environ as pyo

    from nn2mip.pyomo_backend import add_network

    tool = nn2mip_tool("nn2mip-pyomo", bound_method, False)
    out = ToolResult(tool, inst.network_name, inst.key, mode)
    out.bound_method, out.decided_by = bound_method, "mip"
    t0 = time.perf_counter()
    m = pyo.ConcreteModel()
    pn = add_network(m, net, region=inst.region(), bound_method=bound_method)
    _max_margin_pyomo(m, pn.output_vars, inst)
    out.build = time.perf_counter() - t0
    xs = [pn.input_vars[i] for i in range(net.input_size)]
    x = _solve_appsi(m, out, xs, time_limit, mode)
    _judge(out, net, inst, x)
    out.total = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- OMLT


def omlt_network(net: Network, lo: np.ndarray, hi: np.ndarray) -> Any:
    """OMLT NetworkDefinition with the same float64 weights and the region's box as bounds."""
    from omlt.neuralnet import NetworkDefinition
    from omlt.neuralnet.layer import DenseLayer, InputLayer

    bounds = {i: (float(lo[i]), float(hi[i])) for i in range(net.input_size)}
    nd = NetworkDefinition(scaled_input_bounds=bounds)
    prev: Any = InputLayer([net.input_size])
    nd.add_layer(prev)
    for layer in net.layers:
        dl = DenseLayer(
            prev.output_size,
            [layer.out_features],
            activation="relu" if layer.relu else "linear",
            weights=layer.weight.T.copy(),
            biases=layer.bias.copy(),
        )
        nd.add_layer(dl)
        nd.add_edge(prev, dl)
        prev = dl
    return nd


def run_omlt(net: Network, inst: Instance, time_limit: float, mode: str) -> ToolResult:
    """OMLT ``ReluBigMFormulation`` (input bounds = the region's box), HiGHS through Pyomo."""
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import ReluBigMFormulation

    out = ToolResult("OMLT", inst.network_name, inst.key, mode)
    reg = inst.region()
    t0 = time.perf_counter()
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(omlt_network(net, reg.lower, reg.upper)))
    xs = [m.nn.inputs[i] for i in range(reg.size)]
    if inst.norm == "1":
        _add_l1_pyomo(m, xs, inst)
    outputs = {j: m.nn.outputs[j] for j in range(net.output_size)}
    _max_margin_pyomo(m, outputs, inst)
    out.build = time.perf_counter() - t0
    x = _solve_appsi(m, out, xs, time_limit, mode)
    _judge(out, net, inst, x)
    out.total = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- PySCIPOpt-ML


def run_scipml(net: Network, inst: Instance, time_limit: float, mode: str) -> ToolResult:
    """PySCIPOpt-ML ``add_predictor_constr`` (big-M) on the torch copy of the net, SCIP."""
    import torch
    from pyscipopt import Model, quicksum
    from pyscipopt_ml.add_predictor import add_predictor_constr

    from nn2mip.torch_io import to_torch

    out = ToolResult("PySCIPOpt-ML", inst.network_name, inst.key, mode)
    seq = to_torch(net, dtype=torch.float64)  # format conversion only, not timed
    reg = inst.region()
    n = reg.size
    t0 = time.perf_counter()
    s = Model()
    s.hideOutput()
    x = s.addMatrixVar((1, n), vtype="C", lb=reg.lower.reshape(1, n), ub=reg.upper.reshape(1, n))
    y = s.addMatrixVar((1, net.output_size), vtype="C", lb=None, ub=None)
    add_predictor_constr(s, seq, x, y, formulation="bigm")
    if inst.norm == "1":
        c = inst.x0
        t = [s.addVar(lb=0.0, ub=None) for _ in range(n)]
        for i in range(n):
            s.addCons(t[i] >= x[0, i] - float(c[i]))
            s.addCons(t[i] >= float(c[i]) - x[0, i])
        s.addCons(quicksum(t) <= inst.eps)
    s.setObjective(y[0, inst.target] - y[0, inst.label], "maximize")
    out.build = time.perf_counter() - t0
    out.cols, out.binaries = s.getNVars(), s.getNBinVars()
    conss = s.getConss()
    out.rows = len(conss)
    out.nonzeros = sum(len(s.getValsLinear(c)) for c in conss if c.isLinear())
    s.setParam("limits/time", float(time_limit))
    s.setParam("lp/threads", 1)
    s.setParam("parallel/maxnthreads", 1)
    if mode == "sign":
        # Only solutions with a positive margin count; the first one ends the search, and an
        # empty search proves the margin <= 0.
        s.setObjlimit(0.0)
        s.setParam("limits/solutions", 1)
    t1 = time.perf_counter()
    s.optimize()
    out.solve = time.perf_counter() - t1
    out.solver_time = float(s.getSolvingTime())
    status = s.getStatus()
    out.status = {"timelimit": "time_limit"}.get(status, status)
    out.optimal = status == "optimal" and mode == "opt"
    xv = None
    if s.getNSols() > 0:
        sol = s.getBestSol()
        out.objective = float(s.getSolObjVal(sol))
        xv = np.array([s.getSolVal(sol, x[0, i]) for i in range(n)], dtype=np.float64)
    db = s.getDualbound()
    if math.isfinite(db) and abs(db) < s.infinity():
        out.bound = float(db)
    if mode == "sign" and status == "infeasible":
        out.bound, out.status = -ROBUST_TOL, "objective_bound"
    _judge(out, net, inst, xv)
    out.total = time.perf_counter() - t0
    return out


Runner = Callable[[Network, Instance, float, str], ToolResult]


def guarded(runner: Runner, tool: str) -> Runner:
    """Wrap a runner so a crash becomes an ``error`` row with the exception, not a dead run."""

    def run(net: Network, inst: Instance, time_limit: float, mode: str) -> ToolResult:
        t0 = time.perf_counter()
        try:
            return runner(net, inst, time_limit, mode)
        except Exception as err:  # noqa: BLE001 - a peer crash is a result to record
            tb = traceback.format_exc(limit=2).strip().splitlines()[-1]
            out = ToolResult(tool, inst.network_name, inst.key, mode, note=f"crash: {tb}")
            out.total = time.perf_counter() - t0
            out.status = type(err).__name__
            return out

    return run
