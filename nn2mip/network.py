"""Framework-neutral network IR: a chain of layers, each a linear map followed by an activation.

A layer is ``z = W h + b`` with ``W`` dense (numpy) or sparse (``scipy.sparse`` CSR), then one of
three activations: identity, ReLU, or a max over index groups of ``z`` (max pooling: output ``g``
is ``max(z[i] for i in group g)``). Everything is float64 so that the forward pass is the exact
reference the MIP is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from nn2mip.errors import InvalidInputError, InvalidNetworkError

Matrix = np.ndarray | sp.csr_array


@dataclass(frozen=True, eq=False)
class MaxGroups:
    """Index groups of a layer's pre-activations, stored like CSR: group ``g`` is
    ``index[start[g]:start[g + 1]]``. Groups are nonempty; they may overlap (pooling strides)."""

    index: np.ndarray
    start: np.ndarray

    def __post_init__(self) -> None:
        index = np.ascontiguousarray(self.index, dtype=np.int64).reshape(-1)
        start = np.ascontiguousarray(self.start, dtype=np.int64).reshape(-1)
        if start.size < 2 or start[0] != 0 or start[-1] != index.size:
            raise InvalidNetworkError("max groups need start[0] == 0 and start[-1] == len(index)")
        if np.any(np.diff(start) <= 0):
            raise InvalidNetworkError("every max group needs at least one index")
        if index.size and index.min() < 0:
            raise InvalidNetworkError("max group indices must be >= 0")
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "start", start)

    @classmethod
    def from_lists(cls, groups: Sequence[Sequence[int]]) -> MaxGroups:
        """Groups from a list of index lists."""
        sizes = [len(g) for g in groups]
        index = np.concatenate([np.asarray(g, np.int64) for g in groups]) if groups else []
        return cls(np.asarray(index, np.int64), np.concatenate([[0], np.cumsum(sizes)]))

    @property
    def num_groups(self) -> int:
        return self.start.size - 1

    def group(self, g: int) -> np.ndarray:
        return self.index[self.start[g] : self.start[g + 1]]

    def padded(self) -> np.ndarray:
        """The groups as rows of a (groups, largest group) index table, -1 past a group's end."""
        sizes = np.diff(self.start)
        table = np.full((self.num_groups, int(sizes.max(initial=1))), -1, dtype=np.int64)
        rows = np.repeat(np.arange(self.num_groups), sizes)
        cols = np.arange(self.index.size) - np.repeat(self.start[:-1], sizes)
        table[rows, cols] = self.index
        return table

    def reduce_max(self, z: np.ndarray) -> np.ndarray:
        """``max`` of each group of the last axis of ``z`` (exact)."""
        return np.maximum.reduceat(z[..., self.index], self.start[:-1], axis=-1)

    def reduce_max_t(self, z):  # noqa: ANN001, ANN201 (torch stays optional in this module)
        """``reduce_max`` of a torch tensor (..., n) (for interval bounds)."""
        import torch

        idx = torch.from_numpy(self.index)
        seg = torch.from_numpy(np.repeat(np.arange(self.num_groups), np.diff(self.start)))
        vals = z[..., idx]
        out = torch.full((*z.shape[:-1], self.num_groups), -torch.inf, dtype=z.dtype)
        return out.scatter_reduce(-1, seg.expand_as(vals), vals, "amax")


@dataclass(frozen=True, eq=False)  # arrays: compare with np.array_equal, not ==
class AffineLayer:
    """``y = act(W x + b)`` with ``W`` of shape (out, in), dense or ``scipy.sparse`` (kept as
    CSR), and ``act`` the identity, ReLU (``relu=True``) or a max over ``groups``."""

    weight: Matrix
    bias: np.ndarray
    relu: bool = False
    groups: MaxGroups | None = None

    def __post_init__(self) -> None:
        if sp.issparse(self.weight):
            w = sp.csr_array(self.weight, dtype=np.float64)
            w.eliminate_zeros()  # exact zeros never become matrix entries
            w.sort_indices()
        else:
            w = np.ascontiguousarray(self.weight, dtype=np.float64)
        b = np.ascontiguousarray(self.bias, dtype=np.float64).reshape(-1)
        if w.ndim != 2:
            raise InvalidNetworkError(f"layer weight must be 2-D, got shape {w.shape}")
        if b.shape[0] != w.shape[0]:
            raise InvalidNetworkError(
                f"bias has {b.shape[0]} entries but weight has {w.shape[0]} rows"
            )
        if self.relu and self.groups is not None:
            raise InvalidNetworkError("a layer has one activation: ReLU or max groups, not both")
        if (
            self.groups is not None
            and self.groups.index.size
            and (self.groups.index.max() >= w.shape[0])
        ):
            raise InvalidNetworkError(
                f"a max group refers to unit {self.groups.index.max()} of a layer with "
                f"{w.shape[0]} units"
            )
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)
        object.__setattr__(self, "relu", bool(self.relu))

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.weight)

    @property
    def activation(self) -> str:
        """``"relu"``, ``"max"`` or ``"identity"``."""
        return "relu" if self.relu else "max" if self.groups is not None else "identity"

    @cached_property
    def csr(self) -> sp.csr_array:
        """The map as CSR without explicit zeros (computed once: layers are immutable, treat
        their arrays as read-only)."""
        return self.weight if self.is_sparse else sp.csr_array(self.weight)

    def dense_weight(self) -> np.ndarray:
        """The weight as a dense array (a copy for a sparse map)."""
        return self.weight.toarray() if self.is_sparse else self.weight

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def units(self) -> int:
        """Pre-activations (rows of ``W``)."""
        return self.weight.shape[0]

    @property
    def out_features(self) -> int:
        """Outputs: the groups for a max layer, else the rows of ``W``."""
        return self.groups.num_groups if self.groups is not None else self.weight.shape[0]

    def linear(self, h: np.ndarray) -> np.ndarray:
        """``W h + b`` for a batch ``h`` (n, in)."""
        if self.is_sparse:
            return np.asarray(self.weight @ h.T).T + self.bias
        return h @ self.weight.T + self.bias

    def activate(self, z: np.ndarray) -> np.ndarray:
        """The activation applied to pre-activations ``z`` (n, units)."""
        if self.relu:
            return np.maximum(z, 0.0)
        if self.groups is not None:
            return self.groups.reduce_max(z)
        return z

    def nonzero(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, values)`` of the nonzero weights, row-major."""
        if self.is_sparse:
            coo = self.weight.tocoo()
            return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
        r, c = np.nonzero(self.weight)
        return r, c, self.weight[r, c]

    def weight_nnz(self) -> int:
        return int(self.weight.nnz) if self.is_sparse else int(np.count_nonzero(self.weight))


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward network of ``AffineLayer``s. The last layer is usually affine (identity
    activation): the logits."""

    layers: tuple[AffineLayer, ...]
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise InvalidNetworkError("a network needs at least one affine layer")
        for i, layer in enumerate(layers):
            wv = layer.weight.data if layer.is_sparse else layer.weight
            if not (np.all(np.isfinite(wv)) and np.all(np.isfinite(layer.bias))):
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
        return sum(layer.weight_nnz() for layer in self.layers)

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
            z = layer.linear(h)
            out.append(z)
            h = layer.activate(z)
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Exact float64 forward pass; a 1-D input gives a 1-D output."""
        y = self.layers[-1].activate(self.pre_activations(x)[-1])
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
