"""The seed paper's problem (Cacciola, Frangioni, Lodi): in the L1 ball of radius ``delta``
around ``x0``, maximize ``y[second] - y[predicted]``, where both classes are read off the
network's own outputs at ``x0``; stop as soon as the sign of the optimum is settled."""

from __future__ import annotations

import numpy as np
from torch import nn

from adversarial.problems import AttackResult, targeted_attack
from nn2mip.network import Network
from nn2mip.region import Norm


def seed_classes(network: Network, x0: np.ndarray) -> tuple[int, int]:
    """(predicted class, second-highest class) at ``x0``."""
    y = network.forward(network.check_input(x0)[0])
    order = np.argsort(-y, kind="stable")
    return int(order[0]), int(order[1])


def seed_attack(
    network: Network,
    x0: np.ndarray,
    delta: float,
    norm: Norm = "1",
    domain: tuple[float, float] = (0.0, 1.0),
    time_limit: float | None = None,
    threads: int = 1,
    bound_method: str = "interval",
    torch_model: nn.Module | None = None,
) -> AttackResult:
    """Targeted max-margin with label = predicted class and target = runner-up, early stop on.

    "adversarial" means some input within ``delta`` makes the runner-up beat the predicted class
    (the witness is re-checked); "robust" means the dual bound proves it never does.
    """
    pred, second = seed_classes(network, x0)
    return targeted_attack(
        network,
        x0,
        pred,
        second,
        delta,
        norm,
        domain=domain,
        time_limit=time_limit,
        threads=threads,
        bound_method=bound_method,
        torch_model=torch_model,
        early_stop=True,
    )
