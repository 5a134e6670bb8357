"""Input and output scaling folded exactly into a network's first and last affine maps.

Surrogates are trained on scaled data: ``x_s = (x - offset_x) / factor_x`` goes in and
``y = y_s * factor_y + offset_y`` comes out (OMLT's ``OffsetScaling`` convention). Folding both
into the weights gives one ``Network`` that maps the user's units to the user's units, so an
optimization model over it needs no scaling rows and its input bounds are the user's bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nn2mip.errors import InvalidInputError, InvalidNetworkError
from nn2mip.network import AffineLayer, Network


def _vector(v: np.ndarray | float, n: int, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    a = np.full(n, float(a)) if a.ndim == 0 else a.reshape(-1)  # only true scalars broadcast
    if a.shape != (n,):
        raise InvalidInputError(f"{what} has {a.size} entries, expected {n}")
    if not np.all(np.isfinite(a)):
        raise InvalidInputError(f"{what} contains NaN or infinite values")
    return a


@dataclass(frozen=True, eq=False)
class Scaling:
    """``x_s = (x - input_offset) / input_factor``, ``y = y_s * output_factor + output_offset``.

    Factors must be nonzero. Scalars broadcast once ``fold_scaling`` knows the sizes.
    """

    input_offset: np.ndarray | float = 0.0
    input_factor: np.ndarray | float = 1.0
    output_offset: np.ndarray | float = 0.0
    output_factor: np.ndarray | float = 1.0

    @classmethod
    def from_data(cls, x: np.ndarray, y: np.ndarray | None = None, kind: str = "minmax") -> Scaling:
        """Scaling fitted on data: ``"minmax"`` maps each column's range to [0, 1],
        ``"standard"`` to zero mean and unit deviation. Constant columns get factor 1."""
        if kind not in ("minmax", "standard"):
            raise InvalidInputError(f"scaling kind must be 'minmax' or 'standard', got {kind!r}")

        def fit(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            a = np.asarray(a, dtype=np.float64)
            a = a.reshape(len(a), -1)
            if kind == "minmax":
                off, fac = a.min(axis=0), a.max(axis=0) - a.min(axis=0)
            else:
                off, fac = a.mean(axis=0), a.std(axis=0)
            return off, np.where(fac > 0, fac, 1.0)

        xo, xf = fit(x)
        yo, yf = fit(y) if y is not None else (0.0, 1.0)
        return cls(xo, xf, yo, yf)

    def scale_inputs(self, x: np.ndarray) -> np.ndarray:
        """User units -> the units the network was trained in."""
        x = np.asarray(x, dtype=np.float64)
        return (x - np.asarray(self.input_offset)) / np.asarray(self.input_factor)

    def scale_outputs(self, y: np.ndarray) -> np.ndarray:
        """Targets in user units -> the units the network was trained on."""
        y = np.asarray(y, dtype=np.float64)
        return (y - np.asarray(self.output_offset)) / np.asarray(self.output_factor)

    def unscale_outputs(self, y_s: np.ndarray) -> np.ndarray:
        """Network outputs -> user units."""
        y_s = np.asarray(y_s, dtype=np.float64)
        return y_s * np.asarray(self.output_factor) + np.asarray(self.output_offset)


def fold_scaling(network: Network, scaling: Scaling) -> Network:
    """The network ``x -> unscale(network(scale(x)))`` with the scaling inside its weights.

    First layer: ``W (x - o) / f + b = (W / f) x + (b - W (o / f))``. Last layer (affine):
    ``F (W h + b) + O = (F W) h + (F b + O)``. A last layer with a ReLU can only take a positive
    factor and no offset (``f relu(z) = relu(f z)`` for ``f > 0``); anything else is refused.
    """
    layers = list(network.layers)
    xo = _vector(scaling.input_offset, network.input_size, "input offset")
    xf = _vector(scaling.input_factor, network.input_size, "input factor")
    yo = _vector(scaling.output_offset, network.output_size, "output offset")
    yf = _vector(scaling.output_factor, network.output_size, "output factor")
    if np.any(xf == 0.0) or np.any(yf == 0.0):
        raise InvalidInputError("scaling factors must be nonzero")
    first = layers[0]
    w = first.weight / xf[None, :]
    layers[0] = AffineLayer(w, first.bias - w @ xo, first.relu)
    last = layers[-1]
    if last.relu and (np.any(yo != 0.0) or np.any(yf < 0.0)):
        raise InvalidNetworkError(
            "cannot fold an output offset or a negative output factor into a last layer with "
            "ReLU; the output scaling must come after an affine output layer"
        )
    layers[-1] = AffineLayer(yf[:, None] * last.weight, yf * last.bias + yo, last.relu)
    return Network(tuple(layers), meta=dict(network.meta))
