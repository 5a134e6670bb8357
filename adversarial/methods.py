"""The ways to settle what the bounds leave open, shared by the solvers, the CLI and benchmarks.

``"mip"``: HiGHS MIPs on the big-M formulation; ``"bab"``: branch and bound over ReLU splits
(``adversarial.bab``); ``"auto"``: branch and bound first, then MIPs for what it left open. This
module imports nothing heavy, so command-line parsers can use it.
"""

from __future__ import annotations

METHODS: tuple[str, ...] = ("auto", "bab", "mip")

# The problems and norms a batch (``adversarial.batch``) runs.
PROBLEMS: tuple[str, ...] = ("untargeted", "targeted", "seed", "min-distortion")
NORMS: tuple[str, ...] = ("inf", "1")
