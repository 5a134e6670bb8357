"""Pyomo modeling API: embed a network in a user's Pyomo model as one Block.

``add_network(model, net, inputs=x)`` is the analogue of gurobi-ml's ``add_predictor_constr``:
it builds the same big-M formulation as the HiGHS path (same bounds, stable neurons without
binaries, exact zeros skipped) and returns a ``PyomoNetwork`` with the input and output
variables, ``get_error()`` and statistics.

Speed: the formulation is assembled as sparse arrays first (``MipModel``), then every row becomes
one ``LinearExpression`` built from a coefficient list and a variable list -- no per-coefficient
``c * x + ...`` expression trees, which is where most Pyomo build time usually goes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from nn2mip.bounds import DEFAULT_BOUND_METHOD, NetworkBounds, compute_bounds
from nn2mip.encoding import FormulationStats, NetworkEncoding, add_region, encode_network
from nn2mip.errors import InvalidInputError
from nn2mip.mip import MipModel
from nn2mip.network import Network
from nn2mip.region import InputRegion, box_region


@dataclass
class PyomoNetwork:
    """A network embedded in a Pyomo model.

    ``input_vars[i]`` / ``output_vars[j]`` are the network's inputs and outputs (the user's own
    variables when ``inputs`` was given); ``block`` holds everything else.
    """

    block: pyo.Block
    network: Network
    region: InputRegion
    bounds: NetworkBounds
    encoding: NetworkEncoding
    input_vars: Any
    output_vars: Any
    stats: dict[str, float] = field(default_factory=dict)

    def input_values(self) -> np.ndarray:
        """Current values of the input variables (after a solve)."""
        return _values([self.input_vars[i] for i in range(self.network.input_size)])

    def output_values(self) -> np.ndarray:
        """Current values of the output variables (after a solve)."""
        return _values([self.output_vars[j] for j in range(self.network.output_size)])

    def get_error(self) -> float:
        """Max |solution outputs - float64 forward pass of the solution inputs|."""
        return float(
            np.max(np.abs(self.output_values() - self.network.forward(self.input_values())))
        )

    def print_stats(self, file: TextIO | None = None) -> None:
        """Print the block's size and how its neurons were encoded."""
        out = file or sys.stdout
        s = self.stats
        print(f"network {self.network.describe()} as Pyomo block {self.block.name!r}", file=out)
        print(
            f"  neurons {s['neurons']}: {s['unstable']} with a binary, {s['active']} active, "
            f"{s['inactive']} inactive, {s['constant']} constant, {s['pruned']} pruned",
            file=out,
        )
        print(
            f"  {s['cols']} variables ({s['binaries']} binary), {s['rows']} constraints, "
            f"{s['nonzeros']} nonzeros",
            file=out,
        )
        print(
            f"  bounds ({self.bounds.method}) {s['bounds_time']:.3f} s, "
            f"block build {s['build_time']:.3f} s",
            file=out,
        )


def _values(vs: Sequence[Any]) -> np.ndarray:
    vals = [v.value for v in vs]
    if any(v is None for v in vals):
        raise InvalidInputError("the network's variables have no values yet: solve the model first")
    return np.asarray(vals, dtype=np.float64)


def _input_list(inputs: Any, n: int) -> list[Any]:
    """The user's input variables as a list of n scalar Pyomo variables, in index order."""
    if isinstance(inputs, pyo.Var) and inputs.is_indexed():
        vs = [inputs[i] for i in inputs.index_set()]
    else:
        vs = list(inputs)
    if len(vs) != n:
        raise InvalidInputError(f"got {len(vs)} input variables for a network with {n} inputs")
    return vs


def _region_from_vars(vs: list[Any]) -> InputRegion:
    lo = np.array([v.lb if v.lb is not None else -np.inf for v in vs], dtype=np.float64)
    hi = np.array([v.ub if v.ub is not None else np.inf for v in vs], dtype=np.float64)
    missing = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
    if missing.size:
        names = ", ".join(vs[i].name for i in missing[:3])
        raise InvalidInputError(
            f"{missing.size} input variables have no finite bounds (e.g. {names}); give them "
            "bounds or pass region=... so that neuron bounds can be computed"
        )
    return box_region(lo, hi)


