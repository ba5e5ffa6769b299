"""A plan's inputs read from a project: the base conversion rate per period and the touches
sales makes per period."""

from __future__ import annotations

import pandas as pd

from ..errors import DataError

__all__ = ["base_rate_of", "capacity_of", "TOUCH_WINDOW_DAYS"]

#: A snapshot is touched when a touch falls in [as_of, as_of + this many days), unless the
#: config's ``[uplift] touch_window_days`` says otherwise.
TOUCH_WINDOW_DAYS = 14


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


def _window(project) -> int:
    uplift = getattr(project.config, "uplift", None)
    return int(getattr(uplift, "touch_window_days", TOUCH_WINDOW_DAYS))


def capacity_of(project) -> tuple[int, str]:
    """(accounts touched per period, where that number comes from): the median over the
    schedule's as_of dates of the accounts with a touch in ``[as_of, as_of + touch window)``
    when the project has a touches table, else ``[capacity] per_period``."""
    reader = getattr(project, "touches", None)
    touches = reader() if reader is not None else None
    fallback = (project.config.capacity.per_period, "[capacity] per_period")
    if touches is None or touches.empty:
        return fallback
    days = pd.DatetimeIndex([pd.Timestamp(d, tz="UTC") for d in project.dates()])
    at = pd.to_datetime(touches["at"], utc=True)
    window = pd.Timedelta(days=_window(project))
    counts = [touches.account_id[(at >= d) & (at < d + window)].nunique() for d in days]
    counts = [c for c in counts if c]
    if not counts:
        return fallback
    return int(pd.Series(counts).median()), (f"the median of accounts touched within "
                                             f"{_window(project)} days of each as_of")
