"""Import of fitted scikit-learn ``MLPRegressor`` / ``MLPClassifier`` models (ReLU hidden layers).

Only the fitted arrays (``coefs_``, ``intercepts_``) are read from an estimator already in
memory; nothing is unpickled here. A classifier becomes the network of its logits: the
decision is the argmax over the outputs (softmax is monotone), or ``output > 0`` for a binary
classifier, whose single output is the logit of ``classes_[1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nn2mip.errors import UnsupportedLayerError
from nn2mip.network import AffineLayer, Network

# Hidden activations with an exact MIP encoding: ReLU, and the identity (a linear layer).
_HIDDEN = {"relu": True, "identity": False}


def from_sklearn(estimator: Any) -> Network:
    """Convert a fitted ``MLPRegressor`` or ``MLPClassifier`` to a float64 ``Network``.

    Raises ``UnsupportedLayerError`` for another estimator type, an unfitted one, or a hidden
    activation other than relu/identity (tanh and logistic have no exact MIP encoding).
    """
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if not isinstance(estimator, (MLPRegressor, MLPClassifier)):
        raise UnsupportedLayerError(
            f"expected a scikit-learn MLPRegressor or MLPClassifier, got {type(estimator).__name__}"
        )
    if not hasattr(estimator, "coefs_"):
        raise UnsupportedLayerError(f"the {type(estimator).__name__} is not fitted: call fit first")
    act = estimator.activation
    if act not in _HIDDEN:
        raise UnsupportedLayerError(
            f"hidden activation {act!r} cannot be encoded exactly; nn2mip needs "
            "activation='relu' (or 'identity')"
        )
    n = len(estimator.coefs_)
    # sklearn stores (in, out) matrices; the IR wants (out, in).
    layers = tuple(
        AffineLayer(
            np.asarray(w, np.float64).T, np.asarray(b, np.float64), _HIDDEN[act] and i < n - 1
        )
        for i, (w, b) in enumerate(zip(estimator.coefs_, estimator.intercepts_, strict=True))
    )
    meta = {"source": f"sklearn.{type(estimator).__name__}"}
    if isinstance(estimator, MLPClassifier):
        meta["classes"] = ",".join(str(c) for c in estimator.classes_)
        # softmax: argmax; logistic (binary or multilabel): each output's logit > 0.
        meta["decision"] = "argmax" if estimator.out_activation_ == "softmax" else "logit>0"
    return Network(layers, meta=meta)
