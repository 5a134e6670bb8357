"""The one time budget: its clock, its shares and its presets."""

from __future__ import annotations

import math
import time

import pytest

from nn2mip.budget import BALL_SHARES, PRESETS, VNNLIB_SHARES, Budget
from nn2mip.errors import InvalidInputError


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_bad_time_limit_is_a_clear_error(bad) -> None:
    with pytest.raises(InvalidInputError, match="time limit"):
        Budget(bad)


def test_shares_are_of_the_time_left() -> None:
    b = Budget(10.0, VNNLIB_SHARES)
    time.sleep(0.05)
    assert 9.9 < b.left() < 9.96
    assert b.share(0.5) == pytest.approx(0.5 * b.left(), abs=1e-3)
    assert b.attack_time() == pytest.approx(0.5)  # 5 % of 10 s, under the 5 s cap
    assert b.second_attack_time() == pytest.approx(0.1 * b.left(), abs=1e-3)
    deadline = b.bab_deadline(0.85)
    assert deadline - time.perf_counter() == pytest.approx(0.85 * b.left(), abs=1e-2)
    assert Budget(1000.0).attack_time() == BALL_SHARES.attack_cap


def test_no_limit_never_expires() -> None:
    b = Budget(None)
    assert b.left() == math.inf and not b.expired()
    assert b.remaining() is None and b.share(0.3) is None
    assert b.bab_deadline(0.5) - time.perf_counter() == pytest.approx(
        0.5 * BALL_SHARES.bab_unlimited, abs=1e-2
    )


def test_expired_budget_gives_solvers_a_floor() -> None:
    b = Budget(0.01)
    time.sleep(0.02)
    assert b.expired() and b.left() < 0
    assert b.remaining() == 1e-3


def test_presets_keep_the_tuned_shares() -> None:
    # The verdicts of the VNN-COMP table and of the ball problems were measured with these.
    assert PRESETS["vnnlib"].bab_share == 0.85 and PRESETS["vnnlib"].quick_bab_share == 0.1
    assert PRESETS["ball"].bab_share == 0.6 and PRESETS["ball"].second_attack_share == 0.0
    assert PRESETS["ball"].bounds_share == PRESETS["vnnlib"].bounds_share == 0.5
