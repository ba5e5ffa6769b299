"""The incremental conversion rate of a randomised holdout: assignments and outcomes in,
effects with confidence intervals out.

One row per assignment (an account may be assigned in several periods): its ``arm``
(``touch`` or ``holdout``) and its ``outcome`` (1 converted within the horizon, else 0).
The effect is ``rate(touch) - rate(holdout)``: the coefficient of a linear probability
model ``outcome ~ 1 + touch`` (statsmodels OLS) with cluster-robust standard errors by
account (CR1), so that an account assigned in several periods counts as one cluster, not
as independent rows; the CI and p-value are normal (Wald). Its coverage of the true
average effect is checked by a seeded simulation in ``tests/test_experiment.py``. The
estimate is the average effect over the assigned rows as long as each period holds out the
same share (randomisation at a constant share).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["ARMS", "POOLED", "EFFECT_COLUMNS", "estimate_effects", "effect_of", "mean_ci"]

ARMS = ("touch", "holdout")
#: The segment name of the pooled row.
POOLED = "all"
EFFECT_COLUMNS = ("segment", "n_touch", "n_holdout", "accounts", "conversions_touch",
                  "conversions_holdout", "rate_touch", "rate_holdout", "effect", "ci_low",
                  "ci_high", "p_value", "per_100_touches", "incremental_conversions", "note")


def effect_of(outcome, touch, groups, *, alpha: float = 0.05) -> dict:
    """The effect of one group of rows: ``outcome`` (0/1), ``touch`` (bool) and ``groups``
    (the account of each row, the clusters), as numpy arrays or Series.

    Examples
    --------
    >>> y = np.array([1, 0, 0, 1, 0, 0, 0, 0]); t = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    >>> e = effect_of(y, t, np.arange(8))
    >>> e["rate_touch"], e["rate_holdout"], e["effect"]
    (0.5, 0.0, 0.5)
    >>> round(e["ci_low"], 3) < 0.5 < round(e["ci_high"], 3)
    True
    """
    import statsmodels.api as sm

    y, t = np.asarray(outcome, dtype=float), np.asarray(touch, dtype=bool)
    codes = pd.factorize(np.asarray(groups))[0]
    n1, n0 = int(t.sum()), int((~t).sum())
    out = {"n_touch": n1, "n_holdout": n0, "accounts": int(codes.max() + 1) if len(codes) else 0,
           "conversions_touch": int(y[t].sum()), "conversions_holdout": int(y[~t].sum()),
           "rate_touch": float(y[t].mean()) if n1 else np.nan,
           "rate_holdout": float(y[~t].mean()) if n0 else np.nan,
           "effect": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "note": ""}
    if not n1 or not n0:
        return out | {"note": f"no {'touch' if not n1 else 'holdout'} rows"}
    effect = out["rate_touch"] - out["rate_holdout"]
    out["effect"] = effect
    if y.min() == y.max():
        return out | {"ci_low": effect, "ci_high": effect,
                      "note": "every row has the same outcome: no spread to measure"}
    design = np.column_stack([np.ones(len(y)), t.astype(float)])
    fit = sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": codes})
    low, high = fit.conf_int(alpha=alpha)[1]
    return out | {"ci_low": float(low), "ci_high": float(high),
                  "p_value": float(fit.pvalues[1])}


def mean_ci(values, groups, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, CI low, CI high) of ``values`` whose rows are clustered by ``groups`` (an
    account's rows in several periods are one cluster): the mean as an OLS on a constant with
    cluster-robust standard errors (CR1), the same inference as :func:`effect_of`. For the
    mean of AIPW pseudo-outcomes this is the influence-function CI, which does not depend on
    a number of bootstrap draws (a percentile CI from 50 draws of a heavy-tailed mean is too
    narrow).

    >>> m, low, high = mean_ci([0.0, 1.0, 0.0, 1.0], [1, 1, 2, 3])
    >>> m, bool(low < 0.5 < high)
    (0.5, True)
    """
    import statsmodels.api as sm

    y = np.asarray(values, dtype=float)
    if len(y) < 2 or y.min() == y.max():
        m = float(y.mean()) if len(y) else np.nan
        return m, m, m
    codes = pd.factorize(np.asarray(groups))[0]
    fit = sm.OLS(y, np.ones((len(y), 1))).fit(cov_type="cluster", cov_kwds={"groups": codes})
    low, high = fit.conf_int(alpha=alpha)[0]
    return float(fit.params[0]), float(low), float(high)


