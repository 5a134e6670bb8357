"""Sign-only solves: every early-stop variant reaches the verdict that the optimum implies."""

from __future__ import annotations

import numpy as np
import pytest
from nets_for_bounds import digits, nets

from nn2mip.errors import InvalidInputError
from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs
from nn2mip.region import ball_region
from nn2mip.sign import SIGN_METHODS, solve_sign

TOL = 1e-6


def _margin_model(net, x0, eps, norm, target_rank=1):
    label = int(net.predict(x0)[0])
    target = int([j for j in np.argsort(-net.forward(x0)) if j != label][target_rank - 1])
    form = build_formulation(net, ball_region(x0, eps, norm), bound_method="symbolic")
    out = form.output_cols
    form.model.set_objective(np.array([out[target], out[label]]), np.array([1.0, -1.0]), "max")
    return form


@pytest.mark.parametrize("eps", [0.01, 0.15])
def test_every_variant_agrees_with_the_optimum(eps):
    net = nets()["pruned"]
    form = _margin_model(net, digits().x_test[3], eps, "inf")
    best = solve_highs(form.model).objective
    assert best is not None and abs(best) > 1e-3
    for method in SIGN_METHODS:
        res = solve_sign(form.model, TOL, TOL, method)
        if best > 0:
            assert res.objective is not None and res.objective > TOL, method
            # The solution is a real point of the model: its margin is at most the optimum.
            assert res.objective <= best + 1e-6
        else:
            assert res.dual_bound is not None and res.dual_bound <= -TOL, method
            assert res.dual_bound >= best - 1e-6 or method in ("feasibility", "probe", "hybrid")


def test_min_models_and_unknown_methods_are_rejected():
    form = _margin_model(nets()["pruned"], digits().x_test[3], 0.01, "inf")
    with pytest.raises(InvalidInputError, match="unknown sign method"):
        solve_sign(form.model, TOL, TOL, "magic")  # type: ignore[arg-type]
    form.model.sense = "min"
    with pytest.raises(InvalidInputError, match="max model"):
        solve_sign(form.model, TOL, TOL)


@pytest.mark.parametrize("eps", [0.01, 0.15])
def test_attacks_reach_the_same_verdict_with_the_default_early_stop(eps):
    from adversarial.problems import targeted_attack

    net = nets()["pruned"]
    x0 = digits().x_test[3]
    label = int(net.predict(x0)[0])
    target = int([j for j in np.argsort(-net.forward(x0)) if j != label][0])
    fast = targeted_attack(net, x0, label, target, eps, bound_method="symbolic")
    full = targeted_attack(net, x0, label, target, eps, bound_method="symbolic", early_stop=False)
    assert fast.verdict == full.verdict != "unknown"
