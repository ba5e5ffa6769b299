"""Model selection forward in time, on the training rows only.

``LeadClassifier(kind="auto")`` chooses its model from :data:`GRID` by rolling-origin
validation inside the rows it is fitted on: each of the latest ``n_splits`` training dates
is a validation date, scored by a candidate fitted on the dates whose outcome window had
closed by then (``date <= validation date - gap_days``); the candidate with the best mean
ROC-AUC over the validation dates wins (ties: the earlier in the grid, the simpler). The
splits are a scikit-learn cross-validation splitter (:class:`ForwardSplit`), so the same
choice can be reproduced with :class:`~sklearn.model_selection.GridSearchCV`.

A backtest fits one model per fold on that fold's training rows, so each fold's choice
sees only its own past: no choice looks at a test period.

The grid (small on purpose: every candidate costs a fit per validation date):

* ``logistic`` at three regularisation strengths, ``C`` = 0.01, 0.1 and 1 (the event
  catalog has a few hundred overlapping columns; strong shrinkage often ranks best);
* ``gradient_boosting``: the additive boosting (any shape per feature).

Examples
--------
>>> dates = np.repeat(pd.date_range("2024-01-01", periods=5, freq="MS"), 2)
>>> [(tr.tolist(), te.tolist()) for tr, te in ForwardSplit(2, gap_days=28).split(dates, groups=dates)]
[([0, 1, 2, 3, 4, 5], [6, 7]), ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import BaseCrossValidator

from ..errors import PqlmlError

__all__ = ["GRID", "ForwardSplit", "select"]

#: The candidates ``kind="auto"`` chooses from, simplest first.
GRID = ({"kind": "logistic", "C": 0.01}, {"kind": "logistic", "C": 0.1},
        {"kind": "logistic", "C": 1.0}, {"kind": "gradient_boosting"})


class ForwardSplit(BaseCrossValidator):
    """Rolling-origin splits over dates: each of the latest ``n_splits`` distinct dates (in
    ``groups``) is validated on by the rows whose date is at least ``gap_days`` earlier.
    Dates without such earlier rows are skipped, so fewer splits may come out."""

    def __init__(self, n_splits: int = 2, *, gap_days: float = 0):
        self.n_splits = n_splits
        self.gap_days = gap_days

    def _dates(self, X, groups) -> pd.Series:
        if groups is None:
            raise PqlmlError("ForwardSplit splits by date: pass the rows' dates as groups.")
        dates = pd.Series(np.asarray(groups)).reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(dates) or dates.dtype == object:
            dates = pd.to_datetime(dates, utc=True)
        return dates

    def split(self, X, y=None, groups=None):
        dates = self._dates(X, groups)
        numeric = not pd.api.types.is_datetime64_any_dtype(dates)
        gap = self.gap_days if numeric else pd.Timedelta(days=self.gap_days)
        distinct = np.sort(dates.unique())
        for day in distinct[-self.n_splits:]:
            train = np.flatnonzero((dates <= day - gap).to_numpy() & (dates < day).to_numpy())
            if len(train):
                yield train, np.flatnonzero((dates == day).to_numpy())

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits if groups is None else sum(1 for _ in self.split(X, y, groups))


def select(make, X: np.ndarray, y: np.ndarray, dates, *, gap_days: float, grid=GRID,
           n_splits: int = 2) -> tuple[dict, list[dict]]:
    """(the chosen candidate of ``grid``, the scores of each): ``make(rows)(**params)``
    builds an unfitted, uncalibrated estimator for the training ``rows`` of a split (what it
    learns before fitting, such as its directions, it learns from those rows alone); each
    is fitted on every :class:`ForwardSplit` training part and scored (ROC-AUC) on its
    validation date (``validated_on``). Splits whose either part has one class only are
    skipped; with none left, the first candidate is chosen (its score None)."""
    splits = [(tr, te) for tr, te in ForwardSplit(n_splits, gap_days=gap_days).split(X, y, dates)
              if 0 < y[tr].sum() < len(tr) and 0 < y[te].sum() < len(te)]
    dates = pd.Series(np.asarray(dates))
    on = [str(dates.iloc[te[0]].date()) if hasattr(dates.iloc[te[0]], "date")
          else str(dates.iloc[te[0]]) for _, te in splits]
    builders = [make(tr) for tr, _ in splits]
    table = []
    for params in grid:
        scores = [float(roc_auc_score(y[te], build(**params).fit(X[tr], y[tr])
                                      .predict_proba(X[te])[:, 1]))
                  for (tr, te), build in zip(splits, builders)]
        table.append({**params, "roc_auc": float(np.mean(scores)) if scores else None,
                      "per_split": scores, "validated_on": on})
    scored = [row for row in table if row["roc_auc"] is not None]
    best = max(scored, key=lambda row: row["roc_auc"]) if scored else table[0]
    return {k: v for k, v in best.items() if k in ("kind", "C")}, table
