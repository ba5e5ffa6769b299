"""The models behind one interface: logistic regression and gradient boosting, calibrated on
a later time fold. No resampling: SMOTE and friends break calibration, and sales reads the
probabilities as rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ..errors import PqlmlError

__all__ = ["KINDS", "make_estimator", "fit_calibrated"]

KINDS = ("logistic", "gradient_boosting")


def _signed_log1p(X):
    X = np.asarray(X, float)
    return np.sign(X) * np.log1p(np.abs(X))


def make_estimator(kind: str, *, class_weight=None, seed: int = 0):
    """An unfitted scikit-learn estimator of ``kind``.

    ``logistic``: median imputation, signed log1p (counts are heavy-tailed), standard
    scaling, L2 logistic regression. ``gradient_boosting``: HistGradientBoosting
    (missing values native), shallow trees, a fixed number of rounds.
    """
    if kind == "logistic":
        return make_pipeline(SimpleImputer(strategy="median"),
                             FunctionTransformer(_signed_log1p), StandardScaler(),
                             LogisticRegression(C=1.0, class_weight=class_weight,
                                                max_iter=2000))
    if kind == "gradient_boosting":
        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300, max_leaf_nodes=15,
                                              min_samples_leaf=100, l2_regularization=1.0,
                                              class_weight=class_weight, early_stopping=False,
                                              random_state=seed)
    raise PqlmlError(f"The 'kind' parameter must be one of {', '.join(KINDS)}. Got {kind!r} "
                     "instead.")


def fit_calibrated(kind: str, X: pd.DataFrame, y: np.ndarray, as_of: pd.Series, *,
                   calibration: str = "platt", class_weight=None, seed: int = 0):
    """Fit on the earlier snapshots, calibrate on the latest ones (time order, never shuffled).

    The latest quarter of the training ``as_of`` dates (at least one) is held out
    for calibration; the base model is then frozen and calibrated there.
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
    base = make_estimator(kind, class_weight=class_weight, seed=seed).fit(X[early], y[early])
    method = "sigmoid" if calibration == "platt" else calibration
    return CalibratedClassifierCV(FrozenEstimator(base), method=method).fit(X[late], y[late])
