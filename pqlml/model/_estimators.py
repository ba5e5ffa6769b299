"""The models behind one interface: logistic regression and gradient boosting, and the
calibrators that map their scores to probabilities. No resampling: SMOTE and friends break
calibration, and sales reads the probabilities as rates.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import PqlmlError
from ._signed import SignedLogisticRegression

__all__ = ["KINDS", "CALIBRATIONS", "MedianImputer", "make_estimator", "fit_calibrator",
           "anchor_level", "level_rows", "calibrate"]

KINDS = ("auto", "logistic", "gradient_boosting")
CALIBRATIONS = ("platt", "isotonic", "none")


def _signed_log1p(X):
    X = np.asarray(X, float)
    return np.sign(X) * np.log1p(np.abs(X))


class MedianImputer(TransformerMixin, BaseEstimator):
    """Missing values (NaN) of each column replaced by the column's median in fit.

    What :class:`~sklearn.impute.SimpleImputer` computes with ``strategy="median"``, from
    :func:`numpy.nanmedian` instead of a masked-array median that sorts ~50 times slower
    (3.5 s of the demo's 20 fits). One difference, on purpose: a column with no value in fit
    is kept and filled with 0 (SimpleImputer drops it, and the columns then no longer match
    the feature names that reasons are written in).

    Examples
    --------
    >>> X = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan], [10.0, np.nan]])
    >>> MedianImputer().fit(X).transform(X)[:, 0].tolist(), MedianImputer().fit(X).statistics_[1]
    ([1.0, 3.0, 3.0, 10.0], np.float64(0.0))
    """

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=float, ensure_all_finite="allow-nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)      # "All-NaN slice": 0 below
            median = np.nanmedian(X, axis=0) if len(X) else np.full(X.shape[1], np.nan)
        self.statistics_ = np.nan_to_num(median, nan=0.0)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=float, ensure_all_finite="allow-nan", reset=False,
                          copy=True)
        missing = np.isnan(X)
        X[missing] = np.take(self.statistics_, np.nonzero(missing)[1])
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def make_estimator(kind: str, *, class_weight=None, seed: int = 0, C: float = 1.0,
                   monotone=None):
    """An unfitted scikit-learn estimator of ``kind`` (``auto`` is chosen among these by
    :class:`~pqlml.model.LeadClassifier`, see :mod:`pqlml.model._select`).

    ``logistic``: median imputation, signed log1p (counts are heavy-tailed), standard
    scaling, L2 logistic regression with penalty ``C`` (a
    :class:`~pqlml.model._signed.SignedLogisticRegression`: scikit-learn's objective, with
    sign bounds). ``gradient_boosting``: HistGradientBoosting
    (missing values native), shallow trees, a fixed number of rounds, and no interactions
    (each tree splits on one feature: an additive model of any shape per feature, whose
    exact reasons cost a table lookup instead of TreeSHAP's minute per 100,000 rows).
    ``monotone``: None or one of -1, 0, 1 per column (:func:`~pqlml.model._monotone.
    directions`): the logistic's coefficient signs, the boosting's ``monotonic_cst``
    (every transform before the logistic is increasing, so both mean "the score never
    decreases (+1) / increases (-1) in this column").
    """
    signs = None if monotone is None else [int(v) for v in monotone]
    if kind == "logistic":
        return make_pipeline(MedianImputer(),
                             FunctionTransformer(_signed_log1p), StandardScaler(),
                             SignedLogisticRegression(C=C, signs=signs, class_weight=class_weight,
                                                      max_iter=2000))
    if kind == "gradient_boosting":
        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300, max_leaf_nodes=15,
                                              min_samples_leaf=100, l2_regularization=1.0,
                                              interaction_cst="no_interactions",
                                              monotonic_cst=signs,
                                              class_weight=class_weight, early_stopping=False,
                                              random_state=seed)
    raise PqlmlError(f"The 'kind' parameter of make_estimator must be one of "
                     f"{', '.join(KINDS[1:])}. Got {kind!r} instead.")


def _logit(p):
    p = np.clip(np.asarray(p, float), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))[:, None]


def fit_calibrator(method: str, score: np.ndarray, y: np.ndarray, *, sample_weight=None):
    """A fitted scikit-learn calibrator of held-out ``(score, outcome)`` pairs, never
    decreasing in the score (a calibrator must not invert the model's ranking).

    ``platt``: a :class:`~sklearn.linear_model.LogisticRegression` on the logit of the
    score. Under drift the held-out months can rank the other way round (a fitted slope
    <= 0); the slope is then fixed at 1 and only the intercept is fitted (the score's
    log-odds shifted to the held-out rate). ``isotonic``: an
    :class:`~sklearn.isotonic.IsotonicRegression`, clipped to the seen range.

    Examples
    --------
    >>> score = np.array([.1, .2, .3, .4, .6, .7, .8, .9]); y = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    >>> curve = fit_calibrator("platt", score, y)          # the held-out months disagree
    >>> float(curve.coef_[0, 0]), bool(np.all(np.diff(calibrate(curve, score)) > 0))
    (1.0, True)
    """
    w = sample_weight
    if method == "isotonic":
        return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
            score, y, sample_weight=w)
    curve = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(score), y, sample_weight=w)
    if curve.coef_[0, 0] <= 0:
        curve.coef_[0, 0] = 1.0
        anchor_level(curve, score, float(np.average(y, weights=w)), weights=w)
    return curve


def anchor_level(curve, score: np.ndarray, rate: float, *, weights=None):
    """Set a Platt ``curve``'s intercept so that the mean probability it gives ``score`` is
    ``rate`` (its slope kept; with ``weights``, the weighted mean); returns the curve.

    The level of a few held-out months is noisy and seasonal (a December's low rate would
    lower every later score), so :class:`~pqlml.model.LeadClassifier` learns the slope out
    of time and sets the level from the training rows :func:`level_rows` chooses."""
    from scipy.optimize import brentq

    z, a = _logit(score)[:, 0], float(curve.coef_[0, 0])
    curve.intercept_[0] = brentq(
        lambda c: np.average(1 / (1 + np.exp(-(a * z + c))), weights=weights) - rate, -50, 50)
    return curve


def level_rows(as_of: np.ndarray, y: np.ndarray, weights=None) -> np.ndarray:
    """Which training rows set Platt's level (mask): every row, or those of the latest
    quarter of the dates (the calibration quarter), whichever predicted the rate of each
    training date better from the dates before it.

    A stable rate with seasons (a December dip) is best predicted by every earlier row; a
    rate that trends (4.8% one year, 52% two years later) by the latest ones. The choice is
    made forward in time on the training dates alone: each date from the third on is
    predicted by the rate of all earlier dates and by the rate of the latest quarter of
    them; the squared errors are summed, each date counting once (the question is the next
    date's rate, and a few large early months must not outvote every later one: weighted
    by rows, Bank Marketing's big months of 2008 kept every row's level through 2010's
    52%). Ties, and fewer than four dates, keep every row. ``weights``: a sample's (rates
    are then the weighted ones, the population's).

    Examples
    --------
    >>> as_of = np.repeat(np.arange(8), 100)                 # 8 months of 100 rows
    >>> def rates(*percent):
    ...     return np.concatenate([np.arange(100) < k for k in percent]).astype(int)
    >>> int(level_rows(as_of, rates(5, 10, 15, 20, 25, 30, 35, 40)).sum())   # trending
    200
    >>> int(level_rows(as_of, rates(10, 10, 10, 2, 10, 10, 10, 2)).sum())    # seasonal
    800
    """
    as_of = np.asarray(as_of)
    y = np.asarray(y, float)
    dates, at = np.unique(as_of, return_inverse=True)
    every = np.ones(len(y), dtype=bool)
    if len(dates) < 4:
        return every
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    n = np.bincount(at, weights=w, minlength=len(dates))          # a sample: its weights
    pos = np.bincount(at, weights=y * w, minlength=len(dates))
    cn, cpos = np.concatenate([[0], np.cumsum(n)]), np.concatenate([[0], np.cumsum(pos)])
    i = np.arange(2, len(dates))                   # each date, from its earlier ones
    start = i - np.maximum(1, i // 4)
    rate = pos[i] / n[i]
    err_all = np.sum((rate - cpos[i] / cn[i]) ** 2)
    err_recent = np.sum((rate - (cpos[i] - cpos[start]) / (cn[i] - cn[start])) ** 2)
    if err_recent < err_all:
        return at >= len(dates) - max(1, len(dates) // 4)
    return every


def calibrate(calibrator, score: np.ndarray) -> np.ndarray:
    """The probabilities :func:`fit_calibrator`'s ``calibrator`` gives ``score``."""
    if isinstance(calibrator, IsotonicRegression):
        return calibrator.predict(score)
    return calibrator.predict_proba(_logit(score))[:, 1]
