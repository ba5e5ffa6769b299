"""The spine: one row per (entity_id, as_of) that features and labels are built for.

An ``as_of`` is a cutoff at midnight UTC: features see only what happened
before it, labels only what happened after it. Features are day-grained, so an
``as_of`` is always a whole date. An entity (account or user) is on the spine
for an ``as_of`` only if it existed strictly before it (``created_at < as_of``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

import ibis
import ibis.expr.datatypes as dtypes
import numpy as np
import pandas as pd

from pqlml.errors import DataError, PqlmlError

__all__ = ["schedule_dates", "data_schedule", "as_dates", "utc", "build_spine", "entities_from_tables",
           "check_as_of"]

UTC = dtypes.Timestamp(timezone="UTC")
ENTITIES = ("account", "user")
_EVERY = re.compile(r"([1-9][0-9]*)d")
_AS_OF = ("a date, a list of dates, or a table (pandas or ibis) with columns entity_id "
          "and as_of")


def schedule_dates(schedule) -> list[dt.date]:
    """The as_of dates of a :class:`~pqlml.config.ScheduleConfig`, from start to end.

    ``every = "month"``: ``start`` and the same day of each later month,
    clamped to the month's last day (start 2024-01-31 gives 2024-02-29, then
    2024-03-31); start on the 1st for month starts. ``"week"``: every 7 days
    from ``start``. ``"<N>d"``: every N days from ``start``. ``end`` is
    included when it falls on the grid.

    Raises
    ------
    PqlmlError
        ``start`` or ``end`` is missing, ``end`` is before ``start``, or
        ``every`` is not ``"month"``, ``"week"`` or ``"<N>d"``.

    Examples
    --------
    >>> from pqlml.config import ScheduleConfig
    >>> def show(start, end, every):
    ...     print(*schedule_dates(ScheduleConfig(start, end, every)))
    >>> show(dt.date(2024, 1, 31), dt.date(2024, 4, 30), "month")
    2024-01-31 2024-02-29 2024-03-31 2024-04-30
    >>> show(dt.date(2024, 1, 1), dt.date(2024, 1, 15), "week")
    2024-01-01 2024-01-08 2024-01-15
    """
    start, end, every = schedule.start, schedule.end, schedule.every
    for key, value in (("start", start), ("end", end)):
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise PqlmlError(f"The 'schedule.{key}' setting must be a date to build as_of dates. "
                             f"Got {value!r} instead. Fix: set it in pqlml.toml, e.g.\n"
                             f"[schedule]\nstart = 2024-02-01\nend = 2025-06-01\n(in "
                             f"Python: open_project(..., schedule={{'start': '2024-02-01', "
                             f"'end': '2025-06-01'}})).")
    if end < start:
        raise PqlmlError(f"The 'schedule.end' setting ({end}) is before 'schedule.start' "
                         f"({start}). Fix: swap them, or move end after start.")
    if every == "month":
        dates, k = [], 0
        while (d := (pd.Timestamp(start) + pd.DateOffset(months=k)).date()) <= end:
            dates.append(d)
            k += 1
        return dates
    match = _EVERY.fullmatch(every) if isinstance(every, str) else None
    if every != "week" and match is None:
        raise PqlmlError(f"The 'schedule.every' setting must be \"month\", \"week\" or \"<N>d\" "
                         f"with N a positive integer. Got {every!r} instead. Fix: e.g. "
                         f'every = "14d".')
    step = 7 if every == "week" else int(match.group(1))
    return [start + dt.timedelta(days=i) for i in range(0, (end - start).days + 1, step)]


def data_schedule(schedule, data_start, data_end, *, widest_window: int, horizon_days: int):
    """``schedule`` with a missing ``start`` / ``end`` taken from the data's range (the
    default of a config built in memory, :func:`pqlml.open_project`; a ``pqlml.toml``
    states its schedule).

    ``start``: the first month start at least ``widest_window`` days after the first event
    (every feature window is then full), else the first at least 30 days after it;
    ``end``: the last day whose ``horizon_days`` label window closes by the last event,
    so no scheduled snapshot is censored. ``every`` is kept. A range too short for that
    leaves the dates missing (:func:`schedule_dates` then says to set them).

    Examples
    --------
    >>> from pqlml.config import ScheduleConfig
    >>> s = data_schedule(ScheduleConfig(), "2024-01-03 10:00", "2024-09-20",
    ...                   widest_window=90, horizon_days=28)
    >>> s.start, s.end, s.every
    (datetime.date(2024, 5, 1), datetime.date(2024, 8, 23), 'month')
    >>> print(*schedule_dates(s))
    2024-05-01 2024-06-01 2024-07-01 2024-08-01
    >>> data_schedule(s, "2020-01-01", "2030-01-01", widest_window=90, horizon_days=28) == s
    True
    """
    from dataclasses import replace

    first, last = utc(data_start), utc(data_end)
    end = schedule.end or (last - pd.Timedelta(days=horizon_days)).date()
    start = schedule.start
    for lead in (widest_window, 30):
        if start is not None:
            break
        day = (first.ceil("D") + pd.Timedelta(days=lead)).date()
        month = day if day.day == 1 else (pd.Timestamp(day.replace(day=1))
                                          + pd.DateOffset(months=1)).date()
        start = month if month <= end else None
    if start is None or end < start:
        return schedule
    return replace(schedule, start=start, end=end)


def _check_entity(entity, func: str) -> None:
    if entity not in ENTITIES:
        raise PqlmlError(f"The 'entity' parameter of {func} must be one of "
                         f"{', '.join(map(repr, ENTITIES))}. Got {entity!r} instead.")


def as_dates(as_of, *, func: str = "") -> list[dt.date]:
    """The one reading of an ``as_of`` argument: a date, an ISO date string, a midnight-UTC
    datetime (or a list of them) as sorted, distinct dates; anything else is an error.

    Examples
    --------
    >>> as_dates("2024-02-01"), as_dates([pd.Timestamp("2024-03-01", tz="UTC"), "2024-02-01"])
    ([datetime.date(2024, 2, 1)], [datetime.date(2024, 2, 1), datetime.date(2024, 3, 1)])
    """
    dates = [as_of] if isinstance(as_of, (dt.date, str, np.datetime64)) else as_of
    if isinstance(dates, Iterable) and not isinstance(dates, str):
        dates = list(dates)
    if not isinstance(dates, list) or not dates:
        raise PqlmlError(f"The 'as_of' parameter{f' of {func}' if func else ''} must be "
                         f"{_AS_OF}. Got {as_of!r} instead.")
    return sorted({_as_date(d) for d in dates})


def _as_date(value) -> dt.date:
    """A date, an ISO date string, or a midnight-UTC datetime, as a date; else an error."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise PqlmlError(f"The 'as_of' parameter must be a date written YYYY-MM-DD. "
                             f"Got {value!r} instead.") from None
    if isinstance(value, dt.datetime):
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        if ts != ts.normalize():
            raise PqlmlError(f"as_of {value} has a time of day; features are day-grained, so "
                             f"every as_of is a date (midnight UTC). Fix: pass {ts.date()} or "
                             f"{ts.date() + dt.timedelta(days=1)}.")
        return ts.date()
    if isinstance(value, dt.date):
        return value
    raise PqlmlError(f"The 'as_of' parameter of build_spine must be {_AS_OF}. "
                     f"Got {value!r} instead.")


