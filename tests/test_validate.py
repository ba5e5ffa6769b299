"""Data checks: each rule raises (or reports) with file, column and exact row counts."""

import ibis
import pandas as pd
import pytest

from pqlml.config import DataConfig, TableSource
from pqlml.errors import DataError
from pqlml.schema import TABLES
from pqlml.sources import load_tables
from pqlml.validate import Finding, ValidationReport, validate_table

VALID = {
    "events": {"ts": ["2024-01-01T10:00:00Z"], "user_id": ["u1"], "event": ["login"]},
    "users": {"user_id": ["u1"], "email": ["a@x.com"], "signup_at": ["2024-01-01T00:00:00Z"]},
    "accounts": {"account_id": ["a1"], "domain": ["x.com"], "created_at": ["2024-01-01T00:00:00Z"]},
    "outcomes": {"account_id": ["a1"], "ts": ["2024-02-01T00:00:00Z"], "outcome": ["conversion"]},
}


def _load(tmp_path, fmt="parquet", **frames):
    """Write each frame as <name>.<fmt> (events defaults to a valid one) and load them."""
    frames.setdefault("events", pd.DataFrame(VALID["events"]))
    sources = {}
    for name, df in frames.items():
        path = tmp_path / f"{name}.{fmt}"
        df.to_parquet(path) if fmt == "parquet" else df.to_csv(path, index=False)
        sources[name] = TableSource(path.name)
    return load_tables(DataConfig(root=tmp_path, **sources))


def _events(n, **overrides):
    df = pd.DataFrame({"ts": [f"2024-01-01T00:00:{i % 60:02d}Z" for i in range(n)],
                       "user_id": [f"u{i}" for i in range(n)], "event": ["login"] * n})
    for col, values in overrides.items():
        for i, v in values.items():
            df.loc[i, col] = v
    return df


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_unparseable_timestamps(tmp_path, fmt):
    df = _events(1000, ts={3: "yesterday", 500: "2024-13-01", 999: "yesterday"})
    with pytest.raises(DataError, match=rf"events \(.*events\.{fmt}\): column 'ts' has 3 of 1,000 "
                       r"rows that are not timestamps \(e\.g\. .*'yesterday'.*\)\. Fix: write ISO"
                       ) as err:
        _load(tmp_path, fmt, events=df)
    assert "'2024-13-01'" in str(err.value)


def test_unparseable_timestamps_name_the_source_column(tmp_path):
    _events(10, ts={0: "1704103200", 1: "1704103201"}).rename(columns={"ts": "time"}).to_csv(
        tmp_path / "e.csv", index=False)
    data = DataConfig(root=tmp_path, events=TableSource("e.csv", {"ts": "time"}))
    with pytest.raises(DataError, match=r"column 'time' \(mapped to ts\) has 2 of 10 rows .*"
                       r"look like epoch numbers"):
        load_tables(data)


def test_numeric_timestamp_column_is_rejected(tmp_path):
    df = pd.DataFrame({"ts": [1704103200, 1704103201], "user_id": ["u1", "u2"], "event": ["a", "b"]})
    with pytest.raises(DataError, match=r"events \(.*events\.parquet\): column 'ts' holds numbers "
                       r"\(epoch time\?\), not timestamps.*to_datetime"):
        _load(tmp_path, events=df)


def test_mixed_naive_and_aware_csv_timestamps_are_normalised_to_utc(tmp_path):
    ts = ["2024-01-01T10:00:00+02:00", "2024-01-01 10:00:00", "2024-01-01T10:00:00Z",
          "2024-01-01 11:00:00-05:00", "2024-01-01T12:30:00", "2024-01-01 10:00:00 Europe/Berlin"]
    df = pd.DataFrame({"ts": ts, "user_id": [f"u{i}" for i in range(6)], "event": ["e"] * 6})
    _, tables, report = _load(tmp_path, "csv", events=df)
    got = tables["events"].order_by("user_id").execute()["ts"].tolist()
    want = ["2024-01-01 08:00", "2024-01-01 10:00", "2024-01-01 10:00", "2024-01-01 16:00",
            "2024-01-01 12:30", "2024-01-01 09:00"]
    assert got == [pd.Timestamp(w, tz="UTC") for w in want]
    [f] = report.findings
    assert (f.kind, f.rows, f.column, f.action) == (
        "naive_timestamps_assumed_utc", 2, "ts", "normalised to UTC")
    assert f.file.endswith("events.csv") and "explicit offset" in f.fix


