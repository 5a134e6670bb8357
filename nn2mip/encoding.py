"""Big-M MIP encoding of a network over given neuron bounds, MIPVerify style, built in bulk.

Per ReLU neuron, with pre-activation bounds ``l <= z <= u``:

* pruned    -- nothing downstream reads it (all outgoing weights zero): no variable, no row;
* constant  -- no incoming weight from any variable: its value is folded into the next layer;
* inactive  -- ``u <= 0``: the output is 0, no variable;
* active    -- ``l >= 0``: ``y = z``, one continuous variable and one equality row, no binary;
* unstable  -- ``y >= z``, ``y <= z - l (1 - a)``, ``y <= u a``, ``y >= 0``, ``a`` binary.

Per group of a max-over-groups layer (output ``y = max_i z_i``), with ``L = max_i l_i``: only
candidates ``i`` with ``u_i >= L`` can attain the max. One candidate decides it: ``y = z_i``
(kind active, no binary). Otherwise (kind unstable) ``y >= z_i`` and
``y <= z_i + (U - l_i)(1 - d_i)`` per candidate, ``U = max_i u_i``, ``sum_i d_i = 1``, ``d``
binary: exact, since the chosen ``i`` forces ``y <= z_i <= max z`` and the rows ``y >= z_i``
give ``y >= max z`` (non-candidates are below ``L <= max z``).

Exact-zero weights never become matrix entries: every map is read as a sparse matrix. This
module needs bounds, not a way to compute them (``formulation`` does that), so bound methods
that solve LPs over the encoding (``bounds_lp``) import it without a cycle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from nn2mip.bounds_base import NetworkBounds
from nn2mip.errors import InvalidInputError
from nn2mip.mip import MipModel
from nn2mip.network import AffineLayer, Network
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

    ``layer_cols[k][j]`` is the column of output j of layer k (a neuron, or a group of a max
    layer), or -1 when it has no variable; then its value is ``layer_consts[k][j]``.
    ``binary_cols[k]`` holds a ReLU layer's binary per neuron (-1: none) and a max layer's
    binaries per group entry (aligned with ``groups.index``). ``kinds[k]`` per output.
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


Map = np.ndarray | sp.csr_array


def csr_weight(layer: AffineLayer) -> sp.csr_array:
    """The layer's map as a CSR matrix without explicit zeros (cached on the layer)."""
    return layer.csr


def _nonzero(w: Map) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of the nonzero entries of a dense or CSR matrix."""
    if sp.issparse(w):
        coo = w.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    r, c = np.nonzero(w)
    return r, c, w[r, c]


def _row_has_entries(w: Map) -> np.ndarray:
    return np.diff(w.indptr) > 0 if sp.issparse(w) else np.any(w != 0.0, axis=1)


def _units_read(layer: AffineLayer, used_out: np.ndarray) -> np.ndarray:
    """Which pre-activations of ``layer`` feed a used output."""
    if layer.groups is None:
        return used_out
    units = np.zeros(layer.units, dtype=bool)
    sizes = np.diff(layer.groups.start)
    units[layer.groups.index[np.repeat(used_out, sizes)]] = True
    return units


def _used_outputs(network: Network) -> list[np.ndarray]:
    """For each layer, which outputs are read by a used unit of the next layer."""
    used: list[np.ndarray] = [np.ones(network.output_size, dtype=bool)]
    for k in range(len(network.layers) - 1, 0, -1):
        rows = _units_read(network.layers[k], used[0])
        layer = network.layers[k]
        if layer.is_sparse:
            read = np.zeros(layer.in_features, dtype=bool)
            read[layer.weight[np.flatnonzero(rows)].indices] = True
        else:
            read = np.any(layer.weight[rows] != 0.0, axis=0)
        used.insert(0, read)
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
    used = _used_outputs(network)
    enc = NetworkEncoding(network, bounds, input_cols, np.zeros(0, np.int64))
    prev_cols, prev_const = input_cols, np.zeros(network.input_size)
    n_layers = len(network.layers)
    for k, layer in enumerate(network.layers):
        var_in = prev_cols >= 0
        # Dense maps stay dense (faster on dense layers); zeros are skipped either way.
        w = layer.weight
        vcols = prev_cols[var_in]
        if var_in.all():  # the common case: no column slicing
            wv, beff = w, layer.bias
        else:
            wv = w[:, np.flatnonzero(var_in)]
            beff = layer.bias + w[:, np.flatnonzero(~var_in)] @ prev_const[~var_in]
        has_in = _row_has_entries(wv)
        lo, hi = bounds.lower[k], bounds.upper[k]
        if layer.groups is not None:
            cols, consts, bins, kinds = _encode_max(
                model, layer, wv, vcols, beff, has_in, lo, hi, used[k]
            )
        else:
            cols, consts, bins, kinds = _encode_units(
                model, layer, wv, vcols, beff, has_in, lo, hi, used[k]
            )
        if k == n_layers - 1:
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


def _encode_units(
    model: MipModel,
    layer: AffineLayer,
    wv: Map,
    vcols: np.ndarray,
    beff: np.ndarray,
    has_in: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    used: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A ReLU or identity layer: (columns, constants, binaries, kinds) per neuron."""
    n = layer.units
    kinds = np.full(n, AFFINE, dtype=np.int8)
    if layer.relu:
        kinds[:] = UNSTABLE
        kinds[hi <= 0.0] = INACTIVE
        kinds[(lo >= 0.0) & (hi > 0.0)] = ACTIVE
    kinds[~has_in] = CONSTANT
    kinds[~used] = PRUNED

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
        add_affine_rows(model, wv[lin], vcols, cols[lin], None, beff[lin], beff[lin])

    # Unstable ReLUs: three rows and a binary each.
    uns = np.flatnonzero(kinds == UNSTABLE)
    if uns.size:
        l_u, u_u = lo[uns], hi[uns]
        ycols = model.add_cols(0.0, u_u, n=uns.size)
        acols = model.add_cols(0.0, 1.0, n=uns.size, integer=True)
        cols[uns], bins[uns] = ycols, acols
        w_u = wv[uns]
        # y - W h >= b
        add_affine_rows(model, w_u, vcols, ycols, None, beff[uns], np.inf)
        # y - W h - l a <= b - l
        add_affine_rows(model, w_u, vcols, ycols, (acols, -l_u), -np.inf, beff[uns] - l_u)
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
    return cols, consts, bins, kinds


