"""MipModel assembly (columns, rows, objective) checked against dense references, and small
MIPs built with it solved by HiGHS against known optima and brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nn2mip.errors import InvalidInputError
from nn2mip.highs_backend import solve_highs
from nn2mip.mip import MipModel

FAST = settings(max_examples=60, deadline=None, database=None)


def test_columns_keep_their_blocks_bounds_and_integrality():
    m = MipModel()
    a = m.add_cols(0.0, 1.0, n=3, integer=True)
    b = m.add_cols(np.array([-1.0, -2.0]), 5.0)  # size from the array, scalar broadcast
    c = m.add_cols(-np.inf, np.array([4.0]))
    np.testing.assert_array_equal(a, [0, 1, 2])
    np.testing.assert_array_equal(b, [3, 4])
    np.testing.assert_array_equal(c, [5])
    assert m.num_cols == 6 and m.num_binaries == 3
    np.testing.assert_array_equal(m.col_lower(), [0, 0, 0, -1, -2, -np.inf])
    np.testing.assert_array_equal(m.col_upper(), [1, 1, 1, 5, 5, 4])
    np.testing.assert_array_equal(m.integrality(), [True] * 3 + [False] * 3)
    m.set_col_bounds(np.array([3, 5]), np.array([0.5, 1.0]), np.array([0.5, 2.0]))
    np.testing.assert_array_equal(m.col_lower(), [0, 0, 0, 0.5, -2, 1])
    np.testing.assert_array_equal(m.col_upper(), [1, 1, 1, 0.5, 5, 2])
    np.testing.assert_array_equal(m.integrality(), [True] * 3 + [False] * 3)


def test_rows_are_offset_summed_and_stripped_of_zeros():
    m = MipModel()
    x = m.add_cols(0.0, 1.0, n=4)
    r0 = m.add_rows([0, 0, 1, 1], x[[0, 1, 1, 3]], [2.0, 0.0, 1.0, -1.0], -np.inf, 3.0, n=2)
    # Local row indices restart at 0 in every block; duplicates add up, a cancelling pair too.
    r1 = m.add_rows([0, 0, 0, 0], x[[2, 2, 3, 3]], [1.5, 1.5, 4.0, -4.0], 1.0, [7.0], n=1)
    np.testing.assert_array_equal(r0, [0, 1])
    np.testing.assert_array_equal(r1, [2])
    a = m.matrix()
    dense = np.array([[2.0, 0, 0, 0], [0, 1.0, 0, -1.0], [0, 0, 3.0, 0]])
    np.testing.assert_array_equal(a.toarray(), dense)
    assert a.nnz == 4  # the given zero and the cancelled pair are not entries
    np.testing.assert_array_equal(m.row_lower(), [-np.inf, -np.inf, 1.0])
    np.testing.assert_array_equal(m.row_upper(), [3.0, 3.0, 7.0])
    assert m.matrix() is a  # cached while nothing is added
    m.add_cols(0.0, 1.0, n=1)
    assert m.matrix().shape == (3, 5)
    m.add_rows([0], [4], [1.0], 0.0, 0.0, n=1)
    assert m.matrix().shape == (4, 5) and m.matrix()[3, 4] == 1.0


def test_objective_is_replaced_summed_and_evaluated():
    m = MipModel()
    x = m.add_cols(0.0, 10.0, n=3)
    m.set_objective(x[[0, 1]], [9.0, 9.0], "max", offset=5.0)
    m.set_objective(x[[0, 2, 0]], [1.0, -2.0, 0.5], "min", offset=-1.0)  # replaces the first
    np.testing.assert_array_equal(m.cost_vector(), [1.5, 0.0, -2.0])
    assert m.sense == "min" and m.offset == -1.0
    assert m.objective_value(np.array([2.0, 7.0, 1.0])) == pytest.approx(3.0 - 2.0 - 1.0)
    with pytest.raises(InvalidInputError, match="sense"):
        m.set_objective(x, np.ones(3), "maximize")  # type: ignore[arg-type]


def test_empty_model_reads_as_empty_arrays():
    m = MipModel()
    assert m.matrix().shape == (0, 0) and m.num_binaries == 0
    assert m.col_lower().shape == (0,) and m.row_upper().shape == (0,)
    assert m.integrality().dtype == bool


def _facility() -> MipModel:
    """min 4y + x + 3z  s.t.  x + z >= 3.5,  x <= 10y,  y binary,  x in [0, 10],  z in [0, 3].

    Opening (y = 1) is forced: z alone cannot reach 3.5. Optimum y=1, x=3.5, z=0: 7.5.
    The LP relaxation opens y = 0.35 only: 4 * 0.35 + 3.5 = 4.9.
    """
    m = MipModel()
    y = m.add_cols(0.0, 1.0, n=1, integer=True)
    x = m.add_cols(0.0, 10.0, n=1)
    z = m.add_cols(0.0, 3.0, n=1)
    m.add_rows([0, 0], [x[0], z[0]], [1.0, 1.0], 3.5, np.inf, n=1)
    m.add_rows([0, 0], [x[0], y[0]], [1.0, -10.0], -np.inf, 0.0, n=1)
    m.set_objective(np.concatenate([y, x, z]), [4.0, 1.0, 3.0], "min")
    return m


def test_known_mixed_integer_optimum_and_its_relaxation():
    res = solve_highs(_facility(), time_limit=10)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(7.5, abs=1e-7)
    np.testing.assert_allclose(res.x, [1.0, 3.5, 0.0], atol=1e-7)
    lp = solve_highs(_facility(), time_limit=10, relax_integrality=True)
    assert lp.objective == pytest.approx(4.9, abs=1e-7)  # integrality reached the solver


@st.composite
def integer_programs(draw):
    """A small pure-integer program, each coefficient split over two triplets plus a zero."""
    n = draw(st.integers(1, 3))
    lo = np.array(draw(st.lists(st.integers(-2, 1), min_size=n, max_size=n)), float)
    width = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), float)
    k = draw(st.integers(0, 3))
    coef = np.array(draw(st.lists(st.integers(-3, 3), min_size=k * n, max_size=k * n)), float)
    split = np.array(draw(st.lists(st.integers(-2, 2), min_size=k * n, max_size=k * n)), float)
    bound = st.one_of(st.integers(-6, 6).map(float), st.just(np.inf))
    row_lo = np.array([-draw(bound) for _ in range(k)])
    row_hi = np.array([draw(bound) for _ in range(k)])
    cost = np.array(draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n)), float)
    sense = draw(st.sampled_from(["min", "max"]))
    return lo, lo + width, coef.reshape(k, n), split.reshape(k, n), row_lo, row_hi, cost, sense


@FAST
@given(integer_programs())
def test_random_integer_programs_match_enumeration(program):
    lo, hi, a, split, row_lo, row_hi, cost, sense = program
    n, k = lo.size, a.shape[0]
    m = MipModel()
    x = m.add_cols(lo, hi, integer=True)
    r, c = np.repeat(np.arange(k), n), np.tile(x, k)
    rows = np.concatenate([r, r, r])
    cols = np.concatenate([c, c, c])
    vals = np.concatenate([split.ravel(), (a - split).ravel(), np.zeros(k * n)])
    m.add_rows(rows, cols, vals, row_lo, row_hi, n=k)
    m.set_objective(x, cost, sense, offset=0.5)
    np.testing.assert_array_equal(m.matrix().toarray(), a)

    # Reference: every integer point of the box.
    ranges = [range(int(a_), int(b_) + 1) for a_, b_ in zip(lo, hi, strict=True)]
    grid = np.array(list(itertools.product(*ranges)))
    ok = np.all((grid @ a.T >= row_lo) & (grid @ a.T <= row_hi), axis=1)
    res = solve_highs(m, time_limit=10)
    if not ok.any():
        assert res.status == "infeasible"
        return
    values = grid[ok] @ cost + 0.5
    best = values.max() if sense == "max" else values.min()
    assert res.status == "optimal"
    assert res.objective == pytest.approx(best, abs=1e-6)
    assert res.dual_bound == pytest.approx(best, abs=1e-6)
    np.testing.assert_allclose(res.x, np.round(res.x), atol=1e-6)  # an integer point ...
    xs = np.round(res.x)
    assert np.all(a @ xs >= row_lo - 1e-9) and np.all(a @ xs <= row_hi + 1e-9)  # ... feasible
