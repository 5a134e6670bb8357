"""The constraint-learning benchmark's tools answer the same question: on small nets every tool
reaches the same optimum, which enumeration / a dense grid confirms independently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.bench_constraint_learning import TOOLS, Question, run_tool
from nn2mip.network import network_from_arrays


def _net(seed, sizes):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(b, a)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return network_from_arrays(ws, [rng.normal(size=b) * 0.3 for b in sizes[1:]])


def _tools():
    out = ["nn2mip"]
    for tool, mod in (("OMLT", "omlt"), ("PySCIPOpt-ML", "pyscipopt_ml")):
        try:
            __import__(mod)
            out.append(tool)
        except ImportError:
            pass
    return out


@pytest.mark.parametrize("tool", _tools())
def test_counterfactual_with_integers_matches_enumeration(tool):
    """min sum w |x - x0| s.t. y1 - y0 >= 1e-4 over a 2-D integer grid: enumerable exactly."""
    net = _net(5, [2, 6, 6, 2])
    lo, hi = np.array([-4.0, -4.0]), np.array([4.0, 4.0])
    w = np.array([1.0, 2.0])
    g = np.array([[a, b] for a in range(-4, 5) for b in range(-4, 5)], dtype=float)
    ys = net.forward(g)
    ok = ys[:, 1] - ys[:, 0] >= 1e-4
    assert ok.any() and not ok.all()
    x0 = g[np.argmin(ys[:, 1] - ys[:, 0])]  # deep in class 0
    best = (np.abs(g[ok] - x0) @ w).min()
    q = Question(
        "cf", net, lo, hi, np.zeros(2), np.zeros(2), "min",
        [(np.zeros(2), np.array([-1.0, 1.0]), 1e-4, math.inf)], np.ones(2, dtype=bool), x0, w,
    )  # fmt: skip
    r = run_tool(tool, q, 60)
    assert r.objective == pytest.approx(best, abs=1e-9), r.status
    assert r.extra["violation"] <= 1e-9


@pytest.mark.parametrize("tool", _tools())
def test_max_with_output_constraint_agrees(tool):
    net = _net(4, [2, 8, 8, 3])
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    q = Question(
        "reg", net, lo, hi, np.zeros(2), np.array([1.0, 0, 0]), "max",
        [(np.zeros(2), np.array([0, 1.0, 0]), -math.inf, 0.0)], np.zeros(2, dtype=bool),
    )  # fmt: skip
    ref = run_tool("nn2mip", q, 60)
    r = run_tool(tool, q, 60)
    assert r.objective == pytest.approx(ref.objective, rel=1e-6)
    g = np.array(np.meshgrid(np.linspace(-1, 1, 301), np.linspace(-1, 1, 301))).reshape(2, -1).T
    ys = net.forward(g)
    assert r.objective >= ys[ys[:, 1] <= 0, 0].max() - 1e-7
    assert set(TOOLS) >= {"nn2mip", "OMLT", "PySCIPOpt-ML"}
