"""Optimization over a learned model: a network as constraints inside the user's own problem.

``optimize(net, objective=..., constraints=..., bounds=...)`` states a MIP over the network's
inputs ``x`` and outputs ``y``: box bounds on ``x`` (some inputs integer), a linear objective
and linear constraints over ``x`` and ``y``, referred to by name or by index. The network is
encoded as in verification (same neuron bounds over the input box, same big-M formulation,
stable neurons without binaries), solved with HiGHS, and the answer is re-checked: the outputs
returned are a float64 forward pass at the optimal inputs, and the MIP's own outputs must match
them within tolerance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nn2mip.bounds import DEFAULT_BOUND_METHOD, compute_bounds
from nn2mip.errors import InvalidInputError
from nn2mip.formulation import FormulationStats, encode_network
from nn2mip.highs_backend import solve_highs
from nn2mip.mip import MipModel
from nn2mip.network import Network
from nn2mip.region import box_region

# A reference to one variable: a name, or ("x", i) / ("y", j) by index.
Ref = str | tuple[str, int]
# A linear expression: {reference: coefficient}.
Terms = Mapping[Ref, float]

# |MIP output - forward pass| allowed, relative to 1 + |output|: the big-M rows hold to the
# solver's feasibility tolerance (1e-9 here) times the bound magnitudes, far below this.
RECHECK_TOL = 1e-5


@dataclass
class LinearConstraint:
    """``lower <= sum terms[v] * v <= upper`` over inputs and outputs (either bound may be
    infinite)."""

    terms: Terms
    lower: float = -math.inf
    upper: float = math.inf
    name: str = ""


@dataclass
class OptimizeResult:
    """The answer, in the user's units.

    ``status``: optimal, time_limit, infeasible, objective_target (``stop_at`` reached), or
    another ``SolveResult`` status. ``x``/``y``: the optimal (best) inputs and the float64
    forward pass there; ``objective``: the objective at (x, y) so computed. ``bound``: the
    proven bound on the objective (an upper bound when maximizing); ``gap``: relative gap
    between ``objective`` and ``bound``. ``output_error``: max |MIP outputs - forward pass|;
    ``max_violation``: the worst constraint violation at the re-checked (x, y).
    """

    status: str
    sense: str
    x: np.ndarray | None
    y: np.ndarray | None
    objective: float | None
    bound: float | None
    gap: float | None
    input_names: list[str]
    output_names: list[str]
    output_error: float | None = None
    max_violation: float | None = None
    recheck_ok: bool | None = None
    solver_objective: float | None = None
    bounds_time: float = 0.0
    build_time: float = 0.0
    solve_time: float = 0.0
    total_time: float = 0.0
    nodes: int = 0
    stats: FormulationStats = field(default_factory=FormulationStats)

    def inputs(self) -> dict[str, float]:
        """The optimal inputs by name."""
        return {} if self.x is None else dict(zip(self.input_names, self.x.tolist(), strict=True))

    def outputs(self) -> dict[str, float]:
        """The network's outputs at the optimal inputs (forward pass), by name."""
        return {} if self.y is None else dict(zip(self.output_names, self.y.tolist(), strict=True))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (arrays as name -> value maps)."""
        d = asdict(self)
        d["x"], d["y"] = self.inputs(), self.outputs()
        d.pop("input_names")
        d.pop("output_names")
        return d


def _names(given: Sequence[str] | None, n: int, prefix: str, what: str) -> list[str]:
    if given is None:
        return [f"{prefix}{i}" for i in range(n)]
    names = [str(s) for s in given]
    if len(names) != n:
        raise InvalidInputError(f"got {len(names)} {what} names for {n} network {what}s")
    return names


class _Index:
    """Resolves references to MIP columns."""

    def __init__(self, in_names: list[str], out_names: list[str], xc: np.ndarray, yc: np.ndarray):
        seen: set[str] = set()
        for nm in in_names + out_names:
            if nm in seen:
                raise InvalidInputError(f"names must be unique across inputs and outputs: {nm!r}")
            seen.add(nm)
        self.cols = {n: int(c) for n, c in zip(in_names, xc, strict=True)}
        self.cols.update({n: int(c) for n, c in zip(out_names, yc, strict=True)})
        self.xc, self.yc = xc, yc
        self.in_names, self.out_names = in_names, out_names

    def col(self, ref: Ref) -> int:
        if isinstance(ref, tuple) and len(ref) == 2 and ref[0] in ("x", "y"):
            arr = self.xc if ref[0] == "x" else self.yc
            i = ref[1]
            if not isinstance(i, (int, np.integer)) or not 0 <= i < arr.size:
                kind = "input" if ref[0] == "x" else "output"
                raise InvalidInputError(f"{kind} index {i} is out of range 0..{arr.size - 1}")
            return int(arr[i])
        if isinstance(ref, str) and ref in self.cols:
            return self.cols[ref]
        raise InvalidInputError(
            f"unknown variable {ref!r}: use an input name ({', '.join(self.in_names[:6])}...), "
            f"an output name ({', '.join(self.out_names[:6])}...), or ('x', i) / ('y', j)"
        )

    def expr(self, terms: Terms, what: str) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(terms, Mapping) or not terms:
            raise InvalidInputError(f"{what} must be a non-empty mapping {{variable: coefficient}}")
        cols, coefs = [], []
        for ref, c in terms.items():
            try:
                v = float(c)
            except (TypeError, ValueError):
                raise InvalidInputError(f"{what}: coefficient of {ref!r} is not a number") from None
            if not math.isfinite(v):
                raise InvalidInputError(f"{what}: coefficient of {ref!r} is not finite")
            cols.append(self.col(ref))
            coefs.append(v)
        return np.array(cols, np.int64), np.array(coefs, np.float64)


def _constraint(c: Any) -> LinearConstraint:
    """Accept ``LinearConstraint``, ``(terms, op, rhs)`` or ``{"terms", "lower", "upper"}``."""
    if isinstance(c, LinearConstraint):
        out = c
    elif isinstance(c, tuple) and len(c) == 3:
        terms, op, rhs = c
        rhs = float(rhs)
        if op == "<=":
            out = LinearConstraint(terms, upper=rhs)
        elif op == ">=":
            out = LinearConstraint(terms, lower=rhs)
        elif op == "==":
            out = LinearConstraint(terms, lower=rhs, upper=rhs)
        else:
            raise InvalidInputError(f"constraint operator must be <=, >= or ==, got {op!r}")
    elif isinstance(c, Mapping) and "terms" in c:
        unknown = set(c) - {"terms", "lower", "upper", "name"}
        if unknown:
            raise InvalidInputError(f"unknown constraint key {sorted(unknown)[0]!r}")
        out = LinearConstraint(
            c["terms"],
            float(c.get("lower", -math.inf)),
            float(c.get("upper", math.inf)),
            str(c.get("name", "")),
        )
    else:
        raise InvalidInputError(
            "a constraint is (terms, '<=', rhs), a dict with terms/lower/upper, or a "
            f"LinearConstraint; got {type(c).__name__}"
        )
    if math.isnan(out.lower) or math.isnan(out.upper) or out.lower > out.upper:
        raise InvalidInputError(f"constraint {out.name or out.terms!r} has empty or NaN range")
    if out.lower == -math.inf and out.upper == math.inf:
        raise InvalidInputError(f"constraint {out.name or out.terms!r} has no finite bound")
    return out


def _input_box(
    bounds: Any, names: list[str], n: int
) -> tuple[np.ndarray, np.ndarray]:  # (lower, upper)
    if bounds is None:
        raise InvalidInputError("give bounds for every input: the MIP needs a bounded input box")
    if isinstance(bounds, Mapping):
        missing = [nm for nm in names if nm not in bounds]
        extra = [k for k in bounds if k not in names]
        if extra:
            raise InvalidInputError(f"bounds for unknown input {extra[0]!r}")
        if missing:
            raise InvalidInputError(f"no bounds for input {missing[0]!r}")
        pairs = [bounds[nm] for nm in names]
    else:
        pairs = list(bounds)
        if len(pairs) != n:
            raise InvalidInputError(f"got bounds for {len(pairs)} inputs, the network has {n}")
    try:
        arr = np.array([[float(p[0]), float(p[1])] for p in pairs], dtype=np.float64)
    except (TypeError, ValueError, IndexError):
        raise InvalidInputError("each input's bounds must be a (lower, upper) pair") from None
    if not np.all(np.isfinite(arr)):
        i = int(np.flatnonzero(~np.all(np.isfinite(arr), axis=1))[0])
        raise InvalidInputError(f"input {names[i]!r} needs finite bounds, got {pairs[i]}")
    bad = np.flatnonzero(arr[:, 0] > arr[:, 1])
    if bad.size:
        raise InvalidInputError(f"input {names[bad[0]]!r}: lower bound exceeds upper bound")
    return arr[:, 0].copy(), arr[:, 1].copy()


def optimize(
    net: Network,
    objective: Terms,
    constraints: Iterable[Any] = (),
    bounds: Any = None,
    sense: str = "max",
    integer: Iterable[Ref] = (),
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    objective_offset: float = 0.0,
    time_limit: float | None = None,
    mip_gap: float = 1e-7,
    stop_at: float | None = None,
    bound_method: str = DEFAULT_BOUND_METHOD,
    threads: int = 1,
    verbose: bool = False,
    heuristic_samples: int = 4096,
) -> OptimizeResult:
    """Optimize a linear objective over a network's inputs and outputs with HiGHS.

    ``objective``: ``{variable: coefficient}`` (plus ``objective_offset``), maximized or
    minimized (``sense``). ``constraints``: ``(terms, "<=" | ">=" | "==", rhs)`` tuples, dicts
    ``{"terms", "lower", "upper"}`` or ``LinearConstraint``. ``bounds``: ``(lower, upper)`` per
    input, as a sequence in input order or a mapping by input name; all finite (they define the
    region the neuron bounds are computed over). ``integer``: inputs restricted to integers.
    Variables are named by ``input_names``/``output_names`` (default ``x0, x1, ...`` and
    ``y0, y1, ...``) or referred to as ``("x", i)`` / ``("y", j)``.
    ``mip_gap``: the relative gap at which HiGHS stops (its default 1e-4 is too loose to
    compare optima). ``stop_at``: stop as soon as a solution at least this good is found.
    ``heuristic_samples``: inputs sampled in the box (then refined around the best) whose best
    feasible one is handed to HiGHS as a starting solution (0: none); on wide nets HiGHS alone
    may find no feasible point within the limit.
    """
    t0 = time.perf_counter()
    if sense not in ("max", "min"):
        raise InvalidInputError(f"sense must be 'max' or 'min', got {sense!r}")
    if not (mip_gap >= 0):
        raise InvalidInputError(f"mip_gap must be >= 0, got {mip_gap}")
    if time_limit is not None and not (time_limit > 0):
        raise InvalidInputError(f"time limit must be positive, got {time_limit}")
    in_names = _names(input_names, net.input_size, "x", "input")
    out_names = _names(output_names, net.output_size, "y", "output")
    lower, upper = _input_box(bounds, in_names, net.input_size)
    cons = [_constraint(c) for c in constraints]

    # Integer inputs: resolve them by name/index before any work, then tighten their box to
    # the integers inside it (sound for the neuron bounds, and a tighter region).
    name_to_input = {nm: i for i, nm in enumerate(in_names)}
    is_int = np.zeros(net.input_size, dtype=bool)
    for ref in integer:
        if isinstance(ref, tuple) and len(ref) == 2 and ref[0] == "x":
            i = ref[1]
        elif isinstance(ref, str) and ref in name_to_input:
            i = name_to_input[ref]
        else:
            raise InvalidInputError(f"integer variable {ref!r} is not an input")
        if not isinstance(i, (int, np.integer)) or not 0 <= i < net.input_size:
            raise InvalidInputError(f"input index {i} is out of range 0..{net.input_size - 1}")
        is_int[i] = True
    lower[is_int], upper[is_int] = np.ceil(lower[is_int]), np.floor(upper[is_int])
    if np.any(lower > upper):
        i = int(np.flatnonzero(lower > upper)[0])
        raise InvalidInputError(f"integer input {in_names[i]!r} has no integer in its bounds")

    region = box_region(lower, upper)
    bounds_nn = compute_bounds(net, region, bound_method, time_limit=time_limit)
    t1 = time.perf_counter()
    model = MipModel()
    xc = np.empty(net.input_size, dtype=np.int64)
    for flag in (False, True):
        sel = np.flatnonzero(is_int == flag)
        if sel.size:
            xc[sel] = model.add_cols(lower[sel], upper[sel], integer=flag)
    enc = encode_network(model, net, bounds_nn, xc)
    idx = _Index(in_names, out_names, xc, enc.output_cols)
    ocols, ocoefs = idx.expr(objective, "objective")
    model.set_objective(ocols, ocoefs, sense=sense, offset=float(objective_offset))
    con_rows = []
    for k, c in enumerate(cons):
        cols, coefs = idx.expr(c.terms, f"constraint {c.name or k}")
        model.add_rows(np.zeros(cols.size), cols, coefs, c.lower, c.upper, n=1)
        con_rows.append((cols, coefs, c))
    t2 = time.perf_counter()

    stop = {}
    if stop_at is not None:
        stop = {"stop_above": stop_at} if sense == "max" else {"stop_below": stop_at}
    start = None
    if heuristic_samples > 0:
        x_start = sampled_incumbent(
            net, lower, upper, is_int, model, xc, enc.output_cols, con_rows, heuristic_samples
        )
        if x_start is not None:
            start = network_start(net, enc, x_start)
    t3 = time.perf_counter()
    left = None if time_limit is None else max(time_limit - (t3 - t0), 1e-2)
    res = solve_highs(
        model,
        time_limit=left,
        threads=threads,
        mip_feasibility_tolerance=None,
        verbose=verbose,
        options={"mip_rel_gap": float(mip_gap)},
        start=start,
        **stop,
    )
    out = OptimizeResult(
        status=res.status,
        sense=sense,
        x=None,
        y=None,
        objective=None,
        bound=res.dual_bound,
        gap=None,
        input_names=in_names,
        output_names=out_names,
        solver_objective=res.objective,
        bounds_time=t1 - t0,
        build_time=t2 - t1,
        solve_time=res.solve_time,
        nodes=res.nodes,
        stats=_stats(model, enc, net),
    )
    if res.x is not None:
        _recheck(out, net, res.x, xc, enc.output_cols, is_int, con_rows, model)
    out.total_time = time.perf_counter() - t0
    return out


def _recheck(
    out: OptimizeResult,
    net: Network,
    sol: np.ndarray,
    xc: np.ndarray,
    yc: np.ndarray,
    is_int: np.ndarray,
    con_rows: list[tuple[np.ndarray, np.ndarray, LinearConstraint]],
    model: MipModel,
) -> None:
    """Forward pass at the solver's inputs (integers rounded, box clipped); compare outputs,
    re-evaluate the objective and the constraints there."""
    lo, hi = model.col_lower()[xc], model.col_upper()[xc]
    x = np.clip(sol[xc], lo, hi)
    x[is_int] = np.round(x[is_int])
    y = net.forward(x)
    y_mip = sol[yc]
    out.x, out.y = x, y
    out.output_error = float(np.max(np.abs(y_mip - y), initial=0.0))
    full = sol.copy()
    full[xc], full[yc] = x, y
    out.objective = model.objective_value(full)
    viol = 0.0
    for cols, coefs, c in con_rows:
        v = float(coefs @ full[cols])
        viol = max(viol, c.lower - v, v - c.upper)
    out.max_violation = viol
    scale = 1.0 + float(np.max(np.abs(y), initial=0.0))
    out.recheck_ok = out.output_error <= RECHECK_TOL * scale and viol <= RECHECK_TOL * scale
    if out.bound is not None and out.objective is not None:
        diff = out.bound - out.objective if out.sense == "max" else out.objective - out.bound
        out.gap = max(diff, 0.0) / max(abs(out.objective), 1e-10)


def _stats(model: MipModel, enc: Any, net: Network) -> FormulationStats:
    return FormulationStats(
        neurons=net.num_hidden_neurons,
        binaries=int(sum(int(np.sum(b >= 0)) for b in enc.binary_cols)),
        rows=model.num_rows,
        cols=model.num_cols,
        nonzeros=int(model.matrix().nnz),
        **enc.kind_counts(),
    )


def _linear_values(
    cols: np.ndarray,
    coefs: np.ndarray,
    xc: np.ndarray,
    yc: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """Per row of (x, y): the value of sum coefs * column over input and output columns."""
    pos = {int(c): ("x", i) for i, c in enumerate(xc)}
    pos.update({int(c): ("y", j) for j, c in enumerate(yc)})
    out = np.zeros(x.shape[0])
    for c, a in zip(cols, coefs, strict=True):
        kind, i = pos[int(c)]
        out += a * (x[:, i] if kind == "x" else y[:, i])
    return out


def sampled_incumbent(
    net: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    is_int: np.ndarray,
    model: MipModel,
    xc: np.ndarray,
    yc: np.ndarray,
    con_rows: Sequence[tuple[np.ndarray, np.ndarray, LinearConstraint]],
    samples: int,
    rounds: int = 4,
    seed: int = 0,
) -> np.ndarray | None:
    """The best input, by the model's objective, among ``samples`` uniform points of the box
    and ``rounds`` of samples around the best one so far (radius halved each round), that meets
    every constraint by the forward pass; None when no sample does."""
    rng = np.random.default_rng(seed)
    obj_cols = np.fromiter(model.cost.keys(), dtype=np.int64)
    obj_coefs = np.fromiter(model.cost.values(), dtype=np.float64)
    sign = 1.0 if model.sense == "max" else -1.0
    width = upper - lower
    best, best_val = None, -np.inf
    for r in range(rounds + 1):
        if r == 0 or best is None:
            x = lower + rng.random((samples, lower.size)) * width
        else:
            step = width * 0.5**r
            x = np.clip(best + (rng.random((samples, lower.size)) * 2 - 1) * step, lower, upper)
        x[:, is_int] = np.clip(np.round(x[:, is_int]), lower[is_int], upper[is_int])
        y = net.forward(x)
        ok = np.ones(samples, dtype=bool)
        for cols, coefs, c in con_rows:
            v = _linear_values(cols, coefs, xc, yc, x, y)
            ok &= (v >= c.lower - 1e-9) & (v <= c.upper + 1e-9)
        if not ok.any():
            continue
        val = sign * _linear_values(obj_cols, obj_coefs, xc, yc, x, y)
        val[~ok] = -np.inf
        i = int(np.argmax(val))
        if val[i] > best_val:
            best, best_val = x[i].copy(), float(val[i])
    return best


def network_start(net: Network, enc: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A partial MIP solution for input ``x``: the input columns and every ReLU binary set by
    the sign of its pre-activation (HiGHS completes the continuous columns). Max layers'
    binaries are left to HiGHS."""
    cols, vals = [enc.input_cols], [np.asarray(x, dtype=np.float64)]
    for k, z in enumerate(net.pre_activations(x[None, :])):
        bins = enc.binary_cols[k]
        if net.layers[k].groups is not None or bins.size != z.shape[1]:
            continue
        has = bins >= 0
        cols.append(bins[has])
        vals.append((z[0, has] > 0).astype(np.float64))
    return np.concatenate(cols).astype(np.int64), np.concatenate(vals)
