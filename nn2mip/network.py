"""Framework-neutral network IR: a chain of affine layers, each optionally followed by ReLU.

Everything is float64 so that the forward pass is the exact reference the MIP is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nn2mip.errors import InvalidInputError, InvalidNetworkError


@dataclass(frozen=True, eq=False)  # arrays: compare with np.array_equal, not ==
class AffineLayer:
    """``y = relu?(W x + b)`` with ``W`` of shape (out, in)."""

    weight: np.ndarray
    bias: np.ndarray
    relu: bool

    def __post_init__(self) -> None:
        w = np.ascontiguousarray(self.weight, dtype=np.float64)
        b = np.ascontiguousarray(self.bias, dtype=np.float64).reshape(-1)
        if w.ndim != 2:
            raise InvalidNetworkError(f"layer weight must be 2-D, got shape {w.shape}")
        if b.shape[0] != w.shape[0]:
            raise InvalidNetworkError(
                f"bias has {b.shape[0]} entries but weight has {w.shape[0]} rows"
            )
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward ReLU network. The last layer is usually affine (no ReLU): the logits."""

    layers: tuple[AffineLayer, ...]
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise InvalidNetworkError("a network needs at least one affine layer")
        for i, layer in enumerate(layers):
            if not (np.all(np.isfinite(layer.weight)) and np.all(np.isfinite(layer.bias))):
                raise InvalidNetworkError(f"layer {i} has NaN or infinite weights")
            if i and layer.in_features != layers[i - 1].out_features:
                raise InvalidNetworkError(
                    f"layer {i} expects {layer.in_features} inputs but layer {i - 1} "
                    f"gives {layers[i - 1].out_features}"
                )

    @property
    def input_size(self) -> int:
        return self.layers[0].in_features

    @property
    def output_size(self) -> int:
        return self.layers[-1].out_features

    @property
    def hidden_sizes(self) -> list[int]:
        """Widths of all layers but the last."""
        return [layer.out_features for layer in self.layers[:-1]]

    @property
    def num_hidden_neurons(self) -> int:
        return sum(self.hidden_sizes)

    @property
    def num_weights(self) -> int:
        """Nonzero weights (exact zeros do not count: they never reach the MIP)."""
        return int(sum(np.count_nonzero(layer.weight) for layer in self.layers))

    def check_input(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` as a float64 batch of shape (n, input_size), or raise a clear error."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        elif arr.ndim > 2:
            arr = arr.reshape(arr.shape[0], -1)
        if arr.shape[1] != self.input_size:
            raise InvalidInputError(
                f"input has {arr.shape[1]} features but the network expects {self.input_size}"
            )
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError("input contains NaN or infinite values")
        return arr

    def pre_activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Pre-activation values of every layer for a batch ``x`` (n, input_size)."""
        h = self.check_input(x)
        out = []
        for layer in self.layers:
            z = h @ layer.weight.T + layer.bias
            out.append(z)
            h = np.maximum(z, 0.0) if layer.relu else z
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Exact float64 forward pass; a 1-D input gives a 1-D output."""
        z = self.pre_activations(x)[-1]
        last = self.layers[-1]
        y = np.maximum(z, 0.0) if last.relu else z
        return y[0] if np.asarray(x).ndim == 1 else y

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class (argmax of the outputs) per row."""
        return np.argmax(self.forward(np.atleast_2d(x)), axis=1)

    def describe(self) -> str:
        """Short shape string such as ``64-32-32-10``."""
        return "-".join(str(s) for s in [self.input_size, *self.hidden_sizes, self.output_size])


def network_from_arrays(
    weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], relu_last: bool = False
) -> Network:
    """Build a ReLU MLP from weight (out, in) and bias arrays; hidden layers get ReLU."""
    if len(weights) != len(biases):
        raise InvalidNetworkError("need as many bias vectors as weight matrices")
    n = len(weights)
    layers = tuple(
        AffineLayer(w, b, relu=(i < n - 1) or relu_last)
        for i, (w, b) in enumerate(zip(weights, biases, strict=True))
    )
    return Network(layers)