def _dates_table(dates: list[dt.date]) -> ibis.Table:
    stamps = pd.to_datetime(pd.Series(dates, dtype="object")).dt.tz_localize("UTC")
    return ibis.memtable(pd.DataFrame({"as_of": stamps.astype("datetime64[us, UTC]")}))


def build_spine(entities: ibis.Table, *, as_of, entity: str = "account") -> ibis.Table:
    """The (entity_id, as_of) rows to build features and labels for.

    Parameters
    ----------
    entities : ibis.Table
        ``entity_id`` and ``created_at`` (see :func:`entities_from_tables`).
    as_of : date, list of dates, pandas.DataFrame or ibis.Table
        Cutoff dates (midnight UTC): each entity gets a row for each date it
        existed strictly before (``created_at < as_of``). A table of explicit
        ``(entity_id, as_of)`` rows is checked and passed through as is.
    entity : {"account", "user"}
        What ``entity_id`` identifies; named in messages.

    Returns
    -------
    ibis.Table
        ``entity_id`` (string), ``as_of`` (UTC timestamp at midnight).

    Raises
    ------
    PqlmlError
        ``as_of`` is not a date, list of dates or table, or has a time of day.
    DataError
        A table lacks a column, or an explicit spine has nulls or repeated rows.

    Examples
    --------
    >>> accounts = ibis.memtable({"entity_id": ["a1", "a2"], "created_at": pd.to_datetime(
    ...     ["2024-01-05", "2024-02-01"], utc=True)})
    >>> spine = build_spine(accounts, as_of=[dt.date(2024, 2, 1), dt.date(2024, 3, 1)])
    >>> spine.order_by(["as_of", "entity_id"]).execute()["entity_id"].tolist()
    ['a1', 'a1', 'a2']
    """
    _check_entity(entity, "build_spine")
    if isinstance(as_of, (pd.DataFrame, ibis.Table)):
        return _explicit_spine(ibis.memtable(as_of) if isinstance(as_of, pd.DataFrame) else as_of)
    dates = as_dates(as_of, func="build_spine")
    _require(entities, ("entity_id", "created_at"), f"the {entity} entities")
    e = entities.select(entity_id=entities.entity_id.cast("string"),
                        created_at=entities.created_at.cast(UTC))
    d = _dates_table(dates).select(as_of=ibis._.as_of.cast(UTC))
    spine = e.cross_join(d)
    return spine.filter(spine.created_at < spine.as_of).select("entity_id", "as_of")


