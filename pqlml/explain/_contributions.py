"""Per-feature contributions to a model's log-odds, exact for both kinds.

Logistic: the pipeline is impute -> signed log1p -> standardise -> logistic regression,
so the log-odds is ``intercept + sum_j coef_j * z_j`` with ``z`` the standardised input:
``coef_j * z_j`` is feature j's contribution, relative to the average training row.
Gradient boosting: pqlml's boosting is additive (each tree splits on one feature), so
a tree's Shapley value is its output minus its expectation (see :func:`_additive`; equal
to SHAP's TreeExplainer, which a test checks); for other tree models TreeExplainer gives
exact (path-dependent) Shapley values of the raw margin. Platt calibration is an affine map of the log-odds (``a * s + c``), so
scaling the contributions by ``a`` and the base by ``a, c`` keeps the sum exact for the
calibrated probability. Isotonic calibration is not affine: contributions then explain
the uncalibrated score (``exact`` is False).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["contributions"]


def _parts(classifier):
    """(fitted base estimator, Platt (a, c) or None, exact?), from the public fitted
    attributes of a :class:`~pqlml.model.LeadClassifier`."""
    from sklearn.linear_model import LogisticRegression

    calibrator = classifier.calibrator_
    if calibrator is None:
        return classifier.base_estimator_, None, True
    if isinstance(calibrator, LogisticRegression):          # Platt: a * logit + c
        return (classifier.base_estimator_,
                (float(calibrator.coef_[0, 0]), float(calibrator.intercept_[0])), True)
    return classifier.base_estimator_, None, False


def _logistic(pipeline, X: pd.DataFrame):
    *prep, lr = [step for _, step in pipeline.steps]
    z = X.to_numpy(float)        # what LeadClassifier passes its base estimator
    for step in prep:
        z = step.transform(z)
    return z * lr.coef_[0], np.full(len(X), float(lr.intercept_[0]))


def _leaf_of(nodes, x: np.ndarray) -> np.ndarray:
    """The leaf each value of one feature reaches in a single-feature tree (scikit-learn's
    rule: ``x <= threshold`` goes left, NaN follows ``missing_go_to_left``)."""
    at = np.zeros(len(x), dtype=np.int64)
    while True:
        node = nodes[at]
        inner = ~node["is_leaf"].astype(bool)
        if not inner.any():
            return at
        left = np.where(np.isnan(x), node["missing_go_to_left"].astype(bool),
                        x <= node["num_threshold"])
        at = np.where(inner, np.where(left, node["left"], node["right"]), at)


def _additive(model, X: pd.DataFrame):
    """Exact SHAP values of a HistGradientBoosting model whose trees each split on one
    feature (``interaction_cst="no_interactions"``): a tree's Shapley value is all its
    feature's, ``f_t(x) - E[f_t]`` (E weighted by the training counts, as TreeExplainer's
    path-dependent algorithm does). Trees of one feature add up to a step function
    evaluated once per interval, so 100,000 rows take well under a second.
    Returns None when some tree splits on two features."""
    trees = [it[0] for it in model._predictors]
    base = float(np.ravel(model._baseline_prediction)[0])
    by_feature: dict[int, list] = {}
    for tree in trees:
        nodes = tree.nodes
        leaf = nodes["is_leaf"].astype(bool)
        features = np.unique(nodes["feature_idx"][~leaf])
        if len(features) > 1:
            return None
        expected = float(np.sum(nodes["count"][leaf] * nodes["value"][leaf]) / np.sum(nodes["count"][leaf]))
        base += expected
        if len(features):
            by_feature.setdefault(int(features[0]), []).append((nodes, expected))
    Xn = X.to_numpy(float)
    values = np.zeros_like(Xn)
    for j, group in by_feature.items():
        cuts = np.unique(np.concatenate([n["num_threshold"][~n["is_leaf"].astype(bool)] for n, _ in group]))
        points = np.concatenate([cuts, [np.inf, np.nan]])       # one per interval, then NaN
        step = sum(n["value"][_leaf_of(n, points)] - e for n, e in group)
        x = Xn[:, j]
        where = np.where(np.isnan(x), len(points) - 1, np.searchsorted(cuts, x, side="left"))
        values[:, j] = step[where]
    return values, np.full(len(X), base)


def _tree(model, X: pd.DataFrame):
    from sklearn.ensemble import HistGradientBoostingClassifier

    if isinstance(model, HistGradientBoostingClassifier):
        fast = _additive(model, X)
        if fast is not None:
            return fast
    import shap

    explainer = shap.TreeExplainer(model)
    values = explainer.shap_values(X.to_numpy(float), check_additivity=False)
    values = values[1] if isinstance(values, list) else values
    if values.ndim == 3:
        values = values[..., 1]
    base = np.ravel(explainer.expected_value)
    return np.asarray(values, float), np.full(len(X), float(base[-1]))


def contributions(model, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """``(C, base, exact)``: ``C`` has one column per model feature (log-odds units);
    ``base + C.sum(axis=1)`` is the log-odds of ``model.predict(X)`` when ``exact``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from pqlml.model import Model
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.poisson(3, 400), "b": rng.poisson(1, 400)})
    >>> frame = X.assign(as_of=pd.Timestamp("2024-01-01"), y=(X.a + rng.normal(0, 2, 400) > 4).astype(int))
    >>> m = Model.fit(frame, "y", kind="logistic", calibration="none")
    >>> C, base, exact = contributions(m, X)
    >>> p = m.predict(X)
    >>> bool(np.allclose(base + C.sum(axis=1), np.log(p / (1 - p)))), exact
    (True, True)
    """
    X = X[model.features]
    base_est, platt, exact = _parts(model.estimator)
    if model.kind == "logistic":
        values, base = _logistic(base_est, X)
    else:
        values, base = _tree(base_est, X)
    if platt is not None:
        a, c = platt
        values, base = values * a, base * a + c
    return pd.DataFrame(values, columns=model.features, index=X.index), base, exact
