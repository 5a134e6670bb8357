"""Queries: the constructors say what their problems say, on the float64 forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from adversarial.query import ball_query, class_query, property_queries, seed_query
from adversarial.witness import margin_of
from nn2mip.errors import InvalidInputError
from nn2mip.network import network_from_arrays
from nn2mip.region import ball_region
from nn2mip.vnnlib import parse_vnnlib


def _net():
    rng = np.random.default_rng(0)
    return network_from_arrays(
        [rng.normal(size=(8, 4)), rng.normal(size=(5, 8))], [0.1 * rng.normal(size=8), np.zeros(5)]
    )


def test_ball_queries_values_are_minus_the_margin() -> None:
    net = _net()
    rng = np.random.default_rng(1)
    ys = rng.normal(size=(50, 5))
    untargeted = ball_query(net, np.full(4, 0.5), 2, 0.1)
    targeted = ball_query(net, np.full(4, 0.5), 2, 0.1, target=4)
    assert len(untargeted.disjuncts) == 4 and len(targeted.disjuncts) == 1
    for y in ys:
        assert untargeted.value(y) == pytest.approx(-margin_of(y, 2, None))
        assert targeted.value(y) == pytest.approx(-margin_of(y, 2, 4))
        # strict: a tie is no counterexample
        assert untargeted.satisfied(untargeted.value(y)) == (margin_of(y, 2, None) > 0)


def test_seed_query_targets_the_runner_up() -> None:
    net = _net()
    x = np.array([0.2, 0.9, 0.4, 0.6])
    q = seed_query(net, x, 0.5)
    order = np.argsort(-net.forward(x))
    assert (q.label, q.target) == (int(order[0]), int(order[1]))
    assert q.region.norm == "1" and q.sign_stop


def test_property_queries_agree_with_the_property() -> None:
    text = "".join(f"(declare-const X_{i} Real)" for i in range(2))
    text += "(declare-const Y_0 Real)(declare-const Y_1 Real)"
    text += "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1))"
    text += " (and (>= X_0 2) (<= X_0 3) (>= X_1 0) (<= X_1 1))))"
    text += "(assert (or (and (>= Y_1 Y_0)) (and (<= Y_0 -1) (<= Y_1 -1))))"
    prop = parse_vnnlib(text)
    qs = property_queries(prop)
    assert len(qs) == 2 and all(not q.strict for q in qs)
    rng = np.random.default_rng(2)
    for y in rng.normal(size=(200, 2)):
        x = np.array([0.5, 0.5])
        assert qs[0].satisfied(qs[0].value(y)) == prop.is_violated_by(x, y)


def test_bad_classes_are_clear_errors() -> None:
    net = _net()
    with pytest.raises(InvalidInputError, match="label"):
        ball_query(net, np.full(4, 0.5), 7, 0.1)
    with pytest.raises(InvalidInputError, match="target"):
        class_query(ball_region(np.full(4, 0.5), 0.1), 5, 1, 1)
