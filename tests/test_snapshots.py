"""The spine: schedules, who exists at each as_of, explicit spines, range checks."""

import datetime as dt

import ibis
import pandas as pd
import pytest

from pqlml.config import ScheduleConfig
from pqlml.errors import DataError, PqlmlError
from pqlml.snapshots import build_spine, check_as_of, entities_from_tables, schedule_dates

D = dt.date
UTC = "UTC"


def _rows(spine):
    return sorted((r["entity_id"], r["as_of"].date()) for r in spine.to_pyarrow().to_pylist())


def test_monthly_grid_keeps_day_of_month_clamped_and_includes_end():
    assert schedule_dates(ScheduleConfig(D(2024, 2, 1), D(2024, 5, 1), "month")) == [
        D(2024, 2, 1), D(2024, 3, 1), D(2024, 4, 1), D(2024, 5, 1)]
    assert schedule_dates(ScheduleConfig(D(2023, 12, 31), D(2024, 3, 30), "month")) == [
        D(2023, 12, 31), D(2024, 1, 31), D(2024, 2, 29)]   # no drift to the 29th after Feb


def test_weekly_and_n_day_grids():
    assert schedule_dates(ScheduleConfig(D(2024, 1, 1), D(2024, 1, 21), "week")) == [
        D(2024, 1, 1), D(2024, 1, 8), D(2024, 1, 15)]
    assert schedule_dates(ScheduleConfig(D(2024, 1, 1), D(2024, 1, 20), "10d")) == [
        D(2024, 1, 1), D(2024, 1, 11)]
    on_grid = schedule_dates(ScheduleConfig(D(2024, 1, 1), D(2024, 1, 21), "10d"))
    assert on_grid[-1] == D(2024, 1, 21)
    assert schedule_dates(ScheduleConfig(D(2024, 1, 1), D(2024, 1, 1), "1d")) == [D(2024, 1, 1)]


@pytest.mark.parametrize("schedule, match", [
    (ScheduleConfig(None, D(2024, 1, 1)), "'schedule.start'"),
    (ScheduleConfig(D(2024, 1, 1), None), "'schedule.end'"),
    (ScheduleConfig(D(2024, 2, 1), D(2024, 1, 1)), "before 'schedule.start'"),
    (ScheduleConfig(D(2024, 1, 1), D(2024, 2, 1), "fortnight"), "'schedule.every'"),
    (ScheduleConfig(D(2024, 1, 1), D(2024, 2, 1), "0d"), "'schedule.every'"),
])
def test_bad_schedule(schedule, match):
    with pytest.raises(PqlmlError, match=match):
        schedule_dates(schedule)


def test_entity_must_exist_strictly_before_as_of():
    as_of = pd.Timestamp("2024-02-01", tz=UTC)
    entities = ibis.memtable({"entity_id": ["at", "before", "after", "old"], "created_at": [
        as_of, as_of - pd.Timedelta(seconds=1), as_of + pd.Timedelta(seconds=1),
        pd.Timestamp("2023-01-01", tz=UTC)]})
    spine = build_spine(entities, as_of=[D(2024, 2, 1), D(2024, 3, 1)])
    assert spine.columns == ("entity_id", "as_of")
    assert str(spine.schema()["as_of"]) == "timestamp('UTC')"
    assert _rows(spine) == [("after", D(2024, 3, 1)), ("at", D(2024, 3, 1)),
                            ("before", D(2024, 2, 1)), ("before", D(2024, 3, 1)),
                            ("old", D(2024, 2, 1)), ("old", D(2024, 3, 1))]
    one = build_spine(entities, as_of=dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc))
    assert _rows(one) == [("before", D(2024, 2, 1)), ("old", D(2024, 2, 1))]
    ts = one.to_pyarrow()["as_of"].to_pylist()[0]
    assert ts == dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)


def test_explicit_spine_passes_through():
    entities = ibis.memtable({"entity_id": ["a1"], "created_at": [pd.Timestamp("2030-01-01",
                                                                                tz=UTC)]})
    df = pd.DataFrame({"entity_id": [1, 2], "as_of": [D(2024, 1, 5), D(2024, 2, 1)],
                       "extra": [0, 0]})
    spine = build_spine(entities, as_of=df)
    assert spine.columns == ("entity_id", "as_of")
    assert _rows(spine) == [("1", D(2024, 1, 5)), ("2", D(2024, 2, 1))]
    aware = ibis.memtable({"entity_id": ["x"], "as_of": pd.to_datetime(["2024-03-01"], utc=True)})
    assert _rows(build_spine(entities, as_of=aware, entity="user")) == [("x", D(2024, 3, 1))]