def _require(t: ibis.Table, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in t.columns]
    if missing:
        raise DataError(f"{what} lack column(s) {', '.join(map(repr, missing))}; columns "
                        f"present: {', '.join(map(repr, t.columns))}. Fix: provide "
                        f"{', '.join(map(repr, columns))}.")


def _explicit_spine(t: ibis.Table) -> ibis.Table:
    _require(t, ("entity_id", "as_of"), "the explicit spine (as_of table)")
    typ = t.as_of.type()
    if not (typ.is_timestamp() or typ.is_date()):
        raise DataError(f"the explicit spine's as_of column has type {typ}; it must hold dates "
                        f"(midnight UTC). Fix: convert it, e.g. "
                        f"pd.to_datetime(df.as_of, utc=True).")
    s = t.select(entity_id=t.entity_id.cast("string"), as_of=t.as_of.cast(UTC))
    stats = s.aggregate(n=s.count(), nulls=(s.entity_id.isnull() | s.as_of.isnull()).sum(),
                        timed=(s.as_of.truncate("D") != s.as_of).sum()).execute().iloc[0]
    keys = s.select("entity_id", "as_of").distinct().count().execute()
    if stats["timed"]:
        ex = s.filter(s.as_of.truncate("D") != s.as_of).as_of.min().execute()
        raise PqlmlError(f"the explicit spine has {int(stats['timed']):,} as_of values with a time "
                         f"of day in UTC (e.g. {ex}); features are day-grained, so every as_of is "
                         f"a date at midnight UTC. Fix: pass dates, e.g. df.as_of.dt.normalize().")
    if stats["nulls"]:
        raise DataError(f"the explicit spine has {int(stats['nulls']):,} rows with a null "
                        f"entity_id or as_of. Fix: remove those rows.")
    if keys != stats["n"]:
        raise DataError(f"the explicit spine has {int(stats['n'] - keys):,} repeated "
                        f"(entity_id, as_of) rows. Fix: keep one of each, e.g. "
                        f"df.drop_duplicates().")
    return s