def test_offset_is_honoured_by_ibis_try_cast():
    t = ibis.memtable({"s": ["2024-01-01T10:00:00+02:00"]})
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone='UTC'")
    [v] = con.execute(t.select(v=t.s.try_cast("timestamp('UTC')")))["v"]
    assert v == pd.Timestamp("2024-01-01 08:00", tz="UTC")


def test_typed_timestamps_naive_reported_aware_converted(tmp_path):
    df = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 10:00", "2024-01-03 00:00"]),
                       "user_id": ["u1", "u2", "u3"], "event": ["e"] * 3})
    _, _, report = _load(tmp_path, events=df)
    assert [(f.kind, f.rows, f.action) for f in report] == [
        ("naive_timestamps_assumed_utc", 3, "assumed UTC")]
    df["ts"] = df["ts"].dt.tz_localize("Europe/Berlin")
    _, tables, report = _load(tmp_path, events=df)
    assert len(report) == 0
    assert tables["events"].execute()["ts"].min() == pd.Timestamp("2024-01-01 09:00", tz="UTC")


@pytest.mark.parametrize("name,column", [
    ("events", "user_id"), ("events", "ts"), ("events", "event"), ("users", "user_id"),
    ("users", "signup_at"), ("accounts", "account_id"), ("outcomes", "account_id"),
    ("outcomes", "ts")])
def test_nulls_in_required_columns(tmp_path, name, column):
    df = pd.DataFrame({c: v * 1200 for c, v in VALID[name].items()})
    for key in TABLES[name].key:  # unique keys, so the nulls are the only problem
        df[key] = [f"id{i}" for i in range(1200)]
    df[column] = df[column].astype(object)
    df.loc[[5, 6, 700, 1100], column] = None
    with pytest.raises(DataError, match=rf"{name} \(.*{name}\.parquet\): column '{column}' is empty "
                       rf"\(null\) in 4 of 1,200 rows\. Fix: remove those rows or fill {column}"):
        _load(tmp_path, **{name: df})


def test_duplicate_events_removed_and_counted(tmp_path):
    df = pd.DataFrame({
        "ts": ["2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z", "2024-01-01T12:00:00+02:00",
               "2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"],
        "user_id": ["u1", "u1", "u1", "u2", "u1", "u1"],
        "event": ["login", "login", "login", "login", "view", "login"],
        "account_id": ["a1", "a1", "a1", "a1", "a1", None]})
    _, tables, report = _load(tmp_path, "csv", events=df)
    out = tables["events"].execute()
    assert len(out) == 3  # rows 0, 1, 2, 5 are one event (12:00+02:00 is 10:00Z)
    [f] = report.findings
    assert (f.kind, f.rows, f.action) == ("duplicate_events", 3, "kept one of each")
    kept = out[(out.user_id == "u1") & (out.event == "login")]
    assert kept["account_id"].tolist() == ["a1"]  # a real row, preferring a known account
    assert kept["ts"].tolist() == [pd.Timestamp("2024-01-01 10:00", tz="UTC")]


def test_a_date_only_log_keeps_a_users_repeats_of_a_day(tmp_path):
    """Every time a midnight and no event id: identical rows are one user's repeats of an
    event on one day (a purchase log by date), kept and counted; one row with a time of day
    makes identical rows duplicates again."""
    df = pd.DataFrame({"ts": ["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-02"],
                       "user_id": ["u1", "u1", "u2", "u1"], "event": ["buy"] * 4})
    _, tables, report = _load(tmp_path, "csv", events=df)
    assert tables["events"].count().execute() == 4
    assert [(f.kind, f.rows) for f in report if f.kind != "naive_timestamps_assumed_utc"] == [
        ("same_day_repeats_kept", 1)]
    timed = pd.concat([df, pd.DataFrame({"ts": ["2024-01-03T10:00:00"], "user_id": ["u1"],
                                         "event": ["buy"]})])
    _, tables, report = _load(tmp_path, "csv", events=timed)
    assert tables["events"].count().execute() == 4
    assert ("duplicate_events", 1) in [(f.kind, f.rows) for f in report]