def test_time_of_day_is_rejected():
    entities = ibis.memtable({"entity_id": ["a1"], "created_at": [pd.Timestamp("2020-01-01",
                                                                                tz=UTC)]})
    with pytest.raises(PqlmlError, match="day-grained"):
        build_spine(entities, as_of=[dt.datetime(2024, 2, 1, 9, 30)])
    explicit = pd.DataFrame({"entity_id": ["a", "b"], "as_of": pd.to_datetime(
        ["2024-02-01 00:00", "2024-02-01 00:00"]).tz_localize("Europe/Berlin")})
    with pytest.raises(PqlmlError, match=r"2 as_of values with a time of day.*day-grained"):
        build_spine(entities, as_of=explicit)   # midnight in Berlin is 23:00 UTC


@pytest.mark.parametrize("as_of, error, match", [
    ("2024-13-01", PqlmlError, "The 'as_of' parameter must be a date written YYYY-MM-DD"),
    ([], PqlmlError, "The 'as_of' parameter of build_spine must be"),
    (42, PqlmlError, "Got 42 instead"),
    (pd.DataFrame({"entity_id": ["a"]}), DataError, "lack column.*'as_of'"),
    (pd.DataFrame({"entity_id": ["a", "a"], "as_of": [D(2024, 1, 1)] * 2}), DataError,
     "1 repeated"),
    (pd.DataFrame({"entity_id": ["a", None], "as_of": [D(2024, 1, 1)] * 2}), DataError,
     "1 rows with a null"),
    (pd.DataFrame({"entity_id": ["a"], "as_of": ["2024-01-01"]}), DataError, "type string"),
])
def test_bad_as_of(as_of, error, match):
    entities = ibis.memtable({"entity_id": ["a1"], "created_at": [pd.Timestamp("2020-01-01",
                                                                                tz=UTC)]})
    with pytest.raises(error, match=match):
        build_spine(entities, as_of=as_of)


def test_bad_entity_and_missing_columns():
    t = ibis.memtable({"entity_id": ["a1"]})
    with pytest.raises(PqlmlError, match="The 'entity' parameter of build_spine"):
        build_spine(t, as_of=D(2024, 1, 1), entity="company")
    with pytest.raises(DataError, match="'created_at'"):
        build_spine(t, as_of=D(2024, 1, 1))


def test_entities_from_tables():
    ts = pd.to_datetime(["2024-01-03", "2024-01-02", "2024-01-05"], utc=True)
    accounts = ibis.memtable({"account_id": ["a1"], "domain": ["x.io"], "created_at": ts[:1]})
    users = ibis.memtable({"user_id": ["u1"], "email": ["a@x.io"], "signup_at": ts[1:2]})
    events = ibis.memtable({"ts": ts, "user_id": ["u1", "u2", "u2"],
                            "account_id": ["a1", "a1", None], "event": ["e"] * 3})
    tables = {"accounts": accounts, "users": users, "events": events}
    assert entities_from_tables(tables).execute().to_dict("records") == [
        {"entity_id": "a1", "created_at": ts[0]}]
    assert entities_from_tables(tables, "user").execute().to_dict("records") == [
        {"entity_id": "u1", "created_at": ts[1]}]
    derived = entities_from_tables({"events": events}, "account", events_with_accounts=events)
    assert derived.execute().to_dict("records") == [{"entity_id": "a1", "created_at": ts[1]}]
    users_from_events = entities_from_tables({"events": events}, "user").order_by("entity_id")
    assert users_from_events.execute()["created_at"].tolist() == [ts[0], ts[1]]
    with pytest.raises(PqlmlError, match="accounts table or events_with_accounts"):
        entities_from_tables({"events": events}, "account")


def test_check_as_of_range():
    start = pd.Timestamp("2024-01-01 08:00", tz=UTC)
    end = pd.Timestamp("2024-06-30 15:00", tz=UTC)
    check_as_of([D(2024, 1, 2), D(2024, 7, 1)], start, end)   # the day after the last event
    with pytest.raises(PqlmlError, match=r"1 as_of date\(s\) outside the data: 2024-07-02.*"
                                         r"2024-01-01 08:00:00\+00:00.*Fix"):
        check_as_of([D(2024, 7, 1), D(2024, 7, 2)], start, end)
    fix = "outside the data: 2024-01-01.*Fix: choose as_of dates from 2024-01-02 to 2024-07-01"
    with pytest.raises(PqlmlError, match=fix):
        check_as_of([D(2024, 1, 1)], start, end)   # midnight is before the first event
    with pytest.raises(PqlmlError, match="2 as_of"):
        check_as_of(pd.to_datetime(["2023-12-01", "2025-01-01"], utc=True), start, end)
