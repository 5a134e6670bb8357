"""Input regions: a box (the input domain intersected with a ball's bounding box) plus, for L1
balls, the ball itself. Bounds and formulations take a region; adversarial problems build them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from nn2mip.errors import InvalidInputError

Norm = Literal["inf", "1"]


@dataclass(frozen=True)
class InputRegion:
    """``{x : lower <= x <= upper}`` and, when ``norm == "1"``, ``||x - center||_1 <= eps``."""

    lower: np.ndarray
    upper: np.ndarray
    center: np.ndarray | None = None
    eps: float = 0.0
    norm: Norm | None = None

    def __post_init__(self) -> None:
        lo = np.asarray(self.lower, dtype=np.float64).reshape(-1)
        hi = np.asarray(self.upper, dtype=np.float64).reshape(-1)
        if lo.shape != hi.shape:
            raise InvalidInputError("region lower and upper bounds differ in size")
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
            raise InvalidInputError("region bounds contain NaN")
        if np.any(lo > hi):
            raise InvalidInputError("region is empty: some lower bound exceeds its upper bound")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        if self.center is not None:
            object.__setattr__(self, "center", np.asarray(self.center, np.float64).reshape(-1))

    @property
    def size(self) -> int:
        return self.lower.shape[0]

    def contains(self, x: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Boolean per row of ``x``: is the point inside the region (up to ``tol``)?"""
        x = np.atleast_2d(x)
        ok = np.all((x >= self.lower - tol) & (x <= self.upper + tol), axis=1)
        if self.norm == "1" and self.center is not None:
            ok &= np.abs(x - self.center).sum(axis=1) <= self.eps + tol
        return ok

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points inside the region (uniform in the box; L1 balls by scaled directions)."""
        if self.norm != "1" or self.center is None:
            return rng.uniform(self.lower, self.upper, size=(n, self.size))
        # Random sparse-ish directions scaled to random radii around the box point c nearest the
        # center, then clipped to the box; clipping toward c never increases the L1 distance to
        # c, and the radius is what is left of eps after reaching c, so points stay inside even
        # when the center lies outside the box (c is the center otherwise).
        c = np.clip(self.center, self.lower, self.upper)
        left = max(self.eps - float(np.abs(c - self.center).sum()), 0.0)
        d = rng.laplace(size=(n, self.size)) * (rng.random((n, self.size)) < 0.2)
        norms = np.abs(d).sum(axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        r = left * rng.random((n, 1)) ** 0.5
        return np.clip(c + d / norms * r, self.lower, self.upper)


def box_region(lower: np.ndarray, upper: np.ndarray) -> InputRegion:
    """A plain box region."""
    return InputRegion(np.asarray(lower, np.float64), np.asarray(upper, np.float64))


def ball_region(
    center: np.ndarray,
    eps: float,
    norm: Norm = "inf",
    domain: tuple[float | np.ndarray, float | np.ndarray] = (0.0, 1.0),
) -> InputRegion:
    """The ``norm`` ball of radius ``eps`` around ``center``, intersected with ``domain``."""
    if not np.isfinite(eps) or eps < 0:
        raise InvalidInputError(f"eps must be a finite number >= 0, got {eps}")
    if norm not in ("inf", "1"):
        raise InvalidInputError(f"norm must be 'inf' or '1', got {norm!r}")
    c = np.asarray(center, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(c)):
        raise InvalidInputError("center contains NaN or infinite values")
    dlo = np.broadcast_to(np.asarray(domain[0], np.float64), c.shape)
    dhi = np.broadcast_to(np.asarray(domain[1], np.float64), c.shape)
    lo = np.maximum(c - eps, dlo)
    hi = np.minimum(c + eps, dhi)
    if np.any(lo > hi):
        raise InvalidInputError("the ball does not meet the input domain (center outside it?)")
    if norm == "1" and np.abs(np.clip(c, lo, hi) - c).sum() > eps:  # each side meets it, not all
        raise InvalidInputError("the L1 ball does not meet the input domain (center outside it)")
    return InputRegion(lo, hi, center=c, eps=float(eps), norm=norm)
