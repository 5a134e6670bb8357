"""L1-ball and L1-ball-and-box projections (exact, also with one box per row); PGD step sizes."""

from __future__ import annotations

import numpy as np
import pytest

from nn2mip.projection import pgd_step_size, project_l1_ball, project_l1_box


def _is_projection(v, p, feasible_samples):
    # Variational inequality: (v - p) . (z - p) <= 0 for every feasible z.
    return all(float((v - p) @ (z - p)) <= 1e-9 for z in feasible_samples)


def test_l1_ball_projection_is_exact() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.normal(size=12)
        eps = float(rng.uniform(0.1, 3.0))
        p = project_l1_ball(v, eps)[0]
        assert np.abs(p).sum() <= eps + 1e-9
        zs = project_l1_ball(rng.normal(size=(200, 12)) * 3, eps)
        assert _is_projection(v, p, zs)
    inside = np.array([0.1, -0.2])
    assert np.allclose(project_l1_ball(inside, 1.0)[0], inside)


def test_l1_box_projection_is_exact() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = 10
        lo, hi = -rng.uniform(0, 0.5, n), rng.uniform(0, 0.5, n)
        v = rng.normal(size=n)
        eps = float(rng.uniform(0.1, 1.5))
        p = project_l1_box(v, eps, lo, hi)[0]
        assert np.abs(p).sum() <= eps + 1e-9 and np.all(p >= lo) and np.all(p <= hi)
        zs = project_l1_box(rng.normal(size=(200, n)), eps, lo, hi)
        assert _is_projection(v, p, zs)


def _bisection_l1_box(v, eps, lo, hi):
    """Reference: the L1 multiplier by bisection (slow but obviously right)."""
    d = np.clip(v, lo, hi)
    if np.abs(d).sum() <= eps:
        return d
    t_lo, t_hi = 0.0, float(np.abs(v).max())
    for _ in range(200):
        t = 0.5 * (t_lo + t_hi)
        z = np.clip(np.sign(v) * np.maximum(np.abs(v) - t, 0.0), lo, hi)
        t_lo, t_hi = (t, t_hi) if np.abs(z).sum() > eps else (t_lo, t)
    return np.clip(np.sign(v) * np.maximum(np.abs(v) - t_hi, 0.0), lo, hi)


def test_l1_box_projection_matches_bisection_on_hard_rows() -> None:
    """Zero entries, zero-width box sides, tied magnitudes and many rows at once."""
    rng = np.random.default_rng(2)
    for _ in range(200):
        n, m = int(rng.integers(1, 40)), int(rng.integers(1, 5))
        lo = -rng.uniform(0, 1, n) * (rng.random(n) < 0.7)
        hi = rng.uniform(0, 1, n) * (rng.random(n) < 0.7)
        v = np.round(rng.normal(size=(m, n)) * rng.choice([0.1, 1.0, 10.0]), 1)
        eps = float(rng.uniform(1e-4, 3.0))
        p = project_l1_box(v, eps, lo, hi)
        assert np.all(np.abs(p).sum(axis=1) <= eps) and np.all(p >= lo) and np.all(p <= hi)
        for row, q in zip(v, p, strict=True):
            assert np.allclose(q, _bisection_l1_box(row, eps, lo, hi), atol=1e-9)


def test_l1_box_projection_takes_one_box_per_row() -> None:
    """Rows with their own boxes (adversarial training projects a batch around its images)."""
    rng = np.random.default_rng(3)
    m, n, eps = 30, 16, 1.0
    lo, hi = -rng.uniform(0, 0.5, (m, n)), rng.uniform(0, 0.5, (m, n))
    v = rng.normal(size=(m, n))
    p = project_l1_box(v, eps, lo, hi)
    assert np.all(p >= lo) and np.all(p <= hi)
    for i in range(m):
        assert np.allclose(p[i], _bisection_l1_box(v[i], eps, lo[i], hi[i]), atol=1e-9)


def test_pgd_step_size_conventions() -> None:
    # L-inf: 2.5 * eps / steps, so the sign walk covers the ball's width within the steps;
    # L1: eps / 4, so four sparse steps reach the ball's boundary whatever the step count.
    assert pgd_step_size(0.1, "inf", 10) == pytest.approx(0.025)
    assert pgd_step_size(0.1, "inf", 0) == pytest.approx(0.25)
    assert pgd_step_size(5.0, "1", 10) == pgd_step_size(5.0, "1", 40) == 1.25
