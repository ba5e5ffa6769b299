"""Logistic regression whose coefficients keep a stated sign: more of a usage activity never
lowers the score unless the data said it should.

scikit-learn's :class:`~sklearn.linear_model.LogisticRegression` has no bounds on its
coefficients, so two overlapping volumes (an event's count and the total it is part of) can
take opposite signs and a reason then shows the side that lowers the score. This estimator
minimises the same objective (L2 penalty, ``C`` as scikit-learn's: ``C * sum(weight *
log-loss) + ||coef||^2 / 2``, the intercept unpenalised) under box constraints on the
coefficients, with SciPy's L-BFGS-B. With no sign given (or none binding) it finds
scikit-learn's coefficients (a test checks them against ``LogisticRegression``).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["SignedLogisticRegression"]


class SignedLogisticRegression(ClassifierMixin, BaseEstimator):
    """Binary L2 logistic regression with sign constraints on its coefficients.

    Parameters
    ----------
    C : float, default=1.0
        Inverse of the L2 penalty's strength, as in scikit-learn's LogisticRegression.
    signs : None or array-like of shape (n_features,) of -1, 0, 1
        The sign each coefficient may take: 1 non-negative, -1 non-positive, 0 free.
        None: every coefficient free (plain L2 logistic regression).
    class_weight : None, "balanced" or dict
        Weights of the classes (multiplying ``sample_weight``), as in scikit-learn.
    max_iter : int, default=1000
        L-BFGS-B iterations at most.
    tol : float, default=1e-8
        Stop when the largest projected gradient entry falls below ``tol``.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> total = rng.poisson(20, 500).astype(float)
    >>> part = total * rng.uniform(0.4, 0.6, 500)          # a component of the total
    >>> y = (rng.random(500) < expit((part - 10) / 3)).astype(int)
    >>> X = np.column_stack([total, part])
    >>> free = SignedLogisticRegression().fit(X, y).coef_[0]
    >>> signed = SignedLogisticRegression(signs=[1, 1]).fit(X, y).coef_[0]
    >>> bool(free[0] < 0), bool((signed >= 0).all())
    (True, True)
    """

    def __init__(self, C=1.0, signs=None, class_weight=None, max_iter=1000, tol=1e-8):
        self.C = C
        self.signs = signs
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X``, two-class ``y`` and optional ``sample_weight``. Returns self."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        target = type_of_target(y, input_name="y")
        if target != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target "
                             f"is {target}.")
        if len(np.unique(y)) != 2:
            raise ValueError(f"SignedLogisticRegression needs 2 classes in y; it has one class "
                             f"only ({np.unique(y)[0]!r}).")
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"The 'C' parameter of SignedLogisticRegression must be a "
                             f"positive number. Got {self.C!r} instead.")
        bounds = self._bounds(X.shape[1])
        self.classes_ = np.unique(y)
        t = (y == self.classes_[1]).astype(float)
        w = _weights(sample_weight, len(y))
        if self.class_weight is not None:
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y,
                                      sample_weight=sample_weight)
            w = w * cw[(y == self.classes_[1]).astype(int)]
        total = w.sum()
        if not total > 0:
            raise ValueError("The sample weights are all zero: SignedLogisticRegression needs a "
                             "positive total sample_weight.")
        w = w / total                      # mean loss; the penalty scaled to match
        alpha = 1.0 / (self.C * total)
        rate = np.clip(np.sum(w * t), 1e-12, 1 - 1e-12)
        start = np.zeros(X.shape[1] + 1)
        start[-1] = np.log(rate / (1 - rate))

        def loss(theta):
            coef, b = theta[:-1], theta[-1]
            m = X @ coef + b
            value = np.sum(w * (np.logaddexp(0, m) - t * m)) + 0.5 * alpha * coef @ coef
            r = w * (expit(m) - t)
            return value, np.append(X.T @ r + alpha * coef, r.sum())

        res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds + [(None, None)],
                       options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-15})
        if not res.success and res.nit >= self.max_iter:
            warnings.warn(f"SignedLogisticRegression did not converge in {self.max_iter} "
                          "iterations; raise max_iter or scale the data.", ConvergenceWarning)
        self.coef_ = res.x[None, :-1].copy()
        self.intercept_ = res.x[-1:].copy()
        self.n_iter_ = int(res.nit)
        return self

    def decision_function(self, X):
        """The log-odds of ``classes_[1]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        positive = self.decision_function(X) > 0           # checks first that it is fitted
        return self.classes_[positive.astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _bounds(self, n: int) -> list:
        if self.signs is None:
            return [(None, None)] * n
        signs = np.asarray(self.signs)
        if signs.shape != (n,) or not np.isin(signs, (-1, 0, 1)).all():
            raise ValueError(f"The 'signs' parameter of SignedLogisticRegression must hold one "
                             f"of -1, 0, 1 per feature ({n}). Got {self.signs!r} instead.")
        return [(0.0, None) if s > 0 else (None, 0.0) if s < 0 else (None, None) for s in signs]


def _weights(sample_weight, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        return np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"The 'sample_weight' parameter of SignedLogisticRegression must have "
                         f"shape ({n},). Got shape {w.shape} instead.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("The 'sample_weight' parameter of SignedLogisticRegression must be "
                         "finite and non-negative.")
    return w
