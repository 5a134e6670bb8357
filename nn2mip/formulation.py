"""Big-M MIP formulation of a ReLU network, MIPVerify style, built in bulk.

Per hidden neuron, with pre-activation bounds ``l <= z <= u``:

* pruned    -- nothing downstream reads it (all outgoing weights zero): no variable, no row;
* constant  -- no incoming weight from any variable: its value is folded into the next layer;
* inactive  -- ``u <= 0``: the output is 0, no variable;
* active    -- ``l >= 0``: ``y = z``, one continuous variable and one equality row, no binary;
* unstable  -- ``y >= z``, ``y <= z - l (1 - a)``, ``y <= u a``, ``y >= 0``, ``a`` binary.

Exact-zero weights never become matrix entries.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from nn2mip.bounds import DEFAULT_BOUND_METHOD, NetworkBounds, compute_bounds
from nn2mip.errors import InvalidInputError
from nn2mip.mip import MipModel
from nn2mip.network import Network
from nn2mip.region import InputRegion

PRUNED, CONSTANT, INACTIVE, ACTIVE, UNSTABLE, AFFINE = range(6)
KIND_NAMES = ("pruned", "constant", "inactive", "active", "unstable", "affine")


@dataclass
class FormulationStats:
    """Size of a formulation: hidden neurons by kind, and the model handed to the solver."""

    neurons: int = 0
    pruned: int = 0
    constant: int = 0
    inactive: int = 0
    active: int = 0
    unstable: int = 0
    binaries: int = 0
    rows: int = 0
    cols: int = 0
    nonzeros: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class NetworkEncoding:
    """Where a network lives inside a ``MipModel``.

    ``layer_cols[k][j]`` is the column of neuron j's output in layer k, or -1 when the neuron has
    no variable; then its value is ``layer_consts[k][j]``.
    """

    network: Network
    bounds: NetworkBounds
    input_cols: np.ndarray
    output_cols: np.ndarray
    layer_cols: list[np.ndarray] = field(default_factory=list)
    layer_consts: list[np.ndarray] = field(default_factory=list)
    binary_cols: list[np.ndarray] = field(default_factory=list)
    kinds: list[np.ndarray] = field(default_factory=list)

    def kind_counts(self) -> dict[str, int]:
        """Hidden neurons by kind (the output layer is not counted)."""
        counts = dict.fromkeys(KIND_NAMES[:5], 0)
        for kinds in self.kinds[:-1]:
            for code in range(5):
                counts[KIND_NAMES[code]] += int(np.sum(kinds == code))
            counts["active"] += int(np.sum(kinds == AFFINE))  # linear hidden layers: identity
        return counts


def _used_neurons(network: Network) -> list[np.ndarray]:
    """For each layer, which neurons are read by a used neuron of the next layer."""
    used: list[np.ndarray] = [np.ones(network.output_size, dtype=bool)]
    for k in range(len(network.layers) - 1, 0, -1):
        w_next = network.layers[k].weight
        used.insert(0, np.any(w_next[used[0]] != 0.0, axis=0))
    return used


def encode_network(
    model: MipModel, network: Network, bounds: NetworkBounds, input_cols: np.ndarray
) -> NetworkEncoding:
    """Add the big-M encoding of ``network`` to ``model``, reading inputs from ``input_cols``.

    The caller's input columns must lie within the region the bounds were computed for.
    """
    input_cols = np.asarray(input_cols, dtype=np.int64)
    if input_cols.shape != (network.input_size,):
        raise InvalidInputError(
            f"got {input_cols.shape[0]} input columns for a network with "
            f"{network.input_size} inputs"
        )
    used = _used_neurons(network)
    enc = NetworkEncoding(network, bounds, input_cols, np.zeros(0, np.int64))
    prev_cols, prev_const = input_cols, np.zeros(network.input_size)
    n_layers = len(network.layers)
    for k, layer in enumerate(network.layers):
        is_last = k == n_layers - 1
        var_in = prev_cols >= 0
        wv = layer.weight[:, var_in]
        vcols = prev_cols[var_in]
        beff = layer.bias + layer.weight[:, ~var_in] @ prev_const[~var_in]
        lo, hi = bounds.lower[k], bounds.upper[k]
        n = layer.out_features

        has_in = np.any(wv != 0.0, axis=1)
        kinds = np.full(n, AFFINE, dtype=np.int8)
        if layer.relu:
            kinds[:] = UNSTABLE
            kinds[hi <= 0.0] = INACTIVE
            kinds[(lo >= 0.0) & (hi > 0.0)] = ACTIVE
        kinds[~has_in] = CONSTANT
        kinds[~used[k]] = PRUNED

        consts = np.zeros(n)
        const_val = np.maximum(beff, 0.0) if layer.relu else beff
        consts[kinds == CONSTANT] = const_val[kinds == CONSTANT]

        cols = np.full(n, -1, dtype=np.int64)
        bins = np.full(n, -1, dtype=np.int64)

        # Linear neurons (identity or affine): y = W h + b, one equality row each.
        lin = np.flatnonzero((kinds == ACTIVE) | (kinds == AFFINE))
        if lin.size:
            ylo = np.maximum(lo[lin], 0.0) if layer.relu else lo[lin]
            cols[lin] = model.add_cols(ylo, hi[lin])
            _add_affine_rows(
                model, wv[lin], vcols, cols[lin], np.zeros(lin.size), beff[lin], beff[lin]
            )

        # Unstable ReLUs: three rows and a binary each.
        uns = np.flatnonzero(kinds == UNSTABLE)
        if uns.size:
            l_u, u_u = lo[uns], hi[uns]
            ycols = model.add_cols(0.0, u_u, n=uns.size)
            acols = model.add_cols(0.0, 1.0, n=uns.size, integer=True)
            cols[uns], bins[uns] = ycols, acols
            # y - W h >= b
            _add_affine_rows(model, wv[uns], vcols, ycols, None, beff[uns], np.inf)
            # y - W h - l a <= b - l
            _add_affine_rows(model, wv[uns], vcols, ycols, (acols, -l_u), -np.inf, beff[uns] - l_u)
            # y - u a <= 0
            m = uns.size
            r = np.arange(m)
            model.add_rows(
                np.concatenate([r, r]),
                np.concatenate([ycols, acols]),
                np.concatenate([np.ones(m), -u_u]),
                -np.inf,
                0.0,
                n=m,
            )

        if is_last:
            # Every output needs a column, even a constant or inactive one.
            missing = np.flatnonzero(cols < 0)
            if missing.size:
                v = consts[missing]
                cols[missing] = model.add_cols(v, v)
            enc.output_cols = cols
        enc.layer_cols.append(cols)
        enc.layer_consts.append(consts)
        enc.binary_cols.append(bins)
        enc.kinds.append(kinds)
        prev_cols, prev_const = cols, consts
    return enc


def _add_affine_rows(
    model: MipModel,
    w: np.ndarray,
    in_cols: np.ndarray,
    out_cols: np.ndarray,
    extra: tuple[np.ndarray, np.ndarray] | np.ndarray | None,
    lower: np.ndarray | float,
    upper: np.ndarray | float,
) -> None:
    """Rows ``y_i - sum_j w_ij h_j [+ extra coef * extra col] in [lower, upper]``, in one block."""
    m = w.shape[0]
    rr, cc = np.nonzero(w)
    rows = [np.arange(m), rr]
    cols = [out_cols, in_cols[cc]]
    vals = [np.ones(m), -w[rr, cc]]
    if isinstance(extra, tuple):
        rows.append(np.arange(m))
        cols.append(extra[0])
        vals.append(extra[1])
    model.add_rows(
        np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), lower, upper, n=m
    )


def add_region(model: MipModel, region: InputRegion) -> np.ndarray:
    """Add input columns bounded by the region's box, plus the L1-ball rows when it has one."""
    x = model.add_cols(region.lower, region.upper)
    if region.norm == "1" and region.center is not None:
        c, n = region.center, region.size
        t = model.add_cols(0.0, np.maximum(c - region.lower, region.upper - c))
        r = np.arange(n)
        # t >= x - c  and  t >= c - x, then sum t <= eps
        model.add_rows(
            np.concatenate([r, r]),
            np.concatenate([t, x]),
            np.concatenate([np.ones(n), -np.ones(n)]),
            -c,
            np.inf,
            n=n,
        )
        model.add_rows(
            np.concatenate([r, r]),
            np.concatenate([t, x]),
            np.concatenate([np.ones(n), np.ones(n)]),
            c,
            np.inf,
            n=n,
        )
        model.add_rows(np.zeros(n), t, np.ones(n), -np.inf, region.eps, n=1)
    return x


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
    bound_time_limit: float | None = None,
) -> Formulation:
    """Compute bounds over ``region`` (unless given) and encode ``network`` as a big-M MIP.

    ``bound_time_limit`` caps the seconds an anytime bound method may take (``compute_bounds``).
    """
    t0 = time.perf_counter()
    if bounds is None:
        bounds = compute_bounds(network, region, bound_method, time_limit=bound_time_limit)
    t1 = time.perf_counter()
    model = MipModel()
    x = add_region(model, region)
    enc = encode_network(model, network, bounds, x)
    t2 = time.perf_counter()
    return Formulation(model, enc, region, bounds, bounds_time=t1 - t0, build_time=t2 - t1)
