"""scikit-learn MLPs imported as Networks agree with sklearn's own predict."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor

from nn2mip.errors import UnsupportedLayerError
from nn2mip.formulation import build_formulation
from nn2mip.highs_backend import solve_highs
from nn2mip.region import box_region
from nn2mip.sklearn_io import from_sklearn


def _fit(est, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(x, y)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(300, 4))
    y = np.stack([x[:, 0] * x[:, 1] + np.sin(x[:, 2]), np.abs(x[:, 3]) - x[:, 0]], axis=1)
    return x, y


@pytest.mark.parametrize("multi", [False, True])
def test_regressor_matches_predict(data, multi):
    x, y = data
    yy = y if multi else y[:, 0]
    est = _fit(MLPRegressor(hidden_layer_sizes=(12, 7), max_iter=200, random_state=0), x, yy)
    net = from_sklearn(est)
    assert net.describe() == f"4-12-7-{2 if multi else 1}"
    out = net.forward(x)
    np.testing.assert_allclose(out if multi else out[:, 0], est.predict(x), rtol=1e-12, atol=1e-12)
    # and the MIP with the input fixed reproduces it
    form = build_formulation(net, box_region(-np.ones(4), np.ones(4)))
    form.model.set_col_bounds(form.input_cols, x[0], x[0])
    form.model.set_objective(form.output_cols, np.ones(net.output_size))
    r = solve_highs(form.model)
    np.testing.assert_allclose(r.x[form.output_cols], out[0], atol=1e-6)


def test_multiclass_classifier_matches_predict(data):
    x, y = data
    labels = np.digitize(y[:, 0], [-0.3, 0.3])  # three classes
    est = _fit(MLPClassifier(hidden_layer_sizes=(10,), max_iter=300, random_state=0), x, labels)
    net = from_sklearn(est)
    assert net.meta["decision"] == "argmax"
    logits = net.forward(x)
    assert np.array_equal(est.classes_[np.argmax(logits, axis=1)], est.predict(x))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(axis=1, keepdims=True), est.predict_proba(x), atol=1e-12)


def test_binary_classifier_matches_predict(data):
    x, y = data
    labels = np.where(y[:, 1] > 0, "yes", "no")
    est = _fit(MLPClassifier(hidden_layer_sizes=(8, 8), max_iter=300, random_state=0), x, labels)
    net = from_sklearn(est)
    assert net.output_size == 1 and net.meta["decision"] == "logit>0"
    assert net.meta["classes"] == "no,yes"
    pred = np.where(net.forward(x)[:, 0] > 0, est.classes_[1], est.classes_[0])
    assert np.array_equal(pred, est.predict(x))
    np.testing.assert_allclose(
        1 / (1 + np.exp(-net.forward(x)[:, 0])), est.predict_proba(x)[:, 1], atol=1e-12
    )


def test_identity_hidden_layers_are_linear(data):
    x, y = data
    est = _fit(
        MLPRegressor(hidden_layer_sizes=(5,), activation="identity", max_iter=50, random_state=0),
        x,
        y,
    )
    net = from_sklearn(est)
    assert not any(layer.relu for layer in net.layers)
    np.testing.assert_allclose(net.forward(x), est.predict(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ["tanh", "logistic"])
def test_other_activations_refused(data, act):
    x, y = data
    est = _fit(
        MLPRegressor(hidden_layer_sizes=(5,), activation=act, max_iter=20, random_state=0), x, y
    )
    with pytest.raises(UnsupportedLayerError, match=f"'{act}'.*relu"):
        from_sklearn(est)


def test_unfitted_and_foreign_estimators_refused(data):
    with pytest.raises(UnsupportedLayerError, match="not fitted"):
        from_sklearn(MLPRegressor())
    x, y = data
    with pytest.raises(UnsupportedLayerError, match="LinearRegression"):
        from_sklearn(LinearRegression().fit(x, y))
