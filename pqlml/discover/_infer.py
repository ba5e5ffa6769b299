"""Multivariate inference with statsmodels: does a signal survive controlling for the others?

:func:`adjusted_effects` fits a logistic model of the outcome on chosen
features and returns a tidy table (coefficient, odds ratio, 95% CI, p-value,
VIF). Snapshots repeat accounts, so standard errors are clustered by account.
Counts can enter as ``log1p`` and every column can be standardised (effects per
standard deviation). Perfect or quasi-separation (a feature that predicts the
outcome almost perfectly) makes maximum likelihood diverge: it is detected and
the model is refitted with an L2 penalty, loudly (``warnings`` and the
``method`` column say so; a penalised fit has no p-values).

:func:`side_by_side` puts each feature's univariate effect beside its adjusted
effect, so a distractor that only rides on company size is visible. Adjusted
p-values get Benjamini-Hochberg q-values across the model's features.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

__all__ = ["TRANSFORM_FUNCTIONS", "design", "adjusted_effects", "side_by_side"]

VIF_WARN = 10.0
_SEPARATED = 15.0      # |coef| of a standardised feature beyond this is quasi-separation


TRANSFORM_FUNCTIONS = {"identity": lambda v: v, "log1p": np.log1p, "sqrt": np.sqrt,
                       "log10": lambda v: np.log10(v.clip(lower=1)),
                       "indicator": lambda v: (v > 0).astype(float)}


def design(frame: pd.DataFrame, features, *, log_counts: bool = True, standardise: bool = True,
           transforms: dict | None = None) -> pd.DataFrame:
    """The model matrix: each feature transformed (``transforms[name]``: identity, log1p,
    sqrt, log10 or indicator (> 0); else ``log1p`` for non-negative counts when ``log_counts``), missing
    values set to the median, then z-scores (if asked)."""
    X = frame[list(features)].apply(pd.to_numeric, errors="coerce").astype(float)
    X = X.fillna(X.median())
    transforms = transforms or {}
    for c in X.columns:
        v = X[c]
        if c in transforms:
            X[c] = TRANSFORM_FUNCTIONS[transforms[c]](v)
        elif log_counts and v.min() >= 0 and v.max() > 1 and (v == v.round()).all():
            X[c] = np.log1p(v)
    if standardise:
        sd = X.std(ddof=0).replace(0, np.nan)
        X = (X - X.mean()) / sd
    return X


def _groups(frame: pd.DataFrame, cluster: str | None):
    return None if cluster is None else pd.factorize(frame[cluster])[0]


def adjusted_effects(frame: pd.DataFrame, outcome: str, features, *, cluster: str | None =
                     "account_id", log_counts: bool = True, standardise: bool = True,
                     transforms: dict | None = None, alpha: float = 0.05
                     ) -> tuple[pd.DataFrame, list[str]]:
    """The tidy table of a logistic model and the warnings met while fitting it."""
    X = design(frame, features, log_counts=log_counts, standardise=standardise,
               transforms=transforms)
    constant = [c for c in X.columns if not np.isfinite(X[c]).all() or X[c].nunique() < 2]
    notes = [f"{c} is constant in these rows: left out of the model" for c in constant]
    X = sm.add_constant(X.drop(columns=constant), has_constant="add")
    X, dependent = _full_rank(X)
    notes += [f"{c} is a linear combination of the features before it (e.g. a ratio of them, "
              f"or the last of a set of one-hot columns): left out of the model"
              for c in dependent]
    y = frame[outcome].astype(float).to_numpy()
    fit, method, more = _fit(y, X, _groups(frame, cluster))
    notes += more
    table = _tidy(fit, X, method, alpha)
    vif = _vif(X)
    table["vif"] = table.feature.map(vif)
    notes += [f"{f} has VIF {v:.1f} (> {VIF_WARN:g}): collinear with other features, its "
              f"effect is not separable from theirs" for f, v in vif.items() if v > VIF_WARN]
    return table, notes


def _full_rank(X: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep columns in order while each adds rank; the others are exactly collinear.
    (Rank of the small Gram matrix X'X, not of X: the same rank, k x k work.)"""
    values = X.to_numpy(float)
    gram = values.T @ values
    keep, dependent = [], []
    for i, c in enumerate(X.columns):
        idx = keep + [i]
        sub = gram[np.ix_(idx, idx)]
        if np.linalg.matrix_rank(sub, tol=1e-9 * max(1.0, np.abs(sub).max())) == len(idx):
            keep.append(i)
        else:
            dependent.append(c)
    return X.iloc[:, keep], dependent


