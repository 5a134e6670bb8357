"""``nn2mip optimize MODEL PROBLEM.toml``: optimize over a learned model from a problem file.

The problem file declares the inputs (names, bounds, integrality), the outputs' names, a linear
objective and linear constraints by name, and optionally the scaling the model was trained
with (folded into the network, so every number in the file is in the user's units)::

    [objective]
    sense = "max"
    terms = { H2 = 1.0 }

    [[inputs]]
    name = "bypass"
    lower = 0.1
    upper = 0.8

    [[inputs]]
    name = "ng_steam"
    lower = 0.8
    upper = 1.2

    [outputs]
    names = ["H2", "N2"]

    [[constraints]]
    terms = { N2 = 1.0 }
    upper = 0.34

    [scaling]            # optional: x_s = (x - input_offset) / input_factor, and
    input_offset = [0.1, 0.8]    # y = y_s * output_factor + output_offset
    input_factor = [0.7, 0.4]

    [solver]             # optional
    time_limit = 60
    mip_gap = 1e-7
    bounds = "symbolic"
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nn2mip.cli.common import positive_float
from nn2mip.errors import InvalidInputError

_TOP = {"objective", "inputs", "outputs", "constraints", "scaling", "solver"}
_INPUT_KEYS = {"name", "lower", "upper", "integer"}
_SCALING_KEYS = {"input_offset", "input_factor", "output_offset", "output_factor"}
_SOLVER_KEYS = {"time_limit", "mip_gap", "bounds"}


@dataclass
class Problem:
    """A parsed problem file, checked before any work."""

    sense: str
    objective: dict[str, float]
    objective_offset: float
    input_names: list[str]
    bounds: list[tuple[float, float]]
    integer: list[str]
    output_names: list[str] | None
    constraints: list[dict[str, Any]]
    scaling: dict[str, Any] | None
    solver: dict[str, Any] = field(default_factory=dict)


def _table(d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise InvalidInputError(f"{where} must be a table")
    return d


def _unknown(d: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise InvalidInputError(
            f"unknown key {extra[0]!r} in {where} (allowed: {', '.join(sorted(allowed))})"
        )


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise InvalidInputError(f"{where} must be a number, got {v!r}")
    return float(v)


def load_problem(path: str | Path) -> Problem:
    """Read and check a problem file; every mistake is a one-line ``InvalidInputError``."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"problem file not found: {p}")
    try:
        doc = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{p}: not valid TOML: {err}") from None
    _unknown(doc, _TOP, "the problem file")

    obj = _table(doc.get("objective"), "[objective]")
    _unknown(obj, {"sense", "terms", "offset"}, "[objective]")
    sense = obj.get("sense", "max")
    if sense not in ("max", "min"):
        raise InvalidInputError(f"[objective] sense must be 'max' or 'min', got {sense!r}")
    terms = _table(obj.get("terms"), "[objective] terms")
    objective = {k: _number(v, f"objective coefficient of {k!r}") for k, v in terms.items()}
    offset = _number(obj.get("offset", 0.0), "[objective] offset")

    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError("declare the inputs as [[inputs]] tables with name, lower, upper")
    names, bounds, integer = [], [], []
    for k, item in enumerate(inputs):
        item = _table(item, f"[[inputs]] #{k + 1}")
        _unknown(item, _INPUT_KEYS, f"[[inputs]] #{k + 1}")
        for key in ("name", "lower", "upper"):
            if key not in item:
                raise InvalidInputError(f"[[inputs]] #{k + 1} has no {key}")
        name = str(item["name"])
        names.append(name)
        bounds.append(
            (_number(item["lower"], f"{name} lower"), _number(item["upper"], f"{name} upper"))
        )
        if item.get("integer", False) is True:
            integer.append(name)
        elif item.get("integer", False) is not False:
            raise InvalidInputError(f"input {name!r}: integer must be true or false")

    outputs = _table(doc.get("outputs", {}), "[outputs]")
    _unknown(outputs, {"names"}, "[outputs]")
    out_names = outputs.get("names")
    if out_names is not None and not (
        isinstance(out_names, list) and all(isinstance(s, str) for s in out_names)
    ):
        raise InvalidInputError("[outputs] names must be a list of strings")

    constraints = doc.get("constraints", [])
    if not isinstance(constraints, list):
        raise InvalidInputError("declare constraints as [[constraints]] tables")
    cons = []
    for k, c in enumerate(constraints):
        c = _table(c, f"[[constraints]] #{k + 1}")
        _unknown(c, {"name", "terms", "lower", "upper"}, f"[[constraints]] #{k + 1}")
        cname = str(c.get("name", f"#{k + 1}"))
        ct = _table(c.get("terms"), f"constraint {cname} terms")
        con: dict[str, Any] = {
            "name": cname,
            "terms": {v: _number(a, f"constraint {cname} coefficient") for v, a in ct.items()},
        }
        for key in ("lower", "upper"):
            if key in c:
                con[key] = _number(c[key], f"constraint {cname} {key}")
        cons.append(con)

    scaling = doc.get("scaling")
    if scaling is not None:
        _unknown(_table(scaling, "[scaling]"), _SCALING_KEYS, "[scaling]")
    solver = _table(doc.get("solver", {}), "[solver]")
    _unknown(solver, _SOLVER_KEYS, "[solver]")
    return Problem(
        sense, objective, offset, names, bounds, integer, out_names, cons, scaling, solver
    )


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "optimize", help="optimize a linear objective over a model's inputs and outputs"
    )
    p.add_argument("model", help="model file (.safetensors written by nn2mip, or .onnx)")
    p.add_argument("problem", help="problem file (.toml): inputs, objective, constraints")
    p.add_argument("--out", default=None, help="write the solution as JSON here")
    p.add_argument("--time-limit", type=positive_float, default=None, help="seconds (overrides)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of a summary")
    return p


