"""Are the arms alike before the assignment? Standardised mean differences of features.

A randomised holdout's arms differ only by chance; a feature whose standardised mean
difference ``(mean_touch - mean_holdout) / sqrt((var_touch + var_holdout) / 2)`` exceeds
0.1 in absolute value (the usual threshold of the matching literature, Austin 2009) is
flagged: a broken randomisation, or an arm chosen with knowledge of the account.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["standardised_differences", "IMBALANCE"]

#: |SMD| above which a feature is flagged as imbalanced.
IMBALANCE = 0.1


def standardised_differences(frame: pd.DataFrame, features, *, arm: str = "arm") -> pd.DataFrame:
    """The arms' means and standardised mean difference per numeric feature.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per assignment: ``arm`` (``touch`` / ``holdout``) and the features, as
        they were just before the assignment.
    features : list of str
        Columns to compare; non-numeric and constant ones are left out.

    Returns
    -------
    pandas.DataFrame
        ``feature, mean_touch, mean_holdout, smd, imbalanced``, the largest ``|smd|``
        first.

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
        rows.append({"feature": name, "mean_touch": a.mean(), "mean_holdout": b.mean(),
                     "smd": (a.mean() - b.mean()) / spread})
    table = pd.DataFrame(rows, columns=["feature", "mean_touch", "mean_holdout", "smd"])
    table["imbalanced"] = table.smd.abs() > IMBALANCE
    order = table.smd.abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order].reset_index(drop=True)
