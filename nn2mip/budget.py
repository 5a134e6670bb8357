"""One time budget for a verification run: the clock, the time limit and every share of it.

Every stage of ``adversarial.pipeline`` asks its ``Budget`` how long it may run; the shares that
used to be constants spread over four modules are the fields of ``Shares``, and the two sets that
the entry points were tuned with are the named presets below (their verdicts depend on them).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from nn2mip.errors import InvalidInputError


@dataclass(frozen=True)
class Shares:
    """How a time limit is split. ``*_share`` fields are fractions of the time left when the
    stage starts; ``*_cap`` fields are seconds."""

    # Bound computation (alpha-CROWN, LP tightening), per input region.
    bounds_share: float = 0.5
    # The first attack (PGD) before the bounds: this share of the whole limit, at most the cap.
    attack_share: float = 0.05
    attack_cap: float = 5.0
    # A second, longer attack on what the bounds left open (0 = none).
    second_attack_share: float = 0.0
    second_attack_cap: float = 20.0
    # A first short branch-and-bound pass before the second attack (0 = none).
    quick_bab_share: float = 0.0
    # In "auto", branch and bound's share before the MIPs ("bab" alone gets everything).
    bab_share: float = 0.6
    # Branch and bound's seconds (times its share) when there is no time limit.
    bab_unlimited: float = 60.0


# Targeted, untargeted, seed and minimum-distortion problems (adversarial robustness of a ball).
BALL_SHARES = Shares()
# VNN-LIB properties: on VNN-COMP mnist_fc the MIPs after branch and bound decided none of the
# instances it left open, so it gets 85 %; a quick pass first settles the easy ones in seconds,
# before a second attack (never the one that found a counterexample there) costs up to 20 s.
VNNLIB_SHARES = Shares(bab_share=0.85, quick_bab_share=0.1, second_attack_share=0.1)
PRESETS: dict[str, Shares] = {"ball": BALL_SHARES, "vnnlib": VNNLIB_SHARES}


class Budget:
    """A clock started at creation and a time limit in seconds (None: no limit)."""

    def __init__(self, time_limit: float | None, shares: Shares = BALL_SHARES) -> None:
        if time_limit is not None and not (math.isfinite(time_limit) and time_limit > 0):
            raise InvalidInputError(f"time limit must be a positive number, got {time_limit}")
        self.time_limit = time_limit
        self.shares = shares
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the budget was created."""
        return time.perf_counter() - self.t0

    def left(self) -> float:
        """Seconds left (may be negative once over; ``inf`` without a limit)."""
        if self.time_limit is None:
            return math.inf
        return self.time_limit - self.elapsed()

    def expired(self) -> bool:
        return self.left() <= 0

    def remaining(self, floor: float = 1e-3) -> float | None:
        """The time left for a solver call, at least ``floor`` (None without a limit)."""
        if self.time_limit is None:
            return None
        return max(self.left(), floor)

    def share(self, fraction: float) -> float | None:
        """``fraction`` of the time left (None without a limit)."""
        if self.time_limit is None:
            return None
        return fraction * max(self.left(), 0.0)

    def attack_time(self) -> float:
        """Seconds for the first attack."""
        s = self.shares
        limit = s.attack_cap / s.attack_share if self.time_limit is None else self.time_limit
        return min(limit * s.attack_share, s.attack_cap)

    def second_attack_time(self) -> float:
        s = self.shares
        left = s.second_attack_cap if self.time_limit is None else max(self.left(), 0.0)
        return min(s.second_attack_share * left, s.second_attack_cap)

    def bab_deadline(self, fraction: float) -> float:
        """The ``perf_counter`` time at which a branch-and-bound pass given ``fraction`` of the
        time left must stop."""
        if self.time_limit is None:
            return time.perf_counter() + fraction * self.shares.bab_unlimited
        return time.perf_counter() + fraction * max(self.left(), 0.0)
