"""The schedule and horizon a log's time range allows, and what outcome words mean.

The schedule is chosen so that the backtest has folds: monthly cutoffs with a 28-day
horizon when the log is long enough for three or more folds, else weekly cutoffs with a
14-day horizon; the last cutoff is the last whose label window ``[as_of, as_of +
horizon)`` closes within the data, so no snapshot is censored.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd

from ..backtest import rolling_folds
from ..config import ModelConfig, ScheduleConfig
from ..errors import DataError, PqlmlError
from ..snapshots import schedule_dates, utc

__all__ = ["Schedule", "plan_schedule", "outcome_kind"]

MIN_FOLDS_MONTHLY = 3   # fewer monthly folds than this: weekly cutoffs instead
MIN_TRAIN = 3           # training dates a backtest fold needs (rolling_folds' min_train)


@dataclass(frozen=True)
class Schedule:
    """Cutoffs, horizon and backtest folds for a time range, and how they were chosen."""

    start: dt.date
    end: dt.date
    every: str
    horizon_days: int
    folds: int          # backtest folds the schedule allows
    why: str

    @property
    def dates(self) -> list[dt.date]:
        return schedule_dates(ScheduleConfig(self.start, self.end, self.every))

    @property
    def test_periods(self) -> int:
        return min(ModelConfig().test_periods, self.folds)


def plan_schedule(first, last, *, widest_window: int = 90, where: str = "events") -> Schedule:
    """Cutoffs within ``[first, last]`` (the events' time range) that leave backtest folds.

    Monthly (first-of-month cutoffs, 28-day horizon) from the first month start at least
    ``widest_window`` days after the first event (else at least a month in) when that
    gives three or more folds; otherwise weekly (Mondays, 14-day horizon) from a month in.

    Raises
    ------
    DataError
        The range is too short for even one weekly fold.

    Examples
    --------
    >>> s = plan_schedule("2024-01-03 10:00", "2025-06-29 23:00")
    >>> s.start, s.end, s.every, s.horizon_days, s.test_periods
    (datetime.date(2024, 5, 1), datetime.date(2025, 6, 1), 'month', 28, 6)
    >>> s = plan_schedule("2024-01-01", "2024-05-31")
    >>> s.start, s.end, s.every, s.horizon_days, s.folds
    (datetime.date(2024, 1, 29), datetime.date(2024, 5, 13), 'week', 14, 12)
    """
    first, last = utc(first), utc(last)
    day0 = first.ceil("D")
    span = (last - first).days
    for lead, lead_why in ((widest_window, f"the widest feature window, {widest_window} days"),
                           (30, "a month")):
        start = _month_start_on_or_after(day0 + pd.Timedelta(days=lead))
        end = _last_month_start(last, 28)
        folds = _folds(start, end, "month", 28)
        if folds >= MIN_FOLDS_MONTHLY:
            return Schedule(start, end, "month", 28, folds,
                            f"monthly cutoffs: from the first month start at least {lead_why} "
                            f"after the first event ({first.date()}), to the last whose 28-day "
                            f"label window closes by the last event ({last.date()})")
    start = (day0 + pd.Timedelta(days=28)).date()
    start += dt.timedelta(days=-start.weekday() % 7)          # a Monday
    end_limit = (last - pd.Timedelta(days=14)).date()
    end = start + dt.timedelta(days=7 * max(0, (end_limit - start).days // 7))
    folds = _folds(start, end, "week", 14) if end_limit >= start else 0
    if folds < 1:
        raise DataError(f"{where}: the events span only {span} days ({first.date()} .. "
                        f"{last.date()}); a backtest needs about 10 weeks: weekly cutoffs from a "
                        f"month in, three to train on and one to test whose 14-day label window "
                        f"closes inside the data. Fix: export a longer history.")
    return Schedule(start, end, "week", 14, folds,
                    f"weekly cutoffs with a 14-day horizon: {span} days of events are too few "
                    f"for {MIN_FOLDS_MONTHLY} monthly backtest folds; from the first Monday a "
                    f"month after the first event ({first.date()}) to the last whose label "
                    f"window closes by the last event ({last.date()})")


def _month_start_on_or_after(ts: pd.Timestamp) -> dt.date:
    d = ts.date()
    if d.day == 1:
        return d
    return (pd.Timestamp(d.replace(day=1)) + pd.DateOffset(months=1)).date()


def _last_month_start(last: pd.Timestamp, horizon: int) -> dt.date:
    """The last first-of-month whose ``horizon``-day window ends by ``last``."""
    d = (last - pd.Timedelta(days=horizon)).date().replace(day=1)
    return d


def _folds(start: dt.date, end: dt.date, every: str, horizon: int) -> int:
    if end < start:
        return 0
    dates = schedule_dates(ScheduleConfig(start, end, every))
    try:
        return len(rolling_folds(dates, horizon_days=horizon, test_periods=len(dates),
                                 min_train=MIN_TRAIN))
    except PqlmlError:
        return 0


# Words in an outcome value or event name, checked in this order (snake_case, from a word start).
_WORDS = (("ignore", r"(^|_)(lost|churn|cancel|downgrad|refund|expir|ended|unsubscri|lapsed)"),
          ("hand_raise", r"(^|_)(demo|sales|contact|quote|talk_to|meeting)|trial_request"
                         r"|request(ed)?_(a_)?trial"),
          (None, r"(^|_)trial"),
          ("conversion", r"(^|_)(won|purchas|subscri|upgrad|paid|convert|checkout|payment)"))
_MEANS = {"ignore": "an ending, not a buying action", "hand_raise": "asking sales",
          "conversion": "a purchase", None: "a trial, not a purchase"}


def outcome_kind(value: str) -> tuple[str | None, str]:
    """What an outcome value or event name means by its words: ``conversion``,
    ``hand_raise``, ``ignore`` or None (no keyword), and why.

    Examples
    --------
    >>> [outcome_kind(v)[0] for v in ("subscription_started", "contact_sales_submitted",
    ...                               "trial_ended", "paid_trial_started", "closed_won",
    ...                               "task_created")]
    ['conversion', 'hand_raise', 'ignore', None, 'conversion', None]
    >>> outcome_kind("Closed Lost")[1]
    "'lost' sounds like an ending, not a buying action"
    """
    name = re.sub(r"[^a-z0-9]+", "_", str(value).lower()).strip("_")
    for kind, pattern in _WORDS:
        m = re.search(pattern, name)
        if m:
            word = m.group(0).strip("_")
            return kind, f"{word!r} sounds like {_MEANS[kind]}"
    return None, "no word pqlml knows (won, purchase, subscribe, upgrade, demo, sales, ...)"