def run(args: argparse.Namespace) -> int:
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.optimization import optimize
    from nn2mip.scaling import Scaling, fold_scaling
    from nn2mip.serialize import load_network

    prob = load_problem(args.problem)
    net = load_network(args.model)
    if prob.scaling is not None:
        net = fold_scaling(net, Scaling(**prob.scaling))
    solver = prob.solver
    time_limit = args.time_limit if args.time_limit is not None else solver.get("time_limit")
    res = optimize(
        net,
        prob.objective,
        prob.constraints,
        bounds=prob.bounds,
        sense=prob.sense,
        integer=prob.integer,
        input_names=prob.input_names,
        output_names=prob.output_names,
        objective_offset=prob.objective_offset,
        time_limit=None if time_limit is None else _number(time_limit, "time_limit"),
        mip_gap=_number(solver.get("mip_gap", 1e-7), "mip_gap"),
        bound_method=str(solver.get("bounds", "symbolic")),
    )
    info = {"model": args.model, "problem": args.problem, **res.as_dict()}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(info, indent=2) + "\n")
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_summary(res, args.out)
    # Success means an answer that passed the forward-pass re-check.
    return 0 if res.x is not None and res.recheck_ok else 1


def _print_summary(res: Any, out: str | None) -> None:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.10g}"

    print(f"status     {res.status}")
    print(
        f"objective  {f(res.objective)}  ({res.sense}; proven bound {f(res.bound)}, "
        f"gap {f(res.gap)})"
    )
    print(
        f"time       {res.total_time:.3f} s (bounds {res.bounds_time:.3f}, build "
        f"{res.build_time:.3f}, solve {res.solve_time:.3f}); {res.stats.binaries} binaries"
    )
    if res.x is None:
        print("no solution")
    else:
        ok = "passed" if res.recheck_ok else "FAILED"
        print(
            f"re-check   {ok}: |MIP outputs - forward pass| {res.output_error:.2e}, "
            f"worst constraint violation {max(res.max_violation, 0.0):.2e}"
        )
        width = max(len(n) for n in [*res.input_names, *res.output_names])
        print("inputs")
        for n, v in res.inputs().items():
            print(f"  {n.ljust(width)}  {v:.10g}")
        print("outputs (float64 forward pass)")
        for n, v in res.outputs().items():
            print(f"  {n.ljust(width)}  {v:.10g}")
    if out:
        print(f"wrote {out}")
