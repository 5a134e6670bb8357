"""PGD: witnesses that pass the float64 re-check."""

from __future__ import annotations

import pytest

from adversarial.pgd import pgd_attack
from adversarial.witness import check_witness
from nn2mip.region import ball_region


@pytest.mark.parametrize("norm,eps", [("inf", 0.08), ("1", 1.5)])
def test_pgd_witnesses_pass_the_check(nets, digits_data, norm, eps) -> None:
    net = nets["dense"]
    found = 0
    for i in range(12):
        x, y = digits_data.x_test[i], int(digits_data.y_test[i])
        region = ball_region(x, eps, norm)
        r = pgd_attack(net, region, y, steps=30, restarts=4)
        if r.check is not None:
            found += 1
            chk = check_witness(net, r.check.x, region, y)
            assert chk.passed and chk.in_region and chk.margin > 0
    assert found >= 1, "PGD should break at least one of 12 inputs at this radius"