def test_events_with_distinct_event_ids_are_not_duplicates(tmp_path):
    df = _events(4, ts={1: "2024-01-01T00:00:00Z"}, user_id={1: "u0"}).assign(
        event_id=["e1", "e2", "e3", "e3"])
    df.loc[3] = df.loc[2]
    _, tables, report = _load(tmp_path, events=df)
    assert tables["events"].count().execute() == 3
    assert [(f.kind, f.rows) for f in report] == [("duplicate_events", 1)]


@pytest.mark.parametrize("ids, kept", [([7, 8, 9, 10**6], 4), ([7, 8, 9, 9], 3)])
def test_integer_event_ids_settle_duplicates_in_the_check_scan(tmp_path, ids, kept):
    # Integer ids from Parquet are counted with DuckDB's perfect hash: rows that are identical
    # but for distinct ids are kept, a repeated id with a repeated row is one event.
    df = pd.DataFrame({"ts": ["2024-01-01T00:00:00Z"] * 4, "user_id": ["u1"] * 4,
                       "event": ["login"] * 4, "event_id": ids})
    con, tables, report = _load(tmp_path, events=df)
    assert tables["events"].count().execute() == kept
    assert [(f.kind, f.rows) for f in report] == ([] if kept == 4 else [("duplicate_events", 1)])
    assert con.raw_sql("SELECT current_setting('perfect_ht_threshold')").fetchall() == [(12,)]


@pytest.mark.parametrize("name,key", [("users", "user_id"), ("accounts", "account_id")])
def test_duplicate_keys_are_errors(tmp_path, name, key):
    df = pd.DataFrame({c: v * 7 for c, v in VALID[name].items()})
    df[key] = ["k1", "k1", "k1", "k2", "k2", "k3", "k4"]
    with pytest.raises(DataError, match=rf"{name} \(.*{name}\.csv\): column '{key}' has 2 ids that "
                       rf"appear more than once \(5 rows for those ids; e\.g\. 'k1', 'k2'\)"):
        _load(tmp_path, "csv", **{name: df})


def test_unknown_outcome_values(tmp_path):
    df = pd.DataFrame({c: v * 6 for c, v in VALID["outcomes"].items()})
    df["outcome"] = ["conversion", "won", "won", "lost", None, "hand_raise"]
    with pytest.raises(DataError, match=r"outcomes \(.*outcomes\.parquet\): column 'outcome' has 4 "
                       r"of 6 rows outside the allowed values 'hand_raise', 'conversion': 'won' "
                       r"\(2 rows\), (None \(1 row\), 'lost' \(1 row\)|'lost' \(1 row\), None \(1 row\))"):
        _load(tmp_path, outcomes=df)


def test_non_integer_employees_and_float_ids(tmp_path):
    acc = pd.DataFrame({c: v * 3 for c, v in VALID["accounts"].items()})
    acc["account_id"] = ["a1", "a2", "a3"]
    acc["employees"] = ["10", "10.5", "many"]
    with pytest.raises(DataError, match=r"accounts \(.*accounts\.csv\): column 'employees' has 2 of 3 "
                       r"rows that are not whole numbers"):
        _load(tmp_path, "csv", accounts=acc)
    ev = _events(3).assign(account_id=[12.0, None, 7.0])
    _, tables, _ = _load(tmp_path, events=ev)
    assert tables["events"].order_by("user_id").to_pyarrow()["account_id"].to_pylist() == ["12", None, "7"]


def test_all_problems_reported_together(tmp_path):
    df = _events(5, ts={0: "soon"}, user_id={1: None, 2: None})
    with pytest.raises(DataError) as err:
        _load(tmp_path, events=df)
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and "1 of 5 rows" in lines[0] and "2 of 5 rows" in lines[1]


def test_validate_table_on_memtable_and_report_api():
    t = ibis.memtable({"ts": ["2024-01-01 10:00:00", "2024-01-01T10:00:00Z"],
                       "user_id": [1, 1], "event": ["a", "a"]})
    report = ValidationReport()
    assert not report and len(report) == 0 and list(report.to_frame().columns) == [
        "table", "file", "column", "kind", "rows", "action", "fix"]
    out = validate_table(t, "events", file="mem", report=report)
    assert out.count().execute() == 1
    frame = report.to_frame()
    assert frame[["kind", "rows"]].values.tolist() == [
        ["naive_timestamps_assumed_utc", 1], ["duplicate_events", 1]]
    assert report.render()[1].startswith(
        "events (mem): column 'ts, user_id, event': duplicate events in 1 row: kept one")
    assert isinstance(report.findings[0], Finding) and len(report) == 2
