"""Pre-activation bounds of every neuron over an input region: the table of bound methods.

``compute_bounds(network, region, method)`` is the single entry point. The methods, from cheap
to tight (all sound: every bound is rounded outward, LP and MIP values by their solvers'
tolerances):

* ``interval``  -- interval arithmetic (``crown.interval_bounds``), microseconds;
* ``symbolic``  -- CROWN (``crown.crown_bounds``), milliseconds: the default;
* ``alpha``     -- alpha-CROWN (``crown.alpha_bounds``), anytime: seconds on deep nets;
* ``lp``, ``mip`` -- progressive LP / MIP tightening (``bounds_lp``), anytime.

The table below is the whole list; nothing registers itself on import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nn2mip.bounds_base import DEFAULT_BOUND_METHOD, NetworkBounds, check_region
from nn2mip.bounds_lp import LP_BUDGET, MIP_BUDGET, lp_bounds, mip_bounds
from nn2mip.crown import alpha_bounds, crown_bounds, interval_bounds
from nn2mip.errors import InvalidInputError
from nn2mip.network import Network
from nn2mip.region import InputRegion

__all__ = [
    "BOUND_METHODS",
    "DEFAULT_BOUND_METHOD",
    "BoundMethod",
    "NetworkBounds",
    "bound_methods",
    "check_region",
    "compute_bounds",
    "interval_bounds",
]


@dataclass(frozen=True)
class BoundMethod:
    """A bound method: ``fn(network, region)`` returns the bounds. An ``anytime`` method also
    takes ``time_budget=`` seconds and spends at most that (``default_budget`` when the caller
    sets no limit; None: as long as it needs)."""

    fn: Callable[..., NetworkBounds]
    anytime: bool = False
    default_budget: float | None = None


BOUND_METHODS: dict[str, BoundMethod] = {
    "interval": BoundMethod(interval_bounds),
    "symbolic": BoundMethod(crown_bounds),
    "alpha": BoundMethod(alpha_bounds, anytime=True),
    "lp": BoundMethod(lp_bounds, anytime=True, default_budget=LP_BUDGET),
    "mip": BoundMethod(mip_bounds, anytime=True, default_budget=MIP_BUDGET),
}


def bound_methods() -> list[str]:
    """Names accepted by ``compute_bounds``."""
    return sorted(BOUND_METHODS)


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
    try:
        m = BOUND_METHODS[method]
    except KeyError:
        raise InvalidInputError(
            f"unknown bound method {method!r}; choose from {', '.join(bound_methods())}"
        ) from None
    check_region(network, region)
    if not m.anytime:
        return m.fn(network, region)
    caps = [b for b in (m.default_budget, time_limit) if b is not None]
    return m.fn(network, region, time_budget=max(0.0, min(caps)) if caps else None)
