"""Are the arms alike before the assignment? Standardised mean differences of features.

A randomised holdout's arms differ only by chance. A feature is flagged when its
standardised mean difference ``(mean_touch - mean_holdout) / sqrt((var_touch +
var_holdout) / 2)`` exceeds 0.1 in absolute value (the usual threshold of the matching
literature, Austin 2009) *and* the difference is beyond chance among all the features
compared (two-sided Welch z-test, Bonferroni: p < alpha / features): with 200 features and
1,000 accounts an arm, chance alone puts about four beyond 0.1, which is no sign of a
broken randomisation; a flagged feature is one (or an arm chosen knowing the account).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["standardised_differences", "IMBALANCE"]

#: |SMD| above which a feature is flagged as imbalanced.
IMBALANCE = 0.1


def standardised_differences(frame: pd.DataFrame, features, *, arm: str = "arm",
                             alpha: float = 0.05) -> pd.DataFrame:
    """The arms' means and standardised mean difference per numeric feature.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per assignment: ``arm`` (``touch`` / ``holdout``) and the features, as
        they were just before the assignment.
    features : list of str
        Columns to compare; non-numeric and constant ones are left out.
    alpha : float
        Family-wise level of the chance check (Bonferroni over the features compared).

    Returns
    -------
    pandas.DataFrame
        ``feature, mean_touch, mean_holdout, smd, p_value, imbalanced``, the largest
        ``|smd|`` first.

    Examples
    --------
    >>> f = pd.DataFrame({"arm": ["touch", "touch", "holdout", "holdout"],
    ...                   "events_30d": [4.0, 6.0, 4.0, 6.0], "users": [3, 5, 1, 3]})
    >>> standardised_differences(f, ["events_30d", "users"])[["feature", "smd"]].round(3)
          feature    smd
    0       users  1.414
    1  events_30d  0.000
    """
    touch = frame[arm] == "touch"
    rows = []
    for name in features:
        x = frame[name]
        if not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)):
            continue
        x = x.astype(float)
        a, b = x[touch], x[~touch]
        spread = np.sqrt((a.var() + b.var()) / 2)
        if not spread > 0:
            continue
        z = (a.mean() - b.mean()) / np.sqrt(a.var() / len(a) + b.var() / len(b))
        rows.append({"feature": name, "mean_touch": a.mean(), "mean_holdout": b.mean(),
                     "smd": (a.mean() - b.mean()) / spread,
                     "p_value": float(2 * norm.sf(abs(z))) if np.isfinite(z) else 1.0})
    table = pd.DataFrame(rows, columns=["feature", "mean_touch", "mean_holdout", "smd",
                                        "p_value"])
    table["imbalanced"] = (table.smd.abs() > IMBALANCE) & \
        (table.p_value < alpha / max(len(table), 1))
    order = table.smd.abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order].reset_index(drop=True)
