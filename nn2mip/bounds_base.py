"""What every bound method returns and checks: ``NetworkBounds`` and the region check.

The bottom of the bound layer: the engine (``crown``), LP tightening (``bounds_lp``), the MIP
encoding and the method table (``bounds``) all import it; it imports only the IR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nn2mip.errors import InvalidInputError
from nn2mip.network import Network
from nn2mip.region import InputRegion

# The default everywhere (``nn2mip.bounds`` re-exports it; here it is cheap to import, for the
# command line's parsers): CROWN-style symbolic bounds cost milliseconds and remove about a
# third of the unstable neurons interval arithmetic leaves (docs/notes/benchmarks-history.md,
# issue 4).
DEFAULT_BOUND_METHOD = "symbolic"


@dataclass
class NetworkBounds:
    """``lower[k]``, ``upper[k]``: bounds on layer k's pre-activations (before its activation)."""

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    method: str

    def post_activation(self, network: Network, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on layer k's output (after its ReLU or max over groups)."""
        lo, hi = self.lower[k], self.upper[k]
        layer = network.layers[k]
        if layer.relu:
            return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        if layer.groups is not None:
            return layer.groups.reduce_max(lo), layer.groups.reduce_max(hi)
        return lo, hi

    def unstable_counts(self, network: Network) -> list[int]:
        """Number of ReLU neurons per layer whose sign is not fixed by the bounds."""
        return [
            int(np.sum((lo < 0) & (hi > 0))) if layer.relu else 0
            for layer, lo, hi in zip(network.layers, self.lower, self.upper, strict=True)
        ]


def check_region(network: Network, region: InputRegion) -> None:
    """Raise ``InvalidInputError`` unless the region has the network's input size."""
    if region.size != network.input_size:
        raise InvalidInputError(
            f"region has {region.size} inputs but the network expects {network.input_size}"
        )
