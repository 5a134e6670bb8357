"""Input regions: membership against the definitions, balls clipped to the domain, samples
inside, and the L1 projection (``nn2mip.projection``) as a second opinion on membership."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nn2mip.errors import InvalidInputError
from nn2mip.projection import project_l1_box
from nn2mip.region import InputRegion, ball_region, box_region

FAST = settings(max_examples=60, deadline=None, database=None)

sizes = st.integers(1, 8)
seeds = st.integers(0, 2**32 - 1)
radii = st.floats(0.0, 1.5)


def _in_l1_ball_and_box(x, c, eps, lo, hi, tol=1e-9):
    """The definition, written out independently of ``InputRegion.contains``."""
    in_box = np.all(x >= lo - tol, axis=1) & np.all(x <= hi + tol, axis=1)
    return in_box & (np.sum(np.abs(x - c), axis=1) <= eps + tol)


@FAST
@given(n=sizes, seed=seeds, eps=radii)
def test_inf_ball_is_the_box_clipped_to_the_domain(n, seed, eps):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 1, n)
    r = ball_region(c, eps, "inf")
    np.testing.assert_array_equal(r.lower, np.maximum(c - eps, 0.0))
    np.testing.assert_array_equal(r.upper, np.minimum(c + eps, 1.0))
    assert r.norm == "inf" and r.size == n and r.eps == eps
    x = rng.uniform(-0.5, 1.5, size=(200, n))
    ref = np.all(np.abs(x - c) <= eps, axis=1) & np.all((x >= 0) & (x <= 1), axis=1)
    # Points within 1e-9 of a face are inside by the tolerance; keep clear of the faces.
    clear = ~_near_box_face(x, r)
    np.testing.assert_array_equal(r.contains(x)[clear], ref[clear])


@FAST
@given(n=sizes, seed=seeds, eps=radii)
def test_l1_membership_matches_the_definition_and_the_projection(n, seed, eps):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 1, n)
    r = ball_region(c, eps, "1")
    np.testing.assert_array_equal(r.lower, np.maximum(c - eps, 0.0))
    np.testing.assert_array_equal(r.upper, np.minimum(c + eps, 1.0))
    x = c + rng.laplace(scale=eps / n + 1e-3, size=(200, n))
    dist = np.abs(x - c).sum(axis=1)
    clear = (np.abs(dist - eps) > 1e-8) & ~_near_box_face(x, r)
    ref = _in_l1_ball_and_box(x, c, eps, r.lower, r.upper, tol=0.0)
    got = r.contains(x)
    np.testing.assert_array_equal(got[clear], ref[clear])
    # The projection onto the region lands inside it and leaves members where they are.
    proj = c + project_l1_box(x - c, eps, r.lower - c, r.upper - c)
    assert r.contains(proj, tol=1e-9).all()
    moved = np.abs(proj - x).max(axis=1) > 1e-9
    np.testing.assert_array_equal(moved[clear], ~got[clear])


def _near_box_face(x: np.ndarray, r: InputRegion) -> np.ndarray:
    return np.any(np.minimum(np.abs(x - r.lower), np.abs(x - r.upper)) < 1e-8, axis=1)


@FAST
@given(
    n=sizes,
    seed=seeds,
    eps=radii,
    norm=st.sampled_from(["inf", "1"]),
    spill=st.floats(0.0, 0.3),
)
def test_samples_lie_in_the_region_even_with_the_center_outside_the_domain(
    n, seed, eps, norm, spill
):
    rng = np.random.default_rng(seed)
    # Centers up to ``spill`` outside [0, 1]; keep the cases where the ball still meets it.
    c = rng.uniform(-spill, 1 + spill, n)
    outside = np.abs(np.clip(c, 0, 1) - c)
    reach = outside.sum() if norm == "1" else outside.max(initial=0.0)
    assume(reach <= eps)
    r = ball_region(c, eps, norm)
    pts = r.sample(300, rng)
    assert pts.shape == (300, n)
    assert r.contains(pts).all()
    if norm == "1":
        assert _in_l1_ball_and_box(pts, c, eps, r.lower, r.upper).all()


def test_box_samples_fill_the_box_and_domain_may_be_per_coordinate():
    lo, hi = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.0, 5.0])
    r = box_region(lo, hi)
    assert r.norm is None and r.center is None
    pts = r.sample(4000, np.random.default_rng(0))
    assert r.contains(pts).all()
    np.testing.assert_allclose(pts.min(axis=0), lo, atol=0.01)
    np.testing.assert_allclose(pts.max(axis=0), hi, atol=0.01)
    assert r.contains(np.array([0.0, 0.0, 3.0])).tolist() == [True]  # one point, one answer
    assert r.contains(np.array([0.0, 1e-6, 3.0])).tolist() == [False]
    ball = ball_region(np.array([0.5, 0.5]), 0.3, "inf", domain=(np.array([0.4, 0.0]), 0.6))
    np.testing.assert_allclose(ball.lower, [0.4, 0.2])
    np.testing.assert_allclose(ball.upper, [0.6, 0.6])


def test_l1_ball_rejects_a_box_corner_outside_the_ball():
    r = ball_region(np.array([0.5, 0.5]), 0.2, "1")
    assert r.contains(np.array([[0.6, 0.6], [0.7, 0.5], [0.5, 0.3]])).tolist() == [True] * 3
    # Inside the bounding box (every coordinate within eps) but 0.3 away in L1.
    assert r.contains(np.array([0.65, 0.65])).tolist() == [False]
    assert ball_region(np.array([0.5, 0.5]), 0.2, "inf").contains(np.array([0.65, 0.65]))[0]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: InputRegion(np.zeros(3), np.ones(2)), "differ in size"),
        (lambda: InputRegion(np.array([0.0, np.nan]), np.ones(2)), "NaN"),
        (lambda: InputRegion(np.ones(2), np.zeros(2)), "empty"),
        (lambda: ball_region(np.zeros(2), -0.1), "eps must be"),
        (lambda: ball_region(np.zeros(2), np.nan), "eps must be"),
        (lambda: ball_region(np.zeros(2), np.inf), "eps must be"),
        (lambda: ball_region(np.zeros(2), 0.1, norm="2"), "norm must be"),
        (lambda: ball_region(np.array([0.5, np.inf]), 0.1), "center contains"),
        (lambda: ball_region(np.array([0.5, 1.5]), 0.1), "does not meet"),
        # Each coordinate reaches [0, 1], but the L1 distance to it is 0.6 > 0.5: empty region.
        (lambda: ball_region(np.array([1.3, 1.3]), 0.5, "1"), "L1 ball does not meet"),
    ],
)
def test_bad_regions_raise_one_line_errors(make, match):
    with pytest.raises(InvalidInputError, match=match) as err:
        make()
    assert "\n" not in str(err.value)


def test_center_outside_domain_within_reach_is_a_valid_l1_region():
    r = ball_region(np.array([1.2, 0.5]), 0.5, "1")
    np.testing.assert_allclose(r.lower, [0.7, 0.0])
    np.testing.assert_allclose(r.upper, [1.0, 1.0])
    assert r.contains(np.array([1.0, 0.8])).tolist() == [True]  # 0.2 + 0.3 = 0.5
    assert r.contains(np.array([1.0, 0.9])).tolist() == [False]  # 0.2 + 0.4 > 0.5
