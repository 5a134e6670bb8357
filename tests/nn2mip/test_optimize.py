"""nn2mip.optimize: optima checked against enumeration and dense grids (independent of the MIP),
the Pyomo block path gives the same optimum, and bad problems fail with one-line errors."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from nn2mip.errors import InvalidInputError
from nn2mip.network import network_from_arrays
from nn2mip.optimization import LinearConstraint, optimize
from nn2mip.pyomo_backend import add_network, solve_pyomo
from nn2mip.scaling import Scaling, fold_scaling


def _net(seed, sizes):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(b, a)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return network_from_arrays(ws, [rng.normal(size=b) * 0.3 for b in sizes[1:]])


@pytest.fixture(scope="module")
def net2():
    return _net(0, [2, 8, 8, 3])


def _grid(lo, hi, n):
    g = [np.linspace(a, b, n) for a, b in zip(lo, hi, strict=True)]
    return np.array(np.meshgrid(*g)).reshape(len(lo), -1).T


def test_integer_inputs_match_enumeration(net2):
    """Both inputs integer: the exact optimum is the best of the 11 x 11 feasible points."""
    xs = _grid([-5, -5], [5, 5], 11)
    ys = net2.forward(xs)
    ok = ys[:, 1] <= ys[:, 2] + 0.5
    best = ys[ok, 0].max()
    r = optimize(
        net2,
        {"y0": 1.0},
        [({"y1": 1.0, "y2": -1.0}, "<=", 0.5)],
        bounds=[(-5.3, 5.2), (-5, 5)],
        integer=["x0", ("x", 1)],
        time_limit=60,
    )
    assert r.status == "optimal" and r.recheck_ok
    assert r.objective == pytest.approx(best, rel=1e-9, abs=1e-9)
    assert np.all(r.x == np.round(r.x))
    np.testing.assert_allclose(r.y, net2.forward(r.x), rtol=0, atol=0)


def test_continuous_optimum_against_grid_min_sense():
    net = _net(3, [1, 12, 12, 1])
    xs = np.linspace(-2, 3, 200001)[:, None]
    ys = net.forward(xs)[:, 0]
    r = optimize(
        net,
        {("y", 0): 2.0},
        sense="min",
        bounds={"t": (-2, 3)},
        input_names=["t"],
        output_names=["f"],
        objective_offset=1.5,
        time_limit=60,
    )
    assert r.status == "optimal" and r.recheck_ok and r.output_error < 1e-6
    # the grid's points are feasible: the MIP cannot be worse; and the net is piecewise linear
    # with slopes below 1e3, so the grid is within 1e3 * step of the true minimum
    grid_best = 2.0 * ys.min() + 1.5
    assert r.objective <= grid_best + 1e-7
    assert r.objective >= grid_best - 1e3 * 5 / 200000
    assert r.bound <= r.objective + 1e-6 * abs(r.objective) + 1e-9
    assert set(r.inputs()) == {"t"} and set(r.outputs()) == {"f"}
    assert r.as_dict()["y"]["f"] == pytest.approx(r.y[0])


def test_constraints_hold_at_forward_pass(net2):
    r = optimize(
        net2,
        {"a": 1.0, "p": -0.5},
        [
            LinearConstraint({"q": 1.0}, lower=-0.2, upper=0.2, name="band"),
            {"terms": {"a": 1.0, "b": 1.0}, "upper": 0.5},
            ({"b": 1.0}, ">=", -0.5),
        ],
        bounds=[(-1, 1), (-1, 1)],
        input_names=["a", "b"],
        output_names=["p", "q", "r"],
        time_limit=60,
    )
    assert r.status == "optimal" and r.recheck_ok
    a, b = r.x
    assert a + b <= 0.5 + 1e-6 and b >= -0.5 - 1e-6
    assert -0.2 - 1e-5 <= r.y[1] <= 0.2 + 1e-5
    xs = _grid([-1, -1], [1, 1], 401)
    ys = net2.forward(xs)
    ok = (xs.sum(axis=1) <= 0.5) & (xs[:, 1] >= -0.5) & (np.abs(ys[:, 1]) <= 0.2)
    assert r.objective >= (xs[ok, 0] - 0.5 * ys[ok, 0]).max() - 1e-7


def test_infeasible_and_stop_at(net2):
    r = optimize(net2, {"y0": 1.0}, [({"x0": 1.0}, ">=", 2.0)], bounds=[(-1, 1)] * 2)
    assert r.status == "infeasible" and r.x is None and r.y is None
    full = optimize(net2, {"y0": 1.0}, bounds=[(-1, 1)] * 2, time_limit=60)
    early = optimize(net2, {"y0": 1.0}, bounds=[(-1, 1)] * 2, stop_at=full.objective - 0.5)
    assert early.objective >= full.objective - 0.5 - 1e-9
    assert early.status in ("objective_target", "optimal")


def test_scaled_regression_same_optimum_on_pyomo(net2):
    """A surrogate trained on scaled data, folded, optimized in user units by both paths."""
    sc = Scaling(
        input_offset=np.array([100.0, 0.5]),
        input_factor=np.array([50.0, 0.25]),
        output_offset=np.array([10.0, -3.0, 0.0]),
        output_factor=np.array([4.0, 0.1, 2.0]),
    )
    folded = fold_scaling(net2, sc)
    lo, hi = np.array([50.0, 0.25]), np.array([150.0, 0.75])
    cap = float(np.median(folded.forward(_grid(lo, hi, 21))[:, 1]))  # binds somewhere
    r = optimize(
        folded, {"y0": 1.0}, [({"y1": 1.0}, "<=", cap)], bounds=np.stack([lo, hi], 1), time_limit=60
    )
    assert r.status == "optimal" and r.recheck_ok
    ref = sc.unscale_outputs(net2.forward(sc.scale_inputs(r.x)))
    np.testing.assert_allclose(r.y, ref, rtol=1e-12, atol=1e-12)

    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(2), bounds=lambda _, i: (lo[i], hi[i]))
    pn = add_network(m, folded, inputs=m.x)
    m.c = pyo.Constraint(expr=pn.output_vars[1] <= cap)
    m.obj = pyo.Objective(expr=pn.output_vars[0], sense=pyo.maximize)
    solve_pyomo(m, time_limit=60, options={"mip_rel_gap": 1e-7})
    assert pyo.value(m.obj) == pytest.approx(r.objective, rel=1e-6)
    assert pn.get_error() < 1e-6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bounds": None}, "bounds for every input"),
        ({"bounds": [(-1, 1)]}, "bounds for 1 inputs"),
        ({"bounds": [(-1, np.inf), (0, 1)]}, "finite bounds"),
        ({"bounds": [(1, -1), (0, 1)]}, "exceeds"),
        ({"bounds": {"x0": (0, 1)}}, "no bounds for input 'x1'"),
        ({"bounds": {"x0": (0, 1), "x1": (0, 1), "z": (0, 1)}}, "unknown input 'z'"),
        ({"objective": {"nope": 1.0}}, "unknown variable 'nope'"),
        ({"objective": {("y", 7): 1.0}}, "output index 7"),
        ({"objective": {}}, "non-empty"),
        ({"objective": {"y0": "a"}}, "not a number"),
        ({"constraints": [({"y0": 1.0}, "<", 1.0)]}, "operator"),
        ({"constraints": [{"terms": {"y0": 1.0}}]}, "no finite bound"),
        ({"constraints": [{"terms": {"y0": 1.0}, "lower": 2, "upper": 1}]}, "empty"),
        ({"constraints": ["y0 <= 1"]}, "a constraint is"),
        ({"integer": ["y0"]}, "not an input"),
        ({"integer": ["x0"], "bounds": [(0.2, 0.8), (0, 1)]}, "no integer"),
        ({"sense": "maximize"}, "sense"),
        ({"input_names": ["a", "a"]}, "unique"),
        ({"output_names": ["a"]}, "output names"),
        ({"time_limit": 0}, "time limit"),
    ],
)
def test_bad_problems_fail_clearly(net2, kwargs, match):
    args = {"objective": {"y0": 1.0}, "bounds": [(-1, 1), (-1, 1)], **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        optimize(net2, **args)


def test_package_level_call_works_after_submodule_import(net2):
    import nn2mip
    import nn2mip.optimization as module

    r = nn2mip.optimize(net2, {"y0": 1.0}, bounds=[(-1, 1), (-1, 1)], time_limit=60)
    assert r.status == "optimal"
    assert module.optimize(net2, {"y0": 1.0}, bounds=[(-1, 1)] * 2).objective == pytest.approx(
        r.objective, rel=1e-9
    )


def test_the_sampled_start_is_feasible_and_highs_completes_it():
    """The heuristic's point meets the constraints by the forward pass; fixing the MIP's inputs
    and the start's binaries leaves a feasible model whose outputs are the forward pass; and
    with a start HiGHS stopped at its first node already holds a solution at least as good."""
    from nn2mip.bounds import compute_bounds
    from nn2mip.encoding import encode_network
    from nn2mip.highs_backend import solve_highs
    from nn2mip.mip import MipModel
    from nn2mip.optimization import network_start, sampled_incumbent
    from nn2mip.region import box_region

    net = _net(5, [3, 40, 40, 2])
    lo, hi = -np.ones(3), np.ones(3)
    bounds = compute_bounds(net, box_region(lo, hi), "symbolic")

    def build():
        model = MipModel()
        xc = model.add_cols(lo, hi)
        enc = encode_network(model, net, bounds, xc)
        model.set_objective(enc.output_cols[[0]], np.array([1.0]), "max")
        model.add_rows(np.zeros(1), enc.output_cols[[1]], np.array([1.0]), -np.inf, 0.0, n=1)
        return model, xc, enc

    model, xc, enc = build()
    con = LinearConstraint({"y1": 1.0}, upper=0.0)
    rows = [(enc.output_cols[[1]], np.array([1.0]), con)]
    x = sampled_incumbent(net, lo, hi, np.zeros(3, bool), model, xc, enc.output_cols, rows, 512)
    assert x is not None and net.forward(x)[1] <= 1e-9
    cols, vals = network_start(net, enc, x)
    fixed, _, _ = build()
    fixed.add_rows(np.arange(cols.size), cols, np.ones(cols.size), vals, vals, n=cols.size)
    res = solve_highs(fixed, time_limit=30)
    assert res.status == "optimal"
    np.testing.assert_allclose(res.x[enc.output_cols], net.forward(x), atol=1e-6)
    started = solve_highs(model, time_limit=30, start=(cols, vals), options={"mip_max_nodes": 0})
    assert started.objective is not None and started.objective >= net.forward(x)[0] - 1e-6
