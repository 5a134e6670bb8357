"""Euclidean projections onto L1 balls, alone or intersected with a box, and the sparse L1
ascent direction: the geometry of the PGD engine (``nn2mip.pgd``) that the attacks and
adversarial training share."""

from __future__ import annotations

import numpy as np

# Share of the gradient's coordinates an L1 ascent step moves.
L1_STEP_SHARE = 0.05


def project_l1_ball(v: np.ndarray, eps: float) -> np.ndarray:
    """Euclidean projection of each row of ``v`` onto ``{d : ||d||_1 <= eps}`` (Duchi et al. 2008,
    sort-based, O(n log n) per row)."""
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    a = np.abs(v)
    out = v.copy()
    need = a.sum(axis=1) > eps
    if not np.any(need) or eps <= 0:
        return np.zeros_like(v) if eps <= 0 else out
    u = -np.sort(-a[need], axis=1)
    css = np.cumsum(u, axis=1)
    k = np.arange(1, u.shape[1] + 1)
    cond = u - (css - eps) / k > 0
    rho = u.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = (css[np.arange(len(rho)), rho] - eps) / (rho + 1)
    out[need] = np.sign(v[need]) * np.maximum(a[need] - theta[:, None], 0.0)
    return out


def project_l1_box(v: np.ndarray, eps: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Projection of each row of ``v`` onto ``{d : ||d||_1 <= eps, lo <= d <= hi}``, with
    ``lo <= 0 <= hi`` (one bound vector for every row, or one row of bounds per row of ``v``).

    The problem is separable once the L1 multiplier ``theta`` is fixed: the answer is the
    soft-threshold of ``v`` by ``theta`` clipped to the box (the box contains 0). The L1 norm of
    that map, ``f(theta) = sum_i clip(|v_i| - theta, 0, cap_i)``, is piecewise linear and
    non-increasing with breakpoints at ``|v_i| - cap_i`` and ``|v_i|``; ``theta`` is read off
    the sorted breakpoints exactly (O(n log n) per row, no iteration).
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    d = np.clip(v, lo, hi)
    lo = np.broadcast_to(lo, v.shape)
    hi = np.broadcast_to(hi, v.shape)
    over = np.abs(d).sum(axis=1) > eps
    if not np.any(over):
        return d
    if eps <= 0:
        d[over] = 0.0
        return d
    w, lo, hi = v[over], lo[over], hi[over]
    a = np.abs(w)
    cap = np.where(w >= 0, hi, -lo)
    theta = _l1_box_theta(a, cap, eps)
    z = np.clip(np.sign(w) * np.maximum(a - theta[:, None], 0.0), lo, hi)
    # Rounding in the breakpoint sums can leave the norm a few ulps above eps: scale back
    # (the box contains 0, so scaling stays in it) until the computed norm is within eps.
    for shrink in (1.0, 1.0 - 1e-15, 1.0 - 1e-13, 1.0 - 1e-11):
        norm = np.abs(z).sum(axis=1)
        bad = norm > eps
        if not np.any(bad):
            break
        z[bad] *= (shrink * eps / norm[bad])[:, None]
    d[over] = z
    return d


def _l1_box_theta(a: np.ndarray, cap: np.ndarray, eps: float) -> np.ndarray:
    """Per row, the ``theta > 0`` with ``sum_i clip(a_i - theta, 0, cap_i) = eps``, given
    ``sum_i min(a_i, cap_i) > eps > 0``."""
    m = a.shape[0]
    bp = np.concatenate([a - cap, a], axis=1)
    # Slope changes of f: -1 where a term starts shrinking, +1 where it reaches 0.
    delta = np.concatenate([-np.ones_like(a), np.ones_like(a)], axis=1)
    order = np.argsort(bp, axis=1)
    bp = np.take_along_axis(bp, order, axis=1)
    slope = np.cumsum(np.take_along_axis(delta, order, axis=1), axis=1)  # on [bp_k, bp_k+1]
    f0 = np.clip(a - bp[:, :1], 0.0, cap).sum(axis=1)
    f = np.empty_like(bp)
    f[:, 0] = f0
    f[:, 1:] = f0[:, None] + np.cumsum(slope[:, :-1] * np.diff(bp, axis=1), axis=1)
    # First breakpoint where f has dropped to eps (f(max bp) = 0 < eps); f > eps for theta <= 0.
    k = np.argmax(f <= eps, axis=1)
    k = np.maximum(k, 1)
    rows = np.arange(m)
    s = slope[rows, k - 1]
    return bp[rows, k - 1] + (f[rows, k - 1] - eps) / -np.minimum(s, -1.0)


def l1_ascent_direction(g: np.ndarray, frac: float = L1_STEP_SHARE) -> np.ndarray:
    """Sparse L1 steepest-ascent direction for each row of ``g``: the sign of the largest
    ``frac`` of gradient entries, scaled to unit L1 norm (the L1 ball's vertices are where its
    optima live)."""
    k = max(1, int(frac * g.shape[1]))
    idx = np.argpartition(-np.abs(g), k - 1, axis=1)[:, :k]
    d = np.zeros_like(g)
    rows = np.arange(g.shape[0])[:, None]
    d[rows, idx] = np.sign(g[rows, idx]) / k
    return d


def pgd_step_size(eps: float, norm: str, steps: int) -> float:
    """Default PGD step for a ball of radius ``eps``: L-inf sign steps of ``2.5 * eps / steps``
    (Madry et al.'s convention, so the walk can cross the ball), L1 steps of ``eps / 4`` along
    ``l1_ascent_direction`` (a few steps reach the ball's boundary, projection keeps them in)."""
    if norm == "1":
        return eps / 4.0
    return 2.5 * eps / max(steps, 1)