def _encode_max(
    model: MipModel,
    layer: AffineLayer,
    wv: Map,
    vcols: np.ndarray,
    beff: np.ndarray,
    has_in: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    used: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A max-over-groups layer: (columns, constants, kinds) per group, binaries per entry."""
    groups = layer.groups
    assert groups is not None
    g_n = groups.num_groups
    sizes = np.diff(groups.start)
    unit = groups.index  # the unit of each group entry
    grp = np.repeat(np.arange(g_n), sizes)  # the group of each entry
    l_max = groups.reduce_max(lo)
    u_max = groups.reduce_max(hi)
    cand = hi[unit] >= l_max[grp]  # entries that can attain their group's max
    n_cand = np.bincount(grp[cand], minlength=g_n)
    live = np.bincount(grp[cand & has_in[unit]], minlength=g_n) > 0  # reads a variable

    kinds = np.where(n_cand == 1, ACTIVE, UNSTABLE).astype(np.int8)
    kinds[~live] = CONSTANT
    kinds[~used] = PRUNED
    consts = np.zeros(g_n)
    const_g = np.flatnonzero(kinds == CONSTANT)
    if const_g.size:  # every candidate constant: the max of their values
        vals = np.full(unit.size, -np.inf)
        vals[cand] = beff[unit[cand]]
        consts[const_g] = np.maximum.reduceat(vals, groups.start[:-1])[const_g]
    cols = np.full(g_n, -1, dtype=np.int64)
    bins = np.full(unit.size, -1, dtype=np.int64)
    enc_g = np.flatnonzero((kinds == ACTIVE) | (kinds == UNSTABLE))
    if enc_g.size == 0:
        return cols, consts, bins, kinds
    cols[enc_g] = model.add_cols(l_max[enc_g], u_max[enc_g])

    # Decided groups: y = z_i of their one candidate.
    dec = cand & (kinds[grp] == ACTIVE)
    e = np.flatnonzero(dec)
    if e.size:
        u = unit[e]
        add_affine_rows(model, wv[u], vcols, cols[grp[e]], None, beff[u], beff[u])
    # Open groups: y >= z_i and y <= z_i + (U - l_i)(1 - d_i) per candidate, sum d = 1.
    e = np.flatnonzero(cand & (kinds[grp] == UNSTABLE))
    if e.size:
        u, g = unit[e], grp[e]
        y = cols[g]
        d = model.add_cols(0.0, 1.0, n=e.size, integer=True)
        bins[e] = d
        m_big = u_max[g] - lo[u]
        w_e = wv[u]
        add_affine_rows(model, w_e, vcols, y, None, beff[u], np.inf)
        add_affine_rows(model, w_e, vcols, y, (d, m_big), -np.inf, beff[u] + m_big)
        open_g, local = np.unique(g, return_inverse=True)
        model.add_rows(local, d, np.ones(e.size), 1.0, 1.0, n=open_g.size)
    return cols, consts, bins, kinds


def add_affine_rows(
    model: MipModel,
    w: Map,
    in_cols: np.ndarray,
    out_cols: np.ndarray,
    extra: tuple[np.ndarray, np.ndarray] | None,
    lower: np.ndarray | float,
    upper: np.ndarray | float,
) -> None:
    """Rows ``y_i - sum_j w_ij h_j [+ extra coef * extra col] in [lower, upper]``, in one block
    (``w`` dense or CSR: its nonzero entries become the matrix entries)."""
    m = w.shape[0]
    r, c, v = _nonzero(w)
    rows = [np.arange(m), r]
    cols = [out_cols, in_cols[c]]
    vals = [np.ones(m), -v]
    if extra is not None:
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
