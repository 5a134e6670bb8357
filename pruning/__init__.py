"""Sparse training and pruning, torch-native, kept in separate concerns (as Torch-Pruning does).

Scoring (how important a weight or neuron is): ``magnitude``, ``structured`` (neuron norms),
``init_pruning`` (SNIP, GraSP, SynFlow). Cutting: ``masks`` (explicit boolean masks that survive
optimizer steps) and ``compact`` (a physically smaller network). Scheduling (how much, when):
``schedules`` (cubic gradual pruning), ``lottery`` (IMP with rewinding), ``dynamic`` (SET,
RigL). Regularization: ``regularizers`` (L1 and group lasso with proximal steps, SPR, ReLU
stability). ``freezing`` trains only parts of a random initialization, or a supermask over it.
``catalogue.run_method`` dispatches by name; ``recipe`` declares whole pipelines as data (TOML).

The public API: ``make_mlp``, ``train``, ``accuracy``, ``neuron_masks``, ``magnitude_masks``,
``compact_network``, ``run_method`` with ``MethodConfig`` and ``METHODS``, ``load_recipe``,
``run_recipe``, ``train_pair`` with ``PairConfig``.
"""

from pruning.catalogue import MethodConfig, run_method
from pruning.compact import compact_network
from pruning.magnitude import magnitude_masks
from pruning.methods import METHODS
from pruning.pairs import PairConfig, train_pair
from pruning.recipe import Recipe, load_recipe, run_recipe
from pruning.structured import neuron_masks
from pruning.training import accuracy, make_mlp, train

__all__ = [
    "METHODS",
    "MethodConfig",
    "PairConfig",
    "Recipe",
    "accuracy",
    "compact_network",
    "load_recipe",
    "magnitude_masks",
    "make_mlp",
    "neuron_masks",
    "run_method",
    "run_recipe",
    "train",
    "train_pair",
]
