"""Minimum distortion, verified by solving just below (robust) and at it (adversarial)."""

from __future__ import annotations

import pytest

from adversarial.distortion import distance, min_distortion
from adversarial.pipeline import verify
from adversarial.query import ball_query
from adversarial.witness import check_witness
from nn2mip.region import ball_region


@pytest.mark.parametrize(
    "norm,eps_max,target", [("inf", 0.3, None), ("1", 4.0, None), ("inf", 0.4, "second")]
)
def test_min_distortion_is_verified_below_and_at(nets, digits_data, norm, eps_max, target) -> None:
    net = nets["pruned"]
    i = 1
    x, y = digits_data.x_test[i], int(digits_data.y_test[i])
    assert int(net.predict(x)[0]) == y
    if target == "second":
        order = (-net.forward(x)).argsort()
        target = int(order[1])
    r = min_distortion(net, x, y, norm, target, eps_max=eps_max, tol=eps_max / 200, time_limit=60)
    assert r.verdict == "adversarial"
    assert r.distortion is not None and r.lower <= r.distortion <= r.lower + eps_max / 200 + 1e-12
    # The stored witness really is adversarial at the distortion it claims.
    assert distance(r.witness, x, norm) == pytest.approx(r.distortion)
    at = check_witness(net, r.witness, ball_region(x, r.distortion * (1 + 1e-9), norm), y, target)
    assert at.passed
    # Independent solves: robust just below the bracket, adversarial at the found radius.
    below = verify(net, ball_query(net, x, y, r.lower, norm, target), 60, method="mip")
    assert below.verdict == "robust"
    at_q = ball_query(net, x, y, r.distortion * (1 + 1e-6), norm, target)
    at_mip = verify(net, at_q, 60, method="mip", center=False)
    assert at_mip.verdict == "adversarial" and at_mip.check is not None and at_mip.check.passed


def test_min_distortion_robust_within_eps_max(nets, digits_data) -> None:
    net = nets["pruned"]
    x, y = digits_data.x_test[1], int(digits_data.y_test[1])
    r = min_distortion(net, x, y, "inf", eps_max=0.002, time_limit=30)
    assert r.verdict == "robust" and r.distortion is None and r.lower == 0.002
