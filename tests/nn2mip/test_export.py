"""MPS/LP export keeps the objective sense and re-solves to the same optimum."""

from __future__ import annotations

import highspy
import numpy as np
import pytest
from nets_for_bounds import digits, nets

from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs, write_model
from nn2mip.region import ball_region


@pytest.mark.parametrize("suffix", [".mps", ".lp"])
@pytest.mark.parametrize("sense", ["max", "min"])
def test_round_trip_same_optimum(tmp_path, suffix, sense):
    net = nets()["pruned"]
    form = build_formulation(net, ball_region(digits().x_test[3], 0.05), bound_method="symbolic")
    out = form.output_cols
    label = int(net.predict(digits().x_test[3])[0])
    other = (label + 1) % 10
    form.model.set_objective(np.array([out[other], out[label]]), np.array([1.0, -1.0]), sense)
    ref = solve_highs(form.model)
    assert ref.status == "optimal"

    path = write_model(form.model, tmp_path / f"model{suffix}")
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(path))
    want = highspy.ObjSense.kMaximize if sense == "max" else highspy.ObjSense.kMinimize
    assert h.getLp().sense_ == want
    if suffix == ".mps":
        # MPS keeps the integrality markers; LP files keep them in a General section.
        assert h.getLp().num_col_ == form.model.num_cols
    h.run()
    assert str(h.getModelStatus()).endswith("kOptimal")
    assert h.getInfo().objective_function_value == pytest.approx(ref.objective, abs=1e-6)
