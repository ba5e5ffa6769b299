"""Per-feature contributions to a model's log-odds against a reference account, exact for
both kinds.

The reference is the fitted model's ``reference_``: each feature's median over the training
rows (a typical account). A contribution says how much a feature moves this account's
log-odds away from the reference's; ``base`` (the reference's log-odds) plus the
contributions is the account's log-odds.

Logistic: the pipeline is impute -> signed log1p -> standardise -> logistic regression,
so the log-odds is ``intercept + sum_j coef_j * z_j`` with ``z`` the standardised input:
``coef_j * (z_j - z_ref_j)`` is feature j's contribution.
Gradient boosting: pqlml's boosting is additive (each tree splits on one feature), so
the model is a sum of one step function per feature and ``F_j(x_j) - F_j(ref_j)`` is
feature j's contribution (see :func:`_additive`); for other tree models SHAP's
TreeExplainer with the reference as its one background row gives exact (interventional)
Shapley values of the raw margin against it. Platt calibration is an affine map of the
log-odds (``a * s + c``), so scaling the contributions by ``a`` and the base by ``a, c``
keeps the sum exact for the calibrated probability. Isotonic calibration is not affine:
contributions then explain the uncalibrated score (``exact`` is False).
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


def _logistic(pipeline, X: pd.DataFrame, reference: np.ndarray):
    *prep, lr = [step for _, step in pipeline.steps]
    z = np.vstack([reference[None, :], X.to_numpy(float)])  # what LeadClassifier passes
    for step in prep:
        z = step.transform(z)
    coef = lr.coef_[0]
    return (z[1:] - z[0]) * coef, np.full(len(X), float(lr.intercept_[0] + z[0] @ coef))


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


def _additive(model, X: pd.DataFrame, reference: np.ndarray):
    """Exact contributions against ``reference`` of a HistGradientBoosting model whose trees
    each split on one feature (``interaction_cst="no_interactions"``): the trees of feature
    j add up to a step function ``F_j`` and ``F_j(x_j) - F_j(ref_j)`` is its contribution;
    the base is the model's raw score of the reference. Each step function is evaluated
    once per interval, so 100,000 rows take well under a second.
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
        if len(features):
            by_feature.setdefault(int(features[0]), []).append(nodes)
        else:                                    # a single leaf: a constant
            base += float(nodes["value"][0])
    Xn = np.vstack([reference[None, :], X.to_numpy(float)])
    values = np.zeros_like(Xn)
    for j, group in by_feature.items():
        cuts = np.unique(np.concatenate([n["num_threshold"][~n["is_leaf"].astype(bool)] for n in group]))
        points = np.concatenate([cuts, [np.inf, np.nan]])       # one per interval, then NaN
        step = sum(n["value"][_leaf_of(n, points)] for n in group)
        x = Xn[:, j]
        where = np.where(np.isnan(x), len(points) - 1, np.searchsorted(cuts, x, side="left"))
        values[:, j] = step[where]
    return values[1:] - values[0], np.full(len(X), base + values[0].sum())


def _tree(model, X: pd.DataFrame, reference: np.ndarray):
    from sklearn.ensemble import HistGradientBoostingClassifier

    if isinstance(model, HistGradientBoostingClassifier):
        fast = _additive(model, X, reference)
        if fast is not None:
            return fast
    import shap

    explainer = shap.TreeExplainer(model, data=reference[None, :],
                                   feature_perturbation="interventional",
                                   model_output="raw")
    values = explainer.shap_values(X.to_numpy(float), check_additivity=False)
    values = values[1] if isinstance(values, list) else values
    if values.ndim == 3:
        values = values[..., 1]
    base = np.ravel(explainer.expected_value)
    return np.asarray(values, float), np.full(len(X), float(base[-1]))


def contributions(model, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """``(C, base, exact)``: ``C`` has one column per model feature (log-odds units, against
    the reference account ``model.estimator.reference_``); ``base`` is the reference's
    log-odds and ``base + C.sum(axis=1)`` the log-odds of ``model.predict(X)`` when ``exact``.

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
    >>> ref = pd.DataFrame([m.estimator.reference_], columns=m.features)   # the medians
    >>> q = m.predict(ref)[0]
    >>> bool(np.allclose(base, np.log(q / (1 - q)))), bool(np.allclose(contributions(m, ref)[0], 0))
    (True, True)
    """
    X = X[model.features]
    base_est, platt, exact = _parts(model.estimator)
    reference = np.asarray(model.estimator.reference_, float)
    if model.kind == "logistic":
        values, base = _logistic(base_est, X, reference)
    else:
        values, base = _tree(base_est, X, reference)
    if platt is not None:
        a, c = platt
        values, base = values * a, base * a + c
    return pd.DataFrame(values, columns=model.features, index=X.index), base, exact
