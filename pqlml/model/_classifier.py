"""pqlml's classifier as a scikit-learn estimator: a model refitted on every training row,
whose scores are mapped to probabilities by a calibrator fitted on later snapshots (its
shape; Platt's level comes from the training rows whose rate best predicts the next date's).

Why not :class:`~sklearn.calibration.CalibratedClassifierCV` (with a
:class:`~sklearn.frozen.FrozenEstimator` base)? It calibrates the estimator it is given, on
rows that estimator did not learn from. pqlml's scheme is time-aware and keeps the newest
rows in the model: a model fitted on the earlier snapshots scores the latest ones, the
calibrator learns there what those scores meant, and the same calibrator then maps the
scores of a model refitted on *every* row (under drift the newest months matter most). A
frozen model refitted on all rows would be calibrated on rows it had learned. Its sigmoid
may also fit a negative slope (inverting the ranking) and smooths the targets, which would
change every existing model's probabilities. So pqlml uses scikit-learn's building blocks
(:class:`~sklearn.linear_model.LogisticRegression` for Platt,
:class:`~sklearn.isotonic.IsotonicRegression`) directly, in
:func:`~pqlml.model._estimators.fit_calibrator`, which never inverts the ranking.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ..errors import PqlmlError
from ._estimators import (CALIBRATIONS, KINDS, MedianImputer, _signed_log1p, anchor_level,
                          calibrate, fit_calibrator, level_rows, make_estimator)
from ._monotone import directions
from ._select import GRID, select

__all__ = ["LeadClassifier"]


class LeadClassifier(ClassifierMixin, BaseEstimator):
    """A calibrated binary classifier of leads (converts / hand-raises within the horizon).

    Parameters
    ----------
    kind : {"auto", "gradient_boosting", "logistic"}
        The model (:func:`~pqlml.model.make_estimator` describes each); ``auto`` chooses
        one of :data:`~pqlml.model._select.GRID` (a kind and, for the logistic, ``C``) by
        forward-in-time validation on the training rows (:mod:`pqlml.model._select`).
    calibration : {"platt", "isotonic", "none"}
        How scores become probabilities. Platt: a logistic curve on the score's logit
        (its slope never negative: the ranking is kept); isotonic: a non-decreasing step
        function; none: the model's own probabilities.
    class_weight : None, "balanced" or dict
        Passed to the model (keys of a dict are labels of ``y``). Calibration is unweighted,
        so the probabilities stay rates.
    random_state : int or None
        Seed of the gradient boosting model.
    C : float
        Inverse strength of the logistic model's L2 penalty (as scikit-learn's).
    monotone : "auto", "none" or array-like of -1, 0, 1 per feature
        Which way each feature may move the score. ``"auto"``: more of a usage activity
        (read from the feature names) never lowers it, unless the training rows clearly
        say more of it goes with fewer outcomes (then it never raises it), see
        :func:`~pqlml.model._monotone.directions`; ``"none"``: no constraint.
    gap_days : float
        ``kind="auto"``: how far before a validation date its training rows end (the
        outcome's horizon, so that no training label reaches into the validation date);
        in the units of ``as_of`` differences (days for dates, rows without ``as_of``).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The labels; ``classes_[1]`` is the outcome whose probability is predicted.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    kind_, C_ : str, float
        The model fitted: ``kind`` and ``C``, or the candidate ``auto`` chose.
    selection_ : list of dict or None
        ``kind="auto"``: each candidate with its mean validation ROC-AUC (``roc_auc``) and
        its score per validation date (``per_split``); else None.
    base_estimator_ : estimator
        The model of ``kind`` fitted on every row (a Pipeline for ``logistic``, a
        HistGradientBoostingClassifier for ``gradient_boosting``).
    calibrator_ : LogisticRegression, IsotonicRegression or None
        Maps ``base_estimator_``'s probability of ``classes_[1]`` to the calibrated one
        (Platt: fitted on the logit of that probability); None when uncalibrated.
    monotone_ : ndarray of shape (n_features,)
        The direction each feature was constrained to (-1, 0 free, +1).
    reference_ : ndarray of shape (n_features,)
        The reference account reasons are measured against: each feature's median over the
        training rows (NaN for a feature never known).
    correlation_ : ndarray of shape (n_features, n_features)
        Absolute Pearson correlations of the features over the training rows, as the
        logistic model sees them (median-imputed, signed log1p): reasons group the
        features that move together.

    Notes
    -----
    ``fit(X, y, as_of=...)``: the latest quarter of the distinct ``as_of`` dates (at least
    one) is held out, a model fitted on the earlier dates scores it and the calibrator is
    fitted there; ``base_estimator_`` is then fitted on every row. Platt keeps the slope
    learned there and takes its level (intercept) from the training rows: the mean
    probability of those rows is their rate (:func:`~pqlml.model._estimators.anchor_level`).
    Those rows are every row when the rate is stable (a few held-out months' rate is noisy
    and seasonal: on the second world a December's low rate lowered every later score, and
    the pooled ROC-AUC of the backtest fell from 0.757 to 0.731), and the calibration
    quarter's when the rate trends (Bank Marketing's rose from 5% to 52% over two years):
    whichever predicted each training date's rate better from the dates before it
    (:func:`~pqlml.model._estimators.level_rows`). With one date only (or
    ``calibration="none"``) the model's own probabilities are used. Without ``as_of`` the
    rows are taken to be in time order (as :class:`~sklearn.model_selection.TimeSeriesSplit`
    assumes), each its own date: the last quarter of the rows calibrates.

    In :func:`~sklearn.model_selection.cross_validate` or a search, pass the dates as
    ``params={"as_of": dates}`` (they are split with the rows). With metadata routing
    enabled (``sklearn.set_config(enable_metadata_routing=True)``), request them first:
    ``LeadClassifier().set_fit_request(as_of=True)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"events_30d": rng.poisson(3, 400), "users": rng.poisson(2, 400)})
    >>> y = (X.events_30d + rng.normal(0, 2, 400) > 4).astype(int)
    >>> as_of = np.repeat(pd.date_range("2024-01-01", periods=4, freq="MS"), 100)
    >>> clf = LeadClassifier(kind="logistic").fit(X, y, as_of=as_of)
    >>> new = pd.DataFrame({"events_30d": [0, 2, 9], "users": [2, 2, 2]})
    >>> clf.predict_proba(new).round(3)
    array([[0.982, 0.018],
           [0.788, 0.212],
           [0.16 , 0.84 ]])
    >>> clf.predict(new).tolist(), list(clf.feature_names_in_), clf.calibrator_.coef_.shape
    ([0, 0, 1], ['events_30d', 'users'], (1, 1))
    """

    def __init__(self, kind="gradient_boosting", calibration="platt", class_weight=None,
                 random_state=0, C=1.0, monotone="auto", gap_days=0):
        self.kind = kind
        self.calibration = calibration
        self.class_weight = class_weight
        self.random_state = random_state
        self.C = C
        self.monotone = monotone
        self.gap_days = gap_days

    def fit(self, X, y, as_of=None, sample_weight=None):
        """Fit on ``X`` (rows of features), ``y`` (two classes) and, optionally, ``as_of``
        (the date of each row: the latest dates calibrate) and ``sample_weight`` (a sample's
        1 / rate per row, :mod:`pqlml.model._sample`: the fit, Platt's slope and level are
        weighted, so the probabilities are the population's rates). Returns self."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan")
        w = _weights(sample_weight, X, y)
        check_classification_targets(y)
        target = type_of_target(y, input_name="y")
        if target != "binary":
            raise PqlmlError(f"Only binary classification is supported. The type of the target "
                             f"is {target}. Fix: pass y with two classes (e.g. converted: 1/0).")
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise PqlmlError(f"LeadClassifier needs two classes in y; it has one class only "
                             f"({self.classes_[0]!r}). Fix: train on a schedule with both "
                             "outcomes.")
        y = (y == self.classes_[1]).astype(int)
        dates = self._dates(as_of, len(y))
        self.monotone_ = self._directions(X, y)
        self.kind_, self.C_, self.selection_ = self.kind, float(self.C), None
        if self.kind == "auto":
            best, self.selection_ = select(self._builder(X, y), X, y, dates,
                                           gap_days=self.gap_days, grid=GRID)
            self.kind_, self.C_ = best["kind"], float(best.get("C", self.C))
        self.base_estimator_, self.calibrator_ = self._fit(X, y, dates, w)
        self.reference_, self.correlation_ = _reference(X, w), _correlation(X, w)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, one column per class of ``classes_``; 0 rows give an
        empty (0, 2) array."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64,
                          ensure_all_finite="allow-nan", ensure_min_samples=0)
        if not len(X):
            return np.zeros((0, 2))
        p = self.base_estimator_.predict_proba(X)[:, 1]
        if self.calibrator_ is not None:
            p = calibrate(self.calibrator_, p)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """``classes_[1]`` where its calibrated probability exceeds 0.5, else ``classes_[0]``."""
        positive = self.predict_proba(X)[:, 1] > 0.5       # checks first that it is fitted
        return self.classes_[positive.astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    def _check_params(self) -> None:
        for name, allowed in (("kind", KINDS), ("calibration", CALIBRATIONS)):
            value = getattr(self, name)
            if value not in allowed:
                raise PqlmlError(f"The '{name}' parameter of LeadClassifier must be one of "
                                 f"{', '.join(allowed)}. Got {value!r} instead.")
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise PqlmlError(f"The 'C' parameter of LeadClassifier must be a positive number. "
                             f"Got {self.C!r} instead.")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise PqlmlError(f"The 'class_weight' parameter of LeadClassifier must be None, "
                             f"'balanced' or a dict of label -> weight. Got {cw!r} instead.")

    def _dates(self, as_of, n: int) -> pd.Series:
        if as_of is None:
            return pd.Series(np.arange(n))
        dates = pd.Series(as_of).reset_index(drop=True)
        if len(dates) != n or dates.isna().any():
            raise PqlmlError(f"The 'as_of' argument of LeadClassifier.fit must give a date for "
                             f"each of the {n:,} rows of X. Got {len(dates):,} values, "
                             f"{int(dates.isna().sum()):,} missing. Fix: pass the snapshots' "
                             "as_of column (or nothing: rows in time order).")
        return dates

    def _directions(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The ``monotone`` parameter as -1/0/1 per column (``"auto"``: from the rows given)."""
        m = self.monotone
        if isinstance(m, str) and m == "auto":
            names = getattr(self, "feature_names_in_", None)
            return (np.zeros(X.shape[1], dtype=np.int64) if names is None
                    else directions(X, y, names))
        if m is None or (isinstance(m, str) and m == "none"):
            return np.zeros(X.shape[1], dtype=np.int64)
        values = np.asarray(m) if not isinstance(m, str) else np.array([])
        if values.shape != (X.shape[1],) or not np.isin(values, (-1, 0, 1)).all():
            raise PqlmlError(f"The 'monotone' parameter of LeadClassifier must be 'auto', "
                             f"'none' or one of -1, 0, 1 per feature ({X.shape[1]}). Got "
                             f"{m!r} instead.")
        return values.astype(np.int64)

    def _builder(self, X: np.ndarray, y: np.ndarray):
        """For :func:`~pqlml.model._select.select`: given a split's training rows, a maker of
        candidates held to the directions those rows give (never the validation date's)."""
        def build(rows):
            signs = self._directions(X[rows], y[rows])
            return lambda **params: self._make(signs, **params)
        return build

    def _make(self, signs: np.ndarray, kind=None, C=None):
        """An unfitted model whose features move the score in the directions ``signs``, of
        ``kind`` and ``C`` (default: the ones fitted, ``kind_``, ``C_``)."""
        cw = self.class_weight
        if isinstance(cw, dict):        # labels of y -> the 0/1 the model is fitted on
            cw = {int(np.flatnonzero(self.classes_ == k)[0]): w for k, w in cw.items()
                  if k in self.classes_}
        return make_estimator(kind or self.kind_, class_weight=cw, seed=self.random_state,
                              C=self.C_ if C is None else C,
                              monotone=None if not signs.any() else signs)

    def _fit(self, X: np.ndarray, y: np.ndarray, as_of: pd.Series, w=None):
        """(model fitted on every row, calibrator or None): see the class's Notes. ``w``:
        the rows' weights (None: unweighted)."""
        dates = np.sort(as_of.unique())
        if len(dates) < 2 or self.calibration == "none":
            return _fitted(self._make(self.monotone_), X, y, w), None
        cut = dates[-max(1, len(dates) // 4)]
        early, late = (as_of < cut).to_numpy(), (as_of >= cut).to_numpy()
        for name, mask in (("fitting", early), ("calibration", late)):
            pos = int(y[mask].sum())
            if pos == 0 or pos == mask.sum():
                raise PqlmlError(f"The {name} part of the training data ({int(mask.sum()):,} "
                                 f"rows; the latest quarter of the as_of dates calibrates, the "
                                 f"earlier ones fit) has {pos:,} positives: one class only. "
                                 "Fix: train on a longer schedule (or calibration='none').")
        # the calibrating model learns its directions from its own rows only
        part = (lambda mask: None) if w is None else (lambda mask: w[mask])
        early_model = _fitted(self._make(self._directions(X[early], y[early])), X[early],
                              y[early], part(early))
        calibrator = fit_calibrator(self.calibration, early_model.predict_proba(X[late])[:, 1],
                                    y[late], sample_weight=part(late))
        del early_model
        model = _fitted(self._make(self.monotone_), X, y, w)
        if self.calibration == "platt":      # the slope out of time, the level from the rows
            rows = level_rows(as_of.to_numpy(), y, w)  # whose rate predicts the next best
            anchor_level(calibrator, model.predict_proba(X[rows])[:, 1],
                         float(np.average(y[rows], weights=part(rows))), weights=part(rows))
        return model, calibrator


def _weights(sample_weight, X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """``sample_weight`` as floats, checked by scikit-learn (one non-negative weight a row,
    not all zero); the rows it weighs above 0 must hold both classes. None stays None (the
    unweighted fit)."""
    if sample_weight is None:
        return None
    w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if len(np.unique(y[w > 0])) < 2:
        raise PqlmlError("LeadClassifier needs two classes among the rows weighted above 0; "
                         "they hold one class only. Fix: keep every positive in the sample "
                         "(pqlml.model._sample.sample_rows).")
    return w


def _fitted(model, X: np.ndarray, y: np.ndarray, w):
    """``model`` fitted on ``X``, ``y`` with weights ``w`` (None: unweighted); a logistic
    Pipeline's weights go to its regression (the scaling and imputation stay
    unweighted: they centre the inputs, the regression's weights set the rates)."""
    if w is None:
        return model.fit(X, y)
    if hasattr(model, "steps"):
        return model.fit(X, y, **{f"{model.steps[-1][0]}__sample_weight": w})
    return model.fit(X, y, sample_weight=w)

def _reference(X: np.ndarray, w=None) -> np.ndarray:
    """Each column's median (NaN ignored; NaN when a column has no value); with weights
    ``w``, the weighted median (the population's, of a sample)."""
    if w is not None:
        return np.array([_weighted_median(X[:, j], w) for j in range(X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # "All-NaN slice"
        return np.nanmedian(X, axis=0) if len(X) else np.full(X.shape[1], np.nan)


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    """The smallest value of ``x`` (NaN ignored) with at least half the weight at or below
    it (NaN when no value); with equal weights, the lower median."""
    known = ~np.isnan(x)
    if not known.any():
        return np.nan
    x, w = x[known], w[known]
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, cum[-1] / 2)])


def _correlation(X: np.ndarray, w=None) -> np.ndarray:
    """|Pearson correlation| of the columns, median-imputed and signed-log1p'd (0 for a
    constant column); with weights ``w``, weighted."""
    Z = _signed_log1p(MedianImputer().fit_transform(X))
    if w is None:
        Z = Z - Z.mean(axis=0)
    else:
        Z = (Z - np.average(Z, axis=0, weights=w)) * np.sqrt(w)[:, None]
    norm = np.sqrt((Z * Z).sum(axis=0))
    norm[norm == 0] = np.inf
    return np.abs((Z.T @ Z) / np.outer(norm, norm))
