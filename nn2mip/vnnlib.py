"""VNN-LIB properties (the VNN-COMP subset of SMT-LIB) and VNN-COMP counterexample files.

A property declares inputs ``X_i`` and outputs ``Y_j`` and asserts constraints whose conjunction
describes a *violation*: the property is violated ("sat") iff some input satisfying the input
constraints gives outputs satisfying the output constraints. ``parse_vnnlib`` turns the asserts
into disjunctive normal form and returns, per input box, the list of output disjuncts, each a
conjunction ``C y <= d``.

Supported: ``declare-const`` of ``Real`` variables, ``assert`` of ``and``/``or`` trees over
comparisons ``<= >= < > =`` (strict ones are read as non-strict, as verifiers do), linear terms
``+ - * /`` with numeric coefficients, and ``;`` comments. Input constraints must be bounds on
single variables (boxes); an ``or`` over input constraints gives several boxes.
"""

from __future__ import annotations

import gzip
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nn2mip.errors import PropertyFileError
from nn2mip.region import InputRegion, box_region

_TOKEN = re.compile(r"\(|\)|[^\s();]+")
_VAR = re.compile(r"([XY])_(\d+)$")
_IGNORED = {"set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"}
MAX_DISJUNCTS = 100_000


class OutputConstraint(NamedTuple):
    """A conjunction of linear output constraints ``C @ y <= d``."""

    C: np.ndarray  # (m, num_outputs)
    d: np.ndarray  # (m,)

    def satisfied_by(self, y: np.ndarray, tol: float = 0.0) -> bool:
        """True if ``C @ y <= d + tol`` holds row-wise."""
        return bool(np.all(self.C @ np.asarray(y, np.float64).reshape(-1) <= self.d + tol))


class VnnCase(NamedTuple):
    """One input box and the output disjuncts to check on it (any satisfied = violation)."""

    lower: np.ndarray
    upper: np.ndarray
    disjuncts: tuple[OutputConstraint, ...]


@dataclass(frozen=True)
class VnnProperty:
    """A parsed VNN-LIB property: violated iff, for some case, an input in ``[lower, upper]``
    gives outputs that satisfy one of the case's disjuncts. No cases means never violated."""

    num_inputs: int
    num_outputs: int
    cases: tuple[VnnCase, ...]
    source: str = "<string>"

    def input_regions(self) -> list[InputRegion]:
        """One box ``InputRegion`` per case."""
        return [box_region(c.lower, c.upper) for c in self.cases]

    def is_violated_by(self, x: np.ndarray, y: np.ndarray, tol: float = 1e-9) -> bool:
        """Do input ``x`` and output ``y`` form a counterexample (within ``tol``)?"""
        x = np.asarray(x, np.float64).reshape(-1)
        y = np.asarray(y, np.float64).reshape(-1)
        for case in self.cases:
            if np.all(x >= case.lower - tol) and np.all(x <= case.upper + tol):
                if any(dj.satisfied_by(y, tol) for dj in case.disjuncts):
                    return True
        return False


# --------------------------------------------------------------------------- s-expressions


class _Atom(NamedTuple):
    text: str
    line: int


class _List(list):
    """A parenthesised list; ``line`` is the line of its opening parenthesis."""

    __slots__ = ("line",)


def _tokens(text: str) -> Iterator[tuple[str, int]]:
    # Comments are dropped line by line first so that only real tokens are scanned.
    for line, content in enumerate(text.split("\n"), start=1):
        content = content.split(";", 1)[0]
        if content and not content.isspace():
            for tok in _TOKEN.findall(content):
                yield tok, line


def _parse_sexprs(text: str, source: str) -> list[_List | _Atom]:
    """Parse text into top-level s-expressions, reporting unbalanced parentheses by line."""
    stack: list[_List] = []
    top: list[_List | _Atom] = []
    for tok, line in _tokens(text):
        if tok == "(":
            lst = _List()
            lst.line = line
            stack.append(lst)
        elif tok == ")":
            if not stack:
                raise PropertyFileError(f"{source}:{line}: unexpected ')'")
            done = stack.pop()
            (stack[-1] if stack else top).append(done)
        else:
            (stack[-1] if stack else top).append(_Atom(tok, line))
    if stack:
        raise PropertyFileError(
            f"{source}:{stack[-1].line}: '(' is never closed (unexpected end of file)"
        )
    return top


def _line(e: _List | _Atom) -> int:
    return e.line


# --------------------------------------------------------------------------- formulas


