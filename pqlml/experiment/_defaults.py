"""A plan's inputs read from a project: the base conversion rate per period and the touches
sales makes per period."""

from __future__ import annotations

import pandas as pd

from ..errors import DataError

__all__ = ["base_rate_of", "capacity_of"]

def base_rate_of(project, outcome: str | None = None) -> float:
    """The median over the schedule's labelled as_of dates of the share of eligible
    accounts with the outcome (default ``outcomes.target``) in ``[as_of, as_of + horizon)``."""
    outcome = outcome or project.config.outcomes.target
    labels = project.labels()
    labels = labels[labels[outcome].notna()]
    if labels.empty:
        raise DataError("No as_of date of the schedule has a closed label window, so the "
                        "project gives no base rate. Fix: --base-rate P.")
    return float(labels.groupby("as_of")[outcome].mean().median())


def capacity_of(project) -> tuple[int, str]:
    """(accounts touched per period, where that number comes from): the median over the
    schedule's as_of dates of the accounts touched in ``[as_of, as_of + [uplift]
    touch_window_days)`` (:func:`pqlml.uplift.touched`) when the project has a touches
    table, else ``[capacity] per_period``."""
    from ..uplift import per_period, touched

    touches = project.touches()
    fallback = (project.config.capacity.per_period, "[capacity] per_period")
    if touches is None or touches.empty:
        return fallback
    window = project.config.uplift.touch_window_days
    accounts = touches[["account_id"]].astype(str).drop_duplicates()
    grid = pd.concat([accounts.assign(as_of=pd.Timestamp(d, tz="UTC")) for d in project.dates()],
                     ignore_index=True)
    capacity = per_period(grid.as_of.to_numpy(), touched(grid, touches, window_days=window))
    if not capacity:
        return fallback
    return capacity, f"the median of accounts touched within {window} days of each as_of"