def entities_from_tables(tables: dict, entity: str = "account",
                         events_with_accounts: ibis.Table | None = None) -> ibis.Table:
    """The entities a spine is built from: ``entity_id`` and ``created_at``.

    Accounts come from the accounts table (``account_id``, ``created_at``);
    without one, from ``events_with_accounts`` (:func:`pqlml.identity.account_events`
    output): each account with an event, created at its first event. Users come
    from the users table (``user_id``, ``signup_at``); without one, from
    ``tables["events"]``: each user created at their first event.

    Examples
    --------
    >>> ev = ibis.memtable({"ts": pd.to_datetime(["2024-01-02", "2024-01-01"], utc=True),
    ...                     "account_id": ["a1", "a1"]})
    >>> entities_from_tables({}, "account", ev).execute()["created_at"].dt.day.tolist()
    [1]
    """
    _check_entity(entity, "entities_from_tables")
    if entity == "account" and "accounts" in tables:
        a = tables["accounts"]
        return a.select(entity_id=a.account_id.cast("string"), created_at=a.created_at)
    if entity == "user" and "users" in tables:
        u = tables["users"]
        return u.select(entity_id=u.user_id.cast("string"), created_at=u.signup_at)
    key, ev = ("account_id", events_with_accounts) if entity == "account" else (
        "user_id", tables.get("events"))
    if ev is None:
        source = ("an accounts table or events_with_accounts (account_events output)"
                  if entity == "account" else "a users table or an events table")
        raise PqlmlError(f"entities_from_tables needs {source} to find the {entity}s. "
                         f"Fix: add [data.{entity}s] to the config or pass the events.")
    ev = ev.filter(ev[key].notnull())
    return ev.group_by(entity_id=ev[key].cast("string")).aggregate(created_at=ev.ts.min())


def check_as_of(as_of_dates, data_start, data_end) -> None:
    """Check that every as_of lies within the data: from its first event to the day after its last.

    Raises
    ------
    PqlmlError
        An as_of is before ``data_start`` or after the day after ``data_end``;
        the message names the dates, the data's range and the fix.

    Examples
    --------
    >>> check_as_of([dt.date(2024, 2, 1)], pd.Timestamp("2024-01-01", tz="UTC"),
    ...             pd.Timestamp("2024-06-30 15:00", tz="UTC"))
    >>> check_as_of([dt.date(2024, 7, 2)], "2024-01-01", "2024-06-30 15:00")
    Traceback (most recent call last):
    ...
    pqlml.errors.PqlmlError: 1 as_of date(s) outside the data: 2024-07-02. ...
    """
    start, end = utc(data_start), utc(data_end)
    first, last = start.ceil("D"), end.normalize() + pd.Timedelta(days=1)
    dates = [utc(d) for d in ([as_of_dates] if isinstance(as_of_dates, dt.date)
                                else list(as_of_dates))]
    bad = sorted(d for d in dates if d < start or d > last)
    if bad:
        shown = ", ".join(str(d.date()) for d in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise PqlmlError(f"{len(bad)} as_of date(s) outside the data: {shown}. The events "
                         f"run from {start} to {end}; an as_of before the first event has no "
                         f"history, and one after {last.date()} (the day after the last event) "
                         f"has no data. Fix: choose as_of dates from {first.date()} to "
                         f"{last.date()}, e.g. [schedule] start = {first.date()} and "
                         f"end = {last.date()}.")


def utc(value, name: str = "as_of", func: str = "") -> pd.Timestamp:
    """The one UTC normaliser: a date, an ISO string, a datetime or a numpy datetime as a UTC
    timestamp (naive values are UTC); anything else is an error naming ``name`` (a parameter
    of ``func``).

    Examples
    --------
    >>> utc("2024-02-01"), utc(pd.Timestamp("2024-02-01 01:00", tz="Europe/Paris"))
    (Timestamp('2024-02-01 00:00:00+0000', tz='UTC'), Timestamp('2024-02-01 00:00:00+0000', tz='UTC'))
    """
    if isinstance(value, (str, dt.date, pd.Timestamp, np.datetime64)):
        try:
            ts = pd.Timestamp(value)
        except ValueError:
            ts = None
        if ts is not None and not pd.isna(ts):
            return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    raise PqlmlError(f"The {name!r} parameter{f' of {func}' if func else ''} must be a "
                     f"timestamp or date (naive values are UTC). Got {value!r} instead.")