class _Constraint(NamedTuple):
    """``sum coefs[v] * v <= rhs``."""

    coefs: dict[str, float]
    rhs: float
    line: int


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.declared: dict[str, int] = {}  # name -> line of declaration

    def error(self, line: int, msg: str) -> PropertyFileError:
        return PropertyFileError(f"{self.source}:{line}: {msg}")

    def number(self, a: _Atom) -> float | None:
        try:
            v = float(a.text)
        except ValueError:
            return None
        if not np.isfinite(v):
            raise self.error(a.line, f"number {a.text!r} is not finite")
        return v

    def linear(self, e: _List | _Atom) -> tuple[dict[str, float], float]:
        """A linear term as (coefficients, constant)."""
        if isinstance(e, _Atom):
            v = self.number(e)
            if v is not None:
                return {}, v
            if e.text not in self.declared:
                raise self.error(e.line, f"undeclared variable {e.text!r}")
            return {e.text: 1.0}, 0.0
        if not e or not isinstance(e[0], _Atom):
            raise self.error(e.line, "expected a term such as (+ ...), (* ...), a number or X_i")
        op, args = e[0].text, [self.linear(a) for a in e[1:]]
        if not args:
            raise self.error(e.line, f"'{op}' needs arguments")
        if op == "+":
            return _combine(args, [1.0] * len(args))
        if op == "-":
            if len(args) == 1:
                return _combine(args, [-1.0])
            return _combine(args, [1.0] + [-1.0] * (len(args) - 1))
        if op == "*":
            coefs, const = {}, 1.0
            for c, k in args:
                if c and coefs:
                    raise self.error(e.line, "product of two variables is not linear")
                if c:
                    coefs = {v: a * const for v, a in c.items()}
                    const = k * const
                else:
                    coefs = {v: a * k for v, a in coefs.items()}
                    const *= k
            return coefs, const
        if op == "/":
            if len(args) != 2 or args[1][0]:
                raise self.error(e.line, "'/' needs a term and a numeric divisor")
            k = args[1][1]
            if k == 0:
                raise self.error(e.line, "division by zero")
            return {v: a / k for v, a in args[0][0].items()}, args[0][1] / k
        raise self.error(e.line, f"unknown term operator {op!r}")

    def dnf(self, e: _List | _Atom) -> list[list[_Constraint]]:
        """Disjunctive normal form of a formula: a list of conjunctions of constraints."""
        if isinstance(e, _Atom) or not e or not isinstance(e[0], _Atom):
            raise self.error(_line(e), "expected a formula such as (<= X_0 1) or (and ...)")
        op, args = e[0].text, e[1:]
        if op == "and":
            terms: list[list[_Constraint]] = [[]]
            for a in args:
                sub = self.dnf(a)
                if len(terms) * len(sub) > MAX_DISJUNCTS:
                    raise self.error(e.line, f"more than {MAX_DISJUNCTS} disjuncts after expansion")
                terms = [t + s for t in terms for s in sub]
            return terms
        if op == "or":
            if not args:
                raise self.error(e.line, "'or' needs arguments")
            out = [t for a in args for t in self.dnf(a)]
            if len(out) > MAX_DISJUNCTS:
                raise self.error(e.line, f"more than {MAX_DISJUNCTS} disjuncts")
            return out
        if op in ("<=", ">=", "<", ">", "="):
            if len(args) < 2:
                raise self.error(e.line, f"'{op}' needs two operands")
            sides = [self.linear(a) for a in args]
            cons = []
            for (ca, ka), (cb, kb) in itertools.pairwise(sides):
                lo_hi = [((ca, ka), (cb, kb))] if op in ("<=", "<") else []
                if op in (">=", ">"):
                    lo_hi = [((cb, kb), (ca, ka))]
                if op == "=":
                    lo_hi = [((ca, ka), (cb, kb)), ((cb, kb), (ca, ka))]
                for (c1, k1), (c2, k2) in lo_hi:  # c1 + k1 <= c2 + k2
                    coefs, _ = _combine([(c1, 0.0), (c2, 0.0)], [1.0, -1.0])
                    cons.append(_Constraint(coefs, k2 - k1, e.line))
            return [cons]
        if op == "not":
            raise self.error(e.line, "'not' is not supported; rewrite the constraint without it")
        raise self.error(e.line, f"unknown formula operator {op!r}")


def _combine(args: list[tuple[dict[str, float], float]], signs: list[float]):
    coefs: dict[str, float] = {}
    const = 0.0
    for (c, k), s in zip(args, signs, strict=True):
        for v, a in c.items():
            coefs[v] = coefs.get(v, 0.0) + s * a
        const += s * k
    return {v: a for v, a in coefs.items() if a != 0.0}, const