def estimate_effects(assignments: pd.DataFrame, *, segment: str | None = None,
                     alpha: float = 0.05) -> pd.DataFrame:
    """Per segment and pooled: conversion per arm and the incremental rate with its CI.

    Parameters
    ----------
    assignments : pandas.DataFrame
        ``account_id``, ``arm`` (``touch`` / ``holdout``) and ``outcome`` (0/1), one row
        per assignment; ``segment`` names a column to split by.
    segment : str, optional
        The column of segments (none: the pooled row only).
    alpha : float
        1 - the CI's confidence.

    Returns
    -------
    pandas.DataFrame
        :data:`EFFECT_COLUMNS`: the pooled row (segment ``"all"``) first, then one per
        segment. ``per_100_touches``: incremental conversions per 100 touches (100 x
        effect); ``incremental_conversions``: effect x touched rows. A segment with an
        empty arm has no effect (``note`` says so).

    Raises
    ------
    DataError
        A column is missing, an arm is unknown, an outcome is not 0/1, or an arm is empty.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> arm = np.where(rng.random(4000) < 0.5, "touch", "holdout")
    >>> p = np.where(arm == "touch", 0.15, 0.10)
    >>> frame = pd.DataFrame({"account_id": np.arange(4000), "arm": arm,
    ...                       "outcome": (rng.random(4000) < p).astype(int),
    ...                       "segment": np.where(np.arange(4000) % 2, "smb", "mid_market")})
    >>> e = estimate_effects(frame, segment="segment")
    >>> e.segment.tolist()
    ['all', 'mid_market', 'smb']
    >>> bool(e.ci_low[0] < 0.05 < e.ci_high[0]), bool(e.p_value[0] < 0.01)
    (True, True)
    """
    frame = _checked(assignments, segment)
    rows = [{"segment": POOLED} | effect_of(frame.outcome, frame.arm == "touch",
                                            frame.account_id, alpha=alpha)]
    if rows[0]["note"].startswith("no "):
        raise DataError(f"The randomised holdout has {rows[0]['note']}: an effect needs both "
                        "arms. Fix: check the holdouts table's arm column (touch / holdout) "
                        "or the experiment chosen.")
    if segment is not None:
        for name, g in frame.groupby(segment, sort=True, dropna=False):
            name = "(none)" if pd.isna(name) else str(name)
            rows.append({"segment": name} | effect_of(g.outcome, g.arm == "touch",
                                                      g.account_id, alpha=alpha))
    table = pd.DataFrame(rows)
    table["per_100_touches"] = 100 * table.effect
    table["incremental_conversions"] = table.effect * table.n_touch
    return table[list(EFFECT_COLUMNS)]


def _checked(frame: pd.DataFrame, segment: str | None) -> pd.DataFrame:
    need = ["account_id", "arm", "outcome"] + ([segment] if segment else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(f"The assignments lack column(s) {', '.join(map(repr, missing))}. "
                        "Fix: one row per assignment with account_id, arm and outcome.")
    arms = set(frame.arm.dropna().unique()) - set(ARMS)
    if arms or frame.arm.isna().any():
        raise DataError(f"The assignments' arm column holds {sorted(map(str, arms)) or 'nulls'}; "
                        "arms are 'touch' or 'holdout'. Fix: map the arm values to those.")
    y = pd.to_numeric(frame.outcome, errors="coerce")
    if y.isna().any() or not y.isin([0, 1]).all():
        raise DataError("The assignments' outcome column must hold 0 or 1 in every row. "
                        f"Got {int((~y.isin([0, 1])).sum()):,} other values. Fix: leave out "
                        "rows whose outcome is unknown (censored) before estimating.")
    return frame.assign(outcome=y.astype(int))
