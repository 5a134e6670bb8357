"""The names of the pruning catalogue's methods (``pruning.catalogue.run_method`` runs them).

This module imports nothing heavy, so command-line parsers can list the methods without torch.
"""

from __future__ import annotations

METHODS = (
    "magnitude",
    "global-magnitude",
    "gradual",
    "neuron",
    "l1",
    "group-lasso",
    "spr",
    "lottery",
    "snip",
    "grasp",
    "synflow",
    "set",
    "rigl",
)

# Methods that start from a fresh initialization of the model's architecture (they prune or
# sparsify at initialization, or need the initial weights to rewind to).
FROM_SCRATCH = ("lottery", "snip", "grasp", "synflow", "set", "rigl")

# Methods that also prune regression nets (float targets, MSE loss): all but the two whose
# saliency is a cross-entropy gradient.
REGRESSION = tuple(m for m in METHODS if m not in ("snip", "grasp"))

# Structured methods: ``amount`` is the fraction of hidden neurons removed per layer.
STRUCTURED = ("neuron", "group-lasso", "spr")

__all__ = ["FROM_SCRATCH", "METHODS", "REGRESSION", "STRUCTURED"]
