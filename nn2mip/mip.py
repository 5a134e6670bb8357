"""A solver-neutral sparse MIP, assembled in bulk from blocks of variables and rows.

Backends (HiGHS, Pyomo, MPS/LP files) read the finished arrays; nothing here touches a solver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from nn2mip.errors import InvalidInputError

Sense = Literal["min", "max"]


@dataclass
class MipModel:
    """Columns with bounds and integrality, rows ``row_lower <= A x <= row_upper``, a linear
    objective and its sense. Build with ``add_cols``/``add_rows``; read with ``matrix()``."""

    _col_lower: list[np.ndarray] = field(default_factory=list)
    _col_upper: list[np.ndarray] = field(default_factory=list)
    _col_int: list[np.ndarray] = field(default_factory=list)
    _rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    _row_lower: list[np.ndarray] = field(default_factory=list)
    _row_upper: list[np.ndarray] = field(default_factory=list)
    num_cols: int = 0
    num_rows: int = 0
    cost: dict[int, float] = field(default_factory=dict)
    offset: float = 0.0
    sense: Sense = "max"
    # Optional column names (MPS/LP files carry them); unnamed columns are written as c_<index>.
    col_names: dict[int, str] = field(default_factory=dict)
    _matrix: tuple[tuple[int, int, int], sp.csr_array] | None = field(default=None, repr=False)

    def add_cols(
        self,
        lower: np.ndarray | float,
        upper: np.ndarray | float,
        n: int | None = None,
        integer: bool = False,
    ) -> np.ndarray:
        """Add a block of columns and return their indices."""
        lo = np.atleast_1d(np.asarray(lower, dtype=np.float64))
        hi = np.atleast_1d(np.asarray(upper, dtype=np.float64))
        size = n if n is not None else max(lo.shape[0], hi.shape[0])
        lo, hi = np.broadcast_to(lo, (size,)).copy(), np.broadcast_to(hi, (size,)).copy()
        idx = np.arange(self.num_cols, self.num_cols + size)
        self._col_lower.append(lo)
        self._col_upper.append(hi)
        self._col_int.append(np.full(size, integer, dtype=bool))
        self.num_cols += size
        return idx

    def add_rows(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
        lower: np.ndarray | float,
        upper: np.ndarray | float,
        n: int,
    ) -> np.ndarray:
        """Add ``n`` rows given as triplets (local row index, column, value); zeros are dropped."""
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        vals = np.asarray(vals, np.float64)
        keep = vals != 0.0
        self._rows.append((vals[keep], rows[keep] + self.num_rows, cols[keep]))
        self._row_lower.append(np.broadcast_to(np.asarray(lower, np.float64), (n,)).copy())
        self._row_upper.append(np.broadcast_to(np.asarray(upper, np.float64), (n,)).copy())
        idx = np.arange(self.num_rows, self.num_rows + n)
        self.num_rows += n
        return idx

    def set_col_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        """Change the bounds of existing columns (for instance to fix the inputs)."""
        lo, hi = self.col_lower(), self.col_upper()
        lo[np.asarray(cols)] = lower
        hi[np.asarray(cols)] = upper
        self._col_lower, self._col_upper = [lo], [hi]

    def set_objective(
        self, cols: np.ndarray, coefs: np.ndarray, sense: Sense = "max", offset: float = 0.0
    ) -> None:
        """Replace the objective with ``sum coefs * x[cols] + offset``."""
        if sense not in ("min", "max"):  # backends read anything else as "min", silently
            raise InvalidInputError(f"objective sense must be 'min' or 'max', got {sense!r}")
        self.cost = {}
        for c, v in zip(np.asarray(cols).tolist(), np.asarray(coefs, float).tolist(), strict=True):
            self.cost[c] = self.cost.get(c, 0.0) + v
        self.sense, self.offset = sense, float(offset)

    def set_col_names(self, names: dict[int, str]) -> None:
        """Name columns (for files read by other solvers); names must be unique, no spaces."""
        for c, name in names.items():
            if not 0 <= c < self.num_cols:
                raise IndexError(f"column {c} does not exist ({self.num_cols} columns)")
            if not name or any(ch.isspace() for ch in name):
                raise ValueError(f"column name {name!r} is empty or has white space")
        merged = {**self.col_names, **names}
        if len(set(merged.values())) != len(merged):
            raise ValueError("column names must be unique")
        self.col_names = merged

    def col_name(self, c: int) -> str:
        """Column ``c``'s name, ``c_<c>`` when it has none."""
        return self.col_names.get(c, f"c_{c}")

    # -- read side -------------------------------------------------------------------------
    def col_lower(self) -> np.ndarray:
        return _cat(self._col_lower)

    def col_upper(self) -> np.ndarray:
        return _cat(self._col_upper)

    def integrality(self) -> np.ndarray:
        return _cat(self._col_int, dtype=bool)

    def row_lower(self) -> np.ndarray:
        return _cat(self._row_lower)

    def row_upper(self) -> np.ndarray:
        return _cat(self._row_upper)

    def cost_vector(self) -> np.ndarray:
        c = np.zeros(self.num_cols)
        for j, v in self.cost.items():
            c[j] = v
        return c

    def matrix(self) -> sp.csr_array:
        """The constraint matrix, duplicates summed, explicit zeros removed.

        Cached until rows or columns are added: a loop of solves that only changes the
        objective (one per target class) assembles it once. Treat the result as read-only.
        """
        key = (self.num_rows, self.num_cols, len(self._rows))
        if self._matrix is not None and self._matrix[0] == key:
            return self._matrix[1]
        if self._rows:
            vals = np.concatenate([b[0] for b in self._rows])
            rows = np.concatenate([b[1] for b in self._rows])
            cols = np.concatenate([b[2] for b in self._rows])
        else:
            vals, rows, cols = np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
        a = sp.csr_array((vals, (rows, cols)), shape=(self.num_rows, self.num_cols))
        a.sum_duplicates()
        a.eliminate_zeros()
        self._matrix = (key, a)
        return a

    @property
    def num_binaries(self) -> int:
        return int(self.integrality().sum())

    def objective_value(self, x: np.ndarray) -> float:
        return float(self.cost_vector() @ x + self.offset)


def _cat(parts: list[np.ndarray], dtype: type = np.float64) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
