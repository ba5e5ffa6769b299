"""Which way each feature may move the score: more of a usage activity never lowers it,
unless the training rows clearly say it does.

*Usage* columns are read from their names (:func:`is_usage`): an event's volumes, its
previous 30 days, growth and active users (:func:`~pqlml.features._names.event_family`),
the catalog's totals of events, active users, new users and users, events per active user,
the engagement score (weighted usage), breadth and activation progress. Each gets direction +1 (the score never decreases in it), except where a
univariate test on the training rows says clearly that more of it goes with fewer
outcomes: a two-sided Mann-Whitney U test of the column between rows with and without
the outcome, Bonferroni-corrected over the usage columns (``p * m < ALPHA``), with the
rows reaching the outcome ranking lower (AUC < 0.5). Those get -1 (the score never
increases in it), and reasons say so in words. Every other column (firmographics,
categories, recency, tenure) is free (0).

Examples
--------
>>> is_usage("events_invite_sent_30d"), is_usage("events_30d"), is_usage("employees")
(True, True, False)
>>> rng = np.random.default_rng(0)
>>> y = rng.random(2000) < 0.2
>>> X = np.column_stack([rng.poisson(np.where(y, 3, 1)), rng.poisson(np.where(y, 1, 3)),
...                      rng.poisson(2, 2000), rng.normal(size=2000)])
>>> directions(X, y, ["events_a_30d", "events_b_30d", "events_c_30d", "employees"]).tolist()
[1, -1, 1, 0]
"""

from __future__ import annotations

import re

import numpy as np

from ..features._names import event_family

__all__ = ["ALPHA", "is_usage", "directions"]

ALPHA = 0.001
_TOTALS = re.compile(r"(events|active_users|new_users)_(\d+d|prev_30d|velocity_30d)|"
                     r"seven_plus_active_users_30d|events_weekly_slope_8w|distinct_events_30d|users_total|"
                     r"events_per_active_user_30d|engagement_score|"
                     r"activation_stage|activation_checkpoints_passed|activated(_within_\d+d)?")


def is_usage(column: str) -> bool:
    """True for a column that counts (or grows with) product usage."""
    return event_family(column) is not None or bool(_TOTALS.fullmatch(column))


def directions(X: np.ndarray, y: np.ndarray, names) -> np.ndarray:
    """-1, 0 or +1 per column of ``X`` (see the module): +1 for usage columns, -1 for those
    the test finds clearly lowering the outcome ``y`` (1/0), 0 for the others."""
    from scipy.stats import mannwhitneyu

    out = np.array([1 if is_usage(str(n)) else 0 for n in names], dtype=np.int64)
    usage = np.flatnonzero(out)
    y = np.asarray(y).astype(bool)
    if not len(usage) or y.all() or not y.any():
        return out
    Xu = np.asarray(X, float)[:, usage]
    with np.errstate(all="ignore"):
        u, p = mannwhitneyu(Xu[y], Xu[~y], axis=0, method="asymptotic", nan_policy="omit")
    n1, n0 = (~np.isnan(Xu[y])).sum(axis=0), (~np.isnan(Xu[~y])).sum(axis=0)
    auc = np.asarray(u, float) / np.maximum(n1 * n0, 1)
    lowering = (np.nan_to_num(np.asarray(p, float), nan=1.0) * len(usage) < ALPHA) & (auc < 0.5)
    out[usage[lowering]] = -1
    return out
