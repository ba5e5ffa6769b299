"""The models behind one interface: logistic regression and gradient boosting, calibrated on
a later time fold. No resampling: SMOTE and friends break calibration, and sales reads the
probabilities as rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ..errors import PqlmlError

__all__ = ["KINDS", "make_estimator", "fit_calibrated", "Recalibrated"]

KINDS = ("logistic", "gradient_boosting")


def _signed_log1p(X):
    X = np.asarray(X, float)
    return np.sign(X) * np.log1p(np.abs(X))


def make_estimator(kind: str, *, class_weight=None, seed: int = 0):
    """An unfitted scikit-learn estimator of ``kind``.

    ``logistic``: median imputation, signed log1p (counts are heavy-tailed), standard
    scaling, L2 logistic regression. ``gradient_boosting``: HistGradientBoosting
    (missing values native), shallow trees, a fixed number of rounds, and no interactions
    (each tree splits on one feature: an additive model of any shape per feature, whose
    exact reasons cost a table lookup instead of TreeSHAP's minute per 100,000 rows).
    """
    if kind == "logistic":
        return make_pipeline(SimpleImputer(strategy="median"),
                             FunctionTransformer(_signed_log1p), StandardScaler(),
                             LogisticRegression(C=1.0, class_weight=class_weight,
                                                max_iter=2000))
    if kind == "gradient_boosting":
        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300, max_leaf_nodes=15,
                                              min_samples_leaf=100, l2_regularization=1.0,
                                              interaction_cst="no_interactions",
                                              class_weight=class_weight, early_stopping=False,
                                              random_state=seed)
    raise PqlmlError(f"The 'kind' parameter must be one of {', '.join(KINDS)}. Got {kind!r} "
                     "instead.")


class Recalibrated:
    """A model refitted on every training row, mapped to probabilities by a calibrator that
    learned, on the latest months, what the scores of a model fitted on the earlier ones
    meant. So the model sees the newest data (under drift it matters most) and the
    probabilities still come from a fit it was not trained on."""

    def __init__(self, base, calibrator):
        self.base, self.calibrator = base, calibrator
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X):
        p = self.calibrator(self.base.predict_proba(X)[:, 1])
        return np.column_stack([1 - p, p])


def _logit(p):
    p = np.clip(np.asarray(p, float), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))[:, None]


class _Platt:
    """Platt scaling: a logistic curve on the logit of the score, never decreasing.

    Under drift the held-out months can rank the other way round (a fitted slope <= 0);
    a calibrator must not invert the model's ranking, so the slope is then fixed at 1
    and only the intercept is fitted (the score's log-odds shifted to the held-out rate).
    """

    def __init__(self, score, y):
        self.curve = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(score), y)
        if self.curve.coef_[0, 0] <= 0:
            from scipy.optimize import brentq
            z, rate = _logit(score)[:, 0], float(np.mean(y))
            shift = brentq(lambda c: np.mean(1 / (1 + np.exp(-(z + c)))) - rate, -50, 50)
            self.curve.coef_[0, 0], self.curve.intercept_[0] = 1.0, shift

    def __call__(self, score):
        return self.curve.predict_proba(_logit(score))[:, 1]


class _Isotonic:
    """A non-decreasing step function of the score, clipped to the seen range."""

    def __init__(self, score, y):
        self.steps = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, y)

    def __call__(self, score):
        return self.steps.predict(score)


def _calibrator(method: str, score: np.ndarray, y: np.ndarray):
    """score -> probability, fitted on held-out (score, outcome) pairs."""
    return (_Isotonic if method == "isotonic" else _Platt)(score, y)


def fit_calibrated(kind: str, X: pd.DataFrame, y: np.ndarray, as_of: pd.Series, *,
                   calibration: str = "platt", class_weight=None, seed: int = 0):
    """Calibrate on the latest snapshots, then refit on all of them (time order, never shuffled).

    The latest quarter of the training ``as_of`` dates (at least one) is held out: a
    model fitted on the earlier dates scores it, and the calibrator (Platt: a logistic
    curve on the logit of the score; isotonic: a step function) is fitted there. The
    returned model is refitted on every row and passes its scores through that
    calibrator (:class:`Recalibrated`).
    """
    dates = np.sort(as_of.unique())
    if len(dates) < 2 or calibration == "none":
        return make_estimator(kind, class_weight=class_weight, seed=seed).fit(X, y)
    cut = dates[-max(1, len(dates) // 4)]
    early, late = (as_of < cut).to_numpy(), (as_of >= cut).to_numpy()
    for name, mask in (("fitting", early), ("calibration", late)):
        pos = int(y[mask].sum())
        if pos == 0 or pos == mask.sum():
            raise PqlmlError(f"The {name} part of the training data ({int(mask.sum()):,} "
                             f"snapshots) has {pos:,} positives: one class only. Fix: train on "
                             f"a longer schedule.")
    early_model = make_estimator(kind, class_weight=class_weight, seed=seed).fit(X[early], y[early])
    calibrator = _calibrator(calibration, early_model.predict_proba(X[late])[:, 1], y[late])
    return Recalibrated(make_estimator(kind, class_weight=class_weight, seed=seed).fit(X, y),
                        calibrator)
