"""A network encoded as a big-M MIP over an input region: bounds from the method table, then
the encoding (``nn2mip.encoding``, where the formulation itself is described).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from nn2mip.bounds import DEFAULT_BOUND_METHOD, compute_bounds
from nn2mip.bounds_base import NetworkBounds
from nn2mip.encoding import (
    FormulationStats,
    NetworkEncoding,
    add_region,
    encode_network,
)
from nn2mip.mip import MipModel
from nn2mip.network import Network
from nn2mip.region import InputRegion

__all__ = [
    "Formulation",
    "FormulationStats",
    "NetworkEncoding",
    "add_region",
    "build_formulation",
    "encode_network",
]


@dataclass
class Formulation:
    """A network encoded over an input region, ready for an objective and a backend."""

    model: MipModel
    encoding: NetworkEncoding
    region: InputRegion
    bounds: NetworkBounds
    bounds_time: float
    build_time: float

    @property
    def input_cols(self) -> np.ndarray:
        return self.encoding.input_cols

    @property
    def output_cols(self) -> np.ndarray:
        return self.encoding.output_cols

    def stats(self) -> FormulationStats:
        counts = self.encoding.kind_counts()
        return FormulationStats(
            neurons=self.encoding.network.num_hidden_neurons,
            binaries=self.model.num_binaries,
            rows=self.model.num_rows,
            cols=self.model.num_cols,
            nonzeros=int(self.model.matrix().nnz),
            **counts,
        )


def build_formulation(
    network: Network,
    region: InputRegion,
    bounds: NetworkBounds | None = None,
    bound_method: str = DEFAULT_BOUND_METHOD,
    time_limit: float | None = None,
) -> Formulation:
    """Compute bounds over ``region`` (unless given) and encode ``network`` as a big-M MIP.

    ``time_limit`` caps the seconds the formulation may take: an anytime bound method stops
    there (``compute_bounds``); the encoding itself is one pass.
    """
    t0 = time.perf_counter()
    if bounds is None:
        bounds = compute_bounds(network, region, bound_method, time_limit=time_limit)
    t1 = time.perf_counter()
    model = MipModel()
    x = add_region(model, region)
    enc = encode_network(model, network, bounds, x)
    t2 = time.perf_counter()
    return Formulation(model, enc, region, bounds, bounds_time=t1 - t0, build_time=t2 - t1)
