"""One query: an input region and a disjunction of linear output constraints.

A counterexample is an input of the region whose outputs satisfy one disjunct ``C y <= d`` (each
an ``nn2mip.vnnlib.OutputConstraint``: a conjunction of rows); the property holds when no
disjunct is satisfiable. A targeted attack is one disjunct ``y[label] - y[target] <= 0``,
untargeted is one per wrong class, the seed paper's problem is targeted at the runner-up, and a
VNN-LIB property is one query per input box. ``adversarial.pipeline.verify`` decides any of them.

``strict`` says whether a counterexample must satisfy its disjunct strictly (a wrong class must
*beat* the label, margin > 0) or within ``SAT_TOL`` (VNN-COMP's non-strict ``Y_j >= Y_label``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nn2mip.errors import InvalidInputError
from nn2mip.network import Network
from nn2mip.region import InputRegion, Norm, ball_region, box_region
from nn2mip.vnnlib import OutputConstraint, VnnProperty

# A non-strict counterexample counts when C y <= d + SAT_TOL on the float64 forward pass.
SAT_TOL = 1e-9


@dataclass(frozen=True)
class Query:
    """Is there ``x`` in ``region`` with ``C y(x) <= d`` for some disjunct ``(C, d)``?

    ``label``/``target`` record where a ball query came from (reports and margins);
    ``sign_stop`` lets the MIP stop as soon as the sign of the optimum is settled.
    """

    region: InputRegion
    disjuncts: tuple[OutputConstraint, ...]
    strict: bool = True
    sign_stop: bool = True
    label: int | None = None
    target: int | None = None

    def values(self, y: np.ndarray) -> np.ndarray:
        """``max_i (C_i y - d_i)`` per disjunct for a batch ``y`` (n, outputs): shape (n, k).
        A disjunct without rows holds everywhere: value -inf."""
        y = np.atleast_2d(np.asarray(y, np.float64))
        cols = [(y @ dj.C.T - dj.d).max(axis=1, initial=-np.inf) for dj in self.disjuncts]
        return np.stack(cols, axis=1) if cols else np.full((len(y), 0), np.inf)

    def value(self, y: np.ndarray) -> float:
        """The best disjunct's value at one output ``y``: a counterexample iff it is < 0
        (strict) or <= ``SAT_TOL``. Minus the margin of ball queries."""
        return float(self.values(y)[0].min(initial=np.inf))

    def satisfied(self, value: float) -> bool:
        """Does a disjunct value make a counterexample?"""
        return value < 0.0 if self.strict else value <= SAT_TOL


def _check_classes(n: int, label: int, target: int | None) -> None:
    if not 0 <= label < n:
        raise InvalidInputError(f"label {label} is not a class of a network with {n} outputs")
    if target is not None and (not 0 <= target < n or target == label):
        raise InvalidInputError(f"target {target} must be a class other than the label {label}")


def lead_disjunct(n: int, label: int, target: int) -> OutputConstraint:
    """``y[label] - y[target] <= 0``: class ``target`` scores at least as high as ``label``."""
    c = np.zeros((1, n))
    c[0, label], c[0, target] = 1.0, -1.0
    return OutputConstraint(c, np.zeros(1))


def class_query(
    region: InputRegion,
    n_outputs: int,
    label: int,
    target: int | None = None,
    sign_stop: bool = True,
) -> Query:
    """``target`` (or, when None, any class but ``label``) beats ``label`` somewhere in
    ``region``."""
    _check_classes(n_outputs, label, target)
    others = [target] if target is not None else [j for j in range(n_outputs) if j != label]
    dj = tuple(lead_disjunct(n_outputs, label, j) for j in others)
    return Query(region, dj, strict=True, sign_stop=sign_stop, label=label, target=target)


def ball_query(
    network: Network,
    x0: np.ndarray,
    label: int,
    eps: float,
    norm: Norm = "inf",
    target: int | None = None,
    domain: tuple[float, float] = (0.0, 1.0),
    sign_stop: bool = True,
) -> Query:
    """Targeted (``target`` given) or untargeted attack on the ``norm`` ball of radius ``eps``
    around ``x0``, intersected with ``domain``."""
    x = network.check_input(x0)[0]
    _check_classes(network.output_size, label, target)
    region = ball_region(x, eps, norm, domain)
    return class_query(region, network.output_size, label, target, sign_stop)


def seed_classes(network: Network, x0: np.ndarray) -> tuple[int, int]:
    """(predicted class, second-highest class) at ``x0``."""
    y = network.forward(network.check_input(x0)[0])
    order = np.argsort(-y, kind="stable")
    return int(order[0]), int(order[1])


def seed_query(
    network: Network,
    x0: np.ndarray,
    delta: float,
    norm: Norm = "1",
    domain: tuple[float, float] = (0.0, 1.0),
) -> Query:
    """The seed paper's problem (Cacciola, Frangioni, Lodi): does the runner-up at ``x0`` beat
    the predicted class within ``delta``? Sign stop on."""
    pred, second = seed_classes(network, x0)
    return ball_query(network, x0, pred, delta, norm, second, domain, sign_stop=True)


def property_queries(prop: VnnProperty) -> list[Query]:
    """One non-strict query per input box of a VNN-LIB property (violated iff any is)."""
    return [
        Query(box_region(c.lower, c.upper), tuple(c.disjuncts), strict=False) for c in prop.cases
    ]