def parse_vnnlib(text: str, source: str = "<string>") -> VnnProperty:
    """Parse VNN-LIB text; errors are ``PropertyFileError`` with ``source:line`` in the message."""
    p = _Parser(source)
    asserts: list[_List] = []
    for cmd in _parse_sexprs(text, source):
        if isinstance(cmd, _Atom) or not cmd or not isinstance(cmd[0], _Atom):
            raise p.error(_line(cmd), "expected a command such as (declare-const X_0 Real)")
        head = cmd[0].text
        if head == "declare-const":
            if len(cmd) != 3 or not all(isinstance(a, _Atom) for a in cmd[1:]):
                raise p.error(cmd.line, "expected (declare-const NAME Real)")
            name, sort = cmd[1].text, cmd[2].text
            if not _VAR.match(name):
                raise p.error(cmd.line, f"variable {name!r} is not named X_<i> or Y_<j>")
            if sort != "Real":
                raise p.error(
                    cmd.line, f"variable {name} has sort {sort!r}; only Real is supported"
                )
            if name in p.declared:
                raise p.error(cmd.line, f"{name} is declared twice")
            p.declared[name] = cmd.line
        elif head == "assert":
            if len(cmd) != 2:
                raise p.error(cmd.line, "assert takes exactly one formula")
            asserts.append(cmd)
        elif head in _IGNORED:
            continue
        else:
            raise p.error(cmd.line, f"unknown command {head!r}")

    n_in = _count(p, "X")
    n_out = _count(p, "Y")
    if n_in == 0 or n_out == 0:
        raise PropertyFileError(f"{source}: the property must declare X_0... and Y_0... variables")

    # Single-conjunction asserts (the usual input bounds) are shared by every disjunct.
    common: list[_Constraint] = []
    branches: list[list[list[_Constraint]]] = []
    for a in asserts:
        terms = p.dnf(a[1])
        if len(terms) == 1:
            common.extend(terms[0])
        else:
            branches.append(terms)
    n_terms = int(np.prod([len(b) for b in branches])) if branches else 1
    if n_terms > MAX_DISJUNCTS:
        raise PropertyFileError(f"{source}: more than {MAX_DISJUNCTS} disjuncts after expansion")

    base = _Box(n_in, n_out, p)
    base_out = base.add(common)
    if base_out is None:
        return VnnProperty(n_in, n_out, (), source)

    groups: dict[bytes, tuple[_Box, list[OutputConstraint]]] = {}
    for combo in itertools.product(*branches):
        box = base.copy()
        out = box.add([c for term in combo for c in term])
        if out is None:
            continue  # a constant-false constraint: this disjunct can never hold
        box.check()
        key = box.lower.tobytes() + box.upper.tobytes()
        if key not in groups:
            groups[key] = (box, [])
        groups[key][1].append(_to_arrays(base_out + out, n_out))
    cases = tuple(
        VnnCase(box.lower.copy(), box.upper.copy(), tuple(disj)) for box, disj in groups.values()
    )
    return VnnProperty(n_in, n_out, cases, source)


def _count(p: _Parser, kind: str) -> int:
    idx = sorted(int(m.group(2)) for n in p.declared if (m := _VAR.match(n)) and m.group(1) == kind)
    if idx != list(range(len(idx))):
        missing = sorted(set(range(max(idx) + 1)) - set(idx))[0]
        raise PropertyFileError(
            f"{p.source}: {kind}_{missing} is not declared but higher indices are"
        )
    return len(idx)


