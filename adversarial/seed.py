"""The seed paper's problem (Cacciola, Frangioni, Lodi): in the L1 ball of radius ``delta``
around ``x0``, maximize ``y[second] - y[predicted]``, where both classes are read off the
network's own outputs at ``x0``; stop as soon as the sign of the optimum is settled."""

from __future__ import annotations

import time

import numpy as np
from torch import nn

from adversarial.pipeline import verify
from adversarial.problems import AttackResult, attack_result
from adversarial.query import seed_classes, seed_query
from nn2mip.bounds import DEFAULT_BOUND_METHOD
from nn2mip.network import Network
from nn2mip.region import Norm

__all__ = ["seed_attack", "seed_classes"]


def seed_attack(
    network: Network,
    x0: np.ndarray,
    delta: float,
    norm: Norm = "1",
    domain: tuple[float, float] = (0.0, 1.0),
    time_limit: float | None = None,
    threads: int = 1,
    bound_method: str = DEFAULT_BOUND_METHOD,
    torch_model: nn.Module | None = None,
) -> AttackResult:
    """``seed_query`` decided by the MIP with the sign stop, reported as a targeted attack.

    "adversarial" means some input within ``delta`` makes the runner-up beat the predicted class
    (the witness is re-checked); "robust" means the dual bound proves it never does.
    """
    t0 = time.perf_counter()
    q = seed_query(network, x0, delta, norm, domain)
    v = verify(
        network,
        q,
        time_limit,
        method="mip",
        bound_method=bound_method,
        threads=threads,
        torch_model=torch_model,
        center=False,
        spec_bounds=False,
    )
    assert q.label is not None
    return attack_result(v, q.label, q.target, delta, norm, time.perf_counter() - t0)
