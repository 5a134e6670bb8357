"""Pre-activation bounds of every neuron over an input region.

``compute_bounds`` is the single entry point; methods are registered by name so tighter ones
(symbolic, LP) slot in behind the same interface. All bounds are rounded slightly outward so that
float64 rounding can never make them unsound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nn2mip.errors import InvalidInputError
from nn2mip.network import Network
from nn2mip.region import InputRegion

# Outward rounding: absolute + relative slack, far below any tolerance the MIP solver uses.
_ABS_SLACK = 1e-9
_REL_SLACK = 1e-12


@dataclass
class NetworkBounds:
    """``lower[k]``, ``upper[k]``: bounds on layer k's pre-activation (before ReLU)."""

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    method: str

    def post_activation(self, network: Network, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on layer k's output (after ReLU where the layer has one)."""
        lo, hi = self.lower[k], self.upper[k]
        if network.layers[k].relu:
            return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        return lo, hi

    def unstable_counts(self, network: Network) -> list[int]:
        """Number of ReLU neurons per layer whose sign is not fixed by the bounds."""
        return [
            int(np.sum((lo < 0) & (hi > 0))) if layer.relu else 0
            for layer, lo, hi in zip(network.layers, self.lower, self.upper, strict=True)
        ]


def outward(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Widen bounds by a tiny slack to absorb floating-point rounding."""
    return (
        lo - (_ABS_SLACK + _REL_SLACK * np.abs(lo)),
        hi + (_ABS_SLACK + _REL_SLACK * np.abs(hi)),
    )


def affine_interval(
    w: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Interval image of the box [lo, hi] under ``x -> W x + b``."""
    wp, wn = np.maximum(w, 0.0), np.minimum(w, 0.0)
    return wp @ lo + wn @ hi + b, wp @ hi + wn @ lo + b


def interval_bounds(network: Network, region: InputRegion) -> NetworkBounds:
    """Interval arithmetic layer by layer; for an L1 ball the first layer also uses
    ``|w . (x - c)| <= eps * ||w||_inf``, which is sound and often much tighter."""
    _check_region(network, region)
    lowers, uppers = [], []
    lo, hi = region.lower, region.upper
    for k, layer in enumerate(network.layers):
        zl, zu = affine_interval(layer.weight, layer.bias, lo, hi)
        if k == 0 and region.norm == "1" and region.center is not None:
            zc = layer.weight @ region.center + layer.bias
            r = region.eps * np.abs(layer.weight).max(axis=1, initial=0.0)
            zl, zu = np.maximum(zl, zc - r), np.minimum(zu, zc + r)
        zl, zu = outward(zl, zu)
        lowers.append(zl)
        uppers.append(zu)
        lo, hi = (np.maximum(zl, 0.0), np.maximum(zu, 0.0)) if layer.relu else (zl, zu)
    return NetworkBounds(lowers, uppers, "interval")


# The default everywhere: CROWN-style symbolic bounds cost milliseconds and remove about a
# third of the unstable neurons interval arithmetic leaves (BENCHMARKS.md, issue 4).
DEFAULT_BOUND_METHOD = "symbolic"

# Callers with a time limit give an anytime method (alpha, lp, mip) at most this share of it.
BOUNDS_SHARE = 0.5

BoundMethod = Callable[..., NetworkBounds]


@dataclass(frozen=True)
class _Method:
    fn: BoundMethod
    # Anytime methods take ``time_budget=`` (seconds); ``default_budget`` is what they spend
    # when the caller sets no limit (None: as long as they need).
    anytime: bool = False
    default_budget: float | None = None


_METHODS: dict[str, _Method] = {"interval": _Method(interval_bounds)}


def register_bound_method(
    name: str, fn: BoundMethod, anytime: bool = False, default_budget: float | None = None
) -> None:
    """Make a bounding method available to ``compute_bounds`` under ``name``.

    ``fn(network, region)`` returns the bounds; an ``anytime`` method also takes
    ``time_budget=`` seconds and spends at most that (``default_budget`` when no caller limit).
    """
    _METHODS[name] = _Method(fn, anytime, default_budget)


def _alpha_bounds(
    network: Network, region: InputRegion, time_budget: float | None = None
) -> NetworkBounds:
    """alpha-CROWN (``nn2mip.bounds_alpha``), imported on first use: it needs torch, whose
    import costs seconds that interval, symbolic and LP bounds do not need."""
    from nn2mip.bounds_alpha import alpha_bounds

    return alpha_bounds(network, region, time_budget=time_budget)


register_bound_method("alpha", _alpha_bounds, anytime=True)


def _load_builtin_methods() -> None:
    """Import the modules that register the tighter methods (they import this module, so they
    cannot be imported at the top of it)."""
    import nn2mip.bounds_lp  # noqa: F401
    import nn2mip.bounds_symbolic  # noqa: F401


def bound_methods() -> list[str]:
    """Names accepted by ``compute_bounds``."""
    _load_builtin_methods()
    return sorted(_METHODS)


def compute_bounds(
    network: Network,
    region: InputRegion,
    method: str = "interval",
    time_limit: float | None = None,
) -> NetworkBounds:
    """Bounds on every pre-activation of ``network`` over ``region`` by the named method.

    ``time_limit`` (seconds) caps what an anytime method (alpha, lp, mip) spends, below its own
    default budget; the fixed-cost methods (interval, symbolic) ignore it.
    """
    _load_builtin_methods()
    try:
        m = _METHODS[method]
    except KeyError:
        raise InvalidInputError(
            f"unknown bound method {method!r}; choose from {', '.join(bound_methods())}"
        ) from None
    if not m.anytime:
        return m.fn(network, region)
    caps = [b for b in (m.default_budget, time_limit) if b is not None]
    return m.fn(network, region, time_budget=max(0.0, min(caps)) if caps else None)


def _check_region(network: Network, region: InputRegion) -> None:
    if region.size != network.input_size:
        raise InvalidInputError(
            f"region has {region.size} inputs but the network expects {network.input_size}"
        )