class _Box:
    """Input bounds with the line that set each one, for error messages."""

    def __init__(self, n_in: int, n_out: int, p: _Parser) -> None:
        self.lower = np.full(n_in, -np.inf)
        self.upper = np.full(n_in, np.inf)
        self.lo_line = np.zeros(n_in, dtype=np.int64)
        self.hi_line = np.zeros(n_in, dtype=np.int64)
        self.n_out = n_out
        self.p = p

    def copy(self) -> _Box:
        b = _Box.__new__(_Box)
        b.lower, b.upper = self.lower.copy(), self.upper.copy()
        b.lo_line, b.hi_line = self.lo_line.copy(), self.hi_line.copy()
        b.n_out, b.p = self.n_out, self.p
        return b

    def add(self, constraints: list[_Constraint]) -> list[_Constraint] | None:
        """Apply input bounds; return the output constraints, or None if one is constant-false."""
        outputs = []
        for c in constraints:
            kinds = {v[0] for v in c.coefs}
            if not kinds:
                if 0.0 <= c.rhs:
                    continue
                return None
            if kinds == {"Y"}:
                outputs.append(c)
                continue
            if kinds != {"X"}:
                raise self.p.error(
                    c.line, "constraints mixing inputs X and outputs Y are not supported"
                )
            if len(c.coefs) != 1:
                raise self.p.error(
                    c.line, "input constraints must bound a single X_i (only boxes are supported)"
                )
            ((name, a),) = c.coefs.items()
            i = int(name[2:])
            bound = c.rhs / a
            if a > 0 and bound < self.upper[i]:
                self.upper[i], self.hi_line[i] = bound + 0.0, c.line
            elif a < 0 and bound > self.lower[i]:
                self.lower[i], self.lo_line[i] = bound + 0.0, c.line
        return outputs

    def check(self) -> None:
        for i in np.flatnonzero(~np.isfinite(self.lower) | ~np.isfinite(self.upper)):
            side = "lower" if not np.isfinite(self.lower[i]) else "upper"
            raise self.p.error(self.p.declared[f"X_{i}"], f"X_{i} has no {side} bound")
        bad = np.flatnonzero(self.lower > self.upper)
        if bad.size:
            i = bad[0]
            raise self.p.error(
                int(max(self.lo_line[i], self.hi_line[i])),
                f"X_{i} has lower bound {self.lower[i]} (line {self.lo_line[i]}) above its "
                f"upper bound {self.upper[i]} (line {self.hi_line[i]})",
            )


def _to_arrays(constraints: list[_Constraint], n_out: int) -> OutputConstraint:
    C = np.zeros((len(constraints), n_out))
    d = np.zeros(len(constraints))
    for r, c in enumerate(constraints):
        for name, a in c.coefs.items():
            C[r, int(name[2:])] = a
        d[r] = c.rhs
    return OutputConstraint(C, d)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise PropertyFileError(f"file not found: {path}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return f.read()
        return path.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise PropertyFileError(f"cannot read {path}: {err}") from None


def load_vnnlib(path: str | Path) -> VnnProperty:
    """Parse a ``.vnnlib`` (or ``.vnnlib.gz``) file."""
    path = Path(path)
    return parse_vnnlib(_read_text(path), source=str(path))


# --------------------------------------------------------------------------- counterexamples


def _format(v: float) -> str:
    return np.format_float_positional(float(v), unique=True, trim="0")


def counterexample_text(x: np.ndarray, y: np.ndarray) -> str:
    """A VNN-COMP counterexample ``((X_0 v)\n...\n(Y_j v))\n``, values in positional notation
    with the shortest digits that round-trip float64."""
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise PropertyFileError("counterexample contains NaN or infinite values")
    pairs = [f"(X_{i} {_format(v)})" for i, v in enumerate(x)]
    pairs += [f"(Y_{j} {_format(v)})" for j, v in enumerate(y)]
    return "(" + "\n".join(pairs) + ")\n"


def result_text(result: str, x: np.ndarray | None = None, y: np.ndarray | None = None) -> str:
    """A VNN-COMP result file: the verdict line, then for ``sat`` the counterexample."""
    text = f"{result}\n"
    if result == "sat" and x is not None and y is not None:
        text += counterexample_text(x, y)
    return text


def write_counterexample(path: str | Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Write ``counterexample_text(x, y)`` to ``path``; ``.gz`` is gzipped."""
    text = counterexample_text(x, y)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read_counterexample(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a VNN-COMP counterexample file (optionally gzipped, optionally after ``sat``)."""
    path = Path(path)
    source = str(path)
    exprs = _parse_sexprs(_read_text(path), source)
    if exprs and isinstance(exprs[0], _Atom) and exprs[0].text == "sat":
        exprs = exprs[1:]
    if len(exprs) != 1 or not isinstance(exprs[0], _List):
        raise PropertyFileError(f"{source}:1: expected one list of (X_i value) / (Y_j value) pairs")
    vals: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
    for pair in exprs[0]:
        ok = isinstance(pair, _List) and len(pair) == 2 and all(isinstance(a, _Atom) for a in pair)
        m = _VAR.match(pair[0].text) if ok else None
        if m is None:
            raise PropertyFileError(f"{source}:{_line(pair)}: expected (X_i value) or (Y_j value)")
        try:
            vals[m.group(1)][int(m.group(2))] = float(pair[1].text)
        except ValueError:
            raise PropertyFileError(
                f"{source}:{pair.line}: {pair[1].text!r} is not a number"
            ) from None
    out = []
    for kind in ("X", "Y"):
        d = vals[kind]
        if sorted(d) != list(range(len(d))):
            raise PropertyFileError(f"{source}: the {kind}_i indices are not 0..n-1")
        out.append(np.array([d[i] for i in range(len(d))], dtype=np.float64))
    return out[0], out[1]
