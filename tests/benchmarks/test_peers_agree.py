"""The peer runners of benchmarks/bench_peers.py ask the same question as nn2mip: on a tiny net
every tool must reach the same optimal margin and verdict (skipped without the bench extra)."""

from __future__ import annotations

import numpy as np
import pytest

from nn2mip.network import network_from_arrays

pytest.importorskip("omlt")
pytest.importorskip("pyscipopt_ml")

from benchmarks.peers.instances import Instance  # noqa: E402
from benchmarks.peers.runners import (  # noqa: E402
    pgd_first,
    run_nn2mip_highs,
    run_omlt,
    run_scipml,
)


def _net():
    rng = np.random.default_rng(3)
    ws = [rng.normal(size=(8, 6)), rng.normal(size=(8, 8)), rng.normal(size=(3, 8))]
    bs = [rng.normal(size=8) * 0.3, rng.normal(size=8) * 0.3, np.zeros(3)]
    return network_from_arrays(ws, bs)


@pytest.mark.parametrize(("norm", "eps"), [("inf", 0.05), ("inf", 0.3), ("1", 0.5)])
def test_tools_agree_on_optimal_margin(norm: str, eps: float) -> None:
    net = _net()
    x0 = np.full(6, 0.5)
    y = net.forward(x0)
    label, target = int(np.argmax(y)), int(np.argsort(-y)[1])
    inst = Instance("tiny", 0, x0, label, target, eps, norm)  # type: ignore[arg-type]
    results = [run(net, inst, 30.0, "opt") for run in (run_nn2mip_highs, run_omlt, run_scipml)]
    for r in results:
        assert r.optimal, (r.tool, r.status, r.note)
        assert r.verdict in ("adversarial", "robust"), (r.tool, r.verdict, r.note)
    margins = [r.objective for r in results]
    assert max(margins) - min(margins) < 1e-5, [(r.tool, r.objective) for r in results]
    assert len({r.verdict for r in results}) == 1
    # Every adversarial verdict rests on a witness that passed the float64 re-check.
    assert all(r.witness_ok for r in results if r.verdict == "adversarial")


def test_sign_questions_agree() -> None:
    net = _net()
    x0 = np.full(6, 0.5)
    y = net.forward(x0)
    label, target = int(np.argmax(y)), int(np.argsort(-y)[1])
    for eps in (0.02, 0.4):
        inst = Instance("tiny", 0, x0, label, target, eps, "inf")
        opt = run_nn2mip_highs(net, inst, 30.0, "opt").verdict
        for run in (run_nn2mip_highs, run_omlt, run_scipml):
            assert run(net, inst, 30.0, "sign").verdict == opt, (run.__name__, eps)


def test_pgd_first_agrees_with_the_mip() -> None:
    """The batch engine's PGD-first path: same verdicts; a PGD verdict carries a re-checked
    witness and builds no model; its time is inside the total."""
    net = _net()
    x0 = np.full(6, 0.5)
    y = net.forward(x0)
    label, target = int(np.argmax(y)), int(np.argsort(-y)[1])
    run = pgd_first(run_nn2mip_highs, "nn2mip[symbolic+pgd]")
    for eps in (0.02, 0.4):
        inst = Instance("tiny", 0, x0, label, target, eps, "inf")
        mip = run_nn2mip_highs(net, inst, 30.0, "sign")
        r = run(net, inst, 30.0, "sign")
        assert r.verdict == mip.verdict and r.tool == "nn2mip[symbolic+pgd]" and r.pgd
        assert r.total >= r.pgd_time
        if r.decided_by == "pgd":
            assert r.witness_ok and r.binaries == -1 and r.objective > 0
        else:
            assert r.decided_by == "mip"
