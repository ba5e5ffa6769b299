"""The simple baselines every backtest fits beside the model, on the same folds.

A model earns its place only if it beats what an analyst would write in an afternoon.
Two such models, built from the catalog's names so that they fit any vocabulary:

* ``generic_logistic``: a logistic regression on log1p per-event counts over the last 30
  days and the 30 before, active users now and a month earlier, headcount and vertical
  (the industry's one-hot columns) — the 30-line model of the issue that asked for it.
* ``rfm_logistic``: recency / frequency / monetary, the retail analyst's classic: days since
  the last event, events over the longest window, the numeric event properties summed over
  that window (when the config has any; else the baseline is R and F only, said so in its
  ``columns``) and the account's age.

Both are scikit-learn pipelines (median imputation, signed log1p, standardisation, an L2
logistic regression at scikit-learn's default strength), fitted on the fold's training rows
only; their probabilities are the regression's own (unweighted, so rates).

Examples
--------
>>> cols = ["events_30d", "events_90d", "events_invite_sent_30d", "events_invite_sent_prev_30d",
...         "events_invite_sent_velocity_30d", "active_users_30d", "active_users_prev_30d",
...         "employees", "industry_retail", "days_since_last_event", "account_age_days"]
>>> baseline_columns(cols)["generic_logistic"]   # doctest: +NORMALIZE_WHITESPACE
['events_invite_sent_30d', 'events_invite_sent_prev_30d', 'active_users_30d',
 'active_users_prev_30d', 'employees', 'industry_retail']
>>> baseline_columns(cols)["rfm_logistic"]
['days_since_last_event', 'events_90d', 'account_age_days']
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ..features._names import GROWTH_DAYS, event_family
from ..model._estimators import MedianImputer, _signed_log1p

__all__ = ["BASELINES", "baseline_columns", "fit_baselines"]

#: The baselines' names, as ``metrics.json`` and the report name them.
BASELINES = ("generic_logistic", "rfm_logistic")
_HEADCOUNT = ("employees", "enriched_employees", "stated_employees")
_VERTICAL = re.compile(r"(?:enriched_)?industry_.+")
_TOTAL = re.compile(r"events_(\d+)d")
_SUM = re.compile(r"sum_.+_(\d+)d")
_AGE = ("account_age_days", "tenure_days", "days_since_first_event")


def _first(columns, names) -> list[str]:
    return [n for n in names if n in columns][:1]


def _longest(columns, pattern: re.Pattern) -> list[str]:
    """The columns of ``pattern`` over the longest window present (one per name stem)."""
    found = [(int(m.group(1)), c) for c in columns if (m := pattern.fullmatch(c))]
    if not found:
        return []
    days = max(d for d, _ in found)
    return [c for d, c in found if d == days]


def baseline_columns(columns) -> dict[str, list[str]]:
    """The feature columns each baseline reads, from the catalog's names (empty: absent)."""
    columns = list(columns)
    present = set(columns)
    per_event = [c for c in columns
                 if (f := event_family(c, present)) and f[1] in ("volume", "prev")
                 and f[2] == GROWTH_DAYS]
    generic = (per_event + [c for c in ("active_users_30d", "active_users_prev_30d")
                            if c in present]
               + _first(present, _HEADCOUNT) + [c for c in columns if _VERTICAL.fullmatch(c)])
    rfm = (_first(present, ("days_since_last_event",)) + _longest(columns, _TOTAL)
           + _longest(columns, _SUM) + _first(present, _AGE))
    return {"generic_logistic": generic, "rfm_logistic": rfm}


def _pipeline():
    return make_pipeline(MedianImputer(), FunctionTransformer(_signed_log1p), StandardScaler(),
                         LogisticRegression(max_iter=2000))


def fit_baselines(train: pd.DataFrame, test: pd.DataFrame, outcome: str, *,
                  sample_weight=None) -> dict[str, np.ndarray]:
    """Each baseline with columns, fitted on ``train`` (weighted by ``sample_weight`` when
    it is a sample) and scored on ``test``: name -> probabilities of ``outcome``. A baseline
    whose columns the data lack is left out."""
    out = {}
    for name, cols in baseline_columns(train.columns).items():
        if cols:
            model = _pipeline().fit(train[cols].to_numpy(float), train[outcome].to_numpy(int),
                                    logisticregression__sample_weight=sample_weight)
            out[name] = model.predict_proba(test[cols].to_numpy(float))[:, 1]
    return out
