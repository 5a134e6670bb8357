"""Pyomo block: same optimum as the highspy path, exact outputs, user-supplied inputs."""

from __future__ import annotations

import io

import numpy as np
import pyomo.environ as pyo
import pytest
from nets_for_bounds import digits, nets

from nn2mip.errors import InvalidInputError
from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs
from nn2mip.pyomo_backend import add_network, solve_pyomo
from nn2mip.region import ball_region

EXACT = {"mip_rel_gap": 0.0, "mip_abs_gap": 1e-9}


def _highs_margin(net, region, label, target):
    form = build_formulation(net, region, bound_method="symbolic")
    out = form.output_cols
    form.model.set_objective(np.array([out[target], out[label]]), np.array([1.0, -1.0]), "max")
    res = solve_highs(form.model, options=EXACT)
    assert res.status == "optimal"
    return res.objective, form.stats()


@pytest.mark.parametrize("name,norm,eps", [("dense", "inf", 0.05), ("pruned", "1", 1.0)])
def test_same_optimum_as_highspy_and_exact_outputs(name, norm, eps):
    net = nets()[name]
    x0 = digits().x_test[5]
    region = ball_region(x0, eps, norm)
    label = int(net.predict(x0)[0])
    target = (label + 3) % 10
    want, fstats = _highs_margin(net, region, label, target)

    m = pyo.ConcreteModel()
    pn = add_network(m, net, region=region)
    m.obj = pyo.Objective(expr=pn.output_vars[target] - pn.output_vars[label], sense=pyo.maximize)
    solve_pyomo(m, options=EXACT)
    assert pyo.value(m.obj) == pytest.approx(want, abs=1e-6)
    assert pn.get_error() < 1e-6
    assert region.contains(pn.input_values(), tol=1e-6).all()
    # Same formulation: stable neurons carry no binary on either path.
    assert pn.stats["binaries"] == fstats.binaries == fstats.unstable
    assert pn.stats["nonzeros"] == fstats.nonzeros


def test_user_inputs_are_used_directly_and_region_is_enforced():
    net = nets()["pruned"]
    x0 = digits().x_test[7]
    label = int(net.predict(x0)[0])
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(64), bounds=(0.0, 1.0))
    # A user constraint on the inputs, in the user's own model.
    m.keep = pyo.Constraint(expr=m.x[0] == float(x0[0]))
    region = ball_region(x0, 0.1)
    pn = add_network(m, net, inputs=m.x, region=region)
    assert pn.input_vars[3] is m.x[3]
    m.obj = pyo.Objective(expr=pn.output_vars[label], sense=pyo.minimize)
    solve_pyomo(m)
    xs = pn.input_values()
    assert region.contains(xs, tol=1e-6).all() and xs[0] == pytest.approx(x0[0])
    assert pn.get_error() < 1e-6
    buf = io.StringIO()
    pn.print_stats(buf)
    assert "with a binary" in buf.getvalue()
    # A second network in the same model gets its own block.
    pn2 = add_network(m, net, inputs=m.x)
    assert pn2.block.name != pn.block.name


def test_inputs_without_bounds_give_a_clear_error():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(64))
    with pytest.raises(InvalidInputError, match="no finite bounds"):
        add_network(m, nets()["dense"], inputs=m.x)
    with pytest.raises(InvalidInputError, match="64 inputs"):
        add_network(m, nets()["dense"], inputs=[m.x[0]])
