import highspy
import numpy as np
import pytest

from nn2mip.errors import InvalidInputError
from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs, write_model
from nn2mip.mip import MipModel
from nn2mip.region import ball_region


def _knapsack() -> MipModel:
    m = MipModel()
    x = m.add_cols(0.0, 1.0, n=3, integer=True)
    m.add_rows(np.zeros(3), x, np.array([3.0, 4.0, 5.0]), -np.inf, 8.0, n=1)
    m.set_objective(x, np.array([4.0, 5.0, 7.0]), "max")
    return m


def test_solve_reads_back_everything():
    res = solve_highs(_knapsack(), time_limit=10, threads=1)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(11.0)
    assert res.dual_bound == pytest.approx(11.0, abs=1e-6)
    np.testing.assert_allclose(res.x, [1, 0, 1], atol=1e-9)
    assert res.solve_time >= 0 and res.nodes >= 0


def test_early_stop_options():
    # A solution above 8 ends the search; a bound below 20 proves "never above 20".
    assert solve_highs(_knapsack(), stop_above=8.0).objective > 8.0
    res = solve_highs(_knapsack(), stop_below=20.0)
    assert res.status == "objective_bound" and res.dual_bound <= 20.0


def test_bad_time_limit():
    with pytest.raises(InvalidInputError):
        solve_highs(_knapsack(), time_limit=-1)


def test_write_mps_and_lp_read_back(tmp_path, digits, digits_nets):
    net, _ = digits_nets["structured"]
    form = build_formulation(net, ball_region(digits.x_test[0], 0.05, "inf"))
    form.model.set_objective(form.output_cols[[1, 0]], np.array([1.0, -1.0]))
    direct = solve_highs(form.model)
    for suffix in ("mps", "lp"):
        path = write_model(form.model, tmp_path / f"m.{suffix}")
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.readModel(str(path))
        h.run()
        # The file holds the minimization HiGHS solves: its optimum is the negated margin.
        assert abs(abs(h.getInfo().objective_function_value) - abs(direct.objective)) < 1e-6
    with pytest.raises(InvalidInputError, match=".mps or .lp"):
        write_model(form.model, tmp_path / "m.txt")
