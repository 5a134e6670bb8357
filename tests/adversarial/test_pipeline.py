"""The staged pipeline: every verdict checked against independent evidence (witnesses by the
float64 forward pass, "robust" against dense sampling), the same verdict from every method and
MIP form, and the stages it ran recorded."""

from __future__ import annotations

import numpy as np
import pytest

from adversarial.pgd import ball_attack
from adversarial.pipeline import verify
from adversarial.query import ball_query
from adversarial.witness import margin_of
from nn2mip.errors import InvalidInputError
from nn2mip.network import network_from_arrays


def _net(seed: int = 0):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(12, 5)), rng.normal(size=(12, 12)) / 3, rng.normal(size=(4, 12))]
    return network_from_arrays(ws, [0.1 * rng.normal(size=w.shape[0]) for w in ws])


def _sampled_max_margin(net, q, n: int = 20000) -> float:
    xs = q.region.sample(n, np.random.default_rng(3))
    ys = net.forward(xs)
    return max(margin_of(y, q.label, q.target) for y in ys)


@pytest.mark.parametrize(
    "norm,eps,expected",
    [
        ("inf", 0.06, "robust"),
        ("inf", 0.1, "adversarial"),
        ("1", 0.1, "robust"),
        ("1", 0.2, "adversarial"),
    ],
)
def test_verdicts_hold_and_agree_across_methods(norm, eps, expected) -> None:
    net = _net()
    x = np.full(5, 0.1)
    label = int(np.argmax(net.forward(x)))
    q = ball_query(net, x, label, eps, norm)
    verdicts = set()
    for method in ("mip", "bab", "auto"):
        for form, spec in (("each", True), ("each", False), ("single", False)):
            if method != "mip" and form == "single":
                continue
            v = verify(net, q, 60.0, method=method, mip_form=form, spec_bounds=spec)
            verdicts.add(v.verdict)
            if v.verdict == "adversarial":
                assert v.check is not None and v.check.passed
                assert margin_of(net.forward(v.check.x), label, None) > 0
                assert q.region.contains(v.check.x, tol=0.0)[0]
            else:
                assert v.verdict == "robust"
                assert v.bound is not None and v.bound > 0
                # No sampled input beats the label, and the proven bound holds for them all.
                assert _sampled_max_margin(net, q) <= -v.bound + 1e-9
            assert "bounds" in v.times or v.decided_by == "center"
    assert verdicts == {expected}


def test_stages_run_in_order_and_are_optional() -> None:
    net = _net(1)
    x = np.full(5, 0.5)
    label = int(np.argmax(net.forward(x)))
    q = ball_query(net, x, label, 0.5, "inf")
    with_pgd = verify(net, q, 30.0, attack=ball_attack(q, 40, 8))
    assert with_pgd.verdict == "adversarial" and with_pgd.decided_by == "attack"
    assert set(with_pgd.times) <= {"center", "attack"}
    mip_only = verify(net, q, 30.0, method="mip", center=False, spec_bounds=False)
    assert mip_only.verdict == "adversarial" and mip_only.decided_by == "mip"
    assert mip_only.mip_solves >= 1 and "mip" in mip_only.times


def test_misclassified_center_is_its_own_witness() -> None:
    net = _net(2)
    x = np.full(5, 0.5)
    wrong = int(np.argmin(net.forward(x)))
    v = verify(net, ball_query(net, x, wrong, 0.01, "inf"), 10.0)
    assert v.verdict == "adversarial" and v.decided_by == "center" and v.check.passed


def test_bad_method_is_a_clear_error() -> None:
    net = _net()
    q = ball_query(net, np.full(5, 0.5), 0, 0.1)
    with pytest.raises(InvalidInputError, match="method"):
        verify(net, q, 10.0, method="simplex")
    with pytest.raises(InvalidInputError, match="time limit"):
        verify(net, q, -1.0)


def test_auto_skips_branch_and_bound_on_a_wide_layer(monkeypatch) -> None:
    """A hidden layer wider than BAB_MAX_WIDTH sends "auto" straight to the MIP (said on the
    progress line); the verdict is the one branch and bound would give, and "bab" still runs."""
    import adversarial.pipeline as pipeline

    net = _net()
    x = np.full(5, 0.1)
    label = int(np.argmax(net.forward(x)))
    q = ball_query(net, x, label, 0.06, "inf")
    assert pipeline.bab_pays(net)
    monkeypatch.setattr(pipeline, "BAB_MAX_WIDTH", 11)
    assert not pipeline.bab_pays(net)
    said: list[str] = []
    v = verify(net, q, 60.0, method="auto", spec_bounds=False, progress=said.append)
    assert v.verdict == "robust" and "bab" not in v.times
    assert any("no branch and bound" in line for line in said)
    assert {o.decided_by for o in v.outcomes} == {"mip"}
    b = verify(net, q, 60.0, method="bab", spec_bounds=False)
    assert b.verdict == "robust" and "bab" in b.times
