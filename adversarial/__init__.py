"""Adversarial search and verification on nn2mip networks.

One query (an input region and a disjunction of linear constraints on the outputs) with its
constructors: ``ball_query``, ``class_query``, ``seed_query``, ``property_queries`` (VNN-LIB).
One staged ``verify(network, query, budget)`` (centers and PGD, bounds, branch and bound, MIP)
returning a ``Verification``. The problems built on it: ``targeted_attack``,
``untargeted_attack``, ``seed_attack``, ``min_distortion``, ``verify_property`` (VNN-COMP
style). Many instances at once: ``run_batch`` over a ``BatchSpec`` into a results store, then
``build_report``.
"""

from adversarial.batch import BatchSpec, run_batch
from adversarial.distortion import DistortionResult, min_distortion
from adversarial.pipeline import Verification, verify
from adversarial.problems import AttackResult, targeted_attack, untargeted_attack
from adversarial.query import Query, ball_query, class_query, property_queries, seed_query
from adversarial.report import build_report
from adversarial.seed import seed_attack
from adversarial.vnnlib_problem import VerifyResult, verify_property

__all__ = [
    "AttackResult",
    "BatchSpec",
    "DistortionResult",
    "Query",
    "Verification",
    "VerifyResult",
    "ball_query",
    "build_report",
    "class_query",
    "min_distortion",
    "property_queries",
    "run_batch",
    "seed_attack",
    "seed_query",
    "targeted_attack",
    "untargeted_attack",
    "verify",
    "verify_property",
]