def add_network(
    block_or_model: pyo.Block,
    network: Network,
    inputs: Any = None,
    region: InputRegion | None = None,
    bounds: NetworkBounds | None = None,
    bound_method: str = DEFAULT_BOUND_METHOD,
    name: str | None = None,
) -> PyomoNetwork:
    """Add ``network`` to a Pyomo model/block as a sub-block and return a ``PyomoNetwork``.

    ``inputs``: an indexed Var (or sequence of scalar vars) used directly as the network's
    inputs; without it, input variables bounded by ``region`` are created in the block.
    ``region``: where the inputs may range (a box, or an L1 ball whose rows are added too);
    by default the bounds of the given input variables. ``bounds``: precomputed neuron bounds
    for that region; otherwise computed with ``bound_method`` (interval, symbolic, lp).
    """
    t0 = time.perf_counter()
    n_in = network.input_size
    user_vars = _input_list(inputs, n_in) if inputs is not None else None
    if region is None:
        if user_vars is None:
            raise InvalidInputError("give either inputs (with bounds) or a region")
        region = _region_from_vars(user_vars)
    if region.size != n_in:
        raise InvalidInputError(f"region has {region.size} inputs but the network expects {n_in}")
    if bounds is None:
        bounds = compute_bounds(network, region, bound_method)
    t1 = time.perf_counter()

    mip = MipModel()
    x = add_region(mip, region)
    enc = encode_network(mip, network, bounds, x)

    blk = pyo.Block(concrete=True)
    if name is None:
        name = _unique_name(block_or_model, "nn")
    block_or_model.add_component(name, blk)

    col_lo, col_hi, col_int = mip.col_lower(), mip.col_upper(), mip.integrality()
    colvars: list[Any] = [None] * mip.num_cols
    out_cols = enc.output_cols

    if user_vars is None:
        blk.inputs = pyo.Var(range(n_in), bounds=_bounds_rule(col_lo[x], col_hi[x]))
        input_vars: Any = blk.inputs
    else:
        input_vars = user_vars
        # The user's variables keep their own bounds; the region is added as constraints.
        lo, hi = col_lo[x].tolist(), col_hi[x].tolist()
        blk.input_region = pyo.Constraint(
            range(n_in), rule=lambda b, i: (lo[i], user_vars[i], hi[i])
        )
    for i, c in enumerate(x.tolist()):
        colvars[c] = input_vars[i]

    blk.outputs = pyo.Var(
        range(network.output_size), bounds=_bounds_rule(col_lo[out_cols], col_hi[out_cols])
    )
    for j, c in enumerate(out_cols.tolist()):
        colvars[c] = blk.outputs[j]

    rest = np.array([c for c in range(mip.num_cols) if colvars[c] is None], dtype=np.int64)
    cont, bins = rest[~col_int[rest]], rest[col_int[rest]]
    blk.h = pyo.Var(range(cont.size), bounds=_bounds_rule(col_lo[cont], col_hi[cont]))
    blk.a = pyo.Var(range(bins.size), domain=pyo.Binary)
    for i, c in enumerate(cont.tolist()):
        colvars[c] = blk.h[i]
    for i, c in enumerate(bins.tolist()):
        colvars[c] = blk.a[i]

    a = mip.matrix().tocsr()
    indptr, indices, data = a.indptr.tolist(), a.indices.tolist(), a.data.tolist()
    row_lo, row_hi = mip.row_lower().tolist(), mip.row_upper().tolist()

    def row_rule(b: pyo.Block, r: int) -> Any:
        s, e = indptr[r], indptr[r + 1]
        # Passing ready-made monomials is ~3x faster than linear_coefs=/linear_vars=.
        expr = LinearExpression(
            [
                MonomialTermExpression((c, colvars[j]))
                for c, j in zip(data[s:e], indices[s:e], strict=True)
            ]
        )
        lo, hi = row_lo[r], row_hi[r]
        if lo == hi:
            return expr == lo
        return (None if lo == -np.inf else lo, expr, None if hi == np.inf else hi)

    # Pausing the garbage collector matters: tens of thousands of new term objects otherwise
    # trigger full collections over the whole Pyomo model, which dominated the build time.
    with PauseGC():
        blk.rows = pyo.Constraint(range(mip.num_rows), rule=row_rule)
    t2 = time.perf_counter()

    counts = enc.kind_counts()
    fs = FormulationStats(
        neurons=network.num_hidden_neurons,
        binaries=int(bins.size),
        rows=mip.num_rows,
        cols=mip.num_cols,
        nonzeros=int(a.nnz),
        **counts,
    )
    stats: dict[str, float] = {**fs.as_dict(), "bounds_time": t1 - t0, "build_time": t2 - t1}
    return PyomoNetwork(blk, network, region, bounds, enc, input_vars, blk.outputs, stats)


def _bounds_rule(lo: np.ndarray, hi: np.ndarray) -> Any:
    lo_l = [None if not np.isfinite(v) else v for v in lo.tolist()]
    hi_l = [None if not np.isfinite(v) else v for v in hi.tolist()]
    return lambda b, i: (lo_l[i], hi_l[i])


def _unique_name(block: pyo.Block, base: str) -> str:
    name, k = base, 1
    while block.component(name) is not None:
        k += 1
        name = f"{base}{k}"
    return name


def solve_pyomo(
    model: pyo.Block,
    time_limit: float | None = None,
    threads: int = 1,
    options: dict[str, Any] | None = None,
) -> Any:
    """Solve a Pyomo model with HiGHS through Pyomo's own interface (``appsi_highs``)."""
    solver = pyo.SolverFactory("appsi_highs")
    if not solver.available():
        raise InvalidInputError("Pyomo's appsi_highs interface is not available (needs highspy)")
    if time_limit is not None:
        solver.config.time_limit = float(time_limit)
    solver.highs_options.update({"threads": int(threads), **(options or {})})
    return solver.solve(model)
