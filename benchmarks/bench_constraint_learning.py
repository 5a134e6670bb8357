"""Constraint learning on real surrogate problems (issue 25): nn2mip vs OMLT vs PySCIPOpt-ML.

Problems (data in ../shared/data/omlt/, see SOURCES.md):

* reformer -- the auto-thermal reformer of OMLT's flagship notebook: inputs bypass fraction and
  NG/steam ratio (within the data's range), 12 outputs; maximize H2 subject to N2 <= 0.34.
  Surrogates of growing size, trained with MSE on min-max scaled inputs and standardized
  outputs (the scaling is folded into the net, so every tool gets the same float64 network in
  the user's units). Dense vs pruned (SPR, ReLU stability, neuron pruning), each pruned net the
  sparsest candidate whose validation MSE is within 1% relative of the dense one.
* diabetes -- counterfactual explanation: the minimal weighted-L1 change of a patient's features
  (weights 1/range) that flips a ReLU classifier's decision (logit margin >= 1e-4), features in
  their data ranges, the integer features integer.
* sin_quadratic -- the global minimum of a 1-D surrogate vs the data's minimum.

Every tool solves the same MIP question to a relative gap of 1e-7; every answer is re-checked
by nn2mip's float64 forward pass (the objective reported is the one at the re-checked point).
Each solve is capped at ``--time-limit`` seconds.

    python benchmarks/bench_constraint_learning.py --sizes 4x10 3x100 4x200 --time-limit 120
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import math
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.markdown import write_section  # noqa: E402
from nn2mip.network import AffineLayer, Network  # noqa: E402
from nn2mip.optimization import optimize  # noqa: E402
from nn2mip.scaling import Scaling, fold_scaling  # noqa: E402
from nn2mip.torch_io import from_torch  # noqa: E402
from pruning.catalogue import MethodConfig, run_method  # noqa: E402
from pruning.compact import compact_network  # noqa: E402
from pruning.regularizers import relu_stability_regularizer  # noqa: E402
from pruning.training import make_mlp, mse, train  # noqa: E402

logging.getLogger("pyomo.core").setLevel(logging.ERROR)

# ../shared/data/omlt next to the checkout (a git worktree lives one level deeper).
DATA = next(
    (p / "shared" / "data" / "omlt" for p in Path(__file__).resolve().parents[1:4]
     if (p / "shared" / "data" / "omlt").is_dir()),
    Path("shared/data/omlt"),
)  # fmt: skip
OUT = Path(__file__).resolve().parent / "results"
GAP = 1e-7
REFORMER_IN = ["Bypass Fraction", "NG Steam Ratio"]
# OMLT's notebook: every column but the inputs and O2 (about 1e-20 throughout).
REFORMER_OUT = [
    "Steam Flow", "Reformer Duty", "AR", "C2H6", "C3H8", "C4H10",
    "CH4", "CO", "CO2", "H2", "H2O", "N2",
]  # fmt: skip
DIABETES_INT = ["Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "Insulin", "Age"]


@dataclass
class Question:
    """A linear objective and constraints over a network's inputs x and outputs y, with an
    optional weighted L1 distance ``sum w |x - x0|`` added to the objective (counterfactuals)."""

    name: str
    net: Network
    lower: np.ndarray
    upper: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    sense: str
    rows: list[tuple[np.ndarray, np.ndarray, float, float]]  # (ax, ay, lo, hi)
    integer: np.ndarray
    l1_center: np.ndarray | None = None
    l1_weight: np.ndarray | None = None


@dataclass
class Row:
    problem: str
    size: str
    variant: str
    tool: str
    status: str = "error"
    objective: float | None = None
    bound: float | None = None
    build: float = math.nan
    solve: float = math.nan
    total: float = math.nan
    binaries: int = -1
    neurons: int = -1
    val_mse: float | None = None
    recheck_error: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# The page block this script writes with --write-page (BENCHMARKS.md, section 6).
TITLE = "Constraint learning: every row (issue 25)"


def _value(q: Question, x: np.ndarray) -> tuple[float, float]:
    """Objective and worst constraint violation at x by the float64 forward pass."""
    y = q.net.forward(x)
    obj = float(q.cx @ x + q.cy @ y)
    if q.l1_center is not None:
        obj += float(q.l1_weight @ np.abs(x - q.l1_center))
    viol = max(
        [0.0] + [max(lo - (ax @ x + ay @ y), ax @ x + ay @ y - hi) for ax, ay, lo, hi in q.rows]
    )
    return obj, float(viol)


# --------------------------------------------------------------------------- tools


def solve_nn2mip(q: Question, time_limit: float) -> Row:
    """``nn2mip.optimize``; an L1 term becomes inputs x = x0 + p - n (p, n >= 0), an exact
    affine change of the first layer, so the objective stays linear in the inputs."""
    row = Row(q.name, "", "", "nn2mip")
    t0 = time.perf_counter()
    net, lo, hi, cx, integer = q.net, q.lower, q.upper, q.cx, q.integer
    rows = q.rows
    if q.l1_center is not None:
        c, w0 = q.l1_center, q.net.layers[0]
        first = AffineLayer(np.hstack([w0.weight, -w0.weight]), w0.bias + w0.weight @ c, w0.relu)
        net = Network((first, *q.net.layers[1:]))
        lo = np.concatenate([np.zeros_like(c), np.zeros_like(c)])
        hi = np.concatenate([q.upper - c, c - q.lower])
        cx = np.concatenate([q.l1_weight + q.cx, q.l1_weight - q.cx])
        integer = np.concatenate([q.integer, q.integer])
        rows = [
            (np.concatenate([ax, -ax]), ay, lo_ - ax @ c, hi_ - ax @ c)
            for ax, ay, lo_, hi_ in q.rows
        ]
    nx, ny = net.input_size, net.output_size
    obj = {("x", i): v for i, v in enumerate(cx) if v}
    obj.update({("y", j): v for j, v in enumerate(q.cy) if v})
    cons = []
    for ax, ay, rlo, rhi in rows:
        terms = {("x", i): v for i, v in enumerate(ax) if v}
        terms.update({("y", j): v for j, v in enumerate(ay) if v})
        cons.append({"terms": terms, "lower": rlo, "upper": rhi})
    r = optimize(
        net,
        obj,
        cons,
        bounds=np.stack([lo, hi], axis=1),
        sense=q.sense,
        integer=[("x", i) for i in range(nx) if integer[i]],
        objective_offset=float(q.cx @ q.l1_center) if q.l1_center is not None else 0.0,
        time_limit=time_limit,
        mip_gap=GAP,
    )
    del ny
    row.total = time.perf_counter() - t0
    row.build, row.solve = r.bounds_time + r.build_time, r.solve_time
    row.status, row.bound, row.binaries = r.status, r.bound, r.stats.binaries
    if r.x is not None:
        x = r.x if q.l1_center is None else q.l1_center + r.x[: q.lower.size] - r.x[q.lower.size :]
        row.objective, viol = _value(q, x)
        row.recheck_error = r.output_error
        row.extra = {"x": x.tolist(), "violation": viol}
    return row


def _pyomo_question(q: Question, m: Any, xs: list[Any], ys: list[Any]) -> None:
    import pyomo.environ as pyo

    n = len(xs)
    expr = sum(float(q.cx[i]) * xs[i] for i in range(n) if q.cx[i])
    expr += sum(float(q.cy[j]) * ys[j] for j in range(len(ys)) if q.cy[j])
    if q.l1_center is not None:
        c = q.l1_center
        m.t = pyo.Var(range(n), bounds=(0.0, None))
        m.tp = pyo.Constraint(range(n), rule=lambda b, i: b.t[i] >= xs[i] - float(c[i]))
        m.tn = pyo.Constraint(range(n), rule=lambda b, i: b.t[i] >= float(c[i]) - xs[i])
        expr += sum(float(q.l1_weight[i]) * m.t[i] for i in range(n))
    m.obj = pyo.Objective(expr=expr, sense=pyo.maximize if q.sense == "max" else pyo.minimize)
    m.cons = pyo.ConstraintList()
    for ax, ay, lo, hi in q.rows:
        e = sum(float(ax[i]) * xs[i] for i in range(n) if ax[i])
        e += sum(float(ay[j]) * ys[j] for j in range(len(ys)) if ay[j])
        m.cons.add((None if lo == -math.inf else lo, e, None if hi == math.inf else hi))
    for i in np.flatnonzero(q.integer):
        xs[i].domain = pyo.Integers


def solve_omlt(q: Question, time_limit: float) -> Row:
    """OMLT ``ReluBigMFormulation`` on the same folded float64 net, HiGHS through appsi."""
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import ReluBigMFormulation
    from pyomo.contrib.appsi.solvers import Highs

    from benchmarks.peers.runners import omlt_network

    row = Row(q.name, "", "", "OMLT")
    t0 = time.perf_counter()
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(omlt_network(q.net, q.lower, q.upper)))
    xs = [m.nn.inputs[i] for i in range(q.net.input_size)]
    ys = [m.nn.outputs[j] for j in range(q.net.output_size)]
    _pyomo_question(q, m, xs, ys)
    row.build = time.perf_counter() - t0
    opt = Highs()
    opt.config.time_limit = float(time_limit)
    opt.config.load_solution = False
    opt.config.stream_solver = False
    opt.highs_options = {"threads": 1, "mip_rel_gap": GAP}
    t1 = time.perf_counter()
    res = opt.solve(m)
    row.solve = time.perf_counter() - t1
    lp = opt._solver_model.getLp()
    row.binaries = int(sum(1 for v in lp.integrality_ if str(v).endswith("kInteger")))
    row.status = res.termination_condition.name
    if res.best_objective_bound is not None and math.isfinite(res.best_objective_bound):
        row.bound = float(res.best_objective_bound)
    if res.best_feasible_objective is not None and math.isfinite(res.best_feasible_objective):
        res.solution_loader.load_vars()
        x = np.array([v.value for v in xs], dtype=np.float64)
        x[q.integer] = np.round(x[q.integer])
        row.objective, viol = _value(q, np.clip(x, q.lower, q.upper))
        row.extra = {"x": x.tolist(), "violation": viol}
    row.total = time.perf_counter() - t0
    return row


def solve_scipml(q: Question, time_limit: float) -> Row:
    """PySCIPOpt-ML ``add_predictor_constr`` (big-M) on the torch copy of the net, SCIP."""
    from pyscipopt import Model, quicksum
    from pyscipopt_ml.add_predictor import add_predictor_constr

    from nn2mip.torch_io import to_torch

    row = Row(q.name, "", "", "PySCIPOpt-ML")
    seq = to_torch(q.net, dtype=torch.float64)
    n, k = q.net.input_size, q.net.output_size
    t0 = time.perf_counter()
    s = Model()
    s.hideOutput()
    vt = [("I" if q.integer[i] else "C") for i in range(n)]
    xv = [s.addVar(vtype=vt[i], lb=float(q.lower[i]), ub=float(q.upper[i])) for i in range(n)]
    yv = [s.addVar(lb=None, ub=None) for _ in range(k)]
    x = np.array([xv], dtype=object)
    y = np.array([yv], dtype=object)
    add_predictor_constr(s, seq, x, y, formulation="bigm")
    expr = quicksum(float(q.cx[i]) * xv[i] for i in range(n) if q.cx[i])
    expr += quicksum(float(q.cy[j]) * yv[j] for j in range(k) if q.cy[j])
    if q.l1_center is not None:
        c = q.l1_center
        t = [s.addVar(lb=0.0, ub=None) for _ in range(n)]
        for i in range(n):
            s.addCons(t[i] >= xv[i] - float(c[i]))
            s.addCons(t[i] >= float(c[i]) - xv[i])
        expr += quicksum(float(q.l1_weight[i]) * t[i] for i in range(n))
    for ax, ay, lo, hi in q.rows:
        e = quicksum(float(ax[i]) * xv[i] for i in range(n) if ax[i])
        e += quicksum(float(ay[j]) * yv[j] for j in range(k) if ay[j])
        if lo > -math.inf:
            s.addCons(e >= lo)
        if hi < math.inf:
            s.addCons(e <= hi)
    s.setObjective(expr, "maximize" if q.sense == "max" else "minimize")
    row.build = time.perf_counter() - t0
    row.binaries = s.getNBinVars()
    s.setParam("limits/time", float(time_limit))
    s.setParam("limits/gap", GAP)
    s.setParam("lp/threads", 1)
    s.setParam("parallel/maxnthreads", 1)
    t1 = time.perf_counter()
    s.optimize()
    row.solve = time.perf_counter() - t1
    row.status = s.getStatus()
    db = s.getDualbound()
    if math.isfinite(db) and abs(db) < s.infinity():
        row.bound = float(db)
    if s.getNSols() > 0:
        sol = s.getBestSol()
        xs = np.array([s.getSolVal(sol, v) for v in xv], dtype=np.float64)
        xs[q.integer] = np.round(xs[q.integer])
        row.objective, viol = _value(q, np.clip(xs, q.lower, q.upper))
        row.extra = {"x": xs.tolist(), "violation": viol}
    row.total = time.perf_counter() - t0
    return row


TOOLS = {"nn2mip": solve_nn2mip, "OMLT": solve_omlt, "PySCIPOpt-ML": solve_scipml}


def run_tool(tool: str, q: Question, time_limit: float) -> Row:
    """A crash is a result to record, not a dead run."""
    t0 = time.perf_counter()
    try:
        return TOOLS[tool](q, time_limit)
    except Exception as err:  # noqa: BLE001
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        row = Row(q.name, "", "", tool, status=f"crash: {type(err).__name__}: {tb}")
        row.total = time.perf_counter() - t0
        return row


# --------------------------------------------------------------------------- surrogates


def _split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = int(0.8 * n)
    return perm[:k], perm[k:]


@dataclass
class Surrogate:
    net: Network  # folded: user units in, user units out
    val_mse: float  # on the scaled validation data
    model: torch.nn.Module
    note: str = ""


def _fold(model: torch.nn.Module, sc: Scaling, domain: tuple[float, float]) -> Network:
    return fold_scaling(compact_network(from_torch(model), domain=domain), sc)


def train_dense(xs, ys, hidden, epochs, seed=0, lr=3e-3):
    torch.manual_seed(seed)
    model = make_mlp(xs.shape[1], hidden, ys.shape[1], seed=seed)
    return train(model, xs, ys, epochs=epochs, lr=lr, batch_size=64, seed=seed)


def pruned_variants(
    dense: torch.nn.Module,
    xs: np.ndarray,
    ys: np.ndarray,
    tr: np.ndarray,
    va: np.ndarray,
    sc: Scaling,
    epochs: int,
    tol: float = 0.01,
    variants: tuple[str, ...] = ("spr", "neuron", "rs"),
) -> dict[str, Surrogate]:
    """Per method, the most aggressive candidate with val MSE <= (1 + tol) * dense val MSE; when
    none qualifies, the one with the lowest val MSE (marked)."""
    base = mse(dense, xs[va], ys[va])
    # SPR's strength: the classifier default (0.05) costs a regression net 10-1000x its
    # validation MSE on the reformer; 1e-4 keeps it within 1% (measured on 3x100).
    cfg = MethodConfig(finetune_epochs=max(epochs // 2, 5), epochs=epochs, lr=1e-3, spr_lambda=1e-4)
    out = {}
    candidates = {
        "spr": [("spr", a) for a in (0.8, 0.6, 0.4, 0.2)],
        "neuron": [("neuron", a) for a in (0.8, 0.6, 0.4, 0.2)],
        "rs": [("rs", w) for w in (1e-1, 3e-2, 1e-2, 3e-3)],
    }
    for name, cands in candidates.items():
        if name not in variants:
            continue
        best = None
        for kind, a in cands:
            m = copy.deepcopy(dense)
            if kind == "rs":
                # ReLU stability over the whole (min-max scaled) input box: eps 1 around any
                # point of [0, 1]^d clipped to the box is the box.
                reg = relu_stability_regularizer(a, eps=1.0, domain=(0.0, 1.0))
                train(m, xs[tr], ys[tr], epochs=epochs, lr=1e-3, regularizer=reg, batch_size=64)
            else:
                m, _ = run_method(m, xs[tr], ys[tr], kind, a, cfg)
            v = mse(m, xs[va], ys[va])
            s = Surrogate(_fold(m, sc, (0.0, 1.0)), v, m, f"{kind}={a}")
            if v <= (1 + tol) * base:
                best = s
                break
            if best is None or v < best.val_mse:
                best = s
                best.note += " (best; none within 1%)"
        out[name] = best
    return out


def reformer_question(net: Network, lo: np.ndarray, hi: np.ndarray) -> Question:
    k = len(REFORMER_OUT)
    cy = np.zeros(k)
    cy[REFORMER_OUT.index("H2")] = 1.0
    ay = np.zeros(k)
    ay[REFORMER_OUT.index("N2")] = 1.0
    return Question(
        "reformer", net, lo, hi, np.zeros(2), cy, "max", [(np.zeros(2), ay, -math.inf, 0.34)],
        np.zeros(2, dtype=bool),
    )  # fmt: skip


def _nearest_error(x_opt, y_opt, x_data, y_data, lo, hi, cols) -> dict[str, float]:
    """Surrogate error at the optimum: outputs vs the nearest data point (scaled distance)."""
    d = np.linalg.norm((x_data - x_opt) / (hi - lo), axis=1)
    i = int(np.argmin(d))
    return {
        "nearest_dist": float(d[i]),
        **{f"err_{REFORMER_OUT[c]}": float(y_opt[c] - y_data[i, c]) for c in cols},
    }


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a numeric CSV file by (stripped) header name."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]]
    data = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=np.float64)
    return {h: data[:, i] for i, h in enumerate(header)}


def bench_reformer(sizes, time_limit, tools, epochs, rows: list[Row], variants=()) -> None:
    df = read_csv(DATA / "reformer.csv")
    x = np.stack([df[c] for c in REFORMER_IN], axis=1)
    y = np.stack([df[c] for c in REFORMER_OUT], axis=1)
    sc = Scaling.from_data(x, None, "minmax")
    sy = Scaling.from_data(y, None, "standard")
    sc = Scaling(sc.input_offset, sc.input_factor, sy.input_offset, sy.input_factor)
    xs = sc.scale_inputs(x).astype(np.float32)
    ys = sc.scale_outputs(y).astype(np.float32)
    tr, va = _split(len(x))
    lo, hi = x.min(axis=0), x.max(axis=0)
    h2, n2 = REFORMER_OUT.index("H2"), REFORMER_OUT.index("N2")
    for size in sizes:
        depth, width = (int(v) for v in size.split("x"))
        t0 = time.perf_counter()
        dense = train_dense(xs[tr], ys[tr], [width] * depth, epochs)
        print(f"[reformer {size}] dense trained in {time.perf_counter() - t0:.1f} s", flush=True)
        surrogates = {"dense": Surrogate(_fold(dense, sc, (0.0, 1.0)), 0.0, dense)}
        surrogates["dense"].val_mse = mse(dense, xs[va], ys[va])
        if "nn2mip" in tools:
            surrogates.update(
                pruned_variants(dense, xs, ys, tr, va, sc, epochs // 2, variants=tuple(variants))
            )
        for variant, s in surrogates.items():
            q = reformer_question(s.net, lo, hi)
            run = tools if variant == "dense" else ["nn2mip"]
            for tool in run:
                r = run_tool(tool, q, time_limit)
                r.size, r.variant, r.val_mse = size, variant, s.val_mse
                r.neurons = s.net.num_hidden_neurons
                r.extra["note"] = s.note
                if "x" in r.extra:
                    xo = np.array(r.extra["x"])
                    r.extra.update(_nearest_error(xo, s.net.forward(xo), x, y, lo, hi, [h2, n2]))
                rows.append(r)
                _print(r)


def bench_diabetes(time_limit, tools, epochs, rows: list[Row], patients: int = 3) -> None:
    df = read_csv(DATA / "diabetes.csv")
    feats = [c for c in df if c != "Outcome"]
    x = np.stack([df[c] for c in feats], axis=1)
    labels = df["Outcome"].astype(np.int64)
    sc = Scaling.from_data(x, None, "standard")
    xs = sc.scale_inputs(x).astype(np.float32)
    tr, va = _split(len(x))
    model = train(make_mlp(8, [16, 16], 2, seed=0), xs[tr], labels[tr], epochs=epochs, lr=3e-3)
    net = fold_scaling(from_torch(model), Scaling(sc.input_offset, sc.input_factor))
    acc = float((net.predict(x[va]) == labels[va]).mean())
    print(f"[diabetes] 8-16-16-2 classifier, validation accuracy {acc:.3f}", flush=True)
    lo, hi = x.min(axis=0), x.max(axis=0)
    integer = np.array([f in DIABETES_INT for f in feats])
    pred = net.predict(x[va])
    for p in va[pred == 0][:patients]:
        x0 = x[p]
        ay = np.array([-1.0, 1.0])  # logit1 - logit0 >= 1e-4
        q = Question(
            "diabetes", net, lo, hi, np.zeros(8), np.zeros(2), "min",
            [(np.zeros(8), ay, 1e-4, math.inf)], integer, x0, 1.0 / (hi - lo),
        )  # fmt: skip
        for tool in tools:
            r = run_tool(tool, q, time_limit)
            r.size, r.variant, r.neurons = f"patient {p}", "dense", net.num_hidden_neurons
            if "x" in r.extra:
                xc = np.array(r.extra["x"])
                r.extra["flipped"] = bool(net.predict(xc)[0] == 1)
                r.extra["changed"] = {
                    f: [x0[i], xc[i]] for i, f in enumerate(feats) if xc[i] != x0[i]
                }
            r.extra["val_acc"] = acc
            rows.append(r)
            _print(r)


def bench_sin(time_limit, tools, epochs, rows: list[Row]) -> None:
    df = read_csv(DATA / "sin_quadratic.csv")
    x, y = df["x"][:, None], df["y"][:, None]
    sc = Scaling.from_data(x, y, "minmax")
    xs, ys = sc.scale_inputs(x).astype(np.float32), sc.scale_outputs(y).astype(np.float32)
    tr, va = _split(len(x))
    model = train_dense(xs[tr], ys[tr], [25, 25], epochs)
    net = _fold(model, sc, (0.0, 1.0))
    q = Question(
        "sin_quadratic", net, x.min(axis=0), x.max(axis=0), np.zeros(1), np.ones(1), "min", [],
        np.zeros(1, dtype=bool),
    )  # fmt: skip
    grid = np.linspace(x.min(), x.max(), 400001)[:, None]
    for tool in tools:
        r = run_tool(tool, q, time_limit)
        r.size, r.variant, r.neurons = "1x25x25", "dense", net.num_hidden_neurons
        r.val_mse = mse(model, xs[va], ys[va])
        i = int(np.argmin(y[:, 0]))
        r.extra.update(
            data_min=float(y[i, 0]),
            data_argmin=float(x[i, 0]),
            grid_min=float(net.forward(grid).min()),
        )
        rows.append(r)
        _print(r)


def _print(r: Row) -> None:
    obj = "-" if r.objective is None else f"{r.objective:.9g}"
    print(
        f"  {r.problem:13s} {r.size:12s} {r.variant:7s} {r.tool:13s} {r.status:12s} obj {obj:>14s}"
        f" bin {r.binaries:5d} build {r.build:7.2f} solve {r.solve:8.2f} total {r.total:8.2f}",
        flush=True,
    )


def _f(v: Any, fmt: str = ".3g") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def render_markdown(doc: dict[str, Any]) -> str:
    """The results as Markdown: every row, then per problem and size the agreement of the
    optima, nn2mip's end-to-end speed ratio vs OMLT, and pruned-vs-dense solve ratios."""
    rows = doc["rows"]
    lines = [
        "| problem | size | variant | tool | status | optimum (re-checked) | proven bound "
        "| binaries | neurons | build s | solve s | total s | val MSE | note |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        e = r["extra"]
        note = e.get("note", "")
        if "err_H2" in e:
            note += f" H2 err vs nearest data {e['err_H2']:+.2g}, N2 {e['err_N2']:+.2g}"
        if "grid_min" in e:
            note += f" grid min {e['grid_min']:.9g}; data min {e['data_min']:.6g}"
            note += f" at x={e['data_argmin']:.4g}, surrogate argmin x={e['x'][0]:.4g}"
        if "flipped" in e:
            moved = {
                f: f"{a:g}->{b:.6g}"
                for f, (a, b) in e["changed"].items()
                if abs(b - a) > 1e-6 * (1 + abs(a))  # solver noise is not a change
            }
            note += f" flipped={e['flipped']}; changed {moved}"
        lines.append(
            f"| {r['problem']} | {r['size']} | {r['variant']} | {r['tool']} | {r['status']} "
            f"| {_f(r['objective'], '.9g')} | {_f(r['bound'], '.9g')} | {r['binaries']} "
            f"| {r['neurons']} | {_f(r['build'], '.2f')} | {_f(r['solve'], '.2f')} "
            f"| {_f(r['total'], '.2f')} | {_f(r['val_mse'], '.3g')} | {note.strip()} |"
        )
    lines += ["", "| problem | size | optimum agreement (max rel. diff) | OMLT / nn2mip total "
              "| PySCIPOpt-ML / nn2mip total | pruned solve speed-up (dense > 10 s) |",
              "|---|---|---:|---:|---:|---|"]  # fmt: skip
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["problem"], r["size"]), []).append(r)
    for (prob, size), rs in groups.items():
        dense = {r["tool"]: r for r in rs if r["variant"] == "dense"}
        objs = [r["objective"] for r in dense.values() if r["objective"] is not None]
        opt = [r["objective"] for r in dense.values() if r["status"] == "optimal"]
        agree = "-"
        if len(opt) > 1:
            ref = max(abs(v) for v in opt) or 1.0
            agree = f"{(max(opt) - min(opt)) / ref:.1e} ({len(opt)} optimal)"
        elif objs:
            agree = f"only {len(opt)} optimal"
        nn = dense.get("nn2mip")

        def ratio(tool: str, nn: dict[str, Any] | None = nn, dense: Any = dense) -> str:
            if nn is None or tool not in dense:
                return "-"
            both = nn["status"] == "optimal" and dense[tool]["status"] == "optimal"
            return f"{dense[tool]['total'] / nn['total']:.2f}x" + ("" if both else " (capped)")

        sp = []
        if nn is not None and nn["total"] > 10:
            for r in rs:
                if r["variant"] != "dense" and r["tool"] == "nn2mip":
                    capped = "" if nn["status"] == "optimal" else ">="
                    text = f"{r['variant']} {capped}{nn['solve'] / r['solve']:.1f}x"
                    if r["status"] != "optimal":
                        text = f"{r['variant']} capped too"
                    if "none within 1%" in r["extra"].get("note", ""):
                        text += " (val MSE not within 1%)"
                    sp.append(text)
        lines.append(
            f"| {prob} | {size} | {agree} | {ratio('OMLT')} | {ratio('PySCIPOpt-ML')} "
            f"| {', '.join(sp) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["reformer", "diabetes", "sin"])
    ap.add_argument("--sizes", nargs="+", default=["4x10", "3x100", "4x200"])
    ap.add_argument("--tools", nargs="+", default=list(TOOLS))
    ap.add_argument("--variants", nargs="*", default=["spr", "neuron", "rs"])
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default=str(OUT / "constraint_learning.json"))
    ap.add_argument("--render", default=None, help="only print the Markdown of a results file")
    ap.add_argument(
        "--write-page",
        action="store_true",
        help=f"also put the rows into BENCHMARKS.md's '{TITLE}' block (with --render: from a file)",
    )
    args = ap.parse_args(argv)
    if args.render:
        md = render_markdown(json.loads(Path(args.render).read_text()))
        if args.write_page:
            write_section(TITLE, md)
        else:
            print(md, end="")
        return 0
    torch.set_num_threads(1)
    rows: list[Row] = []
    t0 = time.perf_counter()
    if "sin" in args.problems:
        bench_sin(args.time_limit, args.tools, args.epochs, rows)
    if "diabetes" in args.problems:
        bench_diabetes(args.time_limit, args.tools, args.epochs, rows)
    if "reformer" in args.problems:
        bench_reformer(args.sizes, args.time_limit, args.tools, args.epochs, rows, args.variants)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "command": "python benchmarks/bench_constraint_learning.py "
        + " ".join(argv or sys.argv[1:]),
        "wall": time.perf_counter() - t0,
        "rows": [asdict(r) for r in rows],
    }
    out.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    out.with_suffix(".md").write_text(render_markdown(doc))
    if args.write_page:
        write_section(TITLE, render_markdown(doc))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