def _fit(y, X, groups):
    """Maximum likelihood with clustered errors; on (quasi-)separation an L2-penalised refit."""
    model = sm.Logit(y, X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kw = {"cov_type": "cluster", "cov_kwds": {"groups": groups}} if groups is not None \
                else {}
            fit = model.fit(disp=0, maxiter=200, **kw)
            separated = any(issubclass(w.category, (PerfectSeparationWarning, ConvergenceWarning))
                            for w in caught) or np.abs(fit.params.iloc[1:]).max() > _SEPARATED
        except (np.linalg.LinAlgError, ValueError):      # singular Hessian: separation
            separated = True
    if not separated:
        return fit, "maximum likelihood" + (", errors clustered by account" if groups is not
                                             None else ""), []
    glm = sm.GLM(y, X, family=sm.families.Binomial())
    fit = glm.fit_regularized(alpha=1.0 / len(y), L1_wt=0.0, maxiter=500)
    return fit, "L2-penalised (separation)", [
        "(quasi-)separation: a feature (nearly) determines the outcome, so maximum likelihood "
        "diverges. Refitted with an L2 penalty; the coefficients are shrunk and have no "
        "p-values. Look for a feature that is the outcome in disguise (outcome-adjacent)."]


def _tidy(fit, X, method, alpha) -> pd.DataFrame:
    params = pd.Series(np.asarray(fit.params), index=X.columns)
    if method.startswith("L2"):
        low = high = p = pd.Series(np.nan, index=X.columns)
    else:
        ci = fit.conf_int(alpha)
        low, high = pd.Series(np.asarray(ci)[:, 0], X.columns), pd.Series(np.asarray(ci)[:, 1],
                                                                          X.columns)
        p = pd.Series(np.asarray(fit.pvalues), index=X.columns)
    t = pd.DataFrame({"feature": X.columns, "coef": params.values, "odds_ratio": np.exp(params),
                      "or_low": np.exp(low), "or_high": np.exp(high), "p_value": p.values,
                      "method": method})
    t = t[t.feature != "const"].reset_index(drop=True)
    ok = t.p_value.notna()
    t["q_value"] = np.nan
    if ok.any():
        t.loc[ok, "q_value"] = multipletests(t.p_value[ok], method="fdr_bh")[1]
    return t


def _vif(X: pd.DataFrame) -> dict[str, float]:
    """Variance inflation factors: the diagonal of the inverse correlation matrix (the
    same as statsmodels' one regression per feature, at a fraction of the cost)."""
    cols = [c for c in X.columns if c != "const"]
    if len(cols) < 2:
        return {c: 1.0 for c in cols}
    corr = np.corrcoef(X[cols].to_numpy(float), rowvar=False)
    return dict(zip(cols, np.diag(np.linalg.pinv(corr)).astype(float)))


def side_by_side(frame: pd.DataFrame, outcome: str, features, **kw) -> tuple[pd.DataFrame,
                                                                             list[str]]:
    """Univariate and adjusted odds ratios per feature, and whether the effect vanishes."""
    alpha = kw.get("alpha", 0.05)
    adjusted, notes = adjusted_effects(frame, outcome, features, **kw)
    uni = []
    for f in adjusted.feature:
        one, _ = adjusted_effects(frame, outcome, [f], **kw)
        uni.append(one.iloc[0])
    uni = pd.DataFrame(uni)[["feature", "odds_ratio", "or_low", "or_high", "p_value"]]
    out = uni.merge(adjusted[["feature", "odds_ratio", "or_low", "or_high", "p_value", "q_value",
                              "vif"]],
                    on="feature", suffixes=("_alone", "_adjusted"))
    out = out.rename(columns={"q_value": "q_value_adjusted"})
    out["vanishes"] = (out.p_value_alone < alpha) & ~(out.q_value_adjusted <= alpha)
    return out, notes
