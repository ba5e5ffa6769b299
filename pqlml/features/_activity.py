"""Activity features: events aggregated once to a daily grain, then windowed per cutoff.

Every feature row sees only days strictly before ``as_of``: a grain row of
day ``d`` joins a cutoff when ``as_day - lookback <= d < as_day``, where
``as_day`` is ``as_of`` in whole days since the epoch. The *age* of a day,
``as_day - d``, is 1 for the day before ``as_of``; a window of ``w`` days
holds ages ``1..w``. Cutoffs are midnights UTC, so the daily grain is exact.
"""

from __future__ import annotations

import ibis

from ._specs import Count, feature_name

__all__ = ["to_days", "event_day_grain", "windowed_activity", "active_users", "recency"]

DAY = 86_400
SLOPE_WEEKS = 8


def to_days(ts: ibis.TimestampValue) -> ibis.IntegerValue:
    """Whole days since 1970-01-01 (UTC)."""
    return ts.epoch_seconds() // DAY


def _flag(cond: ibis.BooleanValue) -> ibis.IntegerValue:
    return ibis.ifelse(cond, 1, 0)


def event_day_grain(events: ibis.Table, vocabulary: tuple[str, ...],
                    counts: tuple[Count, ...]) -> ibis.Table:
    """One row per (entity_id, day): all events, one count column per event, custom counts.

    ``events`` has ``entity_id``, ``event`` and ``day``.
    """
    aggs = {"n_all": events.count()}
    for e in vocabulary:
        aggs[f"n__{feature_name(e)}"] = _flag(events.event == e).sum()
    for c in counts:
        aggs[f"c__{c.name}"] = _flag(events.event.isin(c.events)).sum()
    return events.group_by(["entity_id", "day"]).aggregate(**aggs)


def _window_join(spine: ibis.Table, grain: ibis.Table, lookback: int | None) -> ibis.Table:
    preds = [spine.entity_id == grain.entity_id, grain.day < spine.as_day]
    if lookback is not None:
        preds.append(grain.day >= spine.as_day - lookback)
    joined = spine.join(grain, preds)
    return joined.mutate(age=joined.as_day - joined.day)


def windowed_activity(spine: ibis.Table, grain: ibis.Table, *, windows: tuple[int, ...],
                      vocabulary: tuple[str, ...], counts: tuple[Count, ...]) -> ibis.Table:
    """Volumes per window, previous-window volume, active days, weekly slope, custom counts."""
    lookback = max(max(windows), 60, 7 * SLOPE_WEEKS, *(c.window_days for c in counts))
    j = _window_join(spine, grain, lookback)
    m = {}
    for w in windows:
        m[f"events_{w}d"] = j.n_all.sum(where=j.age <= w)
        for e in vocabulary:
            name = feature_name(e)
            m[f"events_{name}_{w}d"] = j[f"n__{name}"].sum(where=j.age <= w)
    m["events_prev_30d"] = j.n_all.sum(where=(j.age > 30) & (j.age <= 60))
    m["active_days_30d"] = _flag(j.age <= 30).sum()
    m["active_days_prev_30d"] = _flag((j.age > 30) & (j.age <= 60)).sum()
    # least-squares slope of the last 8 weekly totals, in events per week per week
    # Weights (centre - week) / ssx, scaled by 2 * ssx to stay integer: engines that
    # do decimal arithmetic on literals (Spark) then agree with DuckDB to the last bit.
    week = (j.age - 1) // 7                       # 0 = the 7 days before as_of
    twice_ssx = 2 * sum((k - (SLOPE_WEEKS - 1) / 2) ** 2 for k in range(SLOPE_WEEKS))
    weighted = j.n_all * ((SLOPE_WEEKS - 1) - 2 * week)
    m["events_weekly_slope_8w"] = (weighted.sum(where=j.age <= 7 * SLOPE_WEEKS).cast("float64")
                                   / int(twice_ssx))
    for c in counts:
        m[c.name] = j[f"c__{c.name}"].sum(where=j.age <= c.window_days)
    return j.group_by(["entity_id", "as_of"]).aggregate(**m)


def active_users(spine: ibis.Table, events: ibis.Table, windows: tuple[int, ...]) -> ibis.Table:
    """Distinct users with any event per window, and in the 30 days before the last 30."""
    user_days = events.select("entity_id", "user_id", "day").distinct()
    j = _window_join(spine, user_days, max(max(windows), 60))
    m = {f"active_users_{w}d": j.user_id.nunique(where=j.age <= w) for w in windows}
    m["active_users_prev_30d"] = j.user_id.nunique(where=(j.age > 30) & (j.age <= 60))
    return j.group_by(["entity_id", "as_of"]).aggregate(**m)


def recency(spine: ibis.Table, grain: ibis.Table) -> ibis.Table:
    """Whole days since the last and the first event before ``as_of`` (1 = the day before)."""
    j = _window_join(spine, grain.select("entity_id", "day"), None)
    return j.group_by(["entity_id", "as_of"]).aggregate(
        days_since_last_event=j.age.min(), days_since_first_event=j.age.max())
